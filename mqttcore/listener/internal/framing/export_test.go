package framing

// ErrDecoderPanic exposes errDecoderPanic to the black-box fuzz target.
var ErrDecoderPanic = errDecoderPanic

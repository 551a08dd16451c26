package snpacket

import "errors"

// Sentinel errors. Every error this package returns wraps exactly one of them
// inside an [*Error], so callers test with errors.Is.
var (
	// ErrShortBuffer: the datagram ends before a field the message needs.
	ErrShortBuffer = errors.New("message too short")
	// ErrLengthMismatch: the Length field does not equal the datagram size.
	ErrLengthMismatch = errors.New("length field does not match datagram size")
	// ErrInvalidLength: the Length field holds a value no message can have
	// (0x00, or a three-octet length below 4).
	ErrInvalidLength = errors.New("invalid length field")
	// ErrTrailingBytes: a message of fixed size has bytes after its last field.
	ErrTrailingBytes = errors.New("trailing bytes after message")
	// ErrUnknownType: the MsgType octet is reserved in MQTT-SN 1.2.
	ErrUnknownType = errors.New("unknown message type")
	// ErrInvalidQoS: a QoS value the message does not allow (QoS -1 anywhere
	// but PUBLISH, or a value outside -1..2).
	ErrInvalidQoS = errors.New("invalid QoS")
	// ErrInvalidTopicIDType: the reserved TopicIdType 0b11, a type the message
	// does not allow, or QoS -1 with a normal topic id.
	ErrInvalidTopicIDType = errors.New("invalid topic id type")
	// ErrUnsupportedProtocol: a CONNECT whose ProtocolId is not 0x01.
	ErrUnsupportedProtocol = errors.New("unsupported protocol id")
	// ErrEmptyField: a field that must hold at least one octet is empty.
	ErrEmptyField = errors.New("required field is empty")
	// ErrNestedEncapsulation: an Encapsulated message wraps another one.
	ErrNestedEncapsulation = errors.New("nested encapsulation")
	// ErrTooLong: the message would exceed 65535 octets, or an Encapsulated
	// envelope would exceed the 255 octets its one-octet Length can count.
	ErrTooLong = errors.New("message too long")
	// ErrInvalidField: a field value that cannot be encoded (for example a
	// broadcast radius above 3 in an Encapsulated Ctrl octet).
	ErrInvalidField = errors.New("invalid field value")
)

// Error describes a failure to decode or encode one message: which operation,
// which message type, which field, and the sentinel that says why.
type Error struct {
	Op    string  // "decode" or "encode"
	Type  MsgType // the message type, when known
	Field string  // the field at fault, using the specification's names
	Err   error   // one of the sentinel errors
}

// Error returns a text such as
// "snpacket: decode PUBLISH: field Flags: invalid QoS".
func (e *Error) Error() string {
	s := "snpacket: " + e.Op
	if e.Field != "Length" { // a bad Length comes before the type is read
		s += " " + e.Type.String()
	}
	if e.Field != "" {
		s += ": field " + e.Field
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }

func decodeErr(t MsgType, field string, err error) error {
	return &Error{Op: "decode", Type: t, Field: field, Err: err}
}

func encodeErr(t MsgType, field string, err error) error {
	return &Error{Op: "encode", Type: t, Field: field, Err: err}
}

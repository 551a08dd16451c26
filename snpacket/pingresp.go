package snpacket

// PingResp (PINGRESP, 0x17) answers a PINGREQ and has no fields. Sent to a
// client that woke from sleep, it ends the delivery of its buffered messages.
type PingResp struct{}

// Type returns TypePingResp.
func (*PingResp) Type() MsgType { return TypePingResp }

// Len returns the wire length.
func (*PingResp) Len() int { return frameLen(0) }

// AppendBinary appends the wire form of m to b.
func (*PingResp) AppendBinary(b []byte) ([]byte, error) { return appendEmpty(b, TypePingResp) }

// Clone returns a new PingResp.
func (*PingResp) Clone() Message { return new(PingResp) }

func (*PingResp) decode(body []byte) error { return decodeEmpty(TypePingResp, body) }

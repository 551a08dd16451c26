package snpacket

// WillMsgReq (WILLMSGREQ, 0x08) has no fields; the gateway sends it to ask
// for the will message during CONNECT.
type WillMsgReq struct{}

// Type returns TypeWillMsgReq.
func (*WillMsgReq) Type() MsgType { return TypeWillMsgReq }

// Len returns the wire length.
func (*WillMsgReq) Len() int { return frameLen(0) }

// AppendBinary appends the wire form of m to b.
func (*WillMsgReq) AppendBinary(b []byte) ([]byte, error) { return appendEmpty(b, TypeWillMsgReq) }

// Clone returns a new WillMsgReq.
func (*WillMsgReq) Clone() Message { return new(WillMsgReq) }

func (*WillMsgReq) decode(body []byte) error { return decodeEmpty(TypeWillMsgReq, body) }

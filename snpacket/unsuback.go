package snpacket

// Unsuback (UNSUBACK, 0x15) answers an UNSUBSCRIBE.
type Unsuback struct {
	MsgID uint16
}

// Type returns TypeUnsuback.
func (*Unsuback) Type() MsgType { return TypeUnsuback }

// Len returns the wire length.
func (*Unsuback) Len() int { return frameLen(2) }

// AppendBinary appends the wire form of m to b.
func (m *Unsuback) AppendBinary(b []byte) ([]byte, error) {
	return appendMsgID(b, TypeUnsuback, m.MsgID)
}

// Clone returns a copy of m.
func (m *Unsuback) Clone() Message { c := *m; return &c }

func (m *Unsuback) decode(body []byte) (err error) {
	m.MsgID, err = decodeMsgID(TypeUnsuback, body)
	return err
}

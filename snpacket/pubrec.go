package snpacket

// Pubrec (PUBREC, 0x0F) answers a QoS 2 PUBLISH (first step of the QoS 2 flow).
type Pubrec struct {
	MsgID uint16
}

// Type returns TypePubrec.
func (*Pubrec) Type() MsgType { return TypePubrec }

// Len returns the wire length.
func (*Pubrec) Len() int { return frameLen(2) }

// AppendBinary appends the wire form of m to b.
func (m *Pubrec) AppendBinary(b []byte) ([]byte, error) { return appendMsgID(b, TypePubrec, m.MsgID) }

// Clone returns a copy of m.
func (m *Pubrec) Clone() Message { c := *m; return &c }

func (m *Pubrec) decode(body []byte) (err error) {
	m.MsgID, err = decodeMsgID(TypePubrec, body)
	return err
}

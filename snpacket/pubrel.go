package snpacket

// Pubrel (PUBREL, 0x10) answers a PUBREC (second step of the QoS 2 flow).
type Pubrel struct {
	MsgID uint16
}

// Type returns TypePubrel.
func (*Pubrel) Type() MsgType { return TypePubrel }

// Len returns the wire length.
func (*Pubrel) Len() int { return frameLen(2) }

// AppendBinary appends the wire form of m to b.
func (m *Pubrel) AppendBinary(b []byte) ([]byte, error) { return appendMsgID(b, TypePubrel, m.MsgID) }

// Clone returns a copy of m.
func (m *Pubrel) Clone() Message { c := *m; return &c }

func (m *Pubrel) decode(body []byte) (err error) {
	m.MsgID, err = decodeMsgID(TypePubrel, body)
	return err
}

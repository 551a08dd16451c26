package snpacket

// Pubcomp (PUBCOMP, 0x0E) answers a PUBREL (last step of the QoS 2 flow).
type Pubcomp struct {
	MsgID uint16
}

// Type returns TypePubcomp.
func (*Pubcomp) Type() MsgType { return TypePubcomp }

// Len returns the wire length.
func (*Pubcomp) Len() int { return frameLen(2) }

// AppendBinary appends the wire form of m to b.
func (m *Pubcomp) AppendBinary(b []byte) ([]byte, error) { return appendMsgID(b, TypePubcomp, m.MsgID) }

// Clone returns a copy of m.
func (m *Pubcomp) Clone() Message { c := *m; return &c }

func (m *Pubcomp) decode(body []byte) (err error) {
	m.MsgID, err = decodeMsgID(TypePubcomp, body)
	return err
}

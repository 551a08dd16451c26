package snpacket

// Regack (REGACK, 0x0B) answers a REGISTER, in either direction.
type Regack struct {
	TopicID    uint16
	MsgID      uint16
	ReturnCode ReturnCode
}

// Type returns TypeRegack.
func (*Regack) Type() MsgType { return TypeRegack }

// Len returns the wire length.
func (*Regack) Len() int { return frameLen(5) }

// AppendBinary appends the wire form of m to b.
func (m *Regack) AppendBinary(b []byte) ([]byte, error) {
	return appendIDAck(b, TypeRegack, m.TopicID, m.MsgID, m.ReturnCode)
}

// Clone returns a copy of m.
func (m *Regack) Clone() Message { c := *m; return &c }

func (m *Regack) decode(body []byte) (err error) {
	m.TopicID, m.MsgID, m.ReturnCode, err = decodeIDAck(TypeRegack, body)
	return err
}

// REGACK and PUBACK share one layout: TopicId, MsgId, ReturnCode.

func decodeIDAck(t MsgType, body []byte) (topicID, msgID uint16, rc ReturnCode, err error) {
	if err := exact(t, body, 5, "ReturnCode"); err != nil {
		return 0, 0, 0, err
	}
	return u16(body), u16(body[2:]), ReturnCode(body[4]), nil
}

func appendIDAck(b []byte, t MsgType, topicID, msgID uint16, rc ReturnCode) ([]byte, error) {
	b, err := appendHeader(b, t, 5)
	if err != nil {
		return b, err
	}
	return append(appendU16(appendU16(b, topicID), msgID), byte(rc)), nil
}

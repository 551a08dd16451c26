package snpacket

// Register (REGISTER, 0x0A) asks for a topic id for a topic name (from a
// client, with TopicID 0), or tells a client the id the gateway will use for a
// name (from the gateway).
type Register struct {
	TopicID   uint16
	MsgID     uint16
	TopicName []byte
}

// Type returns TypeRegister.
func (*Register) Type() MsgType { return TypeRegister }

// Len returns the wire length.
func (m *Register) Len() int { return frameLen(4 + len(m.TopicName)) }

// AppendBinary appends the wire form of m to b.
func (m *Register) AppendBinary(b []byte) ([]byte, error) {
	if len(m.TopicName) == 0 {
		return b, encodeErr(TypeRegister, "TopicName", ErrEmptyField)
	}
	b, err := appendHeader(b, TypeRegister, 4+len(m.TopicName))
	if err != nil {
		return b, err
	}
	b = appendU16(appendU16(b, m.TopicID), m.MsgID)
	return append(b, m.TopicName...), nil
}

// Clone returns a deep copy of m.
func (m *Register) Clone() Message {
	c := *m
	c.TopicName = clone(m.TopicName)
	return &c
}

func (m *Register) decode(body []byte) error {
	if err := atLeast(TypeRegister, body, 4, "MsgId"); err != nil {
		return err
	}
	if len(body) == 4 {
		return decodeErr(TypeRegister, "TopicName", ErrEmptyField)
	}
	*m = Register{TopicID: u16(body), MsgID: u16(body[2:]), TopicName: body[4:]}
	return nil
}

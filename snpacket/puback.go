package snpacket

// Puback (PUBACK, 0x0D) acknowledges a QoS 1 PUBLISH, or rejects a PUBLISH of
// any QoS (for example with RejectedInvalidTopicID).
type Puback struct {
	TopicID    uint16
	MsgID      uint16
	ReturnCode ReturnCode
}

// Type returns TypePuback.
func (*Puback) Type() MsgType { return TypePuback }

// Len returns the wire length.
func (*Puback) Len() int { return frameLen(5) }

// AppendBinary appends the wire form of m to b.
func (m *Puback) AppendBinary(b []byte) ([]byte, error) {
	return appendIDAck(b, TypePuback, m.TopicID, m.MsgID, m.ReturnCode)
}

// Clone returns a copy of m.
func (m *Puback) Clone() Message { c := *m; return &c }

func (m *Puback) decode(body []byte) (err error) {
	m.TopicID, m.MsgID, m.ReturnCode, err = decodeIDAck(TypePuback, body)
	return err
}

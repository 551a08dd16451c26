package snpacket

// Subscribe (SUBSCRIBE, 0x12) subscribes to a topic name or filter (with
// TopicIDType TopicIDNormal; it may hold + and # wildcards), a predefined
// topic id, or a short topic name (both in TopicID).
type Subscribe struct {
	Dup bool
	// QoS is the requested maximum QoS, 0 to 2.
	QoS         QoS
	TopicIDType TopicIDType
	MsgID       uint16
	// TopicName is set for TopicIDNormal, and nil otherwise.
	TopicName []byte
	// TopicID is set for TopicIDPredefined and TopicIDShort.
	TopicID uint16
}

// Type returns TypeSubscribe.
func (*Subscribe) Type() MsgType { return TypeSubscribe }

// Len returns the wire length.
func (m *Subscribe) Len() int { return frameLen(3 + subTopicLen(m.TopicIDType, m.TopicName)) }

// AppendBinary appends the wire form of m to b. TopicName is written for
// TopicIDNormal, TopicID otherwise.
func (m *Subscribe) AppendBinary(b []byte) ([]byte, error) {
	if m.QoS < QoS0 || m.QoS > QoS2 {
		return b, encodeErr(TypeSubscribe, "Flags", ErrInvalidQoS)
	}
	if err := checkSubTopic(TypeSubscribe, m.TopicIDType, m.TopicName); err != nil {
		return b, err
	}
	b, err := appendHeader(b, TypeSubscribe, 3+subTopicLen(m.TopicIDType, m.TopicName))
	if err != nil {
		return b, err
	}
	flags := m.QoS.wire()<<flagQoSShift | byte(m.TopicIDType)
	if m.Dup {
		flags |= flagDup
	}
	b = appendU16(append(b, flags), m.MsgID)
	return appendSubTopic(b, m.TopicIDType, m.TopicName, m.TopicID), nil
}

// Clone returns a deep copy of m.
func (m *Subscribe) Clone() Message {
	c := *m
	c.TopicName = clone(m.TopicName)
	return &c
}

func (m *Subscribe) decode(body []byte) error {
	if err := atLeast(TypeSubscribe, body, 3, "MsgId"); err != nil {
		return err
	}
	flags := body[0]
	q, typ := qosFromWire(flags&flagQoSMask>>flagQoSShift), TopicIDType(flags&flagTopicIDMask)
	if q == QoSMinus1 {
		return decodeErr(TypeSubscribe, "Flags", ErrInvalidQoS)
	}
	name, id, err := decodeSubTopic(TypeSubscribe, typ, body[3:])
	if err != nil {
		return err
	}
	*m = Subscribe{
		Dup:         flags&flagDup != 0,
		QoS:         q,
		TopicIDType: typ,
		MsgID:       u16(body[1:]),
		TopicName:   name,
		TopicID:     id,
	}
	return nil
}

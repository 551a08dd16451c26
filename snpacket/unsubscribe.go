package snpacket

// Unsubscribe (UNSUBSCRIBE, 0x14) removes a subscription made by topic name
// or filter (TopicIDNormal), predefined topic id, or short topic name. Only
// the TopicIdType bits of its Flags octet are used.
type Unsubscribe struct {
	TopicIDType TopicIDType
	MsgID       uint16
	// TopicName is set for TopicIDNormal, and nil otherwise.
	TopicName []byte
	// TopicID is set for TopicIDPredefined and TopicIDShort.
	TopicID uint16
}

// Type returns TypeUnsubscribe.
func (*Unsubscribe) Type() MsgType { return TypeUnsubscribe }

// Len returns the wire length.
func (m *Unsubscribe) Len() int { return frameLen(3 + subTopicLen(m.TopicIDType, m.TopicName)) }

// AppendBinary appends the wire form of m to b. TopicName is written for
// TopicIDNormal, TopicID otherwise.
func (m *Unsubscribe) AppendBinary(b []byte) ([]byte, error) {
	if err := checkSubTopic(TypeUnsubscribe, m.TopicIDType, m.TopicName); err != nil {
		return b, err
	}
	b, err := appendHeader(b, TypeUnsubscribe, 3+subTopicLen(m.TopicIDType, m.TopicName))
	if err != nil {
		return b, err
	}
	b = appendU16(append(b, byte(m.TopicIDType)), m.MsgID)
	return appendSubTopic(b, m.TopicIDType, m.TopicName, m.TopicID), nil
}

// Clone returns a deep copy of m.
func (m *Unsubscribe) Clone() Message {
	c := *m
	c.TopicName = clone(m.TopicName)
	return &c
}

func (m *Unsubscribe) decode(body []byte) error {
	if err := atLeast(TypeUnsubscribe, body, 3, "MsgId"); err != nil {
		return err
	}
	typ := TopicIDType(body[0] & flagTopicIDMask)
	name, id, err := decodeSubTopic(TypeUnsubscribe, typ, body[3:])
	if err != nil {
		return err
	}
	*m = Unsubscribe{TopicIDType: typ, MsgID: u16(body[1:]), TopicName: name, TopicID: id}
	return nil
}

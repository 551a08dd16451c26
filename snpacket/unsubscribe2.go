package snpacket

// UnsubscribeV2 (MQTT-SN 2.0 UNSUBSCRIBE, 0x0A) removes a subscription
// given by topic filter (TopicTypeName) or by alias.
type UnsubscribeV2 struct {
	TopicType TopicType
	PacketID  uint16
	// TopicAlias is set for TopicTypeSession and TopicTypePredefined.
	TopicAlias uint16
	// TopicFilter is set for TopicTypeName, and nil otherwise.
	TopicFilter []byte
}

// Type returns PacketUnsubscribe.
func (*UnsubscribeV2) Type() PacketType { return PacketUnsubscribe }

// Len returns the wire length.
func (m *UnsubscribeV2) Len() int { return frameLen(3 + filterLen(m.TopicType, m.TopicFilter)) }

// AppendBinary appends the wire form of m to b.
func (m *UnsubscribeV2) AppendBinary(b []byte) ([]byte, error) {
	if err := checkFilter(PacketUnsubscribe, m.TopicType, m.TopicFilter); err != nil {
		return b, err
	}
	b, err := appendHeaderV2(b, PacketUnsubscribe, 3+filterLen(m.TopicType, m.TopicFilter))
	if err != nil {
		return b, err
	}
	b = appendU16(append(b, byte(m.TopicType)), m.PacketID)
	return appendFilter(b, m.TopicType, m.TopicAlias, m.TopicFilter), nil
}

// Clone returns a deep copy of m.
func (m *UnsubscribeV2) Clone() MessageV2 {
	c := *m
	c.TopicFilter = clone(m.TopicFilter)
	return &c
}

func (m *UnsubscribeV2) decode(body []byte) error {
	const t = PacketUnsubscribe
	if err := atLeast2(t, body, 3, "PacketId"); err != nil {
		return err
	}
	typ := TopicType(body[0] & flagTopicIDMask)
	switch {
	case body[0]&^flagTopicIDMask != 0:
		return decodeErr2(t, "Flags", ErrReservedBits)
	case !typ.valid():
		return decodeErr2(t, "Flags", ErrInvalidTopicIDType)
	}
	alias, filter, err := decodeFilter(t, typ, body[3:])
	if err != nil {
		return err
	}
	*m = UnsubscribeV2{TopicType: typ, PacketID: u16(body[1:]), TopicAlias: alias, TopicFilter: filter}
	return nil
}

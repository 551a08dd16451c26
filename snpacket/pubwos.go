package snpacket

// Pubwos (MQTT-SN 2.0 PUBWOS, 0x12) publishes without a session: it
// replaces 1.2's QoS -1 PUBLISH. The receiver treats it as QoS 0: no
// reply, no retry. Only a predefined alias or a full topic name is allowed.
type Pubwos struct {
	Retain bool
	// TopicType is TopicTypePredefined or TopicTypeName.
	TopicType TopicType
	// TopicAlias is the predefined alias, for TopicTypePredefined.
	TopicAlias uint16
	// TopicName is set for TopicTypeName, and nil otherwise.
	TopicName []byte
	// Data is the payload, running to the end of the datagram.
	Data []byte
}

// Type returns PacketPubwos.
func (*Pubwos) Type() PacketType { return PacketPubwos }

func (m *Pubwos) bodyLen() int { return 1 + topicLen(m.TopicType, m.TopicName) + len(m.Data) }

// Len returns the wire length.
func (m *Pubwos) Len() int { return frameLen(m.bodyLen()) }

// AppendBinary appends the wire form of m to b.
func (m *Pubwos) AppendBinary(b []byte) ([]byte, error) {
	if m.TopicType == TopicTypeSession {
		return b, encodeErr2(PacketPubwos, "Flags", ErrInvalidTopicIDType)
	}
	if err := checkTopic(PacketPubwos, m.TopicType, m.TopicName); err != nil {
		return b, err
	}
	b, err := appendHeaderV2(b, PacketPubwos, m.bodyLen())
	if err != nil {
		return b, err
	}
	flags := byte(m.TopicType)
	if m.Retain {
		flags |= flagRetain
	}
	b = appendTopic(append(b, flags), m.TopicType, m.TopicAlias, m.TopicName)
	return append(b, m.Data...), nil
}

// Clone returns a deep copy of m.
func (m *Pubwos) Clone() MessageV2 {
	c := *m
	c.TopicName = clone(m.TopicName)
	c.Data = clone(m.Data)
	return &c
}

func (m *Pubwos) decode(body []byte) error {
	if len(body) == 0 {
		return decodeErr2(PacketPubwos, "Flags", ErrShortBuffer)
	}
	flags, typ := body[0], TopicType(body[0]&flagTopicIDMask)
	switch {
	case flags&^(flagRetain|flagTopicIDMask) != 0:
		return decodeErr2(PacketPubwos, "Flags", ErrReservedBits)
	case typ != TopicTypePredefined && typ != TopicTypeName:
		return decodeErr2(PacketPubwos, "Flags", ErrInvalidTopicIDType)
	}
	alias, name, data, err := decodeTopic(PacketPubwos, typ, body[1:])
	if err != nil {
		return err
	}
	*m = Pubwos{Retain: flags&flagRetain != 0, TopicType: typ, TopicAlias: alias, TopicName: name, Data: rest(data)}
	return nil
}

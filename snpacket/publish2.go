package snpacket

// PublishV2 (MQTT-SN 2.0 PUBLISH, 0x03) carries an application message
// within a session, in either direction.
//
// The topic is a session alias or predefined alias in TopicAlias, or, for
// TopicTypeName, a full topic name in TopicName (REGISTER is optional in
// 2.0). PacketID is on the wire only at QoS 1 and 2: at QoS 0 it is not
// written and decodes as 0. There is no QoS -1: a client without a session
// uses [Pubwos].
type PublishV2 struct {
	// Dup marks a retransmitted QoS 2 PUBLISH; the draft wants 0 at QoS 0
	// and 1, but Decode keeps what arrives.
	Dup       bool
	QoS       QoS
	Retain    bool
	TopicType TopicType
	PacketID  uint16
	// TopicAlias is set for TopicTypeSession and TopicTypePredefined.
	TopicAlias uint16
	// TopicName is set for TopicTypeName, and nil otherwise.
	TopicName []byte
	// Data is the payload, running to the end of the datagram.
	Data []byte
}

// Type returns PacketPublish.
func (*PublishV2) Type() PacketType { return PacketPublish }

func (m *PublishV2) bodyLen() int {
	n := 1 + topicLen(m.TopicType, m.TopicName) + len(m.Data)
	if m.QoS > QoS0 {
		n += 2
	}
	return n
}

// Len returns the wire length.
func (m *PublishV2) Len() int { return frameLen(m.bodyLen()) }

// AppendBinary appends the wire form of m to b.
func (m *PublishV2) AppendBinary(b []byte) ([]byte, error) {
	if m.QoS < QoS0 || m.QoS > QoS2 {
		return b, encodeErr2(PacketPublish, "Flags", ErrInvalidQoS)
	}
	if m.TopicType != TopicTypeSession && m.TopicType != TopicTypePredefined { // aliases need no check
		if err := checkTopic(PacketPublish, m.TopicType, m.TopicName); err != nil {
			return b, err
		}
	}
	b, err := appendHeaderV2(b, PacketPublish, m.bodyLen())
	if err != nil {
		return b, err
	}
	flags := byte(m.QoS)<<flagQoSShift | byte(m.TopicType)
	if m.Dup {
		flags |= flagDup
	}
	if m.Retain {
		flags |= flagRetain
	}
	b = append(b, flags)
	if m.QoS > QoS0 {
		b = appendU16(b, m.PacketID)
	}
	b = appendTopic(b, m.TopicType, m.TopicAlias, m.TopicName)
	return append(b, m.Data...), nil
}

// Clone returns a deep copy of m.
func (m *PublishV2) Clone() MessageV2 {
	c := *m
	c.TopicName = clone(m.TopicName)
	c.Data = clone(m.Data)
	return &c
}

// publishV2Reserved are the Flags bits 3-2 that must be zero.
const publishV2Reserved = 0x0C

func (m *PublishV2) decode(body []byte) error {
	if len(body) == 0 {
		return decodeErr2(PacketPublish, "Flags", ErrShortBuffer)
	}
	flags := body[0]
	q, typ := QoS(flags&flagQoSMask>>flagQoSShift), TopicType(flags&flagTopicIDMask)
	switch {
	case flags&publishV2Reserved != 0:
		return decodeErr2(PacketPublish, "Flags", ErrReservedBits)
	case q > QoS2:
		return decodeErr2(PacketPublish, "Flags", ErrInvalidQoS)
	case !typ.valid():
		return decodeErr2(PacketPublish, "Flags", ErrInvalidTopicIDType)
	}
	body = body[1:]
	var id uint16
	if q > QoS0 {
		if len(body) < 2 {
			return decodeErr2(PacketPublish, "PacketId", ErrShortBuffer)
		}
		id = u16(body)
		body = body[2:]
	}
	var alias uint16
	var name, data []byte
	if typ != TopicTypeName && len(body) >= 2 { // by alias, the common case, inline
		alias, data = u16(body), body[2:]
	} else {
		var err error
		if alias, name, data, err = decodeTopic(PacketPublish, typ, body); err != nil {
			return err
		}
	}
	// Field by field, as in the 1.2 Publish: a composite literal costs a
	// bulk write barrier on the hot path.
	m.Dup = flags&flagDup != 0
	m.QoS = q
	m.Retain = flags&flagRetain != 0
	m.TopicType = typ
	m.PacketID = id
	m.TopicAlias = alias
	m.TopicName = name
	m.Data = rest(data)
	return nil
}

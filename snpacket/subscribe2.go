package snpacket

// RetainHandling says when a new subscription receives retained messages
// (MQTT 5 subscription option).
type RetainHandling uint8

// The retain handling values; 3 is a protocol error.
const (
	// RetainSend: send retained messages at subscribe time.
	RetainSend RetainHandling = 0
	// RetainSendIfNew: only if the subscription did not exist.
	RetainSendIfNew RetainHandling = 1
	// RetainDoNotSend: never.
	RetainDoNotSend RetainHandling = 2
)

// SUBSCRIBE Flags of MQTT-SN 2.0.
const (
	subNoLocal        = 0x80
	subRetainAsPub    = 0x10
	subRetainHandling = 0x0C
	subRetainShift    = 2
)

// SubscribeV2 (MQTT-SN 2.0 SUBSCRIBE, 0x08) subscribes to a topic filter
// (TopicTypeName; it may hold + and #), or to a session or predefined alias,
// with MQTT 5's subscription options.
type SubscribeV2 struct {
	// NoLocal: do not send this client its own publications.
	NoLocal bool
	// QoS is the requested maximum QoS, 0 to 2.
	QoS QoS
	// RetainAsPublished: keep the RETAIN flag of forwarded messages.
	RetainAsPublished bool
	RetainHandling    RetainHandling
	TopicType         TopicType
	PacketID          uint16
	// TopicAlias is set for TopicTypeSession and TopicTypePredefined.
	TopicAlias uint16
	// TopicFilter is set for TopicTypeName, and nil otherwise.
	TopicFilter []byte
}

// Type returns PacketSubscribe.
func (*SubscribeV2) Type() PacketType { return PacketSubscribe }

// Len returns the wire length.
func (m *SubscribeV2) Len() int { return frameLen(3 + filterLen(m.TopicType, m.TopicFilter)) }

// AppendBinary appends the wire form of m to b.
func (m *SubscribeV2) AppendBinary(b []byte) ([]byte, error) {
	const t = PacketSubscribe
	switch {
	case m.QoS < QoS0 || m.QoS > QoS2:
		return b, encodeErr2(t, "Flags", ErrInvalidQoS)
	case m.RetainHandling > RetainDoNotSend:
		return b, encodeErr2(t, "Flags", ErrInvalidField)
	}
	if err := checkFilter(t, m.TopicType, m.TopicFilter); err != nil {
		return b, err
	}
	b, err := appendHeaderV2(b, t, 3+filterLen(m.TopicType, m.TopicFilter))
	if err != nil {
		return b, err
	}
	flags := byte(m.QoS)<<flagQoSShift | byte(m.RetainHandling)<<subRetainShift | byte(m.TopicType)
	if m.NoLocal {
		flags |= subNoLocal
	}
	if m.RetainAsPublished {
		flags |= subRetainAsPub
	}
	b = appendU16(append(b, flags), m.PacketID)
	return appendFilter(b, m.TopicType, m.TopicAlias, m.TopicFilter), nil
}

// Clone returns a deep copy of m.
func (m *SubscribeV2) Clone() MessageV2 {
	c := *m
	c.TopicFilter = clone(m.TopicFilter)
	return &c
}

func (m *SubscribeV2) decode(body []byte) error {
	const t = PacketSubscribe
	if err := atLeast2(t, body, 3, "PacketId"); err != nil {
		return err
	}
	flags := body[0]
	q, rh, typ := QoS(flags&flagQoSMask>>flagQoSShift), RetainHandling(flags&subRetainHandling>>subRetainShift), TopicType(flags&flagTopicIDMask)
	switch {
	case q > QoS2:
		return decodeErr2(t, "Flags", ErrInvalidQoS)
	case rh > RetainDoNotSend:
		return decodeErr2(t, "Flags", ErrInvalidField)
	case !typ.valid():
		return decodeErr2(t, "Flags", ErrInvalidTopicIDType)
	}
	alias, filter, err := decodeFilter(t, typ, body[3:])
	if err != nil {
		return err
	}
	*m = SubscribeV2{
		NoLocal: flags&subNoLocal != 0, QoS: q, RetainAsPublished: flags&subRetainAsPub != 0,
		RetainHandling: rh, TopicType: typ, PacketID: u16(body[1:]), TopicAlias: alias, TopicFilter: filter,
	}
	return nil
}

package snpacket

// SubackV2 (MQTT-SN 2.0 SUBACK, 0x09) answers a SUBSCRIBE. The granted QoS
// travels in the Reason Code (GrantedQoS1, ...), not in the flags. A Topic
// Alias is returned for a non-wildcard filter subscribed by name; the topic
// type must be TopicTypePredefined when none is returned.
//
// The draft says both that the Reason Code is mandatory and that it is
// optional (digest C.8): AppendBinary always writes it, Decode accepts its
// absence as Success (granted QoS 0).
type SubackV2 struct {
	// TopicType is TopicTypeSession or TopicTypePredefined.
	TopicType     TopicType
	PacketID      uint16
	HasTopicAlias bool
	TopicAlias    uint16
	ReasonCode    ReasonCode
}

// Type returns PacketSuback.
func (*SubackV2) Type() PacketType { return PacketSuback }

// Len returns the wire length.
func (m *SubackV2) Len() int { return frameLen((*aliasAck)(m).bodyLen(true)) }

// AppendBinary appends the wire form of m to b.
func (m *SubackV2) AppendBinary(b []byte) ([]byte, error) {
	return (*aliasAck)(m).append(b, PacketSuback, true)
}

// Clone returns a copy of m.
func (m *SubackV2) Clone() MessageV2 { c := *m; return &c }

func (m *SubackV2) decode(body []byte) error { return (*aliasAck)(m).decode(PacketSuback, body) }

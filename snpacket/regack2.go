package snpacket

// RegackV2 (MQTT-SN 2.0 REGACK, 0x11) answers a REGISTER, in either
// direction. A client's REGACK never carries a Topic Alias. When a client
// registers a name that has a predefined alias, the server answers with
// TopicTypePredefined, that alias and TopicAliasExists. An absent Reason
// Code means Success, and AppendBinary leaves Success out.
type RegackV2 struct {
	// TopicType is TopicTypeSession or TopicTypePredefined.
	TopicType     TopicType
	PacketID      uint16
	HasTopicAlias bool
	TopicAlias    uint16
	ReasonCode    ReasonCode
}

// Type returns PacketRegack.
func (*RegackV2) Type() PacketType { return PacketRegack }

// Len returns the wire length.
func (m *RegackV2) Len() int { return frameLen((*aliasAck)(m).bodyLen(false)) }

// AppendBinary appends the wire form of m to b.
func (m *RegackV2) AppendBinary(b []byte) ([]byte, error) {
	return (*aliasAck)(m).append(b, PacketRegack, false)
}

// Clone returns a copy of m.
func (m *RegackV2) Clone() MessageV2 { c := *m; return &c }

func (m *RegackV2) decode(body []byte) error { return (*aliasAck)(m).decode(PacketRegack, body) }

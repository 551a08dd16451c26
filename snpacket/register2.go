package snpacket

// RegisterV2 (MQTT-SN 2.0 REGISTER, 0x10) asks for (from a client) or
// announces (from a server) a session topic alias for a topic name. The
// alias must be absent from a client and present from a server; that is
// the gateway's rule, the codec carries what HasTopicAlias says.
type RegisterV2 struct {
	PacketID      uint16
	HasTopicAlias bool
	TopicAlias    uint16
	// TopicName runs to the end of the packet; at least one octet.
	TopicName []byte
}

// Type returns PacketRegister.
func (*RegisterV2) Type() PacketType { return PacketRegister }

func (m *RegisterV2) bodyLen() int {
	if m.HasTopicAlias {
		return 5 + len(m.TopicName)
	}
	return 3 + len(m.TopicName)
}

// Len returns the wire length.
func (m *RegisterV2) Len() int { return frameLen(m.bodyLen()) }

// AppendBinary appends the wire form of m to b.
func (m *RegisterV2) AppendBinary(b []byte) ([]byte, error) {
	if len(m.TopicName) == 0 {
		return b, encodeErr2(PacketRegister, "TopicName", ErrEmptyField)
	}
	b, err := appendHeaderV2(b, PacketRegister, m.bodyLen())
	if err != nil {
		return b, err
	}
	var flags byte
	if m.HasTopicAlias {
		flags = 0x01
	}
	b = appendU16(append(b, flags), m.PacketID)
	if m.HasTopicAlias {
		b = appendU16(b, m.TopicAlias)
	}
	return append(b, m.TopicName...), nil
}

// Clone returns a deep copy of m.
func (m *RegisterV2) Clone() MessageV2 {
	c := *m
	c.TopicName = clone(m.TopicName)
	return &c
}

func (m *RegisterV2) decode(body []byte) error {
	const t = PacketRegister
	if err := atLeast2(t, body, 3, "PacketId"); err != nil {
		return err
	}
	if body[0]&^0x01 != 0 {
		return decodeErr2(t, "Flags", ErrReservedBits)
	}
	r := RegisterV2{PacketID: u16(body[1:]), HasTopicAlias: body[0]&0x01 != 0}
	p := body[3:]
	if r.HasTopicAlias {
		if len(p) < 2 {
			return decodeErr2(t, "TopicAlias", ErrShortBuffer)
		}
		r.TopicAlias, p = u16(p), p[2:]
	}
	if len(p) == 0 {
		return decodeErr2(t, "TopicName", ErrEmptyField)
	}
	r.TopicName = p
	*m = r
	return nil
}

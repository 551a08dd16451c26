package snpacket

// REGACK and SUBACK share one 2.0 layout: Flags (b1-0 topic type, session
// or predefined only; b2 topic alias present; b7-3 reserved), Packet
// Identifier, optional Topic Alias, optional Reason Code.

type aliasAck struct {
	TopicType     TopicType
	PacketID      uint16
	HasTopicAlias bool
	TopicAlias    uint16
	ReasonCode    ReasonCode
}

const aliasAckPresent = 0x04

func (a *aliasAck) bodyLen(alwaysRC bool) int {
	n := 3
	if a.HasTopicAlias {
		n += 2
	}
	if alwaysRC || a.ReasonCode != Success {
		n++
	}
	return n
}

func (a *aliasAck) append(b []byte, t PacketType, alwaysRC bool) ([]byte, error) {
	if a.TopicType != TopicTypeSession && a.TopicType != TopicTypePredefined {
		return b, encodeErr2(t, "Flags", ErrInvalidTopicIDType)
	}
	b, err := appendHeaderV2(b, t, a.bodyLen(alwaysRC))
	if err != nil {
		return b, err
	}
	flags := byte(a.TopicType)
	if a.HasTopicAlias {
		flags |= aliasAckPresent
	}
	b = appendU16(append(b, flags), a.PacketID)
	if a.HasTopicAlias {
		b = appendU16(b, a.TopicAlias)
	}
	if alwaysRC || a.ReasonCode != Success {
		b = append(b, byte(a.ReasonCode))
	}
	return b, nil
}

func (a *aliasAck) decode(t PacketType, body []byte) error {
	if err := atLeast2(t, body, 3, "PacketId"); err != nil {
		return err
	}
	flags := body[0]
	typ := TopicType(flags & flagTopicIDMask)
	switch {
	case flags&^(aliasAckPresent|flagTopicIDMask) != 0:
		return decodeErr2(t, "Flags", ErrReservedBits)
	case typ != TopicTypeSession && typ != TopicTypePredefined:
		return decodeErr2(t, "Flags", ErrInvalidTopicIDType)
	}
	r := aliasAck{TopicType: typ, PacketID: u16(body[1:]), HasTopicAlias: flags&aliasAckPresent != 0}
	p := body[3:]
	if r.HasTopicAlias {
		if len(p) < 2 {
			return decodeErr2(t, "TopicAlias", ErrShortBuffer)
		}
		r.TopicAlias, p = u16(p), p[2:]
	}
	switch len(p) {
	case 0:
	case 1:
		r.ReasonCode = ReasonCode(p[0])
	default:
		return decodeErr2(t, "", ErrTrailingBytes)
	}
	*a = r
	return nil
}

package snpacket

// SleepReq (MQTT-SN 2.0 SLEEPREQ, 0x13) asks the server to treat the client
// as asleep for SleepDuration seconds. It replaces 1.2's DISCONNECT with a
// Duration.
type SleepReq struct {
	// RetainTopicAliases keeps the session topic aliases while asleep; when
	// false the server drops them (predefined aliases always survive).
	RetainTopicAliases bool
	PacketID           uint16
	// SleepDuration is in seconds; the draft requires it to be above 0.
	SleepDuration uint32
}

// Type returns PacketSleepReq.
func (*SleepReq) Type() PacketType { return PacketSleepReq }

// Len returns the wire length.
func (*SleepReq) Len() int { return frameLen(7) }

// AppendBinary appends the wire form of m to b.
func (m *SleepReq) AppendBinary(b []byte) ([]byte, error) {
	if m.SleepDuration == 0 {
		return b, encodeErr2(PacketSleepReq, "SleepDuration", ErrInvalidField)
	}
	b, err := appendHeaderV2(b, PacketSleepReq, 7)
	if err != nil {
		return b, err
	}
	var flags byte
	if m.RetainTopicAliases {
		flags = 0x01
	}
	return appendU32(appendU16(append(b, flags), m.PacketID), m.SleepDuration), nil
}

// Clone returns a copy of m.
func (m *SleepReq) Clone() MessageV2 { c := *m; return &c }

func (m *SleepReq) decode(body []byte) error {
	const t = PacketSleepReq
	if err := exact2(t, body, 7, "SleepDuration"); err != nil {
		return err
	}
	if body[0]&^0x01 != 0 {
		return decodeErr2(t, "Flags", ErrReservedBits)
	}
	d := u32(body[3:])
	if d == 0 {
		return decodeErr2(t, "SleepDuration", ErrInvalidField)
	}
	*m = SleepReq{RetainTopicAliases: body[0]&0x01 != 0, PacketID: u16(body[1:]), SleepDuration: d}
	return nil
}

package snpacket

// SleepResp (MQTT-SN 2.0 SLEEPRESP, 0x14) answers a SLEEPREQ. The server
// may impose its own Sleep Duration only if the CONNECT allowed
// server-suggested values. An absent Reason Code means Success, and
// AppendBinary leaves Success out. Field order follows the draft's text; its
// diagram's byte numbers are off by one (digest C.8).
type SleepResp struct {
	PacketID         uint16
	HasSleepDuration bool
	// SleepDuration, when present, is in seconds and above 0.
	SleepDuration uint32
	ReasonCode    ReasonCode
}

// Type returns PacketSleepResp.
func (*SleepResp) Type() PacketType { return PacketSleepResp }

func (m *SleepResp) bodyLen() int {
	n := 3
	if m.HasSleepDuration {
		n += 4
	}
	if m.ReasonCode != Success {
		n++
	}
	return n
}

// Len returns the wire length.
func (m *SleepResp) Len() int { return frameLen(m.bodyLen()) }

// AppendBinary appends the wire form of m to b.
func (m *SleepResp) AppendBinary(b []byte) ([]byte, error) {
	if m.HasSleepDuration && m.SleepDuration == 0 {
		return b, encodeErr2(PacketSleepResp, "SleepDuration", ErrInvalidField)
	}
	b, err := appendHeaderV2(b, PacketSleepResp, m.bodyLen())
	if err != nil {
		return b, err
	}
	var flags byte
	if m.HasSleepDuration {
		flags = 0x01
	}
	b = appendU16(append(b, flags), m.PacketID)
	if m.HasSleepDuration {
		b = appendU32(b, m.SleepDuration)
	}
	if m.ReasonCode != Success {
		b = append(b, byte(m.ReasonCode))
	}
	return b, nil
}

// Clone returns a copy of m.
func (m *SleepResp) Clone() MessageV2 { c := *m; return &c }

func (m *SleepResp) decode(body []byte) error {
	const t = PacketSleepResp
	if err := atLeast2(t, body, 3, "PacketId"); err != nil {
		return err
	}
	if body[0]&^0x01 != 0 {
		return decodeErr2(t, "Flags", ErrReservedBits)
	}
	r := SleepResp{PacketID: u16(body[1:]), HasSleepDuration: body[0]&0x01 != 0}
	p := body[3:]
	if r.HasSleepDuration {
		if len(p) < 4 {
			return decodeErr2(t, "SleepDuration", ErrShortBuffer)
		}
		if r.SleepDuration, p = u32(p), p[4:]; r.SleepDuration == 0 {
			return decodeErr2(t, "SleepDuration", ErrInvalidField)
		}
	}
	switch len(p) {
	case 0:
	case 1:
		r.ReasonCode = ReasonCode(p[0])
	default:
		return decodeErr2(t, "", ErrTrailingBytes)
	}
	*m = r
	return nil
}

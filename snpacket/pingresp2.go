package snpacket

// RemainingUnknown is the PINGRESP "messages remaining" value meaning "some,
// number unknown". The draft's sleeping-client text once said 0xFFFF; the
// field is one octet (digest C.8, fixed by TC PR #166).
const RemainingUnknown = 0xFF

// PingRespV2 (MQTT-SN 2.0 PINGRESP, 0x0D) answers a PINGREQ. After an awake
// flush it may say how many messages are still queued.
type PingRespV2 struct {
	PacketID uint16
	// HasRemaining says whether the Remaining octet is present.
	HasRemaining bool
	// Remaining is 0 (none), 1-254, or RemainingUnknown.
	Remaining uint8
}

// Type returns PacketPingResp.
func (*PingRespV2) Type() PacketType { return PacketPingResp }

func (m *PingRespV2) bodyLen() int {
	if m.HasRemaining {
		return 3
	}
	return 2
}

// Len returns the wire length.
func (m *PingRespV2) Len() int { return frameLen(m.bodyLen()) }

// AppendBinary appends the wire form of m to b.
func (m *PingRespV2) AppendBinary(b []byte) ([]byte, error) {
	b, err := appendHeaderV2(b, PacketPingResp, m.bodyLen())
	if err != nil {
		return b, err
	}
	b = appendU16(b, m.PacketID)
	if m.HasRemaining {
		b = append(b, m.Remaining)
	}
	return b, nil
}

// Clone returns a copy of m.
func (m *PingRespV2) Clone() MessageV2 { c := *m; return &c }

func (m *PingRespV2) decode(body []byte) error {
	switch len(body) {
	case 0, 1:
		return decodeErr2(PacketPingResp, "PacketId", ErrShortBuffer)
	case 2:
		*m = PingRespV2{PacketID: u16(body)}
	case 3:
		*m = PingRespV2{PacketID: u16(body), HasRemaining: true, Remaining: body[2]}
	default:
		return decodeErr2(PacketPingResp, "", ErrTrailingBytes)
	}
	return nil
}

package snpacket

// AdvertiseV2 (MQTT-SN 2.0 ADVERTISE, 0x16) is a gateway's periodic
// announcement. Its fields are 1.2's; only the packet type moved (0x00).
type AdvertiseV2 struct {
	GatewayID uint8
	// Duration is the time to the next ADVERTISE, in seconds.
	Duration uint16
}

// Type returns PacketAdvertise.
func (*AdvertiseV2) Type() PacketType { return PacketAdvertise }

// Len returns the wire length.
func (*AdvertiseV2) Len() int { return frameLen(3) }

// AppendBinary appends the wire form of m to b.
func (m *AdvertiseV2) AppendBinary(b []byte) ([]byte, error) {
	b, err := appendHeaderV2(b, PacketAdvertise, 3)
	if err != nil {
		return b, err
	}
	return appendU16(append(b, m.GatewayID), m.Duration), nil
}

// Clone returns a copy of m.
func (m *AdvertiseV2) Clone() MessageV2 { c := *m; return &c }

func (m *AdvertiseV2) decode(body []byte) error {
	if err := exact2(PacketAdvertise, body, 3, "Duration"); err != nil {
		return err
	}
	*m = AdvertiseV2{GatewayID: body[0], Duration: u16(body[1:])}
	return nil
}

package snpacket

// GWInfoV2 (MQTT-SN 2.0 GWINFO, 0x18) answers a SEARCHGW. Its fields are
// 1.2's; only the packet type moved (0x02). GatewayAddr is present only
// when a client answers on a server's behalf, and is opaque.
type GWInfoV2 struct {
	GatewayID   uint8
	GatewayAddr []byte
}

// Type returns PacketGWInfo.
func (*GWInfoV2) Type() PacketType { return PacketGWInfo }

// Len returns the wire length.
func (m *GWInfoV2) Len() int { return frameLen(1 + len(m.GatewayAddr)) }

// AppendBinary appends the wire form of m to b.
func (m *GWInfoV2) AppendBinary(b []byte) ([]byte, error) {
	b, err := appendHeaderV2(b, PacketGWInfo, 1+len(m.GatewayAddr))
	if err != nil {
		return b, err
	}
	return append(append(b, m.GatewayID), m.GatewayAddr...), nil
}

// Clone returns a deep copy of m.
func (m *GWInfoV2) Clone() MessageV2 {
	c := *m
	c.GatewayAddr = clone(m.GatewayAddr)
	return &c
}

func (m *GWInfoV2) decode(body []byte) error {
	if err := atLeast2(PacketGWInfo, body, 1, "GwId"); err != nil {
		return err
	}
	*m = GWInfoV2{GatewayID: body[0], GatewayAddr: rest(body[1:])}
	return nil
}

package snpacket

// PingReqV2 (MQTT-SN 2.0 PINGREQ, 0x0C) is a keep-alive from the client,
// or, from an asleep client, the request to deliver what is buffered. Unlike
// 1.2 it carries no ClientId: the virtual connection identifies the client.
type PingReqV2 struct {
	PacketID uint16
}

// Type returns PacketPingReq.
func (*PingReqV2) Type() PacketType { return PacketPingReq }

// Len returns the wire length.
func (*PingReqV2) Len() int { return frameLen(2) }

// AppendBinary appends the wire form of m to b.
func (m *PingReqV2) AppendBinary(b []byte) ([]byte, error) {
	b, err := appendHeaderV2(b, PacketPingReq, 2)
	if err != nil {
		return b, err
	}
	return appendU16(b, m.PacketID), nil
}

// Clone returns a copy of m.
func (m *PingReqV2) Clone() MessageV2 { c := *m; return &c }

func (m *PingReqV2) decode(body []byte) error {
	if err := exact2(PacketPingReq, body, 2, "PacketId"); err != nil {
		return err
	}
	m.PacketID = u16(body)
	return nil
}

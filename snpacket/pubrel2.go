package snpacket

// PubrelV2 (MQTT-SN 2.0 PUBREL, 0x06) answers a PUBREC. Unlike 1.2 it carries no
// topic id, only the Packet Identifier and an optional Reason Code: an
// absent one means Success, and AppendBinary leaves Success out.
type PubrelV2 struct {
	PacketID   uint16
	ReasonCode ReasonCode
}

// Type returns PacketPubrel.
func (*PubrelV2) Type() PacketType { return PacketPubrel }

// Len returns the wire length.
func (m *PubrelV2) Len() int { return idReasonLen(m.ReasonCode) }

// AppendBinary appends the wire form of m to b.
func (m *PubrelV2) AppendBinary(b []byte) ([]byte, error) {
	return appendIDReason(b, PacketPubrel, m.PacketID, m.ReasonCode)
}

// Clone returns a copy of m.
func (m *PubrelV2) Clone() MessageV2 { c := *m; return &c }

func (m *PubrelV2) decode(body []byte) (err error) {
	m.PacketID, m.ReasonCode, err = decodeIDReason(PacketPubrel, body)
	return err
}

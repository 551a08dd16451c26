package snpacket

// PubackV2 (MQTT-SN 2.0 PUBACK, 0x04) acknowledges a QoS 1 PUBLISH. Unlike 1.2 it carries no
// topic id, only the Packet Identifier and an optional Reason Code: an
// absent one means Success, and AppendBinary leaves Success out.
type PubackV2 struct {
	PacketID   uint16
	ReasonCode ReasonCode
}

// Type returns PacketPuback.
func (*PubackV2) Type() PacketType { return PacketPuback }

// Len returns the wire length.
func (m *PubackV2) Len() int { return idReasonLen(m.ReasonCode) }

// AppendBinary appends the wire form of m to b.
func (m *PubackV2) AppendBinary(b []byte) ([]byte, error) {
	return appendIDReason(b, PacketPuback, m.PacketID, m.ReasonCode)
}

// Clone returns a copy of m.
func (m *PubackV2) Clone() MessageV2 { c := *m; return &c }

func (m *PubackV2) decode(body []byte) (err error) {
	m.PacketID, m.ReasonCode, err = decodeIDReason(PacketPuback, body)
	return err
}

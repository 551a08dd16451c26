package snpacket

// PubrecV2 (MQTT-SN 2.0 PUBREC, 0x05) is the first answer to a QoS 2 PUBLISH. Unlike 1.2 it carries no
// topic id, only the Packet Identifier and an optional Reason Code: an
// absent one means Success, and AppendBinary leaves Success out.
type PubrecV2 struct {
	PacketID   uint16
	ReasonCode ReasonCode
}

// Type returns PacketPubrec.
func (*PubrecV2) Type() PacketType { return PacketPubrec }

// Len returns the wire length.
func (m *PubrecV2) Len() int { return idReasonLen(m.ReasonCode) }

// AppendBinary appends the wire form of m to b.
func (m *PubrecV2) AppendBinary(b []byte) ([]byte, error) {
	return appendIDReason(b, PacketPubrec, m.PacketID, m.ReasonCode)
}

// Clone returns a copy of m.
func (m *PubrecV2) Clone() MessageV2 { c := *m; return &c }

func (m *PubrecV2) decode(body []byte) (err error) {
	m.PacketID, m.ReasonCode, err = decodeIDReason(PacketPubrec, body)
	return err
}

package snpacket

// PubcompV2 (MQTT-SN 2.0 PUBCOMP, 0x07) answers a PUBREL. Unlike 1.2 it carries no
// topic id, only the Packet Identifier and an optional Reason Code: an
// absent one means Success, and AppendBinary leaves Success out.
type PubcompV2 struct {
	PacketID   uint16
	ReasonCode ReasonCode
}

// Type returns PacketPubcomp.
func (*PubcompV2) Type() PacketType { return PacketPubcomp }

// Len returns the wire length.
func (m *PubcompV2) Len() int { return idReasonLen(m.ReasonCode) }

// AppendBinary appends the wire form of m to b.
func (m *PubcompV2) AppendBinary(b []byte) ([]byte, error) {
	return appendIDReason(b, PacketPubcomp, m.PacketID, m.ReasonCode)
}

// Clone returns a copy of m.
func (m *PubcompV2) Clone() MessageV2 { c := *m; return &c }

func (m *PubcompV2) decode(body []byte) (err error) {
	m.PacketID, m.ReasonCode, err = decodeIDReason(PacketPubcomp, body)
	return err
}

package snpacket

// UnsubackV2 (MQTT-SN 2.0 UNSUBACK, 0x0B) answers an UNSUBSCRIBE. Unlike 1.2 it carries no
// topic id, only the Packet Identifier and an optional Reason Code: an
// absent one means Success, and AppendBinary leaves Success out.
type UnsubackV2 struct {
	PacketID   uint16
	ReasonCode ReasonCode
}

// Type returns PacketUnsuback.
func (*UnsubackV2) Type() PacketType { return PacketUnsuback }

// Len returns the wire length.
func (m *UnsubackV2) Len() int { return idReasonLen(m.ReasonCode) }

// AppendBinary appends the wire form of m to b.
func (m *UnsubackV2) AppendBinary(b []byte) ([]byte, error) {
	return appendIDReason(b, PacketUnsuback, m.PacketID, m.ReasonCode)
}

// Clone returns a copy of m.
func (m *UnsubackV2) Clone() MessageV2 { c := *m; return &c }

func (m *UnsubackV2) decode(body []byte) (err error) {
	m.PacketID, m.ReasonCode, err = decodeIDReason(PacketUnsuback, body)
	return err
}

package snpacket

// SearchGWV2 (MQTT-SN 2.0 SEARCHGW, 0x17) is broadcast by a client looking
// for a server. 2.0 dropped 1.2's Radius octet: what follows the header is
// optional, opaque "additional network information" (a ZigBee radius, for
// example).
type SearchGWV2 struct {
	// Info runs to the end of the packet; nil when absent.
	Info []byte
}

// Type returns PacketSearchGW.
func (*SearchGWV2) Type() PacketType { return PacketSearchGW }

// Len returns the wire length.
func (m *SearchGWV2) Len() int { return frameLen(len(m.Info)) }

// AppendBinary appends the wire form of m to b.
func (m *SearchGWV2) AppendBinary(b []byte) ([]byte, error) {
	b, err := appendHeaderV2(b, PacketSearchGW, len(m.Info))
	if err != nil {
		return b, err
	}
	return append(b, m.Info...), nil
}

// Clone returns a deep copy of m.
func (m *SearchGWV2) Clone() MessageV2 { return &SearchGWV2{Info: clone(m.Info)} }

func (m *SearchGWV2) decode(body []byte) error {
	m.Info = rest(body)
	return nil
}

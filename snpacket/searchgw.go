package snpacket

// SearchGW (SEARCHGW, 0x01) is broadcast by a client looking for a gateway.
type SearchGW struct {
	// Radius is the broadcast radius in hops; 0 means the whole network.
	Radius uint8
}

// Type returns TypeSearchGW.
func (*SearchGW) Type() MsgType { return TypeSearchGW }

// Len returns the wire length.
func (*SearchGW) Len() int { return frameLen(1) }

// AppendBinary appends the wire form of m to b.
func (m *SearchGW) AppendBinary(b []byte) ([]byte, error) {
	b, err := appendHeader(b, TypeSearchGW, 1)
	if err != nil {
		return b, err
	}
	return append(b, m.Radius), nil
}

// Clone returns a copy of m.
func (m *SearchGW) Clone() Message { c := *m; return &c }

func (m *SearchGW) decode(body []byte) error {
	if err := exact(TypeSearchGW, body, 1, "Radius"); err != nil {
		return err
	}
	m.Radius = body[0]
	return nil
}

package snpacket

// Advertise (ADVERTISE, 0x00) is broadcast by a gateway to announce itself.
type Advertise struct {
	GatewayID uint8
	// Duration is the number of seconds until the next ADVERTISE.
	Duration uint16
}

// Type returns TypeAdvertise.
func (*Advertise) Type() MsgType { return TypeAdvertise }

// Len returns the wire length.
func (*Advertise) Len() int { return frameLen(3) }

// AppendBinary appends the wire form of m to b.
func (m *Advertise) AppendBinary(b []byte) ([]byte, error) {
	b, err := appendHeader(b, TypeAdvertise, 3)
	if err != nil {
		return b, err
	}
	return appendU16(append(b, m.GatewayID), m.Duration), nil
}

// Clone returns a copy of m.
func (m *Advertise) Clone() Message { c := *m; return &c }

func (m *Advertise) decode(body []byte) error {
	if err := exact(TypeAdvertise, body, 3, "GwId"); err != nil {
		return err
	}
	m.GatewayID, m.Duration = body[0], u16(body[1:])
	return nil
}

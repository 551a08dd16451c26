package snpacket

// GWInfo (GWINFO, 0x02) answers a SEARCHGW. A gateway sends only its id; a
// client answering on a gateway's behalf adds that gateway's address.
type GWInfo struct {
	GatewayID uint8
	// GatewayAddr is the gateway's network address, opaque and running to the
	// end of the message; nil when a gateway sends the GWINFO itself.
	GatewayAddr []byte
}

// Type returns TypeGWInfo.
func (*GWInfo) Type() MsgType { return TypeGWInfo }

// Len returns the wire length.
func (m *GWInfo) Len() int { return frameLen(1 + len(m.GatewayAddr)) }

// AppendBinary appends the wire form of m to b.
func (m *GWInfo) AppendBinary(b []byte) ([]byte, error) {
	b, err := appendHeader(b, TypeGWInfo, 1+len(m.GatewayAddr))
	if err != nil {
		return b, err
	}
	return append(append(b, m.GatewayID), m.GatewayAddr...), nil
}

// Clone returns a deep copy of m.
func (m *GWInfo) Clone() Message {
	c := *m
	c.GatewayAddr = clone(m.GatewayAddr)
	return &c
}

func (m *GWInfo) decode(body []byte) error {
	if err := atLeast(TypeGWInfo, body, 1, "GwId"); err != nil {
		return err
	}
	m.GatewayID, m.GatewayAddr = body[0], rest(body[1:])
	return nil
}

package snpacket

// Auth (MQTT-SN 2.0 AUTH, 0x0F) carries one step of an enhanced
// authentication exchange, in either direction. Unlike the method and data
// inside CONNECT and CONNACK, the data here has no length field: it runs to
// the end of the packet.
type Auth struct {
	PacketID uint16
	// ReasonCode is ContinueAuthentication, ReAuthenticate (from the client)
	// or Success (server, after re-authentication).
	ReasonCode ReasonCode
	// Method is the authentication method, such as "MQTT-BASIC"; at most
	// 255 octets.
	Method []byte
	Data   []byte
}

// Type returns PacketAuth.
func (*Auth) Type() PacketType { return PacketAuth }

// Len returns the wire length.
func (m *Auth) Len() int { return frameLen(4 + len(m.Method) + len(m.Data)) }

// AppendBinary appends the wire form of m to b.
func (m *Auth) AppendBinary(b []byte) ([]byte, error) {
	if len(m.Method) > 255 {
		return b, encodeErr2(PacketAuth, "AuthMethod", ErrTooLong)
	}
	b, err := appendHeaderV2(b, PacketAuth, 4+len(m.Method)+len(m.Data))
	if err != nil {
		return b, err
	}
	b = append(appendU16(b, m.PacketID), byte(m.ReasonCode), byte(len(m.Method)))
	return append(append(b, m.Method...), m.Data...), nil
}

// Clone returns a deep copy of m.
func (m *Auth) Clone() MessageV2 {
	c := *m
	c.Method = clone(m.Method)
	c.Data = clone(m.Data)
	return &c
}

func (m *Auth) decode(body []byte) error {
	if err := atLeast2(PacketAuth, body, 4, "AuthMethodLength"); err != nil {
		return err
	}
	n := int(body[3])
	if len(body) < 4+n {
		return decodeErr2(PacketAuth, "AuthMethod", ErrShortBuffer)
	}
	*m = Auth{PacketID: u16(body), ReasonCode: ReasonCode(body[2]), Method: rest(body[4 : 4+n]), Data: rest(body[4+n:])}
	return nil
}

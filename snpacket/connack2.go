package snpacket

// CONNACK Flags (CONNACK [2]) of MQTT-SN 2.0.
const (
	connackSessionPresent = 0x01
	connackSessionExpiry  = 0x02
	connackKeepAlive      = 0x04
	connackAuth           = 0x08
	connackReserved       = 0xF0
)

// ConnackV2 (MQTT-SN 2.0 CONNACK, 0x02) answers a CONNECT (or the last
// AUTH of an authentication exchange). Optional fields are present exactly
// when their Has... or boolean flag is set.
type ConnackV2 struct {
	SessionPresent bool
	// PacketID echoes the CONNECT's or the last AUTH's.
	PacketID   uint16
	ReasonCode ReasonCode

	HasSessionExpiry bool
	// SessionExpiry overrides the client's, in seconds.
	SessionExpiry uint32

	HasServerKeepAlive bool
	// ServerKeepAlive overrides the client's Keep Alive, in seconds.
	ServerKeepAlive uint16

	Auth       bool
	AuthMethod []byte
	AuthData   []byte

	// AssignedClientID is set when the CONNECT had no ClientId.
	AssignedClientID []byte
}

// Type returns PacketConnack.
func (*ConnackV2) Type() PacketType { return PacketConnack }

func (m *ConnackV2) bodyLen() int {
	n := 4 + len(m.AssignedClientID)
	if m.HasSessionExpiry {
		n += 4
	}
	if m.HasServerKeepAlive {
		n += 2
	}
	if m.Auth {
		n += 1 + len(m.AuthMethod) + 2 + len(m.AuthData)
	}
	return n
}

// Len returns the wire length.
func (m *ConnackV2) Len() int { return frameLen(m.bodyLen()) }

// AppendBinary appends the wire form of m to b.
func (m *ConnackV2) AppendBinary(b []byte) ([]byte, error) {
	switch {
	case m.Auth && len(m.AuthMethod) > 255:
		return b, encodeErr2(PacketConnack, "AuthMethod", ErrTooLong)
	case m.Auth && len(m.AuthData) > 0xFFFF:
		return b, encodeErr2(PacketConnack, "AuthData", ErrTooLong)
	}
	b, err := appendHeaderV2(b, PacketConnack, m.bodyLen())
	if err != nil {
		return b, err
	}
	var flags byte
	if m.SessionPresent {
		flags |= connackSessionPresent
	}
	if m.HasSessionExpiry {
		flags |= connackSessionExpiry
	}
	if m.HasServerKeepAlive {
		flags |= connackKeepAlive
	}
	if m.Auth {
		flags |= connackAuth
	}
	b = append(appendU16(append(b, flags), m.PacketID), byte(m.ReasonCode))
	if m.HasSessionExpiry {
		b = appendU32(b, m.SessionExpiry)
	}
	if m.HasServerKeepAlive {
		b = appendU16(b, m.ServerKeepAlive)
	}
	if m.Auth {
		b = appendAuthFields(b, m.AuthMethod, m.AuthData)
	}
	return append(b, m.AssignedClientID...), nil
}

// Clone returns a deep copy of m.
func (m *ConnackV2) Clone() MessageV2 {
	c := *m
	c.AuthMethod = clone(m.AuthMethod)
	c.AuthData = clone(m.AuthData)
	c.AssignedClientID = clone(m.AssignedClientID)
	return &c
}

func (m *ConnackV2) decode(body []byte) error {
	const t = PacketConnack
	if err := atLeast2(t, body, 4, "ReasonCode"); err != nil {
		return err
	}
	flags := body[0]
	if flags&connackReserved != 0 {
		return decodeErr2(t, "Flags", ErrReservedBits)
	}
	c := ConnackV2{
		SessionPresent:     flags&connackSessionPresent != 0,
		HasSessionExpiry:   flags&connackSessionExpiry != 0,
		HasServerKeepAlive: flags&connackKeepAlive != 0,
		Auth:               flags&connackAuth != 0,
		PacketID:           u16(body[1:]),
		ReasonCode:         ReasonCode(body[3]),
	}
	p := body[4:]
	if c.HasSessionExpiry {
		if len(p) < 4 {
			return decodeErr2(t, "SessionExpiryInterval", ErrShortBuffer)
		}
		c.SessionExpiry, p = u32(p), p[4:]
	}
	if c.HasServerKeepAlive {
		if len(p) < 2 {
			return decodeErr2(t, "ServerKeepAlive", ErrShortBuffer)
		}
		c.ServerKeepAlive, p = u16(p), p[2:]
	}
	if c.Auth {
		var err error
		if c.AuthMethod, c.AuthData, p, err = decodeAuthFields(t, p); err != nil {
			return err
		}
	}
	c.AssignedClientID = rest(p)
	*m = c
	return nil
}

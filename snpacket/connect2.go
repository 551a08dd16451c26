package snpacket

// ProtocolVersion2 is the Protocol Version an MQTT-SN 2.0 CONNECT carries.
const ProtocolVersion2 = 0x02

// Connect Flags (CONNECT [2]) and Will Flags (CONNECT [3]) of MQTT-SN 2.0.
const (
	connCleanStart      = 0x01
	connWill            = 0x02
	connAuth            = 0x04
	connSessionExpiry   = 0x08
	connDefaultAwake    = 0x10
	connAllowAddrChange = 0x20
	connAllowServer     = 0x40
	connReserved        = 0x80

	willTopicTypeMask = 0x03
	willQoSShift      = 2
	willQoSMask       = 0x0C
	willRetain        = 0x10
	willReserved      = 0xE0
)

// ConnectV2 (MQTT-SN 2.0 CONNECT, 0x01) opens a virtual connection. Decode
// rejects a Protocol Version other than [ProtocolVersion2] with
// ErrUnsupportedProtocol, so that a gateway can answer CONNACK 0x84.
//
// Optional fields are present on the wire exactly when their Has... or
// boolean flag is set. PacketID is decoded as it arrives, 0 included
// (Eclipse Paho's 2.0 tools send 0; see docs/mqttsn-2.md).
type ConnectV2 struct {
	// CleanStart discards any existing session.
	CleanStart bool
	// AllowAddressChange lets the client rebind its virtual connection
	// from a new address with a Connection Encapsulation.
	AllowAddressChange bool
	// AllowServerValues lets the server override Session Expiry, Keep
	// Alive and Sleep Duration.
	AllowServerValues bool
	PacketID          uint16
	// KeepAlive is in seconds, 1 to 65535: the draft forbids 0.
	KeepAlive uint16
	// MaxPacketSize is the largest packet the client accepts: 0 means no
	// limit; 1 to 9 are invalid (docs/mqttsn-2.md).
	MaxPacketSize uint16

	HasDefaultAwake bool
	// DefaultAwakeMessages bounds the messages sent per awake period.
	DefaultAwakeMessages uint8

	HasSessionExpiry bool
	// SessionExpiry is in seconds; 0xFFFFFFFF never expires. Absent means 0.
	SessionExpiry uint32

	// Will says that the will fields below are present.
	Will          bool
	WillQoS       QoS
	WillRetain    bool
	WillTopicType TopicType
	// WillTopicAlias is set for a will topic given by alias.
	WillTopicAlias uint16
	// WillTopic is set for TopicTypeName, and nil otherwise.
	WillTopic   []byte
	WillPayload []byte

	// Auth says that AuthMethod and AuthData are present.
	Auth       bool
	AuthMethod []byte
	AuthData   []byte

	// ClientID may be empty: the server then assigns one in CONNACK.
	ClientID []byte
}

// Type returns PacketConnect.
func (*ConnectV2) Type() PacketType { return PacketConnect }

func (m *ConnectV2) bodyLen() int {
	n := 1 + 2 + 1 + 2 + 2 + len(m.ClientID)
	if m.Will {
		n += 1 + topicLen(m.WillTopicType, m.WillTopic) + 2 + len(m.WillPayload)
	}
	if m.HasDefaultAwake {
		n++
	}
	if m.HasSessionExpiry {
		n += 4
	}
	if m.Auth {
		n += 1 + len(m.AuthMethod) + 2 + len(m.AuthData)
	}
	return n
}

// Len returns the wire length.
func (m *ConnectV2) Len() int { return frameLen(m.bodyLen()) }

// AppendBinary appends the wire form of m to b.
func (m *ConnectV2) AppendBinary(b []byte) ([]byte, error) {
	const t = PacketConnect
	switch {
	case m.KeepAlive == 0:
		return b, encodeErr2(t, "KeepAlive", ErrInvalidField)
	case m.MaxPacketSize > 0 && m.MaxPacketSize < 10:
		return b, encodeErr2(t, "MaxPacketSize", ErrInvalidField)
	case m.Will && (m.WillQoS < QoS0 || m.WillQoS > QoS2):
		return b, encodeErr2(t, "WillFlags", ErrInvalidQoS)
	case m.Auth && len(m.AuthMethod) > 255:
		return b, encodeErr2(t, "AuthMethod", ErrTooLong)
	case m.Auth && len(m.AuthData) > 0xFFFF:
		return b, encodeErr2(t, "AuthData", ErrTooLong)
	case m.Will && len(m.WillPayload) > 0xFFFF:
		return b, encodeErr2(t, "WillPayload", ErrTooLong)
	}
	if m.Will {
		if err := checkTopic(t, m.WillTopicType, m.WillTopic); err != nil {
			return b, err
		}
	}
	b, err := appendHeaderV2(b, t, m.bodyLen())
	if err != nil {
		return b, err
	}
	var flags byte
	for _, f := range [...]struct {
		set bool
		bit byte
	}{
		{m.CleanStart, connCleanStart}, {m.Will, connWill}, {m.Auth, connAuth},
		{m.HasSessionExpiry, connSessionExpiry}, {m.HasDefaultAwake, connDefaultAwake},
		{m.AllowAddressChange, connAllowAddrChange}, {m.AllowServerValues, connAllowServer},
	} {
		if f.set {
			flags |= f.bit
		}
	}
	b = append(b, flags)
	if m.Will {
		wf := byte(m.WillTopicType) | byte(m.WillQoS)<<willQoSShift
		if m.WillRetain {
			wf |= willRetain
		}
		b = append(b, wf)
	}
	b = appendU16(append(appendU16(b, m.PacketID), ProtocolVersion2), m.KeepAlive)
	b = appendU16(b, m.MaxPacketSize)
	if m.HasDefaultAwake {
		b = append(b, m.DefaultAwakeMessages)
	}
	if m.HasSessionExpiry {
		b = appendU32(b, m.SessionExpiry)
	}
	if m.Will {
		b = appendTopic(b, m.WillTopicType, m.WillTopicAlias, m.WillTopic)
		b = append(appendU16(b, uint16(len(m.WillPayload))), m.WillPayload...)
	}
	if m.Auth {
		b = appendAuthFields(b, m.AuthMethod, m.AuthData)
	}
	return append(b, m.ClientID...), nil
}

// Clone returns a deep copy of m.
func (m *ConnectV2) Clone() MessageV2 {
	c := *m
	c.WillTopic = clone(m.WillTopic)
	c.WillPayload = clone(m.WillPayload)
	c.AuthMethod = clone(m.AuthMethod)
	c.AuthData = clone(m.AuthData)
	c.ClientID = clone(m.ClientID)
	return &c
}

func (m *ConnectV2) decode(body []byte) error {
	const t = PacketConnect
	if len(body) == 0 {
		return decodeErr2(t, "Flags", ErrShortBuffer)
	}
	flags := body[0]
	if flags&connReserved != 0 {
		return decodeErr2(t, "Flags", ErrReservedBits)
	}
	c := ConnectV2{
		CleanStart:         flags&connCleanStart != 0,
		Will:               flags&connWill != 0,
		Auth:               flags&connAuth != 0,
		HasSessionExpiry:   flags&connSessionExpiry != 0,
		HasDefaultAwake:    flags&connDefaultAwake != 0,
		AllowAddressChange: flags&connAllowAddrChange != 0,
		AllowServerValues:  flags&connAllowServer != 0,
	}
	p := body[1:]
	if c.Will {
		if len(p) == 0 {
			return decodeErr2(t, "WillFlags", ErrShortBuffer)
		}
		wf := p[0]
		c.WillTopicType = TopicType(wf & willTopicTypeMask)
		c.WillQoS = QoS(wf & willQoSMask >> willQoSShift)
		c.WillRetain = wf&willRetain != 0
		switch {
		case wf&willReserved != 0:
			return decodeErr2(t, "WillFlags", ErrReservedBits)
		case c.WillQoS > QoS2:
			return decodeErr2(t, "WillFlags", ErrInvalidQoS)
		case !c.WillTopicType.valid():
			return decodeErr2(t, "WillFlags", ErrInvalidTopicIDType)
		}
		p = p[1:]
	}
	if len(p) < 7 {
		return decodeErr2(t, "MaxPacketSize", ErrShortBuffer)
	}
	c.PacketID = u16(p)
	if p[2] != ProtocolVersion2 {
		return decodeErr2(t, "ProtocolVersion", ErrUnsupportedProtocol)
	}
	c.KeepAlive, c.MaxPacketSize = u16(p[3:]), u16(p[5:])
	switch {
	case c.KeepAlive == 0:
		return decodeErr2(t, "KeepAlive", ErrInvalidField)
	case c.MaxPacketSize > 0 && c.MaxPacketSize < 10:
		return decodeErr2(t, "MaxPacketSize", ErrInvalidField)
	}
	p = p[7:]
	if c.HasDefaultAwake {
		if len(p) < 1 {
			return decodeErr2(t, "DefaultAwakeMessages", ErrShortBuffer)
		}
		c.DefaultAwakeMessages, p = p[0], p[1:]
	}
	if c.HasSessionExpiry {
		if len(p) < 4 {
			return decodeErr2(t, "SessionExpiryInterval", ErrShortBuffer)
		}
		c.SessionExpiry, p = u32(p), p[4:]
	}
	if c.Will {
		alias, name, r, err := decodeTopic(t, c.WillTopicType, p)
		if err != nil {
			if e, ok := err.(*Error); ok {
				e.Field = "Will" + e.Field
			}
			return err
		}
		c.WillTopicAlias, c.WillTopic = alias, name
		if len(r) < 2 {
			return decodeErr2(t, "WillPayloadLength", ErrShortBuffer)
		}
		n := int(u16(r))
		if n > len(r)-2 {
			return decodeErr2(t, "WillPayload", ErrShortBuffer)
		}
		c.WillPayload, p = rest(r[2:2+n]), r[2+n:]
	}
	if c.Auth {
		var err error
		if c.AuthMethod, c.AuthData, p, err = decodeAuthFields(t, p); err != nil {
			return err
		}
	}
	c.ClientID = rest(p)
	*m = c
	return nil
}

// The authentication fields of CONNECT and CONNACK: method length (1),
// method, data length (2), data.

func decodeAuthFields(t PacketType, p []byte) (method, data, r []byte, err error) {
	if len(p) < 1 {
		return nil, nil, nil, decodeErr2(t, "AuthMethodLength", ErrShortBuffer)
	}
	n := int(p[0])
	if len(p) < 1+n+2 {
		return nil, nil, nil, decodeErr2(t, "AuthMethod", ErrShortBuffer)
	}
	method, p = rest(p[1:1+n]), p[1+n:]
	d := int(u16(p))
	if d > len(p)-2 {
		return nil, nil, nil, decodeErr2(t, "AuthData", ErrShortBuffer)
	}
	return method, rest(p[2 : 2+d]), p[2+d:], nil
}

func appendAuthFields(b, method, data []byte) []byte {
	b = append(append(b, byte(len(method))), method...)
	return append(appendU16(b, uint16(len(data))), data...)
}

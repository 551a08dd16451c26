package snpacket

// ProtocolID is the ProtocolId a MQTT-SN 1.2 CONNECT carries.
const ProtocolID = 0x01

// Connect (CONNECT, 0x04) opens a session. Decode rejects a ProtocolId other
// than [ProtocolID] with ErrUnsupportedProtocol, so that a gateway can answer
// CONNACK "not supported" (or hand the datagram to another version's codec).
type Connect struct {
	// Will asks the gateway to prompt for a will topic and message.
	Will bool
	// CleanSession discards the stored subscriptions and will.
	CleanSession bool
	// Duration is the keep-alive period in seconds.
	Duration uint16
	// ClientID identifies the client; at least one octet.
	ClientID []byte
}

// Type returns TypeConnect.
func (*Connect) Type() MsgType { return TypeConnect }

// Len returns the wire length.
func (m *Connect) Len() int { return frameLen(4 + len(m.ClientID)) }

// AppendBinary appends the wire form of m to b.
func (m *Connect) AppendBinary(b []byte) ([]byte, error) {
	if len(m.ClientID) == 0 {
		return b, encodeErr(TypeConnect, "ClientId", ErrEmptyField)
	}
	b, err := appendHeader(b, TypeConnect, 4+len(m.ClientID))
	if err != nil {
		return b, err
	}
	var flags byte
	if m.Will {
		flags |= flagWill
	}
	if m.CleanSession {
		flags |= flagCleanSession
	}
	b = appendU16(append(b, flags, ProtocolID), m.Duration)
	return append(b, m.ClientID...), nil
}

// Clone returns a deep copy of m.
func (m *Connect) Clone() Message {
	c := *m
	c.ClientID = clone(m.ClientID)
	return &c
}

func (m *Connect) decode(body []byte) error {
	if err := atLeast(TypeConnect, body, 4, "Duration"); err != nil {
		return err
	}
	if body[1] != ProtocolID {
		return decodeErr(TypeConnect, "ProtocolId", ErrUnsupportedProtocol)
	}
	if len(body) == 4 {
		return decodeErr(TypeConnect, "ClientId", ErrEmptyField)
	}
	*m = Connect{
		Will:         body[0]&flagWill != 0,
		CleanSession: body[0]&flagCleanSession != 0,
		Duration:     u16(body[2:]),
		ClientID:     body[4:],
	}
	return nil
}

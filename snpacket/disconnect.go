package snpacket

// Disconnect (DISCONNECT, 0x18) ends a connection. From a client, a Duration
// (HasDuration true) asks to sleep for that many seconds instead; the gateway
// acknowledges both kinds with a DISCONNECT without Duration.
type Disconnect struct {
	// HasDuration says whether the Duration field is present.
	HasDuration bool
	// Duration is the sleep time in seconds, when HasDuration is set.
	Duration uint16
}

// Type returns TypeDisconnect.
func (*Disconnect) Type() MsgType { return TypeDisconnect }

// Len returns the wire length.
func (m *Disconnect) Len() int { return frameLen(m.bodyLen()) }

func (m *Disconnect) bodyLen() int {
	if m.HasDuration {
		return 2
	}
	return 0
}

// AppendBinary appends the wire form of m to b. Duration is written only
// when HasDuration is set.
func (m *Disconnect) AppendBinary(b []byte) ([]byte, error) {
	b, err := appendHeader(b, TypeDisconnect, m.bodyLen())
	if err != nil || !m.HasDuration {
		return b, err
	}
	return appendU16(b, m.Duration), nil
}

// Clone returns a copy of m.
func (m *Disconnect) Clone() Message { c := *m; return &c }

func (m *Disconnect) decode(body []byte) error {
	switch len(body) {
	case 0:
		*m = Disconnect{}
	case 1:
		return decodeErr(TypeDisconnect, "Duration", ErrShortBuffer)
	case 2:
		*m = Disconnect{HasDuration: true, Duration: u16(body)}
	default:
		return decodeErr(TypeDisconnect, "", ErrTrailingBytes)
	}
	return nil
}

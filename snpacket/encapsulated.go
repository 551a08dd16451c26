package snpacket

// MaxNodeIDLen is the longest Wireless Node Id an Encapsulated envelope can
// carry: its one-octet Length counts the envelope (3 octets plus the id).
const MaxNodeIDLen = 255 - 3

// Encapsulated (0xFE) is a forwarder's envelope around one complete MQTT-SN
// message to or from the wireless node NodeID. A gateway answers a
// forwarded client by wrapping its reply the same way, with the same NodeID.
//
// The envelope's Length covers only the envelope; the inner message carries
// its own. Decode accepts the three-octet Length form for the envelope too,
// and rejects an inner message that is itself Encapsulated.
type Encapsulated struct {
	// Radius is the broadcast radius in the Ctrl octet (0 to 3), only
	// meaningful from gateway to forwarder. The other Ctrl bits are reserved.
	Radius uint8
	// NodeID is the Wireless Node Id, opaque to the gateway.
	NodeID []byte
	// Inner is the wrapped message; never nil or *Encapsulated.
	Inner Message
}

// Type returns TypeEncapsulated.
func (*Encapsulated) Type() MsgType { return TypeEncapsulated }

// Len returns the wire length of the envelope and the inner message.
func (m *Encapsulated) Len() int {
	n := 3 + len(m.NodeID)
	if m.Inner != nil {
		n += m.Inner.Len()
	}
	return n
}

// AppendBinary appends the envelope and the inner message to b.
func (m *Encapsulated) AppendBinary(b []byte) ([]byte, error) {
	switch m.Inner.(type) {
	case nil:
		return b, encodeErr(TypeEncapsulated, "Inner", ErrEmptyField)
	case *Encapsulated:
		return b, encodeErr(TypeEncapsulated, "Inner", ErrNestedEncapsulation)
	}
	if m.Radius > 3 {
		return b, encodeErr(TypeEncapsulated, "Ctrl", ErrInvalidField)
	}
	if len(m.NodeID) > MaxNodeIDLen {
		return b, encodeErr(TypeEncapsulated, "WirelessNodeId", ErrTooLong)
	}
	start := len(b)
	b = append(append(b, byte(3+len(m.NodeID)), byte(TypeEncapsulated), m.Radius), m.NodeID...)
	b, err := m.Inner.AppendBinary(b)
	if err != nil {
		return b[:start], err
	}
	return b, nil
}

// Clone returns a deep copy of m, inner message included.
func (m *Encapsulated) Clone() Message {
	c := *m
	c.NodeID = clone(m.NodeID)
	if m.Inner != nil {
		c.Inner = m.Inner.Clone()
	}
	return &c
}

// decode is not used: an Encapsulated message needs the whole datagram, not
// just its body, and is decoded by decodeEncapsulated.
func (m *Encapsulated) decode([]byte) error {
	return decodeErr(TypeEncapsulated, "", ErrNestedEncapsulation)
}

// decodeEncapsulated decodes datagram b, whose envelope Length field (hdr
// octets long) declares envLen. The inner message is decoded with d's store,
// or allocated when d is nil.
func decodeEncapsulated(b []byte, envLen, hdr int, d *Decoder) (Message, error) {
	switch {
	case envLen < hdr+2:
		return nil, decodeErr(TypeEncapsulated, "Length", ErrInvalidLength)
	case envLen > len(b):
		return nil, decodeErr(TypeEncapsulated, "Length", ErrLengthMismatch)
	case envLen == len(b):
		return nil, decodeErr(TypeEncapsulated, "Inner", ErrShortBuffer)
	case envLen-hdr-2 > MaxNodeIDLen: // only the three-octet form can say so
		return nil, decodeErr(TypeEncapsulated, "WirelessNodeId", ErrTooLong)
	}
	inner := b[envLen:]
	if _, ihdr, err := parseLength(inner); err == nil && MsgType(inner[ihdr]) == TypeEncapsulated {
		return nil, decodeErr(TypeEncapsulated, "Inner", ErrNestedEncapsulation)
	}
	in, err := decode(inner, d)
	if err != nil {
		return nil, wrapInner(err)
	}
	var m *Encapsulated
	if d != nil {
		m = &d.encap
	} else {
		m = new(Encapsulated)
	}
	*m = Encapsulated{Radius: b[hdr+1] & 0x03, NodeID: rest(b[hdr+2 : envLen]), Inner: in}
	return m, nil
}

// wrapInner places an inner message's decode error under the envelope, so
// the text reads "decode ENCAPSULATED: field Inner PUBLISH Flags: ...".
func wrapInner(err error) error {
	e, ok := err.(*Error)
	if !ok {
		return decodeErr(TypeEncapsulated, "Inner", err)
	}
	field := "Inner"
	if e.Field != "Length" {
		field += " " + e.Type.String()
	}
	if e.Field != "" {
		field += " " + e.Field
	}
	return decodeErr(TypeEncapsulated, field, e.Err)
}

package snpacket

// ForwarderEncapsulation wraps one complete MQTT-SN 2.0 packet to or from
// a client behind a forwarder. A gateway answers a forwarded client by
// wrapping its reply the same way: same Addr, same form.
//
// CSD01 puts it at 0xFC with a Length that covers the whole packet, inner
// packet included, followed by a one-octet length of the addressing
// information and the information itself. Eclipse Paho's 2.0 code still
// uses 0xFD with 1.2's length rule: the Length covers only the envelope
// (Length, type, addressing information), and the addressing information
// fills the envelope. (Paho's gateway puts a 1.2-style Ctrl octet first,
// its packet library does not; the codec does not interpret either, so
// both echo back byte for byte.) Decode accepts that form with Paho set,
// and AppendBinary writes it back when Paho is set, so the gateway can
// decide (docs/mqttsn-2.md). The inner packet carries its own Length, fills
// the rest of the datagram exactly, and is never itself a forwarder
// envelope.
type ForwarderEncapsulation struct {
	// Paho: the 0xFD form of Eclipse Paho (not in the draft).
	Paho bool
	// Addr is the client addressing information, opaque to the gateway:
	// at most 255 octets in the 0xFC form. In the Paho form it is every
	// octet of the envelope after the type (a Ctrl octet and Wireless
	// Node Id, from Paho's gateway).
	Addr []byte
	// Inner is the wrapped packet; never nil or a forwarder envelope.
	Inner MessageV2
}

// Type returns PacketForwarder, or PacketForwarderPaho for the Paho form.
func (m *ForwarderEncapsulation) Type() PacketType {
	if m.Paho {
		return PacketForwarderPaho
	}
	return PacketForwarder
}

func (m *ForwarderEncapsulation) innerLen() int {
	if m.Inner == nil {
		return 0
	}
	return m.Inner.Len()
}

// Len returns the wire length of the envelope and the inner packet.
func (m *ForwarderEncapsulation) Len() int {
	if m.Paho {
		return frameLen(len(m.Addr)) + m.innerLen()
	}
	return frameLen(1 + len(m.Addr) + m.innerLen())
}

// AppendBinary appends the envelope and the inner packet to b.
func (m *ForwarderEncapsulation) AppendBinary(b []byte) ([]byte, error) {
	t := m.Type()
	switch m.Inner.(type) {
	case nil:
		return b, encodeErr2(t, "Inner", ErrEmptyField)
	case *ForwarderEncapsulation:
		return b, encodeErr2(t, "Inner", ErrNestedEncapsulation)
	}
	if !m.Paho && len(m.Addr) > 255 {
		return b, encodeErr2(t, "Addr", ErrTooLong)
	}
	start := len(b)
	var err error
	if m.Paho {
		// The envelope is a packet of its own whose body is Addr.
		if b, err = appendHeaderV2(b, t, len(m.Addr)); err != nil {
			return b, err
		}
		b = append(b, m.Addr...)
	} else {
		if b, err = appendHeaderV2(b, t, 1+len(m.Addr)+m.Inner.Len()); err != nil {
			return b, err
		}
		b = append(append(b, byte(len(m.Addr))), m.Addr...)
	}
	if b, err = m.Inner.AppendBinary(b); err != nil {
		return b[:start], err
	}
	return b, nil
}

// Clone returns a deep copy of m, inner packet included.
func (m *ForwarderEncapsulation) Clone() MessageV2 {
	c := *m
	c.Addr = clone(m.Addr)
	if m.Inner != nil {
		c.Inner = m.Inner.Clone()
	}
	return &c
}

// decode is not used: the envelopes are decoded by decodeForwarder and
// decodeForwarderPaho, which need the decoder for the inner packet.
func (m *ForwarderEncapsulation) decode([]byte) error {
	return decodeErr2(m.Type(), "", ErrNestedEncapsulation)
}

// decodeForwarder decodes the body of a 0xFC envelope.
func decodeForwarder(body []byte, d *DecoderV2) (MessageV2, error) {
	const t = PacketForwarder
	if len(body) < 1 {
		return nil, decodeErr2(t, "AddrLength", ErrShortBuffer)
	}
	n := int(body[0])
	if len(body) < 1+n {
		return nil, decodeErr2(t, "Addr", ErrShortBuffer)
	}
	in, err := decodeInner(t, body[1+n:], d, true)
	if err != nil {
		return nil, err
	}
	var m *ForwarderEncapsulation
	if d != nil {
		m = &d.fwd
	} else {
		m = new(ForwarderEncapsulation)
	}
	*m = ForwarderEncapsulation{Addr: rest(body[1 : 1+n]), Inner: in}
	return m, nil
}

// decodeForwarderPaho decodes datagram b, a 0xFD envelope whose Length
// field (hdr octets long) declares envLen, the envelope alone.
func decodeForwarderPaho(b []byte, envLen, hdr int, d *DecoderV2) (MessageV2, error) {
	const t = PacketForwarderPaho
	if envLen > len(b) {
		return nil, decodeErr2(t, "Length", ErrLengthMismatch)
	}
	in, err := decodeInner(t, b[envLen:], d, true)
	if err != nil {
		return nil, err
	}
	var m *ForwarderEncapsulation
	if d != nil {
		m = &d.fwd
	} else {
		m = new(ForwarderEncapsulation)
	}
	*m = ForwarderEncapsulation{Paho: true, Addr: rest(b[hdr+1 : envLen]), Inner: in}
	return m, nil
}

// decodeInner decodes the packet inside envelope t. A forwarder may wrap
// any packet but another forwarder; a Connection Encapsulation wraps no
// envelope at all.
func decodeInner(t PacketType, inner []byte, d *DecoderV2, forwarder bool) (MessageV2, error) {
	if len(inner) == 0 {
		return nil, decodeErr2(t, "Inner", ErrShortBuffer)
	}
	if _, ihdr, err := parseLength(inner); err == nil {
		it := PacketType(inner[ihdr])
		if it == PacketForwarder || it == PacketForwarderPaho || !forwarder && it >= PacketForwarder {
			return nil, decodeErr2(t, "Inner", ErrNestedEncapsulation)
		}
	}
	in, err := decodeV2(inner, d)
	if err != nil {
		return nil, wrapInnerV2(t, err)
	}
	return in, nil
}

// wrapInnerV2 places an inner packet's decode error under envelope t, so
// the text reads "decode 2.0 FORWARDER: field Inner PUBLISH Flags: ...".
func wrapInnerV2(t PacketType, err error) error {
	e, ok := err.(*Error)
	if !ok {
		return decodeErr2(t, "Inner", err)
	}
	field := "Inner"
	if e.Field != "Length" {
		field += " " + PacketType(e.Type).String()
	}
	if e.Field != "" {
		field += " " + e.Field
	}
	return decodeErr2(t, field, e.Err)
}

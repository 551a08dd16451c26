package snpacket

// ConnEncapsulation (MQTT-SN 2.0 Connection Encapsulation, 0xFE) is sent
// by a client whose network address changed: it names the client's
// virtual connection by ClientId so the server can rebind it to the new
// address. Its Length covers the whole packet; the inner packet carries its
// own Length and is never an envelope.
//
// It is client to server only, and the server honours it only if the
// client's CONNECT set AllowAddressChange and only around the packet types
// [ConnEncapsulationAllows] lists: both are the gateway's checks (a
// protocol error there), not the codec's. Note that 0xFE is the 1.2
// forwarder envelope: a datagram must be decoded with its sender's version.
//
// Eclipse Paho's 2.0 packet library (MQTTSN2Packet, after an earlier
// draft) writes it with 1.2's length rule instead: the Length covers only
// the envelope, and the ClientId fills it without a length prefix. Decode
// accepts that form with Paho set (it is the only reading of an 0xFE whose
// Length is shorter than the datagram once the sender is known to speak
// 2.0), and AppendBinary writes it when Paho is set. On the wire it cannot
// be told from a 1.2 forwarder envelope; see docs/mqttsn-2.md.
type ConnEncapsulation struct {
	// Paho: Eclipse Paho's envelope-only form (not in the draft).
	Paho bool
	// ClientID names the virtual connection; at least one octet.
	ClientID []byte
	// Inner is the wrapped packet; never nil or an envelope.
	Inner MessageV2
}

// ConnEncapsulationAllows reports whether the draft allows a Connection
// Encapsulation around a packet of type t: PUBLISH, SUBSCRIBE, UNSUBSCRIBE,
// REGISTER, DISCONNECT, SLEEPREQ, PINGREQ.
func ConnEncapsulationAllows(t PacketType) bool {
	switch t {
	case PacketPublish, PacketSubscribe, PacketUnsubscribe, PacketRegister,
		PacketDisconnect, PacketSleepReq, PacketPingReq:
		return true
	}
	return false
}

// Type returns PacketConnEncapsulation.
func (*ConnEncapsulation) Type() PacketType { return PacketConnEncapsulation }

func (m *ConnEncapsulation) bodyLen() int {
	n := 2 + len(m.ClientID)
	if m.Inner != nil {
		n += m.Inner.Len()
	}
	return n
}

// Len returns the wire length of the envelope and the inner packet.
func (m *ConnEncapsulation) Len() int {
	if m.Paho {
		n := frameLen(len(m.ClientID))
		if m.Inner != nil {
			n += m.Inner.Len()
		}
		return n
	}
	return frameLen(m.bodyLen())
}

// AppendBinary appends the envelope and the inner packet to b.
func (m *ConnEncapsulation) AppendBinary(b []byte) ([]byte, error) {
	const t = PacketConnEncapsulation
	switch {
	case m.Inner == nil:
		return b, encodeErr2(t, "Inner", ErrEmptyField)
	case m.Inner.Type() >= PacketForwarder:
		return b, encodeErr2(t, "Inner", ErrNestedEncapsulation)
	case len(m.ClientID) == 0:
		return b, encodeErr2(t, "ClientId", ErrEmptyField)
	case len(m.ClientID) > 0xFFFF:
		return b, encodeErr2(t, "ClientId", ErrTooLong)
	}
	start := len(b)
	if m.Paho { // the envelope is a packet of its own whose body is the ClientId
		b, err := appendHeaderV2(b, t, len(m.ClientID))
		if err != nil {
			return b, err
		}
		if b, err = m.Inner.AppendBinary(append(b, m.ClientID...)); err != nil {
			return b[:start], err
		}
		return b, nil
	}
	b, err := appendHeaderV2(b, t, m.bodyLen())
	if err != nil {
		return b, err
	}
	b = append(appendU16(b, uint16(len(m.ClientID))), m.ClientID...)
	if b, err = m.Inner.AppendBinary(b); err != nil {
		return b[:start], err
	}
	return b, nil
}

// Clone returns a deep copy of m, inner packet included.
func (m *ConnEncapsulation) Clone() MessageV2 {
	c := *m
	c.ClientID = clone(m.ClientID)
	if m.Inner != nil {
		c.Inner = m.Inner.Clone()
	}
	return &c
}

// decode is not used: see decodeConnEncapsulation.
func (m *ConnEncapsulation) decode([]byte) error {
	return decodeErr2(PacketConnEncapsulation, "", ErrNestedEncapsulation)
}

func decodeConnEncapsulation(body []byte, d *DecoderV2) (MessageV2, error) {
	const t = PacketConnEncapsulation
	if len(body) < 2 {
		return nil, decodeErr2(t, "ClientIdLength", ErrShortBuffer)
	}
	n := int(u16(body))
	switch {
	case n == 0:
		return nil, decodeErr2(t, "ClientId", ErrEmptyField)
	case len(body) < 2+n:
		return nil, decodeErr2(t, "ClientId", ErrShortBuffer)
	}
	in, err := decodeInner(t, body[2+n:], d, false)
	if err != nil {
		return nil, err
	}
	var m *ConnEncapsulation
	if d != nil {
		m = &d.conn
	} else {
		m = new(ConnEncapsulation)
	}
	*m = ConnEncapsulation{ClientID: body[2 : 2+n], Inner: in}
	return m, nil
}

// decodeConnEncapsulationPaho decodes datagram b, an 0xFE envelope in
// Paho's form whose Length field (hdr octets long) declares envLen, the
// envelope alone (shorter than b).
func decodeConnEncapsulationPaho(b []byte, envLen, hdr int, d *DecoderV2) (MessageV2, error) {
	const t = PacketConnEncapsulation
	if envLen == hdr+1 {
		return nil, decodeErr2(t, "ClientId", ErrEmptyField)
	}
	in, err := decodeInner(t, b[envLen:], d, false)
	if err != nil {
		return nil, err
	}
	var m *ConnEncapsulation
	if d != nil {
		m = &d.conn
	} else {
		m = new(ConnEncapsulation)
	}
	*m = ConnEncapsulation{Paho: true, ClientID: b[hdr+1 : envLen], Inner: in}
	return m, nil
}

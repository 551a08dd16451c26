package snpacket

// Suback (SUBACK, 0x13) answers a SUBSCRIBE. TopicID is the id the gateway
// will use in PUBLISH for this subscription: 0 for a wildcard filter or a
// short topic name, the predefined id for a predefined subscription.
type Suback struct {
	// QoS is the granted QoS, 0 to 2.
	QoS        QoS
	TopicID    uint16
	MsgID      uint16
	ReturnCode ReturnCode
}

// Type returns TypeSuback.
func (*Suback) Type() MsgType { return TypeSuback }

// Len returns the wire length.
func (*Suback) Len() int { return frameLen(6) }

// AppendBinary appends the wire form of m to b.
func (m *Suback) AppendBinary(b []byte) ([]byte, error) {
	if m.QoS < QoS0 || m.QoS > QoS2 {
		return b, encodeErr(TypeSuback, "Flags", ErrInvalidQoS)
	}
	b, err := appendHeader(b, TypeSuback, 6)
	if err != nil {
		return b, err
	}
	b = appendU16(appendU16(append(b, m.QoS.wire()<<flagQoSShift), m.TopicID), m.MsgID)
	return append(b, byte(m.ReturnCode)), nil
}

// Clone returns a copy of m.
func (m *Suback) Clone() Message { c := *m; return &c }

func (m *Suback) decode(body []byte) error {
	if err := exact(TypeSuback, body, 6, "ReturnCode"); err != nil {
		return err
	}
	q := qosFromWire(body[0] & flagQoSMask >> flagQoSShift)
	if q == QoSMinus1 {
		return decodeErr(TypeSuback, "Flags", ErrInvalidQoS)
	}
	*m = Suback{QoS: q, TopicID: u16(body[1:]), MsgID: u16(body[3:]), ReturnCode: ReturnCode(body[5])}
	return nil
}

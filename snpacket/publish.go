package snpacket

// Publish (PUBLISH, 0x0C) carries an application message, in either direction.
//
// TopicID is interpreted by TopicIDType: a registered id, a predefined id, or
// the two octets of a short topic name (see [ShortTopicID]). A QoS -1 PUBLISH
// must use a predefined id or a short name; MsgID is 0 at QoS 0 and -1.
type Publish struct {
	Dup         bool
	QoS         QoS
	Retain      bool
	TopicIDType TopicIDType
	TopicID     uint16
	MsgID       uint16
	// Data is the payload, running to the end of the datagram.
	Data []byte
}

// Type returns TypePublish.
func (*Publish) Type() MsgType { return TypePublish }

// Len returns the wire length.
func (m *Publish) Len() int { return frameLen(5 + len(m.Data)) }

// AppendBinary appends the wire form of m to b.
func (m *Publish) AppendBinary(b []byte) ([]byte, error) {
	if err := checkPublishFlags("encode", m.QoS, m.TopicIDType); err != nil {
		return b, err
	}
	b, err := appendHeader(b, TypePublish, 5+len(m.Data))
	if err != nil {
		return b, err
	}
	flags := m.QoS.wire()<<flagQoSShift | byte(m.TopicIDType)
	if m.Dup {
		flags |= flagDup
	}
	if m.Retain {
		flags |= flagRetain
	}
	b = appendU16(appendU16(append(b, flags), m.TopicID), m.MsgID)
	return append(b, m.Data...), nil
}

// Clone returns a deep copy of m.
func (m *Publish) Clone() Message {
	c := *m
	c.Data = clone(m.Data)
	return &c
}

func (m *Publish) decode(body []byte) error {
	if err := atLeast(TypePublish, body, 5, "MsgId"); err != nil {
		return err
	}
	flags := body[0]
	q, typ := qosFromWire(flags&flagQoSMask>>flagQoSShift), TopicIDType(flags&flagTopicIDMask)
	if err := checkPublishFlags("decode", q, typ); err != nil {
		return err
	}
	// Field by field, not *m = Publish{...}: the composite literal is built
	// on the stack and copied with a bulk write barrier, which made this the
	// most expensive line of the decode path (BenchmarkDecodePublish).
	m.Dup = flags&flagDup != 0
	m.QoS = q
	m.Retain = flags&flagRetain != 0
	m.TopicIDType = typ
	m.TopicID = u16(body[1:])
	m.MsgID = u16(body[3:])
	m.Data = rest(body[5:])
	return nil
}

func checkPublishFlags(op string, q QoS, typ TopicIDType) error {
	var err error
	switch {
	case !q.Valid():
		err = ErrInvalidQoS
	case typ > TopicIDShort:
		err = ErrInvalidTopicIDType
	case q == QoSMinus1 && typ == TopicIDNormal:
		// QoS -1 senders have no session, so no registered ids (spec §6.8).
		err = ErrInvalidTopicIDType
	default:
		return nil
	}
	return &Error{Op: op, Type: TypePublish, Field: "Flags", Err: err}
}

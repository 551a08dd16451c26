package snpacket

// Message is one MQTT-SN 1.2 message. The concrete types are the pointer
// types of this package (*Publish, *Connect, ...); no other type implements
// Message.
type Message interface {
	// Type returns the message type.
	Type() MsgType
	// Len returns the number of octets AppendBinary appends, header included.
	Len() int
	// AppendBinary appends the message in wire form to b. It fails only for
	// field values that cannot be encoded, and then returns b unchanged.
	AppendBinary(b []byte) ([]byte, error)
	// Clone returns a deep copy whose byte fields no longer alias the
	// datagram the message was decoded from.
	Clone() Message

	// decode sets every field of the message from body, the octets after
	// the MsgType octet.
	decode(body []byte) error
}

// MaxLen is the largest message the three-octet Length form can describe.
const MaxLen = 65535

// newMessage holds a constructor for every message type, indexed by MsgType
// (Encapsulated, 0xFE, is decoded separately).
var newMessage = [...]func() Message{
	TypeAdvertise:     func() Message { return new(Advertise) },
	TypeSearchGW:      func() Message { return new(SearchGW) },
	TypeGWInfo:        func() Message { return new(GWInfo) },
	TypeConnect:       func() Message { return new(Connect) },
	TypeConnack:       func() Message { return new(Connack) },
	TypeWillTopicReq:  func() Message { return new(WillTopicReq) },
	TypeWillTopic:     func() Message { return new(WillTopic) },
	TypeWillMsgReq:    func() Message { return new(WillMsgReq) },
	TypeWillMsg:       func() Message { return new(WillMsg) },
	TypeRegister:      func() Message { return new(Register) },
	TypeRegack:        func() Message { return new(Regack) },
	TypePublish:       func() Message { return new(Publish) },
	TypePuback:        func() Message { return new(Puback) },
	TypePubcomp:       func() Message { return new(Pubcomp) },
	TypePubrec:        func() Message { return new(Pubrec) },
	TypePubrel:        func() Message { return new(Pubrel) },
	TypeSubscribe:     func() Message { return new(Subscribe) },
	TypeSuback:        func() Message { return new(Suback) },
	TypeUnsubscribe:   func() Message { return new(Unsubscribe) },
	TypeUnsuback:      func() Message { return new(Unsuback) },
	TypePingReq:       func() Message { return new(PingReq) },
	TypePingResp:      func() Message { return new(PingResp) },
	TypeDisconnect:    func() Message { return new(Disconnect) },
	TypeWillTopicUpd:  func() Message { return new(WillTopicUpd) },
	TypeWillTopicResp: func() Message { return new(WillTopicResp) },
	TypeWillMsgUpd:    func() Message { return new(WillMsgUpd) },
	TypeWillMsgResp:   func() Message { return new(WillMsgResp) },
}

// Decode decodes the one message in datagram b into a newly allocated value.
// Its byte fields alias b. A gateway's receive loop should use a [Decoder],
// which allocates nothing.
func Decode(b []byte) (Message, error) {
	return decode(b, nil)
}

// Decoder decodes datagrams into message values it owns and reuses: one per
// message type, allocated on first use. The zero value is ready to use. A
// message returned by Decode is valid until the next call to Decode, and its
// byte fields alias the datagram. A Decoder must not be used by more than one
// goroutine at a time.
type Decoder struct {
	msgs    [len(newMessage)]Message
	encap   Encapsulated
	publish Publish // PUBLISH, the hot path, is decoded without the indirection of msgs
}

// Decode decodes the one message in datagram b. See [Decoder] for how long
// the result stays valid.
func (d *Decoder) Decode(b []byte) (Message, error) {
	return decode(b, d)
}

// message returns the value to decode a message of type t into, from d's
// store or freshly allocated when d is nil; nil for a reserved type.
func (d *Decoder) message(t MsgType) Message {
	if int(t) >= len(newMessage) || newMessage[t] == nil {
		return nil
	}
	if d == nil {
		return newMessage[t]()
	}
	if t == TypePublish {
		return &d.publish
	}
	if d.msgs[t] == nil {
		d.msgs[t] = newMessage[t]()
	}
	return d.msgs[t]
}

func decode(b []byte, d *Decoder) (Message, error) {
	length, hdr, err := parseLength(b)
	if err != nil {
		return nil, err
	}
	t := MsgType(b[hdr])
	if t == TypeEncapsulated {
		return decodeEncapsulated(b, length, hdr, d)
	}
	if length != len(b) {
		return nil, decodeErr(t, "Length", ErrLengthMismatch)
	}
	if t == TypePublish && d != nil { // the hot path: a direct call
		if err := d.publish.decode(b[hdr+1:]); err != nil {
			return nil, err
		}
		return &d.publish, nil
	}
	m := d.message(t)
	if m == nil {
		return nil, decodeErr(t, "MsgType", ErrUnknownType)
	}
	if err := m.decode(b[hdr+1:]); err != nil {
		return nil, err
	}
	return m, nil
}

// parseLength reads the Length field at the start of b and returns the length
// it declares and the size of the field itself (1 or 3). It guarantees that b
// holds the field and the MsgType octet after it.
func parseLength(b []byte) (length, hdr int, err error) {
	if len(b) < 2 {
		return 0, 0, decodeErr(0, "Length", ErrShortBuffer)
	}
	switch b[0] {
	case 0x00:
		return 0, 0, decodeErr(0, "Length", ErrInvalidLength)
	case 0x01:
		if len(b) < 4 {
			return 0, 0, decodeErr(0, "Length", ErrShortBuffer)
		}
		length = int(b[1])<<8 | int(b[2])
		if length < 4 {
			return 0, 0, decodeErr(0, "Length", ErrInvalidLength)
		}
		return length, 3, nil
	}
	return int(b[0]), 1, nil
}

// frameLen returns the wire length of a message whose body (the octets after
// MsgType) is n octets long: the one-octet Length form when the whole message
// fits in 255 octets, else the three-octet form.
func frameLen(n int) int {
	if n+2 <= 255 {
		return n + 2
	}
	return n + 4
}

// appendHeader appends the Length and MsgType octets of a message whose body
// is n octets long, or fails with ErrTooLong above MaxLen.
func appendHeader(b []byte, t MsgType, n int) ([]byte, error) {
	total := frameLen(n)
	switch {
	case total > MaxLen:
		return b, encodeErr(t, "Length", ErrTooLong)
	case total <= 255:
		return append(b, byte(total), byte(t)), nil
	}
	return append(b, 0x01, byte(total>>8), byte(total), byte(t)), nil
}

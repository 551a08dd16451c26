package snpacket

// Helpers shared by the message types' decode and append methods.

// exact checks that body holds exactly n octets; field names the field that
// a short body lacks.
func exact(t MsgType, body []byte, n int, field string) error {
	switch {
	case len(body) < n:
		return decodeErr(t, field, ErrShortBuffer)
	case len(body) > n:
		return decodeErr(t, "", ErrTrailingBytes)
	}
	return nil
}

// atLeast checks that body holds at least n octets.
func atLeast(t MsgType, body []byte, n int, field string) error {
	if len(body) < n {
		return decodeErr(t, field, ErrShortBuffer)
	}
	return nil
}

// rest returns b, or nil when b is empty, so that absent variable-length
// fields always decode the same way.
func rest(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func u16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }

func appendU16(b []byte, v uint16) []byte { return append(b, byte(v>>8), byte(v)) }

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// Messages with no fields: WILLTOPICREQ, WILLMSGREQ, PINGRESP.

func decodeEmpty(t MsgType, body []byte) error { return exact(t, body, 0, "") }

func appendEmpty(b []byte, t MsgType) ([]byte, error) { return appendHeader(b, t, 0) }

// Messages that carry only a ReturnCode: CONNACK, WILLTOPICRESP, WILLMSGRESP.

func decodeReturnCode(t MsgType, body []byte) (ReturnCode, error) {
	if err := exact(t, body, 1, "ReturnCode"); err != nil {
		return 0, err
	}
	return ReturnCode(body[0]), nil
}

func appendReturnCode(b []byte, t MsgType, rc ReturnCode) ([]byte, error) {
	b, err := appendHeader(b, t, 1)
	if err != nil {
		return b, err
	}
	return append(b, byte(rc)), nil
}

// Messages that carry only a MsgId: PUBREC, PUBREL, PUBCOMP, UNSUBACK.

func decodeMsgID(t MsgType, body []byte) (uint16, error) {
	if err := exact(t, body, 2, "MsgId"); err != nil {
		return 0, err
	}
	return u16(body), nil
}

func appendMsgID(b []byte, t MsgType, id uint16) ([]byte, error) {
	b, err := appendHeader(b, t, 2)
	if err != nil {
		return b, err
	}
	return appendU16(b, id), nil
}

// The will topic layout, shared by WILLTOPIC and WILLTOPICUPD: Flags (QoS,
// Retain) and the topic, or nothing at all for the empty form.

type willTopic struct {
	QoS    QoS
	Retain bool
	Topic  []byte
}

func (w *willTopic) decode(t MsgType, body []byte) error {
	if len(body) == 0 { // the empty form: no will
		*w = willTopic{}
		return nil
	}
	if len(body) == 1 { // Flags with no topic is neither form
		return decodeErr(t, "WillTopic", ErrEmptyField)
	}
	q := qosFromWire(body[0] & flagQoSMask >> flagQoSShift)
	if q == QoSMinus1 {
		return decodeErr(t, "Flags", ErrInvalidQoS)
	}
	*w = willTopic{QoS: q, Retain: body[0]&flagRetain != 0, Topic: body[1:]}
	return nil
}

func (w *willTopic) bodyLen() int {
	if len(w.Topic) == 0 {
		return 0
	}
	return 1 + len(w.Topic)
}

func (w *willTopic) append(b []byte, t MsgType) ([]byte, error) {
	if len(w.Topic) == 0 {
		return appendHeader(b, t, 0)
	}
	if w.QoS < QoS0 || w.QoS > QoS2 {
		return b, encodeErr(t, "Flags", ErrInvalidQoS)
	}
	b, err := appendHeader(b, t, w.bodyLen())
	if err != nil {
		return b, err
	}
	flags := w.QoS.wire() << flagQoSShift
	if w.Retain {
		flags |= flagRetain
	}
	return append(append(b, flags), w.Topic...), nil
}

// The SUBSCRIBE/UNSUBSCRIBE topic: a name for TopicIDNormal, else a
// two-octet predefined id or short name.

func decodeSubTopic(t MsgType, typ TopicIDType, body []byte) (name []byte, id uint16, err error) {
	switch typ {
	case TopicIDNormal:
		if len(body) == 0 {
			return nil, 0, decodeErr(t, "TopicName", ErrEmptyField)
		}
		return body, 0, nil
	case TopicIDPredefined, TopicIDShort:
		if err := exact(t, body, 2, "TopicId"); err != nil {
			return nil, 0, err
		}
		return nil, u16(body), nil
	}
	return nil, 0, decodeErr(t, "Flags", ErrInvalidTopicIDType)
}

func subTopicLen(typ TopicIDType, name []byte) int {
	if typ == TopicIDNormal {
		return len(name)
	}
	return 2
}

func checkSubTopic(t MsgType, typ TopicIDType, name []byte) error {
	switch {
	case typ > TopicIDShort:
		return encodeErr(t, "Flags", ErrInvalidTopicIDType)
	case typ == TopicIDNormal && len(name) == 0:
		return encodeErr(t, "TopicName", ErrEmptyField)
	}
	return nil
}

func appendSubTopic(b []byte, typ TopicIDType, name []byte, id uint16) []byte {
	if typ == TopicIDNormal {
		return append(b, name...)
	}
	return appendU16(b, id)
}

package snpacket

import "strconv"

// MessageV2 is one MQTT-SN 2.0 packet (CSD01). The concrete types are the
// pointer types listed in doc.go (*PublishV2, *ConnectV2, *Auth, ...); no
// other type implements MessageV2, and none of them implements the 1.2
// [Message]: a value says by its type which version it belongs to.
type MessageV2 interface {
	// Type returns the packet type.
	Type() PacketType
	// Len returns the number of octets AppendBinary appends, header included.
	Len() int
	// AppendBinary appends the packet in wire form to b. It fails only for
	// field values that cannot be encoded, and then returns b unchanged.
	AppendBinary(b []byte) ([]byte, error)
	// Clone returns a deep copy whose byte fields no longer alias the
	// datagram the packet was decoded from.
	Clone() MessageV2

	// decode sets every field of the packet from body, the octets after
	// the Packet Type octet.
	decode(body []byte) error
}

// TopicType says what the topic field of an MQTT-SN 2.0 PUBLISH, PUBWOS,
// SUBSCRIBE, UNSUBSCRIBE, REGACK, SUBACK or CONNECT will holds (two flag
// bits). CSD01 removed 1.2's short topic names: 0b10 is reserved.
type TopicType uint8

// The 2.0 topic types.
const (
	// TopicTypeSession: a session topic alias, allocated by the server.
	TopicTypeSession TopicType = 0
	// TopicTypePredefined: a predefined topic alias both sides know from
	// configuration.
	TopicTypePredefined TopicType = 1
	// TopicTypeName: a full topic name (PUBLISH, PUBWOS, a will) or topic
	// filter (SUBSCRIBE, UNSUBSCRIBE).
	TopicTypeName TopicType = 3
)

// String returns "session", "predefined", "name" or "reserved(2)".
func (t TopicType) String() string {
	switch t {
	case TopicTypeSession:
		return "session"
	case TopicTypePredefined:
		return "predefined"
	case TopicTypeName:
		return "name"
	}
	return "reserved(" + strconv.Itoa(int(t)) + ")"
}

func (t TopicType) valid() bool {
	return t == TopicTypeSession || t == TopicTypePredefined || t == TopicTypeName
}

// newMessageV2 holds a constructor for every packet type that decodes from
// its body alone (the encapsulations are decoded separately).
var newMessageV2 = [...]func() MessageV2{
	PacketConnect:     func() MessageV2 { return new(ConnectV2) },
	PacketConnack:     func() MessageV2 { return new(ConnackV2) },
	PacketPublish:     func() MessageV2 { return new(PublishV2) },
	PacketPuback:      func() MessageV2 { return new(PubackV2) },
	PacketPubrec:      func() MessageV2 { return new(PubrecV2) },
	PacketPubrel:      func() MessageV2 { return new(PubrelV2) },
	PacketPubcomp:     func() MessageV2 { return new(PubcompV2) },
	PacketSubscribe:   func() MessageV2 { return new(SubscribeV2) },
	PacketSuback:      func() MessageV2 { return new(SubackV2) },
	PacketUnsubscribe: func() MessageV2 { return new(UnsubscribeV2) },
	PacketUnsuback:    func() MessageV2 { return new(UnsubackV2) },
	PacketPingReq:     func() MessageV2 { return new(PingReqV2) },
	PacketPingResp:    func() MessageV2 { return new(PingRespV2) },
	PacketDisconnect:  func() MessageV2 { return new(DisconnectV2) },
	PacketAuth:        func() MessageV2 { return new(Auth) },
	PacketRegister:    func() MessageV2 { return new(RegisterV2) },
	PacketRegack:      func() MessageV2 { return new(RegackV2) },
	PacketPubwos:      func() MessageV2 { return new(Pubwos) },
	PacketSleepReq:    func() MessageV2 { return new(SleepReq) },
	PacketSleepResp:   func() MessageV2 { return new(SleepResp) },
	PacketWakeup:      func() MessageV2 { return new(Wakeup) },
	PacketAdvertise:   func() MessageV2 { return new(AdvertiseV2) },
	PacketSearchGW:    func() MessageV2 { return new(SearchGWV2) },
	PacketGWInfo:      func() MessageV2 { return new(GWInfoV2) },
}

// DecodeV2 decodes the one MQTT-SN 2.0 packet in datagram b into a newly
// allocated value. Its byte fields alias b. A gateway's receive loop should
// use a [DecoderV2], which allocates nothing. Which version a datagram
// belongs to is the sender's: see [DetectVersion].
func DecodeV2(b []byte) (MessageV2, error) {
	return decodeV2(b, nil)
}

// DecoderV2 is the MQTT-SN 2.0 counterpart of [Decoder]: it decodes into
// packet values it owns and reuses, one per packet type. The zero value is
// ready to use; a packet returned by Decode is valid until the next call to
// Decode, and its byte fields alias the datagram. A DecoderV2 must not be
// used by more than one goroutine at a time.
type DecoderV2 struct {
	msgs    [len(newMessageV2)]MessageV2
	publish PublishV2 // the hot path, decoded without the indirection of msgs
	fwd     ForwarderEncapsulation
	conn    ConnEncapsulation
	prot    ProtectionEncapsulation
}

// Decode decodes the one packet in datagram b. See [DecoderV2] for how long
// the result stays valid.
func (d *DecoderV2) Decode(b []byte) (MessageV2, error) {
	return decodeV2(b, d)
}

func (d *DecoderV2) message(t PacketType) MessageV2 {
	if int(t) >= len(newMessageV2) || newMessageV2[t] == nil {
		return nil
	}
	if d == nil {
		return newMessageV2[t]()
	}
	if t == PacketPublish {
		return &d.publish
	}
	if d.msgs[t] == nil {
		d.msgs[t] = newMessageV2[t]()
	}
	return d.msgs[t]
}

// decodeV2 decodes datagram b. Which envelope may wrap which is checked by
// the envelopes themselves, before they decode their inner packet.
func decodeV2(b []byte, d *DecoderV2) (MessageV2, error) {
	length, hdr, err := parseLength(b)
	if err != nil {
		return nil, asV2(err)
	}
	t := PacketType(b[hdr])
	switch { // Paho's envelopes, whose Length is not the whole packet
	case t == PacketForwarderPaho:
		return decodeForwarderPaho(b, length, hdr, d)
	case t == PacketConnEncapsulation && length < len(b):
		return decodeConnEncapsulationPaho(b, length, hdr, d)
	}
	if length != len(b) {
		return nil, decodeErr2(t, "Length", ErrLengthMismatch)
	}
	body := b[hdr+1:]
	if t == PacketPublish && d != nil { // the hot path: a direct call
		if err := d.publish.decode(body); err != nil {
			return nil, err
		}
		return &d.publish, nil
	}
	switch t {
	case PacketForwarder:
		return decodeForwarder(body, d)
	case PacketConnEncapsulation:
		return decodeConnEncapsulation(body, d)
	case PacketProtection:
		return decodeProtection(body, d)
	}
	m := d.message(t)
	if m == nil {
		return nil, decodeErr2(t, "PacketType", ErrUnknownType)
	}
	if err := m.decode(body); err != nil {
		return nil, err
	}
	return m, nil
}

// asV2 marks a Length error from the shared parseLength as a 2.0 error.
func asV2(err error) error {
	if e, ok := err.(*Error); ok {
		e.Version = Version20
	}
	return err
}

// appendHeaderV2 appends the Length and Packet Type octets of a packet whose
// body is n octets long, or fails with ErrTooLong above MaxLen.
func appendHeaderV2(b []byte, t PacketType, n int) ([]byte, error) {
	total := frameLen(n)
	switch {
	case total > MaxLen:
		return b, encodeErr2(t, "Length", ErrTooLong)
	case total <= 255:
		return append(b, byte(total), byte(t)), nil
	}
	return append(b, 0x01, byte(total>>8), byte(total), byte(t)), nil
}

// Helpers shared by the 2.0 packet types.

func exact2(t PacketType, body []byte, n int, field string) error {
	switch {
	case len(body) < n:
		return decodeErr2(t, field, ErrShortBuffer)
	case len(body) > n:
		return decodeErr2(t, "", ErrTrailingBytes)
	}
	return nil
}

func atLeast2(t PacketType, body []byte, n int, field string) error {
	if len(body) < n {
		return decodeErr2(t, field, ErrShortBuffer)
	}
	return nil
}

func u32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func appendU32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// The packets that carry a Packet Identifier and an optional trailing
// Reason Code: PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK. An absent Reason
// Code means Success, so Success is not written.

func decodeIDReason(t PacketType, body []byte) (id uint16, rc ReasonCode, err error) {
	switch len(body) {
	case 0, 1:
		return 0, 0, decodeErr2(t, "PacketId", ErrShortBuffer)
	case 2:
		return u16(body), Success, nil
	case 3:
		return u16(body), ReasonCode(body[2]), nil
	}
	return 0, 0, decodeErr2(t, "", ErrTrailingBytes)
}

func idReasonLen(rc ReasonCode) int {
	if rc == Success {
		return frameLen(2)
	}
	return frameLen(3)
}

func appendIDReason(b []byte, t PacketType, id uint16, rc ReasonCode) ([]byte, error) {
	n := 3
	if rc == Success {
		n = 2
	}
	b, err := appendHeaderV2(b, t, n)
	if err != nil {
		return b, err
	}
	b = appendU16(b, id)
	if rc != Success {
		b = append(b, byte(rc))
	}
	return b, nil
}

// The PUBLISH/PUBWOS topic field: a two-octet alias, or a two-octet name
// length and the name. decodeTopic returns the alias or name and the rest of
// body after them.

func decodeTopic(t PacketType, typ TopicType, body []byte) (alias uint16, name, rest []byte, err error) {
	if len(body) < 2 {
		return 0, nil, nil, decodeErr2(t, "TopicAlias", ErrShortBuffer)
	}
	v := u16(body)
	if typ != TopicTypeName {
		return v, nil, body[2:], nil
	}
	switch {
	case v == 0:
		return 0, nil, nil, decodeErr2(t, "TopicName", ErrEmptyField)
	case int(v) > len(body)-2:
		return 0, nil, nil, decodeErr2(t, "TopicName", ErrShortBuffer)
	}
	return 0, body[2 : 2+v], body[2+v:], nil
}

func topicLen(typ TopicType, name []byte) int {
	if typ == TopicTypeName {
		return 2 + len(name)
	}
	return 2
}

func checkTopic(t PacketType, typ TopicType, name []byte) error {
	switch {
	case !typ.valid():
		return encodeErr2(t, "Flags", ErrInvalidTopicIDType)
	case typ == TopicTypeName && len(name) == 0:
		return encodeErr2(t, "TopicName", ErrEmptyField)
	case typ == TopicTypeName && len(name) > 0xFFFF:
		return encodeErr2(t, "TopicName", ErrTooLong)
	}
	return nil
}

func appendTopic(b []byte, typ TopicType, alias uint16, name []byte) []byte {
	if typ == TopicTypeName {
		return append(appendU16(b, uint16(len(name))), name...)
	}
	return appendU16(b, alias)
}

// The SUBSCRIBE/UNSUBSCRIBE topic: a two-octet alias, or a filter running
// to the end of the packet.

func decodeFilter(t PacketType, typ TopicType, body []byte) (alias uint16, filter []byte, err error) {
	if typ == TopicTypeName {
		if len(body) == 0 {
			return 0, nil, decodeErr2(t, "TopicFilter", ErrEmptyField)
		}
		return 0, body, nil
	}
	if err := exact2(t, body, 2, "TopicAlias"); err != nil {
		return 0, nil, err
	}
	return u16(body), nil, nil
}

func filterLen(typ TopicType, filter []byte) int {
	if typ == TopicTypeName {
		return len(filter)
	}
	return 2
}

func checkFilter(t PacketType, typ TopicType, filter []byte) error {
	switch {
	case !typ.valid():
		return encodeErr2(t, "Flags", ErrInvalidTopicIDType)
	case typ == TopicTypeName && len(filter) == 0:
		return encodeErr2(t, "TopicFilter", ErrEmptyField)
	}
	return nil
}

func appendFilter(b []byte, typ TopicType, alias uint16, filter []byte) []byte {
	if typ == TopicTypeName {
		return append(b, filter...)
	}
	return appendU16(b, alias)
}

package snpacket

import "strconv"

// QoS is a quality-of-service level: 0, 1, 2, or -1 ("publish without
// connection", which only a client's PUBLISH may carry).
type QoS int8

// The QoS levels.
const (
	QoS0      QoS = 0
	QoS1      QoS = 1
	QoS2      QoS = 2
	QoSMinus1 QoS = -1
)

// Valid reports whether q is one of the four levels.
func (q QoS) Valid() bool { return q >= QoSMinus1 && q <= QoS2 }

// String returns "0", "1", "2" or "-1".
func (q QoS) String() string { return strconv.Itoa(int(q)) }

// wire returns the two QoS bits of the Flags octet.
func (q QoS) wire() byte {
	if q == QoSMinus1 {
		return 3
	}
	return byte(q)
}

func qosFromWire(bits byte) QoS {
	if bits == 3 {
		return QoSMinus1
	}
	return QoS(bits)
}

// TopicIDType says what the two-octet TopicId field of PUBLISH, SUBSCRIBE and
// UNSUBSCRIBE holds.
type TopicIDType uint8

// The topic id types. The value 0b11 is reserved.
const (
	// TopicIDNormal: a topic id registered with REGISTER or assigned in a
	// SUBACK. In SUBSCRIBE and UNSUBSCRIBE it means a topic name follows.
	TopicIDNormal TopicIDType = 0
	// TopicIDPredefined: an id both sides know from configuration.
	TopicIDPredefined TopicIDType = 1
	// TopicIDShort: a two-character topic name carried in the id field.
	TopicIDShort TopicIDType = 2
)

// String returns "normal", "predefined", "short", or "reserved(3)".
func (t TopicIDType) String() string {
	switch t {
	case TopicIDNormal:
		return "normal"
	case TopicIDPredefined:
		return "predefined"
	case TopicIDShort:
		return "short"
	}
	return "reserved(" + strconv.Itoa(int(t)) + ")"
}

// ShortTopicID packs a short topic name of exactly two octets into the value
// carried in a TopicId field. ok is false for a name of any other length.
func ShortTopicID(name string) (id uint16, ok bool) {
	if len(name) != 2 {
		return 0, false
	}
	return uint16(name[0])<<8 | uint16(name[1]), true
}

// ShortTopicName returns the two octets of a short topic name carried in a
// TopicId field, in wire order.
func ShortTopicName(id uint16) [2]byte { return [2]byte{byte(id >> 8), byte(id)} }

// ReturnCode is the MQTT-SN 1.2 return code carried by CONNACK, REGACK, PUBACK,
// SUBACK, WILLTOPICRESP and WILLMSGRESP. Values from 0x04 are reserved; they
// decode unchanged so that a newer peer's codes are not lost.
type ReturnCode uint8

// The return codes MQTT-SN 1.2 defines.
const (
	Accepted               ReturnCode = 0x00
	RejectedCongestion     ReturnCode = 0x01
	RejectedInvalidTopicID ReturnCode = 0x02
	RejectedNotSupported   ReturnCode = 0x03
)

// String returns a short description, such as "rejected: invalid topic id".
func (rc ReturnCode) String() string {
	switch rc {
	case Accepted:
		return "accepted"
	case RejectedCongestion:
		return "rejected: congestion"
	case RejectedInvalidTopicID:
		return "rejected: invalid topic id"
	case RejectedNotSupported:
		return "rejected: not supported"
	}
	return "reserved(0x" + strconv.FormatUint(uint64(rc), 16) + ")"
}

// Bits of the Flags octet.
const (
	flagDup          = 0x80
	flagQoSShift     = 5
	flagQoSMask      = 0x60
	flagRetain       = 0x10
	flagWill         = 0x08
	flagCleanSession = 0x04
	flagTopicIDMask  = 0x03
)

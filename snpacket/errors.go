package snpacket

import "errors"

// Sentinel errors. Every error this package returns wraps exactly one of them
// inside an [*Error], so callers test with errors.Is.
var (
	// ErrShortBuffer: the datagram ends before a field the message needs.
	ErrShortBuffer = errors.New("message too short")
	// ErrLengthMismatch: the Length field does not equal the datagram size.
	ErrLengthMismatch = errors.New("length field does not match datagram size")
	// ErrInvalidLength: the Length field holds a value no message can have
	// (0x00, or a three-octet length below 4).
	ErrInvalidLength = errors.New("invalid length field")
	// ErrTrailingBytes: a message of fixed size has bytes after its last field.
	ErrTrailingBytes = errors.New("trailing bytes after message")
	// ErrUnknownType: the MsgType (1.2) or Packet Type (2.0) octet is
	// reserved in that version.
	ErrUnknownType = errors.New("unknown message type")
	// ErrInvalidQoS: a QoS value the message does not allow (QoS -1 anywhere
	// but PUBLISH, or a value outside -1..2).
	ErrInvalidQoS = errors.New("invalid QoS")
	// ErrInvalidTopicIDType: the reserved TopicIdType 0b11, a type the message
	// does not allow, or QoS -1 with a normal topic id.
	ErrInvalidTopicIDType = errors.New("invalid topic id type")
	// ErrUnsupportedProtocol: a CONNECT whose ProtocolId is not 0x01.
	ErrUnsupportedProtocol = errors.New("unsupported protocol id")
	// ErrEmptyField: a field that must hold at least one octet is empty.
	ErrEmptyField = errors.New("required field is empty")
	// ErrNestedEncapsulation: an Encapsulated message wraps another one.
	ErrNestedEncapsulation = errors.New("nested encapsulation")
	// ErrTooLong: the message would exceed 65535 octets, or an Encapsulated
	// envelope would exceed the 255 octets its one-octet Length can count.
	ErrTooLong = errors.New("message too long")
	// ErrInvalidField: a field value that cannot be encoded (for example a
	// broadcast radius above 3 in an Encapsulated Ctrl octet), or, in
	// MQTT-SN 2.0, a value the draft forbids outright (a Keep Alive of 0, a
	// Sleep Duration of 0, a Maximum Packet Size of 1 to 9).
	ErrInvalidField = errors.New("invalid field value")
	// ErrReservedBits: an MQTT-SN 2.0 packet has a reserved flag bit set,
	// which the draft calls malformed (1.2 ignores unused bits instead).
	ErrReservedBits = errors.New("reserved bits set")
)

// Error describes a failure to decode or encode one message: which operation,
// which message type, which field, and the sentinel that says why.
type Error struct {
	Op string // "decode" or "encode"
	// Version is the protocol version whose codec failed: zero or
	// Version12 for MQTT-SN 1.2, Version20 for 2.0.
	Version Version
	// Type is the type octet, when known. For Version20 it is a 2.0
	// Packet Type: read it as PacketType(Type).
	Type  MsgType
	Field string // the field at fault, using the specification's names
	Err   error  // one of the sentinel errors
}

// Error returns a text such as
// "snpacket: decode PUBLISH: field Flags: invalid QoS", or for MQTT-SN 2.0
// "snpacket: decode 2.0 PUBLISH: field Flags: reserved bits set".
func (e *Error) Error() string {
	s := "snpacket: " + e.Op
	if e.Version == Version20 {
		s += " 2.0"
	}
	if e.Field != "Length" { // a bad Length comes before the type is read
		if e.Version == Version20 {
			s += " " + PacketType(e.Type).String()
		} else {
			s += " " + e.Type.String()
		}
	}
	if e.Field != "" {
		s += ": field " + e.Field
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }

func decodeErr(t MsgType, field string, err error) error {
	return &Error{Op: "decode", Type: t, Field: field, Err: err}
}

func encodeErr(t MsgType, field string, err error) error {
	return &Error{Op: "encode", Type: t, Field: field, Err: err}
}

func decodeErr2(t PacketType, field string, err error) error {
	return &Error{Op: "decode", Version: Version20, Type: MsgType(t), Field: field, Err: err}
}

func encodeErr2(t PacketType, field string, err error) error {
	return &Error{Op: "encode", Version: Version20, Type: MsgType(t), Field: field, Err: err}
}

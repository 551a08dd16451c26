package framing

import (
	"errors"
	"fmt"

	"github.com/mochi-mqtt/server/v2/packets"
)

// ReasonCode is an MQTT 5 reason code (MQTT 5.0 section 2.4) as used in a
// CONNACK or DISCONNECT sent before the server closes a connection.
type ReasonCode byte

// Reason codes this package reports for packets it cannot accept.
const (
	// ReasonMalformedPacket (0x81): the packet cannot be parsed.
	ReasonMalformedPacket ReasonCode = 0x81
	// ReasonProtocolError (0x82): the packet parses but breaks the protocol.
	ReasonProtocolError ReasonCode = 0x82
	// ReasonUnsupportedProtocolVersion (0x84): the CONNECT asks for a
	// protocol version Gannet does not serve. MQTT 3.1.1 has no reason codes;
	// there the CONNACK return code is 0x01 (unacceptable protocol version).
	ReasonUnsupportedProtocolVersion ReasonCode = 0x84
	// ReasonPacketTooLarge (0x95): the packet is larger than the maximum
	// packet size.
	ReasonPacketTooLarge ReasonCode = 0x95
)

// String returns the specification's name for the reason code.
func (c ReasonCode) String() string {
	switch c {
	case ReasonMalformedPacket:
		return "malformed packet"
	case ReasonProtocolError:
		return "protocol error"
	case ReasonUnsupportedProtocolVersion:
		return "unsupported protocol version"
	case ReasonPacketTooLarge:
		return "packet too large"
	default:
		return fmt.Sprintf("reason code 0x%02x", byte(c))
	}
}

// Sentinel errors. Every error ReadPacket returns for bad input is an *Error
// that wraps exactly one of these, so errors.Is tells the cases apart.
var (
	// ErrMalformed means the packet cannot be parsed (reason code 0x81).
	ErrMalformed = errors.New("malformed packet")
	// ErrProtocol means the packet breaks the protocol (reason code 0x82).
	ErrProtocol = errors.New("protocol error")
	// ErrProtocolName means a CONNECT names a protocol other than "MQTT" or
	// "MQIsdp". It wraps
	// ErrProtocol. Nothing is sent back: the peer may not speak MQTT at all.
	ErrProtocolName = fmt.Errorf("wrong protocol name: %w", ErrProtocol)
	// ErrUnsupportedVersion means a CONNECT asks for a protocol version
	// other than "MQIsdp" 3 (MQTT 3.1), "MQTT" 4 (MQTT 3.1.1) or "MQTT" 5
	// (MQTT 5.0) (reason code 0x84).
	ErrUnsupportedVersion = errors.New("unsupported protocol version")
	// ErrPacketTooLarge means the packet's declared size exceeds the
	// maximum packet size (reason code 0x95). Nothing of its body has been
	// read or allocated.
	ErrPacketTooLarge = errors.New("packet too large")

	// errDecoderPanic marks a panic recovered from mochi's decoder. It wraps
	// ErrMalformed. The fuzz target fails when it sees it.
	errDecoderPanic = fmt.Errorf("codec panicked: %w", ErrMalformed)
)

// Error is the error ReadPacket returns for a packet it cannot accept. It
// says which packet, with which protocol version, and what reason code the
// server should report.
type Error struct {
	// Type is the packet type from the fixed header (packets.Connect, ...),
	// or 0 if the fixed header could not be read.
	Type byte
	// Version is the protocol version the packet was read with: for a
	// CONNECT, the protocol level byte of the packet itself (0 if the packet
	// ends before it); otherwise the version passed to ReadPacket.
	Version byte
	// Reason is the MQTT 5 reason code for this failure.
	Reason ReasonCode
	// Err is the cause; it wraps one of the package's sentinel errors.
	Err error
}

// Error returns "read <type> packet: <cause>".
func (e *Error) Error() string {
	return "read " + TypeName(e.Type) + " packet: " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Reason returns the reason code for err, and false if err is not a
// rejection of a packet (for example io.EOF or a network error), in which
// case the connection is simply closed.
func Reason(err error) (ReasonCode, bool) {
	var e *Error
	if errors.As(err, &e) && e.Reason != 0 {
		return e.Reason, true
	}
	return 0, false
}

// reasonFor maps a sentinel to its reason code.
func reasonFor(sentinel error) ReasonCode {
	switch {
	case errors.Is(sentinel, ErrPacketTooLarge):
		return ReasonPacketTooLarge
	case errors.Is(sentinel, ErrUnsupportedVersion):
		return ReasonUnsupportedProtocolVersion
	case errors.Is(sentinel, ErrProtocol):
		return ReasonProtocolError
	default:
		return ReasonMalformedPacket
	}
}

// newError builds an *Error whose cause is sentinel plus detail.
func newError(typ, version byte, sentinel error, format string, args ...any) *Error {
	detail := fmt.Sprintf(format, args...)
	return &Error{Type: typ, Version: version, Reason: reasonFor(sentinel), Err: fmt.Errorf("%w: %s", sentinel, detail)}
}

// codecError wraps an error from mochi's codec. mochi reports a packets.Code
// whose byte is the reason code; 0x82 becomes ErrProtocol and everything
// else ErrMalformed (a decoder error means the bytes did not parse).
func codecError(typ, version byte, err error) *Error {
	sentinel := ErrMalformed
	var code packets.Code
	if errors.As(err, &code) && code.Code == byte(ReasonProtocolError) {
		sentinel = ErrProtocol
	}
	return &Error{Type: typ, Version: version, Reason: reasonFor(sentinel), Err: fmt.Errorf("%w: %w", sentinel, err)}
}

// TypeName returns the name of packet type t in upper case ("PUBLISH"), or
// "reserved(0)" for a type it does not know.
func TypeName(t byte) string {
	switch t {
	case packets.Connect:
		return "CONNECT"
	case packets.Connack:
		return "CONNACK"
	case packets.Publish:
		return "PUBLISH"
	case packets.Puback:
		return "PUBACK"
	case packets.Pubrec:
		return "PUBREC"
	case packets.Pubrel:
		return "PUBREL"
	case packets.Pubcomp:
		return "PUBCOMP"
	case packets.Subscribe:
		return "SUBSCRIBE"
	case packets.Suback:
		return "SUBACK"
	case packets.Unsubscribe:
		return "UNSUBSCRIBE"
	case packets.Unsuback:
		return "UNSUBACK"
	case packets.Pingreq:
		return "PINGREQ"
	case packets.Pingresp:
		return "PINGRESP"
	case packets.Disconnect:
		return "DISCONNECT"
	case packets.Auth:
		return "AUTH"
	default:
		return "reserved(0)"
	}
}

package snclient

import (
	"errors"
	"fmt"

	"github.com/gannet-mqtt/gannet/snpacket"
)

// Sentinel errors. Errors returned by this package wrap them, so callers test
// with errors.Is.
var (
	// ErrClosed: the Client has been closed.
	ErrClosed = errors.New("client closed")
	// ErrNotConnected: the call needs an active connection (Connect first).
	ErrNotConnected = errors.New("not connected")
	// ErrNotAsleep: CheckMessages needs a client that went to sleep.
	ErrNotAsleep = errors.New("not asleep")
	// ErrNoResponse: the gateway did not answer a request after the
	// configured number of retransmissions. An active client is then lost.
	ErrNoResponse = errors.New("no response from gateway")
	// ErrGatewayDisconnected: the gateway sent a DISCONNECT the client did
	// not ask for.
	ErrGatewayDisconnected = errors.New("gateway disconnected")
	// ErrInvalidTopic: a topic that cannot be used for this operation (an
	// empty name, a short name that is not two octets, a wildcard in a
	// publish, a reserved predefined id, a normal topic at QoS -1).
	ErrInvalidTopic = errors.New("invalid topic")
	// ErrTooLarge: the message would exceed Options.MaxMessageSize.
	ErrTooLarge = errors.New("message larger than maximum message size")
	// ErrInvalidOption: an Options value Validate rejects.
	ErrInvalidOption = errors.New("invalid option")

	// ErrCongestion matches a *ReturnCodeError carrying
	// snpacket.RejectedCongestion. The spec asks the client to wait T_WAIT
	// (more than five minutes) before trying again; the caller decides.
	ErrCongestion = errors.New("rejected: congestion")
	// ErrInvalidTopicID matches a *ReturnCodeError carrying
	// snpacket.RejectedInvalidTopicID.
	ErrInvalidTopicID = errors.New("rejected: invalid topic id")
	// ErrNotSupported matches a *ReturnCodeError carrying
	// snpacket.RejectedNotSupported.
	ErrNotSupported = errors.New("rejected: not supported")
)

// ReturnCodeError is a refusal from the gateway: a CONNACK, REGACK, PUBACK,
// SUBACK, WILLTOPICRESP or WILLMSGRESP whose return code is not Accepted.
// errors.Is(err, ErrCongestion), ErrInvalidTopicID and ErrNotSupported match
// the corresponding codes.
type ReturnCodeError struct {
	// Op is the client operation, such as "connect" or "publish".
	Op string
	// Topic is the topic concerned, when there is one.
	Topic string
	// Msg is the message type that carried the refusal.
	Msg snpacket.MsgType
	// Code is the return code the gateway sent.
	Code snpacket.ReturnCode
}

// Error returns a text such as
// "snclient: publish a/b: gateway answered PUBACK: rejected: congestion".
func (e *ReturnCodeError) Error() string {
	op := e.Op
	if e.Topic != "" {
		op += " " + e.Topic
	}
	return fmt.Sprintf("snclient: %s: gateway answered %v: %v", op, e.Msg, e.Code)
}

// ReasonCodeError is a refusal from an MQTT-SN 2.0 gateway: a CONNACK,
// PUBACK, PUBREC, PUBCOMP, SUBACK, UNSUBACK or REGACK whose reason code is
// a failure (0x80 or above). errors.Is(err, ErrCongestion) matches
// snpacket.Congestion and ErrInvalidTopicID snpacket.UnknownTopicAlias, as
// for their 1.2 counterparts.
type ReasonCodeError struct {
	// Op is the client operation, such as "connect" or "publish".
	Op string
	// Topic is the topic concerned, when there is one.
	Topic string
	// Packet is the packet type that carried the refusal.
	Packet snpacket.PacketType
	// Code is the reason code the gateway sent.
	Code snpacket.ReasonCode
}

// Error returns a text such as
// "snclient: publish a/b: gateway answered PUBACK: 0x87 not authorized".
func (e *ReasonCodeError) Error() string {
	op := e.Op
	if e.Topic != "" {
		op += " " + e.Topic
	}
	return fmt.Sprintf("snclient: %s: gateway answered %v: 0x%02x %v", op, e.Packet, uint8(e.Code), e.Code)
}

// Is reports whether target is the sentinel for e's reason code.
func (e *ReasonCodeError) Is(target error) bool {
	switch e.Code {
	case snpacket.Congestion:
		return target == ErrCongestion
	case snpacket.UnknownTopicAlias:
		return target == ErrInvalidTopicID
	}
	return false
}

// Is reports whether target is the sentinel for e's return code.
func (e *ReturnCodeError) Is(target error) bool {
	switch e.Code {
	case snpacket.RejectedCongestion:
		return target == ErrCongestion
	case snpacket.RejectedInvalidTopicID:
		return target == ErrInvalidTopicID
	case snpacket.RejectedNotSupported:
		return target == ErrNotSupported
	}
	return false
}

package mqttcore

import "errors"

// Sentinel errors. Errors returned by the core wrap one of these with %w and
// say which operation failed, so callers test them with errors.Is and map them
// to protocol reason codes in one place.
var (
	// ErrInvalidTopic: a topic name is empty, too long, not UTF-8, contains
	// a NUL or a wildcard, or has too many levels.
	ErrInvalidTopic = errors.New("invalid topic name")
	// ErrInvalidFilter: a topic filter or shared-subscription filter is
	// malformed.
	ErrInvalidFilter = errors.New("invalid topic filter")
	// ErrReservedTopic: a client tried to publish to a $SYS topic.
	ErrReservedTopic = errors.New("reserved topic")
	// ErrInvalidQoS: a QoS outside 0..2.
	ErrInvalidQoS = errors.New("invalid qos")
	// ErrInvalidClientID: an empty client id was given to Attach.
	ErrInvalidClientID = errors.New("invalid client id")
	// ErrPayloadTooLarge: a payload exceeds Config.MaxPayloadSize.
	ErrPayloadTooLarge = errors.New("payload too large")
	// ErrTooManySessions: Config.MaxSessions sessions exist already.
	ErrTooManySessions = errors.New("too many sessions")
	// ErrRetainedFull: Config.MaxRetained retained messages are stored.
	ErrRetainedFull = errors.New("too many retained messages")
	// ErrInflightFull: more inbound QoS 2 messages await PUBREL than
	// Config.MaxInflight allows (MQTT 5 "receive maximum exceeded").
	ErrInflightFull = errors.New("in-flight window full")
	// ErrQueueFull: an inline channel subscriber's channel was full and a
	// message was dropped. Session queues never return it: they drop by
	// policy and count.
	ErrQueueFull = errors.New("queue full")
	// ErrUnknownPacketID: an acknowledgement names a packet id that is not in
	// flight in the state the acknowledgement expects.
	ErrUnknownPacketID = errors.New("unknown packet id")
	// ErrDetached: the Conn is no longer attached to its session (it was
	// detached, disconnected, or the session ended).
	ErrDetached = errors.New("connection detached")
	// ErrTakenOver: another front-end attached with the same client id.
	ErrTakenOver = errors.New("session taken over")
	// ErrKicked: an administrator ended the connection with Broker.Kick.
	ErrKicked = errors.New("connection kicked")
	// ErrClosed: the broker is closed.
	ErrClosed = errors.New("broker closed")
	// ErrNotAuthorized: the broker's Authorizer refused a publish,
	// subscribe or will (see Authorizer); counted in Stats.Denied.
	ErrNotAuthorized = errors.New("not authorized")
	// ErrInvalidConfig: Config.Validate rejected a value.
	ErrInvalidConfig = errors.New("invalid config")
	// ErrCongestion: flow control held a publish for longer than
	// Config.HoldTimeout because a subscriber entitled to it at QoS 1 or 2
	// had a full queue; the message was not accepted and the publisher
	// should retry later (MQTT-SN "rejected: congestion", MQTT 5 0x97).
	ErrCongestion = errors.New("congestion: a subscriber's queue is full")
	// ErrUnavailable: a transparent session's remote broker could not be
	// reached or did not answer in time, or said it is busy (upstream.go);
	// the client should retry later (MQTT-SN "rejected: congestion").
	ErrUnavailable = errors.New("remote broker unavailable")
	// ErrStoreFailed: the journal could not make a change durable (a full
	// disk, an I/O error); the acknowledgement is refused and nothing that
	// was already stored is lost.
	ErrStoreFailed = errors.New("store failed")
)

package gateway

import "sync/atomic"

// Stats counts what the gateway did and refused. All fields are cumulative
// except Clients, Asleep.
type Stats struct {
	Received      uint64 // datagrams read
	Sent          uint64 // datagrams written
	Malformed     uint64 // datagrams that did not decode, dropped
	Oversized     uint64 // datagrams larger than max_message_size, dropped
	LoopFull      uint64 // datagrams dropped because their loop's queue was full
	UnknownClient uint64 // datagrams from unknown senders answered with DISCONNECT
	Unexpected    uint64 // messages that make no sense in the client's state, ignored
	InvalidTopic  uint64 // PUBLISH with an unknown topic id, rejected
	Rejected      uint64 // CONNECT, REGISTER, PUBLISH or SUBSCRIBE refused
	TooLarge      uint64 // messages not delivered because they exceed max_message_size
	Retransmits   uint64 // REGISTER, PUBLISH and PUBREL resent after retry_interval
	QoSMinus1     uint64 // QoS -1 publishes accepted
	Clients       int64  // clients with gateway state (active, asleep or awake)
	Asleep        int64  // of those, asleep
}

type stats struct {
	received, sent, malformed, oversized, loopFull, unknownClient atomic.Uint64
	unexpected, invalidTopic, rejected, tooLarge, retransmits     atomic.Uint64
	qosMinus1                                                     atomic.Uint64
	clients, asleep                                               atomic.Int64
}

func (s *stats) snapshot() Stats {
	return Stats{
		Received: s.received.Load(), Sent: s.sent.Load(), Malformed: s.malformed.Load(),
		Oversized: s.oversized.Load(), LoopFull: s.loopFull.Load(),
		UnknownClient: s.unknownClient.Load(), Unexpected: s.unexpected.Load(),
		InvalidTopic: s.invalidTopic.Load(), Rejected: s.rejected.Load(),
		TooLarge: s.tooLarge.Load(), Retransmits: s.retransmits.Load(),
		QoSMinus1: s.qosMinus1.Load(), Clients: s.clients.Load(), Asleep: s.asleep.Load(),
	}
}

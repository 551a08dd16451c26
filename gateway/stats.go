package gateway

import "sync/atomic"

// Stats counts what the gateway did and refused. All fields are cumulative
// except Clients, Asleep.
type Stats struct {
	Received      uint64 // datagrams read
	Sent          uint64 // datagrams written
	Malformed     uint64 // datagrams that did not decode, dropped
	UnknownClient uint64 // datagrams from unknown senders answered with DISCONNECT
	Unexpected    uint64 // messages that make no sense in the client's state, ignored
	InvalidTopic  uint64 // PUBLISH with an unknown topic id, rejected
	Rejected      uint64 // CONNECT, REGISTER, PUBLISH or SUBSCRIBE refused (limits included)
	Retransmits   uint64 // REGISTER, PUBLISH and PUBREL resent after retry_interval or a repeated wake PINGREQ
	QoSMinus1     uint64 // QoS -1 publishes accepted
	Migrated      uint64 // asleep clients that woke from a new address (address_migration)
	// IdentityRefused counts CONNECTs refused because the client id is not
	// the one the link's identity binding (DTLS PSK identity or
	// certificate) allows; they are in Rejected too.
	IdentityRefused uint64
	// HeldRepeats counts QoS 1/2 PUBLISHes a sensor resent while the core
	// still held the first one's acknowledgement (flow control or the
	// journal's commit), or that crossed that deferred answer: they are
	// not published again (a crossing one gets the answer again).
	HeldRepeats uint64
	Lost        uint64 // clients gone silent (keep-alive, sleep or retries expired): state lost
	Clients     int64  // clients with gateway state (active, asleep or awake)
	Asleep      int64  // of those, asleep
	// Unverified counts the clients on probation: nothing received since
	// their CONNACK (max_unverified).
	Unverified int64
	// LimitHits counts the hits of each configurable limit, indexed by Limit.
	LimitHits LimitHits
	// Denied counts requests the core's Authorizer (the ACL) refused:
	// PUBLISH (QoS -1 included), REGISTER, SUBSCRIBE, wills and will
	// updates; they are in Rejected too. See authorize.go.
	Denied uint64

	// MQTT-SN 2.0 (stats2.go).
	V2 StatsV2
}

type stats struct {
	received, sent, malformed, unknownClient        atomic.Uint64
	unexpected, invalidTopic, rejected, retransmits atomic.Uint64
	qosMinus1, migrated                             atomic.Uint64
	identityRefused, denied, heldRepeats, lost      atomic.Uint64
	clients, asleep, unverified                     atomic.Int64
	stats2                                          // MQTT-SN 2.0 (stats2.go)
}

func (s *stats) snapshot(l *limits) Stats {
	st := Stats{
		Received: s.received.Load(), Sent: s.sent.Load(), Malformed: s.malformed.Load(),
		UnknownClient: s.unknownClient.Load(), Unexpected: s.unexpected.Load(),
		InvalidTopic: s.invalidTopic.Load(), Rejected: s.rejected.Load(),
		Retransmits: s.retransmits.Load(),
		QoSMinus1:   s.qosMinus1.Load(), Migrated: s.migrated.Load(), Clients: s.clients.Load(), Asleep: s.asleep.Load(),
	}
	st.IdentityRefused = s.identityRefused.Load()
	st.Denied, st.Lost = s.denied.Load(), s.lost.Load()
	st.HeldRepeats = s.heldRepeats.Load()
	st.Unverified = s.unverified.Load()
	st.V2 = s.snapshot2()
	for i := range st.LimitHits {
		st.LimitHits[i] = l.hits[i].Load()
	}
	return st
}

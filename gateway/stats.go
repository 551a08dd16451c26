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

	// Kept as clients change, so that a metrics scrape reads them without
	// a pass over every client (cmd/gannet/metrics.go; Counts walks the
	// clients and gives the same numbers).

	// Active and Awake are the clients in those states (Asleep above).
	Active, Awake int64
	// Registrations is the number of normal topic ids registered, over
	// all clients.
	Registrations int64
	// Forwarded is the number of clients behind a forwarder; Forwarders
	// the number of distinct forwarders (link and address) with clients.
	Forwarded, Forwarders int64
	// PublishesIn counts PUBLISHes from clients the core took (not refused
	// at once), by QoS, indexed by QoS+1: [0] is QoS -1 (the connectionless
	// ones, also in QoSMinus1, and any from connected clients), [1] QoS 0,
	// [2] QoS 1, [3] QoS 2.
	PublishesIn [4]uint64
	// PublishesOut counts PUBLISHes the gateway sent to clients, first
	// transmissions only (resends are in Retransmits), indexed by QoS+1
	// ([0], QoS -1, stays 0: the gateway never sends it).
	PublishesOut [4]uint64

	// MQTT-SN 2.0 (stats2.go).
	V2 StatsV2
}

// metricsStats are the counters of Stats' last block.
type metricsStats struct {
	active, awake, registrations, forwarded, forwarders atomic.Int64
	publishesIn, publishesOut                           [4]atomic.Uint64
}

// stateGauge returns the gauge of Stats' last block that counts clients in
// state st, or nil (Asleep is kept beside the index of sleepers).
func (s *stats) stateGauge(st State) *atomic.Int64 {
	switch st {
	case StateActive:
		return &s.active
	case StateAwake:
		return &s.awake
	}
	return nil
}

// topicsChanged counts the change in c's registrations since it had n.
// Called on c's loop after each change to c.topics of an indexed client.
func (c *client) topicsChanged(n int) {
	if d := len(c.topics.entries) - n; d != 0 && !c.removed {
		c.l.g.stats.registrations.Add(int64(d))
	}
}

// addTopic adds name to c's registrations (registry.add) and counts it.
func (c *client) addTopic(name string, flag uint8) *topicEntry {
	n := len(c.topics.entries)
	e := c.topics.add(name, flag, c.l.g.live().MaxTopicsPerClient)
	c.topicsChanged(n)
	return e
}

// resetTopics forgets c's registrations and counts them gone.
func (c *client) resetTopics() {
	n := len(c.topics.entries)
	c.topics.reset()
	c.topicsChanged(n)
}

// removeTopicID forgets c's registration id and counts it gone.
func (c *client) removeTopicID(id uint16) {
	n := len(c.topics.entries)
	c.topics.removeID(id)
	c.topicsChanged(n)
}

// countPublish counts a PUBLISH of QoS q in one of the PublishesIn/Out
// arrays.
func countPublish(a *[4]atomic.Uint64, q int8) {
	if i := int(q) + 1; i >= 0 && i < len(a) {
		a[i].Add(1)
	}
}

type stats struct {
	received, sent, malformed, unknownClient        atomic.Uint64
	unexpected, invalidTopic, rejected, retransmits atomic.Uint64
	qosMinus1, migrated                             atomic.Uint64
	identityRefused, denied, heldRepeats, lost      atomic.Uint64
	clients, asleep, unverified                     atomic.Int64
	metricsStats
	stats2 // MQTT-SN 2.0 (stats2.go)
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
	st.Active, st.Awake = s.active.Load(), s.awake.Load()
	st.Registrations = s.registrations.Load()
	st.Forwarded, st.Forwarders = s.forwarded.Load(), s.forwarders.Load()
	for i := range st.PublishesIn {
		st.PublishesIn[i] = s.publishesIn[i].Load()
		st.PublishesOut[i] = s.publishesOut[i].Load()
	}
	st.V2 = s.snapshot2()
	for i := range st.LimitHits {
		st.LimitHits[i] = l.hits[i].Load()
	}
	return st
}

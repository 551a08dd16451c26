package mqttcore

import (
	"sync/atomic"
	"time"
)

// counters are the broker's atomic counters and gauges.
type counters struct {
	sessions  atomic.Int64 // gauge: live sessions
	connected atomic.Int64 // gauge: attached sessions
	queued    atomic.Int64 // gauge: queued (not in flight) entries
	retained  atomic.Int64 // gauge: retained messages
	received  atomic.Uint64
	sent      atomic.Uint64
	dropped   atomic.Uint64
	expired   atomic.Uint64
	wills     atomic.Uint64

	limitSessions atomic.Uint64
	limitQueue    atomic.Uint64
	limitInflight atomic.Uint64
	limitPayload  atomic.Uint64
	limitRetained atomic.Uint64
	limitHold     atomic.Uint64

	held       atomic.Uint64 // publishes held by backpressure
	heldNow    atomic.Int64  // gauge: publishes held now
	commits    atomic.Uint64 // journal commits completed
	commitErrs atomic.Uint64 // journal commits that failed
	commitNs   atomic.Uint64 // total journal commit latency

	deniedPublish   atomic.Uint64
	deniedSubscribe atomic.Uint64
	deniedRead      atomic.Uint64
	deniedWill      atomic.Uint64

	opsCounters // stats_ops.go
}

// Stats is a snapshot of the broker's counters, for metrics and $SYS.
type Stats struct {
	// Sessions is the number of live sessions, attached or offline.
	Sessions int64
	// Connected is the number of sessions with a front-end attached.
	Connected int64
	// Queued is the number of messages waiting in session queues (not
	// counting in-flight ones).
	Queued int64
	// Retained is the number of retained messages.
	Retained int64
	// MessagesReceived counts messages accepted for publishing from
	// clients, inline clients and wills ($SYS updates are not counted).
	MessagesReceived uint64
	// MessagesSent counts deliveries handed to front-ends by Next (not
	// retransmissions, not inline callbacks).
	MessagesSent uint64
	// Dropped counts messages dropped from full session queues and full
	// inline channels.
	Dropped uint64
	// SessionsExpired counts sessions ended by their expiry.
	SessionsExpired uint64
	// WillsPublished counts wills published.
	WillsPublished uint64
	// LimitHits counts refusals and drops per limit.
	LimitHits LimitHits
	// Held counts QoS 1/2 publishes whose acknowledgement backpressure
	// held because a subscriber's queue was full; HeldNow is how many are
	// held at the moment.
	Held    uint64
	HeldNow int64
	// Commits counts journal commits (one per Commit call that carried
	// ops) and CommitErrors the failed ones; CommitTime is their total
	// latency from Commit to done.
	Commits      uint64
	CommitErrors uint64
	CommitTime   time.Duration
	// CommitLatency counts the commits of Commits by their latency:
	// [i] those up to CommitBuckets()[i] and over the one before, the last
	// those over every bound.
	CommitLatency [len(commitBuckets) + 1]uint64
	// QueueFill counts the sessions whose queue holds at least i tenths of
	// MaxQueued (and less than i+1) at [i]; [0], the rest, is not counted.
	// FullestQueue reads it.
	QueueFill [QueueClasses]int64
	// Denied counts what the Authorizer refused.
	Denied Denied
	// Uptime is the time since New.
	Uptime time.Duration
}

// LimitHits counts how often each configured limit was hit.
type LimitHits struct {
	Sessions uint64 // Attach refused: MaxSessions
	Queue    uint64 // message dropped: MaxQueued
	Inflight uint64 // inbound QoS 2 refused: MaxInflight
	Payload  uint64 // publish or will refused: MaxPayloadSize
	Retained uint64 // retained message refused: MaxRetained
	Hold     uint64 // publish refused with ErrCongestion after HoldTimeout
}

// Denied counts the Authorizer's refusals per action.
type Denied struct {
	Publish   uint64 // Conn.Publish and Broker.Authorize(ActionPublish) refused
	Subscribe uint64 // Conn.Subscribe refused
	Read      uint64 // a message not queued for a session whose user may not read it
	Will      uint64 // a will refused at Attach or Conn.SetWill
}

// Stats returns a snapshot of the counters. Each value is read atomically;
// the snapshot as a whole is not.
func (b *Broker) Stats() Stats {
	c := &b.stats
	st := Stats{
		Sessions:         c.sessions.Load(),
		Connected:        c.connected.Load(),
		Queued:           c.queued.Load(),
		Retained:         c.retained.Load(),
		MessagesReceived: c.received.Load(),
		MessagesSent:     c.sent.Load(),
		Dropped:          c.dropped.Load(),
		SessionsExpired:  c.expired.Load(),
		WillsPublished:   c.wills.Load(),
		LimitHits: LimitHits{
			Sessions: c.limitSessions.Load(),
			Queue:    c.limitQueue.Load(),
			Inflight: c.limitInflight.Load(),
			Payload:  c.limitPayload.Load(),
			Retained: c.limitRetained.Load(),
			Hold:     c.limitHold.Load(),
		},
		Held:         c.held.Load(),
		HeldNow:      c.heldNow.Load(),
		Commits:      c.commits.Load(),
		CommitErrors: c.commitErrs.Load(),
		CommitTime:   time.Duration(c.commitNs.Load()),
		Denied: Denied{
			Publish:   c.deniedPublish.Load(),
			Subscribe: c.deniedSubscribe.Load(),
			Read:      c.deniedRead.Load(),
			Will:      c.deniedWill.Load(),
		},
		Uptime: b.now().Sub(b.started),
	}
	c.snapshotOps(&st)
	return st
}

package mqttcore

import (
	"fmt"
	"strings"
	"time"
)

// SessionRecord is the durable form of one session: its header goes to
// the Journal as an OpSession, its entries as OpEntry, and Journal.Load
// hands the whole record back when the broker starts. Messages are shared
// pointers: many records may point at one message, and a journal writes each
// message once.
type SessionRecord struct {
	// ID is the session's stable id: journal keys use it, and a restored
	// session keeps it.
	ID       uint64
	ClientID string
	// Username is the user of the session's latest attachment, whom the
	// Authorizer is asked whether the offline session may receive a message.
	Username string
	// State is the session's state when saved. A session that was active
	// comes back lost: its will is published after its delay unless the
	// client reconnects first.
	State State
	// Will is the session's will, or nil.
	Will *Will
	// Expiry is the session expiry interval.
	Expiry time.Duration
	// SleepAt, WillAt and ExpireAt are the pending deadlines (zero: none).
	SleepAt, WillAt, ExpireAt time.Time
	// Subscriptions lists the filters (with any $share prefix) and options.
	Subscriptions []SubscriptionRecord
	// Queue lists the queued messages, oldest first.
	Queue []QueuedRecord
	// Inflight lists outbound QoS 1/2 messages awaiting acknowledgement, in
	// send order.
	Inflight []QueuedRecord
	// InboundQoS2 lists inbound QoS 2 packet ids awaiting PUBREL.
	InboundQoS2 []uint16
	// FrontEnd is the front-end's opaque state (Conn.SetFrontEndState),
	// or nil. Only Journal.Load fills it in.
	FrontEnd []byte
}

// SubscriptionRecord is one saved subscription.
type SubscriptionRecord struct {
	Filter  string
	Options SubOptions
}

// QueuedRecord is one saved queued or in-flight message.
type QueuedRecord struct {
	// Seq is the message's sequence number: the same in every session
	// that holds the message, increasing in the order the core accepted
	// messages (a journal's entries of one session sort by it).
	Seq     uint64
	Message *Message
	QoS     QoS
	Retain  bool
	// Expires is the message's absolute expiry (zero: none).
	Expires time.Time
	// PacketID is the outbound packet id of an in-flight message.
	PacketID uint16
	// Released is set for an in-flight QoS 2 message whose PUBREC arrived
	// (PUBREL is due).
	Released bool
	// Inflight is set for an entry that was sent and awaits its
	// acknowledgement (PacketID is its id); it comes back as a
	// retransmission with Dup set.
	Inflight bool
}

// restoreGrace is how long a session that was attached when the broker
// stopped, and whose front-end keeps state of its own (an MQTT-SN sensor,
// which never saw its gateway go away), waits as if asleep for its
// front-end to re-attach it before it counts as lost.
const restoreGrace = time.Minute

// Restored is a session the journal brought back with front-end state
// (Conn.SetFrontEndState): the front-end rebuilds its side from it. The
// state of a session that comes back disconnected or lost is also held as
// KeepFrontEndState holds it, for Conn.TakeFrontEndState when the session
// is next attached (by its front-end rebuilding it, or by the client
// resuming it).
type Restored struct {
	ClientID string
	// State is the core session's state after the restart: a session that
	// was active comes back asleep for a grace period, waiting for its
	// front-end to re-attach it.
	State    State
	FrontEnd []byte
}

// Durable reports whether the broker has a journal: whether front-end state
// given to SetFrontEndState is kept.
func (b *Broker) Durable() bool { return b.journal != nil }

// Restored returns, once, the sessions with front-end state that New loaded
// from the journal; later calls return nil.
func (b *Broker) Restored() []Restored {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.restored
	b.restored = nil
	return r
}

// SetFrontEndState stores the front-end's own state with a journalled
// session (for the MQTT-SN gateway: the sensor's address, topic ids and
// sleep), replacing what was stored; nil deletes it. It is written lazily
// (with the next commit, within a fraction of a second) and handed back by
// Restored after a restart. The core keeps no copy in memory. Without a
// journal, or for a session that is not persistent, it does nothing.
func (c *Conn) SetFrontEndState(data []byte) {
	b, s := c.b, c.s
	if b.journal == nil {
		return
	}
	s.mu.Lock()
	ok := s.persist && c.attachedLocked()
	s.mu.Unlock()
	if ok {
		b.lazyOp(Op{Kind: OpFrontEnd, SessionID: s.id, FrontEnd: data})
	}
}

// KeepFrontEndState is for a front-end that is about to end this
// attachment (Disconnect, Lost, Sleep) of a session that outlives it: the
// core holds data in memory with the detached session, for the front-end to
// take back with TakeFrontEndState when the client resumes the session,
// and journals it as SetFrontEndState does. The data goes when it is
// taken, when the session ends (expiry, a clean start, a kick) or when
// KeepFrontEndState is called again. Only what a front-end keeps this way
// costs memory: SetFrontEndState keeps none. For a session that ends with
// its attachment (session expiry 0), or a Conn no longer attached, it does
// nothing. The core does not look at data; the caller must not change it
// afterwards.
func (c *Conn) KeepFrontEndState(data []byte) {
	c.b.mu.Lock()
	c.b.keepUnlock(c.s, data, c.attachedLocked)
}

// KeepDetachedFrontEndState is KeepFrontEndState for a front-end that
// forgets a client whose attachment ended earlier (a sleeper that overslept
// its deadline): the core holds data with the client's session, for
// TakeFrontEndState when the client resumes it, and journals it, if the
// session is detached, still alive and outlives its attachments (session
// expiry above 0). It reports whether it kept data; the caller must not
// change data afterwards.
func (b *Broker) KeepDetachedFrontEndState(clientID string, data []byte) bool {
	b.mu.Lock()
	s := b.sessions[clientID]
	if s == nil {
		b.mu.Unlock()
		return false
	}
	return b.keepUnlock(s, data, func() bool { return !s.dead && s.conn == nil })
}

// keepUnlock holds data with s for TakeFrontEndState and journals it, if
// s outlives its attachments and may (called with s.mu held) allows it,
// and reports whether it did. The caller holds b.mu, which keepUnlock
// releases.
func (b *Broker) keepUnlock(s *Session, data []byte, may func() bool) bool {
	s.mu.Lock()
	ok := may() && s.expiry > 0
	persist := s.persist
	s.mu.Unlock()
	if ok {
		if b.kept == nil {
			b.kept = map[*Session][]byte{}
		}
		b.kept[s] = data
	}
	b.mu.Unlock()
	if ok && persist && b.journal != nil {
		b.lazyOp(Op{Kind: OpFrontEnd, SessionID: s.id, FrontEnd: data})
	}
	return ok
}

// TakeFrontEndState returns, once, the state kept with KeepFrontEndState
// for this attachment's session (after a restart: the journalled front-end
// state of a session that came back disconnected or lost), or nil. A front-end
// calls it after Attach resumed a session; what it does not take stays
// until the session ends.
func (c *Conn) TakeFrontEndState() []byte {
	b, s := c.b, c.s
	b.mu.Lock()
	defer b.mu.Unlock()
	s.mu.Lock()
	ok := c.attachedLocked()
	s.mu.Unlock()
	data, kept := b.kept[s]
	if !ok || !kept {
		return nil
	}
	delete(b.kept, s)
	return data
}

// restore rebuilds one session from its record. Called by New before the
// timer loop starts.
func (b *Broker) restore(r *SessionRecord) error {
	if r == nil || r.ClientID == "" {
		return fmt.Errorf("restore session: %w", ErrInvalidClientID)
	}
	if err := b.validateWill(r.Will); err != nil {
		return fmt.Errorf("restore session %q: %w", r.ClientID, err)
	}
	now := b.now().UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, dup := b.sessions[r.ClientID]; dup {
		return fmt.Errorf("restore session %q: saved twice", r.ClientID)
	}
	if len(b.sessions) >= b.conf().MaxSessions {
		b.stats.limitSessions.Add(1)
		return fmt.Errorf("restore session %q: %w", r.ClientID, ErrTooManySessions)
	}
	id := r.ID
	if id == 0 {
		id = b.nextID + 1
	}
	b.nextID = max(b.nextID, id)
	s := &Session{b: b, clientID: strings.Clone(r.ClientID), id: id, heapIdx: -1,
		state: r.State, will: r.Will, expiry: r.Expiry, persist: b.journal != nil && r.Expiry > 0, user: strings.Clone(r.Username),
		sleepAt: unixNano(r.SleepAt), willAt: unixNano(r.WillAt), expireAt: unixNano(r.ExpireAt)}

	b.tree.mu.Lock()
	for _, sr := range r.Subscriptions {
		group, f, err := parseFilter(sr.Filter, b.conf().MaxTopicLevels)
		if err == nil {
			err = validSubOptions(sr.Filter, sr.Options)
		}
		if err != nil {
			for _, sub := range s.subs {
				b.tree.remove(sub)
			}
			b.tree.mu.Unlock()
			return fmt.Errorf("restore session %q: %w", r.ClientID, err)
		}
		sub := &subscription{sess: s, filter: strings.Clone(sr.Filter), opts: sr.Options}
		b.tree.insert(sub, f, group)
		s.subs = append(s.subs, sub)
	}
	b.tree.mu.Unlock()

	entryOf := func(q QueuedRecord) entry {
		m := q.Message
		if m.expiresAt == 0 && !q.Expires.IsZero() {
			m.expiresAt = q.Expires.UnixNano()
		}
		if q.Seq != 0 {
			m.seq = q.Seq
			m.markStored()
		}
		e := entry{msg: m, qos: q.QoS, pid: q.PacketID}
		if q.Retain {
			e.flags |= flagRetain
		}
		if s.persist && q.Seq != 0 {
			e.flags |= flagDurable
		}
		return e
	}
	var queued int64
	for _, q := range r.Queue {
		if q.Message == nil {
			continue
		}
		// A restored queue keeps everything it held (up to the overshoot
		// bound), whatever the policy: it was accepted before.
		if _, didDrop, _ := s.q.push(entryOf(q), b.conf().MaxQueued, true); !didDrop {
			queued++
		} else {
			s.dropped++
			b.stats.dropped.Add(1)
			b.stats.limitQueue.Add(1)
		}
	}
	for _, q := range r.Inflight {
		if q.Message == nil && !q.Released {
			continue
		}
		if q.Message == nil {
			q.Message = &Message{} // only the PUBREL is left to send
		}
		e := entryOf(q)
		e.flags |= flagEverSent
		if q.Released {
			e.flags |= flagRecvd
		}
		s.inflight = append(s.inflight, e)
	}
	s.inQoS2 = append([]uint16(nil), r.InboundQoS2...)
	b.sessions[s.clientID] = s
	b.stats.sessions.Add(1)
	b.stats.queued.Add(queued)
	s.reclass()
	if int(s.q.n) >= b.conf().MaxQueued {
		s.setFull(true)
	}
	switch {
	case s.state == StateActive && len(r.FrontEnd) > 0:
		// Its front-end will re-attach it: wait as if asleep.
		s.state = StateAsleep
		s.sleepAt = addDur(now, restoreGrace)
	case s.state == StateActive:
		// The broker stopped under it: treat it as a lost connection now.
		s.state = StateLost
		if s.will != nil {
			s.willAt = addDur(now, s.will.Delay)
		}
		if s.expiry != NeverExpire {
			s.expireAt = addDur(now, s.expiry)
		}
	}
	if s.state == StateAsleep {
		s.setEligible(true)
	}
	if len(r.FrontEnd) > 0 {
		b.restored = append(b.restored, Restored{ClientID: s.clientID, State: s.state, FrontEnd: r.FrontEnd})
		if s.state != StateAsleep {
			// Disconnected or lost: if its front-end does not rebuild it,
			// the state waits for the client to resume the session.
			if b.kept == nil {
				b.kept = map[*Session][]byte{}
			}
			b.kept[s] = r.FrontEnd
		}
	}
	b.scheduleLocked(s)
	return nil
}

// load restores every session and retained message the journal has.
func (b *Broker) load() error {
	if b.journal == nil {
		return nil
	}
	var retained []*Message
	maxSeq, err := b.journal.Load(b.restore, func(m *Message) error {
		if m == nil || b.validTopic(m.Topic) != nil {
			return fmt.Errorf("restore retained message: %w", ErrInvalidTopic)
		}
		m.markStored()
		if m.expiresAt == 0 && m.Props != nil && m.Props.MessageExpiry > 0 {
			// The journal hands back what is left of the lifetime.
			m.expiresAt = addDur(b.now().UnixNano(), m.Props.MessageExpiry)
		}
		retained = append(retained, m)
		_, err := b.retained.SetRetained(m, max(b.conf().MaxRetained, b.retained.RetainedCount()+1))
		return err
	})
	if err != nil {
		return fmt.Errorf("mqttcore: load journal: %w", err)
	}
	for _, m := range retained {
		if m.seq == 0 { // numbered so sessions that get it on subscribe can journal it
			maxSeq++
			m.seq = maxSeq
		}
	}
	b.seq.Store(maxSeq)
	return nil
}

// unixTime converts unix nanoseconds (0: none) to a time.
func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// unixNano converts a time (zero: none) to unix nanoseconds.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

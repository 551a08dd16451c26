package mqttcore

import (
	"fmt"
	"strings"
	"time"
)

// SessionRecord is the durable form of one session, as handed to
// Store.SaveSessions when the broker closes and taken from
// Store.LoadSessions when it starts. Messages are shared pointers: many
// records may point at one message, and a disk store should write each
// message once.
type SessionRecord struct {
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
}

// SubscriptionRecord is one saved subscription.
type SubscriptionRecord struct {
	Filter  string
	Options SubOptions
}

// QueuedRecord is one saved queued or in-flight message.
type QueuedRecord struct {
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
}

// snapshot builds the record of s. It takes b.mu, tree.mu and s.mu in
// order.
func (b *Broker) snapshot(s *Session) *SessionRecord {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := &SessionRecord{
		ClientID: s.clientID,
		Username: s.user,
		State:    s.state,
		Will:     s.will,
		Expiry:   s.expiry,
		SleepAt:  unixTime(s.sleepAt),
		WillAt:   unixTime(s.willAt),
		ExpireAt: unixTime(s.expireAt),
	}
	b.tree.mu.RLock()
	for _, sub := range s.subs {
		r.Subscriptions = append(r.Subscriptions, SubscriptionRecord{Filter: sub.filter, Options: sub.opts})
	}
	b.tree.mu.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := func(e *entry) QueuedRecord {
		return QueuedRecord{
			Message:  e.msg,
			QoS:      e.qos,
			Retain:   e.flags&flagRetain != 0,
			Expires:  unixTime(e.msg.expiresAt),
			PacketID: e.pid,
			Released: e.flags&flagRecvd != 0,
		}
	}
	for i := int32(0); i < s.q.n; i++ {
		r.Queue = append(r.Queue, rec(s.q.at(i)))
	}
	for i := range s.inflight {
		r.Inflight = append(r.Inflight, rec(&s.inflight[i]))
	}
	r.InboundQoS2 = append(r.InboundQoS2, s.inQoS2...)
	return r
}

// saveSessions hands every session's record to the store. Called by Close
// once nothing is attached and the timer loop has stopped; no lock is held
// while the store runs.
func (b *Broker) saveSessions() error {
	b.mu.Lock()
	all := make([]*Session, 0, len(b.sessions))
	for _, s := range b.sessions {
		all = append(all, s)
	}
	b.mu.Unlock()
	err := b.store.SaveSessions(func(yield func(*SessionRecord) error) error {
		for _, s := range all {
			if err := yield(b.snapshot(s)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mqttcore: save sessions: %w", err)
	}
	return nil
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
	if len(b.sessions) >= b.cfg.MaxSessions {
		b.stats.limitSessions.Add(1)
		return fmt.Errorf("restore session %q: %w", r.ClientID, ErrTooManySessions)
	}
	b.nextID++
	s := &Session{b: b, clientID: strings.Clone(r.ClientID), id: b.nextID, heapIdx: -1,
		state: r.State, will: r.Will, expiry: r.Expiry, user: strings.Clone(r.Username),
		sleepAt: unixNano(r.SleepAt), willAt: unixNano(r.WillAt), expireAt: unixNano(r.ExpireAt)}

	b.tree.mu.Lock()
	for _, sr := range r.Subscriptions {
		group, f, err := parseFilter(sr.Filter, b.cfg.MaxTopicLevels)
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
		e := entry{msg: m, qos: q.QoS, pid: q.PacketID}
		if q.Retain {
			e.flags |= flagRetain
		}
		return e
	}
	var queued int64
	for _, q := range r.Queue {
		if q.Message == nil {
			continue
		}
		if !s.q.push(entryOf(q), b.cfg.MaxQueued) {
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
	if s.state == StateActive {
		// The broker stopped under it: treat it as a lost connection now.
		s.state = StateLost
		if s.will != nil {
			s.willAt = addDur(now, s.will.Delay)
		}
		if s.expiry != NeverExpire {
			s.expireAt = addDur(now, s.expiry)
		}
	}
	b.scheduleLocked(s)
	return nil
}

// loadSessions restores every session the store has.
func (b *Broker) loadSessions() error {
	if err := b.store.LoadSessions(b.restore); err != nil {
		return fmt.Errorf("mqttcore: load sessions: %w", err)
	}
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

package mqttcore

import (
	"fmt"
	"time"
)

// FrontEnd is what a protocol front-end (the MQTT listener, the MQTT-SN
// gateway) implements for each attachment. The core calls it without holding
// any of its locks.
type FrontEnd interface {
	// Notify says the session has deliverable work: the front-end should
	// call Conn.Next until it reports nothing. It must not block (typically
	// a non-blocking send on a 1-buffered channel) and must tolerate
	// spurious and late calls, including after the Conn was detached.
	Notify()
	// Close ends the attachment from the core's side: reason wraps
	// ErrTakenOver (same client id attached elsewhere), ErrKicked or
	// ErrClosed. The Conn is already detached when Close is called; the
	// front-end should drop its network connection. It must not block.
	Close(reason error)
	// Acked completes an acknowledgement the core deferred (Publish
	// reported PublishPending, or Sync reported true): send it, or with
	// a.Err set the protocol's refusal. It is called exactly once per
	// deferred acknowledgement, from any goroutine (possibly before
	// Publish returns, possibly after the Conn was detached), and must not
	// block: typically it posts to the connection's own goroutine.
	Acked(a Ack)
}

// ConnectOptions are what a front-end learned from CONNECT.
type ConnectOptions struct {
	// ClientID identifies the session; required.
	ClientID string
	// Username is who the front-end authenticated ("" for anonymous): the
	// user the Authorizer is asked about for this attachment.
	Username string
	// CleanStart discards any existing session (MQTT 3.1.1 clean session).
	CleanStart bool
	// SessionExpiry is how long the session outlives its connection: 0 ends
	// it at disconnect, NeverExpire keeps it.
	SessionExpiry time.Duration
	// Will is the last will, or nil.
	Will *Will
	// KeepWill resumes an existing session keeping its current will when
	// Will is nil and CleanStart is false: an MQTT-SN client waking from
	// sleep does not send its will again. Otherwise the new connection's
	// Will (possibly none) replaces the old one, as in MQTT.
	KeepWill bool
	// MaxInflight is the client's window for outbound QoS 1/2 (MQTT 5
	// receive maximum; the MQTT-SN gateway uses 1). 0 or more than
	// Config.MaxInflight means Config.MaxInflight.
	MaxInflight int
	// Budget, when set, is the front-end's share of Config.MaxSessions: a
	// new session beyond it is refused with ErrTooManySessions (budget.go).
	Budget *SessionBudget
}

// Conn is one front-end's attachment to a session. Its methods are safe for
// concurrent use, but a front-end normally drives one Conn from one
// goroutine. Once detached (by the front-end, by takeover, by the broker)
// every method returns an error wrapping ErrDetached and Next reports
// nothing.
type Conn struct {
	b     *Broker
	s     *Session
	gen   uint32
	user  string // ConnectOptions.Username
	inMax int    // max_inflight when attached: the bound on inbound QoS 2 awaiting PUBREL
}

// InboundWindow returns how many inbound QoS 2 messages may await PUBREL
// on this attachment (Publish refuses more with ErrInflightFull): the
// max_inflight in force when it was attached, kept across a SetConfig so
// that what a front-end announced (MQTT 5 Receive Maximum) stays true.
func (c *Conn) InboundWindow() int { return c.inMax }

// ClientID returns the session's client id.
func (c *Conn) ClientID() string { return c.s.clientID }

// attachedLocked reports whether c is still the session's attachment. The
// caller holds c.s.mu.
func (c *Conn) attachedLocked() bool {
	return !c.s.dead && c.s.conn == c && c.s.gen == c.gen
}

// Next returns the next thing to send: first, after a re-attach,
// retransmissions of in-flight messages (Dup set, or Release for a QoS 2
// message awaiting PUBCOMP); then queued messages in order while the
// in-flight window has room. QoS 1 and 2 deliveries get a packet id and
// stay in flight until acknowledged. It reports false when there is
// nothing (more) to send now; the core calls Notify when that changes.
func (c *Conn) Next() (Delivery, bool) {
	s := c.s
	b := c.b
	s.mu.Lock()
	if !c.attachedLocked() {
		s.mu.Unlock()
		return Delivery{}, false
	}
	if s.unsent > 0 {
		for i := range s.inflight {
			e := &s.inflight[i]
			if e.flags&(flagSent|flagPending) != 0 {
				continue
			}
			e.flags |= flagSent | flagEverSent
			s.unsent--
			var d Delivery
			if e.flags&flagRecvd != 0 {
				d = Delivery{PacketID: e.pid, QoS: ExactlyOnce, Release: true}
			} else {
				d = c.delivery(e, true)
			}
			s.mu.Unlock()
			return d, true
		}
	}
	var now int64
	drained := false
	for s.q.n > 0 && !s.pidPending() {
		e := s.q.peek()
		if e.flags&flagDurable != 0 && !e.msg.isStored() {
			break // its commit has not landed; notifyStored wakes us
		}
		if e.msg.expiresAt != 0 {
			if now == 0 {
				now = b.now().UnixNano()
			}
			if e.msg.expired(now) {
				x := s.q.pop()
				b.stats.queued.Add(-1)
				b.dropOp(s, &x)
				drained = s.popped() || drained
				continue
			}
		}
		if e.qos == AtMostOnce {
			d := c.delivery(e, false)
			s.q.pop()
			b.stats.queued.Add(-1)
			b.stats.sent.Add(1)
			drained = s.popped() || drained
			s.mu.Unlock()
			if drained {
				b.retryParked()
			}
			return d, true
		}
		if len(s.inflight) >= int(s.window) {
			break
		}
		out := s.q.pop()
		b.stats.queued.Add(-1)
		b.stats.sent.Add(1)
		drained = s.popped() || drained
		out.pid = s.allocPID()
		if out.qos == ExactlyOnce && out.flags&flagDurable != 0 {
			// Exactly once across a restart needs the packet id on disk
			// before the PUBLISH leaves: after a crash the subscriber then
			// gets the same id again, with DUP, and discards it.
			out.flags |= flagPending | flagEverSent
			s.inflight = append(s.inflight, out)
			s.unsent++
			op := entryOp(s, &out)
			gen, pid := c.gen, out.pid
			s.notified = false // pidStored notifies; nothing may overtake it
			s.mu.Unlock()
			b.commit([]Op{op}, func(err error) { s.pidStored(gen, pid, err) })
			if drained {
				b.retryParked()
			}
			return Delivery{}, false
		}
		out.flags |= flagSent | flagEverSent
		s.inflight = append(s.inflight, out)
		d := c.delivery(&out, false)
		s.mu.Unlock()
		if drained {
			b.retryParked()
		}
		return d, true
	}
	s.notified = false
	s.mu.Unlock()
	if drained {
		b.retryParked()
	}
	return Delivery{}, false
}

// pidStored is the commit of an outbound QoS 2 entry's packet id: the entry
// may now be sent. A failed commit leaves it unsendable on this attachment;
// it goes out again after the next re-attach (or restart).
func (s *Session) pidStored(gen uint32, pid uint16, err error) {
	s.mu.Lock()
	var fe FrontEnd
	if i := s.findInflight(pid); i >= 0 && s.gen == gen && err == nil {
		s.inflight[i].flags &^= flagPending
		if s.fe != nil && !s.notified {
			s.notified = true
			fe = s.fe
		}
	}
	s.mu.Unlock()
	if fe != nil {
		fe.Notify()
	}
}

// delivery builds the Delivery for e.
func (c *Conn) delivery(e *entry, dup bool) Delivery {
	d := Delivery{
		Message:  e.msg,
		QoS:      e.qos,
		Retain:   e.flags&flagRetain != 0,
		Dup:      dup,
		PacketID: e.pid,
	}
	if e.msg.expiresAt != 0 {
		if left := time.Duration(e.msg.expiresAt - c.b.now().UnixNano()); left > 0 {
			d.ExpiryLeft = left
		} else {
			d.ExpiryLeft = time.Nanosecond
		}
	}
	return d
}

// Ack reports a PUBACK for an outbound QoS 1 message (or a PUBREC with an
// error reason for a QoS 2 one, which also ends its flow).
func (c *Conn) Ack(pid uint16) error {
	return c.ack(pid, "puback", func(e *entry) (done, ok bool) {
		return true, e.qos == AtLeastOnce || (e.qos == ExactlyOnce && e.flags&flagRecvd == 0)
	})
}

// Received reports a PUBREC for an outbound QoS 2 message; the front-end
// then sends PUBREL (and, after a re-attach, Next returns a Release
// delivery to resend it).
func (c *Conn) Received(pid uint16) error {
	return c.ack(pid, "pubrec", func(e *entry) (done, ok bool) {
		if e.qos != ExactlyOnce {
			return false, false
		}
		// A repeated PUBREC is answered with PUBREL again: accept it.
		e.flags |= flagRecvd
		return false, true
	})
}

// Complete reports a PUBCOMP for an outbound QoS 2 message.
func (c *Conn) Complete(pid uint16) error {
	return c.ack(pid, "pubcomp", func(e *entry) (done, ok bool) {
		return true, e.qos == ExactlyOnce && e.flags&flagRecvd != 0
	})
}

// ack applies an acknowledgement to the in-flight entry pid. step says
// whether the acknowledgement fits the entry's state and ends its flow.
// When a slot frees up and messages wait, the front-end is notified.
func (c *Conn) ack(pid uint16, what string, step func(*entry) (done, ok bool)) error {
	s := c.s
	s.mu.Lock()
	if !c.attachedLocked() {
		s.mu.Unlock()
		return fmt.Errorf("mqttcore: %s %d for %q: %w", what, pid, s.clientID, ErrDetached)
	}
	i := s.findInflight(pid)
	if i < 0 || s.inflight[i].flags&flagSent == 0 {
		s.mu.Unlock()
		return fmt.Errorf("mqttcore: %s %d for %q: %w", what, pid, s.clientID, ErrUnknownPacketID)
	}
	done, ok := step(&s.inflight[i])
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("mqttcore: %s %d for %q: wrong state for qos %d: %w", what, pid, s.clientID, s.inflight[i].qos, ErrUnknownPacketID)
	}
	var fe FrontEnd
	if done {
		e := s.inflight[i]
		s.removeInflight(i)
		c.b.dropOp(s, &e)
		if s.q.n > 0 && !s.notified {
			s.notified = true
			fe = s.fe
		}
	} else if s.inflight[i].flags&flagDurable != 0 {
		// PUBREC: record it, so a restart resends PUBREL, not the message.
		// The front-end's Sync(AckReceived) waits for it before PUBREL.
		c.b.lazyOp(entryOp(s, &s.inflight[i]))
	}
	s.mu.Unlock()
	if fe != nil {
		fe.Notify()
	}
	return nil
}

// Publish routes a message the client published. The core takes ownership
// of m (do not modify it or its payload afterwards) and sets m.Origin to the
// client id. pid is the client's packet id (MQTT-SN message id) and tag a
// value of the front-end's own; both come back in the Ack. For QoS 2, a pid
// that is still awaiting PUBREL is a duplicate, reported as such and not
// delivered again.
//
// PublishDone and PublishDuplicate: acknowledge now. PublishPending: the
// acknowledgement waits for the journal commit that makes the message
// durable, for flow control (a full subscriber queue) or for an inline
// subscriber that holds it; the core then calls FrontEnd.Acked once, with
// Err set if the message was refused after all (ErrCongestion,
// ErrStoreFailed). An error return is a refusal now.
func (c *Conn) Publish(m *Message, pid uint16, tag uint32) (PublishStatus, error) {
	s := c.s
	b := c.b
	if err := b.validatePublish(m, true); err != nil {
		return PublishDone, fmt.Errorf("mqttcore: publish from %q: %w", s.clientID, err)
	}
	if err := c.b.Authorize(c.user, s.clientID, ActionPublish, m.Topic); err != nil {
		return PublishDone, err
	}
	m.Origin = s.clientID
	s.mu.Lock()
	if !c.attachedLocked() {
		s.mu.Unlock()
		return PublishDone, fmt.Errorf("mqttcore: publish from %q: %w", s.clientID, ErrDetached)
	}
	fe, persist, link := s.fe, s.persist, s.up.linkOf()
	if m.QoS == ExactlyOnce {
		for _, p := range s.inQoS2 {
			if p == pid {
				s.mu.Unlock()
				return PublishDuplicate, nil
			}
		}
		if len(s.inQoS2) >= c.inMax {
			s.mu.Unlock()
			b.stats.limitInflight.Add(1)
			return PublishDone, fmt.Errorf("mqttcore: publish qos 2 id %d from %q: %d awaiting pubrel: %w", pid, s.clientID, len(s.inQoS2), ErrInflightFull)
		}
		s.inQoS2 = append(s.inQoS2, pid)
	}
	s.mu.Unlock()
	if link != nil {
		return c.publishUpstream(link, m, fe, pid, tag), nil // upstream.go
	}
	if m.QoS == AtMostOnce {
		if _, err := b.publish(m, nil, s, false); err != nil {
			return PublishDone, fmt.Errorf("mqttcore: publish from %q: %w", s.clientID, err)
		}
		return PublishDone, nil
	}
	p := b.getPending(fe, Ack{Kind: AckPublish, PacketID: pid, Tag: tag}, s, m)
	if m.QoS == ExactlyOnce && persist {
		// The id awaiting PUBREL must survive a restart with the message.
		b.mu.Lock()
		p.ops = append(p.ops, b.headerOpLocked(s))
		b.mu.Unlock()
	}
	parked, err := b.publish(m, p, s, true)
	if err != nil {
		p.recycle()
		if m.QoS == ExactlyOnce {
			s.forgetInbound(pid)
		}
		return PublishDone, fmt.Errorf("mqttcore: publish from %q: %w", s.clientID, err)
	}
	if parked {
		b.park(m, p, s)
	}
	if p.onlyCaller() {
		p.recycle() // nothing to commit, nothing held
		return PublishDone, nil
	}
	p.release(nil)
	return PublishPending, nil
}

// Release reports a PUBREL for an inbound QoS 2 packet id: the id may be
// used for a new message again. It returns ErrUnknownPacketID if pid was not
// awaiting release (the front-end still answers PUBCOMP).
func (c *Conn) Release(pid uint16) error {
	s := c.s
	s.mu.Lock()
	ok := c.attachedLocked()
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("mqttcore: pubrel %d from %q: %w", pid, s.clientID, ErrDetached)
	}
	if !c.release(pid) {
		return fmt.Errorf("mqttcore: pubrel %d from %q: %w", pid, s.clientID, ErrUnknownPacketID)
	}
	c.b.recordHeader(s) // the front-end's Sync(AckRelease) waits for it
	return nil
}

// release forgets an inbound QoS 2 id.
func (c *Conn) release(pid uint16) bool {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range s.inQoS2 {
		if p == pid {
			s.inQoS2 = append(s.inQoS2[:i], s.inQoS2[i+1:]...)
			if len(s.inQoS2) == 0 {
				s.inQoS2 = nil
			}
			return true
		}
	}
	return false
}

// lifecycleLocked runs f on the session's lifecycle fields (guarded by
// b.mu) if c is still attached, and reports whether it was.
func (c *Conn) lifecycleLocked(f func(s *Session)) bool {
	b, s := c.b, c.s
	b.mu.Lock()
	defer b.mu.Unlock()
	s.mu.Lock()
	ok := c.attachedLocked()
	s.mu.Unlock()
	if ok {
		f(s)
	}
	return ok
}

// SetWill replaces (or with nil removes) the session's will, as MQTT-SN
// WILLTOPICUPD/WILLMSGUPD do.
func (c *Conn) SetWill(w *Will) error {
	if err := c.b.validateWill(w); err != nil {
		return fmt.Errorf("mqttcore: set will for %q: %w", c.s.clientID, err)
	}
	if err := c.b.authorizeWill(c.user, c.s.clientID, w); err != nil {
		return fmt.Errorf("mqttcore: set will for %q: %w", c.s.clientID, err)
	}
	if !c.lifecycleLocked(func(s *Session) {
		s.will = w
		c.b.writeHeaderLocked(s)
	}) {
		return fmt.Errorf("mqttcore: set will for %q: %w", c.s.clientID, ErrDetached)
	}
	if link := c.upLink(); link != nil {
		link.SetWill(w) // upstream.go: the remote holds a transparent session's will
	}
	return nil
}

// Will returns the session's current will, or nil if it has none (or the
// attachment is gone). The result is shared with the session: treat it as
// read-only and replace it with SetWill.
func (c *Conn) Will() *Will {
	var w *Will
	c.lifecycleLocked(func(s *Session) { w = s.will })
	return w
}

// SetSessionExpiry changes the session expiry, as an MQTT 5 DISCONNECT may.
func (c *Conn) SetSessionExpiry(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("mqttcore: session expiry %v for %q: negative", d, c.s.clientID)
	}
	if !c.lifecycleLocked(func(s *Session) {
		s.expiry = d
		c.b.setPersistLocked(s)
	}) {
		return fmt.Errorf("mqttcore: set session expiry for %q: %w", c.s.clientID, ErrDetached)
	}
	return nil
}

// Sleep detaches without ending the session (an MQTT-SN DISCONNECT with a
// duration): the will is kept and not published, messages queue, in-flight
// state is kept for retransmission. If the client has not re-attached
// within d (0: no deadline) it is considered lost: the will is published
// after its delay and the session expiry starts.
func (c *Conn) Sleep(d time.Duration) error { return c.b.detach(c, StateAsleep, d, nil) }

// SleepNotify is Sleep, and queued is called once, the first time a
// message is queued for the session while it is asleep (not for messages
// already queued), so a front-end can tell the client that something waits
// (MQTT-SN 2.0's WAKEUP). It runs on the goroutine that queues the message,
// with no lock of the broker held, and must not block. It is forgotten
// when the session is attached again or misses its sleep deadline.
func (c *Conn) SleepNotify(d time.Duration, queued func()) error {
	return c.b.detach(c, StateAsleep, d, queuedHint(queued))
}

// NotifyAsleep gives the asleep, detached session of clientID the callback
// SleepNotify would have given it, under the same rules (once, for the
// first message queued from now on; forgotten when the session is attached
// again or misses its sleep deadline), replacing any set before. It is for
// a front-end that rebuilt an asleep client without attaching it, as the
// gateway does after a restart: a restored session carries no callback.
// It reports whether the session was asleep and detached.
func (b *Broker) NotifyAsleep(clientID string, queued func()) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.sessions[clientID]
	if s == nil || s.state != StateAsleep {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead || s.conn != nil {
		return false
	}
	s.hint = queuedHint(queued)
	return true
}

// queuedHint is a SleepNotify callback as a FrontEnd, so the fan-out calls
// it where it notifies attached front-ends. A func value converts to an
// interface without allocating.
type queuedHint func()

// Notify implements FrontEnd: it calls the hint.
func (h queuedHint) Notify() { h() }

// Close implements FrontEnd; a hint is never closed.
func (queuedHint) Close(error) {}

// Acked implements FrontEnd; a hint gets no acknowledgements.
func (queuedHint) Acked(Ack) {}

// Disconnect ends the connection normally: the will is discarded and the
// session lives on for its expiry (0: it ends now).
func (c *Conn) Disconnect() error { return c.b.detach(c, StateDisconnected, 0, nil) }

// Lost ends the connection abnormally (network error, keep-alive timeout,
// protocol error, MQTT 5 DISCONNECT with will): the will is published after
// its delay, or when the session expires if that is sooner.
func (c *Conn) Lost() error { return c.b.detach(c, StateLost, 0, nil) }

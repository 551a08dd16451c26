package mqttcore

import (
	"fmt"
	"sync"
	"time"
)

// Transparent sessions: a session an Upstream claims is carried by its own
// session on a remote MQTT broker instead of the local subscription tree.
// Its publishes go to the remote, acknowledged to the front-end when the
// remote acknowledged them (the deferred-ack path of durable.go: Publish
// reports PublishPending, FrontEnd.Acked follows); its subscriptions are
// made on the remote (Sync(AckSubscribe) waits for the remote SUBACK); the
// remote's messages for it are queued in the session's own queue, so a
// front-end delivers them as any other; its will is the remote's to
// publish. The core keeps the session (attachment, queue, in-flight state,
// deadlines) as for any other; the Upstream keeps the remote connection.
// The core calls a link without holding Session.mu, but possibly with
// Broker.mu held: link methods must not block and must not call back into
// the core on the calling goroutine.

// Upstream decides which sessions are transparent and opens their links.
// Install one with Broker.SetUpstream.
type Upstream interface {
	// Claims reports whether clientID's session is carried upstream. It is
	// asked when a session is attached and has no link yet; it must be
	// fast and give the same answer for the same id.
	Claims(clientID string) bool
	// Open returns the link of clientID's session. in is how the link
	// hands the remote's messages and events to the session. It must not
	// block (connecting is the link's Attach).
	Open(clientID string, in UpstreamSink) UpstreamLink
}

// UpstreamLink is one transparent session's connection to the remote
// broker. Every method must return without waiting for the network;
// completions are reported through the done callbacks, exactly once each,
// from any goroutine.
type UpstreamLink interface {
	// Attach follows an attachment of the session (opts as the front-end
	// gave them, with Will set to the session's will after the attach;
	// present as Broker.Attach reported it). It reports whether the
	// remote session must be (re)connected first; if so, done reports the
	// remote CONNACK: nil, or an error wrapping ErrNotAuthorized (bad
	// credentials, not authorized), ErrTooManySessions (a limit on
	// upstream connections) or another refusal.
	Attach(opts ConnectOptions, present bool, done func(error)) (pending bool)
	// Publish sends a message the client published. done (nil for QoS 0)
	// reports the remote acknowledgement: nil, or an error wrapping
	// ErrNotAuthorized and the like for a refusal.
	Publish(m *Message, done func(error))
	// Subscribe makes a subscription on the remote; done reports its
	// SUBACK.
	Subscribe(filter string, opts SubOptions, done func(error))
	// Unsubscribe removes a subscription on the remote.
	Unsubscribe(filter string)
	// SetWill follows a change of the attached session's will
	// (Conn.SetWill, the MQTT-SN will updates); nil removes it. MQTT
	// changes a will only at CONNECT: the link may reconnect now, or let
	// the new will wait for its next connect.
	SetWill(w *Will)
	// Offline follows the end of an attachment: how is StateAsleep
	// (sleepFor as given to Conn.Sleep), StateDisconnected or StateLost.
	Offline(how State, sleepFor time.Duration)
	// PublishWill asks the link to see that the session's will reaches
	// the remote: the core's deadlines fired it (a missed sleep deadline,
	// a will delay, an expiry). The remote may already have published it
	// (the connection ended with the will); the link must not publish it
	// twice.
	PublishWill(w *Will)
	// Close ends the link: the session ended locally (expiry, a clean
	// start elsewhere). The remote session is left to its own expiry.
	Close()
}

// UpstreamSink is a link's way into its session.
type UpstreamSink interface {
	// Deliver queues a message from the remote for the session, at
	// m.QoS, with m.Retain as the RETAIN flag to send. The core takes
	// ownership of m. It never blocks; it reports an error when the
	// session is gone (the message is then not queued).
	Deliver(m *Message) error
	// TakenOver ends the local attachment, as Broker.Kick does, because
	// the remote session was taken over by another connection (the
	// sensor moved to another gateway). The link should not reconnect on
	// its own.
	TakenOver()
}

// SetUpstream installs (or with nil removes) the Upstream that decides
// which sessions are transparent. Sessions already linked keep their link.
// Call it before front-ends attach.
func (b *Broker) SetUpstream(u Upstream) {
	b.mu.Lock()
	b.upstream = u
	b.mu.Unlock()
}

// upState is a transparent session's side of its link.
type upState struct {
	link UpstreamLink
	// connect and subscribe are the remote CONNACK and SUBACK the next
	// Sync(AckConnect) and Sync(AckSubscribe) wait for; guarded by
	// Session.mu.
	connect, subscribe *upOp
}

// linkOf returns u's link, nil for a nil u.
func (u *upState) linkOf() UpstreamLink {
	if u == nil {
		return nil
	}
	return u.link
}

// upOp is one upstream operation whose outcome an acknowledgement may wait
// for (a connect, a subscribe): Sync hangs a pending on it.
type upOp struct {
	mu     sync.Mutex
	done   bool
	err    error
	waiter *pending
	after  func() // runs once the waiter was released (notify the front-end)
}

// finish records the outcome and releases a waiting acknowledgement.
func (o *upOp) finish(err error) {
	o.mu.Lock()
	o.done, o.err = true, err
	p, after := o.waiter, o.after
	o.waiter, o.after = nil, nil
	o.mu.Unlock()
	if p != nil {
		p.release(err)
	}
	if after != nil {
		after()
	}
}

// wait hangs p on o: p is released with o's outcome, now if o is done.
func (o *upOp) wait(p *pending) {
	o.mu.Lock()
	if !o.done {
		o.waiter = p
		o.mu.Unlock()
		return
	}
	err := o.err
	o.mu.Unlock()
	p.release(err)
}

// sessionSink is the UpstreamSink of one session.
type sessionSink struct{ s *Session }

// Deliver implements UpstreamSink.
func (k sessionSink) Deliver(m *Message) error {
	s := k.s
	b := s.b
	if !m.QoS.Valid() {
		return fmt.Errorf("mqttcore: upstream message for %q: qos %d: %w", s.clientID, m.QoS, ErrInvalidQoS)
	}
	if m.Props != nil && m.Props.MessageExpiry > 0 && m.expiresAt == 0 {
		m.expiresAt = addDur(b.now().UnixNano(), m.Props.MessageExpiry)
	}
	e := entry{msg: m, qos: m.QoS}
	if m.Retain {
		e.flags = flagRetain
	}
	s.mu.Lock()
	if s.dead {
		s.mu.Unlock()
		return fmt.Errorf("mqttcore: upstream message for %q: %w", s.clientID, ErrDetached)
	}
	fe, grew, _ := s.enqueue(e)
	s.mu.Unlock()
	b.stats.received.Add(1)
	if grew {
		b.stats.queued.Add(1)
	}
	if fe != nil {
		fe.Notify()
	}
	return nil
}

// TakenOver implements UpstreamSink.
func (k sessionSink) TakenOver() {
	s := k.s
	b := s.b
	b.mu.Lock()
	s.mu.Lock()
	fe := s.fe
	if s.conn == nil || s.dead {
		s.mu.Unlock()
		b.mu.Unlock()
		return
	}
	b.unattachLocked(s)
	s.mu.Unlock()
	// Gone elsewhere, not lost: the will stays with the remote session.
	b.offlineLocked(s, StateDisconnected, b.now().UnixNano(), 0)
	if !s.dead {
		b.writeHeaderLocked(s)
	}
	b.mu.Unlock()
	fe.Close(fmt.Errorf("mqttcore: upstream session of %q: %w", s.clientID, ErrTakenOver))
}

// linkLocked returns s's link, opening it if the Upstream claims s. The
// caller holds b.mu.
func (b *Broker) linkLocked(s *Session) UpstreamLink {
	if s.up == nil && b.upstream != nil && b.upstream.Claims(s.clientID) {
		up := &upState{link: b.upstream.Open(s.clientID, sessionSink{s})}
		s.mu.Lock()
		s.up = up
		s.mu.Unlock()
	}
	return s.up.linkOf()
}

// upstreamAttach tells s's link about a new attachment; if the remote
// session must be connected first, Sync(AckConnect) waits for it. Called
// with no lock held.
func (b *Broker) upstreamAttach(c *Conn, link UpstreamLink, opts ConnectOptions, present bool) {
	op := &upOp{}
	s := c.s
	b.mu.Lock()
	opts.Will = s.will
	b.mu.Unlock()
	s.mu.Lock()
	up := s.up
	if up != nil {
		up.connect = op
	}
	s.mu.Unlock()
	if !link.Attach(opts, present, op.finish) && up != nil {
		s.mu.Lock()
		if up.connect == op {
			up.connect = nil
		}
		s.mu.Unlock()
	}
}

// publishUpstream sends a transparent session's publish to its link; the
// acknowledgement follows the remote's.
func (c *Conn) publishUpstream(link UpstreamLink, m *Message, fe FrontEnd, pid uint16, tag uint32) PublishStatus {
	b := c.b
	b.stats.received.Add(1)
	if m.QoS == AtMostOnce {
		link.Publish(m, nil)
		return PublishDone
	}
	p := b.getPending(fe, Ack{Kind: AckPublish, PacketID: pid, Tag: tag}, c.s, m)
	p.hold()
	link.Publish(m, p.release)
	p.release(nil)
	return PublishPending
}

// syncUpstream is Sync for a transparent session: an acknowledgement that
// waits for the remote (CONNACK, SUBACK) is deferred until it arrived.
func (c *Conn) syncUpstream(a Ack) bool {
	s := c.s
	s.mu.Lock()
	var op *upOp
	if up := s.up; up != nil {
		switch a.Kind {
		case AckConnect:
			op, up.connect = up.connect, nil
		case AckSubscribe:
			op, up.subscribe = up.subscribe, nil
		}
	}
	ok := c.attachedLocked()
	fe := s.fe
	s.mu.Unlock()
	if op == nil || !ok {
		return false
	}
	p := c.b.getPending(fe, a, nil, nil)
	p.hold()
	if a.Kind == AckConnect {
		// Messages the remote sends right after its CONNACK may be queued
		// before the front-end hears of the CONNACK: wake it after.
		op.mu.Lock()
		if !op.done {
			op.after = s.notifyStored
		}
		op.mu.Unlock()
	}
	op.wait(p)
	p.release(nil)
	return true
}

// takeLink detaches and returns s's link. The caller holds b.mu.
func (s *Session) takeLink() UpstreamLink {
	s.mu.Lock()
	link := s.up.linkOf()
	s.up = nil
	s.mu.Unlock()
	return link
}

// upLink returns the link of c's session if c is attached and the session
// is transparent.
func (c *Conn) upLink() UpstreamLink {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.attachedLocked() {
		return nil
	}
	return s.up.linkOf()
}

package mqttcore

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// PublishStatus says when a front-end may acknowledge a publish.
type PublishStatus uint8

// Outcomes of Conn.Publish.
const (
	// PublishDone: acknowledge now.
	PublishDone PublishStatus = iota
	// PublishDuplicate: a QoS 2 repeat of a message still awaiting PUBREL;
	// acknowledge now (it is not delivered again).
	PublishDuplicate
	// PublishPending: the acknowledgement waits (for the journal commit
	// that makes the message durable, or for flow control); the core calls
	// the attachment's FrontEnd.Acked exactly once when it may be sent or
	// must be refused.
	PublishPending
)

// String returns the status's name.
func (s PublishStatus) String() string {
	switch s {
	case PublishDone:
		return "done"
	case PublishDuplicate:
		return "duplicate"
	case PublishPending:
		return "pending"
	}
	return "status(" + itoa(int64(s)) + ")"
}

// pending is one publish (or barrier) whose acknowledgement waits for the
// journal, for flow control or for an inline subscriber holding it. It
// counts holds; the last release sends the acknowledgement. Pendings of
// front-end publishes are pooled.
type pending struct {
	b     *Broker
	fe    FrontEnd   // told through Acked; nil for inline publishers
	wait  chan error // an inline publisher waiting, or nil
	ack   Ack
	src   *Session // the publishing session, or nil
	msg   *Message
	holds atomic.Int32
	// shared is set once anyone but the creator took a hold: the
	// acknowledgement is then deferred, even if every other hold was
	// already released when the creator looks.
	shared atomic.Bool

	mu  sync.Mutex
	err error // the first failure, guarded by mu

	ops    []Op       // this publish's journal ops, owned by the journal during a commit
	wake   []*Session // sessions whose entries wait for the commit
	start  time.Time
	doneFn func(error) // p.committed, bound once so a commit allocates no closure
}

// getPending returns a pending with one hold (the caller's).
func (b *Broker) getPending(fe FrontEnd, a Ack, src *Session, m *Message) *pending {
	p := b.pendings.Get().(*pending)
	p.fe, p.ack, p.src, p.msg = fe, a, src, m
	p.holds.Store(1)
	return p
}

// newPending allocates a pending that is not pooled (an inline publisher
// waits on its channel after it completes).
func (b *Broker) newPending(wait chan error, m *Message) *pending {
	p := &pending{b: b, wait: wait, msg: m}
	p.doneFn = p.committed
	p.holds.Store(1)
	return p
}

// waited reports whether someone waits for p's acknowledgement (so flow
// control may hold it back).
func (p *pending) waited() bool { return p.fe != nil || p.wait != nil }

// hold adds one hold.
func (p *pending) hold() {
	p.shared.Store(true)
	p.holds.Add(1)
}

// onlyCaller reports whether nobody but the caller ever held p: no commit,
// no flow control, no inline subscriber. Only the goroutine that created p
// may ask, after its route returned and before it releases its own hold.
// A hold taken and already released still counts: its outcome (a failed
// commit) must reach the front-end through Acked.
func (p *pending) onlyCaller() bool { return !p.shared.Load() }

// release drops one hold, recording err if it is the first failure; the
// last release completes the acknowledgement.
func (p *pending) release(err error) {
	if err != nil {
		p.mu.Lock()
		if p.err == nil {
			p.err = err
		}
		p.mu.Unlock()
	}
	if p.holds.Add(-1) != 0 {
		return
	}
	p.mu.Lock()
	err = p.err
	p.mu.Unlock()
	p.finish(err)
}

// finish sends the acknowledgement (or refusal) and recycles p.
func (p *pending) finish(err error) {
	if err != nil && p.src != nil && p.ack.Kind == AckPublish && p.msg != nil && p.msg.QoS == ExactlyOnce {
		// Refused: forget the QoS 2 id so the client's retry is not taken
		// for a duplicate.
		p.src.forgetInbound(p.ack.PacketID)
	}
	a := p.ack
	a.Err = err
	fe, wait := p.fe, p.wait
	if wait != nil {
		wait <- err
		return // not pooled: the waiter may still look at it
	}
	p.recycle()
	if fe != nil {
		fe.Acked(a)
	}
}

// recycle clears p and returns it to the pool.
func (p *pending) recycle() {
	if p.wait != nil {
		return
	}
	b := p.b
	clear(p.ops)
	p.ops = p.ops[:0]
	clear(p.wake)
	p.wake = p.wake[:0]
	p.fe, p.src, p.msg, p.err = nil, nil, nil, nil
	p.ack = Ack{}
	p.shared.Store(false)
	b.pendings.Put(p)
}

// commitOps hands p's ops to the journal with one hold for the commit.
func (p *pending) commitOps() {
	if len(p.ops) == 0 {
		return
	}
	p.hold()
	p.start = time.Now()
	p.b.commit(p.ops, p.doneFn)
}

// committed is the journal's completion of p's ops.
func (p *pending) committed(err error) {
	b := p.b
	b.stats.commits.Add(1)
	b.stats.commitNs.Add(uint64(time.Since(p.start)))
	if err != nil {
		b.stats.commitErrs.Add(1)
		err = fmt.Errorf("mqttcore: commit: %w", err)
		// The entries never became durable: take them out of the queues so
		// they neither block their sessions nor go out after a refusal.
		// (Parked publishes that now fit are retried by the timer loop:
		// a journal's done must not commit.)
		for _, s := range p.wake {
			if s.unqueue(p.msg) {
				b.retryWanted.Store(true)
				b.poke()
			}
		}
	} else if p.msg != nil {
		p.msg.markStored()
		for _, s := range p.wake {
			s.notifyStored()
		}
	}
	p.release(err)
}

// journalState is the broker's side of its Journal: ordering of commits
// and the ops that need no acknowledgement (acks of delivered messages),
// which ride along with the next commit.
//
// Two locks, so that recording a lazy op never waits behind a Commit that
// blocks on a full journal queue: lazyOp is called with Session.mu held,
// and the journal's done callbacks take Session.mu.
type journalState struct {
	mu     sync.Mutex // serialises Commit calls, so ops reach the journal in order
	lazyMu sync.Mutex // a leaf: guards lazy only
	lazy   []Op       // recorded, not yet handed to the journal
}

// takeLazy returns the lazy ops and forgets them.
func (j *journalState) takeLazy() []Op {
	j.lazyMu.Lock()
	ops := j.lazy
	j.lazy = nil
	j.lazyMu.Unlock()
	return ops
}

// maxLazyOps is how many unacknowledged-change ops wait for a ride before
// they are committed on their own.
const maxLazyOps = 512

// commit hands ops (after any lazy ops, which were recorded earlier) to
// the journal. done may be nil.
func (b *Broker) commit(ops []Op, done func(error)) {
	j := &b.jstate
	j.mu.Lock()
	defer j.mu.Unlock()
	if lazy := j.takeLazy(); len(lazy) > 0 {
		ops = append(lazy, ops...)
	}
	if done == nil {
		done = b.ignoreCommit
	}
	b.journal.Commit(ops, done)
}

// ignoreCommit completes a commit nobody waits for; a failure is counted.
func (b *Broker) ignoreCommit(err error) {
	if err != nil {
		b.stats.commitErrs.Add(1)
	}
}

// lazyOp records an op that needs no acknowledgement: it is committed with
// the next commit, or by the timer loop (at once when maxLazyOps are
// waiting, else within lazyFlush). It never blocks: callers hold
// Session.mu.
func (b *Broker) lazyOp(op Op) {
	j := &b.jstate
	j.lazyMu.Lock()
	j.lazy = append(j.lazy, op)
	full := len(j.lazy) == maxLazyOps
	j.lazyMu.Unlock()
	if full {
		b.poke()
	}
}

// flushLazy commits the lazy ops, if any. It may wait for room in the
// journal's queue: call it with no lock held.
func (b *Broker) flushLazy() {
	j := &b.jstate
	j.mu.Lock()
	if ops := j.takeLazy(); len(ops) > 0 {
		b.journal.Commit(ops, b.ignoreCommit)
	}
	j.mu.Unlock()
}

// writeHeaderLocked records s's header (lifecycle, will, subscriptions,
// inbound QoS 2 ids) if s is journalled. The caller holds b.mu and none of
// the other locks.
func (b *Broker) writeHeaderLocked(s *Session) {
	if b.journal == nil {
		return
	}
	if !s.persist {
		return
	}
	b.commit([]Op{b.headerOpLocked(s)}, nil)
}

// recordHeader records s's header, lazily, if s is journalled; a
// front-end's Sync makes it durable. The caller holds no lock.
func (b *Broker) recordHeader(s *Session) {
	if b.journal == nil {
		return
	}
	b.mu.Lock()
	if !s.persist || s.dead {
		b.mu.Unlock()
		return
	}
	op := b.headerOpLocked(s)
	b.mu.Unlock()
	b.lazyOp(op)
}

// headerOpLocked builds s's OpSession. The caller holds b.mu.
func (b *Broker) headerOpLocked(s *Session) Op {
	r := &SessionRecord{
		ID:       s.id,
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
	r.InboundQoS2 = append(r.InboundQoS2, s.inQoS2...)
	s.mu.Unlock()
	return Op{Kind: OpSession, SessionID: s.id, Session: r}
}

// setPersistLocked updates whether s is journalled after its expiry
// changed, recording its header or its end. The caller holds b.mu.
func (b *Broker) setPersistLocked(s *Session) {
	if b.journal == nil {
		return
	}
	was := s.persist
	now := s.expiry > 0
	s.mu.Lock()
	s.persist = now
	s.mu.Unlock()
	switch {
	case now:
		b.writeHeaderLocked(s)
	case was:
		b.commit([]Op{{Kind: OpEndSession, SessionID: s.id}}, nil)
	}
}

// entryOp is the journal op for e held by s.
func entryOp(s *Session, e *entry) Op {
	return Op{Kind: OpEntry, SessionID: s.id, Entry: QueuedRecord{
		Seq:      e.msg.seq,
		Message:  e.msg,
		QoS:      e.qos,
		Retain:   e.flags&flagRetain != 0,
		Expires:  unixTime(e.msg.expiresAt),
		PacketID: e.pid,
		Released: e.flags&flagRecvd != 0,
		Inflight: e.flags&flagEverSent != 0 && e.pid != 0,
	}}
}

// dropOp records, lazily, that s no longer holds the durable entry e.
func (b *Broker) dropOp(s *Session, e *entry) {
	if e.flags&flagDurable == 0 {
		return
	}
	b.lazyOp(Op{Kind: OpDropEntry, SessionID: s.id, Seq: e.msg.seq})
}

// Sync asks for a barrier: if this attachment's session is journalled, the
// core calls FrontEnd.Acked(a) once every change recorded so far is durable
// and Sync reports true; otherwise there is nothing to wait for and it
// reports false (send the acknowledgement now). Front-ends call it after
// Subscribe and Unsubscribe (SUBACK, UNSUBACK), Release (PUBCOMP) and
// Received (PUBREL). For a transparent session (upstream.go),
// Sync(AckSubscribe) waits for the remote SUBACK of the last Subscribe and
// Sync(AckConnect), called after Attach, for the remote CONNACK; Acked
// carries the remote's refusal in Err. For other sessions
// Sync(AckConnect) reports false.
func (c *Conn) Sync(a Ack) bool {
	b, s := c.b, c.s
	if a.Kind == AckConnect || a.Kind == AckSubscribe {
		if c.upLink() != nil {
			return c.syncUpstream(a) // upstream.go: wait for the remote
		}
		if a.Kind == AckConnect {
			return false // a local session's CONNACK waits for nothing
		}
	}
	if b.journal == nil {
		return false
	}
	s.mu.Lock()
	ok := s.persist && c.attachedLocked()
	fe := s.fe
	s.mu.Unlock()
	if !ok {
		return false
	}
	p := b.getPending(fe, a, nil, nil)
	p.hold()
	p.start = time.Now()
	b.commit(nil, p.doneFn)
	p.release(nil)
	return true
}

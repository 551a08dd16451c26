package mqttcore

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// NeverExpire as ConnectOptions.SessionExpiry keeps an offline session
// until it is resumed with clean start or removed (MQTT 3.1.1 clean session
// 0, MQTT 5 expiry 0xFFFFFFFF).
const NeverExpire time.Duration = math.MaxInt64

// State is a session's lifecycle state.
type State uint8

// Session states.
const (
	// StateActive: a front-end is attached.
	StateActive State = iota
	// StateAsleep: detached by Conn.Sleep; the will is kept, not
	// published; messages queue.
	StateAsleep
	// StateDisconnected: ended normally by Conn.Disconnect; the will was
	// discarded; the session waits for its expiry.
	StateDisconnected
	// StateLost: ended abnormally (Conn.Lost, Broker.Kick, a missed sleep
	// deadline); the will is published after its delay.
	StateLost
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case StateActive:
		return "active"
	case StateAsleep:
		return "asleep"
	case StateDisconnected:
		return "disconnected"
	case StateLost:
		return "lost"
	}
	return "state(" + itoa(int64(s)) + ")"
}

// Session is one client's broker-side state. An offline session is plain
// memory: no goroutine and no timer of its own (its deadlines sit in the
// broker's one heap). Sessions are created by Broker.Attach and reached by
// front-ends only through their Conn.
type Session struct {
	b        *Broker
	clientID string
	id       uint64      // creation order; the fan-out de-duplication key
	online   atomic.Bool // a front-end is attached; read lock-free by share groups
	// flow holds flowFull (the queue reached MaxQueued) and flowEligible
	// (attached or asleep: the session may hold publishers back), read
	// lock-free by the fan-out's flow-control check.
	flow   atomic.Uint32
	parked atomic.Int32 // this session's publishes held by flow control
	// budget is the front-end's share of MaxSessions this session counts
	// against, or nil (budget.go); guarded by b.mu.
	budget *SessionBudget

	// Guarded by b.mu: lifecycle, will and deadlines.
	state    State
	will     *Will
	expiry   time.Duration
	heapIdx  int32 // index in b.timers, -1 when not scheduled
	due      int64 // unix ns of the earliest deadline below, 0 for none
	sleepAt  int64 // sleep deadline: not woken by then means lost
	willAt   int64 // will delay deadline
	expireAt int64 // session expiry deadline

	// Guarded by b.tree.mu.
	subs     []*subscription
	noSubIDs atomic.Bool // no subscription has an identifier (subid.go); written under b.tree.mu

	// Guarded by mu: the attachment and everything Next and the acks touch.
	mu       sync.Mutex
	dead     bool  // removed from the broker; drop all work
	persist  bool  // journalled: a journal exists and expiry > 0 (also written under b.mu)
	notified bool  // Notify called and Next has not yet come up empty
	qclass   uint8 // the queue's class in Stats.QueueFill (stats_ops.go)
	gen      uint32
	window   uint16 // in-flight window of the current attachment
	nextPID  uint16
	unsent   int32 // in-flight entries not yet sent on this attachment
	dropped  uint32
	conn     *Conn
	fe       FrontEnd
	// hint is the asleep session's SleepNotify callback, nil if none;
	// taken (called once) by the first message queued while asleep, and
	// dropped when the session is attached or misses its sleep deadline.
	hint     queuedHint
	user     string // Username of the latest attachment, for ActionRead; written under b.mu and mu, read under either
	q        queue
	inflight []entry  // outbound QoS 1/2 awaiting PUBACK/PUBREC/PUBCOMP, in send order
	inQoS2   []uint16 // inbound QoS 2 packet ids awaiting PUBREL

	// up is the link to the session's remote session when it is
	// transparent (upstream.go), nil otherwise: one pointer, so other
	// sessions pay 8 bytes. Set under b.mu and mu, read under either;
	// its fields are guarded by mu.
	up *upState
}

// ClientID returns the session's client id.
func (s *Session) ClientID() string { return s.clientID }

// allocPID returns the next free outbound packet id, 1..65535, skipping ids
// in flight. The caller holds s.mu and has checked the window, so a free id
// exists.
func (s *Session) allocPID() uint16 {
	for {
		s.nextPID++
		if s.nextPID == 0 {
			s.nextPID = 1
		}
		if s.findInflight(s.nextPID) < 0 {
			return s.nextPID
		}
	}
}

// findInflight returns the index of pid in s.inflight, or -1.
func (s *Session) findInflight(pid uint16) int {
	for i := range s.inflight {
		if s.inflight[i].pid == pid {
			return i
		}
	}
	return -1
}

// removeInflight deletes s.inflight[i] keeping order.
func (s *Session) removeInflight(i int) {
	copy(s.inflight[i:], s.inflight[i+1:])
	s.inflight[len(s.inflight)-1] = entry{}
	s.inflight = s.inflight[:len(s.inflight)-1]
	if len(s.inflight) == 0 && cap(s.inflight) > 16 {
		s.inflight = nil // keep a small window's array, give a big one back
	}
}

// Flow-control bits of Session.flow.
const (
	flowFull     uint32 = 1 << iota // the queue holds MaxQueued or more
	flowEligible                    // attached or asleep: full means hold publishers
)

// holdsBack reports whether the session's full queue holds publishers back.
func (s *Session) holdsBack() bool {
	return s.flow.Load() == flowFull|flowEligible
}

// setEligible records whether the session is attached or asleep. The
// caller holds b.mu.
func (s *Session) setEligible(on bool) {
	for {
		old := s.flow.Load()
		v := old &^ flowEligible
		if on {
			v |= flowEligible
		}
		if s.flow.CompareAndSwap(old, v) {
			return
		}
	}
}

// setFull records whether the queue is full; it reports whether the queue
// just went from full to having room (parked publishes may now fit). The
// caller holds s.mu.
func (s *Session) setFull(full bool) (drained bool) {
	for {
		old := s.flow.Load()
		v := old &^ flowFull
		if full {
			v |= flowFull
		}
		if old == v {
			return false
		}
		if s.flow.CompareAndSwap(old, v) {
			return !full
		}
	}
}

// enqueue adds one delivery to the queue under the overflow policy. It
// reports the front-end to notify, if any, whether the queue grew (false
// when a message was dropped to make room, or the session is gone), and
// whether e itself was kept; the caller adds the growth to Stats.Queued in
// one step. The caller holds s.mu.
func (s *Session) enqueue(e entry) (fe FrontEnd, grew, kept bool) {
	if s.dead || !s.b.mayRead(s, e.msg) {
		return nil, false, false
	}
	b := s.b
	cfg := b.conf()
	dropped, didDrop, kept := s.q.push(e, cfg.MaxQueued, cfg.Overflow == OverflowBackpressure)
	if didDrop {
		s.dropped++
		b.stats.dropped.Add(1)
		b.stats.limitQueue.Add(1)
		if dropped.msg != e.msg {
			b.dropOp(s, &dropped)
		}
	} else {
		grew = true
	}
	if int(s.q.n) >= cfg.MaxQueued {
		s.setFull(true)
	}
	s.reclass()
	if s.fe != nil && !s.notified {
		s.notified = true
		return s.fe, grew, kept
	}
	if h := s.hint; h != nil && s.fe == nil && (e.flags&flagDurable == 0 || e.msg.isStored()) {
		// Once per sleep (Conn.SleepNotify). An entry whose commit has not
		// landed cannot be sent yet: notifyStored calls it then, or a client
		// woken now would find nothing and sleep again past its message.
		s.hint = nil
		return h, grew, kept
	}
	return nil, grew, kept
}

// lowWater is the queue length at which a full queue counts as having room
// again: a few slots below MaxQueued, so parked publishes are retried in
// batches rather than one slot at a time.
func (s *Session) lowWater() int32 {
	m := int32(s.b.conf().MaxQueued)
	return m - max(1, m/16)
}

// popped is called after an entry left the queue. It reports whether the
// queue drained below its low-water mark while marked full (the caller then
// retries parked publishes, with no lock held). The caller holds s.mu.
func (s *Session) popped() bool {
	s.reclass()
	if s.flow.Load()&flowFull == 0 || s.q.n > s.lowWater() {
		return false
	}
	return s.setFull(false)
}

// unqueue removes m's entry from the queue (its journal commit failed) and
// reports whether the queue drained from full.
func (s *Session) unqueue(m *Message) (drained bool) {
	s.mu.Lock()
	n := s.q.remove(m)
	drained = s.popped()
	s.mu.Unlock()
	s.b.stats.queued.Add(-int64(n))
	return drained
}

// notifyStored wakes the front-end after a commit that may have unblocked
// the head of the queue or an in-flight entry; for an asleep session it
// calls the SleepNotify callback that enqueue held back.
func (s *Session) notifyStored() {
	s.mu.Lock()
	var fe FrontEnd
	switch {
	case s.fe != nil && !s.notified:
		s.notified = true
		fe = s.fe
	case s.fe == nil && s.hint != nil && s.q.n > 0:
		fe, s.hint = s.hint, nil // an asleep session's SleepNotify callback, once
	}
	s.mu.Unlock()
	if fe != nil {
		fe.Notify()
	}
}

// pidPending reports whether an in-flight entry waits for its packet id's
// commit: nothing queued may be sent before it. The caller holds s.mu.
func (s *Session) pidPending() bool {
	if s.unsent == 0 {
		return false
	}
	for i := range s.inflight {
		if s.inflight[i].flags&flagPending != 0 {
			return true
		}
	}
	return false
}

// forgetInbound removes an inbound QoS 2 id whose publish was refused.
func (s *Session) forgetInbound(pid uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, p := range s.inQoS2 {
		if p == pid {
			s.inQoS2 = append(s.inQoS2[:i], s.inQoS2[i+1:]...)
			if len(s.inQoS2) == 0 {
				s.inQoS2 = nil
			}
			return
		}
	}
}

// itoa formats n.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }

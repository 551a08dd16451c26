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
	subs []*subscription

	// Guarded by mu: the attachment and everything Next and the acks touch.
	mu       sync.Mutex
	dead     bool // removed from the broker; drop all work
	notified bool // Notify called and Next has not yet come up empty
	gen      uint32
	window   uint16 // in-flight window of the current attachment
	nextPID  uint16
	unsent   int32 // in-flight entries not yet sent on this attachment
	dropped  uint32
	conn     *Conn
	fe       FrontEnd
	user     string // Username of the latest attachment, for ActionRead; written under b.mu and mu, read under either
	q        queue
	inflight []entry  // outbound QoS 1/2 awaiting PUBACK/PUBREC/PUBCOMP, in send order
	inQoS2   []uint16 // inbound QoS 2 packet ids awaiting PUBREL
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

// enqueue adds one delivery to the queue. It reports the front-end to
// notify, if any, and whether the queue grew (false when a message was
// dropped to make room, or the session is gone); the caller adds the growth
// to Stats.Queued in one step. The caller holds s.mu.
func (s *Session) enqueue(e entry) (fe FrontEnd, grew bool) {
	if s.dead || !s.b.mayRead(s, e.msg) {
		return nil, false
	}
	if s.q.push(e, s.b.cfg.MaxQueued) {
		s.dropped++
		s.b.stats.dropped.Add(1)
		s.b.stats.limitQueue.Add(1)
	} else {
		grew = true
	}
	if s.fe != nil && !s.notified {
		s.notified = true
		return s.fe, grew
	}
	return nil, grew
}

// itoa formats n.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }

package benchfleet

import (
	"sync"
	"sync/atomic"
	"time"
)

// stripes is the number of locks the tracker's bitmaps are spread over.
const stripes = 64

// Tracker counts deliveries per source: it keeps one bitmap of seen
// sequence numbers per source, so a second delivery of the same (source,
// sequence) is a duplicate, and sent minus unique deliveries is the loss. It
// records each delivery's latency and its time slot. Safe for concurrent
// use; allocation-free except when a source's bitmap grows (every 64 new
// sequence numbers).
type Tracker struct {
	mu        [stripes]sync.Mutex
	seen      [][]uint64 // per source, guarded by mu[src%stripes]
	delivered atomic.Uint64
	dups      atomic.Uint64
	foreign   atomic.Uint64
	last      atomic.Int64    // Unix nanoseconds of the latest delivery
	tokens    []chan struct{} // per source, when a window is set
	lat       *Histogram
	tl        atomic.Pointer[Timeline]
	now       func() time.Time
}

// NewTracker returns a tracker for sources 0..sources-1 that records
// latencies into lat and delivery times into tl (tl may be nil).
func NewTracker(sources int, lat *Histogram, tl *Timeline) *Tracker {
	t := &Tracker{seen: make([][]uint64, sources), lat: lat, now: time.Now}
	t.tl.Store(tl)
	return t
}

// SetTimeline makes later deliveries count in tl (nil: in none). Receivers
// may already be running: the bench creates the timeline when sending
// starts.
func (t *Tracker) SetTimeline(tl *Timeline) { t.tl.Store(tl) }

// Deliver records the arrival of payload, a stamped benchmark payload. It
// reports whether the delivery was new (not a duplicate and not foreign).
func (t *Tracker) Deliver(payload []byte) bool {
	src, seq, sent, err := ParseStamp(payload)
	if err != nil {
		t.foreign.Add(1)
		return false
	}
	return t.DeliverStamp(src, seq, sent)
}

// DeliverStamp is Deliver with the stamp already parsed.
func (t *Tracker) DeliverStamp(src uint32, seq uint64, sentUnixNano int64) bool {
	if int(src) >= len(t.seen) {
		t.foreign.Add(1)
		return false
	}
	now := t.now()
	word, bit := seq/64, uint64(1)<<(seq%64)
	mu := &t.mu[src%stripes]
	mu.Lock()
	s := t.seen[src]
	if uint64(len(s)) <= word {
		n := max(2*len(s), int(word)+1)
		grown := make([]uint64, n)
		copy(grown, s)
		s = grown
		t.seen[src] = s
	}
	dup := s[word]&bit != 0
	s[word] |= bit
	mu.Unlock()
	if dup {
		t.dups.Add(1)
		return false
	}
	t.delivered.Add(1)
	if t.tokens != nil {
		select {
		case t.tokens[src] <- struct{}{}:
		default: // a token was already given back on a timeout
		}
	}
	ns := now.UnixNano()
	for {
		l := t.last.Load()
		if ns <= l || t.last.CompareAndSwap(l, ns) {
			break
		}
	}
	t.lat.Record(time.Duration(ns - sentUnixNano))
	if tl := t.tl.Load(); tl != nil {
		tl.Delivered(now)
	}
	return true
}

// SetWindow gives every source w tokens: a sender takes one per message
// (Acquire) and each unique delivery of that source's messages gives one
// back, so at most w of a source's messages are in flight end to end. Call
// it before any delivery.
func (t *Tracker) SetWindow(w int) {
	t.tokens = make([]chan struct{}, len(t.seen))
	for i := range t.tokens {
		t.tokens[i] = make(chan struct{}, w)
		for range w {
			t.tokens[i] <- struct{}{}
		}
	}
}

// Acquire takes one of src's window tokens. When none comes back within
// timer's period (a message was lost) it proceeds anyway, so loss cannot
// stall a sender. It returns false when stop closes first. timer is the
// caller's, reused to allocate nothing; it must be stopped and drained.
func (t *Tracker) Acquire(src uint32, timer *time.Timer, timeout time.Duration, stop <-chan struct{}) bool {
	select {
	case <-t.tokens[src]:
		return true
	default:
	}
	timer.Reset(timeout)
	select {
	case <-t.tokens[src]:
		timer.Stop()
		return true
	case <-timer.C:
		return true
	case <-stop:
		timer.Stop()
		return false
	}
}

// Delivered returns the number of unique deliveries.
func (t *Tracker) Delivered() uint64 { return t.delivered.Load() }

// Duplicates returns the number of repeated deliveries.
func (t *Tracker) Duplicates() uint64 { return t.dups.Load() }

// Foreign returns the number of messages that were not benchmark payloads
// of a known source.
func (t *Tracker) Foreign() uint64 { return t.foreign.Load() }

// LastDelivery returns the time of the latest unique delivery, the zero time
// when there was none.
func (t *Tracker) LastDelivery() time.Time {
	ns := t.last.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

package mqttcore

import (
	"sync/atomic"
	"time"
)

// The counters an operator's metrics need beyond the totals in stats.go:
// how full the fullest session queue is, and how long commits take. Both
// are kept as things change, so that reading them costs no pass over the
// sessions.

// QueueClasses is the number of classes Stats.QueueFill counts sessions in:
// tenths of MaxQueued, from 0 up to 2*MaxQueued (backpressure's overshoot)
// and beyond in the last.
const QueueClasses = 21

// commitBuckets are the upper bounds of Stats.CommitLatency's buckets.
var commitBuckets = [...]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second,
}

// CommitBuckets returns the upper bounds of Stats.CommitLatency's buckets;
// the last bucket, one past these, holds the slower commits.
func CommitBuckets() [len(commitBuckets)]time.Duration { return commitBuckets }

// opsCounters are the broker's counters for QueueFill and CommitLatency.
type opsCounters struct {
	queueFill     [QueueClasses]atomic.Int64
	commitLatency [len(commitBuckets) + 1]atomic.Uint64
}

// queueClass is the class of a queue holding n entries: the tenths of
// MaxQueued it reaches.
func (b *Broker) queueClass(n int32) uint8 {
	c := int64(n) * 10 / int64(max(b.conf().MaxQueued, 1))
	return uint8(min(c, QueueClasses-1))
}

// reclass moves s to the class of its queue's length. The caller holds
// s.mu and has just changed s.q. Class 0 (under a tenth of MaxQueued) is
// not counted, so a queue growing from empty costs a comparison only.
func (s *Session) reclass() {
	c := s.b.queueClass(s.q.n)
	if c == s.qclass {
		return
	}
	f := &s.b.stats.queueFill
	if s.qclass > 0 {
		f[s.qclass].Add(-1)
	}
	if c > 0 {
		f[c].Add(1)
	}
	s.qclass = c
}

// observeCommit counts a commit that took d.
func (c *opsCounters) observeCommit(d time.Duration) {
	i := 0
	for i < len(commitBuckets) && d > commitBuckets[i] {
		i++
	}
	c.commitLatency[i].Add(1)
}

// snapshotOps fills Stats' QueueFill and CommitLatency.
func (c *opsCounters) snapshotOps(st *Stats) {
	for i := range c.queueFill {
		st.QueueFill[i] = c.queueFill[i].Load()
	}
	for i := range c.commitLatency {
		st.CommitLatency[i] = c.commitLatency[i].Load()
	}
}

// FullestQueue returns the fill of the fullest session queue as a fraction
// of MaxQueued, rounded down to a tenth: 0 when no queue holds a tenth of
// MaxQueued, 1 when one is full, up to 2 under backpressure's overshoot.
func (st *Stats) FullestQueue() float64 {
	for i := len(st.QueueFill) - 1; i > 0; i-- {
		if st.QueueFill[i] > 0 {
			return float64(i) / 10
		}
	}
	return 0
}

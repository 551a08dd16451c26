package benchfleet

import (
	"sync/atomic"
	"time"
)

// Timeline counts sent and delivered messages per time slot from a start
// time, for the throughput-over-time plot. Events after the last slot are
// counted in it. Safe for concurrent use and allocation-free.
type Timeline struct {
	start time.Time
	width time.Duration
	sent  []atomic.Uint64
	deliv []atomic.Uint64
}

// NewTimeline returns a timeline of slots of the given width covering span
// from start (at least one slot).
func NewTimeline(start time.Time, span, width time.Duration) *Timeline {
	n := int(span/width) + 1
	return &Timeline{start: start, width: width, sent: make([]atomic.Uint64, n), deliv: make([]atomic.Uint64, n)}
}

func (t *Timeline) slot(at time.Time) int {
	i := int(at.Sub(t.start) / t.width)
	if i < 0 {
		return 0
	}
	if i >= len(t.sent) {
		return len(t.sent) - 1
	}
	return i
}

// Sent counts one message sent at time at.
func (t *Timeline) Sent(at time.Time) { t.sent[t.slot(at)].Add(1) }

// Delivered counts one message delivered at time at.
func (t *Timeline) Delivered(at time.Time) { t.deliv[t.slot(at)].Add(1) }

// Slot is one time slot of a timeline: messages sent and delivered per
// second during it.
type Slot struct {
	// StartSeconds is the slot's start, in seconds since the run began.
	StartSeconds float64 `json:"t"`
	// SentPerSec and DeliveredPerSec are the slot's counts divided by its width.
	SentPerSec      float64 `json:"sent_per_s"`
	DeliveredPerSec float64 `json:"delivered_per_s"`
}

// Slots returns the timeline up to and including the last slot with any
// event.
func (t *Timeline) Slots() []Slot {
	last := -1
	for i := range t.sent {
		if t.sent[i].Load() > 0 || t.deliv[i].Load() > 0 {
			last = i
		}
	}
	w := t.width.Seconds()
	out := make([]Slot, 0, last+1)
	for i := 0; i <= last; i++ {
		out = append(out, Slot{
			StartSeconds:    float64(i) * w,
			SentPerSec:      float64(t.sent[i].Load()) / w,
			DeliveredPerSec: float64(t.deliv[i].Load()) / w,
		})
	}
	return out
}

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
	last  atomic.Int64 // UnixNano of the latest event
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
func (t *Timeline) Sent(at time.Time) { t.sent[t.slot(at)].Add(1); t.note(at) }

// Delivered counts one message delivered at time at.
func (t *Timeline) Delivered(at time.Time) { t.deliv[t.slot(at)].Add(1); t.note(at) }

// note keeps the time of the latest event, which tells how much of the last
// slot the run covered.
func (t *Timeline) note(at time.Time) {
	n := at.UnixNano()
	for {
		old := t.last.Load()
		if n <= old || t.last.CompareAndSwap(old, n) {
			return
		}
	}
}

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
// event. The run ended inside that slot, at its latest event: its rates
// are divided by the part of the slot the run covered, not by the whole
// width, which would draw a false drop at the end. When that part is under
// a tenth of a slot it is too short for a rate and is left out, unless it
// is the only slot.
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
		cover := w
		if i == last {
			// Events clamped into the last slot may lie beyond it.
			cover = min(w, time.Duration(t.last.Load()-t.start.UnixNano()).Seconds()-float64(i)*w)
			if cover < w/10 && i > 0 {
				break
			}
			cover = max(cover, w/10)
		}
		out = append(out, Slot{
			StartSeconds:    float64(i) * w,
			SentPerSec:      float64(t.sent[i].Load()) / cover,
			DeliveredPerSec: float64(t.deliv[i].Load()) / cover,
		})
	}
	return out
}

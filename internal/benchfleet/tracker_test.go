package benchfleet

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestTrackerCountsDuplicatesForeignAndLatency(t *testing.T) {
	var h Histogram
	base := time.Unix(1000, 0)
	tl := NewTimeline(base, 10*time.Second, time.Second)
	tr := NewTracker(3, &h, tl)
	now := base.Add(1500 * time.Millisecond)
	tr.now = func() time.Time { return now }
	sent := base.Add(time.Second).UnixNano() // 500 ms before "now"

	deliver := func(src uint32, seq uint64) bool {
		b := make([]byte, 32)
		Stamp(b, src, seq, sent)
		return tr.Deliver(b)
	}
	steps := []struct {
		src  uint32
		seq  uint64
		want bool
	}{
		{0, 0, true},
		{0, 1, true},
		{0, 0, false}, // duplicate
		{2, 1000, true},
		{2, 1000, false}, // duplicate after growth
		{1, 64, true},
		{3, 0, false}, // unknown source: foreign
	}
	for _, s := range steps {
		if got := deliver(s.src, s.seq); got != s.want {
			t.Errorf("Deliver(src %d, seq %d) = %v; want %v", s.src, s.seq, got, s.want)
		}
	}
	if tr.Deliver([]byte("not stamped")) {
		t.Error("Deliver(unstamped) = true; want false")
	}
	if got, want := tr.Delivered(), uint64(4); got != want {
		t.Errorf("Delivered() = %d; want %d", got, want)
	}
	if got, want := tr.Duplicates(), uint64(2); got != want {
		t.Errorf("Duplicates() = %d; want %d", got, want)
	}
	if got, want := tr.Foreign(), uint64(2); got != want {
		t.Errorf("Foreign() = %d; want %d", got, want)
	}
	if got := h.Max(); got != 500*time.Millisecond {
		t.Errorf("latency max = %v; want 500ms", got)
	}
	if got := tr.LastDelivery(); !got.Equal(now) {
		t.Errorf("LastDelivery() = %v; want %v", got, now)
	}
	slots := tl.Slots()
	// 4 delivered in the second slot, which the run covered for 500 ms.
	if len(slots) != 2 || slots[1].DeliveredPerSec != 8 {
		t.Errorf("timeline = %+v; want 2 slots, 8 delivered/s in the second", slots)
	}
}

func TestTrackerDeliverAllocatesOnlyToGrow(t *testing.T) {
	var h Histogram
	tr := NewTracker(1, &h, nil)
	tr.DeliverStamp(0, 1<<16, 0) // grow the bitmap once
	seq := uint64(0)
	if n := testing.AllocsPerRun(1000, func() { tr.DeliverStamp(0, seq, 0); seq++ }); n != 0 {
		t.Errorf("DeliverStamp into a grown bitmap allocates %v times per call; want 0", n)
	}
}

func TestTimelineClampsAndSkipsTrailingEmptySlots(t *testing.T) {
	start := time.Unix(0, 0)
	tl := NewTimeline(start, 2*time.Second, time.Second) // 3 slots
	tl.Sent(start.Add(-time.Second))                     // before start: slot 0
	tl.Sent(start.Add(500 * time.Millisecond))
	tl.Delivered(start.Add(time.Hour)) // after the end: last slot
	got := tl.Slots()
	want := []Slot{{0, 2, 0}, {1, 0, 0}, {2, 0, 1}}
	if len(got) != len(want) {
		t.Fatalf("Slots() = %+v; want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("slot %d = %+v; want %+v", i, got[i], want[i])
		}
	}
	// A run that ends half-way through its last slot: the rate is over the
	// half it covered, not a false drop. One that ends just after a slot
	// began leaves that slot out.
	half := NewTimeline(start, 2*time.Second, time.Second)
	half.Sent(start.Add(500 * time.Millisecond))
	half.Sent(start.Add(1500 * time.Millisecond))
	if got := half.Slots(); len(got) != 2 || got[0].SentPerSec != 1 || got[1].SentPerSec != 2 {
		t.Errorf("Slots() = %+v; want 1/s, then 2/s over the half second covered", got)
	}
	half.Sent(start.Add(2050 * time.Millisecond))
	if got := half.Slots(); len(got) != 2 {
		t.Errorf("Slots() = %+v; want the slot covered for 50 ms left out", got)
	}
	empty := NewTimeline(start, time.Second, time.Second)
	if s := empty.Slots(); len(s) != 0 {
		t.Errorf("Slots() of an empty timeline = %+v; want none", s)
	}
}

func BenchmarkTrackerDeliver(b *testing.B) {
	b.ReportAllocs()
	var h Histogram
	tr := NewTracker(1000, &h, NewTimeline(time.Now(), time.Minute, time.Second))
	payload := make([]byte, 64)
	for i := uint64(0); b.Loop(); i++ {
		Stamp(payload, uint32(i%1000), i/1000, time.Now().UnixNano())
		tr.Deliver(payload)
	}
}

// TestTrackerWindow runs in a synctest bubble: the timeout passes in fake
// time.
func TestTrackerWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var h Histogram
		tr := NewTracker(2, &h, nil)
		tr.SetWindow(2)
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		stop := make(chan struct{})
		for range 2 {
			if !tr.Acquire(0, timer, time.Hour, stop) {
				t.Fatal("Acquire with tokens left = false")
			}
		}
		// No token left: a delivery of source 0 gives one back.
		tr.DeliverStamp(0, 0, time.Now().UnixNano())
		if !tr.Acquire(0, timer, time.Hour, stop) {
			t.Fatal("Acquire after a delivery = false")
		}
		// None left and none coming: the timeout lets the sender go on.
		start := time.Now()
		if !tr.Acquire(0, timer, time.Second, stop) || time.Since(start) != time.Second {
			t.Error("Acquire without tokens did not wait for its timeout")
		}
		// Stop ends the wait.
		close(stop)
		if tr.Acquire(0, timer, time.Hour, stop) {
			t.Error("Acquire after stop = true; want false")
		}
		// Source 1 has its own tokens.
		if !tr.Acquire(1, timer, time.Hour, make(chan struct{})) {
			t.Error("Acquire(1) = false; want its own window")
		}
	})
}

package mqttcore

import (
	"strconv"
	"testing"
)

// tree100k builds a tree with 100,000 subscriptions: 90,000 exact sensor
// topics, 9,000 single-level wildcards and 1,000 multi-level ones.
func tree100k() *tree {
	t := &tree{}
	for i := range 100_000 {
		var f string
		switch {
		case i < 90_000:
			f = "site/" + strconv.Itoa(i%100) + "/sensor/" + strconv.Itoa(i) + "/temp"
		case i < 99_000:
			f = "site/" + strconv.Itoa(i%100) + "/sensor/+/" + strconv.Itoa(i)
		default:
			f = "site/" + strconv.Itoa(i%100) + "/#"
		}
		t.insert(&subscription{inl: &inlineSub{name: "x"}, filter: f}, f, "")
	}
	return t
}

// TestMatchDoesNotAllocate: matching against 100,000 subscriptions with a
// warm scratch slice allocates nothing.
func TestMatchDoesNotAllocate(t *testing.T) {
	tr := tree100k()
	out := make([]hit, 0, 64)
	out = tr.match("site/42/sensor/4242/temp", out[:0])
	if len(out) != 11 { // the exact one and the ten site/42/# ones
		t.Fatalf("match = %d hits; want 11", len(out))
	}
	if a := testing.AllocsPerRun(100, func() { out = tr.match("site/42/sensor/4242/temp", out[:0]) }); a != 0 {
		t.Errorf("match: %.1f allocs; want 0", a)
	}
}

// BenchmarkMatch100kSubs matches one topic against 100,000 subscriptions.
func BenchmarkMatch100kSubs(b *testing.B) {
	tr := tree100k()
	out := make([]hit, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		out = tr.match("site/42/sensor/4242/temp", out[:0])
	}
	if len(out) != 11 {
		b.Fatalf("match = %d hits; want 11", len(out))
	}
}

package benchfleet

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketBoundsContainValue(t *testing.T) {
	values := []uint64{0, 1, 15, 16, 17, 31, 32, 33, 1000, 1023, 1024, 123456789, 1 << 40, 1<<63 - 1, 1<<64 - 1}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		values = append(values, r.Uint64()>>r.UintN(64))
	}
	for _, v := range values {
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d; want 0..%d", v, i, numBuckets-1)
		}
		lo, hi := bucketBounds(i)
		if v < lo || v > hi {
			t.Fatalf("bucketOf(%d) = %d with bounds [%d, %d]; want the value inside", v, i, lo, hi)
		}
		if v >= subCount && float64(hi-lo) > float64(lo)/subCount {
			t.Fatalf("bucket %d [%d, %d] wider than 1/%d of its lower bound", i, lo, hi, subCount)
		}
	}
}

func TestQuantileWithinBucketError(t *testing.T) {
	cases := []struct {
		name string
		gen  func(r *rand.Rand) time.Duration
	}{
		{"uniform 0-10ms", func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(int64(10 * time.Millisecond))) }},
		{"exponential 200us", func(r *rand.Rand) time.Duration { return time.Duration(r.ExpFloat64() * float64(200*time.Microsecond)) }},
		{"constant 1ms", func(*rand.Rand) time.Duration { return time.Millisecond }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			var h Histogram
			var exact []time.Duration
			for range 20000 {
				d := tc.gen(r)
				h.Record(d)
				exact = append(exact, d)
			}
			slices.Sort(exact)
			for _, q := range []float64{0.5, 0.9, 0.99, 1} {
				want := exact[int(q*float64(len(exact))+0.999999)-1]
				got := h.Quantile(q)
				if got < want || float64(got-want) > float64(want)/subCount+1 {
					t.Errorf("Quantile(%v) = %v; want %v to %v+6.25%%", q, got, want, want)
				}
			}
			if got, want := h.Max(), exact[len(exact)-1]; got != want {
				t.Errorf("Max() = %v; want %v", got, want)
			}
			if h.Count() != uint64(len(exact)) {
				t.Errorf("Count() = %d; want %d", h.Count(), len(exact))
			}
		})
	}
}

func TestEmptyHistogram(t *testing.T) {
	var h Histogram
	if s := h.Summary(); s != (Latency{}) {
		t.Errorf("Summary() of an empty histogram = %+v; want zeros", s)
	}
	if b := h.Buckets(); b != nil {
		t.Errorf("Buckets() of an empty histogram = %v; want nil", b)
	}
}

func TestNegativeDurationCountsAsZero(t *testing.T) {
	var h Histogram
	h.Record(-time.Second)
	if h.Count() != 1 || h.Max() != 0 || h.Quantile(1) != 0 {
		t.Errorf("after Record(-1s): count %d, max %v, p100 %v; want 1, 0, 0", h.Count(), h.Max(), h.Quantile(1))
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	var h Histogram
	if n := testing.AllocsPerRun(1000, func() { h.Record(1234 * time.Microsecond) }); n != 0 {
		t.Errorf("Record allocates %v times per call; want 0", n)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	b.ReportAllocs()
	var h Histogram
	for i := 0; b.Loop(); i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
}

package benchfleet

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// subBits is the number of mantissa bits per power of two: 16 sub-buckets,
// so a bucket's width is at most 1/16 (6.25 %) of its lower bound.
const subBits = 4

const (
	subCount   = 1 << subBits
	numBuckets = (64-subBits)*subCount + subCount
)

// Histogram is a log-linear histogram of durations, safe for concurrent use
// and allocation-free to record into. The zero value is ready to use.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64 // nanoseconds
	max    atomic.Uint64 // nanoseconds
	min    atomic.Uint64 // nanoseconds + 1, 0 meaning none yet
}

// bucketOf returns the bucket index of v nanoseconds.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	e := bits.Len64(v) - 1 // e >= subBits
	sub := (v >> (e - subBits)) & (subCount - 1)
	return (e-subBits+1)*subCount + int(sub)
}

// bucketBounds returns the smallest and largest value in bucket i.
func bucketBounds(i int) (lo, hi uint64) {
	if i < subCount {
		return uint64(i), uint64(i)
	}
	e := i/subCount + subBits - 1
	sub := uint64(i % subCount)
	lo = (subCount + sub) << (e - subBits)
	return lo, lo + (1 << (e - subBits)) - 1
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
	for {
		m := h.min.Load()
		if (m != 0 && v+1 >= m) || h.min.CompareAndSwap(m, v+1) {
			break
		}
	}
}

// Count returns the number of recorded durations.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Max returns the largest recorded duration, 0 when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Mean returns the mean recorded duration, 0 when empty.
func (h *Histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Quantile returns the q-quantile (0 < q <= 1) as the upper bound of the
// bucket holding it, never more than the largest recorded value; 0 when
// empty. The answer is at most 6.25 % above the true value.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.999999999)
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			_, hi := bucketBounds(i)
			lo := h.min.Load() - 1
			mx := h.max.Load()
			if hi > mx {
				hi = mx
			}
			if hi < lo {
				hi = lo
			}
			return time.Duration(hi)
		}
	}
	return h.Max()
}

// Bucket is one non-empty histogram bucket: the count of durations up to
// UpperNanos (and above the previous bucket's bound).
type Bucket struct {
	UpperNanos uint64 `json:"upper_ns"`
	Count      uint64 `json:"count"`
}

// Buckets returns the non-empty buckets in increasing order.
func (h *Histogram) Buckets() []Bucket {
	var out []Bucket
	for i := range h.counts {
		if c := h.counts[i].Load(); c > 0 {
			_, hi := bucketBounds(i)
			out = append(out, Bucket{UpperNanos: hi, Count: c})
		}
	}
	return out
}

// Latency summarises a histogram in milliseconds.
type Latency struct {
	Count  uint64  `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// Summary returns the histogram's count, mean, p50, p90, p99 and max.
func (h *Histogram) Summary() Latency {
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	return Latency{
		Count:  h.Count(),
		MeanMs: ms(h.Mean()),
		P50Ms:  ms(h.Quantile(0.50)),
		P90Ms:  ms(h.Quantile(0.90)),
		P99Ms:  ms(h.Quantile(0.99)),
		MaxMs:  ms(h.Max()),
	}
}

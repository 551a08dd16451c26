package radio

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// MaxLimiterSources bounds LimiterConfig.MaxSources: the table is
// allocated whole at start-up (about 60 octets a source), so a typo must not
// make it gigabytes.
const MaxLimiterSources = 10_000_000

// LimiterConfig configures a Limiter. The zero value is not valid: Rate and
// Burst must be set (a limit nobody chose is no limit).
type LimiterConfig struct {
	// Rate is the sustained events per second allowed per source.
	Rate float64 `toml:"rate"`
	// Burst is how many events a source may have at once after being idle.
	Burst int `toml:"burst"`
	// MaxSources caps the table of sources; when it is full the source
	// seen least recently is evicted (it starts again with a full bucket).
	MaxSources int `toml:"max_sources"`
	// IPv6Prefix is the prefix length IPv6 sources are grouped by (0: 64):
	// one host can use a whole /64, so per-address buckets would not limit
	// it. IPv4 sources are limited per address.
	IPv6Prefix int `toml:"ipv6_prefix"`
}

// Validate reports the first bad value in c.
func (c *LimiterConfig) Validate() error {
	switch {
	case !(c.Rate > 0):
		return invalid("rate limit: rate = %v: must be above 0 events per second", c.Rate)
	case c.Burst < 1:
		return invalid("rate limit: burst = %d: must be at least 1", c.Burst)
	case c.MaxSources < 1 || c.MaxSources > MaxLimiterSources:
		return invalid("rate limit: max_sources = %d: must be 1 to %d", c.MaxSources, MaxLimiterSources)
	case c.IPv6Prefix < 0 || c.IPv6Prefix > 128:
		return invalid("rate limit: ipv6_prefix = %d: must be 0 (default 64) to 128", c.IPv6Prefix)
	}
	return nil
}

// Limiter is a table of token buckets keyed by source address, bounded in
// size with least-recently-seen eviction. radio cannot parse MQTT-SN, so the
// gateway asks it: Allow(addr, now) before creating a session for an
// unknown source and before accepting a QoS -1 PUBLISH. Allow allocates
// nothing: the table is preallocated. Safe for concurrent use; time is
// passed in, so tests need no clock.
type Limiter struct {
	rate, burst float64
	v6bits      int

	mu    sync.Mutex
	index map[netip.Addr]int32
	slots []bucket
	head  int32 // most recently seen, -1 when empty
	tail  int32 // least recently seen

	allowed, limited, evicted atomic.Uint64
}

type bucket struct {
	key        netip.Addr
	tokens     float64
	last       int64 // unix nanoseconds of the last refill
	prev, next int32
}

// LimiterStats counts a Limiter's decisions. All are cumulative except
// Sources.
type LimiterStats struct {
	Allowed, Limited, Evicted uint64
	Sources                   int
}

// NewLimiter returns a Limiter for a valid cfg.
func NewLimiter(cfg LimiterConfig) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v6 := cfg.IPv6Prefix
	if v6 == 0 {
		v6 = 64
	}
	return &Limiter{
		rate: cfg.Rate, burst: float64(cfg.Burst), v6bits: v6,
		index: make(map[netip.Addr]int32, cfg.MaxSources),
		slots: make([]bucket, 0, cfg.MaxSources),
		head:  -1, tail: -1,
	}, nil
}

// key groups addr with its neighbours by the configured prefixes.
func (l *Limiter) key(addr netip.Addr) netip.Addr {
	addr = addr.Unmap().WithZone("")
	if addr.Is6() && l.v6bits < 128 {
		p, err := addr.Prefix(l.v6bits)
		if err == nil {
			return p.Addr()
		}
	}
	return addr
}

// Allow takes one token from addr's bucket at time now and reports whether
// there was one.
func (l *Limiter) Allow(addr netip.Addr, now time.Time) bool {
	k, t := l.key(addr), now.UnixNano()
	l.mu.Lock()
	i, ok := l.index[k]
	if !ok {
		i = l.insert(k, t)
	} else {
		l.touch(i)
	}
	b := &l.slots[i]
	if dt := t - b.last; dt > 0 {
		b.tokens = min(l.burst, b.tokens+float64(dt)*l.rate/1e9)
		b.last = t
	}
	ok = b.tokens >= 1
	if ok {
		b.tokens--
	}
	l.mu.Unlock()
	if ok {
		l.allowed.Add(1)
	} else {
		l.limited.Add(1)
	}
	return ok
}

// insert gives k a full bucket, evicting the least recently seen source
// when the table is full. l.mu is held.
func (l *Limiter) insert(k netip.Addr, t int64) int32 {
	var i int32
	if len(l.slots) < cap(l.slots) {
		l.slots = append(l.slots, bucket{})
		i = int32(len(l.slots) - 1)
	} else {
		i = l.tail
		l.unlink(i)
		delete(l.index, l.slots[i].key)
		l.evicted.Add(1)
	}
	l.slots[i] = bucket{key: k, tokens: l.burst, last: t, prev: -1, next: -1}
	l.index[k] = i
	l.pushFront(i)
	return i
}

func (l *Limiter) touch(i int32) {
	if l.head != i {
		l.unlink(i)
		l.pushFront(i)
	}
}

func (l *Limiter) unlink(i int32) {
	b := &l.slots[i]
	if b.prev >= 0 {
		l.slots[b.prev].next = b.next
	} else {
		l.head = b.next
	}
	if b.next >= 0 {
		l.slots[b.next].prev = b.prev
	} else {
		l.tail = b.prev
	}
	b.prev, b.next = -1, -1
}

func (l *Limiter) pushFront(i int32) {
	b := &l.slots[i]
	b.prev, b.next = -1, l.head
	if l.head >= 0 {
		l.slots[l.head].prev = i
	}
	l.head = i
	if l.tail < 0 {
		l.tail = i
	}
}

// Stats returns the limiter's counters.
func (l *Limiter) Stats() LimiterStats {
	l.mu.Lock()
	n := len(l.index)
	l.mu.Unlock()
	return LimiterStats{Allowed: l.allowed.Load(), Limited: l.limited.Load(), Evicted: l.evicted.Load(), Sources: n}
}

// String describes the limiter's settings, for logs.
func (l *Limiter) String() string {
	return fmt.Sprintf("%g/s burst %g per source, %d sources, IPv6 /%d", l.rate, l.burst, cap(l.slots), l.v6bits)
}

package radio

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestLimiterTokenBucket(t *testing.T) {
	lim, err := NewLimiter(LimiterConfig{Rate: 2, Burst: 3, MaxSources: 8})
	if err != nil {
		t.Fatal(err)
	}
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	t0 := time.Unix(1000, 0)
	for i, tc := range []struct {
		addr netip.Addr
		at   time.Duration
		want bool
	}{
		{a, 0, true}, {a, 0, true}, {a, 0, true}, // the burst
		{a, 0, false},                      // empty
		{b, 0, true},                       // another source has its own bucket
		{a, 499 * time.Millisecond, false}, // 0.998 tokens
		{a, 500 * time.Millisecond, true},  // one token at 2/s
		{a, 500 * time.Millisecond, false},
		{a, time.Hour, true}, {a, time.Hour, true}, {a, time.Hour, true}, // refilled to burst, not beyond
		{a, time.Hour, false},
	} {
		if got := lim.Allow(tc.addr, t0.Add(tc.at)); got != tc.want {
			t.Fatalf("step %d: Allow(%v, +%v) = %v; want %v", i, tc.addr, tc.at, got, tc.want)
		}
	}
	if st := lim.Stats(); st.Allowed != 8 || st.Limited != 4 || st.Sources != 2 {
		t.Errorf("Stats() = %+v; want 8 allowed, 4 limited, 2 sources", st)
	}
}

func TestLimiterEvictsLeastRecentlySeenAndGroupsIPv6(t *testing.T) {
	lim, _ := NewLimiter(LimiterConfig{Rate: 1, Burst: 1, MaxSources: 2})
	now := time.Unix(0, 0)
	a, b, c := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	lim.Allow(a, now)
	lim.Allow(b, now)
	lim.Allow(a, now) // a is now more recent than b (and empty)
	lim.Allow(c, now) // evicts b
	if st := lim.Stats(); st.Evicted != 1 || st.Sources != 2 {
		t.Fatalf("Stats() = %+v; want 1 eviction, 2 sources", st)
	}
	if lim.Allow(a, now) {
		t.Error("a was evicted; want b (least recently seen) evicted")
	}
	if !lim.Allow(b, now) {
		t.Error("b came back without a fresh bucket")
	}
	// Two addresses in one /64 share a bucket; the default prefix is 64.
	v6, _ := NewLimiter(LimiterConfig{Rate: 1, Burst: 1, MaxSources: 4})
	if !v6.Allow(netip.MustParseAddr("2001:db8:1:2::1"), now) || v6.Allow(netip.MustParseAddr("2001:db8:1:2::ffff"), now) {
		t.Error("addresses in one /64 do not share a bucket")
	}
	if !v6.Allow(netip.MustParseAddr("::ffff:10.0.0.1"), now) || v6.Allow(netip.MustParseAddr("10.0.0.1"), now) {
		t.Error("an IPv4-mapped address and its IPv4 form do not share a bucket")
	}
}

func TestLimiterConfigValidate(t *testing.T) {
	for _, c := range []LimiterConfig{
		{}, {Rate: 1, Burst: 0, MaxSources: 1}, {Rate: 1, Burst: 1}, {Rate: -1, Burst: 1, MaxSources: 1},
		{Rate: 1, Burst: 1, MaxSources: 1, IPv6Prefix: 129},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil; want an error", c)
		}
	}
}

func TestLimiterAllowAllocatesNothing(t *testing.T) {
	lim, _ := NewLimiter(LimiterConfig{Rate: 1000, Burst: 10, MaxSources: 64})
	addrs := make([]netip.Addr, 256) // more than MaxSources: evictions too
	for i := range addrs {
		addrs[i] = netip.MustParseAddr(fmt.Sprintf("10.1.%d.%d", i/256, i%256))
	}
	now, i := time.Unix(0, 0), 0
	if n := testing.AllocsPerRun(1000, func() { lim.Allow(addrs[i%len(addrs)], now); i++ }); n != 0 {
		t.Errorf("Allow allocates %v; want 0", n)
	}
}

func BenchmarkLimiterAllow(b *testing.B) {
	lim, _ := NewLimiter(LimiterConfig{Rate: 1000, Burst: 10, MaxSources: 10000})
	addrs := make([]netip.Addr, 20000)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	}
	now := time.Unix(0, 0)
	b.ReportAllocs()
	for i := range b.N {
		lim.Allow(addrs[i%len(addrs)], now)
	}
}

package lossy

import (
	"encoding/binary"
	"math"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gannet-mqtt/gannet/internal/memlink"
)

// pair returns a wrapped sender and a plain receiver on one network.
func pair(t *testing.T, cfg Config) (*Link, *memlink.Link) {
	t.Helper()
	n := memlink.New()
	a, err := n.Listen("10.0.0.1:1000")
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.Listen("10.0.0.2:2000")
	if err != nil {
		t.Fatal(err)
	}
	la := Wrap(a, cfg)
	t.Cleanup(func() { la.Close(); b.Close() })
	return la, b
}

// transfer sends count numbered datagrams in bursts the receiver's buffer
// holds, and returns the numbers received in order.
func transfer(t *testing.T, cfg Config, count int) ([]uint32, Stats) {
	var got []uint32
	var st Stats
	synctest.Test(t, func(t *testing.T) {
		s, r := pair(t, cfg)
		buf := make([]byte, 16)
		for i := 0; i < count; i += 200 {
			for j := i; j < min(i+200, count); j++ {
				binary.BigEndian.PutUint32(buf, uint32(j))
				s.WriteToUDPAddrPort(buf[:4], r.AddrPort())
			}
			time.Sleep(cfg.Delay + cfg.Jitter + time.Second) // fake time: every delayed and held datagram is out
			synctest.Wait()
			for {
				r.SetReadDeadline(time.Now().Add(time.Millisecond)) // fake time; memlink refuses a deadline already past
				n, _, err := r.ReadFromUDPAddrPort(buf)
				if err != nil {
					break
				}
				got = append(got, binary.BigEndian.Uint32(buf[:n]))
			}
		}
		st = s.Stats()
	})
	return got, st
}

func TestLossRateAndDeterminism(t *testing.T) {
	cfg := Config{Loss: 0.2, Seed: 42}
	got, st := transfer(t, cfg, 10000)
	rate := 1 - float64(len(got))/10000
	if math.Abs(rate-0.2) > 0.02 || st.Dropped != uint64(10000-len(got)) {
		t.Errorf("lost %.3f (%d dropped, stats %+v); want 0.20 +- 0.02", rate, 10000-len(got), st)
	}
	again, _ := transfer(t, cfg, 10000)
	if len(again) != len(got) {
		t.Fatalf("same seed: %d then %d datagrams arrived; want the same", len(got), len(again))
	}
	for i := range got {
		if got[i] != again[i] {
			t.Fatalf("same seed: run differs at %d", i)
		}
	}
	other, _ := transfer(t, Config{Loss: 0.2, Seed: 43}, 10000)
	if len(other) == len(got) {
		same := true
		for i := range got {
			same = same && got[i] == other[i]
		}
		if same {
			t.Error("different seeds gave the same run")
		}
	}
}

func TestDuplicationAndReordering(t *testing.T) {
	got, st := transfer(t, Config{Duplicate: 0.05, Reorder: 0.1, Seed: 7}, 5000)
	seen := map[uint32]int{}
	inversions := 0
	for i, v := range got {
		seen[v]++
		if i > 0 && v < got[i-1] {
			inversions++
		}
	}
	if len(seen) != 5000 {
		t.Fatalf("%d distinct datagrams arrived; want all 5000 (no loss configured)", len(seen))
	}
	if dups := len(got) - 5000; dups != int(st.Duplicated) || dups < 150 || dups > 350 {
		t.Errorf("%d duplicates (stats %d); want about 250", dups, st.Duplicated)
	}
	if inversions < 300 || st.Reordered < 300 {
		t.Errorf("%d inversions, %d reordered; want about 500", inversions, st.Reordered)
	}
}

func TestDelayInFakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, r := pair(t, Config{Delay: 250 * time.Millisecond, Jitter: 50 * time.Millisecond, Seed: 1})
		start := time.Now()
		s.WriteToUDPAddrPort([]byte("x"), r.AddrPort())
		r.SetReadDeadline(time.Now().Add(time.Minute))
		if _, _, err := r.ReadFromUDPAddrPort(make([]byte, 4)); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 250*time.Millisecond || d >= 300*time.Millisecond {
			t.Errorf("arrived after %v; want 250ms + [0, 50ms)", d)
		}
	})
}

func TestChangeAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memlink.New()
		srvInner, _ := n.Listen("10.0.0.1:1884")
		srv := Wrap(srvInner, Config{})
		cli, _ := n.Listen("10.0.0.2:5000")
		defer srv.Close()
		defer cli.Close()
		moved := netip.MustParseAddrPort("192.0.2.9:40000")
		srv.ChangeAddress(cli.AddrPort(), moved)
		cli.WriteToUDPAddrPort([]byte("hi"), srvInner.AddrPort())
		buf := make([]byte, 8)
		_, from, err := srv.ReadFromUDPAddrPort(buf)
		if err != nil || from != moved {
			t.Fatalf("server read from %v, %v; want the moved address %v", from, err, moved)
		}
		srv.WriteToUDPAddrPort([]byte("back"), moved)
		cli.SetReadDeadline(time.Now().Add(time.Second))
		n2, _, err := cli.ReadFromUDPAddrPort(buf)
		if err != nil || string(buf[:n2]) != "back" {
			t.Fatalf("client read %q, %v; want the reply sent to its new address", buf[:n2], err)
		}
	})
}

func TestCloseStopsPendingDeliveries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, r := pair(t, Config{Delay: time.Second, Seed: 1})
		s.WriteToUDPAddrPort([]byte("late"), r.AddrPort())
		s.Close()
		time.Sleep(2 * time.Second) // fake time
		r.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, _, err := r.ReadFromUDPAddrPort(make([]byte, 8)); err == nil {
			t.Error("a datagram delayed past Close was delivered")
		}
	})
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{{Loss: 1}, {Duplicate: -0.1}, {Reorder: 2}, {Delay: -1}} {
		if c.Validate() == nil {
			t.Errorf("Validate(%+v) = nil; want an error", c)
		}
	}
}

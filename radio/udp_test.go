package radio

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func listenUDPT(t testing.TB, cfg ListenerConfig) *UDPLink {
	t.Helper()
	l, err := ListenUDP(cfg)
	if err != nil {
		t.Fatalf("ListenUDP(%+v) = %v", cfg, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func dialUDPT(t testing.TB, network, local string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(local)))
	if err != nil {
		t.Fatalf("listen sender: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func linkAddr(l interface{ LocalAddr() net.Addr }) netip.AddrPort {
	return l.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestUDPLinkReadsEveryDatagramInOrder(t *testing.T) {
	for _, tc := range []struct {
		name, network, listen, sender string
		batch                         int
	}{
		{"udp4 unbatched", "udp4", "127.0.0.1:0", "127.0.0.1:0", 1},
		{"udp4 batch 8", "udp4", "127.0.0.1:0", "127.0.0.1:0", 8},
		{"udp4 batch 32", "udp4", "127.0.0.1:0", "127.0.0.1:0", 32},
		{"udp6 batch 32", "udp6", "[::1]:0", "[::1]:0", 32},
		{"dual stack, IPv4 sender unmapped", "udp", "[::]:0", "127.0.0.1:0", 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := listenUDPT(t, ListenerConfig{Network: tc.network, Address: tc.listen, BatchSize: tc.batch})
			l.SetReadDeadline(time.Now().Add(10 * time.Second))
			fam := "udp4"
			if netip.MustParseAddrPort(tc.sender).Addr().Is6() {
				fam = "udp6"
			}
			a, b := dialUDPT(t, fam, tc.sender), dialUDPT(t, fam, tc.sender)
			dst := netip.AddrPortFrom(netip.MustParseAddrPort(tc.sender).Addr(), linkAddr(l).Port())
			const count = 100
			for i := range count {
				s := a
				if i%3 == 0 {
					s = b
				}
				if _, err := s.WriteToUDPAddrPort([]byte(fmt.Sprintf("datagram %03d", i)), dst); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			// Each sender's datagrams arrive in the order it sent them; nothing
			// orders one socket's datagrams against another's, so each is
			// checked against its own sender's sequence.
			addrA, addrB := a.LocalAddr().(*net.UDPAddr).AddrPort(), b.LocalAddr().(*net.UDPAddr).AddrPort()
			last := map[netip.AddrPort]int{addrA: -1, addrB: -1}
			buf := make([]byte, 100)
			for i := range count {
				n, from, err := l.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatalf("read %d: %v", i, err)
				}
				var j int
				if _, err := fmt.Sscanf(string(buf[:n]), "datagram %d", &j); err != nil || j < 0 || j >= count {
					t.Fatalf("read %d = %q; want one of the datagrams sent", i, buf[:n])
				}
				want := addrA
				if j%3 == 0 {
					want = addrB
				}
				if from != want || j <= last[from] {
					t.Fatalf("read %d = %q from %v; want it from %v, after datagram %d of that sender", i, buf[:n], from, want, last[want])
				}
				last[from] = j
			}
			st := l.Stats()
			if st.Received != count {
				t.Errorf("Stats().Received = %d; want %d", st.Received, count)
			}
			if tc.batch > 1 && batchSupported && st.Syscalls >= count/2 {
				t.Errorf("batch %d: %d system calls for %d datagrams; want far fewer", tc.batch, st.Syscalls, count)
			}
		})
	}
}

func TestUDPLinkDropsAndCountsTruncatedDatagrams(t *testing.T) {
	if !batchSupported {
		t.Skip("recvmmsg batching is Linux only")
	}
	l := listenUDPT(t, ListenerConfig{Network: "udp4", Address: "127.0.0.1:0", MaxDatagram: 16})
	l.SetReadDeadline(time.Now().Add(10 * time.Second))
	s := dialUDPT(t, "udp4", "127.0.0.1:0")
	s.WriteToUDPAddrPort(make([]byte, 17), linkAddr(l))
	s.WriteToUDPAddrPort([]byte("short"), linkAddr(l))
	buf := make([]byte, 64)
	n, _, err := l.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "short" {
		t.Fatalf("ReadFromUDPAddrPort = %q, %v; want \"short\"", buf[:n], err)
	}
	if got := l.Stats().Truncated; got != 1 {
		t.Errorf("Stats().Truncated = %d; want 1", got)
	}
}

func TestUDPLinkReadDeadlineAndClose(t *testing.T) {
	for _, batch := range []int{1, 32} {
		t.Run(fmt.Sprint("batch ", batch), func(t *testing.T) {
			l := listenUDPT(t, ListenerConfig{Network: "udp4", Address: "127.0.0.1:0", BatchSize: batch})
			l.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			if _, _, err := l.ReadFromUDPAddrPort(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read past deadline = %v; want os.ErrDeadlineExceeded", err)
			}
			l.SetReadDeadline(time.Now().Add(10 * time.Second))
			done := make(chan error, 1)
			go func() { _, _, err := l.ReadFromUDPAddrPort(make([]byte, 10)); done <- err }()
			l.Close()
			select {
			case err := <-done:
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("read on closed link = %v; want net.ErrClosed", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("read did not return after Close")
			}
		})
	}
}

func TestUDPLinkWritesAndSetsBuffers(t *testing.T) {
	l := listenUDPT(t, ListenerConfig{Network: "udp4", Address: "127.0.0.1:0", ReadBuffer: 1 << 16, WriteBuffer: 1 << 16})
	st := l.Stats()
	if batchSupported && (st.ReadBuffer < 1<<16 || st.WriteBuffer < 1<<16) {
		t.Errorf("effective buffers %d/%d; want at least %d (Linux doubles the request)", st.ReadBuffer, st.WriteBuffer, 1<<16)
	}
	r := dialUDPT(t, "udp4", "127.0.0.1:0")
	r.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := l.WriteToUDPAddrPort([]byte("hello"), r.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	n, from, err := r.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "hello" || from != linkAddr(l) {
		t.Fatalf("peer read %q from %v, %v; want \"hello\" from %v", buf[:n], from, err, linkAddr(l))
	}
	if l.Stats().Sent != 1 {
		t.Errorf("Stats().Sent = %d; want 1", l.Stats().Sent)
	}
}

func TestUDPLinkReadAllocatesNothing(t *testing.T) {
	for _, batch := range []int{1, 32} {
		t.Run(fmt.Sprint("batch ", batch), func(t *testing.T) {
			l := listenUDPT(t, ListenerConfig{Network: "udp4", Address: "127.0.0.1:0", BatchSize: batch})
			l.SetReadDeadline(time.Now().Add(10 * time.Second))
			s := dialUDPT(t, "udp4", "127.0.0.1:0")
			dst, msg, buf := linkAddr(l), []byte("payload"), make([]byte, 64)
			allocs := testing.AllocsPerRun(200, func() {
				if _, err := s.WriteToUDPAddrPort(msg, dst); err != nil {
					t.Fatal(err)
				}
				if _, _, err := l.ReadFromUDPAddrPort(buf); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("send+read allocates %v per datagram; want 0", allocs)
			}
		})
	}
}

// TestUDPLinkDefaultBuffers checks that a listener without read_buffer and
// write_buffer asks for DefaultReadBuffer and DefaultWriteBuffer (as far as
// net.core.rmem_max/wmem_max allow), not the system's small default.
func TestUDPLinkDefaultBuffers(t *testing.T) {
	if !batchSupported {
		t.Skip("socket buffer sizes are read back on Linux only")
	}
	sysMax := func(name string) int {
		b, err := os.ReadFile("/proc/sys/net/core/" + name)
		if err != nil {
			t.Skipf("read net.core.%s: %v", name, err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Skipf("parse net.core.%s %q: %v", name, b, err)
		}
		return n
	}
	wantR := min(DefaultReadBuffer, sysMax("rmem_max"))
	wantW := min(DefaultWriteBuffer, sysMax("wmem_max"))
	l := listenUDPT(t, ListenerConfig{Network: "udp4", Address: "127.0.0.1:0"})
	if st := l.Stats(); st.ReadBuffer < wantR || st.WriteBuffer < wantW {
		t.Errorf("effective buffers %d/%d with read_buffer and write_buffer unset; want at least %d/%d",
			st.ReadBuffer, st.WriteBuffer, wantR, wantW)
	}
}

func TestUDPLinkWriteBatchSendsEveryDatagramInOrder(t *testing.T) {
	for _, tc := range []struct {
		name, network, listen, peer string
		batch                       int
	}{
		{"udp4 unbatched", "udp4", "127.0.0.1:0", "127.0.0.1:0", 1},
		{"udp4 batch 8", "udp4", "127.0.0.1:0", "127.0.0.1:0", 8},
		{"udp4 batch 32", "udp4", "127.0.0.1:0", "127.0.0.1:0", 32},
		{"udp6 batch 32", "udp6", "[::1]:0", "[::1]:0", 32},
		{"dual stack, IPv4 peers", "udp", "[::]:0", "127.0.0.1:0", 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := listenUDPT(t, ListenerConfig{Network: tc.network, Address: tc.listen, BatchSize: tc.batch})
			fam := "udp4"
			if netip.MustParseAddrPort(tc.peer).Addr().Is6() {
				fam = "udp6"
			}
			a, b := dialUDPT(t, fam, tc.peer), dialUDPT(t, fam, tc.peer)
			addrA, addrB := a.LocalAddr().(*net.UDPAddr).AddrPort(), b.LocalAddr().(*net.UDPAddr).AddrPort()
			const count = 100
			var bufs [][]byte
			var addrs []netip.AddrPort
			for i := range count {
				to := addrA
				if i%3 == 0 {
					to = addrB
				}
				bufs = append(bufs, []byte(fmt.Sprintf("datagram %03d", i)))
				addrs = append(addrs, to)
			}
			// An empty datagram goes out alone, between the batches.
			bufs = append(bufs[:50:50], append([][]byte{{}}, bufs[50:]...)...)
			addrs = append(addrs[:50:50], append([]netip.AddrPort{addrA}, addrs[50:]...)...)
			n, err := l.WriteBatchUDPAddrPort(bufs, addrs)
			if n != count+1 || err != nil {
				t.Fatalf("WriteBatchUDPAddrPort(%d datagrams) = %d, %v; want %d, nil", count+1, n, err, count+1)
			}
			for _, r := range []struct {
				c    *net.UDPConn
				want func(int) bool
			}{{a, func(i int) bool { return i%3 != 0 }}, {b, func(i int) bool { return i%3 == 0 }}} {
				r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 64)
				for i := range count {
					if !r.want(i) {
						continue
					}
					if r.c == a && i == 50 {
						if n, _, err := r.c.ReadFromUDPAddrPort(buf); n != 0 || err != nil {
							t.Fatalf("peer %v read %q, %v; want the empty datagram", r.c.LocalAddr(), buf[:n], err)
						}
					}
					n, from, err := r.c.ReadFromUDPAddrPort(buf)
					want := fmt.Sprintf("datagram %03d", i)
					if err != nil || string(buf[:n]) != want || from.Port() != linkAddr(l).Port() {
						t.Fatalf("peer %v read %q from %v, %v; want %q from port %d", r.c.LocalAddr(), buf[:n], from, err, want, linkAddr(l).Port())
					}
				}
			}
			st := l.Stats()
			if st.Sent != count+1 || st.WriteErrors != 0 {
				t.Errorf("Stats() Sent %d, WriteErrors %d; want %d, 0", st.Sent, st.WriteErrors, count+1)
			}
			if tc.batch > 1 && batchSupported && st.SendSyscalls >= count/2 {
				t.Errorf("batch %d: %d send system calls for %d datagrams; want far fewer", tc.batch, st.SendSyscalls, count+1)
			}
		})
	}
}

func TestUDPLinkWriteBatchSkipsARefusedDatagram(t *testing.T) {
	l := listenUDPT(t, ListenerConfig{Network: "udp4", Address: "127.0.0.1:0", BatchSize: 8})
	r := dialUDPT(t, "udp4", "127.0.0.1:0")
	to := r.LocalAddr().(*net.UDPAddr).AddrPort()
	v6 := netip.MustParseAddrPort("[2001:db8::1]:9") // no IPv6 on a udp4 socket
	bufs := [][]byte{[]byte("one"), []byte("lost"), []byte("two")}
	n, err := l.WriteBatchUDPAddrPort(bufs, []netip.AddrPort{to, v6, to})
	if n != 2 || err == nil {
		t.Fatalf("WriteBatchUDPAddrPort(one to IPv6 on udp4) = %d, %v; want 2 and an error", n, err)
	}
	r.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 16)
	for _, want := range []string{"one", "two"} {
		n, _, err := r.ReadFromUDPAddrPort(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("peer read %q, %v; want %q", buf[:n], err, want)
		}
	}
	if st := l.Stats(); st.Sent != 2 || st.WriteErrors != 1 {
		t.Errorf("Stats() Sent %d, WriteErrors %d; want 2, 1", st.Sent, st.WriteErrors)
	}
}

func TestUDPLinkWriteBatchAllocatesNothing(t *testing.T) {
	l := listenUDPT(t, ListenerConfig{Network: "udp4", Address: "127.0.0.1:0"})
	r := dialUDPT(t, "udp4", "127.0.0.1:0")
	to := r.LocalAddr().(*net.UDPAddr).AddrPort()
	bufs := [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d")}
	addrs := []netip.AddrPort{to, to, to, to}
	in := make([]byte, 8)
	r.SetReadDeadline(time.Now().Add(10 * time.Second))
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := l.WriteBatchUDPAddrPort(bufs, addrs); err != nil {
			t.Fatal(err)
		}
		for range bufs {
			if _, _, err := r.ReadFromUDPAddrPort(in); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("WriteBatchUDPAddrPort of 4 allocates %v; want 0", allocs)
	}
}

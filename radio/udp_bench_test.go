package radio

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

// BenchmarkUDPRead measures datagrams/s through ReadFromUDPAddrPort with
// batching off (batch=1: one recvfrom per datagram) and on. With the timer
// stopped, a sender on loopback queues a burst of 1,024 datagrams of 40
// octets (a typical MQTT-SN PUBLISH) in the socket buffer; the timed part
// reads them, so the number is the read path's, not the sender's.
func BenchmarkUDPRead(b *testing.B) {
	const burst = 1024
	for _, batch := range []int{1, 8, 32, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			l := listenUDPT(b, ListenerConfig{Network: "udp4", Address: "127.0.0.1:0", BatchSize: batch, ReadBuffer: 4 << 20})
			if st := l.Stats(); st.ReadBuffer < 2<<20 {
				b.Skipf("SO_RCVBUF is %d; the burst needs 2 MiB (raise net.core.rmem_max)", st.ReadBuffer)
			}
			s := dialUDPT(b, "udp4", "127.0.0.1:0")
			pc := ipv4.NewPacketConn(s)
			ua := net.UDPAddrFromAddrPort(linkAddr(l))
			ms := make([]ipv4.Message, 64)
			for i := range ms {
				ms[i] = ipv4.Message{Buffers: [][]byte{make([]byte, 40)}, Addr: ua}
			}
			fill := func(n int) {
				for n > 0 {
					k, err := pc.WriteBatch(ms[:min(n, len(ms))], 0)
					if err != nil {
						b.Fatal(err)
					}
					n -= k
				}
			}
			l.SetReadDeadline(time.Now().Add(5 * time.Minute))
			buf := make([]byte, 2048)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; {
				b.StopTimer()
				chunk := min(burst, b.N-i)
				fill(chunk)
				b.StartTimer()
				for range chunk {
					if _, _, err := l.ReadFromUDPAddrPort(buf); err != nil {
						b.Fatal(err)
					}
				}
				i += chunk
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "datagrams/s")
			st := l.Stats()
			b.ReportMetric(float64(st.Received)/float64(max(st.Syscalls, 1)), "datagrams/syscall")
		})
	}
}

// BenchmarkUDPWrite measures direct writes (one sendto per datagram), the
// path WriteToUDPAddrPort takes, against WriteBatchUDPAddrPort's sendmmsg
// in batches of 8 and 32, and against sendmmsg batches of 32 through
// golang.org/x/net/ipv4.
func BenchmarkUDPWrite(b *testing.B) {
	l := listenUDPT(b, ListenerConfig{Network: "udp4", Address: "127.0.0.1:0", WriteBuffer: 4 << 20})
	r := listenUDPT(b, ListenerConfig{Network: "udp4", Address: "127.0.0.1:0", ReadBuffer: 4 << 20})
	// The receiver drains with a deadline; drops when it falls behind are
	// fine, the benchmark measures the sender.
	go func() { // exits when r is closed by Cleanup
		buf := make([]byte, 2048)
		for {
			if _, _, err := r.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}()
	dst := linkAddr(r)
	msg := make([]byte, 40)
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := l.WriteToUDPAddrPort(msg, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, n := range []int{8, 32} {
		b.Run(fmt.Sprintf("WriteBatch=%d", n), func(b *testing.B) {
			bufs, addrs := make([][]byte, n), make([]netip.AddrPort, n)
			for i := range bufs {
				bufs[i], addrs[i] = msg, dst
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i += n {
				k := min(n, b.N-i)
				if _, err := l.WriteBatchUDPAddrPort(bufs[:k], addrs[:k]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("x/net sendmmsg=32", func(b *testing.B) {
		pc := ipv4.NewPacketConn(l.Conn())
		ua := net.UDPAddrFromAddrPort(dst)
		ms := make([]ipv4.Message, 32)
		for i := range ms {
			ms[i] = ipv4.Message{Buffers: [][]byte{msg}, Addr: ua}
		}
		b.ReportAllocs()
		for i := 0; i < b.N; i += len(ms) {
			if _, err := pc.WriteBatch(ms[:min(len(ms), b.N-i)], 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}

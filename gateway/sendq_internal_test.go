package gateway

import (
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"
)

// batchRecorder is a BatchLink that records each WriteBatchUDPAddrPort.
type batchRecorder struct {
	batches [][]string
	to      []netip.AddrPort
}

func (r *batchRecorder) ReadFromUDPAddrPort([]byte) (int, netip.AddrPort, error) {
	return 0, netip.AddrPort{}, net.ErrClosed
}
func (r *batchRecorder) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	panic("a BatchLink's datagrams go through the send queue")
}
func (r *batchRecorder) LocalAddr() net.Addr { return &net.UDPAddr{} }
func (r *batchRecorder) Close() error        { return nil }
func (r *batchRecorder) WriteBatchUDPAddrPort(bufs [][]byte, addrs []netip.AddrPort) (int, error) {
	var b []string
	for i, d := range bufs {
		b = append(b, string(d))
		r.to = append(r.to, addrs[i])
	}
	r.batches = append(r.batches, b)
	return len(bufs), nil
}

func TestSendQueueFlushesWhenIdleFullOrHeldTooLong(t *testing.T) {
	newTestLoop := func() *loop {
		return &loop{g: &Gateway{log: slog.New(slog.DiscardHandler)}, in: make(chan *datagram, 4), wake: make(chan struct{}, 1)}
	}
	a := netip.MustParseAddrPort("10.0.0.2:1000")
	t.Run("idle", func(t *testing.T) {
		l, r := newTestLoop(), &batchRecorder{}
		key := clientKey{r, a}
		l.write(key, []byte("one"))
		l.write(key, []byte("two"))
		if len(r.batches) != 0 {
			t.Fatalf("sent %v before the step ended; want nothing yet", r.batches)
		}
		l.stepDone()
		if len(r.batches) != 1 || len(r.batches[0]) != 2 || r.batches[0][0] != "one" || r.batches[0][1] != "two" {
			t.Fatalf("batches %q; want one batch [one two], in order", r.batches)
		}
	})
	t.Run("input at hand: held at most maxSendHold steps", func(t *testing.T) {
		l, r := newTestLoop(), &batchRecorder{}
		l.in <- &datagram{} // the loop has more to do
		l.write(clientKey{r, a}, []byte("puback"))
		for i := 1; i < maxSendHold; i++ {
			l.stepDone()
			if len(r.batches) != 0 {
				t.Fatalf("flushed after %d steps with input at hand; want after %d", i, maxSendHold)
			}
		}
		l.stepDone()
		if len(r.batches) != 1 {
			t.Fatalf("after %d steps with input at hand: batches %q; want the PUBACK sent", maxSendHold, r.batches)
		}
	})
	t.Run("full", func(t *testing.T) {
		l, r := newTestLoop(), &batchRecorder{}
		for i := range maxSendBatch + 1 {
			l.write(clientKey{r, a}, []byte{byte(i)})
		}
		if len(r.batches) != 1 || len(r.batches[0]) != maxSendBatch {
			t.Fatalf("after %d writes: %d batches; want one of %d", maxSendBatch+1, len(r.batches), maxSendBatch)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		l, r := newTestLoop(), &batchRecorder{}
		l.timer = time.NewTimer(time.Hour)
		l.in <- &datagram{} // the loop had more to do when the gateway closed
		l.write(clientKey{r, a}, []byte("puback"))
		l.stepDone()
		l.shutdown()
		if len(r.batches) != 1 || r.batches[0][0] != "puback" {
			t.Fatalf("batches at shutdown %q; want the held PUBACK sent", r.batches)
		}
	})
	t.Run("another link", func(t *testing.T) {
		l, r1, r2 := newTestLoop(), &batchRecorder{}, &batchRecorder{}
		l.write(clientKey{r1, a}, []byte("first"))
		l.write(clientKey{r2, a}, []byte("second"))
		if len(r1.batches) != 1 || len(r2.batches) != 0 {
			t.Fatalf("a datagram for another link: link 1 batches %q, link 2 %q; want link 1's sent first", r1.batches, r2.batches)
		}
		l.stepDone()
		if len(r2.batches) != 1 || r2.batches[0][0] != "second" {
			t.Fatalf("link 2 batches %q; want [second]", r2.batches)
		}
	})
}

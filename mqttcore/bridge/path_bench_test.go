package bridge

import (
	"errors"
	"io"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"

	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// Benchmarks of the bridged path without a remote broker: the queue in
// the core's store (bridge.Options.Backend, as gannet serve runs it), a
// message's append, hand-over and removal, with the log's checkpoints.
// SyncNever keeps fsync time out of the CPU and allocation figures.

// cpuNow returns the CPU time (user and system) the process has used: on
// a shared machine a steadier measure of a message's cost than wall time,
// and it counts the garbage collector's work.
func cpuNow(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time since cpu0 per op.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(cpuNow(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// openBenchPath opens a core store and a bridge queue in it.
func openBenchPath(b *testing.B) (*Store, *boltstore.Store) {
	b.Helper()
	core, err := boltstore.Open(filepath.Join(b.TempDir(), "core.db"), boltstore.Options{Sync: boltstore.SyncNever, CheckpointBytes: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	st, err := OpenSharedStore(core, "bridge/bench", StoreOptions{MaxBytes: 1 << 40})
	if err != nil {
		core.Close()
		b.Fatal(err)
	}
	b.Cleanup(func() {
		st.Close()
		core.Close()
	})
	return st, core
}

// benchAppends hands out appendAsync's data buffers (8 bytes of room,
// then a QoS 1 PUBLISH) for one batch at a time, reusing them once the
// batch's commits are done, and counts those commits: a publisher's
// buffers and PUBACK wait, without the benchmark's own allocations.
type benchAppends struct {
	data [][]byte
	left atomic.Int64
	ch   chan struct{}
	done func(error)
	err  atomic.Pointer[error]
}

func newBenchAppends(b *testing.B, n int) *benchAppends {
	a := &benchAppends{data: make([][]byte, n), ch: make(chan struct{}, 1)}
	pkt, err := encodeQueued("edge/sensors/t", 1, false, make([]byte, 64), nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range a.data {
		a.data[i] = append([]byte(nil), pkt...)
	}
	a.done = func(err error) {
		if err != nil {
			e := err // only a failure's error escapes
			a.err.CompareAndSwap(nil, &e)
		}
		if a.left.Add(-1) == 0 {
			a.ch <- struct{}{}
		}
	}
	return a
}

// append queues k messages (k up to len(data)) and waits for their commit.
func (a *benchAppends) append(b *testing.B, st *Store, k int) {
	a.left.Store(int64(k))
	for i := range k {
		if err := st.appendAsync(a.data[i], true, a.done); err != nil {
			b.Fatal(err)
		}
	}
	<-a.ch
	if p := a.err.Load(); p != nil {
		b.Fatal(*p)
	}
}

// BenchmarkStoreCycle runs one message per op through the queue's Store
// as the bridge does, 64 at a time: appendAsync (durable, waited for),
// take, moveAsync (the hand-over into the client bucket) and
// deleteFlightsAsync (the removal once acknowledged), on a LogBackend.
func BenchmarkStoreCycle(b *testing.B) {
	st, _ := openBenchPath(b)
	const batch = 64
	a := newBenchAppends(b, batch)
	var ts []taken
	recs := make([]flightRec, 0, batch)
	ids := make([]uint16, 0, batch)
	moved := make(chan error, 1)
	moveDone := func(err error) { moved <- err }
	deleted := make(chan error, 1)
	deleteDone := func(err error) { deleted <- err }
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuNow(b)
	for n := 0; n < b.N; n += batch {
		k := min(batch, b.N-n)
		a.append(b, st, k)
		var err error
		if ts, err = st.take(k, ts[:0]); err != nil || len(ts) != k {
			b.Fatalf("take(%d) = %d messages, %v", k, len(ts), err)
		}
		recs, ids = recs[:0], ids[:0]
		for i := range ts {
			id := uint16(i + 1)
			recs = append(recs, flightRec{id: id, rec: ts[i].rec})
			ids = append(ids, id)
		}
		if err := st.moveAsync(ts, recs, moveDone); err != nil {
			b.Fatal(err)
		}
		if err := st.deleteFlightsAsync(ids, deleteDone); err != nil {
			b.Fatal(err)
		}
		if err := errors.Join(<-moved, <-deleted); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportCPU(b, cpu0)
	if s := st.Stats(); s.Depth != 0 || s.Inflight != 0 {
		b.Fatalf("after the run: depth %d, in flight %d; want 0 and 0", s.Depth, s.Inflight)
	}
}

// ackConn is the outbox's connection in BenchmarkOutboxCycle: it reads
// the PUBLISH packets of each write and acknowledges each at once, as a
// remote broker's PUBACKs taken by the bridge's reader would, counting
// them.
type ackConn struct {
	o        *outbox
	got      atomic.Int64
	want     int64
	all      chan struct{}
	progress chan struct{} // capacity 1: a write was read
}

func (c *ackConn) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		l, vbi := 0, 1
		for shift := 0; ; shift += 7 {
			if vbi >= len(p) {
				return n, io.ErrShortWrite
			}
			l |= int(p[vbi]&0x7f) << shift
			vbi++
			if p[vbi-1]&0x80 == 0 {
				break
			}
		}
		pkt := p[:vbi+l]
		p = p[vbi+l:]
		if pkt[0]>>4 != packets.PUBLISH {
			continue
		}
		tl := int(pkt[vbi])<<8 | int(pkt[vbi+1])
		at := vbi + 2 + tl
		c.o.end(uint16(pkt[at])<<8|uint16(pkt[at+1]), 0)
		if c.got.Add(1) == c.want {
			close(c.all)
		}
	}
	select {
	case c.progress <- struct{}{}:
	default:
	}
	return n, nil
}

// BenchmarkOutboxCycle runs one message per op through the whole sending
// side of a bridge with its queue in the core's store: appendAsync
// (durable, 256 at a time, waited for), the sender (sendBatch: take,
// moveAsync, the write), the remote's PUBACK (outbox.end, at once, from
// the write) and the removal (settle, deleteFlightsAsync), with a window
// of 1,000 and a Receive Maximum of 1,000. The appends stay at most 2,048
// messages ahead of the sender, as in a bridge that keeps up (the queue
// does not grow, and the sender mostly reads what the log holds in
// memory).
func BenchmarkOutboxCycle(b *testing.B) {
	st, _ := openBenchPath(b)
	o, err := newOutbox(st, 1000)
	if err != nil {
		b.Fatal(err)
	}
	o.start()
	defer o.close()
	conn := &ackConn{o: o, want: int64(b.N), all: make(chan struct{}), progress: make(chan struct{}, 1)}
	ca := receiveMax(1000)
	ca.SessionPresent = true
	if err := o.ConAckReceived(conn, &packets.Connect{}, ca); err != nil {
		b.Fatal(err)
	}
	const batch = 256
	a := newBenchAppends(b, batch)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuNow(b)
	for n := 0; n < b.N; n += batch {
		for int64(n)-conn.got.Load() > 2048 {
			<-conn.progress // the sender is writing: it has more than 2,048 to send
		}
		a.append(b, st, min(batch, b.N-n))
	}
	<-conn.all
	b.StopTimer()
	reportCPU(b, cpu0)
}

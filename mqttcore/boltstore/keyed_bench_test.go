package boltstore_test

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// keyedCycle is the log traffic of one bridged message, as the bridge's
// queue writes it into the core's store: the append (a put of the message
// under its sequence number), the hand-over to the sender (the queue key
// deleted, the in-flight record put under a packet id) and the removal
// once the remote acknowledged it (the in-flight record deleted).
type keyedCycle struct {
	qkey, ckey [8]byte
	put        [1]boltstore.KeyedOp
	move       [2]boltstore.KeyedOp
	del        [1]boltstore.KeyedOp
}

var (
	benchQueuePath  = [][]byte{[]byte("bridge/bench"), []byte("queue")}
	benchClientPath = [][]byte{[]byte("bridge/bench"), []byte("client")}
)

// makeBenchBuckets creates the buckets of keyedCycle, as the bridge does
// when it opens its queue.
func makeBenchBuckets(b *testing.B, s *boltstore.Store) {
	done := make(chan error, 1)
	s.Update(func(tx *bbolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(benchQueuePath[0])
		if err != nil {
			return err
		}
		if _, err := root.CreateBucketIfNotExists(benchQueuePath[1]); err != nil {
			return err
		}
		_, err = root.CreateBucketIfNotExists(benchClientPath[1])
		return err
	}, func(err error) { done <- err })
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// set fills c for message seq with packet id id and value val (kept).
func (c *keyedCycle) set(seq uint64, id uint16, val []byte) {
	binary.BigEndian.PutUint64(c.qkey[:], seq)
	binary.BigEndian.PutUint16(c.ckey[:], id)
	q, k := c.qkey[:], c.ckey[:2]
	c.put[0] = boltstore.KeyedOp{Bucket: benchQueuePath, Key: q, Value: val}
	c.move[0] = boltstore.KeyedOp{Bucket: benchQueuePath, Key: q, Delete: true}
	c.move[1] = boltstore.KeyedOp{Bucket: benchClientPath, Key: k, Value: val}
	c.del[0] = boltstore.KeyedOp{Bucket: benchClientPath, Key: k, Delete: true}
}

// keyedBatch logs the cycles of cs (three Log calls each, in the order
// the bridge makes them) without waiting, and returns a channel that is
// sent to once every call's done has run. done is made once per batch
// size, so that the benchmark's own allocations stay out of the count.
type keyedBatch struct {
	cs      []keyedCycle
	left    int
	ch      chan error
	done    func(error)
	firstEr error
}

func newKeyedBatch(n int) *keyedBatch {
	kb := &keyedBatch{cs: make([]keyedCycle, n), ch: make(chan error, 1)}
	kb.done = func(err error) { // runs on the committer, in call order
		if err != nil && kb.firstEr == nil {
			kb.firstEr = err
		}
		if kb.left--; kb.left == 0 {
			kb.ch <- kb.firstEr
		}
	}
	return kb
}

// log logs the batch's messages, numbered from seq, and waits for them.
func (kb *keyedBatch) log(s *boltstore.Store, seq uint64, val []byte) error {
	kb.left, kb.firstEr = 3*len(kb.cs), nil
	for i := range kb.cs {
		kb.cs[i].set(seq+uint64(i), uint16(i+1), val)
	}
	// Appends run ahead of the sender, as they do when a publisher
	// burst is queued: all puts, then the hand-overs, then the removals.
	for i := range kb.cs {
		s.Log(kb.cs[i].put[:], kb.done)
	}
	for i := range kb.cs {
		s.Log(kb.cs[i].move[:], kb.done)
	}
	for i := range kb.cs {
		s.Log(kb.cs[i].del[:], kb.done)
	}
	return <-kb.ch
}

// BenchmarkKeyedBridgeCycle logs the keyed ops of one bridged message per
// op (keyedCycle: append, hand-over, removal), 64 messages at a time, and
// includes the checkpoints that apply them to the file (every 1 MiB of
// log, and one at the end): the boltstore share of a message on the
// bridge's path with the queue in the core's store. SyncNever keeps the
// disk's fsync time out of the CPU and allocation figures.
func BenchmarkKeyedBridgeCycle(b *testing.B) {
	s, _ := tempStore(b, boltstore.Options{Sync: boltstore.SyncNever, CheckpointBytes: 1 << 20})
	makeBenchBuckets(b, s)
	val := make([]byte, 8+2+len("edge/sensors/t")+2+1+64)
	const batch = 64
	kb := newKeyedBatch(batch)
	st0 := s.Stats()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	seq := uint64(1 << 40)
	for n := 0; n < b.N; n += batch {
		kb.cs = kb.cs[:min(batch, b.N-n)]
		if err := kb.log(s, seq, val); err != nil {
			b.Fatal(err)
		}
		seq += uint64(len(kb.cs))
	}
	if err := s.Checkpoint(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
	st := s.Stats()
	b.ReportMetric(float64(st.Calls-st0.Calls)/float64(max(st.Batches-st0.Batches, 1)), "calls/record")
	b.ReportMetric(float64(st.Checkpoints-st0.Checkpoints), "checkpoints")
}

// BenchmarkKeyedCheckpoint measures one checkpoint of the keyed ops of
// 10,000 bridged messages (keyedCycle), logged before the timer runs:
// the decoding, coalescing and bbolt transaction of the bridge's share of
// a checkpoint. allocs/msg and B/msg divide its allocations by the
// messages.
func BenchmarkKeyedCheckpoint(b *testing.B) {
	const msgs = 10_000
	for _, settled := range []bool{true, false} {
		// settled: every message acknowledged before the checkpoint
		// (its ops cancel out but for the deletes); not: every message
		// still queued (its put reaches the file).
		b.Run(fmt.Sprintf("settled=%v", settled), func(b *testing.B) {
			s, _ := tempStore(b, boltstore.Options{Sync: boltstore.SyncNever, CheckpointBytes: 1 << 30, CheckpointInterval: 1 << 40})
			makeBenchBuckets(b, s)
			val := make([]byte, 8+2+len("edge/sensors/t")+2+1+64)
			kb := newKeyedBatch(256)
			seq := uint64(1 << 40)
			b.ReportAllocs()
			var mallocs, bytes uint64
			var cpu time.Duration
			var m0, m1 runtime.MemStats
			for range b.N {
				b.StopTimer()
				for n := 0; n < msgs; n += len(kb.cs) {
					kb.left, kb.firstEr = len(kb.cs), nil
					if !settled {
						for i := range kb.cs {
							kb.cs[i].set(seq+uint64(i), uint16(i+1), val)
							s.Log(kb.cs[i].put[:], kb.done)
						}
						if err := <-kb.ch; err != nil {
							b.Fatal(err)
						}
					} else if err := kb.log(s, seq, val); err != nil {
						b.Fatal(err)
					}
					seq += uint64(len(kb.cs))
				}
				runtime.ReadMemStats(&m0)
				c0 := cpuTime(b)
				b.StartTimer()
				if err := s.Checkpoint(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				cpu += cpuTime(b) - c0
				runtime.ReadMemStats(&m1)
				mallocs += m1.Mallocs - m0.Mallocs
				bytes += m1.TotalAlloc - m0.TotalAlloc
				if !settled { // empty the queue again, so every pass starts alike
					for n := 0; n < msgs; n += len(kb.cs) {
						kb.left, kb.firstEr = len(kb.cs), nil
						for i := range kb.cs {
							kb.cs[i].set(seq-msgs+uint64(n+i), uint16(i+1), val)
							s.Log(kb.cs[i].move[:1], kb.done)
						}
						if err := <-kb.ch; err != nil {
							b.Fatal(err)
						}
					}
					if err := s.Checkpoint(); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
			}
			n := float64(b.N * msgs)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/msg")
			b.ReportMetric(float64(mallocs)/n, "allocs/msg")
			b.ReportMetric(float64(bytes)/n, "B/msg")
			b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/msg")
		})
	}
}

package bridge

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// write is one change for the commit pipeline. apply runs inside a bbolt
// write transaction and must be idempotent: when another write in the same
// batch fails, the transaction is rolled back and apply runs again in the
// next one. done, if set, runs once, after the transaction that holds the
// write committed (nil) or failed (the error), on the committer's
// goroutine: it must not block or take a lock held across a submit.
type write struct {
	apply func(tx *bolt.Tx) error
	done  func(err error)
}

// Backend is the bbolt file a Store lives in and the commit pipeline that
// writes it: the seam between the bridge and whoever commits its writes.
// OpenStore gives a Store its own (one file, one group-commit goroutine);
// OpenSharedStore puts it in a file shared with others, such as the broker
// core's durable store (mqttcore/boltstore's Store has this method set), so
// that a bridged message and the core's own changes share one fsync.
//
// Update queues apply to run in a write transaction, in call order with
// the other calls, and calls done once that transaction is
// durable (nil) or failed (the error); apply may run more than once (when
// another write in its batch fails) and must be idempotent; done runs on
// the committer's goroutine and must not block. Update may block while
// the pipeline is full. View runs fn in a read transaction of what is
// committed.
type Backend interface {
	Update(apply func(*bolt.Tx) error, done func(error))
	View(fn func(*bolt.Tx) error) error
}

// LogBackend is a Backend with a write-ahead log: mqttcore/boltstore's
// Store. A Store on one writes its queue's appends, hand-overs and
// removals and its session records as keyed ops (Log): one log record and
// one fdatasync shared with the core's own changes, applied to the bbolt
// file later, at a checkpoint. Reads of those records go through Get,
// which sees what is logged and not yet checkpointed. Update and View
// remain for what is rare (opening, the in-flight records at a
// reconnection, requeue): an Update applies the log to the file first,
// so a View after it sees everything logged before it.
//
// Log queues ops in call order with Update calls and calls done once they
// are durable (nil) or failed; done runs on the committer's goroutine and
// must not block; ops must not change until then. Get calls fn with each
// key's value (nil when absent), valid only during the call.
type LogBackend interface {
	Backend
	Log(ops []boltstore.KeyedOp, done func(error))
	Get(bucket [][]byte, keys [][]byte, fn func(i int, val []byte)) error
}

// txLog is the LogBackend of a plain Backend (a Store's own file, or a
// Backend without a log): each Log call is an Update applying its ops in
// the group's bbolt transaction, and Get a View.
type txLog struct{ Backend }

func (l txLog) Log(ops []boltstore.KeyedOp, done func(error)) {
	l.Update(func(tx *bolt.Tx) error { return applyKeyed(tx, ops) }, done)
}

func (l txLog) Get(path [][]byte, keys [][]byte, fn func(i int, val []byte)) error {
	return l.View(func(tx *bolt.Tx) error {
		var b *bolt.Bucket
		if len(path) > 0 {
			b = tx.Bucket(path[0])
			for _, name := range path[1:] {
				if b == nil {
					break
				}
				b = b.Bucket(name)
			}
		}
		for i, k := range keys {
			var v []byte
			if b != nil {
				v = b.Get(k)
			}
			fn(i, v)
		}
		return nil
	})
}

// applyKeyed applies keyed ops in tx, creating the buckets a put needs.
// It is idempotent: each op puts or deletes one key.
func applyKeyed(tx *bolt.Tx, ops []boltstore.KeyedOp) error {
	var b *bolt.Bucket
	var last [][]byte
	for i := range ops {
		op := &ops[i]
		if b == nil || !samePath(last, op.Bucket) {
			var err error
			b, err = tx.CreateBucketIfNotExists(op.Bucket[0])
			for _, name := range op.Bucket[1:] {
				if err != nil {
					break
				}
				b, err = b.CreateBucketIfNotExists(name)
			}
			if err != nil {
				return fmt.Errorf("bucket %q: %w", op.Bucket, err)
			}
			if string(op.Bucket[len(op.Bucket)-1]) == string(bucketQueue) {
				b.FillPercent = queueFill
			}
			last = op.Bucket
		}
		var err error
		if op.Delete {
			err = b.Delete(op.Key)
		} else {
			err = b.Put(op.Key, op.Value)
		}
		if err != nil {
			return fmt.Errorf("key %x of %q: %w", op.Key, op.Bucket, err)
		}
	}
	return nil
}

func samePath(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if string(a[i]) != string(b[i]) {
			return false
		}
	}
	return true
}

// commitStats are the commit pipeline's counters, shared by the Store's
// Stats.
type commitStats struct {
	commits, writes, failed, waits atomic.Uint64
	nanos, maxNanos, pending       atomic.Int64
}

// boltCommitter is the Backend of a Store's own file: group commit on one
// bbolt file. One goroutine takes
// the first queued write and everything queued behind it (up to maxBatch,
// without waiting for more), applies them in one transaction and runs
// their done callbacks after the commit. A write whose apply fails is taken
// out and failed alone, as bbolt's DB.Batch isolates a failing function;
// the others are applied again in a new transaction and commit together.
type boltCommitter struct {
	db       *bolt.DB
	maxBatch int
	ops      chan *write
	done     chan struct{} // closed when run has exited
	stats    *commitStats
}

func newBoltCommitter(db *bolt.DB, maxBatch, maxPending int, stats *commitStats) *boltCommitter {
	c := &boltCommitter{db: db, maxBatch: maxBatch, ops: make(chan *write, maxPending), done: make(chan struct{}), stats: stats}
	go c.run() // exits when close closes ops; close waits on done
	return c
}

// Update queues a write. It is safe for concurrent callers (each Store
// serialises its own writes under its sendMu, so they stay in order);
// nobody calls it after close.
func (c *boltCommitter) Update(apply func(*bolt.Tx) error, done func(error)) {
	c.submit(&write{apply: apply, done: done})
}

// View runs fn in a read transaction.
func (c *boltCommitter) View(fn func(*bolt.Tx) error) error { return c.db.View(fn) }

func (c *boltCommitter) submit(w *write) {
	c.stats.pending.Add(1)
	select {
	case c.ops <- w:
	default: // max_pending writes are ahead of the disk: wait for it
		c.stats.waits.Add(1)
		c.ops <- w
	}
}

func (c *boltCommitter) close() {
	close(c.ops)
	<-c.done
}

func (c *boltCommitter) run() {
	defer close(c.done)
	batch := make([]*write, 0, c.maxBatch)
	for w := range c.ops {
		batch = append(batch[:0], w)
	collect:
		for len(batch) < c.maxBatch {
			select {
			case w, ok := <-c.ops:
				if !ok {
					break collect
				}
				batch = append(batch, w)
			default:
				break collect
			}
		}
		c.commit(batch)
	}
}

// errApply marks a failure of one write's apply, as opposed to a failure
// of the commit itself.
var errApply = errors.New("apply failed")

// commit applies batch in one transaction; a failing write is isolated.
func (c *boltCommitter) commit(batch []*write) {
	for len(batch) > 0 {
		bad := -1
		var applyErr error
		start := time.Now()
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i, w := range batch {
				if w.apply == nil {
					continue
				}
				if err := w.apply(tx); err != nil {
					bad, applyErr = i, err
					return errApply
				}
			}
			return nil
		})
		if bad < 0 {
			c.record(start, len(batch))
			if err != nil {
				err = fmt.Errorf("bridge: queue commit: %w", err)
				c.stats.failed.Add(uint64(len(batch)))
			}
			for _, w := range batch {
				if w.done != nil {
					w.done(err)
				}
			}
			c.stats.pending.Add(-int64(len(batch)))
			return
		}
		// Fail the bad write alone, then retry the rest without it.
		c.stats.failed.Add(1)
		if w := batch[bad]; w.done != nil {
			w.done(fmt.Errorf("bridge: queue write: %w", applyErr))
		}
		c.stats.pending.Add(-1)
		batch = append(batch[:bad], batch[bad+1:]...)
	}
}

func (c *boltCommitter) record(start time.Time, n int) {
	d := int64(time.Since(start))
	c.stats.commits.Add(1)
	c.stats.writes.Add(uint64(n))
	c.stats.nanos.Add(d)
	for {
		m := c.stats.maxNanos.Load()
		if d <= m || c.stats.maxNanos.CompareAndSwap(m, d) {
			return
		}
	}
}

// The core's store is the shared Backend `gannet serve` gives bridges.
var _ LogBackend = (*boltstore.Store)(nil)

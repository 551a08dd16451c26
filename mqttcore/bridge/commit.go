package bridge

import (
	"fmt"

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
// Both of gannet's are a mqttcore/boltstore Store (a LogBackend):
// OpenStore gives a Store a private one on a file of its own;
// OpenSharedStore puts it in a file shared with others, such as the broker
// core's durable store, so that a bridged message and the core's own
// changes share one fsync. A Backend without a log (Log and Get) also
// works, each write then a transaction of its own (txLog).
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

// txLog is the LogBackend of a Backend without a log (a test's, or an
// embedder's; gannet's own are boltstore Stores, which have one): each Log
// call is an Update applying its ops in the group's bbolt transaction,
// and Get a View.
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

// The core's store is the shared Backend `gannet serve` gives bridges.
var _ LogBackend = (*boltstore.Store)(nil)

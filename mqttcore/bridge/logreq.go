package bridge

import (
	"encoding/binary"
	"slices"
	"sync"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// logReq is one Log call of a Store: its keyed ops, the bytes of their
// keys, and what to run once the commit is done. The ops and their keys
// must not change until then, so a logReq goes back to logReqPool only
// from finish: every message's append, hand-over and removal reuses one
// instead of allocating its ops, keys and callback.
type logReq struct {
	st   *Store
	ops  []boltstore.KeyedOp
	keys []byte // the ops' keys, back to back

	// An append's: the queue key to mark committed, and whom to tell.
	append  bool
	seq     uint64
	durable bool
	hold    mqttcore.Hold // appendHeld's publisher
	held    bool
	data    []byte // appendHeld's queue buffer, recycled after the commit

	done func(error) // the caller's
	fn   func(error) // r.finish, bound once per logReq
}

// logReqPools recycle logReqs by size: [0] those with room for at most
// smallOps ops (an append's), [1] larger ones (hand-overs and removals of
// batches), so that an append never holds a batch's large slices.
var logReqPools = [2]sync.Pool{
	{New: func() any { return new(logReq) }},
	{New: func() any { return new(logReq) }},
}

// Sizes of logReqs: those with room for at most smallOps ops go to the
// small pool, and those with room for more than maxPooledOps (a burst's
// large hand-over) are not kept.
const (
	smallOps     = 8
	maxPooledOps = 4096
)

// newLogReq returns a logReq of s with room for n ops and as many keys.
func (s *Store) newLogReq(n int) *logReq {
	pool := &logReqPools[0]
	if n > smallOps {
		pool = &logReqPools[1]
	}
	r := pool.Get().(*logReq)
	if r.fn == nil {
		r.fn = r.finish
	}
	r.st = s
	r.ops = slices.Grow(r.ops[:0], n)
	r.keys = slices.Grow(r.keys[:0], 8*n)
	return r
}

// key appends an 8-byte sequence key, or (id2) a 2-byte packet id key, to
// r.keys and returns its bytes.
func (r *logReq) key(v uint64, id2 bool) []byte {
	n := len(r.keys)
	if id2 {
		r.keys = binary.BigEndian.AppendUint16(r.keys, uint16(v))
	} else {
		r.keys = binary.BigEndian.AppendUint64(r.keys, v)
	}
	return r.keys[n:len(r.keys):len(r.keys)]
}

// del adds the deletion of key in the bucket at path.
func (r *logReq) del(path [][]byte, key []byte) {
	r.ops = append(r.ops, boltstore.KeyedOp{Bucket: path, Key: key, Delete: true})
}

// put adds a put of val under key in the bucket at path.
func (r *logReq) put(path [][]byte, key, val []byte) {
	r.ops = append(r.ops, boltstore.KeyedOp{Bucket: path, Key: key, Value: val})
}

// finish runs once the commit is done (on the committer's goroutine), or
// at once when r was never submitted: an append's entry is marked, its
// caller told, and r goes back to the pool.
func (r *logReq) finish(err error) {
	st, done, hold, held, data := r.st, r.done, r.hold, r.held, r.data
	if r.append {
		st.committed(r.seq, err)
		if !r.durable {
			done, held = nil, false // told before the commit
		}
	}
	r.release()
	if data != nil {
		st.bufs.put(data)
	}
	if held {
		hold.Done(err)
	}
	if done != nil {
		done(err)
	}
}

// release puts r back in the pool; nothing may use it afterwards.
func (r *logReq) release() {
	clear(r.ops) // the values (queued messages) are not kept alive
	ops, keys, fn := r.ops[:0], r.keys[:0], r.fn
	pool := &logReqPools[0]
	switch {
	case cap(ops) > maxPooledOps:
		ops, keys = nil, nil
	case cap(ops) > smallOps || cap(keys) > 8*smallOps:
		pool = &logReqPools[1]
	}
	*r = logReq{ops: ops, keys: keys, fn: fn}
	pool.Put(r)
}

// submitLogLocked hands r to the commit pipeline; the caller holds
// sendMu. After ErrClosed r is released and its done not called.
func (s *Store) submitLogLocked(r *logReq) error {
	if s.closed {
		r.release()
		return ErrClosed
	}
	s.lb.Log(r.ops, r.fn)
	return nil
}

// queueBufs recycles the buffers appendHeld takes (encodeQueued's): one
// per bridged message, free again once its commit is done (the store has
// copied it into its log, or bbolt into its pages, by then). Taken on the
// publishers' goroutines, given back on the committer's; mu is a leaf.
type queueBufs struct {
	mu   sync.Mutex
	free [][]byte
}

// Bounds of queueBufs: the buffers kept (about what the commit pipeline
// holds at a time) and the largest kept.
const (
	maxPooledBufs = 1024
	maxPooledBuf  = 4 << 10
)

// get returns an empty buffer with room for n bytes.
func (q *queueBufs) get(n int) []byte {
	if n <= maxPooledBuf {
		q.mu.Lock()
		if k := len(q.free); k > 0 {
			b := q.free[k-1]
			q.free[k-1] = nil
			q.free = q.free[:k-1]
			q.mu.Unlock()
			if cap(b) >= n {
				return b[:0]
			}
		} else {
			q.mu.Unlock()
		}
	}
	return make([]byte, 0, max(n, 128))
}

// put gives b back for reuse; nothing may use it afterwards.
func (q *queueBufs) put(b []byte) {
	if cap(b) == 0 || cap(b) > maxPooledBuf {
		return
	}
	q.mu.Lock()
	if len(q.free) < maxPooledBufs {
		q.free = append(q.free, b[:0])
	}
	q.mu.Unlock()
}

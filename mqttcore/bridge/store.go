package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// Errors returned by the Store.
var (
	// ErrClosed is returned after Store.Close.
	ErrClosed = errors.New("bridge: store closed")
	// ErrTooLarge is returned by Append for a message larger than the
	// queue's byte bound on its own.
	ErrTooLarge = errors.New("bridge: message larger than the queue bound")
	// ErrNotInStore is returned by the server session store's Get for an
	// id it does not hold.
	ErrNotInStore = errors.New("bridge: packet id not in the session store")
)

var (
	bucketQueue  = []byte("queue")
	bucketClient = []byte("client")
	bucketServer = []byte("server")
)

// firstSeq is the first queue key of a new file. Keys below it are used
// when in-flight messages are put back at the head of the queue.
const firstSeq = 1 << 40

// entryOverhead is what one queued message costs beyond its packet bytes
// (the 8-byte key and 8-byte timestamp), counted against MaxBytes.
const entryOverhead = 16

// StoreOptions configure OpenStore. The zero value of each field is its
// default (see QueueConfig).
type StoreOptions struct {
	// MaxBytes bounds the queued bytes.
	MaxBytes int64
	// MaxAge drops messages queued longer than this.
	MaxAge time.Duration
	// MaxBatch bounds the writes in one log record or transaction.
	MaxBatch int
	// MaxPending bounds the writes waiting for the committer.
	MaxPending int
	// CheckpointBytes and CheckpointInterval set when the log of a file of
	// its own is applied to the bbolt file (boltstore.Options).
	CheckpointBytes    int
	CheckpointInterval time.Duration
	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
}

// Store is the bridge's durable state in one bbolt file: the outbound
// queue (bucket "queue", keyed by big-endian sequence number, so read back
// in the order written), the QoS 1/2 messages sent and not yet
// acknowledged (bucket "client", keyed by packet id, each record led by
// its put order) and the PUBREC records of inbound QoS 2 messages (bucket
// "server", paho's session store interface).
//
// Every write goes through the file's commit pipeline, a
// mqttcore/boltstore Store with its write-ahead log: the core's (shared)
// or a private one (the queue's own file). Queue writes are keyed ops in
// the log: whatever arrives while the last group is written and synced
// goes into the next log record and its one fdatasync, and reaches the
// bbolt file at a checkpoint. Appends of QoS 1/2 messages are
// acknowledged after their commit; the sender's hand-over of a batch from
// the queue to the client bucket and the removal of acknowledged messages
// are committed with the next batch, without waiting (a crash in between
// can only cause a duplicate, and the sender bounds how many).
//
// A message taken by the sender leaves the queue in the same transaction
// that records it in flight, so on disk a message is always in exactly one
// of the two places.
type Store struct {
	path         string           // our own file's, "" in a shared one
	root         []byte           // parent bucket in a shared file; nil: the top level of our own
	be           Backend          // the file and its commit pipeline
	lb           LogBackend       // be, or be as a LogBackend of bbolt transactions (txLog)
	qPath, cPath [][]byte         // the queue and client buckets' paths for lb
	sPath        [][]byte         // the server bucket's
	own          *boltstore.Store // be when the file is our own, else nil
	adopted      bool             // own was a queue file without a log, converted by OpenStore
	closeBackend func() error     // nil when be is shared
	maxBytes     int64
	maxAge       time.Duration
	now          func() time.Time

	// sendMu orders submissions: an index decision and the submission of
	// its write happen under it, so writes reach the committer in the order
	// the decisions were made. Taken before mu, never by the committer.
	sendMu  sync.Mutex
	closed  bool     // under sendMu
	victims []uint64 // under sendMu: scratch for the keys an append or take drops

	takeMu sync.Mutex  // the sender's take; taken before sendMu
	tk     takeScratch // under takeMu

	bufs queueBufs // appendHeld's buffers

	// mu guards the in-memory index of the queue. It is a leaf: no I/O and
	// no channel operation happens under it.
	mu      sync.Mutex
	ents    []entry // ents[head:] in sequence order
	head    int
	count   int   // entries not dead
	bytes   int64 // bytes of entries not dead
	q0      int   // QoS 0 entries not dead
	q0cur   int   // no live QoS 0 entry before this index
	nextSeq uint64
	lowSeq  uint64        // lowest key ever used; requeued messages go below it
	notify  func()        // called (under mu) when the head becomes committed
	order   atomic.Uint64 // put order of client and server records
	flying  atomic.Int64  // records in the client bucket (committed or submitted)

	stats storeCounters
}

type storeCounters struct {
	enqueued, sent, droppedQoS0, droppedOldest, expired, tooLarge atomic.Uint64
	quarantined, requeued                                         atomic.Uint64
}

// entry is one queued message in the in-memory index.
type entry struct {
	seq   uint64
	at    int64 // enqueue time, unix nanoseconds
	size  int64
	qos   uint8
	state uint8
}

const (
	pending uint8 = iota // submitted, not committed yet
	live                 // committed
	dead                 // removed, taken by the sender, or dropped
)

// OpenStore opens (creating if needed) the queue's own file at path (its
// directory must exist) with a private mqttcore/boltstore Store, the same
// commit pipeline as the broker core's: a write-ahead log beside the file
// (path.wal.0 and path.wal.1), applied to it at checkpoints. It rebuilds
// the queue's index from what the file and its log hold. Close closes the
// file.
//
// A file written before the queue had a log (a plain bbolt file holding
// only the buckets queue, client and server) is converted in place when it
// is opened: its buckets stay as they are, the store's own are added
// (boltstore.Options.Adopt), and it opens as such a store from then on.
func OpenStore(path string, o StoreOptions) (*Store, error) {
	if dir := filepath.Dir(path); dir != "" {
		if fi, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("bridge: open queue %s: %w", path, err)
		} else if !fi.IsDir() {
			return nil, fmt.Errorf("bridge: open queue %s: %s is not a directory", path, dir)
		}
	}
	qc := QueueConfig{MaxBatch: o.MaxBatch, MaxPending: o.MaxPending}
	adopted := false
	st, err := boltstore.Open(path, boltstore.Options{
		MaxBatch:           qc.maxBatch(),
		MaxPending:         qc.maxPending(),
		CheckpointBytes:    o.CheckpointBytes,
		CheckpointInterval: o.CheckpointInterval,
		Adopt: func(tx *bolt.Tx) error {
			err := isPlainQueue(tx)
			adopted = err == nil
			return err
		},
	})
	if err != nil {
		return nil, fmt.Errorf("bridge: open queue: %w", err)
	}
	s := newStore(path, nil, o)
	s.own, s.adopted = st, adopted
	if err := s.open(st); err != nil {
		st.Close()
		return nil, fmt.Errorf("bridge: load queue %s: %w", path, err)
	}
	s.closeBackend = st.Close
	return s, nil
}

// isPlainQueue accepts a queue file written before the queue had a log: a
// bbolt file whose buckets are the queue's and nothing else.
func isPlainQueue(tx *bolt.Tx) error {
	return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		switch string(name) {
		case string(bucketQueue), string(bucketClient), string(bucketServer):
			return nil
		}
		return fmt.Errorf("bucket %q is not a bridge queue's", name)
	})
}

// OpenSharedStore opens a Store in a file shared with others: its buckets
// live under the bucket named root (created if needed), all its writes go
// through be's commit pipeline, and Close leaves be open. MaxBatch and
// MaxPending are be's business; the commit counters in Stats stay zero (be
// keeps its own).
func OpenSharedStore(be Backend, root string, o StoreOptions) (*Store, error) {
	if root == "" {
		return nil, errors.New("bridge: shared store needs a root bucket name")
	}
	s := newStore("", []byte(root), o)
	if err := s.open(be); err != nil {
		return nil, fmt.Errorf("bridge: load queue %s: %w", root, err)
	}
	return s, nil
}

// open makes be the Store's backend and rebuilds the index from it.
func (s *Store) open(be Backend) error {
	s.setBackend(be)
	ch := make(chan error, 1)
	be.Update(s.load, func(err error) { ch <- err })
	return <-ch
}

func newStore(path string, root []byte, o StoreOptions) *Store {
	qc := QueueConfig{MaxBytes: o.MaxBytes, MaxAge: o.MaxAge}
	s := &Store{
		path:     path,
		root:     root,
		maxBytes: qc.maxBytes(),
		maxAge:   qc.maxAge(),
		now:      o.Now,
		notify:   func() {},
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.tk.fn, s.tk.bufs = s.tk.got, &s.bufs
	return s
}

// setBackend makes be the Store's file and commit pipeline: its log when
// it has one (LogBackend), else its bbolt transactions.
func (s *Store) setBackend(be Backend) {
	s.be = be
	if lb, ok := be.(LogBackend); ok {
		s.lb = lb
	} else {
		s.lb = txLog{be}
	}
	path := func(name []byte) [][]byte {
		if s.root == nil {
			return [][]byte{name}
		}
		return [][]byte{s.root, name}
	}
	s.qPath, s.cPath, s.sPath = path(bucketQueue), path(bucketClient), path(bucketServer)
}

// logLocked hands keyed ops to the commit pipeline; the caller holds
// sendMu. done, if set, runs after the commit (committer goroutine).
func (s *Store) logLocked(ops []boltstore.KeyedOp, done func(error)) error {
	if s.closed {
		return ErrClosed
	}
	if done == nil {
		done = func(error) {}
	}
	s.lb.Log(ops, done)
	return nil
}

// bucketParent is where a Store's buckets live: a transaction (the top
// level of its own file) or a bucket (its root in a shared file).
type bucketParent interface {
	Bucket(name []byte) *bolt.Bucket
	CreateBucket(name []byte) (*bolt.Bucket, error)
	CreateBucketIfNotExists(name []byte) (*bolt.Bucket, error)
	DeleteBucket(name []byte) error
}

// parent returns the holder of the Store's buckets in tx.
func (s *Store) parent(tx *bolt.Tx) bucketParent {
	if s.root == nil {
		return tx
	}
	return tx.Bucket(s.root)
}

// bucket returns one of the Store's buckets in tx.
func (s *Store) bucket(tx *bolt.Tx, name []byte) *bolt.Bucket { return s.parent(tx).Bucket(name) }

// queueFill is the fill percent of the sequence-keyed queue bucket: keys
// only ever grow at the end, so pages can be split nearly full.
const queueFill = 0.9

// queueBucket returns the queue bucket in tx, set up for appends.
func (s *Store) queueBucket(tx *bolt.Tx) *bolt.Bucket {
	b := s.bucket(tx, bucketQueue)
	b.FillPercent = queueFill
	return b
}

// load creates the buckets and rebuilds the in-memory index (from
// scratch: it may run twice).
func (s *Store) load(tx *bolt.Tx) error {
	s.ents, s.head, s.count, s.bytes, s.q0, s.q0cur = nil, 0, 0, 0, 0, 0
	s.nextSeq, s.lowSeq = firstSeq, firstSeq
	s.flying.Store(0)
	if s.root != nil {
		if _, err := tx.CreateBucketIfNotExists(s.root); err != nil {
			return err
		}
	}
	for _, name := range [][]byte{bucketQueue, bucketClient, bucketServer} {
		if _, err := s.parent(tx).CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	c := s.bucket(tx, bucketQueue).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 8 || len(v) < 9 {
			return fmt.Errorf("corrupt queue record %x", k)
		}
		seq := binary.BigEndian.Uint64(k)
		e := entry{seq: seq, at: int64(binary.BigEndian.Uint64(v)), size: int64(len(v)) + 8, qos: pubQoS(v[8]), state: live}
		if len(s.ents) == 0 {
			s.lowSeq = min(s.lowSeq, seq)
		}
		s.pushLocked(e)
		s.nextSeq = seq + 1
	}
	var order uint64
	for i, name := range [][]byte{bucketClient, bucketServer} {
		err := s.bucket(tx, name).ForEach(func(k, v []byte) error {
			if len(k) != 2 || len(v) < 8 {
				return fmt.Errorf("corrupt %s record %x", name, k)
			}
			if i == 0 {
				s.flying.Add(1)
			}
			order = max(order, binary.BigEndian.Uint64(v))
			return nil
		})
		if err != nil {
			return err
		}
	}
	s.order.Store(order)
	return nil
}

// pubQoS is the QoS in a PUBLISH fixed header's first byte.
func pubQoS(b byte) uint8 { return (b >> 1) & 3 }

// submitLocked hands w to the committer; the caller holds sendMu.
func (s *Store) submitLocked(w *write) error {
	if s.closed {
		return ErrClosed
	}
	done := w.done
	if done == nil {
		done = func(error) {}
	}
	s.be.Update(w.apply, done)
	return nil
}

// flush waits until everything submitted so far is committed.
func (s *Store) flush() error {
	ch := make(chan error, 1)
	s.sendMu.Lock()
	err := s.submitLocked(&write{apply: func(*bolt.Tx) error { return nil }, done: func(err error) { ch <- err }})
	s.sendMu.Unlock()
	if err != nil {
		return err
	}
	return <-ch
}

// Close commits what is pending, then, if the file is the Store's own,
// applies its log to it (a last checkpoint) and closes it.
func (s *Store) Close() error {
	var err error
	if s.closeBackend == nil {
		err = s.flush()
	}
	s.sendMu.Lock()
	if s.closed {
		s.sendMu.Unlock()
		return nil
	}
	s.closed = true
	s.sendMu.Unlock()
	s.mu.Lock()
	s.notify() // wake the sender so it sees ErrClosed
	s.mu.Unlock()
	if s.closeBackend != nil {
		if cerr := s.closeBackend(); cerr != nil {
			err = fmt.Errorf("bridge: close queue: %w", cerr)
		}
	}
	return err
}

// Path returns the bbolt file's path ("" for a shared store).
func (s *Store) Path() string { return s.path }

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

func idKey(id uint16) []byte {
	var k [2]byte
	binary.BigEndian.PutUint16(k[:], id)
	return k[:]
}

// StoreStats are the queue's gauges and counters.
type StoreStats struct {
	// Depth is the number of queued messages, Bytes their size (as counted
	// against MaxBytes) and OldestAge the age of the oldest.
	Depth     int
	Bytes     int64
	OldestAge time.Duration
	// Inflight is the number of QoS 1/2 messages sent and not yet fully
	// acknowledged (held in the session store).
	Inflight int
	// Enqueued counts messages committed to the queue; Sent counts those
	// taken from it and written to the connection.
	Enqueued, Sent uint64
	// Dropped is the sum of the drop counters that follow.
	Dropped uint64
	// DroppedQoS0 and DroppedOldest count messages dropped to make room
	// (QoS 0 first, then the oldest); Expired those older than MaxAge;
	// TooLarge those refused because one alone exceeds MaxBytes.
	DroppedQoS0, DroppedOldest, Expired, TooLarge uint64
	// Quarantined counts unreadable records removed from the file.
	Quarantined uint64
	// Requeued counts in-flight messages put back at the head of the queue
	// because the remote broker did not keep the session.
	Requeued uint64
	// The commit counters of a file of the queue's own (zero in a shared
	// one, whose store counts its own): Commits and CommittedOps count
	// groups (log records, and bbolt transactions for the rare Update)
	// and the writes in them (their ratio is the group-commit batch
	// size); FailedWrites counts writes that did not commit (a failing
	// write is isolated, the others in its group commit).
	Commits, CommittedOps, FailedWrites uint64
	// CommitTime is the time spent in commits, from a group's write to
	// the end of the fdatasync that made it durable (CommitTime / Commits
	// is the mean), MaxCommitTime the longest one.
	CommitTime, MaxCommitTime time.Duration
	// WriteWaits counts writes that found MaxPending writes ahead of the
	// disk and waited; PendingWrites is the writes submitted and not yet
	// committed (or failed) now.
	WriteWaits    uint64
	PendingWrites int
}

// Stats returns the current gauges and counters.
func (s *Store) Stats() StoreStats {
	// In flight before the pending writes: a hand-over is counted in
	// flight after its write is submitted (moveAsync), so a write counted
	// here is pending or done.
	inflight := int(s.flying.Load())
	st := StoreStats{
		Enqueued:      s.stats.enqueued.Load(),
		Sent:          s.stats.sent.Load(),
		DroppedQoS0:   s.stats.droppedQoS0.Load(),
		DroppedOldest: s.stats.droppedOldest.Load(),
		Expired:       s.stats.expired.Load(),
		TooLarge:      s.stats.tooLarge.Load(),
		Quarantined:   s.stats.quarantined.Load(),
		Requeued:      s.stats.requeued.Load(),
		Inflight:      inflight,
	}
	if s.own != nil {
		c := s.own.Stats()
		st.Commits, st.CommittedOps, st.FailedWrites = c.Batches, c.Calls, c.Failed
		st.CommitTime, st.MaxCommitTime = c.BatchTime, c.MaxBatchTime
		st.WriteWaits, st.PendingWrites = c.QueueWaits, c.Pending
	}
	st.Dropped = st.DroppedQoS0 + st.DroppedOldest + st.Expired + st.TooLarge
	s.mu.Lock()
	st.Depth, st.Bytes = s.count, s.bytes
	for i := s.head; i < len(s.ents); i++ {
		if s.ents[i].state != dead {
			st.OldestAge = max(0, time.Duration(s.now().UnixNano()-s.ents[i].at))
			break
		}
	}
	s.mu.Unlock()
	return st
}

// sortedIDs returns a bucket's ids in put order.
func sortedIDs(b *bolt.Bucket) []uint16 {
	type rec struct {
		order uint64
		id    uint16
	}
	var recs []rec
	_ = b.ForEach(func(k, v []byte) error {
		if len(k) == 2 && len(v) >= 8 {
			recs = append(recs, rec{binary.BigEndian.Uint64(v), binary.BigEndian.Uint16(k)})
		}
		return nil
	})
	sort.Slice(recs, func(i, j int) bool { return recs[i].order < recs[j].order })
	ids := make([]uint16, len(recs))
	for i, r := range recs {
		ids[i] = r.id
	}
	return ids
}

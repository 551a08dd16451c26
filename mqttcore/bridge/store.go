package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Errors returned by the Store.
var (
	// ErrClosed is returned after Store.Close.
	ErrClosed = errors.New("bridge: store closed")
	// ErrTooLarge is returned by Enqueue for a message larger than the
	// queue's byte bound on its own.
	ErrTooLarge = errors.New("bridge: message larger than the queue bound")
	// ErrNotInStore is returned by the session store's Get for an id it
	// does not hold.
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
	// MaxBatch bounds the writes in one transaction.
	MaxBatch int
	// MaxPending bounds the writes waiting for the commit goroutine.
	MaxPending int
	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
}

// Store is the bridge's durable state in one bbolt file: the outbound
// queue (autopaho's queue.Queue, bucket "queue", keyed by big-endian
// sequence number) and the MQTT session state of in-flight QoS 1/2
// messages (paho's session stores, buckets "client" and "server").
//
// All writes go through one goroutine that commits whatever has arrived
// since its last commit in a single fsync'd transaction (group commit).
// Enqueue and the writes that must be durable before a packet is sent wait
// for their commit; removals of sent messages are committed with the next
// batch without waiting (a crash in between can only cause a duplicate).
//
// A message handed to the session store's Put (autopaho's queue loop puts
// the peeked head there before sending it) leaves the queue in the same
// transaction, so a message is always in exactly one of the two places.
type Store struct {
	db       *bolt.DB
	maxBytes int64
	maxAge   time.Duration
	maxBatch int
	now      func() time.Time

	// sendMu orders submissions: an index decision and the submission of
	// its write happen under it, so writes reach the batcher in the order
	// the decisions were made. Taken before mu, never by the batcher.
	sendMu sync.Mutex
	closed bool // under sendMu
	ops    chan *op
	done   chan struct{} // closed when the batcher has exited

	// mu guards the in-memory index of the queue and the session key sets.
	// It is a leaf: no I/O and no channel operation happens under it.
	mu       sync.Mutex
	ents     []entry // ents[head:] in sequence order
	head     int
	count    int   // entries not dead
	bytes    int64 // bytes of entries not dead
	q0       int   // QoS 0 entries not dead
	q0cur    int   // no live QoS 0 entry before this index
	nextSeq  uint64
	peeked   uint64 // the entry handed out by Peek, 0 if none
	consumed bool   // the peeked entry went into the session store
	waiting  []chan struct{}
	keys     [2]map[uint16]struct{} // ids held in the client and server buckets

	// Used only by the batcher goroutine (and OpenStore before it starts).
	lowSeq uint64
	order  uint64 // put order of session store entries

	stats storeCounters
}

type storeCounters struct {
	enqueued, sent, droppedQoS0, droppedOldest, expired, tooLarge atomic.Uint64
	quarantined, requeued, commits, committedOps, writeWaits      atomic.Uint64
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
	dead                 // removed or dropped
)

// op is one write for the batcher. apply runs inside the batch's
// transaction; after (if set) runs once the batch committed or failed;
// done (if set) receives the commit's result.
type op struct {
	apply func(tx *bolt.Tx) error
	after func(err error)
	done  chan error
}

// OpenStore opens (creating if needed) the bbolt file at path, rebuilds the
// queue's index from it and starts the commit goroutine. Close stops it.
func OpenStore(path string, o StoreOptions) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("bridge: open queue %s: %w", path, err)
	}
	qc := QueueConfig{MaxBytes: o.MaxBytes, MaxAge: o.MaxAge, MaxBatch: o.MaxBatch, MaxPending: o.MaxPending}
	s := &Store{
		db:       db,
		maxBytes: qc.maxBytes(),
		maxAge:   qc.maxAge(),
		maxBatch: qc.maxBatch(),
		now:      o.Now,
		ops:      make(chan *op, qc.maxPending()),
		done:     make(chan struct{}),
		nextSeq:  firstSeq,
		lowSeq:   firstSeq,
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.keys[0] = make(map[uint16]struct{})
	s.keys[1] = make(map[uint16]struct{})
	if err := db.Update(s.load); err != nil {
		db.Close()
		return nil, fmt.Errorf("bridge: load queue %s: %w", path, err)
	}
	go s.run() // exits when Close closes ops; Close waits on done
	return s, nil
}

// load creates the buckets and rebuilds the in-memory index.
func (s *Store) load(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketQueue, bucketClient, bucketServer} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	c := tx.Bucket(bucketQueue).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 8 || len(v) < 9 {
			return fmt.Errorf("corrupt queue record %x", k)
		}
		seq := binary.BigEndian.Uint64(k)
		e := entry{seq: seq, at: int64(binary.BigEndian.Uint64(v)), size: int64(len(v)) + 8, qos: pubQoS(v[8]), state: live}
		if len(s.ents) == 0 {
			s.lowSeq = seq
		}
		s.ents = append(s.ents, e)
		s.count++
		s.bytes += e.size
		if e.qos == 0 {
			s.q0++
		}
		s.nextSeq = seq + 1
	}
	for i, name := range [][]byte{bucketClient, bucketServer} {
		err := tx.Bucket(name).ForEach(func(k, v []byte) error {
			if len(k) != 2 || len(v) < 8 {
				return fmt.Errorf("corrupt %s record %x", name, k)
			}
			s.keys[i][binary.BigEndian.Uint16(k)] = struct{}{}
			s.order = max(s.order, binary.BigEndian.Uint64(v))
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// pubQoS is the QoS in a PUBLISH fixed header's first byte.
func pubQoS(b byte) uint8 { return (b >> 1) & 3 }

// run is the batcher: it commits everything queued since the last commit
// in one transaction. It exits when Close closes ops.
func (s *Store) run() {
	defer close(s.done)
	batch := make([]*op, 0, s.maxBatch)
	for o := range s.ops {
		batch = append(batch[:0], o)
	collect:
		for len(batch) < s.maxBatch {
			select {
			case o, ok := <-s.ops:
				if !ok {
					break collect
				}
				batch = append(batch, o)
			default:
				break collect
			}
		}
		err := s.db.Update(func(tx *bolt.Tx) error {
			for _, o := range batch {
				if o.apply == nil {
					continue
				}
				if err := o.apply(tx); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			err = fmt.Errorf("bridge: queue commit: %w", err)
		}
		s.stats.commits.Add(1)
		s.stats.committedOps.Add(uint64(len(batch)))
		for _, o := range batch {
			if o.after != nil {
				o.after(err)
			}
			if o.done != nil {
				o.done <- err
			}
		}
	}
}

// submit hands o to the batcher; the caller holds sendMu.
func (s *Store) submitLocked(o *op) error {
	if s.closed {
		return ErrClosed
	}
	select {
	case s.ops <- o:
	default: // max_pending writes are ahead of the disk: wait for it
		s.stats.writeWaits.Add(1)
		s.ops <- o
	}
	return nil
}

// wait waits for a submitted op's commit.
func wait(o *op) error { return <-o.done }

// flush waits until everything submitted so far is committed.
func (s *Store) flush() error {
	o := &op{done: make(chan error, 1)}
	s.sendMu.Lock()
	err := s.submitLocked(o)
	s.sendMu.Unlock()
	if err != nil {
		return err
	}
	return wait(o)
}

// Close commits what is pending, stops the batcher and closes the file.
func (s *Store) Close() error {
	s.sendMu.Lock()
	if s.closed {
		s.sendMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.ops)
	s.sendMu.Unlock()
	<-s.done
	s.mu.Lock()
	for _, c := range s.waiting {
		close(c) // wake the queue reader so it sees ErrClosed
	}
	s.waiting = nil
	s.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bridge: close queue: %w", err)
	}
	return nil
}

// Path returns the bbolt file's path.
func (s *Store) Path() string { return s.db.Path() }

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

// readAll reads r into a new slice with room for an 8-byte prefix.
func readAll(r io.Reader) ([]byte, error) {
	buf := make([]byte, 8, 8+256)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
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
	// Enqueued counts messages accepted into the queue; Sent counts those
	// taken from it and handed to the connection.
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
	// Commits and CommittedOps count transactions and the writes in them
	// (their ratio is the group-commit batch size).
	Commits, CommittedOps uint64
	// WriteWaits counts writes that found MaxPending writes ahead of the
	// disk and waited.
	WriteWaits uint64
}

// Stats returns the current gauges and counters.
func (s *Store) Stats() StoreStats {
	st := StoreStats{
		Enqueued:      s.stats.enqueued.Load(),
		Sent:          s.stats.sent.Load(),
		DroppedQoS0:   s.stats.droppedQoS0.Load(),
		DroppedOldest: s.stats.droppedOldest.Load(),
		Expired:       s.stats.expired.Load(),
		TooLarge:      s.stats.tooLarge.Load(),
		Quarantined:   s.stats.quarantined.Load(),
		Requeued:      s.stats.requeued.Load(),
		Commits:       s.stats.commits.Load(),
		CommittedOps:  s.stats.committedOps.Load(),
		WriteWaits:    s.stats.writeWaits.Load(),
	}
	st.Dropped = st.DroppedQoS0 + st.DroppedOldest + st.Expired + st.TooLarge
	s.mu.Lock()
	st.Depth, st.Bytes, st.Inflight = s.count, s.bytes, len(s.keys[0])
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

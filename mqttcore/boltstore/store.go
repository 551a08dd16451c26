package boltstore

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// Fsync policies for Options.Sync.
const (
	// SyncAlways fdatasyncs every batch before its done callbacks run: a
	// power cut loses nothing that was acknowledged. The default.
	SyncAlways = "always"
	// SyncNever writes every batch to the file but never fdatasyncs it
	// (bbolt's NoSync): done runs once the data is in the page cache. A
	// crash of the process loses nothing; a power cut or kernel crash may
	// lose any commit since the kernel last wrote back, and may leave the
	// file corrupt (bbolt orders its writes with the syncs). For tests and
	// for users who prefer speed to durability.
	SyncNever = "never"
)

// Defaults for the zero values of Options.
const (
	DefaultMaxBatch    = 1024
	DefaultMaxPending  = 8192
	DefaultLockTimeout = 5 * time.Second
)

// Options configure a Store. The zero value is the default.
type Options struct {
	// Sync is the fsync policy, SyncAlways ("" means SyncAlways) or
	// SyncNever.
	Sync string
	// MaxDelay bounds how long the committer, having taken the first
	// pending call, waits for more to share its transaction. 0 (the
	// default) commits as soon as the committer is idle: whatever queued
	// while the previous batch was being written goes into the next one,
	// which is all the grouping a busy gateway needs and adds no latency
	// to a lone publish.
	MaxDelay time.Duration
	// MaxBatch is the most Commit and Update calls applied in one
	// transaction (default DefaultMaxBatch).
	MaxBatch int
	// MaxPending bounds the calls queued for the committer (default
	// DefaultMaxPending). A caller that finds the queue full waits for
	// room; each such wait is counted in Stats.QueueWaits.
	MaxPending int
	// InitialMmapSize is the size bbolt maps up front, so the file can
	// grow to it without remapping (a remap waits for open read
	// transactions). Default 1 GiB on 64-bit platforms, 64 MiB on 32-bit;
	// it costs address space, not memory.
	InitialMmapSize int
	// LockTimeout bounds the wait for the file's lock when another process
	// has it open (default DefaultLockTimeout).
	LockTimeout time.Duration
	// Now is the clock used for retained messages' expiry (default
	// time.Now).
	Now func() time.Time
}

// Validate reports an option that is out of range.
func (o Options) Validate() error {
	switch o.Sync {
	case "", SyncAlways, SyncNever:
	default:
		return fmt.Errorf("boltstore: sync %q: want %q or %q", o.Sync, SyncAlways, SyncNever)
	}
	if o.MaxDelay < 0 {
		return fmt.Errorf("boltstore: max delay %v: negative", o.MaxDelay)
	}
	if o.MaxBatch < 0 {
		return fmt.Errorf("boltstore: max batch %d: negative", o.MaxBatch)
	}
	if o.MaxPending < 0 {
		return fmt.Errorf("boltstore: max pending %d: negative", o.MaxPending)
	}
	if o.InitialMmapSize < 0 {
		return fmt.Errorf("boltstore: initial mmap size %d: negative", o.InitialMmapSize)
	}
	if o.LockTimeout < 0 {
		return fmt.Errorf("boltstore: lock timeout %v: negative", o.LockTimeout)
	}
	return nil
}

func (o *Options) setDefaults() {
	if o.Sync == "" {
		o.Sync = SyncAlways
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.MaxPending == 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.InitialMmapSize == 0 {
		o.InitialMmapSize = 64 << 20
		if strconv.IntSize == 64 {
			o.InitialMmapSize = 1 << 30
		}
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Store is the durable journal: one bbolt file and its committer. It
// implements mqttcore.Journal. Its methods are safe for concurrent use.
type Store struct {
	db   *bbolt.DB
	path string
	opts Options

	// mu guards closed against Close: senders hold it shared while they
	// queue, Close exclusively while it closes reqs.
	mu       sync.RWMutex
	closed   bool
	needInit bool // set by check for an empty bbolt file
	reqs     chan *request
	exited   chan struct{} // closed when the committer returns

	// Owned by the committer (and by Open before it starts).
	refs    refCounts
	seqHigh atomic.Uint64 // the highest seq committed (meta "seq"); Load reads it
	txSeq   uint64        // the highest seq in the open transaction
	arena   arena
	scratch []byte
	batch   []*request

	stats counters
}

var _ mqttcore.Journal = (*Store)(nil)

// request is one Commit or Update call.
type request struct {
	ops   []mqttcore.Op
	apply func(*bbolt.Tx) error
	done  func(error)
	err   error // set when its apply failed (isolated) or the batch did
}

type counters struct {
	calls, batches, ops, queueWaits, failed, isolated, batchNanos, maxBatchNanos atomic.Uint64
	maxBatchCalls, loadSkipped                                                   atomic.Uint64
}

// Stats are a Store's counters since Open.
type Stats struct {
	// Calls is the number of Commit and Update calls committed or failed.
	Calls uint64
	// Batches is the number of write transactions (each two fdatasyncs
	// under SyncAlways); Calls/Batches is the grouping achieved.
	Batches uint64
	// Ops is the number of journal ops committed.
	Ops uint64
	// QueueWaits counts calls that found the pending queue full and
	// waited (Options.MaxPending).
	QueueWaits uint64
	// Failed counts calls whose done got an error.
	Failed uint64
	// Isolated counts calls whose apply failed and that were taken out of
	// their batch so the others could commit.
	Isolated uint64
	// BatchTime is the total time spent in write transactions, and
	// MaxBatchTime the longest one.
	BatchTime, MaxBatchTime time.Duration
	// MaxBatchCalls is the most calls one transaction held.
	MaxBatchCalls uint64
	// LoadSkipped counts records Load passed over: entries whose message
	// is missing, entries and front-end state of sessions without a
	// header (deleted afterwards), expired retained messages (deleted).
	LoadSkipped uint64
	// UsedBytes is the size of the pages in use (bbolt grows the file
	// ahead of them), and FreePages the pages among them held free for
	// reuse.
	UsedBytes int64
	FreePages int
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	st := Stats{
		Calls:         s.stats.calls.Load(),
		Batches:       s.stats.batches.Load(),
		Ops:           s.stats.ops.Load(),
		QueueWaits:    s.stats.queueWaits.Load(),
		Failed:        s.stats.failed.Load(),
		Isolated:      s.stats.isolated.Load(),
		BatchTime:     time.Duration(s.stats.batchNanos.Load()),
		MaxBatchTime:  time.Duration(s.stats.maxBatchNanos.Load()),
		MaxBatchCalls: s.stats.maxBatchCalls.Load(),
		LoadSkipped:   s.stats.loadSkipped.Load(),
	}
	bs := s.db.Stats()
	st.FreePages = bs.FreePageN
	_ = s.db.View(func(tx *bbolt.Tx) error {
		st.UsedBytes = tx.Size()
		return nil
	})
	return st
}

// Path returns the store file's path.
func (s *Store) Path() string { return s.path }

// ErrClosed is wrapped by the error a Commit or Update after Close gets.
var ErrClosed = errors.New("store closed")

// Commit implements mqttcore.Journal: it queues ops for the committer,
// which applies them after every earlier call's and then calls done. It
// waits only when Options.MaxPending calls are queued already. After Close,
// done is called at once, on the caller's goroutine, with an error wrapping
// ErrClosed and mqttcore.ErrStoreFailed.
func (s *Store) Commit(ops []mqttcore.Op, done func(error)) {
	r := requestPool.Get().(*request)
	r.ops, r.done = ops, done
	s.submit(r)
}

// Update queues apply to run in the same transactions as the core's
// commits, in call order with them, and calls done (nil or the error, which
// wraps mqttcore.ErrStoreFailed) once that transaction is durable or has
// failed. apply may run more than once (when another call in its batch
// fails) and must be idempotent, must not keep tx, and must not touch the
// buckets named with ReservedPrefix. done runs on the committer's
// goroutine and must not block or call Commit or Update. Its ordering and
// after-Close behaviour are those of Commit.
func (s *Store) Update(apply func(*bbolt.Tx) error, done func(error)) {
	r := requestPool.Get().(*request)
	r.apply, r.done = apply, done
	s.submit(r)
}

func (s *Store) submit(r *request) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		done := r.done
		*r = request{}
		requestPool.Put(r)
		if done != nil {
			done(fmt.Errorf("boltstore: commit to %s: %w: %w", s.path, mqttcore.ErrStoreFailed, ErrClosed))
		}
		return
	}
	select {
	case s.reqs <- r:
	default:
		s.stats.queueWaits.Add(1)
		s.reqs <- r // the committer drains the queue, so this wait is bounded by one batch
	}
	s.mu.RUnlock()
}

// View runs fn in a read transaction: a consistent snapshot of everything
// committed so far. fn must not keep tx or anything it returns.
func (s *Store) View(fn func(*bbolt.Tx) error) error {
	return s.db.View(fn)
}

// Backup writes a consistent copy of the whole file to w, from one read
// transaction (commits go on meanwhile), and returns the bytes written. The
// copy is a store file: to restore it, stop gannet and put it in place of
// the store's file.
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("boltstore: back up %s: %w", s.path, err)
	}
	return n, nil
}

// Close commits what is queued, stops the committer and closes the file.
// A second Close returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.reqs)
	s.mu.Unlock()
	<-s.exited
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("boltstore: close %s: %w", s.path, err)
	}
	return nil
}

// run is the committer. It exits when Close has closed reqs and every call
// queued before that has been committed.
func (s *Store) run() {
	defer close(s.exited)
	var timer *time.Timer
	if s.opts.MaxDelay > 0 {
		timer = time.NewTimer(time.Hour)
		timer.Stop()
	}
	for first := range s.reqs {
		batch := append(s.batch[:0], first)
		batch = s.collect(batch, timer)
		s.commit(batch)
		clear(batch)
		s.batch = batch[:0]
	}
}

// collect adds whatever is queued to batch, up to MaxBatch, waiting up to
// MaxDelay for more when that is set.
func (s *Store) collect(batch []*request, timer *time.Timer) []*request {
	for len(batch) < s.opts.MaxBatch {
		select {
		case r, ok := <-s.reqs:
			if !ok {
				return batch
			}
			batch = append(batch, r)
			continue
		default:
		}
		break
	}
	if timer == nil || len(batch) >= s.opts.MaxBatch {
		return batch
	}
	timer.Reset(s.opts.MaxDelay)
	defer timer.Stop()
	for len(batch) < s.opts.MaxBatch {
		select {
		case r, ok := <-s.reqs:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		case <-timer.C:
			return batch
		}
	}
	return batch
}

// commit applies batch in one transaction and calls each done. A call whose
// apply fails is taken out and the transaction re-run without it; a
// failing commit (a full disk, an I/O error) fails every call in it.
func (s *Store) commit(batch []*request) {
	start := time.Now()
	live := batch
	var failed *request
	var err error
	for len(live) > 0 {
		failed = nil
		// A panic in bbolt (at a page damaged since Open) fails the batch
		// instead of the process.
		err = protect(func() error {
			return s.db.Update(func(tx *bbolt.Tx) error {
				s.txSeq = s.seqHigh.Load()
				for _, r := range live {
					if r.err != nil {
						continue
					}
					if err := s.applySafe(tx, r); err != nil {
						r.err = err
						failed = r
						return err
					}
				}
				return s.putSeqHigh(tx)
			})
		})
		s.arena.reset()
		if err == nil {
			s.refs.commit()
			s.seqHigh.Store(s.txSeq)
			break
		}
		s.refs.rollback()
		if failed == nil {
			break // the commit itself failed: the whole batch does
		}
		s.stats.isolated.Add(1)
		if !anyLeft(live) {
			err = nil
			break
		}
	}
	d := time.Since(start)
	s.stats.batches.Add(1)
	s.stats.batchNanos.Add(uint64(d))
	atomicMax(&s.stats.maxBatchNanos, uint64(d))
	atomicMax(&s.stats.maxBatchCalls, uint64(len(batch)))
	s.stats.calls.Add(uint64(len(batch)))
	for _, r := range batch {
		e := r.err
		if e == nil && err != nil {
			e = err
		}
		if e == nil {
			s.stats.ops.Add(uint64(len(r.ops)))
		} else {
			s.stats.failed.Add(1)
			e = fmt.Errorf("boltstore: commit to %s: %w: %w", s.path, mqttcore.ErrStoreFailed, e)
		}
		if r.done != nil {
			r.done(e)
		}
		*r = request{}
		requestPool.Put(r)
	}
}

// requestPool recycles requests, so that Commit, called for every QoS 1/2
// publish from the gateway's loops, does not allocate.
var requestPool = sync.Pool{New: func() any { return new(request) }}

// anyLeft reports whether a call in batch has not failed.
func anyLeft(batch []*request) bool {
	for _, r := range batch {
		if r.err == nil {
			return true
		}
	}
	return false
}

func atomicMax(a *atomic.Uint64, v uint64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// applySafe applies one call, turning a panic in it into an error.
func (s *Store) applySafe(tx *bbolt.Tx, r *request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("apply panicked: %v", p)
		}
	}()
	if r.apply != nil {
		return r.apply(tx)
	}
	return s.applyOps(tx, r.ops)
}

// refCounts counts the entries that refer to each stored message. The
// committer changes delta during a transaction and folds it into base when
// the transaction commits, or drops it when it fails.
type refCounts struct {
	base  map[uint64]uint32
	delta map[uint64]int32
}

func (c *refCounts) get(seq uint64) int64 {
	return int64(c.base[seq]) + int64(c.delta[seq])
}

func (c *refCounts) add(seq uint64, d int32) { c.delta[seq] += d }

func (c *refCounts) commit() {
	for seq, d := range c.delta {
		n := int64(c.base[seq]) + int64(d)
		switch {
		case n <= 0:
			delete(c.base, seq)
		case n > math.MaxUint32:
			c.base[seq] = math.MaxUint32
		default:
			c.base[seq] = uint32(n)
		}
	}
	clear(c.delta)
}

func (c *refCounts) rollback() { clear(c.delta) }

// arena holds the keys and values of one transaction: bbolt keeps the
// slices given to Put until the transaction ends, so they cannot share a
// scratch buffer, but the next transaction can reuse the memory.
type arena struct {
	b []byte
}

// copy returns a copy of p that stays valid until reset.
func (a *arena) copy(p []byte) []byte {
	if len(a.b)+len(p) > cap(a.b) {
		a.b = make([]byte, 0, max(2*cap(a.b), len(p), 64<<10))
	}
	n := len(a.b)
	a.b = append(a.b, p...)
	return a.b[n:len(a.b):len(a.b)]
}

// reset makes the memory reusable; a transaction must not be open.
func (a *arena) reset() {
	if cap(a.b) > 4<<20 {
		a.b = nil // a huge batch passed: do not keep its memory
	}
	a.b = a.b[:0]
}

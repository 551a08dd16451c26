package boltstore

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// Fsync policies for Options.Sync.
const (
	// SyncAlways fdatasyncs every group's log record before its done
	// callbacks run, and every checkpoint's bbolt transaction before the
	// segment it emptied is reused: a power cut loses nothing that was
	// acknowledged. The default.
	SyncAlways = "always"
	// SyncNever writes every log record and checkpoint but never
	// fdatasyncs them (bbolt's NoSync): done runs once the record is in
	// the page cache. A crash of the process loses nothing; a power cut or
	// kernel crash may lose any commit since the kernel last wrote back,
	// and may leave the store damaged (bbolt and the log order their
	// writes with the syncs). For tests and for users who prefer speed to
	// durability.
	SyncNever = "never"
)

// Defaults for the zero values of Options.
const (
	DefaultMaxBatch           = 1024
	DefaultMaxPending         = 8192
	DefaultLockTimeout        = 5 * time.Second
	DefaultCheckpointBytes    = 8 << 20
	DefaultCheckpointInterval = 2 * time.Second
)

// Options configure a Store. The zero value is the default.
type Options struct {
	// Sync is the fsync policy, SyncAlways ("" means SyncAlways) or
	// SyncNever.
	Sync string
	// MaxDelay bounds how long the committer, having taken the first
	// pending call, waits for more to share its log record. 0 (the
	// default) writes as soon as the previous group's sync is over:
	// whatever queued meanwhile goes into the next record, and a lone
	// publish waits for nothing but its own sync.
	MaxDelay time.Duration
	// MaxBatch is the most Commit and Update calls in one group: one log
	// record, or one bbolt transaction for Update calls (default
	// DefaultMaxBatch).
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
	// CheckpointBytes is how many bytes of log records accumulate before
	// they are applied to the bbolt file and their segment is freed
	// (default DefaultCheckpointBytes). The log on disk stays within
	// about twice this, and so does the memory that holds the records
	// until their checkpoint; a checkpoint's scratch (the ops it applies,
	// sorted), up to twice this size, is kept for the next one while the
	// load stays.
	CheckpointBytes int
	// CheckpointInterval bounds how long a logged change waits for its
	// checkpoint when fewer than CheckpointBytes arrive (default
	// DefaultCheckpointInterval).
	CheckpointInterval time.Duration
	// Now is the clock used for retained messages' expiry (default
	// time.Now).
	Now func() time.Time
	// Adopt, if set, lets Open take over an existing bbolt file that is
	// not a store yet: one without the core's buckets but with buckets of
	// its own (another user's file written before it used a store, such
	// as a bridge queue's own file). Open calls Adopt in a read
	// transaction of that file; if it returns nil, the file is checked
	// like a store's (every page read) and becomes a store in place, its
	// buckets kept as they are and the core's added in one transaction,
	// else Open refuses it with ErrForeign and Adopt's error. Adopt is
	// never called for a store file or an empty one.
	Adopt func(tx *bbolt.Tx) error
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
	if o.CheckpointBytes < 0 {
		return fmt.Errorf("boltstore: checkpoint bytes %d: negative", o.CheckpointBytes)
	}
	if o.CheckpointInterval < 0 {
		return fmt.Errorf("boltstore: checkpoint interval %v: negative", o.CheckpointInterval)
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
	if o.CheckpointBytes == 0 {
		o.CheckpointBytes = DefaultCheckpointBytes
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = DefaultCheckpointInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Store is the durable journal: one bbolt file, its write-ahead log and
// its committer. It implements mqttcore.Journal. Its methods are safe for
// concurrent use.
type Store struct {
	db   *bbolt.DB
	path string
	opts Options

	// mu guards closed against Close: senders hold it shared while they
	// queue, Close exclusively while it closes reqs.
	mu       sync.RWMutex
	closed   bool
	needInit bool // set by check for an empty bbolt file, or one Adopt accepted
	adopting bool // set by check for a file Adopt accepted
	reqs     chan *request
	exited   chan struct{} // closed when the committer returns

	// Read from core.meta by check and Open.
	version uint32 // the file's format version, 0 for a new file
	logID   uint64 // core.meta "logid": the id the log segments carry
	applied uint64 // core.meta "log": the last log record the file holds

	// Owned by the committer (and by Open before it starts).
	segs      [2]*segment
	win       [2]window // win[i]: records of segs[i] not in the file yet
	active    int       // the segment records go to
	nextIndex uint64
	enc       opEncoder
	payload   []byte
	recBuf    []byte
	batch     []*request
	lastCkpt  time.Time
	ckptFail  bool // the last background checkpoint failed: the next one runs in line
	running   bool // a background checkpoint is running; its result comes on ckptDone
	ckptDone  chan error
	ckptWG    sync.WaitGroup
	syncq     chan *group
	syncerEnd chan struct{}
	inSyncer  atomic.Int32          // groups handed to the syncer and not done yet
	syncIdle  chan struct{}         // the syncer signals here when inSyncer drops to 0
	sticky    atomic.Pointer[error] // a failed log sync: every later commit fails

	// Owned by whoever applies to the file: the committer, or the
	// background checkpoint while one runs (the committer waits for it
	// before it applies anything itself).
	refs      refCounts
	seqHigh   atomic.Uint64 // the highest seq the file holds (meta "seq"); Load reads it
	txSeq     uint64        // the highest seq in the open transaction
	arena     arena
	scratch   []byte
	coal      coalescer
	sorted    []rawOp    // a checkpoint's ops that survive coalescing
	decoded   rawOp      // the op being decoded (decodeOps)
	msgDefer  bool       // hold back writes to core.messages (applySorted)
	msgWrites []msgWrite // the writes held back
	kvCache   kvCache    // the bucket of the last keyed op applied

	// Keyed ops logged and not yet in the file, for Get. The committer
	// adds (kvPend is its scratch), the checkpoint removes.
	overlay overlay
	kvPend  []kvPending

	stats counters
}

var _ mqttcore.Journal = (*Store)(nil)

// request is one Commit or Update call, or a checkpoint barrier.
type request struct {
	ops        []mqttcore.Op
	kv         []KeyedOp // Log's
	apply      func(*bbolt.Tx) error
	done       func(error)
	err        error // set when its apply failed (isolated) or the batch did
	checkpoint bool  // a barrier that applies the log to the file
}

// group is one batch on its way through the syncer: its record is
// written; its callers are told once the segment is synced.
type group struct {
	reqs    []*request
	seg     *segment // the segment written, nil when nothing was
	err     error    // the write failed
	start   time.Time
	barrier chan struct{} // a drain marker: closed when everything before it is done
}

// window holds the payloads of a segment's records that the bbolt file
// does not hold yet, each led by its uvarint length, in chunks that are
// never reallocated: a payload stays where it was put until reset, so the
// keyed-op overlay can point into it (and no growing copy of the whole
// window is made, or kept alive by such pointers).
type window struct {
	chunks      [][]byte
	size        int      // bytes held
	first, last uint64   // their indexes; 0 when empty
	spare       [][]byte // chunks kept for reuse by reset
}

// windowChunk is the size of a window's chunks; a larger payload gets a
// chunk of its own.
const windowChunk = 256 << 10

// add appends the payload p of record idx and returns where it now is.
func (w *window) add(idx uint64, p []byte) []byte {
	if w.first == 0 {
		w.first = idx
	}
	w.last = idx
	need := binary.MaxVarintLen64 + len(p)
	if n := len(w.chunks); n == 0 || cap(w.chunks[n-1])-len(w.chunks[n-1]) < need {
		var c []byte
		if n := len(w.spare); need <= windowChunk && n > 0 {
			c = w.spare[n-1][:0]
			w.spare[n-1] = nil
			w.spare = w.spare[:n-1]
		} else {
			c = make([]byte, 0, max(windowChunk, need))
		}
		w.chunks = append(w.chunks, c)
	}
	c := &w.chunks[len(w.chunks)-1]
	n0 := len(*c)
	*c = binary.AppendUvarint(*c, uint64(len(p)))
	at := len(*c)
	*c = append(*c, p...)
	w.size += len(*c) - n0
	return (*c)[at:len(*c):len(*c)]
}

func (w *window) empty() bool { return w.first == 0 }

// reset empties w. Nothing may point into its chunks any more (the
// overlay has dropped the keys of its records). The chunks of the usual
// size are kept for the next records: those this window used, and three
// quarters of the spares it did not use (so a window whose size varies
// from one checkpoint to the next, as background checkpoints fall behind
// and catch up, does not drop chunks one time and make them anew the
// next, and the spares of a burst go over some checkpoints): a busy
// log does not allocate its windows anew at every checkpoint (at 10,000
// bridged msgs/s some 6 MB each), an idle one does not keep a burst's.
func (w *window) reset() {
	keep := len(w.spare) * 3 / 4 // w.spare holds the unused ones
	clear(w.spare[keep:])
	w.spare = w.spare[:keep]
	for _, c := range w.chunks {
		if cap(c) == windowChunk {
			w.spare = append(w.spare, c[:0])
		}
	}
	clear(w.chunks)
	w.chunks = w.chunks[:0]
	w.size = 0
	w.first, w.last = 0, 0
}

// records calls f with each payload in w.
func (w *window) records(f func([]byte) error) error {
	for _, b := range w.chunks {
		for len(b) > 0 {
			n, k := binary.Uvarint(b)
			if k <= 0 || n > uint64(len(b)-k) {
				return errRecord
			}
			if err := f(b[k : k+int(n)]); err != nil {
				return err
			}
			b = b[k+int(n):]
		}
	}
	return nil
}

type counters struct {
	calls, batches, ops, queueWaits, failed, isolated, batchNanos, maxBatchNanos atomic.Uint64
	maxBatchCalls, loadSkipped                                                   atomic.Uint64
	logSyncs, logBytes, checkpoints, checkpointErrs, checkpointNanos, boltTxs    atomic.Uint64
	replayed, submitted                                                          atomic.Uint64
}

// Stats are a Store's counters since Open.
type Stats struct {
	// Calls is the number of Commit and Update calls committed or failed.
	Calls uint64
	// Batches is the number of groups committed: log records, and bbolt
	// transactions made for Update calls; Calls/Batches is the grouping
	// achieved.
	Batches uint64
	// Ops is the number of journal ops committed.
	Ops uint64
	// QueueWaits counts calls that found the pending queue full and
	// waited (Options.MaxPending).
	QueueWaits uint64
	// Failed counts calls whose done got an error.
	Failed uint64
	// Isolated counts calls whose ops or apply failed and that were taken
	// out of their batch so the others could commit.
	Isolated uint64
	// BatchTime is the total time from the start of a group's write to
	// the end of the sync that made it durable, and MaxBatchTime the
	// longest.
	BatchTime, MaxBatchTime time.Duration
	// MaxBatchCalls is the most calls one group held.
	MaxBatchCalls uint64
	// LogSyncs counts the log's fdatasyncs (one per group, or fewer when
	// groups written during a sync share the next), and LogBytes the
	// bytes of records written to it.
	LogSyncs, LogBytes uint64
	// Checkpoints counts the transactions that applied logged records to
	// the bbolt file, CheckpointErrors those that failed (retried), and
	// CheckpointTime the time spent in them.
	Checkpoints, CheckpointErrors uint64
	CheckpointTime                time.Duration
	// BoltTxs counts write transactions on the bbolt file (checkpoints
	// and Update groups).
	BoltTxs uint64
	// Replayed is the number of log records applied at Open.
	Replayed uint64
	// Pending is the number of calls (Commit, Log, Update, Checkpoint)
	// queued or being committed now: made and their done not yet called.
	Pending int
	// LoadSkipped counts records Load passed over: entries whose message
	// is missing, entries and front-end state of sessions without a
	// header (deleted afterwards), expired retained messages (deleted).
	LoadSkipped uint64
	// UsedBytes is the size of the bbolt file's pages in use (bbolt grows
	// the file ahead of them), and FreePages the pages among them held
	// free for reuse.
	UsedBytes int64
	FreePages int
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	calls := s.stats.calls.Load() // before submitted: Pending is never negative
	st := Stats{
		Calls:            calls,
		Pending:          int(s.stats.submitted.Load() - calls),
		Batches:          s.stats.batches.Load(),
		Ops:              s.stats.ops.Load(),
		QueueWaits:       s.stats.queueWaits.Load(),
		Failed:           s.stats.failed.Load(),
		Isolated:         s.stats.isolated.Load(),
		BatchTime:        time.Duration(s.stats.batchNanos.Load()),
		MaxBatchTime:     time.Duration(s.stats.maxBatchNanos.Load()),
		MaxBatchCalls:    s.stats.maxBatchCalls.Load(),
		LogSyncs:         s.stats.logSyncs.Load(),
		LogBytes:         s.stats.logBytes.Load(),
		Checkpoints:      s.stats.checkpoints.Load(),
		CheckpointErrors: s.stats.checkpointErrs.Load(),
		CheckpointTime:   time.Duration(s.stats.checkpointNanos.Load()),
		BoltTxs:          s.stats.boltTxs.Load(),
		Replayed:         s.stats.replayed.Load(),
		LoadSkipped:      s.stats.loadSkipped.Load(),
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

// LogPaths returns the paths of the write-ahead log's two segment files.
func (s *Store) LogPaths() []string {
	return []string{segmentName(s.path, 0), segmentName(s.path, 1)}
}

// ErrClosed is wrapped by the error a Commit or Update after Close gets.
var ErrClosed = errors.New("store closed")

// Commit implements mqttcore.Journal: it queues ops for the committer,
// which writes them to the log after every earlier call's and calls done
// once the log is synced (under SyncAlways). It waits only when
// Options.MaxPending calls are queued already. After Close, done is called
// at once, on the caller's goroutine, with an error wrapping ErrClosed and
// mqttcore.ErrStoreFailed.
func (s *Store) Commit(ops []mqttcore.Op, done func(error)) {
	r := requestPool.Get().(*request)
	r.ops, r.done = ops, done
	s.submit(r)
}

// Update queues apply to run in a bbolt transaction, in call order with
// the core's commits: the committer applies everything logged before it
// to the file and runs apply in the same transaction, and calls done (nil
// or the error, which wraps mqttcore.ErrStoreFailed) once that
// transaction is durable or has failed. An Update therefore costs a bbolt
// commit (two fdatasyncs), not a log record. apply may run more than once
// (when another call in its batch fails) and must be idempotent, must not
// keep tx, and must not touch the buckets named with ReservedPrefix. done
// runs on the committer's goroutine and must not block or call Commit or
// Update. Its ordering and after-Close behaviour are those of Commit.
func (s *Store) Update(apply func(*bbolt.Tx) error, done func(error)) {
	r := requestPool.Get().(*request)
	r.apply, r.done = apply, done
	s.submit(r)
}

// Checkpoint applies everything logged so far to the bbolt file and
// returns once that transaction is durable. The store does this by itself
// (Options.CheckpointBytes, CheckpointInterval, Close); View of the core's
// buckets, Load and Backup see logged changes only once it has.
func (s *Store) Checkpoint() error {
	r := requestPool.Get().(*request)
	ch := make(chan error, 1)
	r.checkpoint, r.done = true, func(err error) { ch <- err }
	s.submit(r)
	return <-ch
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
	s.stats.submitted.Add(1)
	select {
	case s.reqs <- r:
	default:
		s.stats.queueWaits.Add(1)
		s.reqs <- r // the committer drains the queue, so this wait is bounded by one batch
	}
	s.mu.RUnlock()
}

// View runs fn in a read transaction of the bbolt file: a consistent
// snapshot of the file. Changes to the core's buckets reach the file at
// checkpoints, behind the log (call Checkpoint first to see them all);
// Update calls' changes are in it once their done has been called. fn must
// not keep tx or anything it returns.
func (s *Store) View(fn func(*bbolt.Tx) error) error {
	return s.db.View(fn)
}

// Backup applies the log to the bbolt file (Checkpoint), then writes a
// consistent copy of the whole file to w from one read transaction
// (commits go on meanwhile, into the log), and returns the bytes written.
// The copy is a store file holding everything committed before Backup was
// called: to restore it, stop gannet, put it in place of the store's file
// and delete the store's .wal.* files.
func (s *Store) Backup(w io.Writer) (int64, error) {
	if err := s.Checkpoint(); err != nil {
		return 0, fmt.Errorf("boltstore: back up %s: %w", s.path, err)
	}
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

// Close commits what is queued, applies the log to the bbolt file, stops
// the committer and closes the files. If that last checkpoint fails (a
// full disk), the log keeps the changes and the next Open applies them;
// Close returns the error. A second Close returns nil.
func (s *Store) Close() error { return s.close(true) }

func (s *Store) close(checkpoint bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.reqs)
	s.mu.Unlock()
	<-s.exited
	var errs []error
	if checkpoint {
		if err := s.flush(nil); err != nil {
			errs = append(errs, fmt.Errorf("boltstore: close %s: checkpoint: %w", s.path, err))
		}
	} else {
		s.drainSyncer()
		s.waitCheckpoint()
	}
	s.ckptWG.Wait()
	close(s.syncq)
	<-s.syncerEnd
	for _, sg := range s.segs {
		if err := sg.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("boltstore: close %s: %w", sg.name, err))
		}
	}
	if err := s.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("boltstore: close %s: %w", s.path, err))
	}
	return errors.Join(errs...)
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
	tick := time.NewTicker(max(s.opts.CheckpointInterval/4, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case first, ok := <-s.reqs:
			if !ok {
				return
			}
			batch := append(s.batch[:0], first)
			batch = s.collect(batch, timer)
			batch = s.gatherWhileSyncing(batch)
			s.commit(batch)
			clear(batch)
			s.batch = batch[:0]
		case err := <-s.ckptDone:
			s.checkpointed(err)
		case <-tick.C:
		}
		s.maybeCheckpoint()
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

// gatherWhileSyncing adds calls to batch while the syncer is still busy
// with earlier groups: their records are written together once it is
// free, so a busy store makes one write and one fdatasync per sync, not a
// write per call.
func (s *Store) gatherWhileSyncing(batch []*request) []*request {
	for len(batch) < s.opts.MaxBatch && s.inSyncer.Load() > 0 {
		select {
		case r, ok := <-s.reqs:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		case <-s.syncIdle:
		}
	}
	return batch
}

// toSyncer hands g to the syncer.
func (s *Store) toSyncer(g *group) {
	s.inSyncer.Add(1)
	s.syncq <- g
}

// commit commits one batch: as a log record when it holds only ops, or
// in a bbolt transaction (after the logged records) when it holds Update
// calls or a checkpoint barrier.
func (s *Store) commit(batch []*request) {
	for _, r := range batch {
		if r.apply != nil || r.checkpoint {
			s.commitBolt(batch)
			return
		}
	}
	s.commitLog(batch)
}

// commitLog encodes the batch's ops into one record, writes it to the
// active segment and hands the batch to the syncer. A call whose ops
// cannot be stored is failed alone.
func (s *Store) commitLog(batch []*request) {
	g := groupPool.Get().(*group)
	g.reqs, g.start = append(g.reqs[:0], batch...), time.Now()
	if p := s.sticky.Load(); p != nil {
		g.err = *p
		s.toSyncer(g)
		return
	}
	s.enc.reset()
	p := s.payload[:0]
	pend := s.kvPend[:0]
	for _, r := range batch {
		start, last := len(p), s.enc.lastSeq
		var err error
		if p, err = s.enc.appendOps(p, r.ops); err != nil {
			r.err = err
			s.stats.isolated.Add(1)
			continue
		}
		if len(r.kv) == 0 {
			continue
		}
		if p, err = appendKeyed(p, r.kv, &pend); err != nil {
			// Take the call's core ops out too: it fails as a whole.
			p, s.enc.lastSeq = p[:start], last
			r.err = err
			s.stats.isolated.Add(1)
		}
	}
	s.payload = p
	s.kvPend = pend[:0]
	if len(p) > 0 {
		sg := s.segs[s.active]
		var err error
		s.recBuf, err = sg.appendRecord(s.recBuf, s.nextIndex, p, s.opts.Sync != SyncNever)
		if err != nil {
			g.err = err
		} else {
			w := &s.win[s.active]
			rec := w.add(s.nextIndex, p) // before w.first is read: it may set it
			s.overlay.add(s.nextIndex, rec, pend, w.first)
			s.nextIndex++
			s.stats.logBytes.Add(uint64(len(s.recBuf)))
			g.seg = sg
		}
	}
	s.toSyncer(g)
}

// syncer makes written groups durable and tells their callers, in order.
// Groups written while it syncs share its next sync. It exits when Close
// closes syncq.
func (s *Store) syncer() {
	defer close(s.syncerEnd)
	var gs []*group
	for g := range s.syncq {
		gs = append(gs[:0], g)
	more:
		for len(gs) < cap(s.syncq)+1 {
			select {
			case g, ok := <-s.syncq:
				if !ok {
					break more
				}
				gs = append(gs, g)
			default:
				break more
			}
		}
		var syncErr error
		if s.opts.Sync != SyncNever {
			var synced *segment
			for _, g := range gs {
				if g.seg != nil && g.seg != synced {
					if err := fdatasync(g.seg.f); err != nil {
						syncErr = fmt.Errorf("sync log %s: %w", g.seg.name, err)
						s.sticky.CompareAndSwap(nil, &syncErr)
						break
					}
					s.stats.logSyncs.Add(1)
					synced = g.seg
				}
			}
		}
		for _, g := range gs {
			if g.barrier != nil {
				close(g.barrier)
				continue
			}
			err := g.err
			if err == nil && g.seg != nil {
				err = syncErr
			}
			s.finish(g.reqs, err, g.start)
			clear(g.reqs)
			if cap(g.reqs) <= s.opts.MaxBatch {
				*g = group{reqs: g.reqs[:0]}
				groupPool.Put(g)
			}
		}
		if s.inSyncer.Add(-int32(len(gs))) == 0 {
			select {
			case s.syncIdle <- struct{}{}:
			default:
			}
		}
		clear(gs)
	}
}

// finish tells a committed or failed batch's callers and counts it.
func (s *Store) finish(batch []*request, err error, start time.Time) {
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
			s.stats.ops.Add(uint64(len(r.ops) + len(r.kv)))
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

// drainSyncer waits until every group handed to the syncer is done.
func (s *Store) drainSyncer() {
	ch := make(chan struct{})
	s.toSyncer(&group{barrier: ch})
	<-ch
}

// waitCheckpoint waits for a running background checkpoint.
func (s *Store) waitCheckpoint() {
	if s.running {
		s.checkpointed(<-s.ckptDone)
	}
}

// maybeCheckpoint starts a checkpoint when the active segment's records
// are due (CheckpointBytes, CheckpointInterval) and none is running: the
// other segment becomes the active one and the records of this one are
// applied to the file in the background, while commits go on. After a
// failed checkpoint the next one runs in line instead, applying both
// segments' records.
func (s *Store) maybeCheckpoint() {
	w := &s.win[s.active]
	if s.running && w.size >= 2*s.opts.CheckpointBytes {
		// The checkpoint falls behind the log: wait for it, so that a
		// segment stays within about twice CheckpointBytes.
		s.waitCheckpoint()
	}
	if s.running || w.empty() {
		return
	}
	since := time.Since(s.lastCkpt)
	if w.size < s.opts.CheckpointBytes && since < s.opts.CheckpointInterval {
		return
	}
	if s.ckptFail || !s.win[1-s.active].empty() {
		// The last checkpoint failed (a full disk): retry once per
		// interval, not after every group.
		if since >= s.opts.CheckpointInterval {
			if err := s.flush(nil); err != nil {
				s.lastCkpt = time.Now()
			}
		}
		return
	}
	// The records of this segment must be synced before any goes to the
	// next one: a replay takes a gap for damage.
	s.drainSyncer()
	old := s.active
	s.active = 1 - old
	s.segs[s.active].rewind()
	s.running = true
	s.lastCkpt = time.Now()
	s.ckptWG.Add(1)
	go func() { // exits after one transaction; the committer or Close receives its result
		defer s.ckptWG.Done()
		s.ckptDone <- s.applyWindows(nil, []*window{&s.win[old]})
	}()
}

// checkpointed takes a background checkpoint's result.
func (s *Store) checkpointed(err error) {
	s.running = false
	old := 1 - s.active
	if err != nil {
		s.ckptFail = true
		s.lastCkpt = time.Now()
		return
	}
	s.ckptFail = false
	s.win[old].reset()
}

// flush applies every logged record, then batch's ops and Update calls,
// in one bbolt transaction. A call whose apply fails is taken out and the
// transaction re-run without it; a failing commit fails every call. With
// batch nil it is a checkpoint of everything logged.
func (s *Store) flush(batch []*request) error {
	s.drainSyncer()
	s.waitCheckpoint()
	var ws []*window
	for _, i := range []int{1 - s.active, s.active} {
		if !s.win[i].empty() {
			ws = append(ws, &s.win[i])
		}
	}
	if len(ws) == 2 && ws[0].first > ws[1].first {
		ws[0], ws[1] = ws[1], ws[0]
	}
	if len(ws) == 0 && !hasWork(batch) {
		return nil
	}
	err := s.applyWindows(batch, ws)
	if err != nil {
		s.ckptFail = true
		return err
	}
	s.ckptFail = false
	for i := range s.win {
		s.win[i].reset()
		s.segs[i].rewind()
	}
	s.lastCkpt = time.Now()
	return nil
}

// hasWork reports whether batch holds anything to apply.
func hasWork(batch []*request) bool {
	for _, r := range batch {
		if r.apply != nil || len(r.ops) > 0 || len(r.kv) > 0 {
			return true
		}
	}
	return false
}

// commitBolt commits a batch holding Update calls or a checkpoint
// barrier: after everything logged, in one bbolt transaction.
func (s *Store) commitBolt(batch []*request) {
	start := time.Now()
	var err error
	if p := s.sticky.Load(); p != nil {
		err = *p
	} else {
		err = s.flush(batch)
	}
	s.finish(batch, err, start)
}

// applyWindows applies the records of ws (in order), then the ops and
// Update calls of batch, in one transaction that also records the last
// record's index as the file's log position. It isolates a failing call
// of batch; it fails as a whole when a logged record does not apply
// (which Commit's checks prevent) or the commit fails.
func (s *Store) applyWindows(batch []*request, ws []*window) error {
	start := time.Now()
	applied := s.applied
	for _, w := range ws {
		applied = max(applied, w.last)
	}
	var err error
	for {
		var failed *request
		// A panic in bbolt (at a page damaged since Open) fails the batch
		// instead of the process.
		err = protect(func() error {
			return s.db.Update(func(tx *bbolt.Tx) error {
				s.txSeq = s.seqHigh.Load()
				if len(ws) > 0 {
					if err := s.applyLogged(tx, ws); err != nil {
						return err
					}
				}
				for _, r := range batch {
					if r.err != nil {
						continue
					}
					if err := s.applySafe(tx, r); err != nil {
						r.err = err
						failed = r
						return err
					}
					if r.apply != nil {
						// An Update's apply may have deleted or
						// made the cached bucket anew.
						s.kvCache = kvCache{}
					}
				}
				if err := s.putSeqHigh(tx); err != nil {
					return err
				}
				if applied != s.applied {
					return tx.Bucket(bucketMeta).Put(keyLog, s.arena.copy(appendU64(nil, applied)))
				}
				return nil
			})
		})
		s.arena.reset()
		s.kvCache = kvCache{}
		if err == nil {
			s.refs.commit()
			s.seqHigh.Store(s.txSeq)
			s.applied = applied
			if len(ws) > 0 {
				s.overlay.applied(applied)
			}
			break
		}
		s.refs.rollback()
		if failed == nil {
			break // the commit itself failed: the whole batch does
		}
		s.stats.isolated.Add(1)
		if !anyLeft(batch) {
			err = nil
			if len(ws) == 0 {
				break
			}
		}
	}
	s.stats.boltTxs.Add(1)
	if len(ws) > 0 {
		s.stats.checkpointNanos.Add(uint64(time.Since(start)))
		if err != nil {
			s.stats.checkpointErrs.Add(1)
		} else {
			s.stats.checkpoints.Add(1)
		}
	}
	return err
}

// checkpointYield is how many logged ops a checkpoint decodes between
// yields of its goroutine. A background checkpoint is a burst of CPU (at
// 10,000 bridged msgs/s, some 80 ms every 2 s on this project's 2-core
// test machine); yielding lets the loops, the committer and the bridge's
// sender, woken meanwhile, run within about a millisecond instead of
// waiting for the scheduler to preempt it (up to 10 ms).
const checkpointYield = 512

// applyLogged applies the records of ws in tx, leaving out the ops that
// a later op of the same checkpoint replaces: a first pass over the
// records finds those, a second collects the others, which are applied
// in key order (applySorted) between end-session ops.
func (s *Store) applyLogged(tx *bbolt.Tx, ws []*window) error {
	b, err := coreBucketsOf(tx)
	if err != nil {
		return err
	}
	c := &s.coal
	// Its maps are kept for the next checkpoint up to about a key per 64
	// bytes of CheckpointBytes (a busy bridge's checkpoint notes tens of
	// thousands of keys at the default, more when checkpoints fall
	// behind): regrown at every checkpoint, they were most of its garbage.
	maxKeys := max(1<<16, s.opts.CheckpointBytes/64)
	c.reset(maxKeys)
	// Cleared again when done: its keys alias the windows (noteKey),
	// which are reused after this checkpoint.
	defer c.reset(maxKeys)
	var i int32
	if err := s.eachLogged(ws, func(op *rawOp) error { c.note(op, i); i++; return nil }); err != nil {
		return err
	}
	// Sized by the survivors, which the first pass counted (with room for
	// the next checkpoints of a steady load): one slice at most, not a
	// chain of growing ones.
	if n := c.survivors(); cap(s.sorted) < n {
		s.sorted = make([]rawOp, 0, n+n/4)
	}
	ops := s.sorted[:0]
	i = 0
	if err := s.eachLogged(ws, func(op *rawOp) error {
		if c.keep(op, i) {
			ops = append(ops, *op)
		}
		i++
		return nil
	}); err != nil {
		return err
	}
	all := ops
	defer func() {
		clear(all)
		if cap(all) > max(4*len(all), 1024) || cap(all)*int(unsafe.Sizeof(rawOp{})) > 2*s.opts.CheckpointBytes {
			// The load fell (this checkpoint used less than a quarter
			// of it), or the slice is beyond what checkpoints of
			// CheckpointBytes (up to twice that when they fall behind)
			// need: do not keep it.
			all = nil
		}
		s.sorted = all[:0]
	}()
	for len(ops) > 0 {
		n := 0
		for n < len(ops) && ops[n].kind != mqttcore.OpEndSession {
			n++
		}
		if err := s.applySorted(&b, ops[:n]); err != nil {
			return err
		}
		if n < len(ops) {
			if err := s.applyRaw(&b, &ops[n]); err != nil {
				return fmt.Errorf("logged %v op (session %d): %w", ops[n].kind, ops[n].sid, err)
			}
			n++
		}
		ops = ops[n:]
	}
	return nil
}

// eachLogged decodes the records of ws, in order, calling f with each op
// (the same *rawOp, rewritten: f must copy what it keeps). It yields the
// goroutine every checkpointYield ops.
func (s *Store) eachLogged(ws []*window, f func(*rawOp) error) error {
	n := 0
	g := func(op *rawOp) error {
		if n++; n%checkpointYield == 0 {
			runtime.Gosched()
		}
		return f(op)
	}
	for _, w := range ws {
		if err := w.records(func(p []byte) error { return decodeOps(p, &s.decoded, g) }); err != nil {
			return fmt.Errorf("logged record: %w", err)
		}
	}
	return nil
}

// applySorted applies ops, each on a key of its own (what survives
// coalescing between two end-session ops), in key order, bucket by
// bucket, and the message writes they cause in sequence order after
// them. A bbolt node grows without splitting until its transaction
// commits, and inserting into the middle of it moves everything after
// the insertion point: keys in order make every insert land at the end of
// what this transaction added, so a checkpoint of many entries costs
// n log n, not n squared. Ops on different keys commute: an entry's
// message is written while any entry holds it, whatever their order.
func (s *Store) applySorted(b *txBuckets, ops []rawOp) error {
	slices.SortFunc(ops, compareOps)
	s.msgDefer, s.msgWrites = true, s.msgWrites[:0]
	for i := range ops {
		if i%checkpointYield == checkpointYield-1 {
			runtime.Gosched()
		}
		if err := s.applyRaw(b, &ops[i]); err != nil {
			s.msgDefer = false
			return fmt.Errorf("logged %s op (session %d): %w", opName(ops[i].kind), ops[i].sid, err)
		}
	}
	s.msgDefer = false
	ws := s.msgWrites
	// The last write to a seq is the one that counts.
	slices.SortStableFunc(ws, func(a, b msgWrite) int { return cmp.Compare(a.seq, b.seq) })
	var key [8]byte
	for i, w := range ws {
		if i+1 < len(ws) && ws[i+1].seq == w.seq {
			continue
		}
		if err := s.putMessage(b, appendU64(key[:0], w.seq), w.seq, w.val); err != nil {
			return fmt.Errorf("message %d: %w", w.seq, err)
		}
	}
	clear(ws)
	s.msgWrites = ws[:0]
	return nil
}

// compareOps orders ops by bucket, then key.
func compareOps(a, b rawOp) int {
	ca, cb := opClass(a.kind), opClass(b.kind)
	if ca != cb {
		return cmp.Compare(ca, cb)
	}
	switch ca {
	case classEntry:
		if c := cmp.Compare(a.sid, b.sid); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	case classRetained:
		return bytes.Compare(a.key, b.key)
	case classKeyed:
		return bytes.Compare(a.key, b.key)
	}
	return cmp.Compare(a.sid, b.sid)
}

// groupPool recycles the groups of commitLog (the syncer puts them back
// once their callers are told): one per log record.
var groupPool = sync.Pool{New: func() any { return new(group) }}

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
	return s.applyOps(tx, r.ops, r.kv)
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

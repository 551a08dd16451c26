package boltstore

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Errors Open returns (wrapped, with the file's name and what to do).
var (
	// ErrCorrupt: the file is damaged (truncated, or a page or record that
	// does not decode).
	ErrCorrupt = errors.New("store file is damaged")
	// ErrNewerFormat: the file was written by a newer gannet, in a format
	// version this one does not know.
	ErrNewerFormat = errors.New("store file has a newer format")
	// ErrForeign: the file is not a gannet core store (another program's
	// file, or not a bbolt file at all).
	ErrForeign = errors.New("not a gannet core store")
	// ErrLocked: another process has the file open.
	ErrLocked = errors.New("store file is in use by another process")
)

// What the operator should do, per error.
const (
	adviceCorrupt = "restore it from a backup, or move it (and its .wal.* files) aside to start with an empty store (everything in it is lost)"
	adviceNewer   = "upgrade gannet, or restore a backup taken by this version"
	adviceForeign = "check the store path in the configuration, or move the file aside"
	adviceLocked  = "stop the other gannet using it, or give this one another store path"
)

// Open opens the store file at path, creating it (and its directory) if it
// does not exist, checks that it is a readable gannet store of a known
// format version, and starts the committer. A damaged, foreign or newer
// file is refused with an error wrapping ErrCorrupt, ErrForeign or
// ErrNewerFormat that names the file and says what to do; Open never
// starts empty in place of a file it cannot read. A bbolt file of another
// user's is taken over in place only when Options.Adopt accepts it.
func Open(path string, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("boltstore: create the directory of %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return nil, openError(path, ErrForeign, "not a regular file", adviceForeign)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	fresh := err != nil || fi.Size() == 0

	s := &Store{
		path:      path,
		opts:      opts,
		reqs:      make(chan *request, opts.MaxPending),
		exited:    make(chan struct{}),
		syncq:     make(chan *group, 64),
		syncerEnd: make(chan struct{}),
		syncIdle:  make(chan struct{}, 1),
		ckptDone:  make(chan error, 1),
		refs:      refCounts{base: make(map[uint64]uint32), delta: make(map[uint64]int32)},
	}
	s.enc.now = opts.Now
	if !fresh {
		// Check the file read-only before bbolt opens it for writing:
		// that open walks every page to rebuild the free list and
		// panics, on a goroutine of its own where nothing can recover,
		// at some of the damage this check reports as an error.
		if err := s.check(); err != nil {
			return nil, err
		}
	}
	var db *bbolt.DB
	err = protect(func() error {
		var err error
		db, err = bbolt.Open(path, 0o600, s.boltOptions(false))
		return err
	})
	if err != nil {
		return nil, s.classify(err)
	}
	s.db = db
	if fresh || s.needInit {
		s.logID = newLogID()
		if err := db.Update(func(tx *bbolt.Tx) error { return initFile(tx, s.logID) }); err != nil {
			db.Close()
			return nil, fmt.Errorf("boltstore: initialise %s: %w", path, err)
		}
	} else if s.version < FormatVersion || s.logID == 0 {
		// A version 1 file: no log yet. It becomes version 2 with a log id.
		s.logID = newLogID()
		err := db.Update(func(tx *bbolt.Tx) error {
			m := tx.Bucket(bucketMeta)
			if err := m.Put(keyLogID, appendU64(nil, s.logID)); err != nil {
				return err
			}
			return m.Put(keyVersion, binary.BigEndian.AppendUint32(nil, FormatVersion))
		})
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("boltstore: upgrade %s to format version %d: %w", path, FormatVersion, err)
		}
	}
	if err := s.openLog(); err != nil {
		for _, sg := range s.segs {
			if sg != nil {
				sg.f.Close()
			}
		}
		db.Close()
		return nil, err
	}
	go s.syncer() // exits when Close closes syncq; Close waits on syncerEnd
	go s.run()    // exits when Close closes reqs; Close waits on exited
	return s, nil
}

// newLogID returns a random store id for the log segments.
func newLogID() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:])
		if id := binary.BigEndian.Uint64(b[:]); id != 0 {
			return id
		}
	}
}

// openLog opens both log segments, applies their records that the file
// does not hold yet (one transaction), and starts a new lap in segment 0.
func (s *Store) openLog() error {
	sync := s.opts.Sync != SyncNever
	var recs [2][]logRecord
	for i := range s.segs {
		sg, r, err := openSegment(segmentName(s.path, i), s.logID, sync, int64(s.opts.CheckpointBytes/4))
		if err != nil {
			return err
		}
		s.segs[i], recs[i] = sg, r
	}
	todo, err := replayable(s.applied, recs[0], recs[1])
	if err != nil {
		return openError(s.path+".wal.*", fmt.Errorf("%w: %w", ErrCorrupt, ErrLogCorrupt), err.Error(), adviceLog)
	}
	if len(todo) > 0 {
		var w window
		for _, r := range todo {
			w.add(r.index, r.payload)
		}
		if err := s.applyWindows(nil, []*window{&w}); err != nil {
			if errors.Is(err, errRecord) {
				return openError(s.path+".wal.*", fmt.Errorf("%w: %w", ErrCorrupt, ErrLogCorrupt), err.Error(), adviceLog)
			}
			return fmt.Errorf("boltstore: open %s: apply %d log records: %w", s.path, len(todo), err)
		}
		s.stats.replayed.Add(uint64(len(todo)))
	}
	s.nextIndex = s.applied + 1
	for _, sg := range s.segs {
		sg.rewind()
	}
	s.active = 0
	s.lastCkpt = time.Now()
	return nil
}

func (s *Store) boltOptions(readOnly bool) *bbolt.Options {
	return &bbolt.Options{
		Timeout:         s.opts.LockTimeout,
		NoFreelistSync:  true,
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: s.opts.InitialMmapSize,
		NoSync:          s.opts.Sync == SyncNever,
		ReadOnly:        readOnly,
	}
}

// openError builds Open's error: the file, the kind, the detail and the
// advice.
func openError(path string, kind error, detail, advice string) error {
	return fmt.Errorf("boltstore: open %s: %w (%s): %s", path, kind, detail, advice)
}

// classify turns an error from bbolt.Open into Open's error.
func (s *Store) classify(err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return openError(s.path, ErrLocked, err.Error(), adviceLocked)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch):
		return openError(s.path, ErrForeign, "not a bbolt file, or both its meta pages are damaged: "+err.Error(), adviceForeign)
	case errors.Is(err, berrors.ErrChecksum), errors.Is(err, errPanic):
		return openError(s.path, ErrCorrupt, err.Error(), adviceCorrupt)
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("boltstore: open %s: %w", s.path, err)
	}
	// bbolt's other refusals are about the file's shape ("file size too
	// small", an unreadable meta page).
	return openError(s.path, ErrCorrupt, err.Error(), adviceCorrupt)
}

// errPanic marks a panic recovered from bbolt.
var errPanic = errors.New("bbolt panicked")

// protect runs f, turning a panic, or a memory fault on a mapped page that
// is not in the file, into an error.
func protect(f func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errPanic, p)
		}
	}()
	return f()
}

// initFile creates the core's buckets and the meta record in a new file.
func initFile(tx *bbolt.Tx, logID uint64) error {
	for _, name := range coreBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	m := tx.Bucket(bucketMeta)
	if err := m.Put(keyMagic, []byte(magic)); err != nil {
		return err
	}
	if err := m.Put(keyLogID, appendU64(nil, logID)); err != nil {
		return err
	}
	return m.Put(keyVersion, binary.BigEndian.AppendUint32(nil, FormatVersion))
}

// check opens the file read-only and reads all of it: the file is at least
// as long as its pages, every page of every bucket is readable and keys
// are in order, the meta record is ours with a known version and the
// core's records have the right shape. It also counts the references to
// each message.
func (s *Store) check() error {
	var db *bbolt.DB
	err := protect(func() error {
		var err error
		db, err = bbolt.Open(s.path, 0o600, s.boltOptions(true))
		return err
	})
	if err != nil {
		return s.classify(err)
	}
	defer db.Close()
	return protectView(db, func(tx *bbolt.Tx) error {
		fi, err := os.Stat(s.path)
		if err != nil {
			return fmt.Errorf("boltstore: open %s: %w", s.path, err)
		}
		if fi.Size() < tx.Size() {
			return openError(s.path, ErrCorrupt, fmt.Sprintf("truncated: %d bytes of %d", fi.Size(), tx.Size()), adviceCorrupt)
		}
		if err := s.checkMeta(tx); err != nil || s.needInit && !s.adopting {
			return err
		}
		f, err := os.Open(s.path)
		if err != nil {
			return fmt.Errorf("boltstore: open %s: %w", s.path, err)
		}
		defer f.Close()
		pageSize := db.Info().PageSize
		if err := verifyPages(f, pageSize, uint64(tx.Size())/uint64(pageSize), uint64(tx.ID())); err != nil {
			return openError(s.path, ErrCorrupt, err.Error(), adviceCorrupt)
		}
		if err := tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			if err := walk(b); err != nil {
				return fmt.Errorf("bucket %q: %w", name, err)
			}
			return nil
		}); err != nil {
			return openError(s.path, ErrCorrupt, err.Error(), adviceCorrupt)
		}
		if s.adopting {
			return nil // no core buckets yet: no messages to count
		}
		if err := s.countRefs(tx); err != nil {
			return openError(s.path, ErrCorrupt, err.Error(), adviceCorrupt)
		}
		return nil
	}, func(err error) error { return openError(s.path, ErrCorrupt, err.Error(), adviceCorrupt) })
}

// protectView runs fn in a read transaction of db under protect; a panic
// becomes onPanic(err).
func protectView(db *bbolt.DB, fn func(*bbolt.Tx) error, onPanic func(error) error) error {
	var ferr error
	err := protect(func() error {
		return db.View(func(tx *bbolt.Tx) error {
			ferr = fn(tx)
			return ferr
		})
	})
	if err != nil && errors.Is(err, errPanic) {
		return onPanic(err)
	}
	return err
}

// checkMeta checks the meta bucket: ours, and a version we know.
func (s *Store) checkMeta(tx *bbolt.Tx) error {
	m := tx.Bucket(bucketMeta)
	if m == nil {
		var names []string
		_ = tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
			if len(names) < 5 {
				names = append(names, fmt.Sprintf("%q", name))
			}
			return nil
		})
		if len(names) == 0 {
			// An empty bbolt file: a first start that stopped before
			// initialising it.
			s.needInit = true
			return nil
		}
		if s.opts.Adopt != nil {
			if err := s.opts.Adopt(tx); err != nil {
				return openError(s.path, ErrForeign, fmt.Sprintf("a bbolt file without %q that cannot be adopted: %v", bucketMeta, err), adviceForeign)
			}
			s.needInit, s.adopting = true, true
			return nil
		}
		return openError(s.path, ErrForeign, fmt.Sprintf("a bbolt file without %q; its buckets include %v", bucketMeta, names), adviceForeign)
	}
	if got := m.Get(keyMagic); string(got) != magic {
		return openError(s.path, ErrForeign, fmt.Sprintf("magic %q, want %q", got, magic), adviceForeign)
	}
	v := m.Get(keyVersion)
	if len(v) != 4 {
		return openError(s.path, ErrCorrupt, fmt.Sprintf("format version record %x", v), adviceCorrupt)
	}
	switch ver := binary.BigEndian.Uint32(v); {
	case ver > FormatVersion:
		return openError(s.path, ErrNewerFormat, fmt.Sprintf("format version %d; this gannet reads up to %d", ver, FormatVersion), adviceNewer)
	case ver < 1:
		return openError(s.path, ErrCorrupt, fmt.Sprintf("format version %d", ver), adviceCorrupt)
	default:
		s.version = ver
	}
	for _, k := range []struct {
		key []byte
		to  *uint64
	}{{keyLogID, &s.logID}, {keyLog, &s.applied}} {
		switch v := m.Get(k.key); len(v) {
		case 0:
		case 8:
			*k.to = binary.BigEndian.Uint64(v)
		default:
			return openError(s.path, ErrCorrupt, fmt.Sprintf("%s record %x", k.key, v), adviceCorrupt)
		}
	}
	switch v := m.Get(keySeq); len(v) {
	case 0:
	case 8:
		s.seqHigh.Store(binary.BigEndian.Uint64(v))
	default:
		return openError(s.path, ErrCorrupt, fmt.Sprintf("seq record %x", v), adviceCorrupt)
	}
	for _, name := range coreBuckets {
		if tx.Bucket(name) == nil {
			return openError(s.path, ErrCorrupt, fmt.Sprintf("bucket %q is missing", name), adviceCorrupt)
		}
	}
	return nil
}

// walk reads every key of b and of the buckets inside it, touching every
// page, and checks that keys increase.
func walk(b *bbolt.Bucket) error {
	var prev []byte
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return fmt.Errorf("keys out of order: %x after %x", k, prev)
		}
		prev = append(prev[:0], k...)
		if v == nil {
			if sub := b.Bucket(k); sub != nil {
				if err := walk(sub); err != nil {
					return fmt.Errorf("bucket %q: %w", k, err)
				}
			}
		}
	}
	return nil
}

// countRefs counts, for each message, the entries that refer to it.
func (s *Store) countRefs(tx *bbolt.Tx) error {
	c := tx.Bucket(bucketEntries).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 16 || len(v) < 2 {
			return fmt.Errorf("entry %x: malformed", k)
		}
		if entryHasMessage(v) {
			s.refs.base[seqOfKey(k)]++
		}
	}
	return nil
}

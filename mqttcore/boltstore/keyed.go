package boltstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"

	"go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// Keyed ops: plain puts and deletes of keys in buckets outside the core's,
// for other users of the store file (the bridge's queue). They are logged
// in the same group record, with the same fdatasync, as the core's ops,
// applied to the bbolt file at checkpoints (coalesced: a put followed by a
// delete of its key before the checkpoint never reaches the file) and
// replayed at Open. Until its checkpoint, a keyed op is served to Get from
// an in-memory overlay of the logged records.
//
// Log encoding (log format version 2):
//
//	keyed-put     n, n bucket names, key, value
//	keyed-delete  n, n bucket names, key
//
// n is a uvarint; names, key and value a uvarint length and the bytes. The
// bytes from n to the end of the key name the key (kvkey below).
const (
	opKeyedPut    mqttcore.OpKind = 0x40
	opKeyedDelete mqttcore.OpKind = 0x41
)

// maxKeyedDepth bounds the nesting of a keyed op's bucket path.
const maxKeyedDepth = 8

// KeyedOp is one keyed write for Log: a put of Value under Key in the
// bucket at Bucket (a path of nested bucket names, the first at the top
// level of the file; created when a put needs them), or, with Delete, the
// deletion of Key (nothing when it is absent). Bucket[0] must not start
// with ReservedPrefix. Buckets written by keyed ops are split at 90 %
// fill, as the core's sequence-keyed buckets are (keys that increase, like
// a queue's, pack best).
type KeyedOp struct {
	Bucket     [][]byte
	Key, Value []byte
	Delete     bool
}

// Log queues keyed ops, committed like Commit's ops: in one group record
// with the calls around it, in call order with Commit and Update calls;
// done is called once the record is synced (nil) or failed (an error
// wrapping mqttcore.ErrStoreFailed), on the committer's goroutine: it must
// not block or call the store. An op the file could not hold (a bucket
// name or key empty or longer than bbolt's key limit, a value longer than
// its value limit, a reserved bucket) fails this call alone. ops and the
// slices in them must not change until done is called. The changes reach
// the bbolt file at a later checkpoint; Get sees them by the time done is
// called (from the moment their record is written, which may be before its
// sync: a caller that must act only on what is durable waits for done),
// View only after that checkpoint.
func (s *Store) Log(ops []KeyedOp, done func(error)) {
	r := requestPool.Get().(*request)
	r.kv, r.done = ops, done
	s.submit(r)
}

// Get reads keys of the bucket at path as the store has them, logged
// changes included: for each key (in order), fn is called with i, its
// index in keys, and its value, nil when it is absent (or deleted). The
// value is valid only during the call. It reads the overlay of logged,
// not checkpointed keyed ops first and the bbolt file (one read
// transaction) for the keys the overlay does not hold; a key's value is
// whatever the last Log call whose done has been called left, or a later
// one whose record is written and not yet synced (Log).
func (s *Store) Get(path [][]byte, keys [][]byte, fn func(i int, val []byte)) error {
	if len(keys) == 0 {
		return nil
	}
	var miss []int
	kb := appendKVPath(make([]byte, 0, 64), path)
	n := len(kb)
	s.overlay.mu.RLock()
	for i, k := range keys {
		kb = appendBytes(kb[:n], k)
		if e, ok := s.overlay.m[string(kb)]; ok {
			fn(i, e.val) // nil for a delete
			continue
		}
		miss = append(miss, i)
	}
	s.overlay.mu.RUnlock()
	if len(miss) == 0 {
		return nil
	}
	// The overlay is read first: a key it no longer holds was removed
	// after its checkpoint committed, so this transaction sees it.
	tx, err := s.db.Begin(false)
	if err != nil {
		return fmt.Errorf("boltstore: read %s: %w", s.path, err)
	}
	defer tx.Rollback()
	var c seqCursor // one for all the keys: Bucket.Get makes one per key
	if b := lookupBucket(tx, path); b != nil {
		c.c = b.Cursor()
	}
	for _, i := range miss {
		var v []byte
		if c.c != nil {
			_, v = c.seek(keys[i])
		}
		fn(i, v)
	}
	return nil
}

// seqCursor finds keys with one bbolt cursor, stepping to the next key
// instead of searching from the root when the keys asked for follow each
// other (a queue's, read or deleted in order): a search visits a page per
// level of the tree, and bbolt allocates on each visit.
type seqCursor struct {
	c    *bbolt.Cursor
	k, v []byte // where c is, when at (k nil: past the last key)
	at   bool   // c is positioned and its bucket unchanged since
}

// seek moves to key and reports whether the bucket holds it, and its
// value (nil for a nested bucket, as Bucket.Get gives).
func (sc *seqCursor) seek(key []byte) (bool, []byte) {
	if sc.at && sc.k != nil {
		switch d := bytes.Compare(key, sc.k); {
		case d == 0:
			return true, sc.v
		case d > 0:
			sc.k, sc.v = sc.c.Next()
			if sc.k == nil {
				return false, nil // beyond the last key
			}
			switch d := bytes.Compare(key, sc.k); {
			case d == 0:
				return true, sc.v
			case d < 0:
				return false, nil // between two keys
			}
		}
	}
	sc.k, sc.v = sc.c.Seek(key)
	sc.at = true
	if !bytes.Equal(sc.k, key) {
		return false, nil
	}
	return true, sc.v
}

// lookupBucket returns the bucket at path in tx, or nil.
func lookupBucket(tx *bbolt.Tx, path [][]byte) *bbolt.Bucket {
	if len(path) == 0 {
		return nil
	}
	b := tx.Bucket(path[0])
	for _, name := range path[1:] {
		if b == nil {
			return nil
		}
		b = b.Bucket(name)
	}
	return b
}

// appendKVPath appends the encoding of a bucket path: its length, then
// each name.
func appendKVPath(b []byte, path [][]byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(path)))
	for _, name := range path {
		b = appendBytes(b, name)
	}
	return b
}

// checkKeyed reports why op cannot be applied to the file.
func checkKeyed(op *KeyedOp) error {
	if len(op.Bucket) == 0 || len(op.Bucket) > maxKeyedDepth {
		return fmt.Errorf("bucket path of %d names: want 1 to %d", len(op.Bucket), maxKeyedDepth)
	}
	if strings.HasPrefix(string(op.Bucket[0]), ReservedPrefix) {
		return fmt.Errorf("bucket %q is the core's", op.Bucket[0])
	}
	for _, name := range op.Bucket {
		if len(name) == 0 || len(name) > bbolt.MaxKeySize {
			return fmt.Errorf("bucket name of %d bytes: want 1 to %d", len(name), bbolt.MaxKeySize)
		}
	}
	if len(op.Key) == 0 || len(op.Key) > bbolt.MaxKeySize {
		return fmt.Errorf("key of %d bytes: want 1 to %d", len(op.Key), bbolt.MaxKeySize)
	}
	if !op.Delete && len(op.Value) > bbolt.MaxValueSize {
		return fmt.Errorf("value of %d bytes: longer than the store's limit of %d", len(op.Value), bbolt.MaxValueSize)
	}
	return nil
}

// kvPending is a keyed op of the record being encoded, placed in the
// overlay once the record is written: where its key and value are in the
// payload.
type kvPending struct {
	keyAt, keyEnd int
	valAt, valEnd int // valAt < 0: a delete
}

// appendKeyed appends the encoding of ops to b, noting each in *pend
// (offsets in b). On an op that cannot be applied it returns b and *pend
// unchanged and the error.
func appendKeyed(b []byte, ops []KeyedOp, pend *[]kvPending) ([]byte, error) {
	start, np := len(b), len(*pend)
	for i := range ops {
		op := &ops[i]
		if err := checkKeyed(op); err != nil {
			*pend = (*pend)[:np]
			return b[:start], fmt.Errorf("keyed op %d of %d: %w", i+1, len(ops), err)
		}
		kind := opKeyedPut
		if op.Delete {
			kind = opKeyedDelete
		}
		b = append(b, byte(kind))
		p := kvPending{keyAt: len(b), valAt: -1}
		b = appendBytes(appendKVPath(b, op.Bucket), op.Key)
		p.keyEnd = len(b)
		if !op.Delete {
			b = binary.AppendUvarint(b, uint64(len(op.Value)))
			p.valAt = len(b)
			b = append(b, op.Value...)
			p.valEnd = len(b)
		}
		*pend = append(*pend, p)
	}
	return b, nil
}

// decodeKeyed decodes the fields of a keyed op after its kind byte.
func decodeKeyed(r *reader, op *rawOp) {
	at := r.b
	n := r.uvarint()
	if r.bad || n == 0 || n > maxKeyedDepth {
		r.bad = true
		return
	}
	for range n {
		if name := r.raw(); len(name) == 0 || len(name) > bbolt.MaxKeySize {
			r.bad = true
			return
		}
	}
	if k := r.raw(); r.bad || len(k) == 0 || len(k) > bbolt.MaxKeySize {
		r.bad = true
		return
	}
	op.key = at[:len(at)-len(r.b)]
	if op.kind == opKeyedPut {
		op.val = r.raw()
	}
}

// splitKVKey returns the encoded bucket path of a kvkey and the key.
func splitKVKey(kvkey []byte) (path, key []byte) {
	r := reader{b: kvkey}
	n := r.uvarint()
	for range n {
		r.raw()
	}
	path = kvkey[:len(kvkey)-len(r.b)]
	return path, r.raw()
}

// keyedBucket resolves (creating, for a put) the bucket a keyed op names;
// nil, without error, for a delete in a bucket that does not exist. The
// last one resolved is cached for the transaction (kvCache), a missing one
// too (for deletes: a run of them in a bucket never created costs one
// lookup, not one each).
func (s *Store) keyedBucket(tx *bbolt.Tx, path []byte, create bool) (*bbolt.Bucket, error) {
	c := &s.kvCache
	if c.tx == tx && (c.b != nil || !create) && bytes.Equal(c.path, path) {
		return c.b, nil
	}
	r := reader{b: path}
	n := int(r.uvarint())
	var b *bbolt.Bucket
	for i := range n {
		name := r.raw()
		if i == 0 && strings.HasPrefix(string(name), ReservedPrefix) {
			return nil, fmt.Errorf("keyed op in the core's bucket %q", name)
		}
		var err error
		switch {
		case create && i == 0:
			b, err = tx.CreateBucketIfNotExists(name)
		case create:
			b, err = b.CreateBucketIfNotExists(name)
		case i == 0:
			b = tx.Bucket(name)
		default:
			b = b.Bucket(name)
		}
		if err != nil {
			return nil, fmt.Errorf("bucket %q: %w", name, err)
		}
		if b == nil {
			break
		}
	}
	if b != nil {
		// Keys written in increasing order (a queue's sequence numbers)
		// pack best; the checkpoint applies each bucket's keys in order.
		b.FillPercent = seqFill
	}
	c.tx, c.b, c.path, c.cur = tx, b, append(c.path[:0], path...), seqCursor{}
	return b, nil
}

// kvCache is the bucket of the last keyed op applied in a transaction,
// and a cursor on it for deletes.
type kvCache struct {
	tx   *bbolt.Tx
	b    *bbolt.Bucket
	path []byte
	cur  seqCursor // made by the first delete
}

// applyKeyed applies a decoded keyed op. Its key and value alias a buffer
// that stays valid until the transaction ends.
func (s *Store) applyKeyed(tx *bbolt.Tx, op *rawOp) error {
	path, key := splitKVKey(op.key)
	b, err := s.keyedBucket(tx, path, op.kind == opKeyedPut)
	if err != nil {
		return err
	}
	if op.kind == opKeyedDelete {
		if b == nil {
			return nil
		}
		// Through the cached cursor: Bucket.Delete makes a cursor per
		// call, and most keyed deletes (the bridge's queue and
		// in-flight records) find a key put and deleted within one
		// checkpoint, which never reached the file.
		c := &s.kvCache.cur
		if c.c == nil {
			c.c = b.Cursor()
		}
		if found, _ := c.seek(key); !found {
			return nil
		}
		c.at = false // a cursor must be placed again after a change
		return c.c.Delete()
	}
	s.kvCache.cur.at = false
	return b.Put(key, op.val)
}

// overlay holds the keyed ops logged and not yet applied to the bbolt
// file: the last one of each key, by its kvkey. Keys and values alias the
// log windows' buffers, which are not written over until the records are
// in the file and their keys have left the overlay (window.reset): an
// entry's key is the kvkey of a record in the same window as the record
// that wrote its entry (add replaces the key when the entry moves to
// another window), so the key stays valid while the entry is held. The
// committer adds, whoever checkpoints removes, Get reads.
type overlay struct {
	mu   sync.RWMutex
	m    map[string]overlayEntry
	peak int // the most keys m held since it was made
}

// maxKeptOverlay is the most keys an emptied overlay map may have held
// and still be kept for reuse (cleared, not dropped): a map regrown from
// nothing after every checkpoint was garbage at the rate of the bridge's
// appends.
const maxKeptOverlay = 1 << 16

type overlayEntry struct {
	val []byte // nil: deleted
	idx uint64 // the log record that wrote it
}

// add notes the keyed ops of the record idx, whose payload is p, in the
// window whose first record is first.
func (o *overlay) add(idx uint64, p []byte, pend []kvPending, first uint64) {
	if len(pend) == 0 {
		return
	}
	o.mu.Lock()
	if o.m == nil {
		o.m = make(map[string]overlayEntry)
	}
	for _, k := range pend {
		e := overlayEntry{idx: idx}
		if k.valAt >= 0 {
			e.val = p[k.valAt:k.valEnd:k.valEnd]
			if e.val == nil {
				e.val = []byte{}
			}
		}
		key := noteKey(p[k.keyAt:k.keyEnd])
		if old, ok := o.m[key]; ok && old.idx < first {
			// The key held aliases a record of the other window,
			// which a checkpoint may free while this entry stays:
			// hold the new record's bytes instead. (Within one
			// window the old key lives as long as the entry. Go's
			// maps also replace a string key on assignment today;
			// this does not rely on it.)
			delete(o.m, key)
		}
		o.m[key] = e
	}
	o.peak = max(o.peak, len(o.m))
	o.mu.Unlock()
}

// applied drops the keys whose last op is in a record the file now holds
// (index up to idx).
func (o *overlay) applied(idx uint64) {
	o.mu.Lock()
	for k, e := range o.m {
		if e.idx <= idx {
			delete(o.m, k)
		}
	}
	if len(o.m) == 0 && o.peak > maxKeptOverlay {
		o.m, o.peak = nil, 0 // do not keep a big map's buckets
	}
	o.mu.Unlock()
}

// len returns the number of keys held.
func (o *overlay) len() int {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return len(o.m)
}

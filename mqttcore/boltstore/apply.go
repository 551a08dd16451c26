package boltstore

import (
	"bytes"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// txBuckets are the core's buckets in one write transaction.
type txBuckets struct {
	tx                                              *bbolt.Tx
	sessions, entries, messages, frontEnd, retained *bbolt.Bucket
}

// coreBucketsOf returns the core's buckets in tx.
func coreBucketsOf(tx *bbolt.Tx) (txBuckets, error) {
	b := txBuckets{
		tx:       tx,
		sessions: tx.Bucket(bucketSessions),
		entries:  tx.Bucket(bucketEntries),
		messages: tx.Bucket(bucketMessages),
		frontEnd: tx.Bucket(bucketFrontEnd),
		retained: tx.Bucket(bucketRetained),
	}
	if b.sessions == nil || b.entries == nil || b.messages == nil || b.frontEnd == nil || b.retained == nil {
		return b, errors.New("a core bucket is missing")
	}
	b.sessions.FillPercent = seqFill
	b.messages.FillPercent = seqFill
	b.frontEnd.FillPercent = seqFill
	// Entries are keyed by session first: inserts land all over the
	// bucket, so bbolt's default fill suits them.
	return b, nil
}

// applyOps applies one Commit's ops or one Log call's keyed ops in tx (an
// Update batch's): encoded as they would be logged, then applied as a
// logged record is. Applying them again in a fresh transaction (after
// another call in the batch failed) has the same effect: every op replaces
// or deletes a key, and reference counts are changed only when an entry
// gains or loses its message.
func (s *Store) applyOps(tx *bbolt.Tx, ops []mqttcore.Op, kv []KeyedOp) error {
	if len(ops) == 0 && len(kv) == 0 {
		return nil
	}
	enc := opEncoder{now: s.opts.Now}
	p, err := enc.appendOps(s.scratch[:0], ops)
	if err != nil {
		return err
	}
	var pend []kvPending
	if p, err = appendKeyed(p, kv, &pend); err != nil {
		return err
	}
	s.scratch = p[:0]
	p = s.arena.copy(p) // bbolt keeps the values until the transaction ends
	b, err := coreBucketsOf(tx)
	if err != nil {
		return err
	}
	i := 0
	var op rawOp
	return decodeOps(p, &op, func(op *rawOp) error {
		i++
		if err := s.applyRaw(&b, op); err != nil {
			return fmt.Errorf("op %d of %d (%s, session %d): %w", i, len(ops)+len(kv), opName(op.kind), op.sid, err)
		}
		return nil
	})
}

// applyRaw applies one decoded op. Its values alias a buffer that stays
// valid until the transaction ends; keys are copied into the arena.
func (s *Store) applyRaw(b *txBuckets, op *rawOp) error {
	if op.kind == opKeyedPut || op.kind == opKeyedDelete {
		// Before key below, which escapes (to bbolt): an allocation
		// per op the keyed ones do not need.
		return s.applyKeyed(b.tx, op)
	}
	var key [16]byte
	sid := appendU64(key[:0], op.sid)
	switch op.kind {
	case mqttcore.OpSession:
		return b.sessions.Put(s.arena.copy(sid), op.val)
	case mqttcore.OpEndSession:
		return s.endSession(b, op.sid)
	case mqttcore.OpEntry:
		return s.putEntry(b, op)
	case mqttcore.OpDropEntry:
		return s.dropEntry(b, appendEntryKey(key[:0], op.sid, op.seq), op.seq)
	case mqttcore.OpFrontEnd:
		if op.del {
			return b.frontEnd.Delete(sid)
		}
		return b.frontEnd.Put(s.arena.copy(sid), op.val)
	case mqttcore.OpRetain:
		return b.retained.Put(op.key, op.val)
	case mqttcore.OpUnretain:
		return b.retained.Delete(op.key)
	}
	return fmt.Errorf("unknown op kind %d", op.kind)
}

// putEntry writes an entry op, storing its message unless an entry holds
// it already.
func (s *Store) putEntry(b *txBuckets, op *rawOp) error {
	s.txSeq = max(s.txSeq, op.seq)
	var kb [16]byte
	key := appendEntryKey(kb[:0], op.sid, op.seq)
	had := entryHasMessage(b.entries.Get(key))
	has := op.msg != nil
	var mk [8]byte
	seqKey := appendU64(mk[:0], op.seq)
	switch {
	case has && !had:
		if s.refs.get(op.seq) <= 0 {
			if err := s.putMessage(b, seqKey, op.seq, op.msg); err != nil {
				return err
			}
		}
		s.refs.add(op.seq, 1)
	case had && !has:
		if err := s.unref(b, seqKey, op.seq); err != nil {
			return err
		}
	}
	return b.entries.Put(s.arena.copy(key), op.val)
}

// dropEntry deletes the entry at key, and its message when no other entry
// refers to it.
func (s *Store) dropEntry(b *txBuckets, key []byte, seq uint64) error {
	v := b.entries.Get(key)
	if v == nil {
		return nil
	}
	if entryHasMessage(v) {
		var mk [8]byte
		if err := s.unref(b, appendU64(mk[:0], seq), seq); err != nil {
			return err
		}
	}
	return b.entries.Delete(key)
}

// unref drops one reference to message seq, deleting it with the last.
func (s *Store) unref(b *txBuckets, seqKey []byte, seq uint64) error {
	s.refs.add(seq, -1)
	if s.refs.get(seq) > 0 {
		return nil
	}
	return s.putMessage(b, seqKey, seq, nil)
}

// msgWrite is a write to core.messages held back until the end of a run
// of sorted ops (applySorted): a put of val, or a delete when val is nil.
type msgWrite struct {
	seq uint64
	val []byte
}

// putMessage writes (val nil: deletes) message seq, or holds the write
// back while a run of sorted ops is applied.
func (s *Store) putMessage(b *txBuckets, seqKey []byte, seq uint64, val []byte) error {
	if s.msgDefer {
		s.msgWrites = append(s.msgWrites, msgWrite{seq: seq, val: val})
		return nil
	}
	if val == nil {
		return b.messages.Delete(seqKey)
	}
	return b.messages.Put(s.arena.copy(seqKey), val)
}

// endSession deletes session sid: its header, entries and front-end state.
func (s *Store) endSession(b *txBuckets, sid uint64) error {
	var pk [8]byte
	prefix := appendU64(pk[:0], sid)
	if err := b.sessions.Delete(prefix); err != nil {
		return err
	}
	if err := b.frontEnd.Delete(prefix); err != nil {
		return err
	}
	c := b.entries.Cursor()
	for {
		// Seek again after each delete: a bbolt cursor may skip the key
		// after one it deleted.
		k, _ := c.Seek(prefix)
		if k == nil || !bytes.HasPrefix(k, prefix) {
			return nil
		}
		var kb [16]byte
		key := append(kb[:0], k...)
		if len(key) != 16 {
			return fmt.Errorf("entry key %x: want 16 bytes", key)
		}
		if err := s.dropEntry(b, key, seqOfKey(key)); err != nil {
			return err
		}
	}
}

// seqOfKey returns the seq half of an entry key.
func seqOfKey(k []byte) uint64 {
	var seq uint64
	for _, c := range k[8:16] {
		seq = seq<<8 | uint64(c)
	}
	return seq
}

// putSeqHigh records the highest seq written, when this transaction
// raised it.
func (s *Store) putSeqHigh(tx *bbolt.Tx) error {
	if s.txSeq == s.seqHigh.Load() {
		return nil
	}
	m := tx.Bucket(bucketMeta)
	if m == nil {
		return errors.New("the meta bucket is missing")
	}
	return m.Put(keySeq, s.arena.copy(appendU64(nil, s.txSeq)))
}

package bridge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// Append queues a PUBLISH packet (copied) and returns once it is committed
// to disk (group commit: concurrent callers share one fsync). When the
// queue's byte bound would be exceeded it first drops the oldest QoS 0
// message, else the oldest message, as often as needed. A packet that
// alone exceeds the bound is refused with ErrTooLarge.
func (s *Store) Append(pkt []byte) error {
	data := make([]byte, 8+len(pkt))
	copy(data[8:], pkt)
	return s.append(data, true)
}

// append is appendAsync for callers that block: with wait it returns once
// the message is on disk; without, once it is in line for the next group
// commit (a crash before that loses it).
func (s *Store) append(data []byte, wait bool) error {
	if !wait {
		return s.appendAsync(data, false, nil)
	}
	ch := make(chan error, 1)
	if err := s.appendAsync(data, true, func(err error) { ch <- err }); err != nil {
		return err
	}
	return <-ch
}

// appendAsync queues data (8 bytes of room for the enqueue time, then a
// PUBLISH packet; data is kept, not copied) without waiting for the disk.
// It returns an error, and never calls done, for a message it refuses
// (not a PUBLISH, ErrTooLarge, ErrClosed). Otherwise done, if not nil, is
// called once: for a durable message (QoS 1/2: the publisher's
// acknowledgement waits for it) after the commit that holds the message,
// with nil, or with the error that kept it off disk, on the committer's
// goroutine, so it must not block; for a message that is not durable (QoS
// 0) before appendAsync returns, with nil, the message going to disk with
// the next commit. appendAsync itself blocks only while queue.max_pending
// writes are waiting for the disk (counted in WriteWaits).
func (s *Store) appendAsync(data []byte, durable bool, done func(error)) error {
	if len(data) < 8+2 || data[8]>>4 != 3 {
		return errors.New("bridge: enqueue: not a PUBLISH packet")
	}
	size := int64(len(data)) + 8
	if size > s.maxBytes {
		s.stats.tooLarge.Add(1)
		return fmt.Errorf("%w: %d bytes, queue.max_bytes is %d", ErrTooLarge, size, s.maxBytes)
	}
	now := s.now().UnixNano()
	binary.BigEndian.PutUint64(data, uint64(now))

	s.sendMu.Lock()
	if s.closed {
		s.sendMu.Unlock()
		return ErrClosed
	}
	s.mu.Lock()
	victims := s.expireLocked(now, nil)
	for s.bytes+size > s.maxBytes {
		v, ok := s.victimLocked()
		if !ok {
			break
		}
		victims = append(victims, v)
	}
	seq := s.nextSeq
	s.nextSeq++
	s.pushLocked(entry{seq: seq, at: now, size: size, qos: pubQoS(data[8]), state: pending})
	s.mu.Unlock()
	ops := make([]boltstore.KeyedOp, 0, len(victims)+1)
	for _, v := range victims {
		ops = append(ops, boltstore.KeyedOp{Bucket: s.qPath, Key: seqKey(v), Delete: true})
	}
	ops = append(ops, boltstore.KeyedOp{Bucket: s.qPath, Key: seqKey(seq), Value: data})
	err := s.logLocked(ops, func(err error) {
		s.committed(seq, err)
		if durable && done != nil {
			done(err)
		}
	})
	s.sendMu.Unlock()
	if err != nil {
		return err
	}
	if !durable && done != nil {
		done(nil)
	}
	return nil
}

// committed marks a pending entry live (or dead if its commit failed) and
// tells the sender when the head of the queue became sendable.
func (s *Store) committed(seq uint64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.findLocked(seq)
	if err == nil {
		s.stats.enqueued.Add(1)
	}
	if !ok || s.ents[i].state != pending {
		return // dropped meanwhile; its delete follows in a later batch
	}
	if err != nil {
		s.killLocked(i)
		return
	}
	s.ents[i].state = live
	if s.headLocked() != nil {
		s.notify()
	}
}

// setNotify sets the function called (under the index lock, so it must
// only signal) when a committed message is at the head of the queue.
func (s *Store) setNotify(f func()) {
	s.mu.Lock()
	s.notify = f
	s.mu.Unlock()
}

// pushLocked appends e to the index.
func (s *Store) pushLocked(e entry) {
	s.ents = append(s.ents, e)
	s.count++
	s.bytes += e.size
	if e.qos == 0 {
		s.q0++
	}
}

// findLocked finds seq in the index by binary search.
func (s *Store) findLocked(seq uint64) (int, bool) {
	i := s.head + sort.Search(len(s.ents)-s.head, func(i int) bool { return s.ents[s.head+i].seq >= seq })
	return i, i < len(s.ents) && s.ents[i].seq == seq
}

// killLocked marks entry i dead and trims dead entries off the head.
func (s *Store) killLocked(i int) {
	e := &s.ents[i]
	if e.state == dead {
		return
	}
	e.state = dead
	s.count--
	s.bytes -= e.size
	if e.qos == 0 {
		s.q0--
	}
	for s.head < len(s.ents) && s.ents[s.head].state == dead {
		s.head++
	}
	if s.head == len(s.ents) {
		s.ents, s.head, s.q0cur = s.ents[:0], 0, 0
	} else if s.head > 1024 && s.head > len(s.ents)/2 {
		n := copy(s.ents, s.ents[s.head:])
		s.ents = s.ents[:n]
		s.q0cur = max(0, s.q0cur-s.head)
		s.head = 0
	}
}

// headLocked returns the first entry that is not dead if it is committed,
// else nil.
func (s *Store) headLocked() *entry {
	for i := s.head; i < len(s.ents); i++ {
		switch s.ents[i].state {
		case live:
			return &s.ents[i]
		case pending:
			return nil
		}
	}
	return nil
}

// victimLocked drops the oldest QoS 0 message, else the oldest message,
// and returns its key. Messages the sender took are no longer in the index:
// one being sent is never dropped.
func (s *Store) victimLocked() (uint64, bool) {
	if s.q0 > 0 {
		for i := max(s.q0cur, s.head); i < len(s.ents); i++ {
			e := s.ents[i]
			if e.state != dead && e.qos == 0 {
				s.q0cur = i + 1
				s.killLocked(i)
				s.stats.droppedQoS0.Add(1)
				return e.seq, true
			}
		}
	}
	for i := s.head; i < len(s.ents); i++ {
		e := s.ents[i]
		if e.state != dead {
			s.killLocked(i)
			s.stats.droppedOldest.Add(1)
			return e.seq, true
		}
	}
	return 0, false
}

// expireLocked drops messages older than MaxAge from the head and appends
// their keys to keys.
func (s *Store) expireLocked(now int64, keys []uint64) []uint64 {
	limit := now - int64(s.maxAge)
	for i := s.head; i < len(s.ents); i++ {
		e := s.ents[i]
		if e.state == dead {
			continue
		}
		if e.at > limit {
			break
		}
		s.killLocked(i)
		s.stats.expired.Add(1)
		keys = append(keys, e.seq)
		i = s.head - 1 // killLocked may have moved the head
	}
	return keys
}

// deleteKeysLocked submits the deletion of queue keys without waiting;
// the caller holds sendMu.
func (s *Store) deleteKeysLocked(keys []uint64) {
	if len(keys) == 0 {
		return
	}
	ops := make([]boltstore.KeyedOp, len(keys))
	for i, k := range keys {
		ops[i] = boltstore.KeyedOp{Bucket: s.qPath, Key: seqKey(k), Delete: true}
	}
	_ = s.logLocked(ops, nil)
}

// Expire drops messages older than MaxAge now, as appends and the sender
// also do, so an idle queue's age bound holds during an outage.
func (s *Store) Expire() {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	keys := s.expireLocked(s.now().UnixNano(), nil)
	s.mu.Unlock()
	s.deleteKeysLocked(keys)
}

// taken is a message the sender took from the head of the queue.
type taken struct {
	seq uint64
	qos uint8
	rec []byte // 8 bytes of room, then the PUBLISH packet (a copy, the sender's to change)
}

// data is the PUBLISH packet.
func (t *taken) data() []byte { return t.rec[8:] }

// take takes up to n committed messages from the head of the queue, in
// order, appending them to out. They leave the in-memory index at once
// (the bounds no longer count them, nothing drops them); on disk they stay
// in the queue until the sender's hand-over write (moveAsync) commits, so
// a crash before it only sends them again.
func (s *Store) take(n int, out []taken) ([]taken, error) {
	s.sendMu.Lock()
	if s.closed {
		s.sendMu.Unlock()
		return out, ErrClosed
	}
	first := len(out)
	s.mu.Lock()
	keys := s.expireLocked(s.now().UnixNano(), nil)
	for i := s.head; i < len(s.ents) && len(out)-first < n; i++ {
		e := s.ents[i]
		if e.state == pending {
			break // order: nothing passes a message not yet on disk
		}
		if e.state == dead {
			continue
		}
		out = append(out, taken{seq: e.seq, qos: e.qos})
		s.killLocked(i)
		i = s.head - 1 // killLocked may have moved the head
		s.stats.sent.Add(1)
	}
	s.mu.Unlock()
	s.deleteKeysLocked(keys)
	s.sendMu.Unlock()
	if len(out) == first {
		return out, nil
	}
	// Read through the log's pending records (a LogBackend's Get): a
	// message appended since the last checkpoint comes from memory, the
	// others from the file, in one read transaction.
	var bad []uint64
	keyb := make([][]byte, len(out)-first)
	for i := range keyb {
		keyb[i] = seqKey(out[first+i].seq)
	}
	err := s.lb.Get(s.qPath, keyb, func(i int, v []byte) {
		t := &out[first+i]
		if len(v) < 10 || v[8]>>4 != 3 {
			bad = append(bad, t.seq)
			return
		}
		t.rec = make([]byte, len(v)) // room for the in-flight record's 8-byte order
		copy(t.rec[8:], v[8:])
	})
	j := first
	for i := first; i < len(out); i++ {
		if out[i].rec != nil {
			out[j] = out[i]
			j++
		}
	}
	out = out[:j]
	if len(bad) > 0 { // unreadable records: removed and counted
		s.stats.quarantined.Add(uint64(len(bad)))
		s.stats.sent.Add(-uint64(len(bad)))
		s.sendMu.Lock()
		if !s.closed {
			s.deleteKeysLocked(bad)
		}
		s.sendMu.Unlock()
	}
	return out, err
}

// flightRec is a packet recorded in flight in the client bucket: a QoS 1/2
// PUBLISH we sent, or the PUBREL that replaced it after PUBREC.
type flightRec struct {
	id  uint16
	rec []byte // 8 bytes for the put order, then the packet
}

// data is the packet.
func (r *flightRec) data() []byte { return r.rec[8:] }

// moveAsync records the hand-over of taken messages in one write: all
// leave the queue, and recs (the QoS 1/2 ones, with their packet ids)
// enter the client bucket. done runs after the commit (committer
// goroutine).
func (s *Store) moveAsync(ts []taken, recs []flightRec, done func(error)) error {
	keys := make([]uint64, len(ts))
	for i, t := range ts {
		keys[i] = t.seq
	}
	vals := make([][]byte, len(recs))
	ids := make([]uint16, len(recs))
	for i, r := range recs {
		binary.BigEndian.PutUint64(r.rec, s.order.Add(1))
		vals[i], ids[i] = r.rec, r.id
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.flying.Add(int64(len(recs)))
	ops := make([]boltstore.KeyedOp, 0, len(keys)+len(vals))
	for _, k := range keys {
		ops = append(ops, boltstore.KeyedOp{Bucket: s.qPath, Key: seqKey(k), Delete: true})
	}
	for i, v := range vals {
		ops = append(ops, boltstore.KeyedOp{Bucket: s.cPath, Key: idKey(ids[i]), Value: v})
	}
	return s.logLocked(ops, done)
}

// pubrelAsync replaces the client record of id (a QoS 2 PUBLISH the
// remote acknowledged with PUBREC) with its PUBREL. done runs after the
// commit (committer goroutine).
func (s *Store) pubrelAsync(id uint16, rel []byte, done func(error)) error {
	v := make([]byte, 8+len(rel))
	binary.BigEndian.PutUint64(v, s.order.Add(1))
	copy(v[8:], rel)
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return s.logLocked([]boltstore.KeyedOp{{Bucket: s.cPath, Key: idKey(id), Value: v}}, done)
}

// deleteFlightsAsync deletes the client records of ids (fully
// acknowledged messages) in one write. done runs after the commit
// (committer goroutine); ids must not change until then.
func (s *Store) deleteFlightsAsync(ids []uint16, done func(error)) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.flying.Add(-int64(len(ids)))
	ops := make([]boltstore.KeyedOp, len(ids))
	for i, id := range ids {
		ops[i] = boltstore.KeyedOp{Bucket: s.cPath, Key: idKey(id), Delete: true}
	}
	return s.logLocked(ops, done)
}

// inflight returns the client bucket's records in the order they were
// put (the order they must be sent again in).
func (s *Store) inflight() ([]flightRec, error) {
	if err := s.flush(); err != nil {
		return nil, err
	}
	var recs []flightRec
	err := s.be.View(func(tx *bolt.Tx) error {
		b := s.bucket(tx, bucketClient)
		for _, id := range sortedIDs(b) {
			v := b.Get(idKey(id))
			recs = append(recs, flightRec{id: id, rec: bytes.Clone(v)})
		}
		return nil
	})
	return recs, err
}

// requeue empties the client bucket, the remote broker having no session
// for us. Instead of dropping the PUBLISH packets it holds (sent, not
// acknowledged), as MQTT would have them dropped, it puts them back at the
// head of the queue in their order, without DUP: they are sent again as
// new messages, so nothing is lost (the remote may see them twice). PUBREL
// records are dropped (the remote had the message). It waits for the
// commit and returns how many messages went back.
func (s *Store) requeue() (int, error) {
	var back []entry
	w := &write{apply: func(tx *bolt.Tx) error {
		back = back[:0]
		b := s.bucket(tx, bucketClient)
		q := s.queueBucket(tx)
		ids := sortedIDs(b)
		now := s.now().UnixNano()
		seq := s.lowSeq
		for i := len(ids) - 1; i >= 0; i-- {
			v := b.Get(idKey(ids[i]))
			if len(v) < 10 || v[8]>>4 != 3 {
				continue
			}
			data := bytes.Clone(v)
			data[8] &^= 0x08 // not a duplicate on this session
			binary.BigEndian.PutUint64(data, uint64(now))
			seq--
			if err := q.Put(seqKey(seq), data); err != nil {
				return err
			}
			back = append(back, entry{seq: seq, at: now, size: int64(len(data)) + 8, qos: pubQoS(data[8]), state: live})
		}
		if err := s.parent(tx).DeleteBucket(bucketClient); err != nil {
			return err
		}
		_, err := s.parent(tx).CreateBucket(bucketClient)
		return err
	}}
	ch := make(chan error, 1)
	w.done = func(err error) { ch <- err }
	s.sendMu.Lock()
	err := s.submitLocked(w)
	s.sendMu.Unlock()
	if err != nil {
		return 0, err
	}
	if err := <-ch; err != nil {
		return 0, fmt.Errorf("bridge: requeue in-flight messages: %w", err)
	}
	s.flying.Store(0)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(back) > 0 {
		s.lowSeq = back[len(back)-1].seq
		ents := make([]entry, 0, len(back)+len(s.ents)-s.head)
		for i := len(back) - 1; i >= 0; i-- {
			ents = append(ents, back[i])
			if back[i].qos == 0 {
				s.q0++
			}
			s.count++
			s.bytes += back[i].size
		}
		ents = append(ents, s.ents[s.head:]...)
		s.ents, s.head, s.q0cur = ents, 0, 0
		s.stats.requeued.Add(uint64(len(back)))
		s.notify()
	}
	return len(back), nil
}

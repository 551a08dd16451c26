package bridge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// Append queues a PUBLISH packet (copied) and returns once it is committed
// to disk (group commit: concurrent callers share one fsync). When the
// queue's byte bound would be exceeded it first drops the oldest QoS 0
// message, else the oldest message, as often as needed. A packet that
// alone exceeds the bound is refused with ErrTooLarge.
func (s *Store) Append(pkt []byte) error {
	data := append(s.bufs.get(8+len(pkt)), 0, 0, 0, 0, 0, 0, 0, 0)
	data = append(data, pkt...)
	w := waiterPool.Get().(*waiter)
	if w.ch == nil {
		w.ch = make(chan error, 1)
		w.fn = func(err error) { w.ch <- err }
	}
	defer waiterPool.Put(w)
	if err := s.appendReq(data, true, w.fn, mqttcore.Hold{}, false, true); err != nil {
		return err
	}
	return <-w.ch
}

// waiter is Append's wait for its commit, pooled: a channel and the
// callback that sends to it.
type waiter struct {
	ch chan error
	fn func(error)
}

var waiterPool = sync.Pool{New: func() any { return new(waiter) }}

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
	return s.appendReq(data, durable, done, mqttcore.Hold{}, false, false)
}

// appendHeld is appendAsync for the core's outbound callback: hold is
// released (hold.Done) where appendAsync would call done, and data, taken
// from s.bufs (encodeQueued), goes back there once committed, so the
// caller must not use it after the call, unless it returns an error.
func (s *Store) appendHeld(data []byte, durable bool, hold mqttcore.Hold) error {
	return s.appendReq(data, durable, nil, hold, true, true)
}

// appendReq is appendAsync and appendHeld: done, or hold when held, is
// told; with recycle, data goes back to s.bufs after the commit.
func (s *Store) appendReq(data []byte, durable bool, done func(error), hold mqttcore.Hold, held, recycle bool) error {
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
	victims := s.expireLocked(now, s.victims[:0])
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
	r := s.newLogReq(len(victims) + 1)
	for _, v := range victims {
		r.del(s.qPath, r.key(v, false))
	}
	s.victims = victims[:0]
	r.put(s.qPath, r.key(seq, false), data)
	r.append, r.seq, r.durable = true, seq, durable
	r.done, r.hold, r.held = done, hold, held
	if recycle {
		r.data = data
	}
	err := s.submitLogLocked(r)
	s.sendMu.Unlock()
	if err != nil {
		return err
	}
	if !durable {
		// Told now; r (already back in the pool, perhaps) does not call
		// them again.
		if held {
			hold.Done(nil)
		}
		if done != nil {
			done(nil)
		}
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
	if len(s.ents) == cap(s.ents) && len(s.ents) >= 1024 {
		// Double: append grows a large slice by a quarter, and a queue
		// filling up (an outage, a restart's load) left a chain of five
		// times its index in garbage.
		s.ents = slices.Grow(s.ents, len(s.ents))
	}
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
	r := s.newLogReq(len(keys))
	for _, k := range keys {
		r.del(s.qPath, r.key(k, false))
	}
	_ = s.submitLogLocked(r)
}

// Expire drops messages older than MaxAge now, as appends and the sender
// also do, so an idle queue's age bound holds during an outage.
func (s *Store) Expire() {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	keys := s.expireLocked(s.now().UnixNano(), s.victims[:0])
	s.mu.Unlock()
	s.deleteKeysLocked(keys)
	s.victims = keys[:0]
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
//
// take is the sender's: its scratch (takeScratch) is guarded by takeMu,
// which only one goroutine at a time needs.
func (s *Store) take(n int, out []taken) ([]taken, error) {
	s.takeMu.Lock()
	defer s.takeMu.Unlock()
	s.sendMu.Lock()
	if s.closed {
		s.sendMu.Unlock()
		return out, ErrClosed
	}
	first := len(out)
	s.mu.Lock()
	keys := s.expireLocked(s.now().UnixNano(), s.victims[:0])
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
	s.victims = keys[:0]
	s.sendMu.Unlock()
	if len(out) == first {
		return out, nil
	}
	// Read through the log's pending records (a LogBackend's Get): a
	// message appended since the last checkpoint comes from memory, the
	// others from the file, in one read transaction.
	tk := &s.tk
	tk.out, tk.first, tk.bad = out, first, tk.bad[:0]
	tk.keys, tk.keyBuf = tk.keys[:0], slices.Grow(tk.keyBuf[:0], 8*(len(out)-first))
	for _, t := range out[first:] {
		k := len(tk.keyBuf)
		tk.keyBuf = binary.BigEndian.AppendUint64(tk.keyBuf, t.seq)
		tk.keys = append(tk.keys, tk.keyBuf[k:len(tk.keyBuf)])
	}
	err := s.lb.Get(s.qPath, tk.keys, tk.fn)
	out, bad := tk.out, tk.bad
	clear(tk.keys)
	tk.out = nil
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

// takeScratch is take's reusable state: the keys it reads, and the
// callback of the read (made once), which fills tk.out.
type takeScratch struct {
	out    []taken
	first  int
	bad    []uint64
	keys   [][]byte
	keyBuf []byte
	fn     func(i int, v []byte)
	bufs   *queueBufs // where the records come from (the outbox gives them back)
}

// got is the read's callback: message i of the keys read has value v
// (valid only during the call).
func (tk *takeScratch) got(i int, v []byte) {
	t := &tk.out[tk.first+i]
	if len(v) < 10 || v[8]>>4 != 3 {
		tk.bad = append(tk.bad, t.seq)
		return
	}
	t.rec = tk.bufs.get(len(v))[:len(v)] // room for the in-flight record's 8-byte order
	copy(t.rec[8:], v[8:])
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
	for _, r := range recs {
		binary.BigEndian.PutUint64(r.rec, s.order.Add(1))
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.closed {
		return ErrClosed
	}
	r := s.newLogReq(len(ts) + len(recs))
	for _, t := range ts {
		r.del(s.qPath, r.key(t.seq, false))
	}
	for _, f := range recs {
		r.put(s.cPath, r.key(uint64(f.id), true), f.rec)
	}
	r.done = done
	if err := s.submitLogLocked(r); err != nil {
		return err
	}
	// Counted once submitted: Stats, reading this before the pending
	// writes, never shows these in flight with their write not pending
	// yet.
	s.flying.Add(int64(len(recs)))
	return nil
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
	r := s.newLogReq(1)
	r.put(s.cPath, r.key(uint64(id), true), v)
	r.done = done
	return s.submitLogLocked(r)
}

// deleteFlightsAsync deletes the client records of ids (fully
// acknowledged messages) in one write. done runs after the commit
// (committer goroutine); ids is copied, the caller's again on return.
func (s *Store) deleteFlightsAsync(ids []uint16, done func(error)) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.flying.Add(-int64(len(ids)))
	r := s.newLogReq(len(ids))
	for _, id := range ids {
		r.del(s.cPath, r.key(uint64(id), true))
	}
	r.done = done
	return s.submitLogLocked(r)
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

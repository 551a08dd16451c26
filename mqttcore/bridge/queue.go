package bridge

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sort"

	"github.com/eclipse/paho.golang/autopaho/queue"
	bolt "go.etcd.io/bbolt"
)

// Queue returns the store's outbound queue, which implements autopaho's
// queue.Queue.
func (s *Store) Queue() *Queue { return (*Queue)(s) }

// Queue is the durable outbound queue of a Store, as autopaho's
// queue.Queue. Its entries are whole MQTT PUBLISH packets, in order.
type Queue Store

var _ queue.Queue = (*Queue)(nil)

func (q *Queue) store() *Store { return (*Store)(q) }

// Wait returns a channel that is closed when the queue holds a committed
// message (at once if it already does).
func (q *Queue) Wait() chan struct{} {
	s := q.store()
	c := make(chan struct{})
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.headLocked() != nil {
		close(c)
		return c
	}
	s.waiting = append(s.waiting, c)
	return c
}

// Enqueue appends the PUBLISH packet read from p and returns once it is
// committed to disk (group commit: concurrent callers share one fsync).
// When the queue's byte bound would be exceeded it first drops the oldest
// QoS 0 message, else the oldest message, as often as needed. A packet
// that alone exceeds the bound is refused with ErrTooLarge.
func (q *Queue) Enqueue(p io.Reader) error {
	data, err := readAll(p)
	if err != nil {
		return fmt.Errorf("bridge: enqueue: read packet: %w", err)
	}
	return q.store().append(data, true)
}

// append queues data (8 bytes of room, then a PUBLISH packet). With wait
// it returns once the message is on disk; without, once it is in line for
// the next group commit (a crash before that loses it).
func (s *Store) append(data []byte, wait bool) error {
	if len(data) < 8+2 || data[8]>>4 != 3 {
		return fmt.Errorf("bridge: enqueue: not a PUBLISH packet")
	}
	size := int64(len(data)) + 8
	if size > s.maxBytes {
		s.stats.tooLarge.Add(1)
		return fmt.Errorf("%w: %d bytes, queue.max_bytes is %d", ErrTooLarge, size, s.maxBytes)
	}
	now := s.now().UnixNano()
	binary.BigEndian.PutUint64(data, uint64(now))
	o := &op{}
	if wait {
		o.done = make(chan error, 1)
	}

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
	o.apply = func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQueue)
		for _, v := range victims {
			if err := b.Delete(seqKey(v)); err != nil {
				return err
			}
		}
		return b.Put(seqKey(seq), data)
	}
	o.after = func(err error) { s.committed(seq, err) }
	_ = s.submitLocked(o)
	s.sendMu.Unlock()
	if wait {
		return <-o.done
	}
	return nil
}

// committed marks a pending entry live (or dead if its commit failed) and
// wakes waiters.
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
	if len(s.waiting) > 0 && s.headLocked() != nil {
		for _, c := range s.waiting {
			close(c)
		}
		s.waiting = s.waiting[:0]
	}
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
// never the one being sent, and returns its key.
func (s *Store) victimLocked() (uint64, bool) {
	if s.q0 > 0 {
		for i := max(s.q0cur, s.head); i < len(s.ents); i++ {
			e := s.ents[i]
			if e.state != dead && e.qos == 0 && e.seq != s.peeked {
				s.q0cur = i + 1
				s.killLocked(i)
				s.stats.droppedQoS0.Add(1)
				return e.seq, true
			}
		}
	}
	for i := s.head; i < len(s.ents); i++ {
		e := s.ents[i]
		if e.state != dead && e.seq != s.peeked {
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
		if e.state == dead || e.seq == s.peeked {
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
	_ = s.submitLocked(&op{apply: func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketQueue)
		for _, k := range keys {
			if err := b.Delete(seqKey(k)); err != nil {
				return err
			}
		}
		return nil
	}})
}

// Expire drops messages older than MaxAge now, as Enqueue and Peek also
// do, so an idle queue's age bound holds during an outage.
func (s *Store) Expire() {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	keys := s.expireLocked(s.now().UnixNano(), nil)
	s.mu.Unlock()
	s.deleteKeysLocked(keys)
}

// Peek returns the oldest committed message. The caller must call Leave,
// Remove or Quarantine on it before peeking again (autopaho's queue loop
// does). It returns queue.ErrEmpty when there is none.
func (q *Queue) Peek() (queue.Entry, error) {
	s := q.store()
	s.sendMu.Lock()
	if s.closed {
		s.sendMu.Unlock()
		return nil, ErrClosed
	}
	s.mu.Lock()
	s.peeked, s.consumed = 0, false
	keys := s.expireLocked(s.now().UnixNano(), nil)
	h := s.headLocked()
	var seq uint64
	if h != nil {
		seq = h.seq
		s.peeked = seq
	}
	s.mu.Unlock()
	s.deleteKeysLocked(keys)
	s.sendMu.Unlock()
	if h == nil {
		return nil, queue.ErrEmpty
	}
	var data []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketQueue).Get(seqKey(seq))
		if v == nil {
			return fmt.Errorf("bridge: queue entry %d missing from the file", seq)
		}
		data = bytes.Clone(v[8:])
		return nil
	})
	if err != nil {
		return &qentry{s: s, seq: seq, err: err}, nil
	}
	return &qentry{s: s, seq: seq, data: data}, nil
}

// qentry is one peeked message.
type qentry struct {
	s    *Store
	seq  uint64
	data []byte
	err  error
}

// Reader returns the PUBLISH packet.
func (e *qentry) Reader() (io.Reader, error) {
	if e.err != nil {
		return nil, e.err
	}
	return bytes.NewReader(e.data), nil
}

// Leave keeps the message at the head of the queue. If it already went
// into the session store (it was sent), it leaves the queue as Remove.
func (e *qentry) Leave() error {
	s := e.s
	s.mu.Lock()
	consumed := s.peeked == e.seq && s.consumed
	s.mu.Unlock()
	if consumed {
		return e.Remove()
	}
	s.mu.Lock()
	if s.peeked == e.seq {
		s.peeked = 0
	}
	s.q0cur = s.head
	s.mu.Unlock()
	return nil
}

// Remove takes the message out of the queue: it has been sent (QoS 0) or
// is safe in the session store (QoS 1/2). The deletion is committed with
// the next batch, without waiting.
func (e *qentry) Remove() error {
	return e.s.remove(e.seq, false)
}

// Quarantine removes an unreadable message and counts it.
func (e *qentry) Quarantine() error {
	return e.s.remove(e.seq, true)
}

func (s *Store) remove(seq uint64, quarantine bool) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	consumed := s.peeked == seq && s.consumed
	if s.peeked == seq {
		s.peeked, s.consumed = 0, false
	}
	i, ok := s.findLocked(seq)
	if ok && s.ents[i].state != dead {
		s.killLocked(i)
		if quarantine {
			s.stats.quarantined.Add(1)
		} else {
			s.stats.sent.Add(1)
		}
	}
	s.mu.Unlock()
	if !consumed {
		s.deleteKeysLocked([]uint64{seq})
	}
	return nil
}

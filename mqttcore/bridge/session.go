package bridge

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho/session/state"
	bolt "go.etcd.io/bbolt"
)

// SessionStore is one half of the MQTT session state in a Store, with the
// methods paho's session/state package needs of a store: the client side
// holds PUBLISH and PUBREL packets we sent and that are not fully
// acknowledged, the server side the PUBREC packets of inbound QoS 2
// messages.
type SessionStore struct {
	s      *Store
	side   int // 0 client, 1 server
	bucket []byte
}

// ClientSession returns the store for packets whose ids we allocate.
func (s *Store) ClientSession() *SessionStore {
	return &SessionStore{s: s, side: 0, bucket: bucketClient}
}

// ServerSession returns the store for packets whose ids the server
// allocates.
func (s *Store) ServerSession() *SessionStore {
	return &SessionStore{s: s, side: 1, bucket: bucketServer}
}

// NewSessionState returns paho's session state manager backed by the
// store, so in-flight QoS 1/2 messages survive a restart.
func (s *Store) NewSessionState() *state.State {
	return state.New(s.ClientSession(), s.ServerSession())
}

// Put stores a packet under its id. A PUBLISH put on the client side is
// the message autopaho's queue loop just peeked: it leaves the queue in the
// same transaction. QoS 2 PUBLISH, PUBREL and PUBREC records are committed
// before Put returns (exactly-once depends on them); a QoS 1 PUBLISH is
// committed with the next batch (a crash before that re-sends it from the
// queue: a duplicate QoS 1 allows).
func (ss *SessionStore) Put(packetID uint16, packetType byte, w io.WriterTo) error {
	s := ss.s
	var buf bytes.Buffer
	buf.Write(make([]byte, 8))
	if _, err := w.WriteTo(&buf); err != nil {
		return fmt.Errorf("bridge: session %s put %d: %w", ss.bucket, packetID, err)
	}
	data := buf.Bytes()
	durable := packetType != packets.PUBLISH || pubQoS(data[8]) == 2
	o := &op{}
	if durable {
		o.done = make(chan error, 1)
	}
	s.sendMu.Lock()
	if s.closed {
		s.sendMu.Unlock()
		return ErrClosed
	}
	s.mu.Lock()
	var fromQueue uint64
	if ss.side == 0 && packetType == packets.PUBLISH && s.peeked != 0 && !s.consumed {
		fromQueue, s.consumed = s.peeked, true
	}
	s.keys[ss.side][packetID] = struct{}{}
	s.mu.Unlock()
	o.apply = func(tx *bolt.Tx) error {
		s.order++
		binary.BigEndian.PutUint64(data, s.order)
		if fromQueue != 0 {
			if err := tx.Bucket(bucketQueue).Delete(seqKey(fromQueue)); err != nil {
				return err
			}
		}
		return tx.Bucket(ss.bucket).Put(idKey(packetID), data)
	}
	_ = s.submitLocked(o)
	s.sendMu.Unlock()
	if durable {
		if err := wait(o); err != nil {
			return fmt.Errorf("bridge: session %s put %d: %w", ss.bucket, packetID, err)
		}
	}
	return nil
}

// Get returns the packet stored under packetID.
func (ss *SessionStore) Get(packetID uint16) (io.ReadCloser, error) {
	if err := ss.s.flush(); err != nil {
		return nil, err
	}
	var data []byte
	err := ss.s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(ss.bucket).Get(idKey(packetID))
		if v == nil {
			return fmt.Errorf("bridge: session %s get %d: %w", ss.bucket, packetID, ErrNotInStore)
		}
		data = bytes.Clone(v[8:])
		return nil
	})
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

// Delete removes the packet stored under id (the transaction is complete);
// committed with the next batch without waiting.
func (ss *SessionStore) Delete(id uint16) error {
	return ss.delete(id, false)
}

// Quarantine removes an unreadable packet and counts it.
func (ss *SessionStore) Quarantine(id uint16) error {
	return ss.delete(id, true)
}

func (ss *SessionStore) delete(id uint16, quarantine bool) error {
	s := ss.s
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	delete(s.keys[ss.side], id)
	s.mu.Unlock()
	if quarantine {
		s.stats.quarantined.Add(1)
	}
	return s.submitLocked(&op{apply: func(tx *bolt.Tx) error {
		return tx.Bucket(ss.bucket).Delete(idKey(id))
	}})
}

// List returns the stored ids in the order they were put.
func (ss *SessionStore) List() ([]uint16, error) {
	if err := ss.s.flush(); err != nil {
		return nil, err
	}
	var ids []uint16
	err := ss.s.db.View(func(tx *bolt.Tx) error {
		ids = sortedIDs(tx.Bucket(ss.bucket))
		return nil
	})
	return ids, err
}

// Reset clears the store; paho calls it when the remote broker has no
// session for us. On the client side the PUBLISH packets it holds (sent,
// not acknowledged) are not dropped, as MQTT would have them dropped, but
// put back at the head of the outbound queue in their order: they are sent
// again as new messages, so nothing is lost (the remote may see them
// twice).
func (ss *SessionStore) Reset() error {
	s := ss.s
	o := &op{done: make(chan error, 1)}
	var back []entry
	o.apply = func(tx *bolt.Tx) error {
		back = back[:0]
		b := tx.Bucket(ss.bucket)
		if ss.side == 0 {
			q := tx.Bucket(bucketQueue)
			ids := sortedIDs(b)
			now := s.now().UnixNano()
			seq := s.lowSeq
			for i := len(ids) - 1; i >= 0; i-- {
				v := b.Get(idKey(ids[i]))
				if len(v) < 10 || v[8]>>4 != packets.PUBLISH {
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
			s.lowSeq = seq
		}
		if err := tx.DeleteBucket(ss.bucket); err != nil {
			return err
		}
		_, err := tx.CreateBucket(ss.bucket)
		return err
	}
	o.after = func(err error) {
		if err != nil {
			return
		}
		if len(back) == 0 {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
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
		for _, c := range s.waiting {
			close(c)
		}
		s.waiting = s.waiting[:0]
	}
	s.sendMu.Lock()
	s.mu.Lock()
	clear(s.keys[ss.side])
	s.mu.Unlock()
	err := s.submitLocked(o)
	s.sendMu.Unlock()
	if err != nil {
		return err
	}
	if err := wait(o); err != nil {
		return fmt.Errorf("bridge: session %s reset: %w", ss.bucket, err)
	}
	return nil
}

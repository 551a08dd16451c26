package bridge

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// SessionStore is the server half of the MQTT session state in a Store,
// with the methods paho's session/state package needs of a store: the
// PUBREC records of inbound QoS 2 messages, so a message the remote sends
// again after a restart is not delivered twice. (The client half, the
// messages we sent, is the bridge's own: see outbox.)
type SessionStore struct {
	s *Store
}

// ServerSession returns the store for packets whose ids the server
// allocates.
func (s *Store) ServerSession() *SessionStore { return &SessionStore{s: s} }

// Put stores a packet under its id, committed before Put returns
// (exactly-once depends on it).
func (ss *SessionStore) Put(packetID uint16, packetType byte, w io.WriterTo) error {
	s := ss.s
	var buf bytes.Buffer
	buf.Write(make([]byte, 8))
	if _, err := w.WriteTo(&buf); err != nil {
		return fmt.Errorf("bridge: session put %d: %w", packetID, err)
	}
	data := buf.Bytes()
	binary.BigEndian.PutUint64(data, s.order.Add(1))
	ch := make(chan error, 1)
	s.sendMu.Lock()
	err := s.logLocked([]boltstore.KeyedOp{{Bucket: s.sPath, Key: idKey(packetID), Value: data}}, func(err error) { ch <- err })
	s.sendMu.Unlock()
	if err == nil {
		err = <-ch
	}
	if err != nil {
		return fmt.Errorf("bridge: session put %d: %w", packetID, err)
	}
	return nil
}

// Get returns the packet stored under packetID.
func (ss *SessionStore) Get(packetID uint16) (io.ReadCloser, error) {
	if err := ss.s.flush(); err != nil {
		return nil, err
	}
	var data []byte
	err := ss.s.be.View(func(tx *bolt.Tx) error {
		v := ss.s.bucket(tx, bucketServer).Get(idKey(packetID))
		if v == nil {
			return fmt.Errorf("bridge: session get %d: %w", packetID, ErrNotInStore)
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
	if quarantine {
		s.stats.quarantined.Add(1)
	}
	return s.logLocked([]boltstore.KeyedOp{{Bucket: s.sPath, Key: idKey(id), Delete: true}}, nil)
}

// List returns the stored ids in the order they were put.
func (ss *SessionStore) List() ([]uint16, error) {
	if err := ss.s.flush(); err != nil {
		return nil, err
	}
	var ids []uint16
	err := ss.s.be.View(func(tx *bolt.Tx) error {
		ids = sortedIDs(ss.s.bucket(tx, bucketServer))
		return nil
	})
	return ids, err
}

// Reset clears the store; paho calls it when the remote broker has no
// session for us.
func (ss *SessionStore) Reset() error {
	s := ss.s
	ch := make(chan error, 1)
	s.sendMu.Lock()
	err := s.submitLocked(&write{
		apply: func(tx *bolt.Tx) error {
			if err := s.parent(tx).DeleteBucket(bucketServer); err != nil {
				return err
			}
			_, err := s.parent(tx).CreateBucket(bucketServer)
			return err
		},
		done: func(err error) { ch <- err },
	})
	s.sendMu.Unlock()
	if err == nil {
		err = <-ch
	}
	if err != nil {
		return fmt.Errorf("bridge: session reset: %w", err)
	}
	return nil
}

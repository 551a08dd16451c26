package boltstore_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// waitLimit bounds every wait in these tests.
const waitLimit = 20 * time.Second

// open opens a store at path and closes it at cleanup.
func open(t testing.TB, path string, o boltstore.Options) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(path, o)
	if err != nil {
		t.Fatalf("Open(%s) = %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// tempStore opens a fresh store in a new directory below t.TempDir.
func tempStore(t testing.TB, o boltstore.Options) (*boltstore.Store, string) {
	path := filepath.Join(t.TempDir(), "data", "core.db")
	return open(t, path, o), path
}

// commit commits ops and waits for the result.
func commit(t testing.TB, s *boltstore.Store, ops ...mqttcore.Op) error {
	t.Helper()
	done := make(chan error, 1)
	s.Commit(ops, func(err error) { done <- err })
	select {
	case err := <-done:
		return err
	case <-time.After(waitLimit):
		t.Fatalf("Commit: done not called within %v", waitLimit)
		return nil
	}
}

// mustCommit commits ops and fails the test on an error.
func mustCommit(t testing.TB, s *boltstore.Store, ops ...mqttcore.Op) {
	t.Helper()
	if err := commit(t, s, ops...); err != nil {
		t.Fatalf("Commit(%d ops) = %v", len(ops), err)
	}
}

// loaded is what Load handed over.
type loaded struct {
	sessions map[uint64]*mqttcore.SessionRecord
	order    []uint64
	retained map[string]*mqttcore.Message
	maxSeq   uint64
}

func load(t testing.TB, s *boltstore.Store) loaded {
	t.Helper()
	l := loaded{sessions: map[uint64]*mqttcore.SessionRecord{}, retained: map[string]*mqttcore.Message{}}
	var err error
	l.maxSeq, err = s.Load(func(r *mqttcore.SessionRecord) error {
		if _, dup := l.sessions[r.ID]; dup {
			return errors.New("session loaded twice")
		}
		l.sessions[r.ID] = r
		l.order = append(l.order, r.ID)
		return nil
	}, func(m *mqttcore.Message) error {
		l.retained[m.Topic] = m
		return nil
	})
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	return l
}

// reopen closes s and opens its file again.
func reopen(t testing.TB, s *boltstore.Store, o boltstore.Options) *boltstore.Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	return open(t, s.Path(), o)
}

func sessionOp(r *mqttcore.SessionRecord) mqttcore.Op {
	return mqttcore.Op{Kind: mqttcore.OpSession, SessionID: r.ID, Session: r}
}

func entryOp(sid uint64, q mqttcore.QueuedRecord) mqttcore.Op {
	return mqttcore.Op{Kind: mqttcore.OpEntry, SessionID: sid, Entry: q}
}

func dropOp(sid, seq uint64) mqttcore.Op {
	return mqttcore.Op{Kind: mqttcore.OpDropEntry, SessionID: sid, Seq: seq}
}

// ts is a time that survives the unix-nanosecond round trip unchanged.
func ts(sec int64) time.Time { return time.Unix(1_800_000_000+sec, 123) }

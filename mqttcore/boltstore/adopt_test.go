package boltstore_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// plainFile writes a bbolt file that is not a store: bucket "queue" with
// n keys.
func plainFile(t *testing.T, path string, n int) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("queue"))
		for i := range n {
			if err == nil {
				err = b.Put([]byte{byte(i)}, fmt.Appendf(nil, "v%d", i))
			}
		}
		return err
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestOpenAdopt: a bbolt file of another user's that Adopt accepts
// becomes a store in place, its buckets kept; reopened, it is a store
// (Adopt is not asked again) and keeps what was logged into it.
func TestOpenAdopt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	plainFile(t, path, 3)
	asked := 0
	adopt := func(tx *bbolt.Tx) error {
		asked++
		if tx.Bucket([]byte("queue")) == nil {
			return errors.New("no queue bucket")
		}
		return nil
	}
	s, err := boltstore.Open(path, boltstore.Options{Adopt: adopt})
	if err != nil {
		t.Fatalf("Open with Adopt = %v", err)
	}
	if asked != 1 {
		t.Fatalf("Adopt called %d times; want 1", asked)
	}
	q := [][]byte{[]byte("queue")}
	var got []string
	err = s.Get(q, [][]byte{{0}, {1}, {2}}, func(_ int, v []byte) { got = append(got, string(v)) })
	if err != nil || fmt.Sprint(got) != "[v0 v1 v2]" {
		t.Fatalf("Get of the adopted bucket = %v, %v; want [v0 v1 v2]", got, err)
	}
	done := make(chan error, 1)
	s.Log([]boltstore.KeyedOp{{Bucket: q, Key: []byte{3}, Value: []byte("v3")}, {Bucket: q, Key: []byte{0}, Delete: true}}, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, boltstore.Options{Adopt: adopt})
	if asked != 1 {
		t.Fatalf("Adopt called for a store file (%d calls); want only the first open", asked)
	}
	got = nil
	err = s.Get(q, [][]byte{{0}, {1}, {2}, {3}}, func(_ int, v []byte) { got = append(got, string(v)) })
	if err != nil || fmt.Sprint(got) != "[ v1 v2 v3]" {
		t.Fatalf("Get after reopening = %q, %v; want [\"\" v1 v2 v3]", got, err)
	}
}

// TestOpenAdoptRefused: a file Adopt refuses is ErrForeign with Adopt's
// reason, and left as it was; Adopt is not asked about an empty file.
func TestOpenAdoptRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	plainFile(t, path, 1)
	refuse := func(*bbolt.Tx) error { return errors.New("not a queue of ours") }
	_, err := boltstore.Open(path, boltstore.Options{Adopt: refuse, LockTimeout: time.Second})
	if !errors.Is(err, boltstore.ErrForeign) || !strings.Contains(err.Error(), "not a queue of ours") || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open of a refused file = %v; want ErrForeign naming %s and Adopt's reason", err, path)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	_ = db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bbolt.Bucket) error { names = append(names, string(name)); return nil })
	})
	db.Close()
	if fmt.Sprint(names) != "[queue]" {
		t.Fatalf("buckets after the refusal: %v; want [queue] alone", names)
	}

	empty := filepath.Join(t.TempDir(), "empty.db")
	db, err = bbolt.Open(empty, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	open(t, empty, boltstore.Options{Adopt: func(*bbolt.Tx) error { t.Error("Adopt called for an empty bbolt file"); return nil }})
	open(t, filepath.Join(t.TempDir(), "new.db"), boltstore.Options{Adopt: func(*bbolt.Tx) error { t.Error("Adopt called for a new file"); return nil }})
}

// TestStatsPending: Pending counts the calls made and not yet done.
func TestStatsPending(t *testing.T) {
	s, _ := tempStore(t, boltstore.Options{})
	release, entered := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	s.Update(func(*bbolt.Tx) error { close(entered); <-release; return nil }, func(err error) { held <- err })
	<-entered
	done := make(chan error, 2)
	q := [][]byte{[]byte("q")}
	for i := range 2 {
		s.Log([]boltstore.KeyedOp{{Bucket: q, Key: []byte{byte(i)}, Value: []byte("v")}}, func(err error) { done <- err })
	}
	if p := s.Stats().Pending; p != 3 {
		t.Errorf("Pending = %d with one Update running and two Log calls queued; want 3", p)
	}
	close(release)
	for _, ch := range []chan error{held, done, done} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(waitLimit):
			t.Fatalf("done not called within %v", waitLimit)
		}
	}
	if p := s.Stats().Pending; p != 0 {
		t.Errorf("Pending = %d once every call is done; want 0", p)
	}
}

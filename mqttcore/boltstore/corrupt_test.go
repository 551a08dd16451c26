package boltstore_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// writeStore writes a store with n sessions, each with one queued message
// of size bytes, and returns its path, closed.
func writeStore(t testing.TB, dir string, n, size int) string {
	t.Helper()
	path := filepath.Join(dir, "core.db")
	s, err := boltstore.Open(path, boltstore.Options{Sync: boltstore.SyncNever})
	if err != nil {
		t.Fatal(err)
	}
	var ops []mqttcore.Op
	for i := 1; i <= n; i++ {
		m := &mqttcore.Message{Topic: "t/x", Payload: bytes.Repeat([]byte{byte(i)}, size), QoS: 1}
		ops = append(ops,
			sessionOp(&mqttcore.SessionRecord{ID: uint64(i), ClientID: "client-" + string(rune('a'+i%26)), Expiry: time.Hour,
				Subscriptions: []mqttcore.SubscriptionRecord{{Filter: "t/#", Options: mqttcore.SubOptions{QoS: 1}}}}),
			entryOp(uint64(i), mqttcore.QueuedRecord{Seq: uint64(i), Message: m, QoS: 1}),
			mqttcore.Op{Kind: mqttcore.OpFrontEnd, SessionID: uint64(i), FrontEnd: []byte("front-end state")})
	}
	mustCommit(t, s, ops...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// usedBytes is the size of the pages in use in the file at path (bbolt
// grows the file ahead of them).
func usedBytes(t testing.TB, path string) int64 {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var used int64
	db.View(func(tx *bbolt.Tx) error { used = tx.Size(); return nil })
	return used
}

// wantOpenError opens path and checks the error: kind, the file's name
// and the advice.
func wantOpenError(t *testing.T, path string, kind error, advice string) {
	t.Helper()
	s, err := boltstore.Open(path, boltstore.Options{LockTimeout: time.Second})
	if err == nil {
		// Opening may succeed where only Load reads the damage.
		_, err = s.Load(func(*mqttcore.SessionRecord) error { return nil }, func(*mqttcore.Message) error { return nil })
		s.Close()
	}
	if !errors.Is(err, kind) {
		t.Fatalf("Open(%s) = %v; want an error wrapping %v", path, err, kind)
	}
	if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, advice) {
		t.Errorf("Open error %q: want it to name %s and say %q", msg, path, advice)
	}
}

func TestOpenTruncated(t *testing.T) {
	dir := t.TempDir()
	path := writeStore(t, dir, 300, 300)
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	used := usedBytes(t, path)
	if used < 16*4096 {
		t.Fatalf("store uses %d bytes; want a store of many pages", used)
	}
	for _, size := range []int64{used - 4096, used / 2, 3*4096 + 100, 5000} {
		p := filepath.Join(dir, "truncated.db")
		if err := os.WriteFile(p, full[:size], 0o600); err != nil {
			t.Fatal(err)
		}
		t.Run("", func(t *testing.T) { wantOpenError(t, p, boltstore.ErrCorrupt, "restore it from a backup") })
	}
}

func TestOpenNewerFormat(t *testing.T) {
	path := writeStore(t, t.TempDir(), 3, 10)
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("core.meta")).Put([]byte("version"), binary.BigEndian.AppendUint32(nil, 99))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	wantOpenError(t, path, boltstore.ErrNewerFormat, "upgrade gannet")
}

func TestOpenNotOurs(t *testing.T) {
	dir := t.TempDir()
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(rand.Uint32())
	}
	p := filepath.Join(dir, "random.db")
	if err := os.WriteFile(p, random, 0o600); err != nil {
		t.Fatal(err)
	}
	wantOpenError(t, p, boltstore.ErrForeign, "check the store path")

	p = filepath.Join(dir, "short.db")
	if err := os.WriteFile(p, random[:100], 0o600); err != nil {
		t.Fatal(err)
	}
	wantOpenError(t, p, boltstore.ErrForeign, "move the file aside")

	p = filepath.Join(dir, "bridge.db")
	db, err := bbolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("queue")); return err })
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	wantOpenError(t, p, boltstore.ErrForeign, "check the store path")

	wantOpenError(t, dir, boltstore.ErrForeign, "check the store path")
}

// TestOpenEmptyBolt: an empty bbolt file (a first start stopped before
// its buckets were made) is initialised, not refused.
func TestOpenEmptyBolt(t *testing.T) {
	p := filepath.Join(t.TempDir(), "core.db")
	db, err := bbolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := open(t, p, boltstore.Options{})
	mustCommit(t, s, sessionOp(&mqttcore.SessionRecord{ID: 1, ClientID: "a"}))
	if got := load(t, reopen(t, s, boltstore.Options{})); len(got.sessions) != 1 {
		t.Fatalf("Load = %v; want session 1", got.order)
	}
}

func TestOpenLocked(t *testing.T) {
	s, path := tempStore(t, boltstore.Options{})
	_ = s
	_, err := boltstore.Open(path, boltstore.Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, boltstore.ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Open = %v; want ErrLocked naming %s", err, path)
	}
}

// TestLoadBadRecord: a record that does not decode fails Load with the
// record named.
func TestLoadBadRecord(t *testing.T) {
	path := writeStore(t, t.TempDir(), 3, 10)
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("core.sessions")).Put(binary.BigEndian.AppendUint64(nil, 2), []byte{1, 0, 0, 200})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	wantOpenError(t, path, boltstore.ErrCorrupt, "session 2")
}

// TestOpenDamagedPages overwrites one page at a time with random bytes:
// every open and load either works or fails with ErrCorrupt or
// ErrForeign; none panics, and damage to the pages in use is reported.
func TestOpenDamagedPages(t *testing.T) {
	dir := t.TempDir()
	path := writeStore(t, dir, 200, 200)
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	full = full[:usedBytes(t, path)]
	rng := rand.New(rand.NewPCG(1, 2))
	p := filepath.Join(dir, "damaged.db")
	refused := 0
	for off := 0; off+page <= len(full); off += page {
		b := bytes.Clone(full)
		for i := off; i < off+page; i++ {
			b[i] = byte(rng.Uint32())
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := boltstore.Open(p, boltstore.Options{})
		if err == nil {
			_, err = s.Load(func(*mqttcore.SessionRecord) error { return nil }, func(*mqttcore.Message) error { return nil })
			s.Close()
		}
		switch {
		case err == nil:
		case errors.Is(err, boltstore.ErrCorrupt), errors.Is(err, boltstore.ErrForeign):
			refused++
		default:
			t.Errorf("page %d damaged: %v; want nil, ErrCorrupt or ErrForeign", off/page, err)
		}
	}
	if refused == 0 {
		t.Errorf("no damaged page was refused")
	}
	t.Logf("%d of %d damaged pages refused", refused, len(full)/page)
}

// TestOpenBitFlips flips a few bits at random places of a store, many
// times: opening, loading and one commit either work or fail with an
// error; none panics (bbolt would, on a goroutine nothing can recover, at
// some of these without Open's page check).
func TestOpenBitFlips(t *testing.T) {
	rounds := 200
	if testing.Short() {
		rounds = 50
	}
	dir := t.TempDir()
	path := writeStore(t, dir, 500, 50)
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	full = full[:usedBytes(t, path)]
	rng := rand.New(rand.NewPCG(3, 4))
	p := filepath.Join(dir, "flipped.db")
	refused := 0
	for range rounds {
		b := bytes.Clone(full)
		for range 3 {
			b[8192+rng.IntN(len(b)-8192)] ^= 1 << rng.IntN(8)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := boltstore.Open(p, boltstore.Options{})
		if err == nil {
			_, err = s.Load(func(*mqttcore.SessionRecord) error { return nil }, func(*mqttcore.Message) error { return nil })
			if err == nil {
				err = commit(t, s, mqttcore.Op{Kind: mqttcore.OpEndSession, SessionID: uint64(1 + rng.IntN(500))})
			}
			s.Close()
		}
		if err != nil {
			refused++
			if !errors.Is(err, boltstore.ErrCorrupt) && !errors.Is(err, boltstore.ErrForeign) && !errors.Is(err, mqttcore.ErrStoreFailed) {
				t.Errorf("flipped store: %v; want nil, ErrCorrupt, ErrForeign or (from the commit) ErrStoreFailed", err)
			}
		}
	}
	if refused == 0 {
		t.Errorf("no flipped store was refused")
	}
	t.Logf("%d of %d flipped stores refused", refused, rounds)
}

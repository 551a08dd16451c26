package boltstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// smallFS mounts a tmpfs of size bytes on a new directory, unmounted at
// cleanup; it skips the test where mounting is not allowed.
func smallFS(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Skipf("mount a %s tmpfs on %s: %v (the full-disk test needs root or CAP_SYS_ADMIN)", size, dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestFullDisk fills a 2 MiB file system: the commit that does not fit
// fails with ErrStoreFailed, everything committed before it survives a
// reopen, and commits work again once space is freed.
func TestFullDisk(t *testing.T) {
	dir := smallFS(t, "2m")
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	// A small mapping makes bbolt grow the file in small steps, as it
	// would on a large disk that is nearly full; checkpoints of 128 KiB
	// keep the log to a part of this small disk, as the default 8 MiB
	// does on a real one.
	o := boltstore.Options{InitialMmapSize: 64 << 10, CheckpointBytes: 128 << 10}
	s := open(t, filepath.Join(dir, "data", "core.db"), o)
	mustCommit(t, s, sessionOp(&mqttcore.SessionRecord{ID: 1, ClientID: "sensor"}))
	payload := bytes.Repeat([]byte("x"), 16<<10)
	entry := func(seq uint64) mqttcore.Op {
		return entryOp(1, mqttcore.QueuedRecord{Seq: seq, QoS: 1,
			Message: &mqttcore.Message{Topic: "t", Payload: payload, QoS: 1}})
	}
	var seq uint64
	var failed error
	for seq = 1; seq <= 200; seq++ {
		if failed = commit(t, s, entry(seq)); failed != nil {
			break
		}
	}
	if !errors.Is(failed, mqttcore.ErrStoreFailed) || !errors.Is(failed, syscall.ENOSPC) {
		t.Fatalf("commit %d = %v; want an error wrapping ErrStoreFailed and ENOSPC", seq, failed)
	}
	stored := seq - 1
	if stored == 0 {
		t.Fatal("no entry fit before the disk was full")
	}
	// Still full: a second try fails the same way, and the store is
	// still readable.
	if err := commit(t, s, entry(seq)); !errors.Is(err, mqttcore.ErrStoreFailed) {
		t.Fatalf("commit %d again on a full disk = %v; want ErrStoreFailed", seq, err)
	}
	// Load applies the log to the bbolt file first, which needs room:
	// on the full disk it may fail, cleanly, and must work once space is
	// back.
	n, err := s.Load(func(r *mqttcore.SessionRecord) error {
		if len(r.Queue) != int(stored) {
			return fmt.Errorf("%d entries; want the %d committed", len(r.Queue), stored)
		}
		return nil
	}, func(*mqttcore.Message) error { return nil })
	switch {
	case err == nil && n != stored:
		t.Fatalf("Load on a full disk: max seq %d; want %d", n, stored)
	case err != nil && !errors.Is(err, syscall.ENOSPC):
		t.Fatalf("Load on a full disk = %v; want the stored entries or an error wrapping ENOSPC", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if got := load(t, s); len(got.sessions[1].Queue) != int(stored) {
		t.Fatalf("Load once space is back: %d entries; want the %d committed", len(got.sessions[1].Queue), stored)
	}
	mustCommit(t, s, entry(seq))
	wantFailed := uint64(2) // the two commits
	if err != nil {
		wantFailed++ // and Load's checkpoint
	}
	if st := s.Stats(); st.Failed != wantFailed {
		t.Errorf("Stats.Failed = %d; want %d", st.Failed, wantFailed)
	}
	s = reopen(t, s, o)
	got := load(t, s)
	q := got.sessions[1].Queue
	if len(q) != int(stored)+1 {
		t.Fatalf("Load after reopen: %d entries; want %d", len(q), stored+1)
	}
	for i, e := range q {
		if e.Seq != uint64(i+1) || !bytes.Equal(e.Message.Payload, payload) {
			t.Fatalf("entry %d = seq %d with %d bytes; want seq %d with the payload", i, e.Seq, len(e.Message.Payload), i+1)
		}
	}
	t.Logf("%d entries of 16 KiB fit before the disk was full; Load on the full disk: %v", stored, err)
}

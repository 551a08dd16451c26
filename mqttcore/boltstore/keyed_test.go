package boltstore_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// logKeyed logs ops and waits for the result.
func logKeyed(t testing.TB, s *boltstore.Store, ops ...boltstore.KeyedOp) error {
	t.Helper()
	done := make(chan error, 1)
	s.Log(ops, func(err error) { done <- err })
	select {
	case err := <-done:
		return err
	case <-time.After(waitLimit):
		t.Fatalf("Log: done not called within %v", waitLimit)
		return nil
	}
}

func mustLog(t testing.TB, s *boltstore.Store, ops ...boltstore.KeyedOp) {
	t.Helper()
	if err := logKeyed(t, s, ops...); err != nil {
		t.Fatalf("Log(%d ops) = %v", len(ops), err)
	}
}

var queuePath = [][]byte{[]byte("bridge/up"), []byte("queue")}

func put(key, val string) boltstore.KeyedOp {
	return boltstore.KeyedOp{Bucket: queuePath, Key: []byte(key), Value: []byte(val)}
}

func del(key string) boltstore.KeyedOp {
	return boltstore.KeyedOp{Bucket: queuePath, Key: []byte(key), Delete: true}
}

// getAll reads keys through Get: absent keys are left out of the map.
func getAll(t testing.TB, s *boltstore.Store, path [][]byte, keys ...string) map[string]string {
	t.Helper()
	kb := make([][]byte, len(keys))
	for i, k := range keys {
		kb[i] = []byte(k)
	}
	got := map[string]string{}
	seen := make([]bool, len(keys))
	err := s.Get(path, kb, func(i int, v []byte) {
		if seen[i] {
			t.Errorf("Get called fn twice for key %q", keys[i])
		}
		seen[i] = true
		if v != nil {
			got[keys[i]] = string(v)
		}
	})
	if err != nil {
		t.Fatalf("Get = %v", err)
	}
	for i, ok := range seen {
		if !ok {
			t.Errorf("Get did not call fn for key %q", keys[i])
		}
	}
	return got
}

// fileKeys returns what the bbolt file itself holds in the bucket at path
// (nil: no such bucket), read with plain bbolt.
func fileKeys(t testing.TB, path string, bucket [][]byte) map[string]string {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var got map[string]string
	err = db.View(func(tx *bbolt.Tx) (err error) {
		got, err = bucketKeys(tx, bucket)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// storeKeys reads the bucket at path through s.View.
func storeKeys(t testing.TB, s *boltstore.Store, bucket [][]byte) map[string]string {
	t.Helper()
	var got map[string]string
	err := s.View(func(tx *bbolt.Tx) (err error) {
		got, err = bucketKeys(tx, bucket)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// bucketKeys returns the keys and values of the bucket at path in tx (nil:
// no such bucket).
func bucketKeys(tx *bbolt.Tx, bucket [][]byte) (map[string]string, error) {
	b := tx.Bucket(bucket[0])
	for _, name := range bucket[1:] {
		if b == nil {
			break
		}
		b = b.Bucket(name)
	}
	if b == nil {
		return nil, nil
	}
	got := map[string]string{}
	return got, b.ForEach(func(k, v []byte) error {
		got[string(k)] = string(v)
		return nil
	})
}

// putLogBack copies the log segments of crashed beside the store file at
// path: a log the file already holds, which a replay must skip.
func putLogBack(t testing.TB, crashed, path string) {
	t.Helper()
	for _, suffix := range []string{".wal.0", ".wal.1"} {
		b, err := os.ReadFile(crashed + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKeyedReplayAfterCrash: keyed ops acknowledged from the log alone
// (the process died before any checkpoint) are in the file after a
// restart, in the order logged, with the core's ops of the same records;
// replaying again (the same log beside the replayed file, or a second copy
// of the crashed files) gives the same result.
func TestKeyedReplayAfterCrash(t *testing.T) {
	s, path := tempStore(t, noCheckpoint)
	mustLog(t, s, put("a", "1"), put("b", "2"))
	commitSessions(t, s, 1, 2)
	mustLog(t, s, del("a"), put("c", "3"), put("b", "2b"))
	mustLog(t, s, put("d", "4"))
	mustLog(t, s, del("d"))
	if err := boltstore.Crash(s); err != nil {
		t.Fatal(err)
	}
	if got := fileKeys(t, path, queuePath); got != nil {
		t.Fatalf("the bbolt file holds %v before the replay; want no bucket (all in the log)", got)
	}
	crashed := filepath.Join(t.TempDir(), "crashed.db")
	copyStore(t, path, crashed)

	want := map[string]string{"b": "2b", "c": "3"}
	s = open(t, path, noCheckpoint)
	if st := s.Stats(); st.Replayed != 6 {
		t.Errorf("Stats.Replayed = %d; want 6 (4 Log calls, 2 sessions)", st.Replayed)
	}
	if got := storeKeys(t, s, queuePath); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the replay the file holds %v; want %v", got, want)
	}
	if got := getAll(t, s, queuePath, "a", "b", "c", "d"); !reflect.DeepEqual(got, want) {
		t.Fatalf("Get after the replay = %v; want %v", got, want)
	}
	wantSessions(t, s, 2)
	if err := boltstore.Crash(s); err != nil {
		t.Fatal(err)
	}
	// The crashed log beside the replayed file: nothing to replay.
	putLogBack(t, crashed, path)
	s = open(t, path, noCheckpoint)
	if st := s.Stats(); st.Replayed != 0 {
		t.Errorf("second open: Stats.Replayed = %d; want 0", st.Replayed)
	}
	if got := storeKeys(t, s, queuePath); !reflect.DeepEqual(got, want) {
		t.Fatalf("second open: the file holds %v; want %v", got, want)
	}
	for range 2 {
		p := filepath.Join(t.TempDir(), "again.db")
		copyStore(t, crashed, p)
		s := open(t, p, noCheckpoint)
		if got := storeKeys(t, s, queuePath); !reflect.DeepEqual(got, want) {
			t.Fatalf("replay of a copy: the file holds %v; want %v", got, want)
		}
	}
}

// TestKeyedPutDeleteCoalesced: a put and the delete of its key logged
// before the same checkpoint never reach the file: the put would have
// created its bucket, and the bucket is not there. With a checkpoint
// between them (the control) it is.
func TestKeyedPutDeleteCoalesced(t *testing.T) {
	gone := [][]byte{[]byte("bridge/gone")}
	for _, between := range []bool{false, true} {
		t.Run(fmt.Sprintf("checkpoint_between=%v", between), func(t *testing.T) {
			s, path := tempStore(t, noCheckpoint)
			mustLog(t, s, boltstore.KeyedOp{Bucket: gone, Key: []byte("k"), Value: []byte("v")})
			if between {
				if err := s.Checkpoint(); err != nil {
					t.Fatal(err)
				}
			}
			mustLog(t, s, boltstore.KeyedOp{Bucket: gone, Key: []byte("k"), Delete: true})
			if err := s.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			if st := s.Stats(); st.Checkpoints == 0 {
				t.Fatalf("Stats.Checkpoints = 0; want the log applied")
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			got := fileKeys(t, path, gone)
			switch {
			case !between && got != nil:
				t.Fatalf("bucket %q exists (%v); the coalesced put must not have reached the file", gone[0], got)
			case between && (got == nil || len(got) != 0):
				t.Fatalf("bucket %q holds %v; want it created by the checkpointed put and empty", gone[0], got)
			}
		})
	}
}

// TestKeyedGetOverlay: Get sees logged keyed ops before their checkpoint
// (the file does not hold them yet), deletes included, and the file's
// values once the checkpoint has applied them.
func TestKeyedGetOverlay(t *testing.T) {
	s, _ := tempStore(t, noCheckpoint)
	mustLog(t, s, put("a", "1"), put("b", "2"), put("e", ""))
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	// b and e only in the file, a replaced and c added in the log, then
	// a deleted.
	mustLog(t, s, put("a", "1b"), put("c", "3"))
	mustLog(t, s, del("a"), del("x"))
	if got := storeKeys(t, s, queuePath); !reflect.DeepEqual(got, map[string]string{"a": "1", "b": "2", "e": ""}) {
		t.Fatalf("the file holds %v before the checkpoint; want the first three keys only", got)
	}
	want := map[string]string{"b": "2", "c": "3", "e": ""}
	if got := getAll(t, s, queuePath, "a", "b", "c", "e", "x"); !reflect.DeepEqual(got, want) {
		t.Fatalf("Get before the checkpoint = %v; want %v", got, want)
	}
	if got := getAll(t, s, [][]byte{[]byte("bridge/none")}, "a"); len(got) != 0 {
		t.Fatalf("Get in a bucket that does not exist = %v; want nothing", got)
	}
	if err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if got := storeKeys(t, s, queuePath); !reflect.DeepEqual(got, want) {
		t.Fatalf("the file holds %v after the checkpoint; want %v", got, want)
	}
	if got := getAll(t, s, queuePath, "a", "b", "c", "e", "x"); !reflect.DeepEqual(got, want) {
		t.Fatalf("Get after the checkpoint = %v; want %v", got, want)
	}
}

// TestKeyedGetDuringCheckpoints: random puts and deletes over a few keys,
// with checkpoints running in the background all the while (a small
// CheckpointBytes): every Get after a Log's done sees exactly what a map
// holding the same ops holds.
func TestKeyedGetDuringCheckpoints(t *testing.T) {
	s, _ := tempStore(t, boltstore.Options{Sync: boltstore.SyncNever, CheckpointBytes: 2 << 10, CheckpointInterval: time.Millisecond})
	rng := rand.New(rand.NewPCG(3, 4))
	keys := []string{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"}
	model := map[string]string{}
	for round := range 2000 {
		var ops []boltstore.KeyedOp
		for range 1 + rng.IntN(4) {
			k := keys[rng.IntN(len(keys))]
			if rng.IntN(3) == 0 {
				ops = append(ops, del(k))
				delete(model, k)
			} else {
				v := fmt.Sprintf("%d-%s", round, strings.Repeat("v", rng.IntN(200)))
				ops = append(ops, put(k, v))
				model[k] = v
			}
		}
		mustLog(t, s, ops...)
		if got := getAll(t, s, queuePath, keys...); !reflect.DeepEqual(got, model) {
			t.Fatalf("round %d: Get = %v; want %v", round, got, model)
		}
	}
	if st := s.Stats(); st.Checkpoints < 2 {
		t.Fatalf("Stats.Checkpoints = %d; want checkpoints during the test", st.Checkpoints)
	}
}

// TestKeyedOpRefused: a keyed op the file could not hold fails its own
// call only; the calls around it commit.
func TestKeyedOpRefused(t *testing.T) {
	s, _ := tempStore(t, noCheckpoint)
	for _, bad := range []boltstore.KeyedOp{
		{Bucket: [][]byte{[]byte("core.sessions")}, Key: []byte("k"), Value: []byte("v")},
		{Bucket: queuePath, Value: []byte("no key")},
		{Key: []byte("no bucket")},
		{Bucket: [][]byte{[]byte("b"), nil}, Key: []byte("k")},
		{Bucket: queuePath, Key: make([]byte, bbolt.MaxKeySize+1)},
	} {
		errs := make(chan error, 3)
		s.Log([]boltstore.KeyedOp{put("before", "1")}, func(err error) { errs <- err })
		s.Commit([]mqttcore.Op{sessionOp(&mqttcore.SessionRecord{ID: 9, ClientID: "c9", Expiry: time.Hour})}, func(err error) { errs <- err })
		s.Log([]boltstore.KeyedOp{put("ok", "2"), bad}, func(err error) { errs <- err })
		for i := range 3 {
			err := <-errs
			if (err != nil) != (i == 2) {
				t.Fatalf("op %+v: call %d done(%v); want an error only for the call holding it", bad, i, err)
			}
		}
	}
	if got := getAll(t, s, queuePath, "before", "ok"); !reflect.DeepEqual(got, map[string]string{"before": "1"}) {
		t.Fatalf("Get = %v; want before only (the failed call's other op is not logged)", got)
	}
}

// TestLogVersion1Upgraded: log segments written by a gannet of log
// format version 1 are replayed, and their headers are rewritten to the
// current version, so that the older gannet refuses them from then on.
func TestLogVersion1Upgraded(t *testing.T) {
	s, path := tempStore(t, noCheckpoint)
	commitSessions(t, s, 1, 3)
	if err := boltstore.Crash(s); err != nil {
		t.Fatal(err)
	}
	for _, seg := range []string{path + ".wal.0", path + ".wal.1"} {
		data, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		binary.BigEndian.PutUint32(data[16:], 1)
		if err := os.WriteFile(seg, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s = open(t, path, noCheckpoint)
	if st := s.Stats(); st.Replayed != 3 {
		t.Errorf("Stats.Replayed = %d; want 3", st.Replayed)
	}
	wantSessions(t, s, 3)
	for _, seg := range []string{path + ".wal.0", path + ".wal.1"} {
		data, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		if v := binary.BigEndian.Uint32(data[16:]); v != boltstore.LogVersion {
			t.Errorf("%s: version %d after open; want %d", seg, v, boltstore.LogVersion)
		}
	}
}

// BenchmarkKeyedLog logs one 64-byte put per call from 64 goroutines, as
// the bridge's queue appends, and reports the heap the store holds per
// key logged and not yet checkpointed beyond the log records themselves
// (overlay-B/key: the overlay's index), measured after the run, before
// any checkpoint.
func BenchmarkKeyedLog(b *testing.B) {
	s, _ := tempStore(b, noCheckpoint)
	val := make([]byte, 64+8)
	path := [][]byte{[]byte("bridge/bench"), []byte("queue")}
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	st0 := s.Stats()
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Uint64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan error, 1)
			for {
				i := next.Add(1)
				if i > uint64(b.N) {
					return
				}
				s.Log([]boltstore.KeyedOp{{Bucket: path, Key: binary.BigEndian.AppendUint64(nil, i), Value: val}}, func(err error) { done <- err })
				if err := <-done; err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	st := s.Stats()
	logBytes := st.LogBytes - st0.LogBytes
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64(st.Calls-st0.Calls)/float64(max(st.Batches-st0.Batches, 1)), "calls/record")
	held := int64(ms1.HeapAlloc) - int64(ms0.HeapAlloc)
	b.ReportMetric(float64(held)/float64(b.N), "heap-B/key")
	b.ReportMetric(float64(held-int64(logBytes))/float64(b.N), "overlay-B/key")
}

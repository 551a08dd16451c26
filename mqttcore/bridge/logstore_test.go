package bridge_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
	"github.com/gannet-mqtt/gannet/mqttcore/bridge"
)

// logOnly keeps everything in the core store's log: no checkpoint during
// a test but at Close.
var logOnly = boltstore.Options{CheckpointBytes: 1 << 30, CheckpointInterval: time.Hour}

func openCoreStore(t testing.TB, path string) *boltstore.Store {
	t.Helper()
	st, err := boltstore.Open(path, logOnly)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// queueRecords counts the records the bbolt file itself holds in the
// queue and client buckets of bridge name (-1: no such bucket), reading
// the file with plain bbolt.
func queueRecords(t testing.TB, path, name string) (queued, inflight int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	queued, inflight = -1, -1
	_ = db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket([]byte("bridge/" + name))
		if root == nil {
			return nil
		}
		if b := root.Bucket([]byte("queue")); b != nil {
			queued = b.Stats().KeyN
		}
		if b := root.Bucket([]byte("client")); b != nil {
			inflight = b.Stats().KeyN
		}
		return nil
	})
	return queued, inflight
}

// TestBridgeCoreLogServesSender: with the queue in the core's store and
// no checkpoint at all while it runs, every message the sender takes is
// read from the log's pending records (the bbolt file never holds it),
// all arrive in order, once; the hand-overs and removals, logged too,
// leave nothing queued or in flight after a restart.
func TestBridgeCoreLogServesSender(t *testing.T) {
	m := newMosquitto(t, "")
	m.start()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "core.db")
	st := openCoreStore(t, path)
	remote := dialRemote(t, ctx, fmt.Sprintf("127.0.0.1:%d", m.port), "central-app")
	remote.subscribe(t, ctx, "site/#", 1)
	core := newCore(t)
	cfg := testConfig(t, "logged", m.url(), bridge.Rule{Pattern: "site/#", Direction: bridge.Out, QoS: 1})
	log, lr := testLogger(t)
	b, err := bridge.New(cfg, core, bridge.Options{Backend: st, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	// Connecting reads the session records (an Update, which applies the
	// log); from then on nothing applies it.
	lr.waitFor(t, ctx, "bridge connected")
	before := st.Stats()
	publishN(t, core, 4, 250, 8)
	if dups, _ := checkArrivals(t, ctx, remote, 4, 1000, 0); dups != 0 {
		t.Fatalf("%d duplicates without a restart", dups)
	}
	after := st.Stats()
	if after.Checkpoints != before.Checkpoints || after.BoltTxs != before.BoltTxs {
		t.Fatalf("core store made %d checkpoints and %d bbolt transactions while the messages went through; want none (the sender reads through the log)",
			after.Checkpoints-before.Checkpoints, after.BoltTxs-before.BoltTxs)
	}
	if after.LogSyncs == before.LogSyncs {
		t.Fatal("no log sync while the messages went through; want their appends logged")
	}
	var q int
	err = st.View(func(tx *bolt.Tx) error {
		q = tx.Bucket([]byte("bridge/logged")).Bucket([]byte("queue")).Stats().KeyN
		return nil
	})
	if err != nil || q != 0 {
		t.Fatalf("the bbolt file's queue holds %d records (%v); want 0: no append reached it", q, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// Every message was handed over before it was sent, so none is
	// queued; PUBACKs still on their way at Close leave their messages in
	// flight, at most max_inflight (the default, 256) of them.
	if q, f := queueRecords(t, path, "logged"); q != 0 || f < 0 || f > 256 {
		t.Fatalf("after close the file holds %d queued and %d in-flight records; want 0 and at most 256", q, f)
	}
}

// TestBridgeCoreLogCrash: messages acknowledged while the remote is down
// are in the core store's log only (no checkpoint: the bbolt file's queue
// is empty); a crash image of the files (copied while the process runs,
// what SIGKILL leaves) opened by a new process delivers all of them, in
// order, once.
func TestBridgeCoreLogCrash(t *testing.T) {
	m := newMosquitto(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const pubs, each = 5, 200
	dir := t.TempDir()
	path := filepath.Join(dir, "core.db")
	st1 := openCoreStore(t, path)
	cfg := testConfig(t, "crash", m.url(), bridge.Rule{Pattern: "site/#", Direction: bridge.Out, QoS: 1})
	core1, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b1, err := bridge.New(cfg, core1, bridge.Options{Backend: st1})
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, core1, pubs, each, 16)
	if s := b1.Stats(); s.Depth != pubs*each {
		t.Fatalf("Depth %d after publishing with the remote down; want %d", s.Depth, pubs*each)
	}
	// The crash image: the files as they are now, the process running.
	image := filepath.Join(t.TempDir(), "image.db")
	for _, suffix := range []string{"", ".wal.0", ".wal.1"} {
		data, err := os.ReadFile(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(image+suffix, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b1.Close()
	core1.Close()
	st1.Close()
	if q, _ := queueRecords(t, image, "crash"); q != 0 {
		t.Fatalf("the crash image's bbolt file holds %d queued messages; want 0 (all in the log)", q)
	}

	st2 := openCoreStore(t, image)
	if s := st2.Stats(); s.Replayed == 0 {
		t.Fatal("Stats.Replayed = 0; want the logged appends replayed")
	}
	m.start()
	remote := dialRemote(t, ctx, fmt.Sprintf("127.0.0.1:%d", m.port), "central-app")
	remote.subscribe(t, ctx, "site/#", 1)
	b2, err := bridge.New(cfg, newCore(t), bridge.Options{Backend: st2})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if s := b2.Stats(); s.Depth+s.Inflight != pubs*each {
		t.Fatalf("after the restart: Depth %d + Inflight %d; want %d", s.Depth, s.Inflight, pubs*each)
	}
	if dups, _ := checkArrivals(t, ctx, remote, pubs, pubs*each, 0); dups != 0 {
		t.Fatalf("%d duplicates; want none (nothing was in flight at the crash)", dups)
	}
}

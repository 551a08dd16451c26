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
	"github.com/gannet-mqtt/gannet/mqttcore/bridge"
)

// TestBridgeOwnLogCrash: a queue in its own file (queue.path) commits
// through its own write-ahead log. Messages acknowledged while the remote
// is down, with no checkpoint yet (they are in the log segments only: the
// bbolt file's queue is empty), survive a crash: a copy of the three
// files taken while the process runs (what SIGKILL leaves), opened by a
// new bridge, delivers all of them, in order, once.
func TestBridgeOwnLogCrash(t *testing.T) {
	m := newMosquitto(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const pubs, each = 5, 200
	cfg := testConfig(t, "owncrash", m.url(), bridge.Rule{Pattern: "site/#", Direction: bridge.Out, QoS: 1})
	cfg.Queue.CheckpointBytes, cfg.Queue.CheckpointInterval = 1<<30, time.Hour // no checkpoint but at Close
	core1, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b1, err := bridge.New(cfg, core1, bridge.Options{})
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, core1, pubs, each, 16)
	if s := b1.Stats(); s.Depth != pubs*each || s.Commits == 0 || s.PendingWrites != 0 {
		t.Fatalf("Depth %d, Commits %d, PendingWrites %d after publishing with the remote down; want %d, some, 0", s.Depth, s.Commits, s.PendingWrites, pubs*each)
	}
	// The crash image: the files as they are now, the process running.
	image := filepath.Join(t.TempDir(), "image.db")
	for _, suffix := range []string{"", ".wal.0", ".wal.1"} {
		data, err := os.ReadFile(cfg.Queue.Path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(image+suffix, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b1.Close()
	core1.Close()
	if q, _ := ownQueueRecords(t, image); q != 0 {
		t.Fatalf("the crash image's bbolt file holds %d queued messages; want 0 (all in the log)", q)
	}

	m.start()
	remote := dialRemote(t, ctx, fmt.Sprintf("127.0.0.1:%d", m.port), "central-app")
	remote.subscribe(t, ctx, "site/#", 1)
	cfg.Queue.Path = image
	b2 := newBridge(t, cfg, newCore(t), nil)
	if s := b2.Stats(); s.Depth+s.Inflight != pubs*each {
		t.Fatalf("after the restart: Depth %d + Inflight %d; want %d", s.Depth, s.Inflight, pubs*each)
	}
	if dups, _ := checkArrivals(t, ctx, remote, pubs, pubs*each, 0); dups != 0 {
		t.Fatalf("%d duplicates; want none (nothing was in flight at the crash)", dups)
	}
}

// ownQueueRecords counts the records a queue's own bbolt file itself
// holds in its queue and client buckets (-1: no such bucket), read with
// plain bbolt.
func ownQueueRecords(t testing.TB, path string) (queued, inflight int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	queued, inflight = -1, -1
	_ = db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte("queue")); b != nil {
			queued = b.Stats().KeyN
		}
		if b := tx.Bucket([]byte("client")); b != nil {
			inflight = b.Stats().KeyN
		}
		return nil
	})
	return queued, inflight
}

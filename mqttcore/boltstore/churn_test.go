package boltstore_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// TestChurnBoundedFile creates and deletes sessions with queued messages
// round after round (reopening the file half-way): freed pages are reused,
// so the pages in use stop growing after the first rounds.
func TestChurnBoundedFile(t *testing.T) {
	const (
		rounds   = 12
		sessions = 400
		queued   = 4
	)
	o := boltstore.Options{Sync: boltstore.SyncNever}
	s, path := tempStore(t, o)
	payload := bytes.Repeat([]byte("p"), 1000)
	var seq, sid uint64
	var sizes []int64
	for round := range rounds {
		if round == rounds/2 {
			s = reopen(t, s, o)
		}
		first := sid + 1
		for range sessions / 50 {
			var ops []mqttcore.Op
			for range 50 {
				sid++
				ops = append(ops, sessionOp(&mqttcore.SessionRecord{ID: sid, ClientID: "sensor", Expiry: time.Hour,
					Subscriptions: []mqttcore.SubscriptionRecord{{Filter: "a/b/#", Options: mqttcore.SubOptions{QoS: 1}}}}),
					mqttcore.Op{Kind: mqttcore.OpFrontEnd, SessionID: sid, FrontEnd: bytes.Repeat([]byte("f"), 60)})
				for range queued {
					seq++
					ops = append(ops, entryOp(sid, mqttcore.QueuedRecord{Seq: seq, QoS: 1,
						Message: &mqttcore.Message{Topic: "a/b/c", Payload: payload, QoS: 1}}))
				}
			}
			mustCommit(t, s, ops...)
		}
		// Into the bbolt file (else the log's checkpoint would coalesce
		// the round's creations with its deletions and the file would
		// never see them).
		if err := s.Checkpoint(); err != nil {
			t.Fatalf("Checkpoint = %v", err)
		}
		// Deliver half of each queue, then end every session.
		var ops []mqttcore.Op
		for id := first; id <= sid; id++ {
			for q := uint64(0); q < queued/2; q++ {
				ops = append(ops, dropOp(id, seq-(sid-id)*queued-q))
			}
		}
		mustCommit(t, s, ops...)
		ops = ops[:0]
		for id := first; id <= sid; id++ {
			ops = append(ops, mqttcore.Op{Kind: mqttcore.OpEndSession, SessionID: id})
		}
		mustCommit(t, s, ops...)
		if err := s.Checkpoint(); err != nil {
			t.Fatalf("Checkpoint = %v", err)
		}
		sizes = append(sizes, s.Stats().UsedBytes)
	}
	if n := messageCount(t, s); n != 0 {
		t.Fatalf("%d messages left after every session ended; want 0", n)
	}
	if got := load(t, s); len(got.sessions) != 0 {
		t.Fatalf("Load: %d sessions left; want 0", len(got.sessions))
	}
	// One round holds about sessions*queued*1 KiB = 1.6 MB. Allow the
	// pages in use to grow by a quarter after round 3, no more.
	if bound := sizes[2] + sizes[2]/4; sizes[rounds-1] > bound {
		t.Errorf("pages in use grew from %d bytes after round 3 to %d after round %d; want at most %d (sizes %v)",
			sizes[2], sizes[rounds-1], rounds, bound, sizes)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pages in use per round: %v; file %d bytes", sizes, fi.Size())
}

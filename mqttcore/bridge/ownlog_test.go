package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	bolt "go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// topBuckets returns the names of the top-level buckets of the bbolt file
// at path, read with plain bbolt.
func topBuckets(t *testing.T, path string) []string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var names []string
	_ = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error { names = append(names, string(name)); return nil })
	})
	return names
}

// copyFixture copies testdata/name into a new directory and returns its
// path there.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// decodePublish decodes a PUBLISH packet.
func decodePublish(t *testing.T, data []byte) *packets.Publish {
	t.Helper()
	cp, err := packets.ReadPacket(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("ReadPacket(%x) = %v", data, err)
	}
	p, ok := cp.Content.(*packets.Publish)
	if !ok {
		t.Fatalf("packet %x is a %T; want a PUBLISH", data, cp.Content)
	}
	return p
}

// TestOpenQueueFileWithoutLog: a queue in its own file written before the
// queue had a write-ahead log (testdata/queue-v0.db, made by OpenStore at
// 7ea7efc; testdata/README.md says how) opens with everything in it: the
// queued messages in order (the one put back at the head below the first
// sequence number first), the message in flight with its packet id, the
// PUBREC record. The file is converted in place (the store's buckets
// added, the bridge's kept) and opens as a store with a log from then on.
func TestOpenQueueFileWithoutLog(t *testing.T) {
	path := copyFixture(t, "queue-v0.db")
	if got := fmt.Sprint(topBuckets(t, path)); got != "[client queue server]" {
		t.Fatalf("fixture buckets %s; want the old format's [client queue server] alone", got)
	}
	s, err := OpenStore(path, StoreOptions{})
	if err != nil {
		t.Fatalf("OpenStore(queue file without a log) = %v", err)
	}
	if !s.adopted {
		t.Error("adopted = false; want the conversion reported")
	}
	if st := s.Stats(); st.Depth != 48 || st.Inflight != 1 {
		t.Fatalf("Depth %d Inflight %d; want 48 queued (old/2..old/49) and 1 in flight (old/1)", st.Depth, st.Inflight)
	}
	fl, err := s.inflight()
	if err != nil || len(fl) != 1 {
		t.Fatalf("inflight() = %d records, %v; want 1", len(fl), err)
	}
	if p := decodePublish(t, fl[0].data()); fl[0].id != 4 || p.PacketID != 4 || p.Topic != "old/1" || string(p.Payload) != "payload 1" || p.QoS != 1 {
		t.Fatalf("in flight: id %d, %s %q qos %d packet id %d; want id 4, old/1 \"payload 1\" qos 1 packet id 4", fl[0].id, p.Topic, p.Payload, p.QoS, p.PacketID)
	}
	if ids, err := s.ServerSession().List(); err != nil || fmt.Sprint(ids) != "[7]" {
		t.Fatalf("server session ids %v, %v; want [7]", ids, err)
	}
	if err := s.Append(pubPacket(t, "new/0", 1, []byte("payload new"))); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	names := topBuckets(t, path)
	for _, want := range []string{"core.meta", "queue", "client", "server"} {
		if !slices.Contains(names, want) {
			t.Fatalf("buckets after the conversion %v; want %s among them", names, want)
		}
	}
	for _, wal := range []string{path + ".wal.0", path + ".wal.1"} {
		if _, err := os.Stat(wal); err != nil {
			t.Fatalf("log segment: %v", err)
		}
	}

	s = openTestStore(t, path, StoreOptions{})
	if s.adopted {
		t.Error("adopted = true on the second open; want it opened as a store")
	}
	if st := s.Stats(); st.Depth != 49 || st.Inflight != 1 {
		t.Fatalf("reopened: Depth %d Inflight %d; want 49 and 1", st.Depth, st.Inflight)
	}
	want := make([]string, 0, 49)
	for i := 2; i < 50; i++ {
		want = append(want, fmt.Sprintf("old/%d", i))
	}
	want = append(want, "new/0")
	var got []string
	for len(got) < len(want)+1 {
		ts, err := s.take(10, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) == 0 {
			break
		}
		for _, m := range ts {
			p := decodePublish(t, m.data())
			i := len(got)
			wantQoS, wantPayload := byte(1), "payload new"
			if i < 48 {
				n := i + 2
				wantPayload = fmt.Sprintf("payload %d", n)
				if n >= 3 {
					wantQoS = byte(n % 3)
				}
			}
			if string(p.Payload) != wantPayload || p.QoS != wantQoS {
				t.Fatalf("message %d (%s): payload %q qos %d; want %q qos %d", i, p.Topic, p.Payload, p.QoS, wantPayload, wantQoS)
			}
			got = append(got, p.Topic)
		}
		if err := s.moveAsync(ts, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("queue holds %v; want %v", got, want)
	}
}

// TestOpenQueueFileForeign: a bbolt file at queue.path with buckets that
// are not a queue's is refused and left as it was.
func TestOpenQueueFileForeign(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{"queue", "users"} {
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenStore(path, StoreOptions{})
	if !errors.Is(err, boltstore.ErrForeign) || !strings.Contains(err.Error(), `"users"`) {
		t.Fatalf("OpenStore(a file with a bucket \"users\") = %v; want ErrForeign naming the bucket", err)
	}
	if got := fmt.Sprint(topBuckets(t, path)); got != "[queue users]" {
		t.Fatalf("buckets after the refusal %s; want [queue users]", got)
	}
}

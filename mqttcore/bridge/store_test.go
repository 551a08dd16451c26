package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	bolt "go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// pubPacket encodes a PUBLISH packet.
func pubPacket(t testing.TB, topic string, qos byte, payload []byte) []byte {
	t.Helper()
	p := packets.NewControlPacket(packets.PUBLISH).Content.(*packets.Publish)
	p.Topic, p.QoS, p.Payload = topic, qos, payload
	var buf bytes.Buffer
	if _, err := p.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fakeClock is an injected clock.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func openTestStore(t testing.TB, path string, o StoreOptions) *Store {
	t.Helper()
	s, err := OpenStore(path, o)
	if err != nil {
		t.Fatalf("OpenStore(%s) = %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func enqueue(t testing.TB, s *Store, topic string, qos byte, payload []byte) {
	t.Helper()
	if err := s.Append(pubPacket(t, topic, qos, payload)); err != nil {
		t.Fatalf("Append(%s) = %v", topic, err)
	}
}

// takeN takes up to n messages off the head of the queue and removes them
// from the file (as a QoS 0 hand-over does), returning their topics.
func takeN(t testing.TB, s *Store, n int) []string {
	t.Helper()
	ts, err := s.take(n, nil)
	if err != nil {
		t.Fatalf("take(%d) = %v", n, err)
	}
	if len(ts) == 0 {
		return nil
	}
	topics := make([]string, len(ts))
	for i, m := range ts {
		cp, err := packets.ReadPacket(bytes.NewReader(m.data()))
		if err != nil {
			t.Fatalf("ReadPacket = %v", err)
		}
		topics[i] = cp.Content.(*packets.Publish).Topic
	}
	if err := s.moveAsync(ts, nil, nil); err != nil {
		t.Fatalf("moveAsync = %v", err)
	}
	return topics
}

// drain takes and removes everything, returning the topics in order.
func drain(t testing.TB, s *Store) []string {
	t.Helper()
	var topics []string
	for {
		got := takeN(t, s, 7)
		if len(got) == 0 {
			return topics
		}
		topics = append(topics, got...)
	}
}

func TestQueueOrderAndRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s, err := OpenStore(path, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{}, 100)
	s.setNotify(func() { ready <- struct{}{} })
	for i := range 10 {
		enqueue(t, s, fmt.Sprintf("t/%d", i), byte(i%3), []byte("x"))
	}
	select {
	case <-ready:
	default:
		t.Fatal("no notification after Append")
	}
	// Take two off, then "restart".
	got := takeN(t, s, 2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, path, StoreOptions{})
	if st := s.Stats(); st.Depth != 8 {
		t.Fatalf("Depth after reopen = %d; want 8", st.Depth)
	}
	got = append(got, drain(t, s)...)
	for i, tp := range got {
		if want := fmt.Sprintf("t/%d", i); tp != want {
			t.Fatalf("message %d = %q; want %q (all: %v)", i, tp, want, got)
		}
	}
	if len(got) != 10 {
		t.Fatalf("got %d messages; want 10", len(got))
	}
	// Removals were committed lazily; after a reopen nothing comes back.
	path2 := s.Path()
	s.Close()
	s = openTestStore(t, path2, StoreOptions{})
	if st := s.Stats(); st.Depth != 0 || st.Bytes != 0 {
		t.Fatalf("after drain and reopen: Depth %d Bytes %d; want 0 0", st.Depth, st.Bytes)
	}
}

func TestQueueConcurrentPublishersKeepOrder(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "q.db"), StoreOptions{})
	const pubs, each = 8, 200
	var wg sync.WaitGroup
	for p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := s.Append(pubPacket(t, fmt.Sprintf("p%d/%d", p, i), 1, nil)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	next := make([]int, pubs)
	for _, tp := range drain(t, s) {
		var p, i int
		fmt.Sscanf(tp, "p%d/%d", &p, &i)
		if i != next[p] {
			t.Fatalf("publisher %d: got message %d; want %d", p, i, next[p])
		}
		next[p]++
	}
	for p, n := range next {
		if n != each {
			t.Fatalf("publisher %d: %d messages; want %d", p, n, each)
		}
	}
	st := s.Stats()
	if st.Commits >= st.CommittedOps {
		t.Logf("no batching observed: %d commits for %d writes", st.Commits, st.CommittedOps)
	}
}

func TestQueueBoundDropsQoS0First(t *testing.T) {
	one := int64(len(pubPacket(t, "t/00", 1, make([]byte, 100)))) + entryOverhead // QoS 0 packets are 2 bytes shorter
	tests := []struct {
		name      string
		qos       []byte // of the messages enqueued, in order
		max       int64  // in messages
		wantTopic []string
		wantQ0    uint64
		wantOld   uint64
	}{
		{"qos0 dropped before older qos1", []byte{1, 0, 1, 0, 1}, 3, []string{"t/00", "t/02", "t/04"}, 2, 0},
		{"all qos1: oldest dropped", []byte{1, 1, 1, 1}, 2, []string{"t/02", "t/03"}, 0, 2},
		{"mixed: qos0 gone, then oldest", []byte{0, 1, 1, 1}, 2, []string{"t/02", "t/03"}, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTestStore(t, filepath.Join(t.TempDir(), "q.db"), StoreOptions{MaxBytes: tc.max * one})
			for i, qos := range tc.qos {
				enqueue(t, s, fmt.Sprintf("t/%02d", i), qos, make([]byte, 100))
			}
			st := s.Stats()
			if st.DroppedQoS0 != tc.wantQ0 || st.DroppedOldest != tc.wantOld || st.Dropped != tc.wantQ0+tc.wantOld {
				t.Fatalf("drops: qos0 %d oldest %d total %d; want %d %d %d", st.DroppedQoS0, st.DroppedOldest, st.Dropped, tc.wantQ0, tc.wantOld, tc.wantQ0+tc.wantOld)
			}
			if st.Bytes > tc.max*one {
				t.Fatalf("Bytes = %d above the bound %d", st.Bytes, tc.max*one)
			}
			got := drain(t, s)
			if fmt.Sprint(got) != fmt.Sprint(tc.wantTopic) {
				t.Fatalf("queue holds %v; want %v", got, tc.wantTopic)
			}
		})
	}
}

func TestQueueTooLarge(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "q.db"), StoreOptions{MaxBytes: 100})
	err := s.Append(pubPacket(t, "big", 1, make([]byte, 200)))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append(200 bytes) with max 100 = %v; want ErrTooLarge", err)
	}
	if st := s.Stats(); st.TooLarge != 1 || st.Dropped != 1 || st.Depth != 0 {
		t.Fatalf("stats = %+v; want TooLarge 1, Dropped 1, Depth 0", st)
	}
}

func TestQueueAgeExpiry(t *testing.T) {
	var clk fakeClock
	clk.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	path := filepath.Join(t.TempDir(), "q.db")
	s := openTestStore(t, path, StoreOptions{MaxAge: time.Minute, Now: clk.now})
	enqueue(t, s, "old", 1, nil)
	clk.advance(40 * time.Second)
	enqueue(t, s, "young", 1, nil)
	if got := s.Stats().OldestAge; got != 40*time.Second {
		t.Fatalf("OldestAge = %v; want 40s", got)
	}
	clk.advance(30 * time.Second) // "old" is 70s old, "young" 30s
	s.Expire()
	st := s.Stats()
	if st.Expired != 1 || st.Depth != 1 || st.OldestAge != 30*time.Second {
		t.Fatalf("after Expire: Expired %d Depth %d OldestAge %v; want 1 1 30s", st.Expired, st.Depth, st.OldestAge)
	}
	s.Close()
	// The expiry is on disk too; after another 31s take expires "young".
	s = openTestStore(t, path, StoreOptions{MaxAge: time.Minute, Now: clk.now})
	if st := s.Stats(); st.Depth != 1 {
		t.Fatalf("Depth after reopen = %d; want 1", st.Depth)
	}
	clk.advance(31 * time.Second)
	if got := takeN(t, s, 10); len(got) != 0 {
		t.Fatalf("take of an expired queue = %v; want nothing", got)
	}
	if st := s.Stats(); st.Expired != 1 || st.Depth != 0 {
		t.Fatalf("Expired %d Depth %d; want 1 0 (counters are per process)", st.Expired, st.Depth)
	}
}

// TestMoveTakesMessagesOutOfQueue checks the hand-over from the queue to
// the in-flight records: one transaction, so a message is always in exactly
// one of them, across a restart.
func TestMoveTakesMessagesOutOfQueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s, err := OpenStore(path, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		enqueue(t, s, fmt.Sprintf("t/%d", i), 1, nil)
	}
	// What the sender does: take, give packet ids, record, send.
	ts, err := s.take(2, nil)
	if err != nil || len(ts) != 2 {
		t.Fatalf("take(2) = %d messages, %v; want 2", len(ts), err)
	}
	var recs []flightRec
	for i := range ts {
		id := uint16(i + 1)
		if err := setPacketID(ts[i].data(), id); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, flightRec{id: id, rec: ts[i].rec})
	}
	if err := s.moveAsync(ts, recs, nil); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Depth != 1 || st.Inflight != 2 || st.Sent != 2 {
		t.Fatalf("Depth %d Inflight %d Sent %d; want 1 2 2", st.Depth, st.Inflight, st.Sent)
	}
	s.deleteFlightsAsync([]uint16{1}, nil) // PUBACK for id 1
	s.Close()

	s = openTestStore(t, path, StoreOptions{})
	if st := s.Stats(); st.Depth != 1 || st.Inflight != 1 {
		t.Fatalf("after reopen: Depth %d Inflight %d; want 1 1", st.Depth, st.Inflight)
	}
	fl, err := s.inflight()
	if err != nil || len(fl) != 1 || fl[0].id != 2 {
		t.Fatalf("inflight() after reopen = %v, %v; want id 2", fl, err)
	}
	cp, err := packets.ReadPacket(bytes.NewReader(fl[0].data()))
	if p, ok := cp.Content.(*packets.Publish); err != nil || !ok || p.Topic != "t/1" || p.PacketID != 2 {
		t.Fatalf("in-flight record = %v, %v; want the PUBLISH of t/1 with id 2", cp, err)
	}
	if got := drain(t, s); fmt.Sprint(got) != "[t/2]" {
		t.Fatalf("queue after reopen = %v; want [t/2]", got)
	}
}

// TestRequeue: when the remote lost our session, in-flight messages go
// back to the head of the queue in order instead of being lost.
func TestRequeue(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "q.db"), StoreOptions{})
	for i := range 4 {
		enqueue(t, s, fmt.Sprintf("t/%d", i), 1, nil)
	}
	ts, _ := s.take(2, nil)
	recs := []flightRec{{10, ts[0].rec}, {11, ts[1].rec}}
	if err := s.moveAsync(ts, recs, nil); err != nil {
		t.Fatal(err)
	}
	// A PUBREL in flight is not a message; requeue drops it.
	if err := s.pubrelAsync(12, []byte{0x62, 2, 0, 12}, nil); err != nil {
		t.Fatal(err)
	}
	n, err := s.requeue()
	if err != nil || n != 2 {
		t.Fatalf("requeue() = %d, %v; want 2", n, err)
	}
	if fl, _ := s.inflight(); len(fl) != 0 {
		t.Fatalf("inflight() after requeue = %v; want none", fl)
	}
	if got := drain(t, s); fmt.Sprint(got) != "[t/0 t/1 t/2 t/3]" {
		t.Fatalf("queue after requeue = %v; want [t/0 t/1 t/2 t/3]", got)
	}
	if st := s.Stats(); st.Requeued != 2 {
		t.Fatalf("Requeued = %d; want 2", st.Requeued)
	}
}

func TestStoreClosed(t *testing.T) {
	s, err := OpenStore(filepath.Join(t.TempDir(), "q.db"), StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Append(pubPacket(t, "a", 1, nil)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v; want ErrClosed", err)
	}
	if _, err := s.take(1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("take after Close = %v; want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

func TestEnqueueRejectsNonPublish(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "q.db"), StoreOptions{})
	var buf bytes.Buffer
	(&packets.Pubrel{PacketID: 1}).WriteTo(&buf)
	if err := s.Append(buf.Bytes()); err == nil {
		t.Fatal("Append(PUBREL) succeeded; want an error")
	}
	if err := s.Append(nil); err == nil {
		t.Fatal("Append(empty) succeeded; want an error")
	}
}

// queueDiskBytes returns the disk space a queue's own file and its log
// segments take (allocated blocks, as du counts them: bbolt extends the
// file ahead of its pages sparsely).
func queueDiskBytes(t testing.TB, path string) int64 {
	t.Helper()
	var n int64
	for _, p := range []string{path, path + ".wal.0", path + ".wal.1"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			t.Skipf("no block count for %s on this system", p)
		}
		n += st.Blocks * 512
	}
	return n
}

// TestQueueFileStaysBounded: a long outage with a small byte cap keeps the
// bbolt file and its log small (freed pages are reused; checkpoints free
// the log's segments).
func TestQueueFileStaysBounded(t *testing.T) {
	const maxBytes = 64 << 10
	path := filepath.Join(t.TempDir(), "q.db")
	// Small checkpoints: many, while the messages come, each freeing the
	// pages of the messages dropped since the last.
	s := openTestStore(t, path, StoreOptions{MaxBytes: maxBytes, CheckpointBytes: 64 << 10})
	payload := make([]byte, 200)
	n := 5000
	if testing.Short() {
		n = 1000
	}
	var wg sync.WaitGroup
	for p := range 8 { // concurrent publishers share commits
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < n; i += 8 {
				if err := s.Append(pubPacket(t, fmt.Sprintf("t/%d", i), byte(1+i%2), payload)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	st := s.Stats()
	if st.Bytes > maxBytes {
		t.Fatalf("Bytes = %d above max_bytes %d", st.Bytes, maxBytes)
	}
	if int(st.Enqueued) != n || int(st.DroppedOldest)+st.Depth != n {
		t.Fatalf("Enqueued %d, DroppedOldest %d + Depth %d; want %d and a sum of %d", st.Enqueued, st.DroppedOldest, st.Depth, n, n)
	}
	ckpts := s.own.Stats().Checkpoints
	if ckpts < 2 {
		t.Fatalf("%d checkpoints while %d messages were queued with 64 KiB checkpoints; want several", ckpts, n)
	}
	s.Close()
	if limit, du := int64(1<<20), queueDiskBytes(t, path); du > limit {
		t.Fatalf("bbolt file and log take %d bytes on disk after %d messages with max_bytes %d; want under %d", du, n, maxBytes, limit)
	}
	t.Logf("file and log %d bytes on disk, queue %d bytes in %d messages, %d dropped, %d checkpoints",
		queueDiskBytes(t, path), st.Bytes, st.Depth, st.Dropped, ckpts)
}

// TestAppendWithoutWaiting: messages appended without waiting for their
// commit are in order with waited ones and on disk after Close.
func TestAppendWithoutWaiting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s, err := OpenStore(path, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		data := append(make([]byte, 8), pubPacket(t, fmt.Sprintf("t/%d", i), byte(i%2), nil)...)
		if err := s.append(data, i%2 == 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, path, StoreOptions{})
	if got := drain(t, s); fmt.Sprint(got) != "[t/0 t/1 t/2 t/3 t/4 t/5]" {
		t.Fatalf("after reopen the queue holds %v; want t/0 .. t/5 in order", got)
	}
}

// TestAppendAsync: a durable append's done runs after its commit, on the
// committer; a QoS 0 append's before appendAsync returns.
func TestAppendAsync(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "q.db"), StoreOptions{})
	var q0done bool
	data := append(make([]byte, 8), pubPacket(t, "q0", 0, nil)...)
	if err := s.appendAsync(data, false, func(err error) { q0done = err == nil }); err != nil || !q0done {
		t.Fatalf("appendAsync(QoS 0) = %v, done called: %v; want nil, true", err, q0done)
	}
	done := make(chan error, 1)
	data = append(make([]byte, 8), pubPacket(t, "q1", 1, nil)...)
	if err := s.appendAsync(data, true, func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("done(%v); want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("done not called within 10s")
	}
	if st := s.Stats(); st.Enqueued != 2 || st.Commits == 0 || st.CommitTime <= 0 || st.MaxCommitTime <= 0 {
		t.Fatalf("stats = %+v; want Enqueued 2 and commit times recorded", st)
	}
	if err := s.appendAsync(make([]byte, 12), true, func(error) { t.Error("done called for a refused message") }); err == nil {
		t.Fatal("appendAsync(not a PUBLISH) = nil; want an error")
	}
}

// TestCommitIsolatesFailingWrite: one write failing in a batch fails alone;
// the others in the batch commit.
func TestCommitIsolatesFailingWrite(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "q.db"), StoreOptions{})
	// Hold the committer inside a commit so the next writes form one batch.
	release := make(chan struct{})
	entered := make(chan struct{})
	s.sendMu.Lock()
	s.submitLocked(&write{apply: func(*bolt.Tx) error { close(entered); <-release; return nil }})
	s.sendMu.Unlock()
	<-entered
	errs := make([]chan error, 3)
	s.sendMu.Lock()
	for i := range errs {
		errs[i] = make(chan error, 1)
		s.submitLocked(&write{
			apply: func(tx *bolt.Tx) error {
				if i == 1 {
					return errors.New("broken write")
				}
				return tx.Bucket(bucketServer).Put(idKey(uint16(i)), []byte{7: byte(i)})
			},
			done: func(err error) { errs[i] <- err },
		})
	}
	s.sendMu.Unlock()
	before := s.Stats().Commits
	close(release)
	for i, ch := range errs {
		err := <-ch
		if (err != nil) != (i == 1) {
			t.Fatalf("write %d: done(%v); want an error only for write 1", i, err)
		}
	}
	st := s.Stats()
	if st.FailedWrites != 1 || st.Commits-before != 2 {
		t.Fatalf("FailedWrites %d, commits %d; want 1 and 2 (the held write's, then the batch's)", st.FailedWrites, st.Commits-before)
	}
	ids, err := s.ServerSession().List()
	if err != nil || fmt.Sprint(ids) != "[0 2]" {
		t.Fatalf("committed records %v, %v; want [0 2]", ids, err)
	}
}

// TestStoresShareOneCommit: two stores in one file (each under its own
// root bucket) on one commit pipeline: writes of both made while a commit
// runs go to disk in the next single commit, and each store reads back only
// its own messages.
func TestStoresShareOneCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	c, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := OpenSharedStore(c, "bridge/a", StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenSharedStore(c, "bridge/b", StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Hold the committer inside a commit so the next writes form one batch.
	release, entered := make(chan struct{}), make(chan struct{})
	c.Update(func(*bolt.Tx) error { close(entered); <-release; return nil }, nil)
	<-entered
	done := make(chan error, 4)
	for i, s := range []*Store{a, b, a, b} {
		data := append(make([]byte, 8), pubPacket(t, fmt.Sprintf("%c/%d", 'a'+i%2, i), 1, nil)...)
		if err := s.appendAsync(data, true, func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
	}
	before := c.Stats().Batches
	close(release)
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Stats().Batches - before; n != 2 {
		t.Fatalf("%d commits after the held one was released; want 2 (it, then one for both stores)", n)
	}
	if got := drain(t, a); fmt.Sprint(got) != "[a/0 a/2]" {
		t.Fatalf("store a holds %v; want [a/0 a/2]", got)
	}
	if got := drain(t, b); fmt.Sprint(got) != "[b/1 b/3]" {
		t.Fatalf("store b holds %v; want [b/1 b/3]", got)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Append(pubPacket(t, "b/4", 1, nil)); err != nil {
		t.Fatalf("Append to b after a closed = %v; the shared pipeline must stay open", err)
	}
	b.Close()
	// Reopened from the shared file, b still holds its own.
	b, err = OpenSharedStore(c, "bridge/b", StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := drain(t, b); fmt.Sprint(got) != "[b/4]" {
		t.Fatalf("store b reopened holds %v; want [b/4]", got)
	}
}

package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho/queue"
	"github.com/eclipse/paho.golang/packets"
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

// readPub decodes an entry's PUBLISH packet.
func readPub(t testing.TB, e queue.Entry) *packets.Publish {
	t.Helper()
	r, err := e.Reader()
	if err != nil {
		t.Fatalf("Reader() = %v", err)
	}
	cp, err := packets.ReadPacket(r)
	if err != nil {
		t.Fatalf("ReadPacket = %v", err)
	}
	return cp.Content.(*packets.Publish)
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

func enqueue(t testing.TB, q *Queue, topic string, qos byte, payload []byte) {
	t.Helper()
	if err := q.Enqueue(bytes.NewReader(pubPacket(t, topic, qos, payload))); err != nil {
		t.Fatalf("Enqueue(%s) = %v", topic, err)
	}
}

// drain peeks and removes everything, returning the topics in order.
func drain(t testing.TB, q *Queue) []string {
	t.Helper()
	var topics []string
	for {
		e, err := q.Peek()
		if errors.Is(err, queue.ErrEmpty) {
			return topics
		}
		if err != nil {
			t.Fatalf("Peek() = %v", err)
		}
		topics = append(topics, readPub(t, e).Topic)
		if err := e.Remove(); err != nil {
			t.Fatalf("Remove() = %v", err)
		}
	}
}

func TestQueueOrderAndRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s, err := OpenStore(path, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	q := s.Queue()
	select {
	case <-q.Wait():
		t.Fatal("Wait() closed on an empty queue")
	default:
	}
	w := q.Wait()
	for i := range 10 {
		enqueue(t, q, fmt.Sprintf("t/%d", i), byte(i%3), []byte("x"))
	}
	select {
	case <-w:
	default:
		t.Fatal("Wait() channel not closed after Enqueue")
	}
	// Take two off, peek and leave the third, then "restart".
	got := []string{}
	for range 2 {
		e, err := q.Peek()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, readPub(t, e).Topic)
		e.Remove()
	}
	e, _ := q.Peek()
	if tp := readPub(t, e).Topic; tp != "t/2" {
		t.Fatalf("third Peek topic = %q; want t/2", tp)
	}
	e.Leave()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, path, StoreOptions{})
	if st := s.Stats(); st.Depth != 8 {
		t.Fatalf("Depth after reopen = %d; want 8", st.Depth)
	}
	got = append(got, drain(t, s.Queue())...)
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
	q := s.Queue()
	const pubs, each = 8, 200
	var wg sync.WaitGroup
	for p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := q.Enqueue(bytes.NewReader(pubPacket(t, fmt.Sprintf("p%d/%d", p, i), 1, nil))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	next := make([]int, pubs)
	for _, tp := range drain(t, q) {
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
				enqueue(t, s.Queue(), fmt.Sprintf("t/%02d", i), qos, make([]byte, 100))
			}
			st := s.Stats()
			if st.DroppedQoS0 != tc.wantQ0 || st.DroppedOldest != tc.wantOld || st.Dropped != tc.wantQ0+tc.wantOld {
				t.Fatalf("drops: qos0 %d oldest %d total %d; want %d %d %d", st.DroppedQoS0, st.DroppedOldest, st.Dropped, tc.wantQ0, tc.wantOld, tc.wantQ0+tc.wantOld)
			}
			if st.Bytes > tc.max*one {
				t.Fatalf("Bytes = %d above the bound %d", st.Bytes, tc.max*one)
			}
			got := drain(t, s.Queue())
			if fmt.Sprint(got) != fmt.Sprint(tc.wantTopic) {
				t.Fatalf("queue holds %v; want %v", got, tc.wantTopic)
			}
		})
	}
}

func TestQueueTooLarge(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "q.db"), StoreOptions{MaxBytes: 100})
	err := s.Queue().Enqueue(bytes.NewReader(pubPacket(t, "big", 1, make([]byte, 200))))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Enqueue(200 bytes) with max 100 = %v; want ErrTooLarge", err)
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
	enqueue(t, s.Queue(), "old", 1, nil)
	clk.advance(40 * time.Second)
	enqueue(t, s.Queue(), "young", 1, nil)
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
	// The expiry is on disk too; after another 31s Peek expires "young".
	s = openTestStore(t, path, StoreOptions{MaxAge: time.Minute, Now: clk.now})
	if st := s.Stats(); st.Depth != 1 {
		t.Fatalf("Depth after reopen = %d; want 1", st.Depth)
	}
	clk.advance(31 * time.Second)
	if _, err := s.Queue().Peek(); !errors.Is(err, queue.ErrEmpty) {
		t.Fatalf("Peek() of an expired queue = %v; want ErrEmpty", err)
	}
	if st := s.Stats(); st.Expired != 1 || st.Depth != 0 {
		t.Fatalf("Expired %d Depth %d; want 1 0 (counters are per process)", st.Expired, st.Depth)
	}
}

// TestSessionPutTakesHeadOutOfQueue checks the hand-over from the queue to
// the session store: one transaction, so a message is always in exactly one
// of them, across a restart.
func TestSessionPutTakesHeadOutOfQueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s, err := OpenStore(path, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		enqueue(t, s.Queue(), fmt.Sprintf("t/%d", i), 1, nil)
	}
	cs := s.ClientSession()
	// What autopaho's queue loop does: Peek, Put in the session (as
	// paho's AddToSession does), send, Remove.
	for id := uint16(1); id <= 2; id++ {
		e, err := s.Queue().Peek()
		if err != nil {
			t.Fatal(err)
		}
		p := readPub(t, e)
		p.PacketID = id
		if err := cs.Put(id, packets.PUBLISH, p); err != nil {
			t.Fatal(err)
		}
		e.Remove()
	}
	if st := s.Stats(); st.Depth != 1 || st.Inflight != 2 || st.Sent != 2 {
		t.Fatalf("Depth %d Inflight %d Sent %d; want 1 2 2", st.Depth, st.Inflight, st.Sent)
	}
	cs.Delete(1) // PUBACK for id 1
	s.Close()

	s = openTestStore(t, path, StoreOptions{})
	cs = s.ClientSession()
	ids, err := cs.List()
	if err != nil || fmt.Sprint(ids) != "[2]" {
		t.Fatalf("List() after reopen = %v, %v; want [2]", ids, err)
	}
	r, err := cs.Get(2)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := packets.ReadPacket(r)
	if err != nil || cp.Content.(*packets.Publish).Topic != "t/1" {
		t.Fatalf("Get(2) = %v, %v; want the PUBLISH of t/1", cp, err)
	}
	if got := drain(t, s.Queue()); fmt.Sprint(got) != "[t/2]" {
		t.Fatalf("queue after reopen = %v; want [t/2]", got)
	}
	if _, err := cs.Get(1); !errors.Is(err, ErrNotInStore) {
		t.Fatalf("Get(1) after Delete = %v; want ErrNotInStore", err)
	}
}

// TestSessionResetRequeues: when the remote lost our session, in-flight
// messages go back to the head of the queue in order instead of being lost.
func TestSessionResetRequeues(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "q.db"), StoreOptions{})
	for i := range 4 {
		enqueue(t, s.Queue(), fmt.Sprintf("t/%d", i), 1, nil)
	}
	cs := s.ClientSession()
	for id := uint16(10); id < 12; id++ {
		e, _ := s.Queue().Peek()
		p := readPub(t, e)
		p.PacketID = id
		if err := cs.Put(id, packets.PUBLISH, p); err != nil {
			t.Fatal(err)
		}
		e.Remove()
	}
	// A PUBREL in flight is not a message; Reset drops it.
	if err := cs.Put(12, packets.PUBREL, &packets.Pubrel{PacketID: 12}); err != nil {
		t.Fatal(err)
	}
	if err := cs.Reset(); err != nil {
		t.Fatal(err)
	}
	if ids, _ := cs.List(); len(ids) != 0 {
		t.Fatalf("List() after Reset = %v; want none", ids)
	}
	if got := drain(t, s.Queue()); fmt.Sprint(got) != "[t/0 t/1 t/2 t/3]" {
		t.Fatalf("queue after Reset = %v; want [t/0 t/1 t/2 t/3]", got)
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
	if err := s.Queue().Enqueue(bytes.NewReader(pubPacket(t, "a", 1, nil))); !errors.Is(err, ErrClosed) {
		t.Fatalf("Enqueue after Close = %v; want ErrClosed", err)
	}
	if _, err := s.Queue().Peek(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Peek after Close = %v; want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

func TestEnqueueRejectsNonPublish(t *testing.T) {
	s := openTestStore(t, filepath.Join(t.TempDir(), "q.db"), StoreOptions{})
	var buf bytes.Buffer
	(&packets.Pubrel{PacketID: 1}).WriteTo(&buf)
	if err := s.Queue().Enqueue(&buf); err == nil {
		t.Fatal("Enqueue(PUBREL) succeeded; want an error")
	}
	if err := s.Queue().Enqueue(io.LimitReader(bytes.NewReader(nil), 0)); err == nil {
		t.Fatal("Enqueue(empty) succeeded; want an error")
	}
}

// TestQueueFileStaysBounded: a long outage with a small byte cap keeps the
// bbolt file small (freed pages are reused).
func TestQueueFileStaysBounded(t *testing.T) {
	const maxBytes = 64 << 10
	path := filepath.Join(t.TempDir(), "q.db")
	s := openTestStore(t, path, StoreOptions{MaxBytes: maxBytes})
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
				if err := s.Queue().Enqueue(bytes.NewReader(pubPacket(t, fmt.Sprintf("t/%d", i), byte(1+i%2), payload))); err != nil {
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
	s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if limit := int64(1 << 20); fi.Size() > limit {
		t.Fatalf("bbolt file is %d bytes after %d messages with max_bytes %d; want under %d", fi.Size(), n, maxBytes, limit)
	}
	t.Logf("file %d bytes, queue %d bytes in %d messages, %d dropped", fi.Size(), st.Bytes, st.Depth, st.Dropped)
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
	if got := drain(t, s.Queue()); fmt.Sprint(got) != "[t/0 t/1 t/2 t/3 t/4 t/5]" {
		t.Fatalf("after reopen the queue holds %v; want t/0 .. t/5 in order", got)
	}
}

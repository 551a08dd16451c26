package boltstore_test

import (
	"bytes"
	"errors"
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

func props() *mqttcore.Properties {
	return &mqttcore.Properties{
		PayloadFormat:   1,
		MessageExpiry:   90 * time.Second,
		ContentType:     "text/plain",
		ResponseTopic:   "reply/here",
		CorrelationData: []byte{1, 2, 3},
		User:            []mqttcore.UserProperty{{Key: "k", Value: "v"}, {Key: "k", Value: "w"}},
	}
}

// TestRoundTrip writes every kind of op, reopens the file and checks that
// Load gives back the same records, with shared messages shared.
func TestRoundTrip(t *testing.T) {
	s, _ := tempStore(t, boltstore.Options{})
	shared := &mqttcore.Message{Topic: "a/b", Payload: []byte("hello"), QoS: 2, Retain: true, Origin: "pub-1", Props: props()}
	plain := &mqttcore.Message{Topic: "c", Payload: []byte("x"), QoS: 1, Origin: "pub-2"}
	empty := &mqttcore.Message{Topic: "e", QoS: 1}
	s1 := &mqttcore.SessionRecord{
		ID: 7, ClientID: "sensor-7", State: mqttcore.StateAsleep,
		Will:    &mqttcore.Will{Topic: "will/7", Payload: []byte("gone"), QoS: 1, Retain: true, Props: props(), Delay: 5 * time.Second},
		Expiry:  mqttcore.NeverExpire,
		SleepAt: ts(1), ExpireAt: ts(3),
		Subscriptions: []mqttcore.SubscriptionRecord{
			{Filter: "a/#", Options: mqttcore.SubOptions{QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}},
			{Filter: "$share/g/c", Options: mqttcore.SubOptions{QoS: 1}},
		},
		InboundQoS2: []uint16{1, 65535},
	}
	s2 := &mqttcore.SessionRecord{ID: 1 << 40, ClientID: "app", State: mqttcore.StateLost, Expiry: time.Hour, WillAt: ts(2)}
	q1 := mqttcore.QueuedRecord{Seq: 10, Message: shared, QoS: 2, Retain: true, Expires: ts(100)}
	q2 := mqttcore.QueuedRecord{Seq: 11, Message: plain, QoS: 1}
	in1 := mqttcore.QueuedRecord{Seq: 5, Message: empty, QoS: 1, PacketID: 9, Inflight: true}
	rel := mqttcore.QueuedRecord{Seq: 4, QoS: 2, PacketID: 8, Released: true, Inflight: true}
	q1b := q1
	q1b.QoS = 1
	mustCommit(t, s, sessionOp(s1), sessionOp(s2))
	mustCommit(t, s,
		entryOp(7, q2), entryOp(7, q1), entryOp(7, in1), entryOp(7, rel),
		entryOp(1<<40, q1b),
		mqttcore.Op{Kind: mqttcore.OpFrontEnd, SessionID: 7, FrontEnd: []byte("topic ids")},
		mqttcore.Op{Kind: mqttcore.OpRetain, Message: shared},
		mqttcore.Op{Kind: mqttcore.OpRetain, Message: plain},
		mqttcore.Op{Kind: mqttcore.OpRetain, Message: &mqttcore.Message{Topic: "gone", Payload: []byte("1")}},
		mqttcore.Op{Kind: mqttcore.OpUnretain, Topic: "gone"},
	)
	s = reopen(t, s, boltstore.Options{})
	got := load(t, s)

	if got.maxSeq != 11 {
		t.Errorf("Load maxSeq = %d; want 11", got.maxSeq)
	}
	if want := []uint64{7, 1 << 40}; !reflect.DeepEqual(got.order, want) {
		t.Fatalf("Load session order = %v; want %v", got.order, want)
	}
	r1, r2 := got.sessions[7], got.sessions[1<<40]
	want1 := *s1
	want1.Queue = []mqttcore.QueuedRecord{q1, q2}
	want1.Inflight = []mqttcore.QueuedRecord{rel, in1}
	want1.FrontEnd = []byte("topic ids")
	if !reflect.DeepEqual(r1, &want1) {
		t.Errorf("Load session 7 =\n%+v\nwant\n%+v", r1, &want1)
	}
	want2 := *s2
	want2.Queue = []mqttcore.QueuedRecord{q1b}
	if !reflect.DeepEqual(r2, &want2) {
		t.Errorf("Load session 2^40 =\n%+v\nwant\n%+v", r2, &want2)
	}
	if r1.Queue[0].Message != r2.Queue[0].Message {
		t.Errorf("message 10 loaded as two *Message; want one shared")
	}
	if len(got.retained) != 2 || got.retained["gone"] != nil {
		t.Fatalf("Load retained = %v; want a/b and c", got.retained)
	}
	if m := got.retained["c"]; !reflect.DeepEqual(m, plain) {
		t.Errorf("retained c = %+v; want %+v", m, plain)
	}
	m := got.retained["a/b"]
	if m == nil || m.Props == nil || m.Props.MessageExpiry <= 0 || m.Props.MessageExpiry > 90*time.Second {
		t.Fatalf("retained a/b = %+v; want its expiry left in (0, 90s]", m)
	}
	wantM := *shared
	p := *shared.Props
	p.MessageExpiry = m.Props.MessageExpiry
	wantM.Props = &p
	if !reflect.DeepEqual(m, &wantM) {
		t.Errorf("retained a/b = %+v; want %+v", m, &wantM)
	}
}

// messageCount is the number of stored messages, after a checkpoint.
func messageCount(t testing.TB, s *boltstore.Store) int {
	t.Helper()
	if err := s.Checkpoint(); err != nil {
		t.Fatalf("Checkpoint = %v", err)
	}
	n := 0
	err := s.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket([]byte("core.messages")).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatalf("View = %v", err)
	}
	return n
}

// TestMessageStoredOnce checks that a message held by several sessions is
// stored once and deleted with its last entry, across a reopen too.
func TestMessageStoredOnce(t *testing.T) {
	s, _ := tempStore(t, boltstore.Options{})
	m := &mqttcore.Message{Topic: "t", Payload: bytes.Repeat([]byte("p"), 10000), QoS: 1} // on overflow pages
	var ops []mqttcore.Op
	for sid := uint64(1); sid <= 3; sid++ {
		ops = append(ops, sessionOp(&mqttcore.SessionRecord{ID: sid, ClientID: "c" + string(rune('0'+sid))}),
			entryOp(sid, mqttcore.QueuedRecord{Seq: 1, Message: m, QoS: 1}))
	}
	ops = append(ops, entryOp(1, mqttcore.QueuedRecord{Seq: 2, Message: m, QoS: 1}))
	mustCommit(t, s, ops...)
	if n := messageCount(t, s); n != 2 {
		t.Fatalf("stored messages = %d; want 2 (seq 1 once, seq 2)", n)
	}
	// The same entry written again (a retry) adds no reference.
	mustCommit(t, s, entryOp(1, mqttcore.QueuedRecord{Seq: 1, Message: m, QoS: 1, Inflight: true, PacketID: 3}))
	mustCommit(t, s, dropOp(1, 1), dropOp(1, 2))
	if n := messageCount(t, s); n != 1 {
		t.Fatalf("stored messages after session 1 dropped both = %d; want 1", n)
	}
	s = reopen(t, s, boltstore.Options{})
	// Counts are rebuilt from the entries: a PUBREC turning session 2's
	// entry into a released one without its message drops a reference.
	mustCommit(t, s, entryOp(2, mqttcore.QueuedRecord{Seq: 1, QoS: 2, Released: true, Inflight: true, PacketID: 4}))
	if n := messageCount(t, s); n != 1 {
		t.Fatalf("stored messages = %d; want 1 (session 3 still holds seq 1)", n)
	}
	mustCommit(t, s, mqttcore.Op{Kind: mqttcore.OpEndSession, SessionID: 3})
	if n := messageCount(t, s); n != 0 {
		t.Fatalf("stored messages after the last holder ended = %d; want 0", n)
	}
	got := load(t, reopen(t, s, boltstore.Options{}))
	if got.maxSeq != 2 {
		t.Errorf("Load maxSeq = %d; want 2, the highest ever written, though its message has gone", got.maxSeq)
	}
	r := got.sessions[2]
	if len(got.sessions) != 2 || r == nil || len(r.Inflight) != 1 || r.Inflight[0].Message != nil || !r.Inflight[0].Released {
		t.Fatalf("Load = %+v; want sessions 1 and 2, 2 with one released entry", got.sessions)
	}
}

// TestFailingCallIsolated puts a call that cannot apply between two good
// ones in one batch: only its done gets the error, and the others' ops
// are applied once (their re-run does not double a reference).
func TestFailingCallIsolated(t *testing.T) {
	s, _ := tempStore(t, boltstore.Options{})
	// Hold the committer inside a transaction so the next calls queue up
	// and share the following one.
	release := hold(t, s)
	m := &mqttcore.Message{Topic: "t", Payload: []byte("p"), QoS: 1}
	var order []int
	errs := make([]error, 3)
	done := make(chan struct{})
	cb := func(i int) func(error) {
		return func(err error) {
			order = append(order, i)
			errs[i] = err
			if i == 2 {
				close(done)
			}
		}
	}
	s.Commit([]mqttcore.Op{sessionOp(&mqttcore.SessionRecord{ID: 1, ClientID: "a"}),
		entryOp(1, mqttcore.QueuedRecord{Seq: 1, Message: m, QoS: 1})}, cb(0))
	long := &mqttcore.Message{Topic: strings.Repeat("x", bbolt.MaxKeySize+1), Payload: []byte("p")}
	s.Commit([]mqttcore.Op{entryOp(2, mqttcore.QueuedRecord{Seq: 1, Message: m, QoS: 1}),
		{Kind: mqttcore.OpRetain, Message: long}}, cb(1))
	s.Commit([]mqttcore.Op{sessionOp(&mqttcore.SessionRecord{ID: 3, ClientID: "c"}),
		entryOp(3, mqttcore.QueuedRecord{Seq: 1, Message: m, QoS: 1})}, cb(2))
	release()
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatal("done not called")
	}
	if !reflect.DeepEqual(order, []int{0, 1, 2}) {
		t.Errorf("done order = %v; want call order", order)
	}
	if errs[0] != nil || errs[2] != nil {
		t.Errorf("good calls' errors = %v, %v; want nil", errs[0], errs[2])
	}
	if !errors.Is(errs[1], mqttcore.ErrStoreFailed) {
		t.Errorf("failing call's error = %v; want one wrapping ErrStoreFailed", errs[1])
	}
	if st := s.Stats(); st.Isolated != 1 || st.Failed != 1 || st.MaxBatchCalls != 3 {
		t.Errorf("Stats = %+v; want Isolated 1, Failed 1, MaxBatchCalls 3", st)
	}
	got := load(t, s)
	if len(got.sessions) != 2 || got.sessions[1] == nil || got.sessions[3] == nil {
		t.Fatalf("Load sessions = %v; want 1 and 3", got.order)
	}
	// Seq 1 has exactly two references: dropping two entries deletes it.
	mustCommit(t, s, dropOp(1, 1))
	if n := messageCount(t, s); n != 1 {
		t.Fatalf("messages after one drop = %d; want 1", n)
	}
	mustCommit(t, s, dropOp(3, 1))
	if n := messageCount(t, s); n != 0 {
		t.Fatalf("messages after both drops = %d; want 0 (a re-run counted a reference twice)", n)
	}
}

// TestUpdateSharesCommits checks that another user's writes go through the
// same ordered commits and survive a reopen, and that Backup copies them.
func TestUpdateSharesCommits(t *testing.T) {
	s, path := tempStore(t, boltstore.Options{})
	bucket := []byte("bridge.queue")
	errc := make(chan error, 2)
	s.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	}, func(err error) { errc <- err })
	s.Commit([]mqttcore.Op{sessionOp(&mqttcore.SessionRecord{ID: 1, ClientID: "a"})}, func(err error) { errc <- err })
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatalf("commit = %v", err)
		}
	}
	var buf bytes.Buffer
	if _, err := s.Backup(&buf); err != nil {
		t.Fatalf("Backup = %v", err)
	}
	copyPath := filepath.Join(filepath.Dir(path), "restored.db")
	if err := os.WriteFile(copyPath, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, st := range []*boltstore.Store{reopen(t, s, boltstore.Options{}), open(t, copyPath, boltstore.Options{})} {
		var v []byte
		if err := st.View(func(tx *bbolt.Tx) error {
			if b := tx.Bucket(bucket); b != nil {
				v = append(v, b.Get([]byte("k"))...)
			}
			return nil
		}); err != nil || string(v) != "v" {
			t.Errorf("%s: bridge key = %q, %v; want v", st.Path(), v, err)
		}
		if got := load(t, st); len(got.sessions) != 1 {
			t.Errorf("%s: Load sessions = %v; want 1", st.Path(), got.order)
		}
	}
}

// TestCommitAfterClose checks that calls queued before Close commit and a
// call after it fails at once.
func TestCommitAfterClose(t *testing.T) {
	s, path := tempStore(t, boltstore.Options{})
	var before error = errors.New("not called")
	s.Commit([]mqttcore.Op{sessionOp(&mqttcore.SessionRecord{ID: 1, ClientID: "a"})}, func(err error) { before = err })
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if before != nil {
		t.Errorf("commit queued before Close: %v; want nil", before)
	}
	var after error
	s.Commit(nil, func(err error) { after = err })
	if !errors.Is(after, mqttcore.ErrStoreFailed) || !errors.Is(after, boltstore.ErrClosed) {
		t.Errorf("Commit after Close: %v; want ErrStoreFailed and ErrClosed", after)
	}
	if got := load(t, open(t, path, boltstore.Options{})); len(got.sessions) != 1 {
		t.Errorf("Load after reopen: %v; want session 1", got.order)
	}
}

// TestMaxDelayGroups checks that with a delay bound the committer waits
// for more calls: calls made while it waits share one transaction.
func TestMaxDelayGroups(t *testing.T) {
	s, _ := tempStore(t, boltstore.Options{MaxDelay: time.Hour, MaxBatch: 4})
	errc := make(chan error, 4)
	for i := range 4 {
		s.Commit([]mqttcore.Op{sessionOp(&mqttcore.SessionRecord{ID: uint64(i + 1), ClientID: "a"})}, func(err error) { errc <- err })
	}
	// The batch is full at 4 calls, so it commits long before the hour.
	for range 4 {
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("commit = %v", err)
			}
		case <-time.After(waitLimit):
			t.Fatal("a full batch did not commit before MaxDelay")
		}
	}
	if st := s.Stats(); st.Batches != 1 || st.Calls != 4 {
		t.Errorf("Stats = %+v; want 4 calls in 1 batch", st)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []boltstore.Options{
		{Sync: "sometimes"}, {MaxDelay: -1}, {MaxBatch: -1}, {MaxPending: -1}, {InitialMmapSize: -1}, {LockTimeout: -1},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v.Validate() = nil; want an error", o)
		}
		if _, err := boltstore.Open(filepath.Join(t.TempDir(), "x.db"), o); err == nil {
			t.Errorf("Open with %+v = nil error; want one", o)
		}
	}
}

// TestLoadChunksAndOrphans loads more sessions than one read transaction
// takes, with entries and front-end state of sessions that have no header
// before, between (at chunk boundaries) and after them: every session
// comes back whole, the orphans are skipped, counted and deleted.
func TestLoadChunksAndOrphans(t *testing.T) {
	s, _ := tempStore(t, boltstore.Options{Sync: boltstore.SyncNever})
	const n = 2500 // sessions 2, 4, ..., 5000: three chunks of 1024
	shared := &mqttcore.Message{Topic: "t", Payload: []byte("p"), QoS: 1}
	var ops []mqttcore.Op
	for i := uint64(1); i <= n; i++ {
		sid := 2 * i
		ops = append(ops, sessionOp(&mqttcore.SessionRecord{ID: sid, ClientID: "c"}),
			entryOp(sid, mqttcore.QueuedRecord{Seq: sid, Message: &mqttcore.Message{Topic: "t", Payload: []byte{byte(i)}}, QoS: 1}),
			mqttcore.Op{Kind: mqttcore.OpFrontEnd, SessionID: sid, FrontEnd: []byte{byte(i), 1}})
	}
	ops = append(ops, entryOp(2, mqttcore.QueuedRecord{Seq: 1, Message: shared, QoS: 1}))
	orphans := []uint64{1, 2047, 2049, 2051, 4097, 5001, 1 << 60}
	for _, sid := range orphans {
		ops = append(ops, entryOp(sid, mqttcore.QueuedRecord{Seq: 1, Message: shared, QoS: 1}),
			entryOp(sid, mqttcore.QueuedRecord{Seq: 9000 + sid%1000, Message: shared, QoS: 1}),
			mqttcore.Op{Kind: mqttcore.OpFrontEnd, SessionID: sid, FrontEnd: []byte("orphan")})
	}
	mustCommit(t, s, ops...)
	got := load(t, s)
	if len(got.sessions) != n {
		t.Fatalf("Load: %d sessions; want %d", len(got.sessions), n)
	}
	for i := uint64(1); i <= n; i++ {
		r := got.sessions[2*i]
		if r == nil {
			t.Fatalf("session %d missing", 2*i)
		}
		wantQ := 1
		if i == 1 {
			wantQ = 2
		}
		if len(r.Queue) != wantQ || r.Queue[len(r.Queue)-1].Message.Payload[0] != byte(i) || !bytes.Equal(r.FrontEnd, []byte{byte(i), 1}) {
			t.Fatalf("session %d = queue %+v front end %x; want its own entry and state", 2*i, r.Queue, r.FrontEnd)
		}
	}
	if want := uint64(9000 + (1<<60)%1000); got.maxSeq != want {
		t.Errorf("maxSeq = %d; want %d (the orphans' seqs count too)", got.maxSeq, want)
	}
	if st := s.Stats(); st.LoadSkipped != uint64(3*len(orphans)) {
		t.Errorf("LoadSkipped = %d; want %d", st.LoadSkipped, 3*len(orphans))
	}
	// The orphans are gone; the shared message stays for session 2.
	load(t, s)
	if st := s.Stats(); st.LoadSkipped != uint64(3*len(orphans)) {
		t.Errorf("LoadSkipped after a second Load = %d; want no more", st.LoadSkipped)
	}
	s = reopen(t, s, boltstore.Options{})
	q := load(t, s).sessions[2].Queue
	if len(q) != 2 || q[0].Seq != 1 || q[0].Message == nil || string(q[0].Message.Payload) != "p" {
		t.Errorf("session 2's queue after the orphans went = %+v; want the shared message first", q)
	}
	if got := messageCount(t, s); got != n+1 {
		t.Errorf("messages = %d; want %d (the orphans' own ones deleted)", got, n+1)
	}
}

// hold makes the committer wait inside a transaction until the returned
// function is called.
func hold(t *testing.T, s *boltstore.Store) (release func()) {
	t.Helper()
	started, done := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(done) }) }
	t.Cleanup(release) // before the store's Close, which waits for it
	s.Update(func(*bbolt.Tx) error {
		select {
		case started <- struct{}{}:
		default: // a re-run
		}
		<-done
		return nil
	}, nil)
	select {
	case <-started:
	case <-time.After(waitLimit):
		t.Fatal("the holding Update did not start")
	}
	return release
}

// TestQueueFullWaits: with the committer busy and the queue full, Commit
// waits for room, and the wait is counted.
func TestQueueFullWaits(t *testing.T) {
	s, _ := tempStore(t, boltstore.Options{MaxPending: 1})
	release := hold(t, s)
	errc := make(chan error, 2)
	s.Commit(nil, func(err error) { errc <- err }) // fills the queue
	returned := make(chan struct{})
	go func() {
		s.Commit(nil, func(err error) { errc <- err }) // waits for room
		close(returned)
	}()
	deadline := time.Now().Add(waitLimit)
	for s.Stats().QueueWaits == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the second Commit did not wait for room")
		}
		runtime.Gosched()
	}
	select {
	case <-returned:
		t.Fatal("Commit returned while the queue was full")
	default:
	}
	release()
	for range 2 {
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("commit = %v", err)
			}
		case <-time.After(waitLimit):
			t.Fatal("done not called")
		}
	}
	<-returned
}

// TestCommitRacesClose: Commit from many goroutines while Close runs:
// every done is called exactly once, with nil (committed) or ErrClosed.
func TestCommitRacesClose(t *testing.T) {
	s, _ := tempStore(t, boltstore.Options{Sync: boltstore.SyncNever, MaxPending: 4})
	const goroutines, each = 8, 50
	var calls [goroutines * each]atomic.Int32
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				n := g*each + i
				s.Commit([]mqttcore.Op{sessionOp(&mqttcore.SessionRecord{ID: uint64(n + 1), ClientID: "c"})}, func(err error) {
					if err != nil && !errors.Is(err, boltstore.ErrClosed) {
						t.Errorf("commit %d = %v; want nil or ErrClosed", n, err)
					}
					calls[n].Add(1)
				})
			}
		}()
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	wg.Wait()
	for n := range calls {
		if c := calls[n].Load(); c != 1 {
			t.Fatalf("done of commit %d called %d times; want once", n, c)
		}
	}
}

// TestCommitDoesNotAllocate: queueing a Commit allocates nothing on the
// caller's side (it runs on the gateway's loops for every QoS 1/2
// publish).
func TestCommitDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations are not measured under the race detector")
	}
	s, _ := tempStore(t, boltstore.Options{Sync: boltstore.SyncNever})
	ops := []mqttcore.Op{{Kind: mqttcore.OpFrontEnd, SessionID: 1, FrontEnd: []byte("x")}}
	done := make(chan error, 256)
	cb := func(err error) { done <- err }
	wait := func(n int) {
		for range n {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	}
	// The committer's own allocations (bbolt's) count too, so measure
	// only the calls, with the committer held; first fill the pool with
	// as many requests as will be outstanding.
	release := hold(t, s)
	for range 200 {
		s.Commit(ops, cb)
	}
	release()
	wait(200)
	release = hold(t, s)
	allocs := testing.AllocsPerRun(100, func() { s.Commit(ops, cb) })
	release()
	wait(101)
	if allocs > 0 {
		t.Errorf("Commit allocates %v times per call; want 0", allocs)
	}
}

// TestRetainedExpiry: a retained message whose expiry passes while the
// store is closed is not loaded, and is deleted; one still alive comes
// back with what is left of its lifetime.
func TestRetainedExpiry(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	o := boltstore.Options{Now: func() time.Time { return now }}
	s, _ := tempStore(t, o)
	short := &mqttcore.Message{Topic: "short", Payload: []byte("1"), Retain: true, Props: &mqttcore.Properties{MessageExpiry: 10 * time.Second}}
	long := &mqttcore.Message{Topic: "long", Payload: []byte("2"), Retain: true, Props: &mqttcore.Properties{MessageExpiry: time.Minute}}
	mustCommit(t, s, mqttcore.Op{Kind: mqttcore.OpRetain, Message: short}, mqttcore.Op{Kind: mqttcore.OpRetain, Message: long})
	now = now.Add(11 * time.Second)
	s = reopen(t, s, o)
	got := load(t, s)
	if len(got.retained) != 1 || got.retained["long"] == nil {
		t.Fatalf("Load retained = %v; want only long", got.retained)
	}
	if left := got.retained["long"].Props.MessageExpiry; left != 49*time.Second {
		t.Errorf("long's expiry left = %v; want 49s", left)
	}
	if st := s.Stats(); st.LoadSkipped != 1 {
		t.Errorf("LoadSkipped = %d; want 1", st.LoadSkipped)
	}
	now = now.Add(-time.Hour) // short would be alive again if it were still stored
	if got := load(t, s); got.retained["short"] != nil {
		t.Errorf("expired retained message still stored after Load")
	}
}

package bridge

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	bolt "go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// pipeConn is the outbox's connection in a test: what the sender writes
// comes out of pkts, one decoded packet at a time.
type pipeConn struct {
	*io.PipeWriter
	sync.Mutex
}

func newPipeConn(t *testing.T) (*pipeConn, <-chan *packets.ControlPacket) {
	pr, pw := io.Pipe()
	pkts := make(chan *packets.ControlPacket, 1000)
	go func() { // exits when the pipe is closed at cleanup
		r := bufio.NewReader(pr)
		for {
			cp, err := packets.ReadPacket(r)
			if err != nil {
				close(pkts)
				return
			}
			pkts <- cp
		}
	}()
	t.Cleanup(func() { pw.Close() })
	return &pipeConn{PipeWriter: pw}, pkts
}

// recvPublishes reads n PUBLISH packets.
func recvPublishes(t *testing.T, pkts <-chan *packets.ControlPacket, n int) []*packets.Publish {
	t.Helper()
	var got []*packets.Publish
	timeout := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case cp, ok := <-pkts:
			if !ok {
				t.Fatalf("connection closed after %d of %d PUBLISH packets", len(got), n)
			}
			p, ok := cp.Content.(*packets.Publish)
			if !ok {
				t.Fatalf("got %v; want PUBLISH", cp)
			}
			got = append(got, p)
		case <-timeout:
			t.Fatalf("%d of %d PUBLISH packets within 10s", len(got), n)
		}
	}
	return got
}

// idleState returns the send quota left and the PUBLISH packets in flight,
// once the writes submitted so far have committed.
func (o *outbox) idleState(t *testing.T) (quota, flights int) {
	t.Helper()
	if err := o.st.flush(); err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, f := range o.flights {
		if f.kind == packets.PUBLISH {
			flights++
		}
	}
	return o.quota, flights
}

func receiveMax(n uint16) *packets.Connack {
	return &packets.Connack{Properties: &packets.Properties{ReceiveMaximum: &n}}
}

// TestOutboxQuotaResendRequeue drives the outbox as paho would, against a
// fake connection: the remote's Receive Maximum bounds what is
// unacknowledged; a PUBACK frees a slot at once; after a reconnect with
// the session present the messages in flight go again first, with DUP and
// their packet ids, in order; without a session they go back to the head
// of the queue and are sent again as new messages, in order.
func TestOutboxQuotaResendRequeue(t *testing.T) {
	st := openTestStore(t, filepath.Join(t.TempDir(), "q.db"), StoreOptions{})
	for i := range 40 {
		enqueue(t, st, fmt.Sprintf("t/%02d", i), 1, nil)
	}
	o, err := newOutbox(st, 30)
	if err != nil {
		t.Fatal(err)
	}
	o.start()
	defer o.close()

	conn, pkts := newPipeConn(t)
	if err := o.ConAckReceived(conn, &packets.Connect{}, receiveMax(10)); err != nil {
		t.Fatal(err)
	}
	first := recvPublishes(t, pkts, 10)
	for i, p := range first {
		if want := fmt.Sprintf("t/%02d", i); p.Topic != want || p.Duplicate || p.PacketID == 0 {
			t.Fatalf("PUBLISH %d: %s dup %v id %d; want %s, not dup, an id", i, p.Topic, p.Duplicate, p.PacketID, want)
		}
	}
	if q, f := o.idleState(t); q != 0 || f != 10 {
		t.Fatalf("after 10 sent with Receive Maximum 10: quota %d, in flight %d; want 0 and 10", q, f)
	}
	// Five PUBACKs: five more go out, no more.
	for _, p := range first[:5] {
		o.PacketReceived(&packets.ControlPacket{Content: &packets.Puback{PacketID: p.PacketID}}, nil)
	}
	more := recvPublishes(t, pkts, 5)
	if more[0].Topic != "t/10" || more[4].Topic != "t/14" {
		t.Fatalf("after 5 PUBACKs sent %s .. %s; want t/10 .. t/14", more[0].Topic, more[4].Topic)
	}
	if q, f := o.idleState(t); q != 0 || f != 10 {
		t.Fatalf("after 5 PUBACKs: quota %d, in flight %d; want 0 and 10", q, f)
	}

	// Reconnect, session present: the 10 in flight go again, in order,
	// with DUP and the same ids, before anything new.
	o.ConnectionLost(nil)
	inflight := append(first[5:], more...)
	conn2, pkts2 := newPipeConn(t)
	ca := receiveMax(20)
	ca.SessionPresent = true
	if err := o.ConAckReceived(conn2, &packets.Connect{}, ca); err != nil {
		t.Fatal(err)
	}
	again := recvPublishes(t, pkts2, 20)
	for i, p := range again[:10] {
		if w := inflight[i]; p.Topic != w.Topic || !p.Duplicate || p.PacketID != w.PacketID {
			t.Fatalf("resent %d: %s dup %v id %d; want %s dup id %d", i, p.Topic, p.Duplicate, p.PacketID, w.Topic, w.PacketID)
		}
	}
	for i, p := range again[10:] {
		if want := fmt.Sprintf("t/%02d", 15+i); p.Topic != want || p.Duplicate {
			t.Fatalf("new %d after the resend: %s dup %v; want %s, not dup", i, p.Topic, p.Duplicate, want)
		}
	}

	// Reconnect, no session: the 20 in flight (t/05 .. t/24) go back to the
	// head of the queue and out again as new messages, then the rest.
	o.ConnectionLost(nil)
	conn3, pkts3 := newPipeConn(t)
	if err := o.ConAckReceived(conn3, &packets.Connect{}, receiveMax(100)); err != nil {
		t.Fatal(err)
	}
	last := recvPublishes(t, pkts3, 30) // the window: 30 unsettled
	for i, p := range last {
		if want := fmt.Sprintf("t/%02d", 5+i); p.Topic != want || p.Duplicate {
			t.Fatalf("after a lost session, PUBLISH %d: %s dup %v; want %s, not dup", i, p.Topic, p.Duplicate, want)
		}
	}
	if s := st.Stats(); s.Requeued != 20 {
		t.Fatalf("Requeued = %d; want 20", s.Requeued)
	}
	if q, f := o.idleState(t); q != 0 || f != 30 {
		t.Fatalf("with window 30 and Receive Maximum 100: quota %d, in flight %d; want 0 and 30 (the quota is min(100, 30))", q, f)
	}
}

// TestOutboxQoS2: PUBREC is answered with PUBREL once the PUBREL record is
// on disk (it replaces the PUBLISH, so a restart sends the PUBREL, not the
// message); PUBCOMP ends it and frees its slot; a PUBREC with an error
// reason ends the message as refused.
func TestOutboxQoS2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	st := openTestStore(t, path, StoreOptions{})
	enqueue(t, st, "q2/a", 2, nil)
	enqueue(t, st, "q2/b", 2, nil)
	o, err := newOutbox(st, 10)
	if err != nil {
		t.Fatal(err)
	}
	var refused []byte
	o.onRefused = func(_ uint16, rc byte) { refused = append(refused, rc) }
	o.start()
	defer o.close()
	conn, pkts := newPipeConn(t)
	if err := o.ConAckReceived(conn, &packets.Connect{}, receiveMax(1)); err != nil {
		t.Fatal(err)
	}
	a := recvPublishes(t, pkts, 1)[0]
	if a.Topic != "q2/a" || a.QoS != 2 {
		t.Fatalf("first PUBLISH %s QoS %d; want q2/a QoS 2", a.Topic, a.QoS)
	}
	o.PacketReceived(&packets.ControlPacket{Content: &packets.Pubrec{PacketID: a.PacketID}}, nil)
	select {
	case cp := <-pkts:
		if rel, ok := cp.Content.(*packets.Pubrel); !ok || rel.PacketID != a.PacketID {
			t.Fatalf("after PUBREC got %v; want PUBREL %d", cp, a.PacketID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no PUBREL within 10s of the PUBREC")
	}
	recs, err := st.inflight()
	if err != nil || len(recs) != 1 || recs[0].data()[0]>>4 != packets.PUBREL {
		t.Fatalf("in-flight records after PUBREC = %v, %v; want the PUBREL alone", recs, err)
	}
	// Receive Maximum 1: q2/b waits for the PUBCOMP.
	o.PacketReceived(&packets.ControlPacket{Content: &packets.Pubcomp{PacketID: a.PacketID}}, nil)
	b := recvPublishes(t, pkts, 1)[0]
	if b.Topic != "q2/b" {
		t.Fatalf("after PUBCOMP sent %s; want q2/b", b.Topic)
	}
	o.PacketReceived(&packets.ControlPacket{Content: &packets.Pubrec{PacketID: b.PacketID, ReasonCode: 0x87}}, nil)
	o.close() // submits the removals
	if q, f := o.idleState(t); q != 1 || f != 0 || fmt.Sprint(refused) != "[135]" {
		t.Fatalf("quota %d, in flight %d, refused %v; want 1, 0, [135] (0x87)", q, f, refused)
	}
	if recs, err := st.inflight(); err != nil || len(recs) != 0 {
		t.Fatalf("in-flight records at the end = %v, %v; want none", recs, err)
	}
}

// failingBackend is a core store that fails every write while fail is
// set: the store's committer fails each call (on its goroutine, as a
// failed commit does).
type failingBackend struct {
	*boltstore.Store
	mu   sync.Mutex
	fail bool
}

func (b *failingBackend) failing() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.fail
}

func (b *failingBackend) Update(apply func(*bolt.Tx) error, done func(error)) {
	if b.failing() {
		b.Store.Update(func(*bolt.Tx) error { return errors.New("disk on fire") }, done)
		return
	}
	b.Store.Update(apply, done)
}

func (b *failingBackend) Log(ops []boltstore.KeyedOp, done func(error)) {
	if b.failing() {
		// A reserved bucket: the store refuses the call.
		ops = []boltstore.KeyedOp{{Bucket: [][]byte{[]byte(boltstore.ReservedPrefix + "fire")}, Key: []byte("k")}}
	}
	b.Store.Log(ops, done)
}

// TestOutboxQoS2HandOverFails: when the hand-over of a QoS 2 message fails
// to commit, the message is still sent (once) and its send quota slot is
// not lost; the failure is reported.
func TestOutboxQoS2HandOverFails(t *testing.T) {
	c, err := boltstore.Open(filepath.Join(t.TempDir(), "q.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	be := &failingBackend{Store: c}
	st, err := OpenSharedStore(be, "bridge/f", StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	enqueue(t, st, "q2/a", 2, nil)
	o, err := newOutbox(st, 10)
	if err != nil {
		t.Fatal(err)
	}
	var errs []string
	var mu sync.Mutex
	o.onError = func(msg string, _ error) {
		mu.Lock()
		errs = append(errs, msg)
		mu.Unlock()
	}
	conn, pkts := newPipeConn(t)
	if err := o.ConAckReceived(conn, &packets.Connect{}, receiveMax(1)); err != nil {
		t.Fatal(err)
	}
	// The disk fails from now on; the sender starts only now.
	be.mu.Lock()
	be.fail = true
	be.mu.Unlock()
	o.start()
	defer o.close()
	a := recvPublishes(t, pkts, 1)[0]
	if a.Topic != "q2/a" || a.Duplicate {
		t.Fatalf("sent %s dup %v; want q2/a, not dup", a.Topic, a.Duplicate)
	}
	o.mu.Lock()
	quota := o.quota
	o.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	if quota != 0 || len(errs) == 0 {
		t.Fatalf("quota %d, errors reported %v; want 0 (the one slot in use) and the failed hand-over", quota, errs)
	}
}

// TestEncodeQueued: the queue record's PUBLISH, encoded by hand, is the
// packet paho encodes, for every QoS, with and without retain, and across
// the remaining length's 1-, 2- and 3-byte encodings.
func TestEncodeQueued(t *testing.T) {
	for _, size := range []int{0, 5, 100, 200, 20000} {
		for qos := range byte(3) {
			for _, retain := range []bool{false, true} {
				payload := bytes.Repeat([]byte{'x'}, size)
				got, err := encodeQueued("site/a/b", qos, retain, payload, nil)
				if err != nil {
					t.Fatal(err)
				}
				var want bytes.Buffer
				if _, err := (&paho.Publish{QoS: qos, Retain: retain, Topic: "site/a/b", Payload: payload}).Packet().WriteTo(&want); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got[8:], want.Bytes()) {
					t.Fatalf("encodeQueued(qos %d, retain %v, %d bytes) = %x; paho encodes %x", qos, retain, size, got[8:], want.Bytes())
				}
				if cap(got) != len(got) {
					t.Errorf("encodeQueued(%d bytes): cap %d, len %d: one exact allocation wanted", size, cap(got), len(got))
				}
			}
		}
	}
	payload := make([]byte, 64)
	if n := testing.AllocsPerRun(100, func() { _, _ = encodeQueued("bench/gb1234-7", 1, false, payload, nil) }); n != 1 {
		t.Errorf("encodeQueued allocates %v times; want 1 (the record)", n)
	}
	props := &mqttcore.Properties{ContentType: "text/plain"}
	got, err := encodeQueued("t", 1, false, []byte("p"), props)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := packets.ReadPacket(bytes.NewReader(got[8:]))
	if err != nil {
		t.Fatal(err)
	}
	if p := pk.Content.(*packets.Publish); p.Properties.ContentType != "text/plain" || p.Topic != "t" || string(p.Payload) != "p" {
		t.Fatalf("with properties: decoded %+v", p)
	}
}

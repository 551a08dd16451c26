package mqttcore_test

import (
	"slices"
	"testing"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

func TestQoS1Window(t *testing.T) {
	b := newBroker(t, mqttcore.Config{})
	opts := persistent("s")
	opts.MaxInflight = 2
	c, fe := attach(t, b, opts)
	subscribe(t, c, "t", mqttcore.SubOptions{QoS: 1})
	in := b.Inline("p")
	for range 3 {
		publish(t, in, "t", "x", 1, false)
	}
	if fe.notes.Load() != 1 {
		t.Errorf("Notify called %d times for 3 messages before Next; want 1", fe.notes.Load())
	}
	ds := drain(c)
	if len(ds) != 2 || ds[0].PacketID != 1 || ds[1].PacketID != 2 || ds[0].QoS != 1 || ds[0].Dup {
		t.Fatalf("first drain = %+v; want pids 1, 2 at QoS 1 without Dup", ds)
	}
	if err := c.Ack(3); !isErr(err, mqttcore.ErrUnknownPacketID) {
		t.Errorf("Ack(3) = %v; want ErrUnknownPacketID", err)
	}
	if err := c.Received(1); !isErr(err, mqttcore.ErrUnknownPacketID) {
		t.Errorf("Received(1) on QoS 1 = %v; want ErrUnknownPacketID", err)
	}
	before := fe.notes.Load()
	if err := c.Ack(1); err != nil {
		t.Fatalf("Ack(1) = %v", err)
	}
	if fe.notes.Load() != before+1 {
		t.Errorf("Ack freeing a slot with messages waiting did not Notify")
	}
	if err := c.Ack(1); !isErr(err, mqttcore.ErrUnknownPacketID) {
		t.Errorf("second Ack(1) = %v; want ErrUnknownPacketID", err)
	}
	ds = drain(c)
	if len(ds) != 1 || ds[0].PacketID != 3 {
		t.Fatalf("after Ack(1) drain = %+v; want pid 3", ds)
	}
	if info, _ := b.Session("s"); info.Inflight != 2 || info.Queued != 0 {
		t.Errorf("Session = %+v; want 2 in flight, 0 queued", info)
	}
}

func TestQoS2OutboundAndRetransmitAfterReattach(t *testing.T) {
	b := newBroker(t, mqttcore.Config{})
	c, _ := attach(t, b, persistent("s"))
	subscribe(t, c, "t/+", mqttcore.SubOptions{QoS: 2})
	in := b.Inline("p")
	publish(t, in, "t/1", "x", 2, false)
	publish(t, in, "t/2", "x", 2, false)
	publish(t, in, "t/3", "x", 1, false)
	ds := drain(c)
	if got := topics(ds); !slices.Equal(got, []string{"t/1", "t/2", "t/3"}) {
		t.Fatalf("delivered %q", got)
	}
	p1, p2, p3 := ds[0].PacketID, ds[1].PacketID, ds[2].PacketID
	if err := c.Complete(p1); !isErr(err, mqttcore.ErrUnknownPacketID) {
		t.Errorf("Complete before Received = %v; want ErrUnknownPacketID", err)
	}
	if err := c.Received(p1); err != nil {
		t.Fatalf("Received(%d) = %v", p1, err)
	}
	if err := c.Received(p1); err != nil {
		t.Errorf("repeated Received(%d) = %v; want nil (answer PUBREL again)", p1, err)
	}
	if err := c.Ack(p1); !isErr(err, mqttcore.ErrUnknownPacketID) {
		t.Errorf("Ack after Received = %v; want ErrUnknownPacketID", err)
	}
	// Sleep with p1 awaiting PUBCOMP, p2 awaiting PUBREC, p3 awaiting PUBACK.
	if err := c.Sleep(0); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Next(); ok {
		t.Error("Next on a detached Conn reported a delivery")
	}
	if err := c.Ack(p3); !isErr(err, mqttcore.ErrDetached) {
		t.Errorf("Ack on detached Conn = %v; want ErrDetached", err)
	}
	publish(t, in, "t/4", "x", 2, false)
	c2, present, err := b.Attach(&fakeFE{}, persistent("s"))
	if err != nil || !present {
		t.Fatalf("re-Attach = %v, present %v", err, present)
	}
	ds = drain(c2)
	want := []mqttcore.Delivery{
		{PacketID: p1, QoS: 2, Release: true},
		{PacketID: p2, QoS: 2, Dup: true},
		{PacketID: p3, QoS: 1, Dup: true},
		{QoS: 2},
	}
	if len(ds) != len(want) {
		t.Fatalf("after re-attach delivered %q; want PUBREL, t/2, t/3, t/4", topics(ds))
	}
	for i, w := range want {
		d := ds[i]
		if d.Release != w.Release || d.Dup != w.Dup || d.QoS != w.QoS || (w.PacketID != 0 && d.PacketID != w.PacketID) {
			t.Errorf("delivery %d = %+v; want %+v", i, d, w)
		}
	}
	if ds[3].PacketID == p1 || ds[3].PacketID == p2 || ds[3].PacketID == p3 || ds[3].PacketID == 0 {
		t.Errorf("new message got pid %d, colliding with in-flight %d,%d,%d", ds[3].PacketID, p1, p2, p3)
	}
	for _, step := range []struct {
		name string
		f    func(uint16) error
		pid  uint16
	}{
		{"Complete", c2.Complete, p1},
		{"Received", c2.Received, p2},
		{"Complete", c2.Complete, p2},
		{"Ack", c2.Ack, p3},
		{"Ack (PUBREC with error)", c2.Ack, ds[3].PacketID},
	} {
		if err := step.f(step.pid); err != nil {
			t.Errorf("%s(%d) = %v", step.name, step.pid, err)
		}
	}
	if info, _ := b.Session("s"); info.Inflight != 0 {
		t.Errorf("in flight after all acks = %d; want 0", info.Inflight)
	}
}

func TestExactlyOnceReceive(t *testing.T) {
	b := newBroker(t, mqttcore.Config{MaxInflight: 2})
	sub, _ := attach(t, b, persistent("sub"))
	subscribe(t, sub, "t", mqttcore.SubOptions{QoS: 0})
	c, _ := attach(t, b, persistent("pub"))
	pub := func(c *mqttcore.Conn, pid uint16) bool {
		t.Helper()
		st, err := c.Publish(&mqttcore.Message{Topic: "t", QoS: 2, Payload: []byte("x")}, pid, 0)
		if err != nil {
			t.Fatalf("Publish(pid %d) = %v", pid, err)
		}
		return st == mqttcore.PublishDuplicate
	}
	if pub(c, 7) {
		t.Error("first Publish(7) reported duplicate")
	}
	if !pub(c, 7) {
		t.Error("second Publish(7) before PUBREL not reported duplicate")
	}
	if n := len(drain(sub)); n != 1 {
		t.Errorf("subscriber got %d copies; want 1", n)
	}
	pub(c, 8)
	if _, err := c.Publish(&mqttcore.Message{Topic: "t", QoS: 2}, 9, 0); !isErr(err, mqttcore.ErrInflightFull) {
		t.Errorf("third unreleased QoS 2 = %v; want ErrInflightFull", err)
	}
	if err := c.Release(7); err != nil {
		t.Fatalf("Release(7) = %v", err)
	}
	if err := c.Release(7); !isErr(err, mqttcore.ErrUnknownPacketID) {
		t.Errorf("second Release(7) = %v; want ErrUnknownPacketID", err)
	}
	if pub(c, 7) {
		t.Error("Publish(7) after release reported duplicate")
	}
	// The state survives a re-attach.
	if err := c.Lost(); err != nil {
		t.Fatal(err)
	}
	c2, _ := attach(t, b, persistent("pub"))
	if !pub(c2, 8) {
		t.Error("Publish(8) after re-attach, unreleased, not reported duplicate")
	}
	if n := len(drain(sub)); n != 2 {
		t.Errorf("subscriber got %d more; want 2 (7 again, 8 once)", n)
	}
	if got := b.Stats().LimitHits.Inflight; got != 1 {
		t.Errorf("LimitHits.Inflight = %d; want 1", got)
	}
}

func TestPacketIDWrapSkipsInUse(t *testing.T) {
	b := newBroker(t, mqttcore.Config{MaxQueued: 4})
	opts := persistent("s")
	opts.MaxInflight = 2
	c, _ := attach(t, b, opts)
	subscribe(t, c, "t", mqttcore.SubOptions{QoS: 1})
	in := b.Inline("p")
	m := &mqttcore.Message{Topic: "t", QoS: 1}
	next := func() uint16 {
		t.Helper()
		if err := in.Publish(m); err != nil {
			t.Fatal(err)
		}
		d, ok := c.Next()
		if !ok {
			t.Fatal("Next reported nothing")
		}
		return d.PacketID
	}
	held := next() // stays in flight
	if held != 1 {
		t.Fatalf("first pid = %d; want 1", held)
	}
	for want := uint16(2); want != 0; want++ { // 2..65535
		pid := next()
		if pid != want {
			t.Fatalf("pid = %d; want %d", pid, want)
		}
		if err := c.Ack(pid); err != nil {
			t.Fatal(err)
		}
	}
	if pid := next(); pid != 2 {
		t.Errorf("pid after wrap with 1 in flight = %d; want 2", pid)
	}
}

func TestQueueDropPolicy(t *testing.T) {
	b := newBroker(t, mqttcore.Config{MaxQueued: 3, Overflow: mqttcore.OverflowDropOldest})
	c, _ := attach(t, b, persistent("s"))
	subscribe(t, c, "t/+", mqttcore.SubOptions{QoS: 1})
	if err := c.Sleep(0); err != nil {
		t.Fatal(err)
	}
	in := b.Inline("p")
	publish(t, in, "t/a", "", 0, false)
	publish(t, in, "t/b", "", 1, false)
	publish(t, in, "t/c", "", 0, false)
	publish(t, in, "t/d", "", 1, false) // drops t/a: the oldest QoS 0
	publish(t, in, "t/e", "", 1, false) // drops t/c: the only QoS 0
	publish(t, in, "t/f", "", 1, false) // drops t/b: no QoS 0 left, the oldest
	st := b.Stats()
	if st.Dropped != 3 || st.LimitHits.Queue != 3 || st.Queued != 3 {
		t.Errorf("Stats = %+v; want 3 dropped, 3 queue limit hits, 3 queued", st)
	}
	if info, _ := b.Session("s"); info.Dropped != 3 || info.Queued != 3 || info.State != mqttcore.StateAsleep {
		t.Errorf("Session = %+v; want 3 dropped, 3 queued, asleep", info)
	}
	c2, _ := attach(t, b, persistent("s"))
	if got := topics(drain(c2)); !slices.Equal(got, []string{"t/d", "t/e", "t/f"}) {
		t.Errorf("after wake delivered %q; want [t/d t/e t/f]", got)
	}
	if st := b.Stats(); st.Queued != 0 || st.MessagesSent != 3 {
		t.Errorf("after drain Queued = %d, MessagesSent = %d; want 0, 3", st.Queued, st.MessagesSent)
	}
}

func TestTakeover(t *testing.T) {
	b := newBroker(t, mqttcore.Config{})
	c1, fe1 := attach(t, b, persistent("s"))
	subscribe(t, c1, "t", mqttcore.SubOptions{QoS: 1})
	c2, present, err := b.Attach(&fakeFE{}, persistent("s"))
	if err != nil || !present {
		t.Fatalf("takeover Attach = %v, present %v; want nil, true", err, present)
	}
	if r := fe1.closeReasons(); len(r) != 1 || !isErr(r[0], mqttcore.ErrTakenOver) {
		t.Errorf("first front-end Close reasons = %v; want [ErrTakenOver]", r)
	}
	if _, err := c1.Publish(&mqttcore.Message{Topic: "t"}, 0, 0); !isErr(err, mqttcore.ErrDetached) {
		t.Errorf("old Conn Publish = %v; want ErrDetached", err)
	}
	if err := c1.Disconnect(); !isErr(err, mqttcore.ErrDetached) {
		t.Errorf("old Conn Disconnect = %v; want ErrDetached", err)
	}
	publish(t, b.Inline("p"), "t", "x", 1, false)
	if got := topics(drain(c2)); !slices.Equal(got, []string{"t"}) {
		t.Errorf("new Conn got %q; want the subscription kept", got)
	}
	// Clean start takes over and discards the session.
	c3, present, err := b.Attach(&fakeFE{}, mqttcore.ConnectOptions{ClientID: "s", CleanStart: true})
	if err != nil || present {
		t.Fatalf("clean takeover = %v, present %v; want nil, false", err, present)
	}
	publish(t, b.Inline("p"), "t", "x", 1, false)
	if got := drain(c3); len(got) != 0 {
		t.Errorf("clean session got %d; want no subscriptions", len(got))
	}
	if st := b.Stats(); st.Sessions != 1 || st.Connected != 1 {
		t.Errorf("Stats = %+v; want 1 session, 1 connected", st)
	}
}

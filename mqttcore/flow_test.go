package mqttcore_test

import (
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// pubConn publishes from c and returns the status, failing on an error.
func pubConn(t testing.TB, c *mqttcore.Conn, topic, payload string, qos mqttcore.QoS, pid uint16) mqttcore.PublishStatus {
	t.Helper()
	st, err := c.Publish(&mqttcore.Message{Topic: topic, Payload: []byte(payload), QoS: qos}, pid, 0)
	if err != nil {
		t.Fatalf("Publish(%q) = %v", topic, err)
	}
	return st
}

// payloads returns the payloads of ds.
func payloads(ds []mqttcore.Delivery) []string {
	var out []string
	for _, d := range ds {
		if d.Message != nil {
			out = append(out, string(d.Message.Payload))
		}
	}
	return out
}

// ackAll acknowledges every QoS 1 delivery in ds.
func ackAll(t testing.TB, c *mqttcore.Conn, ds []mqttcore.Delivery) {
	t.Helper()
	for _, d := range ds {
		if d.QoS == 1 {
			if err := c.Ack(d.PacketID); err != nil {
				t.Fatalf("Ack(%d) = %v", d.PacketID, err)
			}
		}
	}
}

// TestBackpressureHoldsAck: a QoS 1 publish bound for a full queue is not
// acknowledged, and not delivered to anyone, until the queue has room; then
// it is delivered in order and acknowledged. Nothing is dropped.
func TestBackpressureHoldsAck(t *testing.T) {
	b := newBroker(t, mqttcore.Config{MaxQueued: 4, MaxInflight: 1})
	slow, _ := attach(t, b, persistent("slow"))
	subscribe(t, slow, "t", mqttcore.SubOptions{QoS: 1})
	fast, _ := attach(t, b, persistent("fast"))
	subscribe(t, fast, "t", mqttcore.SubOptions{QoS: 1})
	pub, fe := attach(t, b, persistent("pub"))

	// slow takes one in flight and queues four: the queue is full.
	var first []mqttcore.Delivery
	for i := range 5 {
		if st := pubConn(t, pub, "t", fmt.Sprint(i), 1, uint16(i+1)); st != mqttcore.PublishDone {
			t.Fatalf("publish %d = %v; want done", i, st)
		}
		ackAll(t, fast, drain(fast))
		if i == 0 {
			first = drain(slow) // message 0, in flight
		}
	}
	if st := pubConn(t, pub, "t", "5", 1, 6); st != mqttcore.PublishPending {
		t.Fatalf("publish to a full queue = %v; want pending", st)
	}
	if got := drain(fast); len(got) != 0 {
		t.Fatalf("held message reached the fast subscriber early: %q", payloads(got))
	}
	if acks := fe.ackList(); len(acks) != 0 {
		t.Fatalf("acknowledged while held: %+v", acks)
	}
	if st := b.Stats(); st.HeldNow != 1 || st.Held != 1 || st.Dropped != 0 {
		t.Fatalf("Stats = %+v; want HeldNow 1, Held 1, Dropped 0", st)
	}

	// The slow subscriber drains below its low-water mark: the held
	// message is routed and acknowledged.
	var got []string
	got = append(got, payloads(first)...)
	ackAll(t, slow, first)
	for len(got) < 6 {
		ds := drain(slow)
		if len(ds) == 0 {
			t.Fatalf("slow subscriber stalled after %q", got)
		}
		got = append(got, payloads(ds)...)
		ackAll(t, slow, ds)
	}
	if want := []string{"0", "1", "2", "3", "4", "5"}; !slices.Equal(got, want) {
		t.Errorf("slow subscriber got %q; want %q", got, want)
	}
	if got := payloads(drain(fast)); !slices.Equal(got, []string{"5"}) {
		t.Errorf("fast subscriber got %q after the release; want [5]", got)
	}
	acks := fe.ackList()
	if len(acks) != 1 || acks[0].PacketID != 6 || acks[0].Err != nil || acks[0].Kind != mqttcore.AckPublish {
		t.Errorf("acks = %+v; want one success for packet 6", acks)
	}
	if st := b.Stats(); st.HeldNow != 0 || st.Dropped != 0 {
		t.Errorf("Stats = %+v; want HeldNow 0, Dropped 0", st)
	}
}

// TestBackpressureTimeout: a publish held longer than HoldTimeout is
// refused with ErrCongestion and reaches no subscriber; the publisher may
// then use the same QoS 2 packet id again.
func TestBackpressureTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, mqttcore.Config{MaxQueued: 2, HoldTimeout: time.Second})
		sleeper, _ := attach(t, b, persistent("sleeper"))
		subscribe(t, sleeper, "t", mqttcore.SubOptions{QoS: 2})
		if err := sleeper.Sleep(time.Hour); err != nil {
			t.Fatal(err)
		}
		watcher, _ := attach(t, b, mqttcore.ConnectOptions{ClientID: "watcher"})
		subscribe(t, watcher, "t", mqttcore.SubOptions{QoS: 1})
		pub, fe := attach(t, b, persistent("pub"))
		pubConn(t, pub, "t", "a", 1, 1)
		pubConn(t, pub, "t", "b", 1, 2)
		ackAll(t, watcher, drain(watcher))
		if st := pubConn(t, pub, "t", "c", 2, 3); st != mqttcore.PublishPending {
			t.Fatalf("publish to a sleeper's full queue = %v; want pending", st)
		}
		time.Sleep(time.Second) // the fake clock
		synctest.Wait()
		acks := fe.ackList()
		if len(acks) != 1 || !isErr(acks[0].Err, mqttcore.ErrCongestion) || acks[0].PacketID != 3 {
			t.Fatalf("acks after the hold timeout = %+v; want packet 3 refused with ErrCongestion", acks)
		}
		if got := drain(watcher); len(got) != 0 {
			t.Errorf("refused message delivered: %q", payloads(got))
		}
		if st := b.Stats(); st.LimitHits.Hold != 1 || st.HeldNow != 0 || st.Dropped != 0 {
			t.Errorf("Stats = %+v; want LimitHits.Hold 1, HeldNow 0, Dropped 0", st)
		}
		if info, _ := b.Session("sleeper"); info.Queued != 2 {
			t.Errorf("sleeper queue = %d; want the 2 accepted messages", info.Queued)
		}
		// Packet id 3 was forgotten: a retry is a new message, not a
		// duplicate.
		if st := pubConn(t, pub, "t", "c", 2, 3); st == mqttcore.PublishDuplicate {
			t.Errorf("retry of a refused QoS 2 publish reported as duplicate")
		}
	})
}

// TestBackpressureHoldTimerRearmed: a held publish that a retry pass puts
// back is still refused at its HoldTimeout when the timer loop looked at the
// held list while the pass had it out (it saw an empty list and went to
// sleep for as long as its other deadlines allowed). Without the re-arm
// the publisher waits here until the next session deadline, and in
// TestConcurrentStress (no such deadline) for good.
func TestBackpressureHoldTimerRearmed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const hold = time.Second
		b := newBroker(t, mqttcore.Config{MaxQueued: 2, MaxInflight: 10,
			Overflow: mqttcore.OverflowBackpressure, HoldTimeout: hold})
		in := b.Inline("pub")
		fill := func(topic string) {
			for range 2 {
				if err := in.Publish(&mqttcore.Message{Topic: topic, QoS: 1}); err != nil {
					t.Fatal(err)
				}
			}
		}
		held := func(topic string) chan error {
			done := make(chan error, 1)
			go func() { done <- in.Publish(&mqttcore.Message{Topic: topic, QoS: 1}) }()
			return done
		}

		online, _ := attach(t, b, persistent("online"))
		subscribe(t, online, "a", mqttcore.SubOptions{QoS: 1})
		sleeper, _ := attach(t, b, persistent("sleeper"))
		subscribe(t, sleeper, "z", mqttcore.SubOptions{QoS: 1})
		if err := sleeper.Sleep(time.Hour); err != nil {
			t.Fatal(err)
		}
		// While the retry pass routes "a", wake the timer loop (a new,
		// earlier session deadline) and let it settle.
		var inPass atomic.Bool
		if _, err := b.Inline("obs").Subscribe("a", mqttcore.SubOptions{}, func(*mqttcore.Message) {
			if inPass.CompareAndSwap(true, false) {
				w, _ := attach(t, b, persistent("w"))
				if err := w.Sleep(time.Minute); err != nil {
					t.Error(err)
				}
				synctest.Wait()
			}
		}); err != nil {
			t.Fatal(err)
		}
		fill("a")
		fill("z")
		toOnline := held("a")
		synctest.Wait()
		toSleeper := held("z")
		synctest.Wait()
		if st := b.Stats(); st.HeldNow != 2 {
			t.Fatalf("Stats = %+v; want HeldNow 2", st)
		}

		inPass.Store(true)
		ackAll(t, online, drain(online)) // drains "online": a retry pass
		synctest.Wait()
		if inPass.Load() {
			t.Fatal("the retry pass did not route the held publish to the online session")
		}
		select {
		case err := <-toOnline:
			if err != nil {
				t.Fatalf("publish held for the online session = %v; want routed", err)
			}
		default:
			t.Fatal("publish held for the online session still waits after its queue drained")
		}

		time.Sleep(hold + time.Millisecond) // the fake clock
		synctest.Wait()
		select {
		case err := <-toSleeper:
			if !isErr(err, mqttcore.ErrCongestion) {
				t.Errorf("publish held for the sleeper = %v; want ErrCongestion", err)
			}
		default:
			t.Errorf("publish held for the sleeper not refused %v after its hold timeout", hold)
		}
		if st := b.Stats(); st.HeldNow != 0 || st.LimitHits.Hold != 1 {
			t.Errorf("Stats = %+v; want HeldNow 0, LimitHits.Hold 1", st)
		}
	})
}

// TestBackpressureKeepsPublisherOrder: a publisher with a held message has
// its later messages, even to topics with room, held behind it; other
// publishers are not held.
func TestBackpressureKeepsPublisherOrder(t *testing.T) {
	b := newBroker(t, mqttcore.Config{MaxQueued: 1, MaxInflight: 1})
	full, _ := attach(t, b, persistent("full"))
	subscribe(t, full, "a", mqttcore.SubOptions{QoS: 1})
	free, _ := attach(t, b, persistent("free"))
	subscribe(t, free, "b", mqttcore.SubOptions{QoS: 1})
	p1, fe1 := attach(t, b, persistent("p1"))
	p2, fe2 := attach(t, b, persistent("p2"))

	pubConn(t, p1, "a", "a0", 1, 1)
	d0 := drain(full)               // a0 in flight
	pubConn(t, p1, "a", "a1", 1, 2) // queued: the queue is full
	if st := pubConn(t, p1, "a", "a2", 1, 3); st != mqttcore.PublishPending {
		t.Fatalf("a2 = %v; want pending", st)
	}
	if st := pubConn(t, p1, "b", "b0", 1, 4); st != mqttcore.PublishPending {
		t.Fatalf("b0 after a held a2 = %v; want pending (order per publisher)", st)
	}
	if st := pubConn(t, p2, "b", "x", 1, 1); st != mqttcore.PublishDone {
		t.Fatalf("another publisher to b = %v; want done", st)
	}
	if got := payloads(drain(free)); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("free got %q; want [x] only", got)
	}
	ackAll(t, full, d0)
	var got []string
	for range 4 {
		ds := drain(full)
		got = append(got, payloads(ds)...)
		ackAll(t, full, ds)
	}
	if want := []string{"a1", "a2"}; !slices.Equal(got, want) {
		t.Errorf("full got %q after the drain; want %q", got, want)
	}
	ackAll(t, free, drain(free))
	if acks := fe1.ackList(); len(acks) != 2 || acks[0].PacketID != 3 || acks[1].PacketID != 4 {
		t.Errorf("p1 acks = %+v; want 3 then 4", acks)
	}
	if acks := fe2.ackList(); len(acks) != 0 {
		t.Errorf("p2 got deferred acks %+v; want none", acks)
	}
}

// TestBackpressureQoS0Dropped: QoS 0 never waits: a QoS 0 message for a
// full queue of QoS 1 messages is dropped and counted; drop-oldest is
// still available.
func TestBackpressureQoS0Dropped(t *testing.T) {
	b := newBroker(t, mqttcore.Config{MaxQueued: 2})
	s, _ := attach(t, b, persistent("s"))
	subscribe(t, s, "t", mqttcore.SubOptions{QoS: 1})
	if err := s.Sleep(0); err != nil {
		t.Fatal(err)
	}
	in := b.Inline("p")
	publish(t, in, "t", "1", 1, false)
	publish(t, in, "t", "2", 1, false)
	publish(t, in, "t", "3", 0, false)
	if st := b.Stats(); st.Dropped != 1 || st.Queued != 2 || st.LimitHits.Queue != 1 {
		t.Errorf("Stats = %+v; want 1 dropped, 2 queued", st)
	}
}

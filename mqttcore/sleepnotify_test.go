package mqttcore_test

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// TestSleepNotify: the callback of Conn.SleepNotify runs once, for the
// first message queued while the session is asleep; not for a second one,
// not after the session was attached again, and never for Sleep.
func TestSleepNotify(t *testing.T) {
	b := newBroker(t, mqttcore.Config{})
	in := b.Inline("p")
	c, _ := attach(t, b, persistent("s"))
	subscribe(t, c, "cmd/s", mqttcore.SubOptions{QoS: 1})
	var calls atomic.Int32
	if err := c.SleepNotify(time.Hour, func() { calls.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("after SleepNotify with nothing queued: %d calls; want 0", n)
	}
	publish(t, in, "other", "x", 1, false)
	if n := calls.Load(); n != 0 {
		t.Fatalf("after a message for someone else: %d calls; want 0", n)
	}
	publish(t, in, "cmd/s", "1", 1, false)
	if n := calls.Load(); n != 1 {
		t.Fatalf("after the first queued message: %d calls; want 1", n)
	}
	publish(t, in, "cmd/s", "2", 0, false)
	if n := calls.Load(); n != 1 {
		t.Fatalf("after the second queued message: %d calls; want still 1", n)
	}

	// Wake, take the queue, sleep again with a new callback: it runs for
	// the next message, the old one never again.
	c, _ = attach(t, b, persistent("s"))
	if got := topics(drain(c)); len(got) != 2 {
		t.Fatalf("on wake: %v; want the two queued messages", got)
	}
	var again atomic.Int32
	if err := c.SleepNotify(time.Hour, func() { again.Add(1) }); err != nil {
		t.Fatal(err)
	}
	publish(t, in, "cmd/s", "3", 1, false)
	if n, m := calls.Load(), again.Load(); n != 1 || m != 1 {
		t.Fatalf("second sleep: old callback %d calls, new %d; want 1 and 1", n, m)
	}

	// Attached again before anything is queued: the callback is forgotten.
	c, _ = attach(t, b, persistent("s"))
	drain(c)
	var third atomic.Int32
	if err := c.SleepNotify(time.Hour, func() { third.Add(1) }); err != nil {
		t.Fatal(err)
	}
	c, _ = attach(t, b, persistent("s"))
	publish(t, in, "cmd/s", "4", 1, false)
	if n := third.Load(); n != 0 {
		t.Fatalf("a message for the session attached again: callback called %d times; want 0", n)
	}

	// Sleep (no callback) is unchanged.
	drain(c)
	if err := c.Sleep(time.Hour); err != nil {
		t.Fatal(err)
	}
	publish(t, in, "cmd/s", "5", 1, false)
	if n, m, k := calls.Load(), again.Load(), third.Load(); n != 1 || m != 1 || k != 0 {
		t.Fatalf("after Sleep: callbacks %d, %d, %d; want 1, 1, 0", n, m, k)
	}
}

// TestSleepNotifyDroppedWhenLost: a session that misses its sleep deadline
// is lost, not asleep, and its callback is dropped (with whatever it holds:
// the gateway's client) rather than kept until the session expires.
func TestSleepNotifyDroppedWhenLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, mqttcore.Config{})
		in := b.Inline("p")
		c, _ := attach(t, b, persistent("s"))
		subscribe(t, c, "cmd/s", mqttcore.SubOptions{QoS: 1})
		var calls atomic.Int32
		if err := c.SleepNotify(time.Minute, func() { calls.Add(1) }); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if info, _ := b.Session("s"); info.State != mqttcore.StateLost {
			t.Fatalf("state %v two minutes into a one-minute sleep; want lost", info.State)
		}
		publish(t, in, "cmd/s", "late", 1, false)
		if n := calls.Load(); n != 0 {
			t.Errorf("a message for the lost session: callback called %d times; want 0", n)
		}
	})
}

// TestNotifyAsleep: a callback given to an asleep, detached session (the
// gateway's rebuilt sleeper after a restart) runs once, for the next
// message queued; a session attached, disconnected or unknown takes none.
func TestNotifyAsleep(t *testing.T) {
	b := newBroker(t, mqttcore.Config{})
	in := b.Inline("p")
	c, _ := attach(t, b, persistent("s"))
	subscribe(t, c, "cmd/s", mqttcore.SubOptions{QoS: 1})
	var calls atomic.Int32
	count := func() { calls.Add(1) }
	if b.NotifyAsleep("s", count) {
		t.Error("NotifyAsleep for an attached session = true; want false")
	}
	if err := c.Sleep(time.Hour); err != nil {
		t.Fatal(err)
	}
	publish(t, in, "cmd/s", "before", 1, false) // queued before the callback: no call
	if !b.NotifyAsleep("s", count) {
		t.Fatal("NotifyAsleep for an asleep session = false; want true")
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("after NotifyAsleep with a message already queued: %d calls; want 0", n)
	}
	publish(t, in, "cmd/s", "1", 1, false)
	publish(t, in, "cmd/s", "2", 1, false)
	if n := calls.Load(); n != 1 {
		t.Fatalf("after two messages: %d calls; want 1", n)
	}
	if b.NotifyAsleep("nobody", count) {
		t.Error("NotifyAsleep for an unknown client = true; want false")
	}
	d, _ := attach(t, b, persistent("d"))
	_ = d.Disconnect()
	if b.NotifyAsleep("d", count) {
		t.Error("NotifyAsleep for a disconnected session = true; want false")
	}
}

// TestSleepNotifyAfterCommit: for a journalled session the callback waits
// for the commit of the message that triggers it. Called at once, it woke
// the client (WAKEUP) while the message could not be sent yet, so the
// client found nothing, slept again, and the message waited for its next
// own wake.
func TestSleepNotifyAfterCommit(t *testing.T) {
	j := newMemJournal(t)
	b := newJournalled(t, mqttcore.Config{}, j)
	c, _ := attach(t, b, persistent("s"))
	subscribe(t, c, "cmd/s", mqttcore.SubOptions{QoS: 1})
	called := make(chan struct{}, 2)
	if err := c.SleepNotify(time.Hour, func() { called <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	pub, _ := attachAcks(t, b, mqttcore.ConnectOptions{ClientID: "pub"})
	j.sync(t)
	j.hold()
	t.Cleanup(j.release) // a failure below must not leave the journal held
	if st := pubConn(t, pub, "cmd/s", "1", 1, 1); st != mqttcore.PublishPending {
		t.Fatalf("publish to a persistent session = %v; want pending", st)
	}
	select {
	case <-called:
		t.Fatal("callback ran before the message's commit landed")
	default:
	}
	j.release()
	select {
	case <-called:
	case <-time.After(10 * time.Second):
		t.Fatal("callback did not run after the commit")
	}
	c, _ = attach(t, b, persistent("s"))
	if got := payloads(drain(c)); len(got) != 1 || got[0] != "1" {
		t.Fatalf("on wake: %q; want the message", got)
	}
	if len(called) != 0 {
		t.Error("callback ran twice")
	}
}

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

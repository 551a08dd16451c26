package mqttcore_test

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// nopFE is a front-end that ignores everything.
type nopFE struct{}

func (nopFE) Notify()            {}
func (nopFE) Close(error)        {}
func (nopFE) Acked(mqttcore.Ack) {}

// heapAlloc returns the live heap after a full collection.
func heapAlloc() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestMemory100kOfflineSessions creates 100,000 offline (asleep) persistent
// sessions, each subscribed to its own topic and to one wildcard every
// session shares, checks that one publish to the wildcard reaches every
// queue, and measures the memory per session with an empty queue (asserted
// < 1 KiB) and with one queued message. Under -short it uses 10,000.
func TestMemory100kOfflineSessions(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	b := newBroker(t, mqttcore.Config{})
	var fe nopFE
	before := heapAlloc()
	for i := range n {
		id := "sensor-" + strconv.Itoa(i)
		c, _, err := b.Attach(fe, mqttcore.ConnectOptions{ClientID: id, SessionExpiry: mqttcore.NeverExpire})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Subscribe("sensors/"+strconv.Itoa(i)+"/cmd", mqttcore.SubOptions{QoS: 1}); err != nil {
			t.Fatal(err)
		}
		if err := c.Subscribe("sensors/+/broadcast", mqttcore.SubOptions{QoS: 1}); err != nil {
			t.Fatal(err)
		}
		if err := c.Sleep(0); err != nil {
			t.Fatal(err)
		}
	}
	empty := heapAlloc()
	perEmpty := float64(empty-before) / float64(n)
	t.Logf("%d offline sessions, 2 subscriptions each, empty queue: %.0f bytes/session", n, perEmpty)
	if perEmpty >= 1024 {
		t.Errorf("offline session with an empty queue costs %.0f bytes; want < 1024", perEmpty)
	}

	m := &mqttcore.Message{Topic: "sensors/all/broadcast", Payload: []byte("reboot"), QoS: 1}
	if err := b.Inline("ops").Publish(m); err != nil {
		t.Fatal(err)
	}
	if st := b.Stats(); st.Queued != int64(n) || st.Connected != 0 || st.Sessions != int64(n) {
		t.Fatalf("after one wildcard publish Stats = %+v; want %d queued, %d sessions, 0 connected", st, n, n)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		if info, _ := b.Session("sensor-" + strconv.Itoa(i)); info.Queued != 1 || info.Subscriptions != 2 {
			t.Errorf("sensor-%d = %+v; want 1 queued, 2 subscriptions", i, info)
		}
	}
	one := heapAlloc()
	t.Logf("with one queued message each: %.0f bytes/session (+%.0f for the queue)",
		float64(one-before)/float64(n), float64(one-empty)/float64(n))

	// Wake one sensor: it finds the message in its queue.
	c, present, err := b.Attach(fe, mqttcore.ConnectOptions{ClientID: "sensor-7", SessionExpiry: mqttcore.NeverExpire})
	if err != nil || !present {
		t.Fatalf("wake = %v, present %v", err, present)
	}
	if ds := drain(c); len(ds) != 1 || ds[0].Message != m {
		t.Errorf("woken sensor got %+v; want the one shared message", ds)
	}
	runtime.KeepAlive(b)
}

package mqttcore_test

import (
	"slices"
	"testing"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// ids returns the subscription identifiers of d for c, sorted.
func ids(c *mqttcore.Conn, d mqttcore.Delivery) []uint32 {
	got := c.SubscriptionIDs(d.Message, nil)
	slices.Sort(got)
	return got
}

// TestSubscriptionIDs: a delivery carries the identifiers of every matching
// subscription of the session (MQTT 5.0 section 3.3.4), none of a
// subscription that does not match, and none after the subscription goes.
func TestSubscriptionIDs(t *testing.T) {
	b := newBroker(t, mqttcore.Config{})
	c, _ := attach(t, b, persistent("s"))
	subscribe(t, c, "a/+", mqttcore.SubOptions{QoS: 1, SubscriptionID: 7})
	subscribe(t, c, "a/#", mqttcore.SubOptions{QoS: 1, SubscriptionID: 9})
	subscribe(t, c, "b", mqttcore.SubOptions{QoS: 1, SubscriptionID: 11})
	subscribe(t, c, "a/x", mqttcore.SubOptions{}) // matches, no identifier
	in := b.Inline("p")
	publish(t, in, "a/x", "1", 1, false)
	publish(t, in, "b", "2", 1, false)
	publish(t, in, "a/y/z", "3", 1, false)
	ds := drain(c)
	want := [][]uint32{{7, 9}, {11}, {9}}
	if len(ds) != len(want) {
		t.Fatalf("drain = %v; want %d deliveries", topics(ds), len(want))
	}
	for i, d := range ds {
		if got := ids(c, d); !slices.Equal(got, want[i]) {
			t.Errorf("delivery %d (%s) SubscriptionIDs = %v; want %v", i, d.Message.Topic, got, want[i])
		}
	}
	if _, err := c.Unsubscribe("a/+"); err != nil {
		t.Fatal(err)
	}
	publish(t, in, "a/x", "4", 0, false)
	ds = drain(c)
	if len(ds) != 1 || !slices.Equal(ids(c, ds[0]), []uint32{9}) {
		t.Errorf("after unsubscribing a/+: %+v; want one delivery with ids [9]", ds)
	}
	// Replacing a subscription replaces its identifier.
	subscribe(t, c, "b", mqttcore.SubOptions{QoS: 1, SubscriptionID: 12})
	publish(t, in, "b", "5", 0, false)
	if ds = drain(c); len(ds) != 1 || !slices.Equal(ids(c, ds[0]), []uint32{12}) {
		t.Errorf("after resubscribing b with id 12: %+v; want ids [12]", ds)
	}
}

// TestSubscriptionIDsLater: a session whose first deliveries had no
// identifiers gets them once it subscribes with one, and a retained message
// sent on subscribe carries the new subscription's identifier.
func TestSubscriptionIDsLater(t *testing.T) {
	b := newBroker(t, mqttcore.Config{})
	c, _ := attach(t, b, persistent("s"))
	in := b.Inline("p")
	subscribe(t, c, "t", mqttcore.SubOptions{})
	publish(t, in, "t", "1", 0, false)
	if ds := drain(c); len(ds) != 1 || ids(c, ds[0]) != nil {
		t.Fatalf("without identifiers: %+v; want one delivery with nil ids", ds)
	}
	publish(t, in, "r", "kept", 0, true)
	subscribe(t, c, "r", mqttcore.SubOptions{SubscriptionID: 3})
	if ds := drain(c); len(ds) != 1 || !slices.Equal(ids(c, ds[0]), []uint32{3}) {
		t.Fatalf("retained on subscribe: %+v; want ids [3]", ds)
	}
}

// TestSubscriptionIDNoLocal: a No Local subscription does not contribute its
// identifier to the session's own message.
func TestSubscriptionIDNoLocal(t *testing.T) {
	b := newBroker(t, mqttcore.Config{})
	c, _ := attach(t, b, persistent("s"))
	subscribe(t, c, "t", mqttcore.SubOptions{SubscriptionID: 1, NoLocal: true})
	subscribe(t, c, "#", mqttcore.SubOptions{SubscriptionID: 2})
	if _, err := c.Publish(&mqttcore.Message{Topic: "t", Payload: []byte("own")}, 0, 0); err != nil {
		t.Fatal(err)
	}
	if ds := drain(c); len(ds) != 1 || !slices.Equal(ids(c, ds[0]), []uint32{2}) {
		t.Errorf("own message: %+v; want one delivery with ids [2]", ds)
	}
}

func TestSubscriptionIDRange(t *testing.T) {
	b := newBroker(t, mqttcore.Config{})
	c, _ := attach(t, b, persistent("s"))
	if err := c.Subscribe("t", mqttcore.SubOptions{SubscriptionID: mqttcore.MaxSubscriptionID + 1}); !isErr(err, mqttcore.ErrInvalidFilter) {
		t.Errorf("Subscribe with id %d = %v; want ErrInvalidFilter", mqttcore.MaxSubscriptionID+1, err)
	}
}

// TestNextNoSubIDsAllocs: Next and SubscriptionIDs cost no allocation for
// a session without subscription identifiers, nor, with a buffer, for one
// with them.
func TestNextNoSubIDsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race (sync.Pool drops items)")
	}
	b := newBroker(t, mqttcore.Config{})
	c, _ := attach(t, b, persistent("s"))
	subscribe(t, c, "t", mqttcore.SubOptions{})
	in := b.Inline("p")
	m := &mqttcore.Message{Topic: "t", Payload: []byte("x")}
	buf := make([]uint32, 0, 4)
	run := func() {
		if err := in.Publish(m); err != nil {
			t.Fatal(err)
		}
		d, ok := c.Next()
		if !ok {
			t.Fatal("Next reported nothing")
		}
		buf = c.SubscriptionIDs(d.Message, buf[:0])
	}
	if allocs := testing.AllocsPerRun(100, run); allocs != 0 {
		t.Errorf("publish + Next + SubscriptionIDs without identifiers: %v allocations; want 0", allocs)
	}
	subscribe(t, c, "t", mqttcore.SubOptions{SubscriptionID: 5})
	if allocs := testing.AllocsPerRun(100, run); allocs != 0 || !slices.Equal(buf, []uint32{5}) {
		t.Errorf("with an identifier: %v allocations, ids %v; want 0 and [5]", allocs, buf)
	}
}

// TestSubscriptionIDSurvivesRestart: the identifier is journalled with the
// session's subscriptions (SubscriptionRecord.Options) and delivered after
// a restore. The in-memory journal keeps the record as it is; boltstore's
// format tests hold its encoding of the field.
func TestSubscriptionIDSurvivesRestart(t *testing.T) {
	j := newMemJournal(t)
	b1, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := attach(t, b1, persistent("s"))
	subscribe(t, c, "t/#", mqttcore.SubOptions{QoS: 1, SubscriptionID: 42})
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	j.sync(t)
	b2, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b2.Close() })
	c2, _ := attach(t, b2, persistent("s"))
	publish(t, b2.Inline("p"), "t/x", "after restart", 1, false)
	j.sync(t)
	if ds := drain(c2); len(ds) != 1 || !slices.Equal(ids(c2, ds[0]), []uint32{42}) {
		t.Errorf("after restart: %+v; want one delivery with ids [42]", ds)
	}
}

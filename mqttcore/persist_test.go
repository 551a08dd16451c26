package mqttcore_test

import (
	"slices"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// TestSessionsSurviveRestart journals sessions as they change and restores
// them in a new broker on the same journal: subscriptions, queue, in-flight
// QoS 2 state (retransmitted as PUBREL), unacknowledged QoS 1 messages
// (sent again), inbound QoS 2 ids, wills and states all come back; QoS 0
// queued for a persistent session is not journalled.
func TestSessionsSurviveRestart(t *testing.T) {
	j := newMemJournal(t)
	b1, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := attach(t, b1, persistent("sensor"))
	subscribe(t, c, "cmd/#", mqttcore.SubOptions{QoS: 2, NoLocal: true})
	subscribe(t, c, "$share/g/all/+", mqttcore.SubOptions{QoS: 1})
	in := b1.Inline("app")
	publish(t, in, "cmd/a", "1", 2, false)
	publish(t, in, "cmd/b", "2", 1, false)
	if _, ok := c.Next(); ok {
		t.Fatal("a QoS 2 delivery to a journalled session went out before its packet id was stored")
	}
	j.sync(t)
	d1, _ := c.Next()
	d2, _ := c.Next()
	if d1.Message == nil || d1.Message.Topic != "cmd/a" || d2.Message == nil || d2.Message.Topic != "cmd/b" {
		t.Fatalf("deliveries %+v, %+v; want cmd/a then cmd/b", d1, d2)
	}
	if err := c.Received(d1.PacketID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(&mqttcore.Message{Topic: "up", QoS: 2}, 42, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Sleep(0); err != nil {
		t.Fatal(err)
	}
	publish(t, in, "cmd/c", "3", 0, false)
	publish(t, in, "all/x", "4", 1, false)
	exp := &mqttcore.Message{Topic: "cmd/exp", QoS: 1, Props: &mqttcore.Properties{MessageExpiry: time.Hour}}
	if err := in.Publish(exp); err != nil {
		t.Fatal(err)
	}
	attach(t, b1, withWill("app2", time.Minute, mqttcore.NeverExpire)) // attached at Close
	publish(t, in, "keep", "r", 0, true)
	if err := b1.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	j.sync(t)
	if n := j.sessionCount(); n != 2 {
		t.Fatalf("journal holds %d sessions; want 2", n)
	}

	b2, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{Journal: j})
	if err != nil {
		t.Fatalf("New on the journal = %v", err)
	}
	defer b2.Close()
	// cmd/b (QoS 1, in flight: sent again), all/x and cmd/exp are queued;
	// cmd/c was QoS 0 and is not journalled.
	if st := b2.Stats(); st.Sessions != 2 || st.Queued != 3 || st.Retained != 1 {
		t.Errorf("restored Stats = %+v; want 2 sessions, 3 queued, 1 retained", st)
	}
	if info, _ := b2.Session("sensor"); info.State != mqttcore.StateAsleep || info.Subscriptions != 2 || info.Inflight != 1 {
		t.Errorf("restored sensor = %+v; want asleep, 2 subscriptions, 1 in flight", info)
	}
	if info, _ := b2.Session("app2"); info.State != mqttcore.StateLost || !info.HasWill {
		t.Errorf("restored app2 = %+v; want lost with its will pending", info)
	}
	c2, present, err := b2.Attach(&fakeFE{}, persistent("sensor"))
	if err != nil || !present {
		t.Fatalf("Attach after restart = %v, present %v", err, present)
	}
	ds := drain(c2)
	if got, want := topics(ds), []string{"PUBREL", "cmd/b", "all/x", "cmd/exp"}; !slices.Equal(got, want) {
		t.Fatalf("after restart delivered %q; want %q", got, want)
	}
	if ds[0].PacketID != d1.PacketID || string(ds[1].Message.Payload) != "2" {
		t.Errorf("after restart = %+v, %+v; want PUBREL %d and cmd/b again", ds[0], ds[1], d1.PacketID)
	}
	_ = d2
	if ds[3].ExpiryLeft <= 0 || ds[3].ExpiryLeft > time.Hour {
		t.Errorf("restored expiry left = %v; want within an hour", ds[3].ExpiryLeft)
	}
	if st, err := c2.Publish(&mqttcore.Message{Topic: "up", QoS: 2}, 42, 0); err != nil || st != mqttcore.PublishDuplicate {
		t.Errorf("inbound QoS 2 id 42 after restart: %v, %v; want duplicate", st, err)
	}
	publish(t, b2.Inline("app"), "cmd/new", "5", 1, false)
	if got := topics(drain(c2)); !slices.Equal(got, []string{"cmd/new"}) {
		t.Errorf("restored subscription delivered %q; want [cmd/new]", got)
	}
	if _, err := c2.Publish(&mqttcore.Message{Topic: "cmd/self"}, 0, 0); err != nil {
		t.Fatal(err)
	}
	if got := drain(c2); len(got) != 0 {
		t.Errorf("restored no-local option lost: got %q", topics(got))
	}
}

func TestRestoreRejectsBadRecords(t *testing.T) {
	tests := []struct {
		name string
		recs []*mqttcore.SessionRecord
	}{
		{"empty client id", []*mqttcore.SessionRecord{{}}},
		{"bad filter", []*mqttcore.SessionRecord{{ClientID: "a", Subscriptions: []mqttcore.SubscriptionRecord{{Filter: "a/#/b"}}}}},
		{"duplicate", []*mqttcore.SessionRecord{{ClientID: "a"}, {ClientID: "a"}}},
		{"bad will", []*mqttcore.SessionRecord{{ClientID: "a", Will: &mqttcore.Will{Topic: "+"}}}},
	}
	for _, tt := range tests {
		j := newMemJournal(t)
		for i, r := range tt.recs {
			r.ID = uint64(i + 1)
			j.sessions[r.ID] = r
		}
		if b, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{Journal: j}); err == nil {
			b.Close()
			t.Errorf("%s: New succeeded; want an error", tt.name)
		}
	}
}

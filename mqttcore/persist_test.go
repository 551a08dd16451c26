package mqttcore_test

import (
	"slices"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// savingStore is a Store whose sessions survive a broker: the shape a disk
// store has, kept in memory for the test.
type savingStore struct {
	mqttcore.Store
	saved []*mqttcore.SessionRecord
}

func (s *savingStore) SaveSessions(each func(yield func(*mqttcore.SessionRecord) error) error) error {
	s.saved = nil
	return each(func(r *mqttcore.SessionRecord) error {
		s.saved = append(s.saved, r)
		return nil
	})
}

func (s *savingStore) LoadSessions(restore func(*mqttcore.SessionRecord) error) error {
	for _, r := range s.saved {
		if err := restore(r); err != nil {
			return err
		}
	}
	return nil
}

// TestSessionsSurviveRestart saves sessions at Close through the Store and
// restores them in a new broker: subscriptions, queue, in-flight state
// (retransmitted with Dup / as PUBREL), inbound QoS 2 ids, wills and
// states all come back.
func TestSessionsSurviveRestart(t *testing.T) {
	store := &savingStore{Store: mqttcore.NewMemStore()}
	b1, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := attach(t, b1, persistent("sensor"))
	subscribe(t, c, "cmd/#", mqttcore.SubOptions{QoS: 2, NoLocal: true})
	subscribe(t, c, "$share/g/all/+", mqttcore.SubOptions{QoS: 1})
	in := b1.Inline("app")
	publish(t, in, "cmd/a", "1", 2, false)
	publish(t, in, "cmd/b", "2", 1, false)
	d1, _ := c.Next()
	d2, _ := c.Next()
	if err := c.Received(d1.PacketID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(&mqttcore.Message{Topic: "up", QoS: 2}, 42); err != nil {
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
	if len(store.saved) != 2 {
		t.Fatalf("saved %d sessions; want 2", len(store.saved))
	}

	b2, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{Store: store})
	if err != nil {
		t.Fatalf("New with saved sessions = %v", err)
	}
	defer b2.Close()
	if st := b2.Stats(); st.Sessions != 2 || st.Queued != 3 || st.Retained != 1 {
		t.Errorf("restored Stats = %+v; want 2 sessions, 3 queued, 1 retained", st)
	}
	if info, _ := b2.Session("sensor"); info.State != mqttcore.StateAsleep || info.Subscriptions != 2 || info.Inflight != 2 {
		t.Errorf("restored sensor = %+v; want asleep, 2 subscriptions, 2 in flight", info)
	}
	if info, _ := b2.Session("app2"); info.State != mqttcore.StateLost || !info.HasWill {
		t.Errorf("restored app2 = %+v; want lost with its will pending", info)
	}
	c2, present, err := b2.Attach(&fakeFE{}, persistent("sensor"))
	if err != nil || !present {
		t.Fatalf("Attach after restart = %v, present %v", err, present)
	}
	ds := drain(c2)
	if got, want := topics(ds), []string{"PUBREL", "cmd/b", "cmd/c", "all/x", "cmd/exp"}; !slices.Equal(got, want) {
		t.Fatalf("after restart delivered %q; want %q", got, want)
	}
	if ds[0].PacketID != d1.PacketID || ds[1].PacketID != d2.PacketID || !ds[1].Dup {
		t.Errorf("retransmissions = %+v, %+v; want PUBREL %d and dup of %d", ds[0], ds[1], d1.PacketID, d2.PacketID)
	}
	if ds[4].ExpiryLeft <= 0 || ds[4].ExpiryLeft > time.Hour {
		t.Errorf("restored expiry left = %v; want within an hour", ds[4].ExpiryLeft)
	}
	if dup, err := c2.Publish(&mqttcore.Message{Topic: "up", QoS: 2}, 42); err != nil || !dup {
		t.Errorf("inbound QoS 2 id 42 after restart: dup %v, %v; want duplicate", dup, err)
	}
	publish(t, b2.Inline("app"), "cmd/new", "5", 1, false)
	if got := topics(drain(c2)); !slices.Equal(got, []string{"cmd/new"}) {
		t.Errorf("restored subscription delivered %q; want [cmd/new]", got)
	}
	if _, err := c2.Publish(&mqttcore.Message{Topic: "cmd/self"}, 0); err != nil {
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
		store := &savingStore{Store: mqttcore.NewMemStore(), saved: tt.recs}
		if b, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{Store: store}); err == nil {
			b.Close()
			t.Errorf("%s: New succeeded; want an error", tt.name)
		}
	}
}

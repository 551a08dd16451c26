package mqttcore_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// prefixAuthz allows user u an action on a topic or filter starting with
// one of rules[u][action]. It records what it was asked.
type prefixAuthz struct {
	rules map[string]map[mqttcore.Action][]string
}

func (p *prefixAuthz) Allow(user, clientID string, a mqttcore.Action, topic string) bool {
	for _, pre := range p.rules[user][a] {
		if strings.HasPrefix(topic, pre) {
			return true
		}
	}
	return false
}

// sensorRules: user "s1" may publish and read under s/s1/, subscribe to
// s/ (any filter there) and set a will on will/s1; "app" may read and
// subscribe to everything under s/ and publish cmd/.
func sensorRules() *prefixAuthz {
	return &prefixAuthz{rules: map[string]map[mqttcore.Action][]string{
		"s1": {
			mqttcore.ActionPublish:   {"s/s1/", "will/s1"},
			mqttcore.ActionSubscribe: {"s/"},
			mqttcore.ActionRead:      {"s/s1/"},
		},
		"app": {
			mqttcore.ActionPublish:   {"cmd/"},
			mqttcore.ActionSubscribe: {"s/", "$SYS/"},
			mqttcore.ActionRead:      {"s/"},
		},
	}}
}

func newAuthzBroker(t *testing.T, az mqttcore.Authorizer) *mqttcore.Broker {
	t.Helper()
	b, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{Authorizer: az})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestAuthorizePublish checks Conn.Publish at every QoS, retained included:
// allowed goes through, denied returns ErrNotAuthorized, reaches no
// subscriber, stores nothing retained and leaves no QoS 2 state.
func TestAuthorizePublish(t *testing.T) {
	b := newAuthzBroker(t, sensorRules())
	app, _ := attach(t, b, mqttcore.ConnectOptions{ClientID: "app", Username: "app"})
	subscribe(t, app, "s/#", mqttcore.SubOptions{QoS: mqttcore.ExactlyOnce})
	s1, _ := attach(t, b, mqttcore.ConnectOptions{ClientID: "sensor-1", Username: "s1"})

	var pid uint16
	for _, qos := range []mqttcore.QoS{mqttcore.AtMostOnce, mqttcore.AtLeastOnce, mqttcore.ExactlyOnce} {
		for _, retain := range []bool{false, true} {
			pid++
			ok := &mqttcore.Message{Topic: "s/s1/temp", Payload: []byte("20"), QoS: qos, Retain: retain}
			if _, err := s1.Publish(ok, pid, 0); err != nil {
				t.Fatalf("allowed Publish(qos %d, retain %v) = %v", qos, retain, err)
			}
			pid++
			bad := &mqttcore.Message{Topic: "s/s2/temp", Payload: []byte("spoof"), QoS: qos, Retain: retain}
			st, err := s1.Publish(bad, pid, 0)
			if !errors.Is(err, mqttcore.ErrNotAuthorized) || st == mqttcore.PublishDuplicate {
				t.Errorf("denied Publish(qos %d, retain %v) = %v, %v; want ErrNotAuthorized", qos, retain, st, err)
			}
			if qos == mqttcore.ExactlyOnce {
				// The id was not taken: a release for it is unknown.
				if err := s1.Release(pid); !errors.Is(err, mqttcore.ErrUnknownPacketID) {
					t.Errorf("Release(denied qos 2 id) = %v; want ErrUnknownPacketID", err)
				}
				_ = s1.Release(pid - 1)
			}
		}
	}
	if got := topics(drain(app)); len(got) != 6 || slices.Contains(got, "s/s2/temp") {
		t.Errorf("app received %q; want s/s1/temp six times and never s/s2/temp", got)
	}
	late, _ := attach(t, b, mqttcore.ConnectOptions{ClientID: "late", Username: "app"})
	subscribe(t, late, "s/+/temp", mqttcore.SubOptions{QoS: mqttcore.AtLeastOnce})
	if got := topics(drain(late)); !slices.Equal(got, []string{"s/s1/temp"}) {
		t.Errorf("retained for a new subscriber = %q; want only s/s1/temp", got)
	}
	if st := b.Stats(); st.Denied.Publish != 6 || st.Retained != 1 {
		t.Errorf("Stats: Denied.Publish = %d, Retained = %d; want 6 and 1", st.Denied.Publish, st.Retained)
	}
}

// TestAuthorizeSubscribeAndRead checks the subscribe check (filters, $SYS)
// and the per-message read check on fan-out and on retained messages.
func TestAuthorizeSubscribeAndRead(t *testing.T) {
	b := newAuthzBroker(t, sensorRules())
	in := b.Inline("feed")
	publish(t, in, "s/s1/cfg", "mine", mqttcore.AtMostOnce, true)
	publish(t, in, "s/s2/cfg", "theirs", mqttcore.AtMostOnce, true)

	s1, _ := attach(t, b, mqttcore.ConnectOptions{ClientID: "sensor-1", Username: "s1"})
	for _, f := range []string{"#", "$SYS/#", "other/+"} {
		if err := s1.Subscribe(f, mqttcore.SubOptions{}); !errors.Is(err, mqttcore.ErrNotAuthorized) {
			t.Errorf("Subscribe(%q) = %v; want ErrNotAuthorized", f, err)
		}
	}
	// Allowed to subscribe to s/#, but it may read only s/s1/...
	subscribe(t, s1, "s/#", mqttcore.SubOptions{QoS: mqttcore.AtLeastOnce})
	if got := topics(drain(s1)); !slices.Equal(got, []string{"s/s1/cfg"}) {
		t.Errorf("retained delivered on s/# = %q; want only s/s1/cfg", got)
	}
	publish(t, in, "s/s1/cmd", "x", mqttcore.AtLeastOnce, false)
	publish(t, in, "s/s2/cmd", "x", mqttcore.AtLeastOnce, false)
	if got := topics(drain(s1)); !slices.Equal(got, []string{"s/s1/cmd"}) {
		t.Errorf("fan-out on s/# = %q; want only s/s1/cmd", got)
	}
	if info, _ := b.Session("sensor-1"); info.Subscriptions != 1 {
		t.Errorf("sensor-1 has %d subscriptions; want 1 (denied ones not added)", info.Subscriptions)
	}
	st := b.Stats()
	if st.Denied.Subscribe != 3 || st.Denied.Read != 2 {
		t.Errorf("Stats.Denied = %+v; want Subscribe 3, Read 2", st.Denied)
	}

	// An offline session keeps its user for the read check.
	if err := s1.Sleep(0); err != nil {
		t.Fatal(err)
	}
	publish(t, in, "s/s2/cmd", "x", mqttcore.AtLeastOnce, false)
	publish(t, in, "s/s1/cmd", "y", mqttcore.AtLeastOnce, false)
	if info, _ := b.Session("sensor-1"); info.Queued != 1 {
		t.Errorf("asleep sensor-1 has %d queued; want 1", info.Queued)
	}
}

// TestAuthorizeWill checks wills at Attach and SetWill.
func TestAuthorizeWill(t *testing.T) {
	b := newAuthzBroker(t, sensorRules())
	bad := mqttcore.ConnectOptions{ClientID: "sensor-1", Username: "s1",
		Will: &mqttcore.Will{Topic: "will/s2", Payload: []byte("x")}}
	if _, _, err := b.Attach(&fakeFE{}, bad); !errors.Is(err, mqttcore.ErrNotAuthorized) {
		t.Fatalf("Attach with a denied will = %v; want ErrNotAuthorized", err)
	}
	if _, ok := b.Session("sensor-1"); ok {
		t.Error("a session exists after Attach was refused for its will")
	}
	good := bad
	good.Will = &mqttcore.Will{Topic: "will/s1", Payload: []byte("x")}
	c, _ := attach(t, b, good)
	if err := c.SetWill(&mqttcore.Will{Topic: "will/s2"}); !errors.Is(err, mqttcore.ErrNotAuthorized) {
		t.Errorf("SetWill(denied) = %v; want ErrNotAuthorized", err)
	}
	if w := c.Will(); w == nil || w.Topic != "will/s1" {
		t.Errorf("will after a denied SetWill = %+v; want will/s1 kept", w)
	}
	if err := c.SetWill(&mqttcore.Will{Topic: "will/s1/v2"}); err != nil {
		t.Errorf("SetWill(allowed) = %v", err)
	}
	if err := c.SetWill(nil); err != nil {
		t.Errorf("SetWill(nil) = %v; removing a will needs no right", err)
	}
	if d := b.Stats().Denied.Will; d != 2 {
		t.Errorf("Stats.Denied.Will = %d; want 2", d)
	}
}

// TestSetAuthorizer checks that the Authorizer can be swapped at run time
// and that Authorize (for sessionless publishes) uses the current one.
func TestSetAuthorizer(t *testing.T) {
	b := newAuthzBroker(t, nil)
	if err := b.Authorize("", "x", mqttcore.ActionPublish, "any/thing"); err != nil {
		t.Errorf("Authorize without an Authorizer = %v; want nil", err)
	}
	b.SetAuthorizer(sensorRules())
	err := b.Authorize("s1", "qos-1", mqttcore.ActionPublish, "any/thing")
	if !errors.Is(err, mqttcore.ErrNotAuthorized) || !strings.Contains(err.Error(), "any/thing") {
		t.Errorf("Authorize after SetAuthorizer = %v; want ErrNotAuthorized naming the topic", err)
	}
	if err := b.Authorize("s1", "qos-1", mqttcore.ActionPublish, "s/s1/x"); err != nil {
		t.Errorf("Authorize(allowed) = %v", err)
	}
	b.SetAuthorizer(nil)
	if err := b.Authorize("s1", "qos-1", mqttcore.ActionPublish, "any/thing"); err != nil {
		t.Errorf("Authorize after SetAuthorizer(nil) = %v; want nil", err)
	}
	if d := b.Stats().Denied.Publish; d != 1 {
		t.Errorf("Stats.Denied.Publish = %d; want 1", d)
	}
	if s := mqttcore.ActionRead.String(); s != "read" {
		t.Errorf("ActionRead.String() = %q", s)
	}
}

// TestAuthorizeUserSurvivesRestart: an asleep session restored from the
// journal keeps its user, so the read check still lets its messages in.
func TestAuthorizeUserSurvivesRestart(t *testing.T) {
	j := newMemJournal(t)
	b1, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{Journal: j, Authorizer: sensorRules()})
	if err != nil {
		t.Fatal(err)
	}
	opts := persistent("sensor-1")
	opts.Username = "s1"
	c, _ := attach(t, b1, opts)
	subscribe(t, c, "s/#", mqttcore.SubOptions{QoS: mqttcore.AtLeastOnce})
	if err := c.Sleep(0); err != nil {
		t.Fatal(err)
	}
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	j.sync(t)
	j.mu.Lock()
	var users []string
	for _, r := range j.sessions {
		users = append(users, r.Username)
	}
	j.mu.Unlock()
	if len(users) != 1 || users[0] != "s1" {
		t.Fatalf("journalled users %q; want sensor-1 with Username s1", users)
	}
	b2 := newAuthzBrokerWith(t, j)
	in := b2.Inline("feed")
	publish(t, in, "s/s1/cmd", "x", mqttcore.AtLeastOnce, false)
	publish(t, in, "s/s2/cmd", "x", mqttcore.AtLeastOnce, false)
	if info, _ := b2.Session("sensor-1"); info.Queued != 1 {
		t.Errorf("restored asleep sensor-1 has %d queued; want 1 (its own topic only)", info.Queued)
	}
}

func newAuthzBrokerWith(t *testing.T, j *memJournal) *mqttcore.Broker {
	t.Helper()
	b, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{Journal: j, Authorizer: sensorRules()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

package gateway_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/internal/sntest"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/snclient"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// e2ePredefined is the predefined topic the publish and subscribe tests
// configure on the gateway and in their sensors.
const (
	e2ePredefinedID    = 7
	e2ePredefinedTopic = "e2e/pre/temp"
)

func e2ePredefinedConfig() gateway.Config {
	return gateway.Config{
		Predefined: []gateway.PredefinedTopic{{ID: e2ePredefinedID, Topic: e2ePredefinedTopic}},
		QoSMinus1:  gateway.QoSMinus1Config{Enabled: true},
	}
}

// TestE2EPublish publishes from a sensor at QoS -1, 0, 1 and 2 with a
// registered topic name, a predefined id and a short name, and checks what
// an MQTT client subscribed to "#" receives: topic, payload, QoS and RETAIN.
func TestE2EPublish(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{Gateway: e2ePredefinedConfig()})
	app := e.MQTT(t, ctx, "app")
	app.Subscribe(t, ctx, 2, "#")
	pre := map[uint16]string{e2ePredefinedID: e2ePredefinedTopic}
	s := e.Connected(t, ctx, snclient.Options{ClientID: "pub", PredefinedTopics: pre})
	// QoS -1 needs no connection: a sensor that never CONNECTs.
	anon := e.Sensor(t, ctx, snclient.Options{ClientID: "anon", PredefinedTopics: pre})

	kinds := []struct {
		name  string
		topic snclient.Topic
		mqtt  string // the topic the MQTT client sees
	}{
		{"normal", snclient.Named("e2e/pub/normal"), "e2e/pub/normal"},
		{"predefined", snclient.Predefined(e2ePredefinedID), e2ePredefinedTopic},
		{"short", snclient.Short("sh"), "sh"},
	}
	for _, k := range kinds {
		for _, q := range []sn.QoS{sn.QoSMinus1, sn.QoS0, sn.QoS1, sn.QoS2} {
			if q == sn.QoSMinus1 && k.topic.Kind == sn.TopicIDNormal {
				continue // QoS -1 has no registered names (§6.8)
			}
			for _, retain := range []bool{false, true} {
				name := fmt.Sprintf("%s/qos%d/retain=%v", k.name, q, retain)
				t.Run(name, func(t *testing.T) {
					payload := "payload " + name
					from := s
					if q == sn.QoSMinus1 {
						from = anon
					}
					if err := from.Publish(ctx, k.topic, q, retain, []byte(payload)); err != nil {
						t.Fatalf("Publish(%v, qos %v) = %v", k.topic, q, err)
					}
					want := byte(q)
					if q == sn.QoSMinus1 {
						want = 0
					}
					app.Expect(t, ctx, k.mqtt, payload, want, retain)
				})
			}
		}
	}
	if st := e.Gateway.Stats(); st.QoSMinus1 != 4 {
		t.Errorf("gateway Stats().QoSMinus1 = %d; want 4", st.QoSMinus1)
	}
	// The last retained message of each topic is stored: a late subscriber
	// gets them with RETAIN set.
	late := e.MQTT(t, ctx, "late")
	late.Subscribe(t, ctx, 2, "e2e/pub/normal")
	late.Expect(t, ctx, "e2e/pub/normal", "payload normal/qos2/retain=true", 2, true)
}

// TestE2ESubscribe subscribes a sensor by exact name, by wildcard (the
// gateway REGISTERs each matching topic before its PUBLISH), by predefined
// id and by short name, and checks what it receives from an MQTT client.
func TestE2ESubscribe(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{Gateway: e2ePredefinedConfig()})
	app := e.MQTT(t, ctx, "app")
	var registered []string
	s := e.Connected(t, ctx, snclient.Options{ClientID: "sub",
		PredefinedTopics: map[uint16]string{e2ePredefinedID: e2ePredefinedTopic},
		RegisterFilter: func(id uint16, topic string) sn.ReturnCode {
			registered = append(registered, topic) // the reader goroutine only
			return sn.Accepted
		}})

	cases := []struct {
		name      string
		topic     snclient.Topic
		subQoS    sn.QoS
		pubTopic  string
		pubQoS    byte
		wantQoS   sn.QoS
		wantType  sn.TopicIDType
		wantSubID func(uint16) bool // the SUBACK topic id
	}{
		{"exact", snclient.Named("e2e/sub/exact"), sn.QoS1, "e2e/sub/exact", 1, sn.QoS1, sn.TopicIDNormal,
			func(id uint16) bool { return id != 0 && id != 0xFFFF }},
		{"wildcard", snclient.Named("e2e/wild/+"), sn.QoS2, "e2e/wild/a", 2, sn.QoS2, sn.TopicIDNormal,
			func(id uint16) bool { return id == 0 }},
		{"predefined", snclient.Predefined(e2ePredefinedID), sn.QoS0, e2ePredefinedTopic, 1, sn.QoS0, sn.TopicIDPredefined,
			func(id uint16) bool { return id == e2ePredefinedID }},
		{"short", snclient.Short("ab"), sn.QoS1, "ab", 2, sn.QoS1, sn.TopicIDShort,
			func(id uint16) bool { return id == 0 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sub, err := s.Subscribe(ctx, tc.topic, tc.subQoS)
			if err != nil {
				t.Fatalf("Subscribe(%v, qos %v) = %v", tc.topic, tc.subQoS, err)
			}
			if sub.QoS != tc.subQoS || !tc.wantSubID(sub.TopicID) {
				t.Errorf("SUBACK = %+v; want QoS %v and the %s topic id rule", sub, tc.subQoS, tc.name)
			}
			payload := "to " + tc.name
			app.Publish(t, ctx, tc.pubTopic, tc.pubQoS, false, payload)
			m := s.Next(t, ctx)
			if m.Topic != tc.pubTopic || string(m.Payload) != payload || m.QoS != tc.wantQoS ||
				m.TopicIDType != tc.wantType || m.Retain || m.Dup {
				t.Errorf("sensor received %+v; want topic %q, payload %q, QoS %v, id type %v, no RETAIN, no DUP",
					m.Message, tc.pubTopic, payload, tc.wantQoS, tc.wantType)
			}
			if tc.name == "exact" && m.TopicID != sub.TopicID {
				t.Errorf("PUBLISH topic id %d; want the SUBACK's %d", m.TopicID, sub.TopicID)
			}
			if tc.name == "wildcard" {
				if id, ok := s.TopicID(tc.pubTopic); !ok || id != m.TopicID {
					t.Errorf("wildcard match: the sensor holds id %d (%v) for %q; the PUBLISH used %d",
						id, ok, tc.pubTopic, m.TopicID)
				}
			}
		})
	}
	if len(registered) != 1 || registered[0] != "e2e/wild/a" {
		t.Errorf("gateway REGISTERed %q; want only the wildcard match [e2e/wild/a]", registered)
	}
}

// TestE2ERetainedOnSubscribe checks that a retained message reaches a
// sensor when it subscribes, with RETAIN set, and that a live message
// afterwards does not carry it.
func TestE2ERetainedOnSubscribe(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{})
	app := e.MQTT(t, ctx, "app")
	app.Publish(t, ctx, "e2e/ret/a", 1, true, "kept")
	s := e.Connected(t, ctx, snclient.Options{ClientID: "ret"})
	if _, err := s.Subscribe(ctx, snclient.Named("e2e/ret/#"), sn.QoS1); err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	m := s.Next(t, ctx)
	if m.Topic != "e2e/ret/a" || string(m.Payload) != "kept" || !m.Retain || m.QoS != sn.QoS1 {
		t.Errorf("on subscribe the sensor received %+v; want (e2e/ret/a, kept, RETAIN, QoS 1)", m.Message)
	}
	app.Publish(t, ctx, "e2e/ret/a", 1, true, "live")
	m = s.Next(t, ctx)
	if m.Topic != "e2e/ret/a" || string(m.Payload) != "live" || m.Retain {
		t.Errorf("live message: %+v; want (e2e/ret/a, live) without RETAIN", m.Message)
	}
}

// TestE2EUnsubscribe checks that after UNSUBSCRIBE the sensor receives
// nothing more on that topic, and still receives on its other one.
func TestE2EUnsubscribe(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{})
	app := e.MQTT(t, ctx, "app")
	s := e.Connected(t, ctx, snclient.Options{ClientID: "unsub"})
	for _, f := range []string{"e2e/un/a", "e2e/un/b/+"} {
		if _, err := s.Subscribe(ctx, snclient.Named(f), sn.QoS1); err != nil {
			t.Fatalf("Subscribe(%q) = %v", f, err)
		}
	}
	app.Publish(t, ctx, "e2e/un/a", 1, false, "before")
	if m := s.Next(t, ctx); string(m.Payload) != "before" {
		t.Fatalf("sensor received %q; want before", m.Payload)
	}
	if err := s.Unsubscribe(ctx, snclient.Named("e2e/un/a")); err != nil {
		t.Fatalf("Unsubscribe(e2e/un/a) = %v", err)
	}
	if info, _ := e.Broker.Session("unsub"); info.Subscriptions != 1 {
		t.Errorf("core session has %d subscriptions after UNSUBSCRIBE; want 1", info.Subscriptions)
	}
	app.Publish(t, ctx, "e2e/un/a", 1, false, "after")
	app.Publish(t, ctx, "e2e/un/b/x", 1, false, "fence")
	if m := s.Next(t, ctx); m.Topic != "e2e/un/b/x" || string(m.Payload) != "fence" {
		t.Fatalf("sensor received (%q, %q); want the fence (e2e/un/b/x, fence)", m.Topic, m.Payload)
	}
	s.NoMessage(t)
	// Unsubscribing the wildcard too leaves the session without any.
	if err := s.Unsubscribe(ctx, snclient.Named("e2e/un/b/+")); err != nil {
		t.Fatalf("Unsubscribe(e2e/un/b/+) = %v", err)
	}
	if info, _ := e.Broker.Session("unsub"); info.Subscriptions != 0 || info.State != mqttcore.StateActive {
		t.Errorf("core session %+v; want active with no subscriptions", info)
	}
}

// TestE2ETakeover checks that a CONNECT with the same client id from
// another address takes the session over: the old address gets DISCONNECT,
// the subscription follows the new one.
func TestE2ETakeover(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{})
	app := e.MQTT(t, ctx, "app")
	old := e.Connected(t, ctx, snclient.Options{ClientID: "tk", PersistentSession: true})
	if _, err := old.Subscribe(ctx, snclient.Named("e2e/tk"), sn.QoS1); err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	nu := e.Connected(t, ctx, snclient.Options{ClientID: "tk", PersistentSession: true})
	select {
	case <-old.Lost:
		if s := old.State(); s != snclient.StateDisconnected {
			t.Errorf("old sensor is %v after the takeover; want disconnected", s)
		}
	case <-ctx.Done():
		t.Fatalf("old sensor got no DISCONNECT: %v", ctx.Err())
	}
	sntest.WaitFor(t, ctx, "the gateway to hold one client", func() bool { return e.Gateway.Stats().Clients == 1 })
	app.Publish(t, ctx, "e2e/tk", 1, false, "to the new address")
	if m := nu.Next(t, ctx); m.Topic != "e2e/tk" || string(m.Payload) != "to the new address" {
		t.Fatalf("new sensor received (%q, %q)", m.Topic, m.Payload)
	}
	old.NoMessage(t)
	if info, _ := e.Broker.Session("tk"); info.State != mqttcore.StateActive || info.Subscriptions != 1 {
		t.Errorf("core session %+v; want active with its subscription", info)
	}
}

// TestE2EPublishToMosquittoSub checks sensor publishes at QoS 0, 1 and 2
// arriving at mosquitto_sub (Debian package mosquitto-clients), a client
// no one here wrote, with topic, QoS and payload intact.
func TestE2EPublishToMosquittoSub(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{})
	sub := e.MosquittoSub(t, ctx, "mosq", "e2e/mosq/#", 2, 3)
	s := e.Connected(t, ctx, snclient.Options{ClientID: "to-mosq"})
	for q := sn.QoS0; q <= sn.QoS2; q++ {
		if err := s.Publish(ctx, snclient.Named(fmt.Sprintf("e2e/mosq/%d", q)), q, false, fmt.Appendf(nil, "hello %d", q)); err != nil {
			t.Fatalf("Publish at QoS %v = %v", q, err)
		}
	}
	lines := sub.Wait(t, ctx)
	want := []string{"e2e/mosq/0 0 0 hello 0", "e2e/mosq/1 1 0 hello 1", "e2e/mosq/2 2 0 hello 2"}
	if fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Errorf("mosquitto_sub printed %q; want %q", lines, want)
	}
}

// TestE2EPredefinedPerClientAndTemplate checks predefined topics that
// depend on the client: a template expanded with the client id, and a
// mapping for one client only, unknown to the others.
func TestE2EPredefinedPerClientAndTemplate(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{Gateway: gateway.Config{Predefined: []gateway.PredefinedTopic{
		{ID: 8, Topic: "e2e/sensors/{client_id}/temp"},
		{ID: 9, Topic: "e2e/only/a", ClientID: "a"},
	}}})
	app := e.MQTT(t, ctx, "app")
	app.Subscribe(t, ctx, 1, "e2e/#")
	a := e.Connected(t, ctx, snclient.Options{ClientID: "a"})
	b := e.Connected(t, ctx, snclient.Options{ClientID: "b"})
	for _, s := range []*sntest.Sensor{a, b} {
		if err := s.Publish(ctx, snclient.Predefined(8), sn.QoS1, false, []byte("21.5")); err != nil {
			t.Fatalf("%s: Publish(predefined 8) = %v", s.ClientID(), err)
		}
		app.Expect(t, ctx, "e2e/sensors/"+s.ClientID()+"/temp", "21.5", 1, false)
	}
	if err := a.Publish(ctx, snclient.Predefined(9), sn.QoS1, false, []byte("mine")); err != nil {
		t.Fatalf("a: Publish(predefined 9) = %v", err)
	}
	app.Expect(t, ctx, "e2e/only/a", "mine", 1, false)
	if err := b.Publish(ctx, snclient.Predefined(9), sn.QoS1, false, []byte("not mine")); !errors.Is(err, snclient.ErrInvalidTopicID) {
		t.Errorf("b: Publish(predefined 9) = %v; want ErrInvalidTopicID", err)
	}
	e2eFence(t, ctx, app, "e2e/fence")
}

// TestE2ERepeatedConnect checks that a CONNECT from a connected sensor is
// answered again and leaves one client with its session.
func TestE2ERepeatedConnect(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{})
	s := e.Connected(t, ctx, snclient.Options{ClientID: "again", PersistentSession: true})
	if _, err := s.Subscribe(ctx, snclient.Named("e2e/again"), sn.QoS1); err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	if err := s.Connect(ctx); err != nil {
		t.Fatalf("repeated Connect = %v", err)
	}
	if st := e.Gateway.Stats(); st.Clients != 1 {
		t.Errorf("gateway holds %d clients after a repeated CONNECT; want 1", st.Clients)
	}
	app := e.MQTT(t, ctx, "app")
	app.Publish(t, ctx, "e2e/again", 1, false, "still subscribed")
	if m := s.Next(t, ctx); m.Topic != "e2e/again" || string(m.Payload) != "still subscribed" {
		t.Errorf("sensor received (%q, %q); want (e2e/again, still subscribed)", m.Topic, m.Payload)
	}
}

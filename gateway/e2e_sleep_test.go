package gateway_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/internal/outside"
	"github.com/gannet-mqtt/gannet/internal/sntest"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/snclient"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// e2eWant is one message a sensor should receive.
type e2eWant struct {
	topic, payload string
	qos            sn.QoS
}

func e2eExpectSensor(t *testing.T, got sntest.Message, want e2eWant) {
	t.Helper()
	if got.Topic != want.topic || string(got.Payload) != want.payload || got.QoS != want.qos {
		t.Errorf("sensor received (%q, %q, qos %v); want (%q, %q, qos %v)",
			got.Topic, got.Payload, got.QoS, want.topic, want.payload, want.qos)
	}
}

// TestE2ESleepWake walks a sleeping sensor through active -> asleep ->
// awake -> asleep -> active. Messages published by mosquitto_pub while it
// sleeps queue in its core session; the wake-up PINGREQ delivers them all
// (REGISTERing wildcard matches) before PINGRESP; a wake with nothing
// queued is answered at once; registrations survive sleep; a repeated
// sleep request is acknowledged again; CONNECT from asleep delivers the
// queue.
func TestE2ESleepWake(t *testing.T) {
	t.Parallel()
	outside.Program(t, "mosquitto_pub", "mosquitto-clients")
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{})
	var mu sync.Mutex
	registers := map[string]int{}
	s := e.Connected(t, ctx, snclient.Options{ClientID: "sleeper", PersistentSession: true,
		RegisterFilter: func(id uint16, topic string) sn.ReturnCode {
			mu.Lock()
			registers[topic]++
			mu.Unlock()
			return sn.Accepted
		}})
	registered := func(topic string) int {
		mu.Lock()
		defer mu.Unlock()
		return registers[topic]
	}
	if _, err := s.Subscribe(ctx, snclient.Named("e2e/sleep/#"), sn.QoS2); err != nil {
		t.Fatalf("Subscribe(e2e/sleep/#) = %v", err)
	}
	if _, err := s.Subscribe(ctx, snclient.Named("e2e/sleepx"), sn.QoS1); err != nil {
		t.Fatalf("Subscribe(e2e/sleepx) = %v", err)
	}
	asleep := func(what string) {
		t.Helper()
		e.WaitSession(t, ctx, "sleeper", mqttcore.StateAsleep)
		if st := s.State(); st != snclient.StateAsleep {
			t.Errorf("%s: sensor is %v; want asleep", what, st)
		}
		if st := e.Gateway.Stats(); st.Asleep != 1 || st.Clients != 1 {
			t.Errorf("%s: gateway Stats() Clients %d, Asleep %d; want 1, 1", what, st.Clients, st.Asleep)
		}
	}
	queued := func(n int) {
		t.Helper()
		sntest.WaitFor(t, ctx, "messages queued for the sleeper", func() bool {
			info, _ := e.Broker.Session("sleeper")
			return info.Queued == n
		})
	}

	// active -> asleep; a repeated sleep request is acknowledged again.
	if err := s.Sleep(ctx, 30*time.Second); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
	asleep("after Sleep")
	if err := s.Sleep(ctx, 30*time.Second); err != nil {
		t.Fatalf("repeated Sleep = %v", err)
	}
	asleep("after a repeated Sleep")

	// Messages while asleep queue in the core session. Each mosquitto_pub is
	// a separate TCP connection, and nothing orders one connection's PUBLISH
	// against the next one's (a QoS 0 publisher may exit before the broker
	// has read it): wait for each message to be queued before sending the
	// next, so that the order checked below is the order sent.
	for i, p := range []struct {
		topic string
		qos   int
	}{{"e2e/sleep/a", 0}, {"e2e/sleep/b", 1}, {"e2e/sleepx", 2}, {"e2e/sleep/a", 2}} {
		e.MosquittoPub(t, ctx, p.topic, p.qos, false, fmt.Sprintf("m%d", i))
		queued(i + 1)
	}
	s.NoMessage(t)

	// asleep -> awake -> asleep: everything arrives before PINGRESP.
	if err := s.CheckMessages(ctx); err != nil {
		t.Fatalf("CheckMessages = %v", err)
	}
	for _, want := range []e2eWant{
		{"e2e/sleep/a", "m0", sn.QoS0},
		{"e2e/sleep/b", "m1", sn.QoS1},
		{"e2e/sleepx", "m2", sn.QoS1}, // subscribed at QoS 1
		{"e2e/sleep/a", "m3", sn.QoS2},
	} {
		select {
		case m := <-s.Msgs:
			e2eExpectSensor(t, m, want)
		default:
			t.Fatalf("CheckMessages returned before %q arrived", want.payload)
		}
	}
	asleep("after the wake")
	queued(0)
	if registered("e2e/sleep/a") != 1 || registered("e2e/sleep/b") != 1 {
		t.Errorf("REGISTERs during the wake: %v; want one each for e2e/sleep/a and e2e/sleep/b", registers)
	}

	// A wake with nothing queued is answered at once.
	if err := s.CheckMessages(ctx); err != nil {
		t.Fatalf("empty CheckMessages = %v", err)
	}
	s.NoMessage(t)
	asleep("after an empty wake")

	// Registrations survive sleep: no second REGISTER for e2e/sleep/a.
	e.MosquittoPub(t, ctx, "e2e/sleep/a", 1, false, "m4")
	queued(1)
	if err := s.CheckMessages(ctx); err != nil {
		t.Fatalf("CheckMessages = %v", err)
	}
	e2eExpectSensor(t, s.Next(t, ctx), e2eWant{"e2e/sleep/a", "m4", sn.QoS1})
	if n := registered("e2e/sleep/a"); n != 1 {
		t.Errorf("e2e/sleep/a REGISTERed %d times; want once (registrations survive sleep)", n)
	}

	// asleep -> active: CONNECT delivers what queued meanwhile.
	e.MosquittoPub(t, ctx, "e2e/sleepx", 1, false, "m5")
	queued(1)
	if err := s.Connect(ctx); err != nil {
		t.Fatalf("Connect from asleep = %v", err)
	}
	e2eExpectSensor(t, s.Next(t, ctx), e2eWant{"e2e/sleepx", "m5", sn.QoS1})
	e.WaitSession(t, ctx, "sleeper", mqttcore.StateActive)
	if st := e.Gateway.Stats(); st.Asleep != 0 || st.Clients != 1 {
		t.Errorf("after CONNECT: gateway Stats() Clients %d, Asleep %d; want 1, 0", st.Clients, st.Asleep)
	}
}

// TestE2EOversleepPublishesWill checks asleep -> lost: a sensor that does
// not wake within its sleep duration plus the tolerance (1 s + 50 %) is
// lost and its will published.
func TestE2EOversleepPublishesWill(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{})
	app := e.MQTT(t, ctx, "app")
	app.Subscribe(t, ctx, 1, "e2e/will/#")
	s := e.Connected(t, ctx, snclient.Options{ClientID: "dozy",
		Will: &snclient.Will{Topic: "e2e/will/dozy", Message: []byte("overslept"), QoS: sn.QoS1}})
	if err := s.Sleep(ctx, time.Second); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
	slept := time.Now()
	app.Expect(t, ctx, "e2e/will/dozy", "overslept", 1, false)
	if d := time.Since(slept); d < time.Second {
		t.Errorf("will published %v after the sleep began; want at least the 1s sleep duration", d)
	}
	e.WaitGone(t, ctx, "dozy") // lost: a clean session ends
	sntest.WaitFor(t, ctx, "the gateway to forget the lost sleeper", func() bool {
		st := e.Gateway.Stats()
		return st.Clients == 0 && st.Asleep == 0
	})
}

// TestE2EDisconnectWhileAsleep checks asleep -> disconnected: DISCONNECT
// without a duration from a sleeping sensor ends it normally, the will
// discarded.
func TestE2EDisconnectWhileAsleep(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{})
	app := e.MQTT(t, ctx, "app")
	app.Subscribe(t, ctx, 1, "e2e/will/#")
	s := e.Connected(t, ctx, snclient.Options{ClientID: "bye",
		Will: &snclient.Will{Topic: "e2e/will/bye", Message: []byte("gone")}})
	// Asleep for a minute: with a shorter sleep, a loaded machine could let
	// the gateway's sleep deadline (duration plus 50 %) pass before the
	// DISCONNECT arrives, and the sensor would rightly be lost instead.
	if err := s.Sleep(ctx, time.Minute); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
	e.WaitSession(t, ctx, "bye", mqttcore.StateAsleep)
	if err := s.Disconnect(ctx); err != nil {
		t.Fatalf("Disconnect while asleep = %v", err)
	}
	e.WaitGone(t, ctx, "bye") // a clean session ends with its sensor, will and all
	if st := e.Gateway.Stats(); st.Clients != 0 || st.Asleep != 0 {
		t.Errorf("gateway Stats() Clients %d, Asleep %d; want 0, 0", st.Clients, st.Asleep)
	}
	e2eFence(t, ctx, app, "e2e/will/fence") // no will was published on the way
}

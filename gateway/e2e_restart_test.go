package gateway_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/internal/sntest"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
	"github.com/gannet-mqtt/gannet/snclient"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// TestE2ERestartKeepsSensors restarts the gateway and its core on the same
// store and address: a sensor asleep before the restart wakes with PINGREQ
// and gets the QoS 1 messages acknowledged to their publisher while it
// slept, then PINGRESP; an awake sensor goes on publishing with the topic id
// it registered before, and the gateway understands it; a clean-session
// sensor is gone.
func TestE2ERestartKeepsSensors(t *testing.T) {
	t.Parallel()
	for _, v := range []snclient.Version{snclient.Version12, snclient.Version20} {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			testRestartKeepsSensors(t, v)
		})
	}
}

// testRestartKeepsSensors is TestE2ERestartKeepsSensors with sensors
// speaking MQTT-SN version v (2.0: a session alias from REGISTER is kept).
func testRestartKeepsSensors(t *testing.T, v snclient.Version) {
	ctx := sntest.Context(t)
	e1 := startDurable(t)
	app1 := e1.MQTT(t, ctx, "app")
	// The sleeper ignores WAKEUP: its messages must wait out the restart.
	sleeper := e1.Connected(t, ctx, snclient.Options{ClientID: "sleeper", PersistentSession: true, Version: v, IgnoreWakeup: true})
	if _, err := sleeper.Subscribe(ctx, snclient.Named("cmd/sleeper"), sn.QoS1); err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	if err := sleeper.Sleep(ctx, time.Minute); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
	e1.WaitSession(t, ctx, "sleeper", mqttcore.StateAsleep)
	for _, p := range []string{"c1", "c2", "c3"} {
		app1.Publish(t, ctx, "cmd/sleeper", 1, false, p) // returns on PUBACK: durable
	}
	awake := e1.Connected(t, ctx, snclient.Options{ClientID: "awake", PersistentSession: true, Version: v})
	if _, err := awake.Register(ctx, "up/awake"); err != nil {
		t.Fatalf("Register = %v", err)
	}
	e1.Connected(t, ctx, snclient.Options{ClientID: "clean", Version: v})

	// The restart: everything stops, the store file stays.
	e2 := e1.restart()
	sntest.WaitFor(t, ctx, "the gateway to restore its sensors", func() bool {
		st := e2.Gateway.Stats()
		return st.Clients == 2 && st.Asleep == 1
	})
	app2 := e2.MQTT(t, ctx, "app2")
	app2.Subscribe(t, ctx, 1, "up/#")

	if err := sleeper.CheckMessages(ctx); err != nil {
		t.Fatalf("CheckMessages after the restart = %v", err)
	}
	for _, want := range []string{"c1", "c2", "c3"} {
		select {
		case m := <-sleeper.Msgs:
			if m.Topic != "cmd/sleeper" || string(m.Payload) != want {
				t.Errorf("sleeper got (%q, %q); want (cmd/sleeper, %q)", m.Topic, m.Payload, want)
			}
		default:
			t.Fatalf("PINGRESP came before message %q", want)
		}
	}
	if err := awake.Publish(ctx, snclient.Named("up/awake"), sn.QoS1, false, []byte("still here")); err != nil {
		t.Fatalf("Publish with the registered id after the restart = %v", err)
	}
	app2.Expect(t, ctx, "up/awake", "still here", 1, false)
	if n := e2.Gateway.Stats().InvalidTopic; n != 0 {
		t.Errorf("gateway refused %d topic ids after the restart; want the registration kept", n)
	}
	if _, ok := e2.Broker.Session("clean"); ok {
		t.Error("a clean session survived the restart")
	}
}

// TestE2ERestartKeepsDisconnectedAliases: a 2.0 sensor that DISCONNECTs
// with a persistent session leaves its session aliases with its core
// session (docs/mqttsn-2.md G2-3); after a gateway restart on the same
// store it is not rebuilt as connected, and when it resumes the session its
// QoS 0 and QoS 1 PUBLISHes by the old alias are delivered.
func TestE2ERestartKeepsDisconnectedAliases(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e1 := startDurable(t)
	s := e1.Connected(t, ctx, snclient.Options{ClientID: "dev", PersistentSession: true, Version: snclient.Version20})
	if _, err := s.Register(ctx, "up/dev"); err != nil {
		t.Fatalf("Register = %v", err)
	}
	if err := s.Disconnect(ctx); err != nil {
		t.Fatalf("Disconnect = %v", err)
	}
	e1.WaitSession(t, ctx, "dev", mqttcore.StateDisconnected)
	e2 := e1.restart()
	app := e2.MQTT(t, ctx, "app")
	app.Subscribe(t, ctx, 1, "up/#")
	if err := s.Connect(ctx); err != nil {
		t.Fatalf("Connect after the restart = %v", err)
	}
	// 1, not 0: the aliases came from the core session, not from a client
	// the gateway rebuilt as connected (which would keep its own).
	if n := e2.Gateway.Stats().V2.AliasesResumed; n != 1 {
		t.Errorf("Stats.V2.AliasesResumed = %d; want 1", n)
	}
	if err := s.Publish(ctx, snclient.Named("up/dev"), sn.QoS0, false, []byte("q0")); err != nil {
		t.Fatalf("Publish QoS 0 = %v", err)
	}
	app.Expect(t, ctx, "up/dev", "q0", 0, false)
	if err := s.Publish(ctx, snclient.Named("up/dev"), sn.QoS1, false, []byte("q1")); err != nil {
		t.Fatalf("Publish QoS 1 = %v", err)
	}
	app.Expect(t, ctx, "up/dev", "q1", 1, false)
	if n := e2.Gateway.Stats().InvalidTopic; n != 0 {
		t.Errorf("gateway refused %d aliases after the restart; want the session's kept", n)
	}
}

// TestE2ERestartKeepsDisconnectedSensorsAway: a sensor that DISCONNECTed
// with a persistent session before a restart is not rebuilt as connected
// after it (for either version): its session waits in the core, messages
// for it queue there, and it gets them when it connects again.
func TestE2ERestartKeepsDisconnectedSensorsAway(t *testing.T) {
	t.Parallel()
	for _, v := range []snclient.Version{snclient.Version12, snclient.Version20} {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			ctx := sntest.Context(t)
			e1 := startDurable(t)
			gone := e1.Connected(t, ctx, snclient.Options{ClientID: "gone", PersistentSession: true, Version: v})
			if _, err := gone.Subscribe(ctx, snclient.Named("cmd/gone"), sn.QoS1); err != nil {
				t.Fatalf("Subscribe = %v", err)
			}
			if err := gone.Disconnect(ctx); err != nil {
				t.Fatalf("Disconnect = %v", err)
			}
			e1.WaitSession(t, ctx, "gone", mqttcore.StateDisconnected)
			// A sensor still connected at the restart is rebuilt: when it is
			// back, the gateway has rebuilt every sensor it will. It registers
			// a topic, which ends its probation: a session a sensor's CONNECT
			// alone created is not journalled.
			here := e1.Connected(t, ctx, snclient.Options{ClientID: "here", PersistentSession: true, Version: v})
			if _, err := here.Register(ctx, "up/here"); err != nil {
				t.Fatalf("Register = %v", err)
			}
			e2 := e1.restart()
			sntest.WaitFor(t, ctx, "the gateway to rebuild the connected sensor", func() bool {
				_, ok, err := e2.Gateway.Sensor(ctx, "here")
				return ok && err == nil
			})
			if _, ok, err := e2.Gateway.Sensor(ctx, "gone"); ok || err != nil {
				t.Fatalf("Sensor(gone) after the restart = present %v, %v; want it away: it had disconnected", ok, err)
			}
			if info, _ := e2.Broker.Session("gone"); info.State != mqttcore.StateDisconnected {
				t.Errorf("core session of gone after the restart is %v; want %v", info.State, mqttcore.StateDisconnected)
			}
			app := e2.MQTT(t, ctx, "app")
			app.Publish(t, ctx, "cmd/gone", 1, false, "while away") // returns on PUBACK
			if err := gone.Connect(ctx); err != nil {
				t.Fatalf("Connect after the restart = %v", err)
			}
			if m := gone.Next(t, ctx); m.Topic != "cmd/gone" || string(m.Payload) != "while away" {
				t.Errorf("gone got (%q, %q); want (cmd/gone, while away)", m.Topic, m.Payload)
			}
		})
	}
}

// TestE2ERestartKeepsOversleptAliases: a 2.0 sensor that oversleeps its
// sleep leaves its session aliases with its core session (G2-3), and they
// survive a gateway restart: when it resumes the session, a PUBLISH by its
// old alias is delivered.
func TestE2ERestartKeepsOversleptAliases(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e1 := startDurable(t)
	s := e1.Connected(t, ctx, snclient.Options{ClientID: "dev", PersistentSession: true, Version: snclient.Version20, IgnoreWakeup: true})
	if _, err := s.Register(ctx, "up/dev"); err != nil {
		t.Fatalf("Register = %v", err)
	}
	if err := s.Sleep(ctx, time.Second); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
	// The deadline is 1.5 s (1.5 x the sleep); the wait is bounded by ctx.
	sntest.WaitFor(t, ctx, "the gateway to forget the oversleeping sensor", func() bool {
		_, ok, err := e1.Gateway.Sensor(ctx, "dev")
		return !ok && err == nil
	})
	e2 := e1.restart()
	app := e2.MQTT(t, ctx, "app")
	app.Subscribe(t, ctx, 1, "up/#")
	if err := s.Connect(ctx); err != nil {
		t.Fatalf("Connect after the restart = %v", err)
	}
	if n := e2.Gateway.Stats().V2.AliasesResumed; n != 1 {
		t.Errorf("Stats.V2.AliasesResumed = %d; want 1", n)
	}
	if err := s.Publish(ctx, snclient.Named("up/dev"), sn.QoS1, false, []byte("back")); err != nil {
		t.Fatalf("Publish = %v", err)
	}
	app.Expect(t, ctx, "up/dev", "back", 1, false)
	if n := e2.Gateway.Stats().InvalidTopic; n != 0 {
		t.Errorf("gateway refused %d aliases after the restart; want the session's kept", n)
	}
}

// TestE2ERestartWakeup: a 2.0 sensor asleep across a gateway restart still
// gets a WAKEUP for the first message queued after it (G2-26): snclient
// answers it with PINGREQ, without any call from the application, and gets
// the message.
func TestE2ERestartWakeup(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e1 := startDurable(t)
	s := e1.Connected(t, ctx, snclient.Options{ClientID: "sleeper", PersistentSession: true, Version: snclient.Version20})
	if _, err := s.Subscribe(ctx, snclient.Named("cmd/sleeper"), sn.QoS1); err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	if err := s.Sleep(ctx, time.Hour); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
	e1.WaitSession(t, ctx, "sleeper", mqttcore.StateAsleep)
	e2 := e1.restart()
	sntest.WaitFor(t, ctx, "the gateway to restore the sleeper", func() bool {
		return e2.Gateway.Stats().Asleep == 1
	})
	app := e2.MQTT(t, ctx, "app")
	app.Publish(t, ctx, "cmd/sleeper", 1, false, "wake")
	sntest.WaitFor(t, ctx, "the gateway to send WAKEUP", func() bool {
		return e2.Gateway.Stats().V2.Wakeups == 1
	})
	if m := s.Next(t, ctx); m.Topic != "cmd/sleeper" || string(m.Payload) != "wake" {
		t.Fatalf("sensor got (%q, %q); want (cmd/sleeper, wake)", m.Topic, m.Payload)
	}
}

// durableGateway is a gateway and core on a store file in a temporary
// directory, which a test restarts.
type durableGateway struct {
	*sntest.Env
	t    *testing.T
	path string
	st   *boltstore.Store
}

// startDurable starts a gateway and core on a new store file.
func startDurable(t *testing.T) *durableGateway {
	d := &durableGateway{t: t, path: filepath.Join(t.TempDir(), "store", "gannet.db")}
	d.st = openStoreAt(t, d.path)
	d.Env = sntest.Start(t, sntest.Options{Journal: d.st})
	return d
}

// restart stops the gateway and its core, closes the store, and starts
// them again on the same file and UDP address: a restart the sensors
// never see. It returns the new environment.
func (d *durableGateway) restart() *sntest.Env {
	d.t.Helper()
	d.Env.Close()
	if err := d.st.Close(); err != nil {
		d.t.Fatalf("store Close = %v", err)
	}
	d.st = openStoreAt(d.t, d.path)
	d.Env = sntest.Start(d.t, sntest.Options{Journal: d.st, UDPAddr: d.Env.UDPAddr})
	return d.Env
}

// openStoreAt opens the store file at path, closed when the test ends.
func openStoreAt(t *testing.T, path string) *boltstore.Store {
	st, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatalf("boltstore.Open = %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// openStore opens a new store file in a temporary directory.
func openStore(t *testing.T) *boltstore.Store {
	return openStoreAt(t, filepath.Join(t.TempDir(), "store", "gannet.db"))
}

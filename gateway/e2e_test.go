package gateway_test

// End-to-end tests: a real broker core with its MQTT TCP listener, the
// gateway on a real UDP socket on 127.0.0.1, MQTT-SN sensors from package
// snclient, and MQTT 5 clients from paho.golang (and mosquitto_pub where a
// test says so). One test per MQTT-SN procedure; the harness is
// internal/sntest. Every wait is bounded by sntest.Context.

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/internal/sntest"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/snclient"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// e2eFence publishes a marker on topic from app and expects it as app's
// next message: whatever app should not have received before it (a will
// that must not fire) would have arrived first, because the core delivers
// one subscriber's messages in order.
func e2eFence(t *testing.T, ctx context.Context, app *sntest.MQTT, topic string) {
	t.Helper()
	app.Publish(t, ctx, topic, 1, false, "fence")
	if p := app.Next(t, ctx); p.Topic != topic || string(p.Payload) != "fence" {
		t.Fatalf("MQTT client received (%q, %q, qos %d, retain %v); want the fence (%q, fence)",
			p.Topic, p.Payload, p.QoS, p.Retain, topic)
	}
}

// TestE2EConnectCleanSessionWill runs the four CleanSession x Will cases
// of MQTT-SN 1.2 §6.3 (spec notes B.2) for a sensor that CONNECTs again
// with a will and a subscription from its previous connection: after a
// restart from the address the gateway knows, from a new address, and from
// sleep. The stored will is kept, replaced or deleted, and never published
// by the CONNECT.
func TestE2EConnectCleanSessionWill(t *testing.T) {
	t.Parallel()
	oldWill := &snclient.Will{Topic: "e2e/will/old", Message: []byte("old"), QoS: sn.QoS1}
	newWill := &snclient.Will{Topic: "e2e/will/new", Message: []byte("new"), QoS: sn.QoS1}
	cases := []struct {
		name     string
		clean    bool
		will     bool
		subsKept bool
		kickWill string // the will Kick publishes afterwards, "" for none
	}{
		{name: "clean=1,will=1", clean: true, will: true, subsKept: false, kickWill: "new"},
		{name: "clean=1,will=0", clean: true, will: false, subsKept: false, kickWill: ""},
		{name: "clean=0,will=1", clean: false, will: true, subsKept: true, kickWill: "new"},
		{name: "clean=0,will=0", clean: false, will: false, subsKept: true, kickWill: "old"},
	}
	froms := []struct {
		name    string
		sleep   bool // the first connection went to sleep before the CONNECT
		newAddr bool // the CONNECT comes from another address
	}{
		{name: "restart"},
		{name: "new-address", newAddr: true},
		{name: "from-asleep", sleep: true},
	}
	for _, from := range froms {
		for _, tc := range cases {
			t.Run(from.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				ctx := sntest.Context(t)
				e := sntest.Start(t, sntest.Options{})
				app := e.MQTT(t, ctx, "app")
				app.Subscribe(t, ctx, 1, "e2e/will/#")

				first := e.Connected(t, ctx, snclient.Options{ClientID: "dev", PersistentSession: true, Will: oldWill})
				if _, err := first.Subscribe(ctx, snclient.Named("e2e/cmd"), sn.QoS1); err != nil {
					t.Fatalf("Subscribe(e2e/cmd) = %v", err)
				}
				state := mqttcore.StateActive
				if from.sleep {
					if err := first.Sleep(ctx, time.Minute); err != nil {
						t.Fatalf("Sleep = %v", err)
					}
					state = mqttcore.StateAsleep
				}
				if info := e.WaitSession(t, ctx, "dev", state); !info.HasWill || info.Subscriptions != 1 {
					t.Fatalf("after the first connection: session %+v; want a will and 1 subscription", info)
				}
				// The sensor restarts: its socket closes without a word and
				// it speaks again, from the same address unless newAddr.
				local := first.LocalAddr
				first.Close()
				if from.newAddr {
					local = "127.0.0.1:0"
				}
				opts := snclient.Options{ClientID: "dev", PersistentSession: !tc.clean}
				if tc.will {
					opts.Will = newWill
				}
				second := e.SensorAt(t, ctx, local, opts)
				if err := second.Connect(ctx); err != nil {
					t.Fatalf("second Connect = %v", err)
				}
				info := e.WaitSession(t, ctx, "dev", mqttcore.StateActive)
				if got, want := info.Subscriptions == 1, tc.subsKept; got != want {
					t.Errorf("after the second CONNECT: %d subscriptions; want kept = %v", info.Subscriptions, want)
				}
				if got, want := info.HasWill, tc.kickWill != ""; got != want {
					t.Errorf("after the second CONNECT: HasWill = %v; want %v", got, want)
				}
				if tc.subsKept {
					// The kept subscription delivers, the gateway REGISTERing
					// the topic with the restarted sensor first.
					app.Publish(t, ctx, "e2e/cmd", 1, false, "c1")
					m := second.Next(t, ctx)
					if m.Topic != "e2e/cmd" || string(m.Payload) != "c1" || m.QoS != sn.QoS1 {
						t.Errorf("sensor received (%q, %q, qos %v); want (e2e/cmd, c1, qos 1)", m.Topic, m.Payload, m.QoS)
					}
				}
				// No will fired at the CONNECT; the right one fires when the
				// connection is lost.
				e2eFence(t, ctx, app, "e2e/will/fence1")
				if !e.Broker.Kick("dev") {
					t.Fatal("Kick(dev) = false; want the sensor attached")
				}
				if tc.kickWill != "" {
					app.Expect(t, ctx, "e2e/will/"+tc.kickWill, tc.kickWill, 1, false)
				}
				e2eFence(t, ctx, app, "e2e/will/fence2")
				select {
				case err := <-second.Lost:
					if !errors.Is(err, snclient.ErrGatewayDisconnected) {
						t.Errorf("sensor lost its connection with %v; want ErrGatewayDisconnected", err)
					}
				case <-ctx.Done():
					t.Fatalf("sensor was not told of the kick: %v", ctx.Err())
				}
			})
		}
	}
}

// TestE2EWillOnKeepAliveLoss checks that a sensor that goes silent is lost
// after its keep-alive period plus the gateway's tolerance (1 s + 50 %) and
// its will is published, while a sensor whose client keeps pinging stays.
func TestE2EWillOnKeepAliveLoss(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{})
	app := e.MQTT(t, ctx, "app")
	app.Subscribe(t, ctx, 2, "e2e/will/#")
	// The pinging sensor has a 2 s keep-alive, so that a PINGREQ may be up
	// to 1 s late on a loaded machine before the gateway gives up on it.
	live := e.Connected(t, ctx, snclient.Options{ClientID: "live", KeepAlive: 2 * time.Second,
		Will: &snclient.Will{Topic: "e2e/will/live", Message: []byte("live gone")}})
	liveBase := live.Stats().Received
	silent := e.Connected(t, ctx, snclient.Options{ClientID: "silent", KeepAlive: time.Second,
		Will: &snclient.Will{Topic: "e2e/will/silent", Message: []byte("gone"), QoS: sn.QoS1, Retain: true}})
	silent.Close() // no DISCONNECT, no more PINGREQs
	closed := time.Now()

	app.Expect(t, ctx, "e2e/will/silent", "gone", 1, true)
	if d := time.Since(closed); d < time.Second {
		t.Errorf("will published %v after the sensor went silent; want at least its 1s keep-alive", d)
	}
	e.WaitGone(t, ctx, "silent") // a clean session ends with its sensor
	sntest.WaitFor(t, ctx, "gateway to forget the lost sensor", func() bool { return e.Gateway.Stats().Clients == 1 })
	if n := e.Broker.Stats().WillsPublished; n != 1 {
		t.Errorf("core published %d wills; want only the silent sensor's", n)
	}
	// The pinging sensor outlives two keep-alive periods: two PINGRESPs,
	// its only traffic, each within the gateway's tolerance.
	sntest.WaitFor(t, ctx, "two PINGRESPs for the pinging sensor", func() bool {
		return live.Stats().Received >= liveBase+2
	})
	if s := live.State(); s != snclient.StateActive {
		t.Errorf("pinging sensor is %v; want active", s)
	}
	if info, _ := e.Broker.Session("live"); info.State != mqttcore.StateActive {
		t.Errorf("pinging sensor's session is %v; want active", info.State)
	}
	// The will was retained.
	late := e.MQTT(t, ctx, "late")
	late.Subscribe(t, ctx, 1, "e2e/will/silent")
	late.Expect(t, ctx, "e2e/will/silent", "gone", 1, true)
	e2eFence(t, ctx, app, "e2e/will/fence")
}

// TestE2ECleanDisconnectNoWill checks that DISCONNECT without a duration
// ends the connection normally: acknowledged, the will discarded and not
// published, the core session disconnected.
func TestE2ECleanDisconnectNoWill(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{})
	app := e.MQTT(t, ctx, "app")
	app.Subscribe(t, ctx, 1, "e2e/will/#")
	s := e.Connected(t, ctx, snclient.Options{ClientID: "dev", KeepAlive: time.Second,
		Will: &snclient.Will{Topic: "e2e/will/dev", Message: []byte("gone")}})
	if err := s.Disconnect(ctx); err != nil {
		t.Fatalf("Disconnect = %v", err)
	}
	e.WaitGone(t, ctx, "dev") // a clean session ends with its sensor, will and all
	sntest.WaitFor(t, ctx, "gateway to forget the sensor", func() bool { return e.Gateway.Stats().Clients == 0 })
	e2eFence(t, ctx, app, "e2e/will/fence")
}

// TestE2EWillUpdate checks WILLTOPICUPD and WILLMSGUPD: the updated will
// is the one published when the sensor is lost, and an empty WILLTOPICUPD
// deletes the will.
func TestE2EWillUpdate(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{})
	app := e.MQTT(t, ctx, "app")
	app.Subscribe(t, ctx, 2, "e2e/will/#")

	s := e.Connected(t, ctx, snclient.Options{ClientID: "upd",
		Will: &snclient.Will{Topic: "e2e/will/w1", Message: []byte("m1")}})
	if err := s.UpdateWillTopic(ctx, "e2e/will/w2", sn.QoS1, true); err != nil {
		t.Fatalf("UpdateWillTopic = %v", err)
	}
	if err := s.UpdateWillMessage(ctx, []byte("m2")); err != nil {
		t.Fatalf("UpdateWillMessage = %v", err)
	}
	e.Broker.Kick("upd")
	app.Expect(t, ctx, "e2e/will/w2", "m2", 1, true)

	d := e.Connected(t, ctx, snclient.Options{ClientID: "del",
		Will: &snclient.Will{Topic: "e2e/will/d", Message: []byte("d")}})
	if err := d.UpdateWillTopic(ctx, "", 0, false); err != nil {
		t.Fatalf("UpdateWillTopic(empty) = %v", err)
	}
	if info, _ := e.Broker.Session("del"); info.HasWill {
		t.Errorf("session has a will after an empty WILLTOPICUPD")
	}
	e.Broker.Kick("del")
	e2eFence(t, ctx, app, "e2e/will/fence")
}

package gateway_test

// End-to-end tests of MQTT-SN 2.0: snclient in 2.0 mode beside snclient in
// 1.2 mode on the gateway's one UDP port, with MQTT 5 peers no one here
// wrote (paho.golang, mosquitto_sub -V mqttv5) on the core's listener.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/internal/sntest"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/auth"
	"github.com/gannet-mqtt/gannet/snclient"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// expectSensor waits for the sensor's next message and checks it.
func expectSensor(t *testing.T, ctx context.Context, s *sntest.Sensor, topic, payload string) {
	t.Helper()
	m := s.Next(t, ctx)
	if m.Topic != topic || string(m.Payload) != payload {
		t.Fatalf("sensor %q received (%q, %q); want (%q, %q)", s.ClientID(), m.Topic, m.Payload, topic, payload)
	}
}

// TestE2EV2MixedFleet: a 2.0 sensor and a 1.2 sensor on the same port
// exchange messages in both directions, and MQTT 5 clients (paho.golang
// and mosquitto_sub) receive both.
func TestE2EV2MixedFleet(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{})
	app := e.MQTT(t, ctx, "app")
	app.Subscribe(t, ctx, 1, "fleet/#")
	mosq := e.MosquittoSub(t, ctx, "mosq", "fleet/from20", 1, 1)

	s20 := e.Connected(t, ctx, snclient.Options{ClientID: "s20", Version: sn.Version20})
	s12 := e.Connected(t, ctx, snclient.Options{ClientID: "s12"})
	for _, s := range []*sntest.Sensor{s20, s12} {
		if _, err := s.Subscribe(ctx, snclient.Named("fleet/+"), sn.QoS1); err != nil {
			t.Fatalf("%s Subscribe = %v", s.ClientID(), err)
		}
	}
	if err := s20.Publish(ctx, snclient.Named("fleet/from20"), sn.QoS1, false, []byte("hello 1.2")); err != nil {
		t.Fatalf("2.0 Publish = %v", err)
	}
	expectSensor(t, ctx, s12, "fleet/from20", "hello 1.2")
	expectSensor(t, ctx, s20, "fleet/from20", "hello 1.2") // its own, no No Local
	app.Expect(t, ctx, "fleet/from20", "hello 1.2", 1, false)
	if got := mosq.Wait(t, ctx); len(got) != 1 || got[0] != "fleet/from20 1 0 hello 1.2" {
		t.Errorf("mosquitto_sub -V mqttv5 printed %q; want the 2.0 sensor's message", got)
	}

	if err := s12.Publish(ctx, snclient.Named("fleet/from12"), sn.QoS2, false, []byte("hello 2.0")); err != nil {
		t.Fatalf("1.2 Publish = %v", err)
	}
	expectSensor(t, ctx, s20, "fleet/from12", "hello 2.0")
	expectSensor(t, ctx, s12, "fleet/from12", "hello 2.0")
	app.Expect(t, ctx, "fleet/from12", "hello 2.0", 1, false)

	// From the MQTT side to both, QoS 0 and 1.
	app.Publish(t, ctx, "fleet/cmd", 1, false, "to all")
	expectSensor(t, ctx, s20, "fleet/cmd", "to all")
	expectSensor(t, ctx, s12, "fleet/cmd", "to all")
	app.Expect(t, ctx, "fleet/cmd", "to all", 1, false)

	st := e.Gateway.Stats()
	if st.V2.Connects != 1 {
		t.Errorf("V2.Connects = %d; want 1 (the 1.2 sensor is not counted)", st.V2.Connects)
	}
}

// TestE2EV2SessionExpiry: a 2.0 sensor's session outlives a DISCONNECT for
// its Session Expiry (capped at session_expiry) and not longer, and a
// message queued meanwhile is delivered when it reconnects.
func TestE2EV2SessionExpiry(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{Gateway: gateway.Config{SessionExpiry: 2 * time.Second}})
	app := e.MQTT(t, ctx, "app")
	opts := snclient.Options{ClientID: "dev", Version: sn.Version20, PersistentSession: true}
	s := e.Connected(t, ctx, opts)
	if _, err := s.Subscribe(ctx, snclient.Named("cmd/dev"), sn.QoS1); err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	if err := s.Disconnect(ctx); err != nil {
		t.Fatalf("Disconnect = %v", err)
	}
	e.WaitSession(t, ctx, "dev", mqttcore.StateDisconnected)
	app.Publish(t, ctx, "cmd/dev", 1, false, "while away")
	if err := s.Connect(ctx); err != nil {
		t.Fatalf("Connect again = %v", err)
	}
	expectSensor(t, ctx, s, "cmd/dev", "while away")
	if err := s.Disconnect(ctx); err != nil {
		t.Fatalf("Disconnect = %v", err)
	}
	// session_expiry (2 s) caps the sensor's "never expires": the
	// session goes away.
	e.WaitGone(t, ctx, "dev")

	// A clean 2.0 session (no Session Expiry) ends with its DISCONNECT.
	c := e.Connected(t, ctx, snclient.Options{ClientID: "clean", Version: sn.Version20})
	if err := c.Disconnect(ctx); err != nil {
		t.Fatalf("Disconnect = %v", err)
	}
	e.WaitGone(t, ctx, "clean")
}

// TestE2EV2Authentication: AUTH with SASL PLAIN checked against the same
// password file the MQTT listener uses; a wrong password is refused with
// 0x86, and the right one makes the user name the ACL user.
func TestE2EV2Authentication(t *testing.T) {
	t.Parallel()
	hash, err := auth.HashPassword([]byte("s3cret"), auth.Bcrypt)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := auth.ParsePasswords(strings.NewReader("alice:"+hash+"\n"), "passwd")
	if err != nil {
		t.Fatal(err)
	}
	acl, err := auth.ParseACL(strings.NewReader("topic read #\nuser alice\ntopic write alice/#\n"), "acl")
	if err != nil {
		t.Fatal(err)
	}
	authn := auth.NewFrom(pw, acl, true)
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{Authenticator: authn})
	e.Broker.SetAuthorizer(authn)
	app := e.MQTT(t, ctx, "app")
	app.Subscribe(t, ctx, 1, "alice/#")

	bad := e.Sensor(t, ctx, snclient.Options{ClientID: "dev", Version: sn.Version20, Auth: snclient.PlainAuth("alice", "wrong")})
	var rce *snclient.ReasonCodeError
	if err := bad.Connect(ctx); !errors.As(err, &rce) || rce.Code != sn.BadUserNameOrPassword {
		t.Fatalf("Connect with a wrong password = %v; want CONNACK 0x86", err)
	}
	if n := e.Gateway.Stats().V2.AuthRefused; n != 1 {
		t.Errorf("V2.AuthRefused = %d; want 1", n)
	}
	good := e.Connected(t, ctx, snclient.Options{ClientID: "dev2", Version: sn.Version20, Auth: snclient.PlainAuth("alice", "s3cret")})
	// alice may write alice/#; the client id "dev2" may not.
	if err := good.Publish(ctx, snclient.Named("alice/t"), sn.QoS1, false, []byte("as alice")); err != nil {
		t.Fatalf("Publish as alice = %v", err)
	}
	app.Expect(t, ctx, "alice/t", "as alice", 1, false)
	anon := e.Connected(t, ctx, snclient.Options{ClientID: "dev3", Version: sn.Version20})
	err = anon.Publish(ctx, snclient.Named("alice/t"), sn.QoS1, false, []byte("no"))
	if !errors.As(err, &rce) || rce.Code != sn.NotAuthorized {
		t.Fatalf("Publish without authentication = %v; want PUBACK 0x87", err)
	}
}

// TestE2EV2PubwosForbidden: a PUBWOS (2.0's QoS -1) to a topic the ACL
// forbids is dropped and counted; one to an allowed topic arrives.
func TestE2EV2PubwosForbidden(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{Gateway: gateway.Config{QoSMinus1: gateway.QoSMinus1Config{Enabled: true}}})
	acl, err := auth.ParseACL(strings.NewReader("topic read #\nuser gannet-qos-1\ntopic write open/#\n"), "acl")
	if err != nil {
		t.Fatal(err)
	}
	e.Broker.SetAuthorizer(acl)
	app := e.MQTT(t, ctx, "app")
	app.Subscribe(t, ctx, 0, "#")
	s := e.Sensor(t, ctx, snclient.Options{ClientID: "w", Version: sn.Version20})
	before := e.Gateway.Stats()
	if err := s.Publish(ctx, snclient.Named("secret/x"), sn.QoSMinus1, false, []byte("no")); err != nil {
		t.Fatalf("PUBWOS = %v", err)
	}
	sntest.WaitFor(t, ctx, "the forbidden PUBWOS to be counted", func() bool {
		return e.Gateway.Stats().Denied > before.Denied
	})
	if err := s.Publish(ctx, snclient.Named("open/x"), sn.QoSMinus1, false, []byte("yes")); err != nil {
		t.Fatalf("PUBWOS = %v", err)
	}
	// The core delivers in order: the forbidden one would have come first.
	app.Expect(t, ctx, "open/x", "yes", 0, false)
	st := e.Gateway.Stats()
	if st.Denied-before.Denied != 1 || st.Rejected-before.Rejected != 1 || st.QoSMinus1-before.QoSMinus1 != 1 {
		t.Errorf("Denied, Rejected, QoSMinus1 grew by %d, %d, %d; want 1, 1, 1",
			st.Denied-before.Denied, st.Rejected-before.Rejected, st.QoSMinus1-before.QoSMinus1)
	}
}

// TestE2EV2SleepWake: a 2.0 sensor asleep after SLEEPREQ gets the messages
// queued meanwhile (QoS 0 and 1) when it wakes with PINGREQ, and goes back
// to sleep; the same core queue as 1.2 sleep. It ignores WAKEUP, so that it
// wakes only when the test says.
func TestE2EV2SleepWake(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{})
	app := e.MQTT(t, ctx, "app")
	s := e.Connected(t, ctx, snclient.Options{ClientID: "sleeper", Version: sn.Version20, PersistentSession: true, IgnoreWakeup: true})
	if _, err := s.Subscribe(ctx, snclient.Named("cmd/#"), sn.QoS1); err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	if err := s.Sleep(ctx, time.Minute); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
	e.WaitSession(t, ctx, "sleeper", mqttcore.StateAsleep)
	for i := range 3 {
		app.Publish(t, ctx, fmt.Sprintf("cmd/%d", i), byte(i%2), false, fmt.Sprint("m", i))
	}
	sntest.WaitFor(t, ctx, "three messages queued", func() bool {
		info, _ := e.Broker.Session("sleeper")
		return info.Queued == 3
	})
	if err := s.CheckMessages(ctx); err != nil {
		t.Fatalf("CheckMessages = %v", err)
	}
	for i := range 3 {
		expectSensor(t, ctx, s, fmt.Sprintf("cmd/%d", i), fmt.Sprint("m", i))
	}
	if info := e.WaitSession(t, ctx, "sleeper", mqttcore.StateAsleep); info.Queued != 0 || info.Inflight != 0 {
		t.Errorf("after the wake: %d queued, %d in flight; want 0, 0", info.Queued, info.Inflight)
	}
}

// TestE2EV2AddressChange: a 2.0 sensor (snclient) whose address changed
// resumes its connection from the new address through a Connection
// Encapsulation (sent here from a fresh UDP socket, the sensor's new
// address) only when its CONNECT allowed network address changes; messages
// from an MQTT 5 client then reach it there.
func TestE2EV2AddressChange(t *testing.T) {
	t.Parallel()
	for _, allow := range []bool{true, false} {
		t.Run(fmt.Sprint("allow=", allow), func(t *testing.T) {
			t.Parallel()
			ctx := sntest.Context(t)
			e := sntest.Start(t, sntest.Options{})
			app := e.MQTT(t, ctx, "app")
			s := e.Connected(t, ctx, snclient.Options{ClientID: "mover", Version: sn.Version20, AllowAddressChange: allow})
			if _, err := s.Subscribe(ctx, snclient.Named("cmd/mover"), sn.QoS0); err != nil {
				t.Fatalf("Subscribe = %v", err)
			}
			gw, err := net.ResolveUDPAddr("udp4", e.UDPAddr)
			if err != nil {
				t.Fatal(err)
			}
			moved, err := net.DialUDP("udp4", nil, gw)
			if err != nil {
				t.Fatal(err)
			}
			defer moved.Close()
			recv := func() sn.MessageV2 {
				t.Helper()
				dl, _ := ctx.Deadline()
				moved.SetReadDeadline(dl)
				buf := make([]byte, 1500)
				n, err := moved.Read(buf)
				if err != nil {
					t.Fatalf("new address: reading from the gateway: %v", err)
				}
				m, err := sn.DecodeV2(buf[:n])
				if err != nil {
					t.Fatalf("new address: %x does not decode as 2.0: %v", buf[:n], err)
				}
				return m.Clone()
			}
			env, _ := (&sn.ConnEncapsulation{ClientID: []byte("mover"), Inner: &sn.PingReqV2{PacketID: 900}}).AppendBinary(nil)
			if _, err := moved.Write(env); err != nil {
				t.Fatal(err)
			}
			got := recv()
			if !allow {
				if d, ok := got.(*sn.DisconnectV2); !ok || d.ReasonCode != sn.NoVirtualConnection {
					t.Fatalf("new address got %#v; want DISCONNECT 0xF4", got)
				}
				app.Publish(t, ctx, "cmd/mover", 0, false, "still here")
				expectSensor(t, ctx, s, "cmd/mover", "still here")
				return
			}
			if p, ok := got.(*sn.PingRespV2); !ok || p.PacketID != 900 {
				t.Fatalf("new address got %#v; want PINGRESP 900", got)
			}
			app.Publish(t, ctx, "cmd/mover", 0, false, "moved")
			p, ok := recv().(*sn.PublishV2)
			if !ok || string(p.Data) != "moved" {
				t.Fatalf("new address got %#v; want the PUBLISH", p)
			}
			if n := e.Gateway.Stats().V2.Rebound; n != 1 {
				t.Errorf("V2.Rebound = %d; want 1", n)
			}
		})
	}
}

// TestE2EV2Wakeup: a 2.0 sensor (a raw UDP socket, to see every packet;
// snclient's own answer to WAKEUP is TestE2EV2WakeupSnclient) sleeps with
// SLEEPREQ; a message an MQTT 5 client (paho.golang) publishes to it brings a WAKEUP, once however many follow; its PINGREQ
// then collects them, and PINGRESP ends the wake (docs/mqttsn-2.md G2-26).
func TestE2EV2Wakeup(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{})
	app := e.MQTT(t, ctx, "app")
	gw, err := net.ResolveUDPAddr("udp4", e.UDPAddr)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialUDP("udp4", nil, gw)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	send := func(m sn.MessageV2) {
		t.Helper()
		b, err := m.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() sn.MessageV2 {
		t.Helper()
		dl, _ := ctx.Deadline()
		conn.SetReadDeadline(dl)
		buf := make([]byte, 1500)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("reading from the gateway: %v", err)
		}
		m, err := sn.DecodeV2(buf[:n])
		if err != nil {
			t.Fatalf("%x does not decode as 2.0: %v", buf[:n], err)
		}
		return m.Clone()
	}
	send(&sn.ConnectV2{PacketID: 1, KeepAlive: 60, HasSessionExpiry: true, SessionExpiry: 3600, ClientID: []byte("waker")})
	if ack, ok := recv().(*sn.ConnackV2); !ok || ack.ReasonCode != sn.Success {
		t.Fatalf("CONNECT answered %#v; want CONNACK success", ack)
	}
	send(&sn.SubscribeV2{QoS: sn.QoS1, PacketID: 2, TopicType: sn.TopicTypeName, TopicFilter: []byte("cmd/waker/#")})
	if _, ok := recv().(*sn.SubackV2); !ok {
		t.Fatal("SUBSCRIBE not answered with SUBACK")
	}
	send(&sn.SleepReq{RetainTopicAliases: true, PacketID: 3, SleepDuration: 600})
	if _, ok := recv().(*sn.SleepResp); !ok {
		t.Fatal("SLEEPREQ not answered with SLEEPRESP")
	}
	e.WaitSession(t, ctx, "waker", mqttcore.StateAsleep)

	app.Publish(t, ctx, "cmd/waker/a", 1, false, "one")
	if m, ok := recv().(*sn.Wakeup); !ok {
		t.Fatalf("after a publish to the asleep sensor got %#v; want WAKEUP", m)
	}
	app.Publish(t, ctx, "cmd/waker/b", 1, false, "two")
	sntest.WaitFor(t, ctx, "two messages queued", func() bool {
		info, _ := e.Broker.Session("waker")
		return info.Queued == 2
	})
	send(&sn.PingReqV2{PacketID: 4})
	for _, want := range []string{"one", "two"} {
		// The first datagram after the PINGREQ is the first PUBLISH: the
		// second message brought no second WAKEUP.
		p, ok := recv().(*sn.PublishV2)
		if !ok || string(p.Data) != want {
			t.Fatalf("after PINGREQ got %#v; want the PUBLISH %q", p, want)
		}
		send(&sn.PubackV2{PacketID: p.PacketID})
	}
	if m, ok := recv().(*sn.PingRespV2); !ok || m.PacketID != 4 {
		t.Fatalf("after the queue got %#v; want PINGRESP 4", m)
	}
	if n := e.Gateway.Stats().V2.Wakeups; n != 1 {
		t.Errorf("Stats.V2.Wakeups = %d; want 1", n)
	}
}

// TestE2EV2WakeupSnclient: snclient acts on the gateway's WAKEUP, with a
// memory and with a durable core. A 2.0 sensor subscribes and sleeps; an
// MQTT client publishes to it; without any call from the application the
// sensor sends PINGREQ on the WAKEUP, gets the message, and is asleep again
// after PINGRESP.
func TestE2EV2WakeupSnclient(t *testing.T) {
	t.Parallel()
	for _, durable := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "bolt"}[durable], func(t *testing.T) {
			t.Parallel()
			testWakeupSnclient(t, durable)
		})
	}
}

// testWakeupSnclient is TestE2EV2WakeupSnclient with a memory or a
// durable core: with a journal the WAKEUP must wait for the message's
// commit, or the woken sensor finds nothing to collect.
func testWakeupSnclient(t *testing.T, durable bool) {
	ctx := sntest.Context(t)
	var opts sntest.Options
	if durable {
		opts.Journal = openStore(t)
	}
	e := sntest.Start(t, opts)
	app := e.MQTT(t, ctx, "app")
	s := e.Connected(t, ctx, snclient.Options{ClientID: "sleeper", PersistentSession: true, Version: snclient.Version20})
	if _, err := s.Subscribe(ctx, snclient.Named("cmd/sleeper"), sn.QoS1); err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	if err := s.Sleep(ctx, time.Hour); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
	e.WaitSession(t, ctx, "sleeper", mqttcore.StateAsleep)
	app.Publish(t, ctx, "cmd/sleeper", 1, false, "wake")
	if m := s.Next(t, ctx); m.Topic != "cmd/sleeper" || string(m.Payload) != "wake" {
		t.Fatalf("sensor got (%q, %q); want (cmd/sleeper, wake)", m.Topic, m.Payload)
	}
	// After PINGRESP the client is asleep again, and the core session too.
	sntest.WaitFor(t, ctx, "the sensor to sleep again", func() bool {
		return s.State() == snclient.StateAsleep
	})
	e.WaitSession(t, ctx, "sleeper", mqttcore.StateAsleep)
	if n := s.Stats().Wakeups; n != 1 {
		t.Errorf("snclient Stats.Wakeups = %d; want 1", n)
	}
	if n := e.Gateway.Stats().V2.Wakeups; n != 1 {
		t.Errorf("gateway Stats.V2.Wakeups = %d; want 1", n)
	}
}

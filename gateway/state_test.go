package gateway_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// The sleep state machine (MQTT-SN 1.2 §6.14), one test per transition that
// gateway_test.go does not already cover:
//
//	active  -> asleep        TestSleepBufferAndWake
//	active  -> disconnected  TestCleanDisconnectPublishesNoWill
//	active  -> lost          TestWillDialogueAndKeepAliveLoss, TestSubscribeExactNameQoS1AndRetransmission
//	asleep  -> awake         TestSleepBufferAndWake
//	asleep  -> active        TestSleepWithoutAckKeepsMessage, TestConnectFromAsleepDeliversQueue
//	asleep  -> disconnected  TestDisconnectWhileAsleep
//	asleep  -> lost          TestOversleepLosesClient
//	awake   -> asleep        TestSleepBufferAndWake (PINGRESP), TestSleepWithoutAckKeepsMessage (DISCONNECT)
//	awake   -> active        TestConnectWhileAwake
//	awake   -> disconnected  TestDisconnectWhileAwake
//	awake   -> lost          TestAwakeClientSilentIsLost

// sleepingSensor connects dev1 with a will, subscribes to cmd/dev1 at QoS 1
// and puts it to sleep; it returns the sensor and the SUBACK's topic id.
func sleepingSensor(t *testing.T, h *harness) (*sensor, uint16) {
	t.Helper()
	s := h.sensor("10.0.0.2:5000")
	s.connectWithWill("dev1", false, 60)
	ack := s.subscribe("cmd/dev1", sn.QoS1, 1)
	s.send(&sn.Disconnect{HasDuration: true, Duration: 600})
	s.expect(&sn.Disconnect{})
	return s, ack.TopicID
}

func coreState(t *testing.T, h *harness, id string, want mqttcore.State) {
	t.Helper()
	if info, ok := h.b.Session(id); !ok || info.State != want {
		t.Fatalf("core session %q = %+v, %v; want %v", id, info, ok, want)
	}
}

func TestConnectFromAsleepDeliversQueue(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		will := h.app("will/#")
		s, _ := sleepingSensor(t, h)
		h.publish("cmd/dev1", "queued", mqttcore.AtLeastOnce, false)
		s.expectNone(time.Minute)
		// CONNECT without the Will flag and CleanSession=0 keeps the will.
		s.connect("dev1", false, 60)
		coreState(t, h, "dev1", mqttcore.StateActive)
		reg := s.recv().(*sn.Register) // ids start afresh with a connection
		s.send(&sn.Regack{TopicID: reg.TopicID, MsgID: reg.MsgID})
		p := s.recv().(*sn.Publish)
		if string(p.Data) != "queued" || p.TopicID != reg.TopicID || p.Dup {
			t.Fatalf("PUBLISH = %+v; want the queued message on topic id %d", p, reg.TopicID)
		}
		s.send(&sn.Puback{TopicID: p.TopicID, MsgID: p.MsgID})
		if st := h.g.Stats(); st.Asleep != 0 || st.Clients != 1 {
			t.Errorf("Asleep, Clients = %d, %d; want 0, 1", st.Asleep, st.Clients)
		}
		// Active again: supervised by keep-alive, and the will survived.
		time.Sleep(91 * time.Second)
		will.expect("will/dev1", "gone")
	})
}

func TestConnectWhileAwake(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		s, id := sleepingSensor(t, h)
		h.publish("cmd/dev1", "one", mqttcore.AtLeastOnce, false)
		h.publish("cmd/dev1", "two", mqttcore.AtLeastOnce, false)
		s.send(&sn.PingReq{ClientID: []byte("dev1")})
		p := s.recv().(*sn.Publish)
		if string(p.Data) != "one" || p.TopicID != id {
			t.Fatalf("PUBLISH = %+v; want one on %d", p, id)
		}
		// Awake, and the client decides to reconnect instead of acknowledging.
		s.connect("dev1", false, 60)
		coreState(t, h, "dev1", mqttcore.StateActive)
		reg := s.recv().(*sn.Register)
		s.send(&sn.Regack{TopicID: reg.TopicID, MsgID: reg.MsgID})
		for _, want := range []struct {
			data string
			dup  bool
		}{{"one", true}, {"two", false}} {
			p := s.recv().(*sn.Publish)
			if string(p.Data) != want.data || p.Dup != want.dup {
				t.Fatalf("PUBLISH = %+v; want %q with DUP %v", p, want.data, want.dup)
			}
			s.send(&sn.Puback{TopicID: p.TopicID, MsgID: p.MsgID})
		}
		// Active, not awake: no PINGRESP ends the delivery.
		s.expectNone(10 * time.Second)
		s.send(&sn.PingReq{})
		s.expect(&sn.PingResp{})
	})
}

func TestDisconnectWhileAwake(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		will := h.app("will/#")
		s, _ := sleepingSensor(t, h)
		h.publish("cmd/dev1", "one", mqttcore.AtLeastOnce, false)
		s.send(&sn.PingReq{ClientID: []byte("dev1")})
		s.recv() // the PUBLISH, left unacknowledged
		s.send(&sn.Disconnect{})
		s.expect(&sn.Disconnect{})
		coreState(t, h, "dev1", mqttcore.StateDisconnected)
		if st := h.g.Stats(); st.Clients != 0 || st.Asleep != 0 {
			t.Errorf("Clients, Asleep = %d, %d; want 0, 0", st.Clients, st.Asleep)
		}
		// A clean disconnect discards the will; nothing more is sent.
		time.Sleep(time.Hour)
		will.expectNone()
		s.expectNone(time.Minute)
	})
}

func TestAwakeClientSilentIsLost(t *testing.T) {
	run(t, gateway.Config{RetryInterval: 5 * time.Second, MaxRetries: 2}, func(t *testing.T, h *harness) {
		will := h.app("will/#")
		s, _ := sleepingSensor(t, h)
		h.publish("cmd/dev1", "one", mqttcore.AtLeastOnce, false)
		s.send(&sn.PingReq{ClientID: []byte("dev1")})
		for range 3 { // the PUBLISH and two retransmissions
			if p := s.recv().(*sn.Publish); string(p.Data) != "one" {
				t.Fatalf("PUBLISH = %+v; want one", p)
			}
		}
		will.expectNone()
		time.Sleep(6 * time.Second)
		will.expect("will/dev1", "gone")
		coreState(t, h, "dev1", mqttcore.StateLost)
		if info, _ := h.b.Session("dev1"); info.Inflight+info.Queued != 1 {
			t.Errorf("session %+v; want the unacknowledged message kept for a reconnect", info)
		}
		if st := h.g.Stats(); st.Clients != 0 || st.Asleep != 0 {
			t.Errorf("Clients, Asleep = %d, %d; want 0, 0", st.Clients, st.Asleep)
		}
	})
}

func TestNewClientIDFromSameAddress(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		will := h.app("will/#")
		s := h.sensor("10.0.0.2:5000")
		s.connectWithWill("dev1", false, 60)
		s.send(&sn.PingReq{}) // verified: its session outlives it (probation.go)
		s.expect(&sn.PingResp{})
		s.connect("dev2", true, 60)
		will.expect("will/dev1", "gone")
		coreState(t, h, "dev1", mqttcore.StateLost)
		coreState(t, h, "dev2", mqttcore.StateActive)
		if st := h.g.Stats(); st.Clients != 1 {
			t.Errorf("Clients = %d; want 1", st.Clients)
		}
	})
}

// An asleep client whose address is taken by another client id is not
// declared dead early: it may wake by CONNECT from elsewhere, and the core's
// sleep deadline still stands.
func TestNewClientIDAtAsleepClientsAddress(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		will := h.app("will/#")
		s, _ := sleepingSensor(t, h)
		s.connect("dev2", true, 60)
		will.expectNone()
		coreState(t, h, "dev1", mqttcore.StateAsleep)
		if st := h.g.Stats(); st.Clients != 1 || st.Asleep != 0 {
			t.Errorf("Clients, Asleep = %d, %d; want 1, 0", st.Clients, st.Asleep)
		}
		time.Sleep(660 * time.Second) // 600 s of sleep plus 10 %
		will.expect("will/dev1", "gone")
	})
}

func TestAdvertise(t *testing.T) {
	cfg := gateway.Config{GatewayID: 7, Advertise: gateway.AdvertiseConfig{Interval: 15 * time.Minute, Address: "10.0.0.255:1884"}}
	run(t, cfg, func(t *testing.T, h *harness) {
		// The memlink network delivers to the "broadcast" address like any
		// other; a listener there plays every sensor on the segment. It
		// starts after the first ADVERTISE (sent when serving starts), which
		// is lost as a datagram to nobody is.
		synctest.Wait()
		start := time.Now()
		bcast := h.sensor("10.0.0.255:1884")
		want := &sn.Advertise{GatewayID: 7, Duration: 900}
		for i := 1; i <= 2; i++ {
			m, err := bcast.tryRecv(16 * time.Minute)
			if err != nil || *m.(*sn.Advertise) != *want {
				t.Fatalf("ADVERTISE %d: got %#v, %v; want %+v", i, m, err, want)
			}
			if d := time.Since(start); d != time.Duration(i)*15*time.Minute {
				t.Errorf("ADVERTISE %d after %v; want %v", i, d, time.Duration(i)*15*time.Minute)
			}
		}
	})
}

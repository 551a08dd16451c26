package gateway_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

func TestConnectWithoutWill(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		s := h.sensor("10.0.0.2:5000")
		s.connect("dev1", true, 60)
		info, ok := h.b.Session("dev1")
		if !ok || info.State != mqttcore.StateActive {
			t.Fatalf("core session = %+v, %v; want active", info, ok)
		}
		// A repeated CONNECT is answered too.
		s.connect("dev1", false, 60)
		if st := h.g.Stats(); st.Clients != 1 {
			t.Errorf("Clients = %d; want 1", st.Clients)
		}
	})
}

func TestWillDialogueAndKeepAliveLoss(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		will := h.app("will/#")
		s := h.sensor("10.0.0.2:5000")
		s.send(&sn.Connect{Will: true, CleanSession: true, Duration: 10, ClientID: []byte("dev1")})
		s.expect(&sn.WillTopicReq{})
		s.send(&sn.WillTopic{QoS: sn.QoS1, Topic: []byte("will/dev1")})
		s.expect(&sn.WillMsgReq{})
		s.send(&sn.WillMsg{Message: []byte("gone")})
		s.expect(&sn.Connack{ReturnCode: sn.Accepted})
		will.expectNone()
		// Silence for the keep-alive period plus 50% tolerance: lost.
		time.Sleep(14 * time.Second)
		will.expectNone()
		time.Sleep(2 * time.Second)
		will.expect("will/dev1", "gone")
		if info, ok := h.b.Session("dev1"); ok {
			t.Errorf("core session = %+v; want it ended with the clean sensor", info)
		}
		// Its address is unknown again: anything but CONNECT is refused.
		s.send(&sn.PingReq{})
		s.expect(&sn.Disconnect{})
	})
}

func TestKeepAliveKeptByTraffic(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		will := h.app("will/#")
		s := h.sensor("10.0.0.2:5000")
		s.connectWithWill("dev1", false, 10)
		for range 5 { // 5 x 10s, each period answered
			time.Sleep(10 * time.Second)
			s.send(&sn.PingReq{})
			s.expect(&sn.PingResp{})
		}
		will.expectNone()
	})
}

func TestEmptyWillTopicMeansNoWill(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		will := h.app("#")
		s := h.sensor("10.0.0.2:5000")
		s.send(&sn.Connect{Will: true, CleanSession: true, Duration: 10, ClientID: []byte("dev1")})
		s.expect(&sn.WillTopicReq{})
		s.send(&sn.WillTopic{})
		s.expect(&sn.Connack{})
		time.Sleep(20 * time.Second) // lost, but there is no will
		will.expectNone()
		if info, _ := h.b.Session("dev1"); info.HasWill {
			t.Error("session has a will after an empty WILLTOPIC")
		}
	})
}

func TestCleanSessionFalseKeepsWill(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		will := h.app("will/#")
		s := h.sensor("10.0.0.2:5000")
		s.connectWithWill("dev1", true, 10)
		// CleanSession=0, Will=0: keep everything, the will included (§6.3).
		s.connect("dev1", false, 10)
		time.Sleep(20 * time.Second)
		will.expect("will/dev1", "gone")
	})
}

func TestCleanDisconnectPublishesNoWill(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		will := h.app("#")
		s := h.sensor("10.0.0.2:5000")
		s.connectWithWill("dev1", false, 10)
		s.send(&sn.Disconnect{})
		s.expect(&sn.Disconnect{})
		time.Sleep(time.Minute)
		will.expectNone()
		if info, _ := h.b.Session("dev1"); info.State != mqttcore.StateDisconnected {
			t.Errorf("core state = %v; want disconnected", info.State)
		}
	})
}

func TestPublishQoS012(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		a := h.app("sensors/#")
		s := h.sensor("10.0.0.2:5000")
		s.connect("dev1", true, 60)
		id := s.register("sensors/dev1/temp", 1)
		if again := s.register("sensors/dev1/temp", 2); again != id {
			t.Errorf("registering the same name twice gave ids %d and %d", id, again)
		}

		s.send(&sn.Publish{TopicID: id, Data: []byte("20.5")})
		a.expect("sensors/dev1/temp", "20.5")

		s.send(&sn.Publish{QoS: sn.QoS1, TopicID: id, MsgID: 7, Data: []byte("21")})
		s.expect(&sn.Puback{TopicID: id, MsgID: 7, ReturnCode: sn.Accepted})
		a.expect("sensors/dev1/temp", "21")

		s.send(&sn.Publish{QoS: sn.QoS2, TopicID: id, MsgID: 8, Data: []byte("22")})
		s.expect(&sn.Pubrec{MsgID: 8})
		// The PUBREC was lost: the client sends the PUBLISH again, with DUP.
		s.send(&sn.Publish{Dup: true, QoS: sn.QoS2, TopicID: id, MsgID: 8, Data: []byte("22")})
		s.expect(&sn.Pubrec{MsgID: 8})
		s.send(&sn.Pubrel{MsgID: 8})
		s.expect(&sn.Pubcomp{MsgID: 8})
		a.expect("sensors/dev1/temp", "22")
		a.expectNone() // exactly once
	})
}

func TestPublishUnknownTopicID(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		a := h.app("#")
		s := h.sensor("10.0.0.2:5000")
		s.connect("dev1", true, 60)
		for _, q := range []sn.QoS{sn.QoS0, sn.QoS1, sn.QoS2} {
			s.send(&sn.Publish{QoS: q, TopicID: 0x55, MsgID: 3, Data: []byte("x")})
			s.expect(&sn.Puback{TopicID: 0x55, MsgID: 3, ReturnCode: sn.RejectedInvalidTopicID})
		}
		s.send(&sn.Publish{QoS: sn.QoS1, TopicIDType: sn.TopicIDPredefined, TopicID: 9, MsgID: 4})
		s.expect(&sn.Puback{TopicID: 9, MsgID: 4, ReturnCode: sn.RejectedInvalidTopicID})
		a.expectNone()
		if st := h.g.Stats(); st.InvalidTopic != 4 {
			t.Errorf("InvalidTopic = %d; want 4", st.InvalidTopic)
		}
	})
}

func TestPredefinedAndShortTopics(t *testing.T) {
	cfg := gateway.Config{Predefined: []gateway.PredefinedTopic{
		{ID: 1, Topic: "site/alarms"},
		{ID: 2, Topic: "sensors/{client_id}/temp"},
		{ID: 1, Topic: "special/alarms", ClientID: "dev2"},
	}}
	run(t, cfg, func(t *testing.T, h *harness) {
		a := h.app("#")
		s1, s2 := h.sensor("10.0.0.2:5000"), h.sensor("10.0.0.3:5000")
		s1.connect("dev1", true, 60)
		s2.connect("dev2", true, 60)
		for _, tc := range []struct {
			s     *sensor
			typ   sn.TopicIDType
			id    uint16
			topic string
		}{
			{s1, sn.TopicIDPredefined, 1, "site/alarms"},
			{s1, sn.TopicIDPredefined, 2, "sensors/dev1/temp"},
			{s2, sn.TopicIDPredefined, 1, "special/alarms"},
			{s2, sn.TopicIDPredefined, 2, "sensors/dev2/temp"},
			{s1, sn.TopicIDShort, 0x6162, "ab"},
		} {
			tc.s.send(&sn.Publish{QoS: sn.QoS1, TopicIDType: tc.typ, TopicID: tc.id, MsgID: 1, Data: []byte("v")})
			tc.s.expect(&sn.Puback{TopicID: tc.id, MsgID: 1})
			a.expect(tc.topic, "v")
		}
		// Subscribing by predefined id returns that id; deliveries use it.
		s1.send(&sn.Subscribe{QoS: sn.QoS0, TopicIDType: sn.TopicIDPredefined, TopicID: 2, MsgID: 5})
		s1.expect(&sn.Suback{TopicID: 2, MsgID: 5})
		h.publish("sensors/dev1/temp", "set", mqttcore.AtMostOnce, false)
		s1.expect(&sn.Publish{TopicIDType: sn.TopicIDPredefined, TopicID: 2, Data: []byte("set")})
		// An unknown predefined id is refused.
		s1.send(&sn.Subscribe{TopicIDType: sn.TopicIDPredefined, TopicID: 77, MsgID: 6})
		s1.expect(&sn.Suback{TopicID: 77, MsgID: 6, ReturnCode: sn.RejectedInvalidTopicID})
		// Short names: SUBACK id 0, deliveries carry the name.
		s2.send(&sn.Subscribe{QoS: sn.QoS0, TopicIDType: sn.TopicIDShort, TopicID: 0x6364, MsgID: 7})
		s2.expect(&sn.Suback{MsgID: 7})
		h.publish("cd", "short", mqttcore.AtMostOnce, false)
		s2.expect(&sn.Publish{TopicIDType: sn.TopicIDShort, TopicID: 0x6364, Data: []byte("short")})
	})
}

func TestSubscribeExactNameQoS1AndRetransmission(t *testing.T) {
	cfg := gateway.Config{RetryInterval: 5 * time.Second, MaxRetries: 2}
	run(t, cfg, func(t *testing.T, h *harness) {
		will := h.app("will/#")
		s := h.sensor("10.0.0.2:5000")
		s.connectWithWill("dev1", false, 600)
		ack := s.subscribe("cmd/dev1", sn.QoS1, 1)
		if ack.TopicID == 0 || ack.QoS != sn.QoS1 {
			t.Fatalf("SUBACK = %+v; want a topic id and QoS 1", ack)
		}
		h.publish("cmd/dev1", "on", mqttcore.AtLeastOnce, false)
		first := s.recv().(*sn.Publish)
		if first.TopicID != ack.TopicID || first.QoS != sn.QoS1 || first.Dup || first.MsgID == 0 || string(first.Data) != "on" {
			t.Fatalf("PUBLISH = %+v; want QoS 1 on topic id %d, not DUP", first, ack.TopicID)
		}
		// No PUBACK: resent with DUP after the retry interval, twice, then lost.
		for range 2 {
			again := s.recv().(*sn.Publish)
			if !again.Dup || again.MsgID != first.MsgID || string(again.Data) != "on" {
				t.Fatalf("retransmission = %+v; want DUP and msg id %d", again, first.MsgID)
			}
		}
		will.expectNone()
		time.Sleep(6 * time.Second)
		will.expect("will/dev1", "gone")
		if st := h.g.Stats(); st.Retransmits != 2 {
			t.Errorf("Retransmits = %d; want 2", st.Retransmits)
		}
	})
}

func TestQoS1DeliveryAcked(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		s := h.sensor("10.0.0.2:5000")
		s.connect("dev1", true, 600)
		ack := s.subscribe("cmd/dev1", sn.QoS2, 1)
		h.publish("cmd/dev1", "one", mqttcore.AtLeastOnce, false)
		h.publish("cmd/dev1", "two", mqttcore.AtLeastOnce, false)
		p := s.recv().(*sn.Publish)
		if string(p.Data) != "one" {
			t.Fatalf("first PUBLISH %q; want one", p.Data)
		}
		// One message in flight at a time: nothing more until the PUBACK.
		s.expectNone(time.Second)
		s.send(&sn.Puback{TopicID: ack.TopicID, MsgID: p.MsgID})
		p2 := s.recv().(*sn.Publish)
		if string(p2.Data) != "two" || p2.MsgID == p.MsgID {
			t.Fatalf("second PUBLISH %+v", p2)
		}
		s.send(&sn.Puback{TopicID: ack.TopicID, MsgID: p2.MsgID})
		s.expectNone(time.Second)
	})
}

func TestQoS2Delivery(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		s := h.sensor("10.0.0.2:5000")
		s.connect("dev1", true, 600)
		s.subscribe("cmd/dev1", sn.QoS2, 1)
		h.publish("cmd/dev1", "once", mqttcore.ExactlyOnce, false)
		p := s.recv().(*sn.Publish)
		if p.QoS != sn.QoS2 || string(p.Data) != "once" {
			t.Fatalf("PUBLISH = %+v", p)
		}
		s.send(&sn.Pubrec{MsgID: p.MsgID})
		s.expect(&sn.Pubrel{MsgID: p.MsgID})
		s.send(&sn.Pubrec{MsgID: p.MsgID}) // our PUBREL was "lost"
		s.expect(&sn.Pubrel{MsgID: p.MsgID})
		s.send(&sn.Pubcomp{MsgID: p.MsgID})
		s.expectNone(time.Minute)
		if info, _ := h.b.Session("dev1"); info.Inflight != 0 {
			t.Errorf("core in-flight = %d after PUBCOMP; want 0", info.Inflight)
		}
	})
}

func TestWildcardRegisterBeforePublish(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		s := h.sensor("10.0.0.2:5000")
		s.connect("dev1", true, 600)
		if ack := s.subscribe("cmd/+/set", sn.QoS0, 1); ack.TopicID != 0 {
			t.Fatalf("SUBACK topic id for a wildcard = %d; want 0", ack.TopicID)
		}
		h.publish("cmd/lamp/set", "on", mqttcore.AtMostOnce, false)
		reg := s.recv().(*sn.Register)
		if string(reg.TopicName) != "cmd/lamp/set" || reg.TopicID == 0 {
			t.Fatalf("REGISTER = %+v", reg)
		}
		s.expectNone(time.Second) // PUBLISH waits for REGACK
		s.send(&sn.Regack{TopicID: reg.TopicID, MsgID: reg.MsgID})
		s.expect(&sn.Publish{TopicID: reg.TopicID, Data: []byte("on")})
		// The id is known now: no second REGISTER.
		h.publish("cmd/lamp/set", "off", mqttcore.AtMostOnce, false)
		s.expect(&sn.Publish{TopicID: reg.TopicID, Data: []byte("off")})
	})
}

func TestRegackRejectionUnsubscribesExactTopic(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		s := h.sensor("10.0.0.2:5000")
		s.connect("dev1", true, 600)
		s.subscribe("cmd/#", sn.QoS0, 1)
		h.publish("cmd/x", "1", mqttcore.AtMostOnce, false)
		reg := s.recv().(*sn.Register)
		s.send(&sn.Regack{TopicID: reg.TopicID, MsgID: reg.MsgID, ReturnCode: sn.RejectedNotSupported})
		s.expectNone(time.Second)
		h.publish("cmd/x", "2", mqttcore.AtMostOnce, false)
		s.expectNone(time.Second) // refused topic: not asked again
		h.publish("cmd/y", "3", mqttcore.AtMostOnce, false)
		if reg2 := s.recv().(*sn.Register); string(reg2.TopicName) != "cmd/y" {
			t.Fatalf("REGISTER = %+v; want cmd/y", reg2)
		}
	})
}

func TestRetainedOnSubscribe(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		h.publish("cfg/dev1", "v1", mqttcore.AtMostOnce, true)
		s := h.sensor("10.0.0.2:5000")
		s.connect("dev1", true, 600)
		ack := s.subscribe("cfg/dev1", sn.QoS0, 1)
		s.expect(&sn.Publish{Retain: true, TopicID: ack.TopicID, Data: []byte("v1")})
	})
}

func TestSleepBufferAndWake(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		s := h.sensor("10.0.0.2:5000")
		s.connect("dev1", false, 60)
		ack := s.subscribe("cmd/dev1", sn.QoS1, 1)
		s.subscribe("cmd/all/#", sn.QoS0, 2)
		s.send(&sn.Disconnect{HasDuration: true, Duration: 600})
		s.expect(&sn.Disconnect{})
		s.send(&sn.Disconnect{HasDuration: true, Duration: 600}) // retransmitted
		s.expect(&sn.Disconnect{})
		if info, _ := h.b.Session("dev1"); info.State != mqttcore.StateAsleep {
			t.Fatalf("core state = %v; want asleep", info.State)
		}
		if st := h.g.Stats(); st.Asleep != 1 {
			t.Errorf("Asleep = %d; want 1", st.Asleep)
		}
		h.publish("cmd/dev1", "a", mqttcore.AtLeastOnce, false)
		h.publish("cmd/dev1", "b", mqttcore.AtLeastOnce, false)
		h.publish("cmd/all/x", "c", mqttcore.AtMostOnce, false)
		s.expectNone(time.Minute) // asleep: nothing is sent
		time.Sleep(5 * time.Minute)

		s.send(&sn.PingReq{ClientID: []byte("dev1")})
		for _, want := range []string{"a", "b"} {
			p := s.recv().(*sn.Publish)
			// The exact subscription's id survived sleep: no REGISTER.
			if p.TopicID != ack.TopicID || string(p.Data) != want || p.QoS != sn.QoS1 {
				t.Fatalf("PUBLISH = %+v; want %q on topic id %d", p, want, ack.TopicID)
			}
			s.send(&sn.Puback{TopicID: p.TopicID, MsgID: p.MsgID})
		}
		reg := s.recv().(*sn.Register)
		s.send(&sn.Regack{TopicID: reg.TopicID, MsgID: reg.MsgID})
		s.expect(&sn.Publish{TopicID: reg.TopicID, Data: []byte("c")})
		s.expect(&sn.PingResp{}) // only after everything was delivered
		if info, _ := h.b.Session("dev1"); info.State != mqttcore.StateAsleep || info.Queued != 0 {
			t.Fatalf("core session after wake = %+v; want asleep with an empty queue", info)
		}
		// Nothing queued: PINGRESP at once.
		s.send(&sn.PingReq{ClientID: []byte("dev1")})
		s.expect(&sn.PingResp{})
	})
}

func TestSleepWithoutAckKeepsMessage(t *testing.T) {
	run(t, gateway.Config{RetryInterval: 5 * time.Second, MaxRetries: 5}, func(t *testing.T, h *harness) {
		s := h.sensor("10.0.0.2:5000")
		s.connect("dev1", false, 60)
		ack := s.subscribe("cmd/dev1", sn.QoS1, 1)
		s.send(&sn.Disconnect{HasDuration: true, Duration: 600})
		s.expect(&sn.Disconnect{})
		h.publish("cmd/dev1", "a", mqttcore.AtLeastOnce, false)
		s.send(&sn.PingReq{ClientID: []byte("dev1")})
		p := s.recv().(*sn.Publish)
		// The client falls asleep again before acknowledging.
		s.send(&sn.Disconnect{HasDuration: true, Duration: 600})
		s.expect(&sn.Disconnect{})
		// It wakes by CONNECT: topic ids start afresh with a connection, so
		// the gateway REGISTERs the topic, then resends the message as DUP.
		s.connect("dev1", false, 60)
		reg := s.recv().(*sn.Register)
		if string(reg.TopicName) != "cmd/dev1" {
			t.Fatalf("REGISTER = %+v; want cmd/dev1", reg)
		}
		s.send(&sn.Regack{TopicID: reg.TopicID, MsgID: reg.MsgID})
		p2 := s.recv().(*sn.Publish)
		if !p2.Dup || p2.MsgID != p.MsgID || string(p2.Data) != "a" || p2.TopicID != reg.TopicID {
			t.Fatalf("after CONNECT: %+v; want a DUP of %+v on topic id %d", p2, p, reg.TopicID)
		}
		s.send(&sn.Puback{TopicID: p2.TopicID, MsgID: p2.MsgID})
		s.expectNone(time.Minute)
		if ack.TopicID == 0 {
			t.Error("SUBACK gave no topic id")
		}
	})
}

func TestOversleepLosesClient(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		will := h.app("will/#")
		s := h.sensor("10.0.0.2:5000")
		s.connectWithWill("dev1", false, 60)
		s.send(&sn.Disconnect{HasDuration: true, Duration: 100})
		s.expect(&sn.Disconnect{})
		time.Sleep(100 * time.Second) // the duration itself is within tolerance
		will.expectNone()
		time.Sleep(60 * time.Second)
		will.expect("will/dev1", "gone")
		if st := h.g.Stats(); st.Clients != 0 || st.Asleep != 0 {
			t.Errorf("Clients, Asleep = %d, %d; want 0, 0", st.Clients, st.Asleep)
		}
	})
}

func TestDisconnectWhileAsleep(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		s := h.sensor("10.0.0.2:5000")
		s.connect("dev1", false, 60)
		s.send(&sn.Disconnect{HasDuration: true, Duration: 100})
		s.expect(&sn.Disconnect{})
		s.send(&sn.Disconnect{})
		s.expect(&sn.Disconnect{})
		if info, _ := h.b.Session("dev1"); info.State != mqttcore.StateDisconnected {
			t.Errorf("core state = %v; want disconnected", info.State)
		}
	})
}

func TestAsleepClientMayNotPublish(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		a := h.app("#")
		s := h.sensor("10.0.0.2:5000")
		s.connect("dev1", false, 60)
		id := s.register("t", 1)
		s.send(&sn.Disconnect{HasDuration: true, Duration: 100})
		s.expect(&sn.Disconnect{})
		s.send(&sn.Publish{TopicID: id, Data: []byte("x")})
		s.expectNone(time.Second)
		a.expectNone()
		if st := h.g.Stats(); st.Unexpected != 1 {
			t.Errorf("Unexpected = %d; want 1", st.Unexpected)
		}
	})
}

func TestUnknownSenderGetsDisconnect(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		s := h.sensor("10.0.0.2:5000")
		for _, m := range []sn.Message{
			&sn.PingReq{}, &sn.Publish{QoS: sn.QoS1, TopicID: 1, MsgID: 1}, &sn.Register{MsgID: 1, TopicName: []byte("a")},
			&sn.Subscribe{MsgID: 1, TopicName: []byte("a")}, &sn.Disconnect{},
		} {
			s.send(m)
			s.expect(&sn.Disconnect{})
		}
		// Gateway-to-client types are not answered.
		s.send(&sn.Connack{})
		s.send(&sn.Advertise{GatewayID: 9, Duration: 900})
		s.expectNone(time.Second)
		if st := h.g.Stats(); st.UnknownClient != 5 || st.Unexpected != 2 {
			t.Errorf("UnknownClient, Unexpected = %d, %d; want 5, 2", st.UnknownClient, st.Unexpected)
		}
	})
}

func TestMalformedDatagramsDropped(t *testing.T) {
	run(t, gateway.Config{MaxMessageSize: 100}, func(t *testing.T, h *harness) {
		a := h.app("#")
		s := h.sensor("10.0.0.2:5000")
		s.connect("dev1", true, 60)
		id := s.register("t", 1)
		for _, raw := range [][]byte{{}, {0x01}, {0x05, 0x0D, 0x00, 0x01}, {0x02, 0x03}, make([]byte, 101)} {
			s.sendRaw(raw)
		}
		// The client is unaffected.
		s.send(&sn.Publish{QoS: sn.QoS1, TopicID: id, MsgID: 2, Data: []byte("ok")})
		s.expect(&sn.Puback{TopicID: id, MsgID: 2})
		a.expect("t", "ok")
		if st := h.g.Stats(); st.Malformed != 4 || st.LimitHits[gateway.LimitMessageSizeIn] != 1 {
			t.Errorf("Malformed, LimitHits[%v] = %d, %d; want 4, 1", gateway.LimitMessageSizeIn, st.Malformed, st.LimitHits[gateway.LimitMessageSizeIn])
		}
	})
}

func TestForwarderEncapsulation(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		a := h.app("#")
		fwd := h.sensor("10.0.0.9:7000")
		n1 := &sensor{h: h, link: fwd.link, node: []byte{0x00, 0x01}}
		n2 := &sensor{h: h, link: fwd.link, node: []byte{0x00, 0x02}}
		n1.connect("node1", true, 60)
		n2.connect("node2", true, 60)
		id1 := n1.register("n/1", 1)
		id2 := n2.register("n/2", 1)
		n1.send(&sn.Publish{QoS: sn.QoS1, TopicID: id1, MsgID: 5, Data: []byte("one")})
		n1.expect(&sn.Puback{TopicID: id1, MsgID: 5})
		a.expect("n/1", "one")
		n2.send(&sn.Publish{QoS: sn.QoS1, TopicID: id2, MsgID: 5, Data: []byte("two")})
		n2.expect(&sn.Puback{TopicID: id2, MsgID: 5})
		a.expect("n/2", "two")
		if st := h.g.Stats(); st.Clients != 2 {
			t.Errorf("Clients = %d; want 2 (one per node id)", st.Clients)
		}
		st := h.g.Stats()
		if st.Active != 2 || st.Forwarded != 2 || st.Forwarders != 1 || st.Registrations != 2 || st.PublishesIn != [4]uint64{0, 0, 2, 0} {
			t.Errorf("Stats = %+v; want 2 active, 2 forwarded behind 1 forwarder, 2 registrations, 2 QoS 1 publishes in", st)
		}
	})
}

func TestSearchGW(t *testing.T) {
	run(t, gateway.Config{GatewayID: 7}, func(t *testing.T, h *harness) {
		s := h.sensor("10.0.0.2:5000")
		s.send(&sn.SearchGW{Radius: 1})
		s.expect(&sn.GWInfo{GatewayID: 7})
	})
}

func TestQoSMinus1(t *testing.T) {
	cfg := gateway.Config{
		Predefined: []gateway.PredefinedTopic{{ID: 3, Topic: "beacons"}},
		QoSMinus1:  gateway.QoSMinus1Config{Enabled: true, AllowFrom: []string{"10.0.0.0/24"}},
	}
	run(t, cfg, func(t *testing.T, h *harness) {
		a := h.app("#")
		ok, far := h.sensor("10.0.0.2:5000"), h.sensor("10.0.1.2:5000")
		ok.send(&sn.Publish{QoS: sn.QoSMinus1, TopicIDType: sn.TopicIDPredefined, TopicID: 3, Data: []byte("p")})
		a.expect("beacons", "p")
		ok.send(&sn.Publish{QoS: sn.QoSMinus1, TopicIDType: sn.TopicIDShort, TopicID: 0x7A7A, Data: []byte("s")})
		a.expect("zz", "s")
		far.send(&sn.Publish{QoS: sn.QoSMinus1, TopicIDType: sn.TopicIDPredefined, TopicID: 3, Data: []byte("no")})
		ok.send(&sn.Publish{QoS: sn.QoSMinus1, TopicIDType: sn.TopicIDPredefined, TopicID: 4, Data: []byte("no")})
		a.expectNone()
		ok.expectNone(time.Second) // no answer to QoS -1, ever
		if st := h.g.Stats(); st.QoSMinus1 != 2 || st.Rejected != 1 || st.InvalidTopic != 1 || st.PublishesIn[0] != 2 {
			t.Errorf("QoSMinus1, Rejected, InvalidTopic, PublishesIn[QoS -1] = %d, %d, %d, %d; want 2, 1, 1, 2", st.QoSMinus1, st.Rejected, st.InvalidTopic, st.PublishesIn[0])
		}
	})
}

func TestQoSMinus1DisabledByDefault(t *testing.T) {
	cfg := gateway.Config{Predefined: []gateway.PredefinedTopic{{ID: 3, Topic: "beacons"}}}
	run(t, cfg, func(t *testing.T, h *harness) {
		a := h.app("#")
		s := h.sensor("10.0.0.2:5000")
		s.send(&sn.Publish{QoS: sn.QoSMinus1, TopicIDType: sn.TopicIDPredefined, TopicID: 3, Data: []byte("p")})
		a.expectNone()
	})
}

func TestWillUpdates(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		will := h.app("will/#")
		s := h.sensor("10.0.0.2:5000")
		s.connect("dev1", true, 10)
		s.send(&sn.WillMsgUpd{Message: []byte("x")})
		s.expect(&sn.WillMsgResp{ReturnCode: sn.RejectedNotSupported}) // no will topic yet
		s.send(&sn.WillTopicUpd{QoS: sn.QoS1, Topic: []byte("will/a")})
		s.expect(&sn.WillTopicResp{})
		s.send(&sn.WillMsgUpd{Message: []byte("bye")})
		s.expect(&sn.WillMsgResp{})
		s.send(&sn.WillTopicUpd{Topic: []byte("will/b")}) // keeps the message
		s.expect(&sn.WillTopicResp{})
		time.Sleep(20 * time.Second)
		will.expect("will/b", "bye")

		s2 := h.sensor("10.0.0.3:5000")
		s2.connect("dev2", true, 10)
		s2.send(&sn.WillTopicUpd{Topic: []byte("will/c")})
		s2.expect(&sn.WillTopicResp{})
		s2.send(&sn.WillTopicUpd{}) // empty: delete the will
		s2.expect(&sn.WillTopicResp{})
		time.Sleep(20 * time.Second)
		will.expectNone()
	})
}

func TestTakeoverFromNewAddress(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		old, nu := h.sensor("10.0.0.2:5000"), h.sensor("10.0.0.2:5001")
		old.connect("dev1", false, 60)
		ack := old.subscribe("cmd/dev1", sn.QoS0, 1)
		nu.connect("dev1", false, 60)
		old.expect(&sn.Disconnect{})
		// The subscription lives in the core session; the new address has no
		// topic id for it yet, so the gateway REGISTERs first.
		h.publish("cmd/dev1", "x", mqttcore.AtMostOnce, false)
		reg := nu.recv().(*sn.Register)
		if string(reg.TopicName) != "cmd/dev1" {
			t.Fatalf("REGISTER = %+v", reg)
		}
		nu.send(&sn.Regack{TopicID: reg.TopicID, MsgID: reg.MsgID})
		nu.expect(&sn.Publish{TopicID: reg.TopicID, Data: []byte("x")})
		old.send(&sn.PingReq{})
		old.expect(&sn.Disconnect{}) // the old address is unknown now
		_ = ack
	})
}

func TestClientIDTooLong(t *testing.T) {
	run(t, gateway.Config{MaxClientIDLen: 8}, func(t *testing.T, h *harness) {
		s := h.sensor("10.0.0.2:5000")
		s.send(&sn.Connect{Duration: 60, ClientID: []byte("much-too-long")})
		s.expect(&sn.Connack{ReturnCode: sn.RejectedNotSupported})
		synctest.Wait() // the loop forgets the client after sending CONNACK
		if st := h.g.Stats(); st.Clients != 0 || st.Rejected != 1 {
			t.Errorf("Clients, Rejected = %d, %d; want 0, 1", st.Clients, st.Rejected)
		}
	})
}

func TestUnsubscribe(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		s := h.sensor("10.0.0.2:5000")
		s.connect("dev1", true, 600)
		s.subscribe("cmd/dev1", sn.QoS0, 1)
		s.send(&sn.Unsubscribe{MsgID: 2, TopicName: []byte("cmd/dev1")})
		s.expect(&sn.Unsuback{MsgID: 2})
		h.publish("cmd/dev1", "x", mqttcore.AtMostOnce, false)
		s.expectNone(time.Second)
		s.send(&sn.Unsubscribe{MsgID: 3, TopicName: []byte("never/subscribed")})
		s.expect(&sn.Unsuback{MsgID: 3})
	})
}

// A sensor that unsubscribed may keep publishing on the topic id its SUBACK
// gave (Eclipse Paho's GatewayTester does). At QoS 0 it never reads a PUBACK
// "invalid topic id", so a freed id would lose its messages without a
// trace: the id stays valid for the connection, and every message arrives
// (docs/spec-interpretation.md G6).
func TestPublishOnSubackIDAfterUnsubscribe(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		app := h.app("data/dev1")
		s := h.sensor("10.0.0.2:5000")
		s.connect("dev1", true, 600)
		ack := s.subscribe("data/dev1", sn.QoS0, 1)
		s.send(&sn.Unsubscribe{MsgID: 2, TopicName: []byte("data/dev1")})
		s.expect(&sn.Unsuback{MsgID: 2})
		for i := range 4 {
			s.send(&sn.Publish{QoS: sn.QoS0, TopicID: ack.TopicID, Data: []byte{'0' + byte(i)}})
		}
		for i := range 4 {
			app.expect("data/dev1", string([]byte{'0' + byte(i)}))
		}
		app.expectNone()
		// No PUBACK "invalid topic id", and, unsubscribed, no copy back.
		s.expectNone(time.Minute)
		if st := h.g.Stats(); st.InvalidTopic != 0 {
			t.Errorf("InvalidTopic = %d; want 0", st.InvalidTopic)
		}
		// The id stays the topic's: subscribing again gives the same one.
		if again := s.subscribe("data/dev1", sn.QoS0, 3); again.TopicID != ack.TopicID {
			t.Errorf("SUBACK topic id after resubscribing = %d; want %d", again.TopicID, ack.TopicID)
		}
	})
}

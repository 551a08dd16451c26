package gateway_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/auth"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// Packet-level tests of the 2.0 procedures (docs/mqttsn-2.md), each pinning
// a choice the draft leaves open where there is one.

func TestV2VersionDetection(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		a := h.app("#")
		// A 1.2 and a 2.0 sensor on the same port, each answered in its own
		// version.
		s12 := h.sensor("10.0.0.2:5000")
		s12.connect("old", true, 60)
		s20 := h.sensor("10.0.0.3:5000")
		s20.connect2(&sn.ConnectV2{CleanStart: true, ClientID: []byte("new")})
		s12.send(&sn.PingReq{})
		s12.expect(&sn.PingResp{})
		s20.send2(&sn.PingReqV2{PacketID: 7})
		s20.expect2(&sn.PingRespV2{PacketID: 7})
		// 0x12 from the 1.2 client is SUBSCRIBE, from the 2.0 client PUBWOS.
		s12.subscribe("x/12", sn.QoS0, 2)
		s20.send2(&sn.Pubwos{TopicType: sn.TopicTypeName, TopicName: []byte("x/20"), Data: []byte("w")})
		a.expect("x/20", "w")

		// A 2.0 packet that needs a virtual connection, from a stranger:
		// DISCONNECT "no virtual connection".
		st := h.sensor("10.0.0.4:5000")
		st.send2(&sn.PublishV2{QoS: sn.QoS1, PacketID: 1, TopicType: sn.TopicTypeName, TopicName: []byte("a")})
		st.expect2(&sn.DisconnectV2{HasReasonCode: true, ReasonCode: sn.NoVirtualConnection})
		// A 2.0 SEARCHGW is answered with a 2.0 GWINFO.
		st.send2(&sn.SearchGWV2{})
		st.expect2(&sn.GWInfoV2{})
		// A CONNECT with a Protocol Version other than 2: CONNACK 0x84.
		st.sendRaw([]byte{0x0E, 0x01, 0x01, 0x00, 0x05, 0x03, 0x00, 0x3C, 0x00, 0x00, 'd', 'e', 'v', '9'})
		st.expect2(&sn.ConnackV2{PacketID: 5, ReasonCode: sn.UnsupportedVersion})

		// The sensor at the 1.2 address comes back speaking 2.0: a new
		// client replaces the old one.
		s12.connect2(&sn.ConnectV2{CleanStart: true, ClientID: []byte("old")})
		s12.send2(&sn.PingReqV2{PacketID: 8})
		s12.expect2(&sn.PingRespV2{PacketID: 8})
		// And back to 1.2.
		s12.connect("old", true, 60)
		s12.send(&sn.PingReq{})
		s12.expect(&sn.PingResp{})
	})
}

func TestV2ConnectChoices(t *testing.T) {
	run(t, gateway.Config{SessionExpiry: time.Hour}, func(t *testing.T, h *harness) {
		// An empty client id: one is assigned, 23 characters.
		s := h.sensor("10.0.0.2:5000")
		ack := s.connect2(&sn.ConnectV2{CleanStart: true})
		if len(ack.AssignedClientID) != 23 {
			t.Fatalf("Assigned Client Identifier %q; want 23 characters", ack.AssignedClientID)
		}
		if _, ok := h.b.Session(string(ack.AssignedClientID)); !ok {
			t.Errorf("no core session for the assigned id %q", ack.AssignedClientID)
		}

		// Eclipse Paho's Packet Identifier 0: accepted, echoed, counted.
		p := h.sensor("10.0.0.3:5000")
		p.send2(&sn.ConnectV2{CleanStart: true, KeepAlive: 60, ClientID: []byte("paho")})
		p.expect2(&sn.ConnackV2{ReasonCode: sn.Success})
		if n := h.g.Stats().V2.PahoDeviations; n != 1 {
			t.Errorf("PahoDeviations = %d; want 1", n)
		}

		// Session Expiry above session_expiry is capped, and reported when
		// the client allows server values.
		c := h.sensor("10.0.0.4:5000")
		ack = c.connect2(&sn.ConnectV2{ClientID: []byte("cap"), AllowServerValues: true, HasSessionExpiry: true, SessionExpiry: 0xFFFFFFFF})
		if !ack.HasSessionExpiry || ack.SessionExpiry != 3600 {
			t.Errorf("CONNACK Session Expiry %v %d; want 3600", ack.HasSessionExpiry, ack.SessionExpiry)
		}
		c.send2(&sn.DisconnectV2{})
		time.Sleep(3599 * time.Second)
		if _, ok := h.b.Session("cap"); !ok {
			t.Fatalf("session gone before its expiry")
		}
		time.Sleep(2 * time.Second)
		if _, ok := h.b.Session("cap"); ok {
			t.Errorf("session kept beyond the capped expiry of 3600 s")
		}

		// A will by a session alias that does not resolve: protocol error.
		w := h.sensor("10.0.0.5:5000")
		w.send2(&sn.ConnectV2{CleanStart: true, PacketID: 3, KeepAlive: 60, ClientID: []byte("w"),
			Will: true, WillTopicType: sn.TopicTypeSession, WillTopicAlias: 1, WillPayload: []byte("x")})
		w.expect2(&sn.ConnackV2{PacketID: 3, ReasonCode: sn.ProtocolError})

		// A client id longer than max_client_id_len.
		l := h.sensor("10.0.0.6:5000")
		l.send2(&sn.ConnectV2{CleanStart: true, PacketID: 4, KeepAlive: 60, ClientID: []byte(strings.Repeat("x", 65))})
		l.expect2(&sn.ConnackV2{PacketID: 4, ReasonCode: sn.ClientIDNotValid})
	})
}

func TestV2SessionPresentAcrossDisconnect(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		s := h.sensor("10.0.0.2:5000")
		s.connect2(&sn.ConnectV2{ClientID: []byte("dev"), HasSessionExpiry: true, SessionExpiry: 600})
		s.subscribe2(&sn.SubscribeV2{QoS: sn.QoS1, TopicType: sn.TopicTypeName, PacketID: 2, TopicFilter: []byte("cmd/#")})
		s.send2(&sn.DisconnectV2{})
		synctest.Wait() // the gateway has handled the DISCONNECT
		if info, _ := h.b.Session("dev"); info.State != mqttcore.StateDisconnected {
			t.Fatalf("core session %v after DISCONNECT; want disconnected", info.State)
		}
		h.publish("cmd/a", "queued", mqttcore.AtLeastOnce, false)
		time.Sleep(500 * time.Second)
		if ack := s.connect2(&sn.ConnectV2{ClientID: []byte("dev")}); !ack.SessionPresent {
			t.Fatalf("CONNACK without Session Present within the session expiry")
		}
		p, ok := s.recv2().(*sn.PublishV2)
		if !ok || string(p.Data) != "queued" || p.TopicType != sn.TopicTypeName || string(p.TopicName) != "cmd/a" {
			t.Fatalf("after reconnecting got %#v; want the queued message by name", p)
		}
		s.send2(&sn.PubackV2{PacketID: p.PacketID})
		// The CONNECT had no Session Expiry (0): the session ends with
		// this connection.
		s.send2(&sn.DisconnectV2{})
		s.expectNone(time.Second)
		if _, ok := h.b.Session("dev"); ok {
			t.Errorf("session kept after a DISCONNECT of a connection with Session Expiry 0")
		}
	})
}

func TestV2PublishFromClient(t *testing.T) {
	cfg := gateway.Config{Predefined: []gateway.PredefinedTopic{{ID: 5, Topic: "pre/five"}}}
	run(t, cfg, func(t *testing.T, h *harness) {
		a := h.app("#")
		s := h.sensor("10.0.0.2:5000")
		s.connect2(&sn.ConnectV2{CleanStart: true, ClientID: []byte("dev")})

		// By session alias from REGISTER, QoS 1.
		alias := s.register2("t/a", 1)
		s.send2(&sn.PublishV2{QoS: sn.QoS1, PacketID: 2, TopicType: sn.TopicTypeSession, TopicAlias: alias, Data: []byte("1")})
		s.expect2(&sn.PubackV2{PacketID: 2})
		a.expect("t/a", "1")
		// By predefined alias, QoS 0: no answer.
		s.send2(&sn.PublishV2{TopicType: sn.TopicTypePredefined, TopicAlias: 5, Data: []byte("2")})
		a.expect("pre/five", "2")
		// By a long topic name (three-octet Length), QoS 2.
		long := "long/" + strings.Repeat("n", 300)
		s.send2(&sn.PublishV2{QoS: sn.QoS2, PacketID: 3, TopicType: sn.TopicTypeName, TopicName: []byte(long), Data: []byte("3")})
		s.expect2(&sn.PubrecV2{PacketID: 3})
		a.expect(long, "3")
		s.send2(&sn.PubrelV2{PacketID: 3})
		s.expect2(&sn.PubcompV2{PacketID: 3})
		// An unknown session alias: 0xF0, nothing published.
		s.send2(&sn.PublishV2{QoS: sn.QoS1, PacketID: 4, TopicType: sn.TopicTypeSession, TopicAlias: 99, Data: []byte("x")})
		s.expect2(&sn.PubackV2{PacketID: 4, ReasonCode: sn.UnknownTopicAlias})
		// REGISTER of a name with a predefined alias: that alias, 0x1A.
		s.send2(&sn.RegisterV2{PacketID: 5, TopicName: []byte("pre/five")})
		s.expect2(&sn.RegackV2{TopicType: sn.TopicTypePredefined, PacketID: 5, HasTopicAlias: true, TopicAlias: 5, ReasonCode: sn.TopicAliasExists})
		// REGISTER of a wildcard: topic name invalid.
		s.send2(&sn.RegisterV2{PacketID: 6, TopicName: []byte("a/#")})
		s.expect2(&sn.RegackV2{PacketID: 6, ReasonCode: sn.TopicNameInvalid})
		// PUBLISH QoS 1 with Packet Identifier 0: a protocol error that
		// ends the virtual connection.
		s.send2(&sn.PublishV2{QoS: sn.QoS1, TopicType: sn.TopicTypeName, TopicName: []byte("t/b"), Data: []byte("x")})
		s.expect2(&sn.DisconnectV2{HasReasonCode: true, ReasonCode: sn.ProtocolError})
		a.expectNone()
		st := h.g.Stats()
		if st.V2.ProtocolErrors != 1 {
			t.Errorf("V2.ProtocolErrors = %d; want 1", st.V2.ProtocolErrors)
		}
		// The same counters as 1.2's: QoS 0, 1 and 2 taken once each.
		if st.PublishesIn != [4]uint64{0, 1, 1, 1} {
			t.Errorf("Stats().PublishesIn = %v; want one each of QoS 0, 1 and 2", st.PublishesIn)
		}
	})
}

func TestV2QoS2RoutedOnce(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		a := h.app("#")
		s := h.sensor("10.0.0.2:5000")
		s.connect2(&sn.ConnectV2{CleanStart: true, ClientID: []byte("dev")})
		p := &sn.PublishV2{QoS: sn.QoS2, PacketID: 3, TopicType: sn.TopicTypeName, TopicName: []byte("q/2"), Data: []byte("x")}
		s.send2(p)
		s.expect2(&sn.PubrecV2{PacketID: 3})
		p.Dup = true
		s.send2(p) // PUBREC lost: the client resends with DUP
		s.expect2(&sn.PubrecV2{PacketID: 3})
		s.send2(&sn.PubrelV2{PacketID: 3})
		s.expect2(&sn.PubcompV2{PacketID: 3})
		a.expect("q/2", "x")
		a.expectNone()
	})
}

func TestV2SubscribeOptionsAndDelivery(t *testing.T) {
	cfg := gateway.Config{Predefined: []gateway.PredefinedTopic{{ID: 5, Topic: "pre/five"}}}
	run(t, cfg, func(t *testing.T, h *harness) {
		h.publish("ret/a", "old", mqttcore.AtMostOnce, true)
		s := h.sensor("10.0.0.2:5000")
		s.connect2(&sn.ConnectV2{CleanStart: true, ClientID: []byte("dev")})

		// An exact name: a session alias; retained message sent (Retain
		// Handling 0) with RETAIN set.
		ack := s.subscribe2(&sn.SubscribeV2{QoS: sn.QoS1, TopicType: sn.TopicTypeName, PacketID: 1, TopicFilter: []byte("ret/a")})
		if !ack.HasTopicAlias || ack.TopicType != sn.TopicTypeSession {
			t.Fatalf("SUBACK for an exact name %#v; want a session alias", ack)
		}
		p, ok := s.recv2().(*sn.PublishV2)
		if !ok || !p.Retain || p.TopicType != sn.TopicTypeSession || p.TopicAlias != ack.TopicAlias || string(p.Data) != "old" {
			t.Fatalf("got %#v; want the retained message by session alias", p)
		}
		s.send2(&sn.PubackV2{PacketID: p.PacketID})
		// Retain Handling 2: no retained message.
		s.subscribe2(&sn.SubscribeV2{QoS: sn.QoS0, RetainHandling: sn.RetainHandling(mqttcore.NoRetained), TopicType: sn.TopicTypeName, PacketID: 2, TopicFilter: []byte("ret/#")})
		// No Local: the client's own publication is not echoed.
		ack = s.subscribe2(&sn.SubscribeV2{QoS: sn.QoS0, NoLocal: true, TopicType: sn.TopicTypeName, PacketID: 3, TopicFilter: []byte("own/#")})
		if ack.HasTopicAlias || ack.TopicType != sn.TopicTypePredefined {
			t.Errorf("SUBACK for a wildcard %#v; want no alias and topic type 01", ack)
		}
		s.send2(&sn.PublishV2{TopicType: sn.TopicTypeName, TopicName: []byte("own/x"), Data: []byte("mine")})
		// A name with a predefined alias: that alias.
		ack = s.subscribe2(&sn.SubscribeV2{QoS: sn.QoS0, TopicType: sn.TopicTypeName, PacketID: 4, TopicFilter: []byte("pre/five")})
		if !ack.HasTopicAlias || ack.TopicType != sn.TopicTypePredefined || ack.TopicAlias != 5 {
			t.Errorf("SUBACK for a predefined name %#v; want predefined alias 5", ack)
		}
		// Retain As Published unset: a live retained message arrives
		// without RETAIN (on ret/# at QoS 0).
		h.publish("ret/b", "live", mqttcore.AtMostOnce, true)
		p, ok = s.recv2().(*sn.PublishV2)
		if !ok || p.Retain || string(p.TopicName) != "ret/b" || p.TopicType != sn.TopicTypeName {
			t.Fatalf("got %#v; want ret/b by name without RETAIN", p)
		}
		h.publish("own/y", "theirs", mqttcore.AtMostOnce, false)
		p, ok = s.recv2().(*sn.PublishV2)
		if !ok || string(p.TopicName) != "own/y" {
			t.Fatalf("got %#v; want own/y (and never its own own/x)", p)
		}
		// UNSUBSCRIBE: success, then "no subscription existed".
		s.send2(&sn.UnsubscribeV2{TopicType: sn.TopicTypeName, PacketID: 5, TopicFilter: []byte("own/#")})
		s.expect2(&sn.UnsubackV2{PacketID: 5})
		s.send2(&sn.UnsubscribeV2{TopicType: sn.TopicTypeName, PacketID: 6, TopicFilter: []byte("own/#")})
		s.expect2(&sn.UnsubackV2{PacketID: 6, ReasonCode: sn.NoSubscriptionExisted})
		// The client lost its alias (0xF0): the gateway resends by name.
		h.publish("ret/a", "again", mqttcore.AtLeastOnce, false)
		p, ok = s.recv2().(*sn.PublishV2)
		if !ok || p.TopicType != sn.TopicTypeSession {
			t.Fatalf("got %#v; want ret/a by alias", p)
		}
		s.send2(&sn.PubackV2{PacketID: p.PacketID, ReasonCode: sn.UnknownTopicAlias})
		p, ok = s.recv2().(*sn.PublishV2)
		if !ok || p.TopicType != sn.TopicTypeName || string(p.TopicName) != "ret/a" || string(p.Data) != "again" {
			t.Fatalf("after 0xF0 got %#v; want ret/a by name", p)
		}
		s.send2(&sn.PubackV2{PacketID: p.PacketID})
		s.expectNone(time.Second)
	})
}

func TestV2MaximumPacketSize(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		s := h.sensor("10.0.0.2:5000")
		s.connect2(&sn.ConnectV2{CleanStart: true, ClientID: []byte("dev"), MaxPacketSize: 40})
		s.subscribe2(&sn.SubscribeV2{QoS: sn.QoS1, TopicType: sn.TopicTypeName, PacketID: 1, TopicFilter: []byte("big/#")})
		before := h.g.Stats().LimitHits[gateway.LimitMessageSizeOut]
		h.publish("big/a", strings.Repeat("x", 40), mqttcore.AtLeastOnce, false) // 50 octets by name
		h.publish("big/a", "small", mqttcore.AtLeastOnce, false)
		p, ok := s.recv2().(*sn.PublishV2)
		if !ok || string(p.Data) != "small" {
			t.Fatalf("got %#v; want only the message that fits", p)
		}
		if n := h.g.Stats().LimitHits[gateway.LimitMessageSizeOut] - before; n != 1 {
			t.Errorf("max_message_size (sent) hits = %d; want 1", n)
		}
	})
}

func TestV2DefaultAwakeMessages(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		s := h.sensor("10.0.0.2:5000")
		s.connect2(&sn.ConnectV2{ClientID: []byte("dev"), HasSessionExpiry: true, SessionExpiry: 3600,
			HasDefaultAwake: true, DefaultAwakeMessages: 2})
		s.subscribe2(&sn.SubscribeV2{QoS: sn.QoS1, TopicType: sn.TopicTypeName, PacketID: 1, TopicFilter: []byte("cmd")})
		s.send2(&sn.SleepReq{PacketID: 2, SleepDuration: 600})
		s.expect2(&sn.SleepResp{PacketID: 2})
		for _, p := range []string{"1", "2", "3"} {
			h.publish("cmd", p, mqttcore.AtLeastOnce, false)
		}
		s.expect2(&sn.Wakeup{}) // for the first (G2-26)
		wake := func(id uint16, want []string, remaining uint8) {
			t.Helper()
			s.send2(&sn.PingReqV2{PacketID: id})
			for _, w := range want {
				p, ok := s.recv2().(*sn.PublishV2)
				if !ok || string(p.Data) != w {
					t.Fatalf("got %#v; want message %q", p, w)
				}
				s.send2(&sn.PubackV2{PacketID: p.PacketID})
			}
			s.expect2(&sn.PingRespV2{PacketID: id, HasRemaining: true, Remaining: remaining})
		}
		wake(10, []string{"1", "2"}, 1)
		wake(11, []string{"3"}, 0)
		// SLEEPREQ with Retain Topic Aliases = 0 drops the session aliases
		// (the exact subscription's alias): the next delivery is by name.
		s.send2(&sn.SleepReq{RetainTopicAliases: false, PacketID: 3, SleepDuration: 600})
		s.expect2(&sn.SleepResp{PacketID: 3})
		h.publish("cmd", "4", mqttcore.AtLeastOnce, false)
		s.expect2(&sn.Wakeup{})
		s.send2(&sn.PingReqV2{PacketID: 12})
		p, ok := s.recv2().(*sn.PublishV2)
		if !ok || p.TopicType != sn.TopicTypeName || string(p.TopicName) != "cmd" {
			t.Fatalf("after dropping aliases got %#v; want cmd by name", p)
		}
	})
}

// TestV2Authorization checks that the core's ACL refuses a 2.0 client on
// every path as it refuses a 1.2 one, with 2.0's reason code 0x87, counted
// in Denied.
func TestV2Authorization(t *testing.T) {
	cfg := gateway.Config{
		Predefined: []gateway.PredefinedTopic{{ID: 1, Topic: "secret/x"}, {ID: 2, Topic: "open/qosm1"}},
		QoSMinus1:  gateway.QoSMinus1Config{Enabled: true},
	}
	run(t, cfg, func(t *testing.T, h *harness) {
		acl, err := auth.ParseACL(strings.NewReader(`topic read #
pattern write sensors/%c/#
user gannet-qos-1
topic write open/#
`), "acl")
		if err != nil {
			t.Fatal(err)
		}
		h.b.SetAuthorizer(acl)
		a := h.app("#")
		s := h.sensor("10.0.0.2:5000")
		s.send2(&sn.ConnectV2{CleanStart: true, PacketID: 1, KeepAlive: 60, ClientID: []byte("s1"),
			Will: true, WillTopicType: sn.TopicTypeName, WillTopic: []byte("secret/will"), WillPayload: []byte("x")})
		s.expect2(&sn.ConnackV2{PacketID: 1, ReasonCode: sn.NotAuthorized})
		s.connect2(&sn.ConnectV2{CleanStart: true, ClientID: []byte("s1")})
		step := uint64(1)
		check := func(what string) {
			t.Helper()
			step++
			if d := h.g.Stats().Denied; d != step {
				t.Errorf("after %s: Denied = %d; want %d", what, d, step)
			}
		}
		s.send2(&sn.RegisterV2{PacketID: 2, TopicName: []byte("secret/a")})
		s.expect2(&sn.RegackV2{PacketID: 2, ReasonCode: sn.NotAuthorized})
		check("REGISTER")
		s.send2(&sn.PublishV2{QoS: sn.QoS1, PacketID: 3, TopicType: sn.TopicTypePredefined, TopicAlias: 1, Data: []byte("x")})
		s.expect2(&sn.PubackV2{PacketID: 3, ReasonCode: sn.NotAuthorized})
		check("PUBLISH by predefined alias")
		s.send2(&sn.PublishV2{QoS: sn.QoS2, PacketID: 4, TopicType: sn.TopicTypeName, TopicName: []byte("secret/b"), Data: []byte("x")})
		s.expect2(&sn.PubrecV2{PacketID: 4, ReasonCode: sn.NotAuthorized})
		check("PUBLISH QoS 2 by name")
		s.send2(&sn.Pubwos{TopicType: sn.TopicTypeName, TopicName: []byte("secret/c"), Data: []byte("x")})
		s.expectNone(time.Second)
		check("PUBWOS from a connected client")
		// PUBWOS without a connection: as qos_minus_one.client_id.
		st := h.sensor("10.0.0.9:5000")
		st.send2(&sn.Pubwos{TopicType: sn.TopicTypeName, TopicName: []byte("secret/d"), Data: []byte("x")})
		st.send2(&sn.Pubwos{TopicType: sn.TopicTypePredefined, TopicAlias: 2, Data: []byte("ok")})
		a.expect("open/qosm1", "ok")
		check("PUBWOS without a connection")
		s.send2(&sn.PublishV2{QoS: sn.QoS1, PacketID: 5, TopicType: sn.TopicTypeName, TopicName: []byte("sensors/s1/t"), Data: []byte("ok")})
		s.expect2(&sn.PubackV2{PacketID: 5})
		a.expect("sensors/s1/t", "ok")
		a.expectNone()
	})
}

func TestV2Authentication(t *testing.T) {
	plain := func(u, p string) []byte { return []byte("\x00" + u + "\x00" + p) }
	basic := func(u, p string) []byte {
		b := []byte{0, byte(len(u))}
		b = append(b, u...)
		b = append(b, 0, byte(len(p)))
		return append(b, p...)
	}
	cases := []struct {
		name   string
		authn  gateway.Authenticator
		method string
		data   []byte
		want   sn.ReasonCode
	}{
		{"PLAIN right", fakeAuth{"alice", "pw"}, "PLAIN", plain("alice", "pw"), sn.Success},
		{"PLAIN wrong password", fakeAuth{"alice", "pw"}, "PLAIN", plain("alice", "nope"), sn.BadUserNameOrPassword},
		{"PLAIN other authzid", fakeAuth{"alice", "pw"}, "PLAIN", []byte("bob\x00alice\x00pw"), sn.BadUserNameOrPassword},
		{"PLAIN malformed", fakeAuth{"alice", "pw"}, "PLAIN", []byte("alice"), sn.BadUserNameOrPassword},
		{"MQTT-BASIC right", fakeAuth{"alice", "pw"}, "MQTT-BASIC", basic("alice", "pw"), sn.Success},
		{"MQTT-BASIC wrong", fakeAuth{"alice", "pw"}, "MQTT-BASIC", basic("alice", "x"), sn.BadUserNameOrPassword},
		{"unknown method", fakeAuth{"alice", "pw"}, "SCRAM-SHA-1", []byte("x"), sn.BadAuthenticationMethod},
		{"no password file", nil, "PLAIN", plain("alice", "pw"), sn.BadAuthenticationMethod},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runWith(t, gateway.Config{}, gateway.Options{Authenticator: tc.authn}, func(t *testing.T, h *harness) {
				acl, err := auth.ParseACL(strings.NewReader("topic read #\nuser alice\ntopic write alice/#\n"), "acl")
				if err != nil {
					t.Fatal(err)
				}
				h.b.SetAuthorizer(acl)
				s := h.sensor("10.0.0.2:5000")
				s.send2(&sn.ConnectV2{CleanStart: true, PacketID: 1, KeepAlive: 60, ClientID: []byte("dev"),
					Auth: true, AuthMethod: []byte(tc.method), AuthData: tc.data})
				s.expect2(&sn.ConnackV2{PacketID: 1, ReasonCode: tc.want})
				if tc.want != sn.Success {
					if _, ok := h.b.Session("dev"); ok {
						t.Errorf("a refused CONNECT left a core session")
					}
					if n := h.g.Stats().V2.AuthRefused; n != 1 {
						t.Errorf("V2.AuthRefused = %d; want 1", n)
					}
					return
				}
				// The authenticated user is the ACL user.
				s.send2(&sn.PublishV2{QoS: sn.QoS1, PacketID: 2, TopicType: sn.TopicTypeName, TopicName: []byte("alice/t"), Data: []byte("x")})
				s.expect2(&sn.PubackV2{PacketID: 2})
				// Re-authentication as the same user; then as another.
				s.send2(&sn.Auth{PacketID: 3, ReasonCode: sn.ReAuthenticate, Method: []byte(tc.method), Data: tc.data})
				s.expect2(&sn.Auth{PacketID: 3, ReasonCode: sn.Success, Method: []byte(tc.method)})
				s.send2(&sn.Auth{PacketID: 4, ReasonCode: sn.ReAuthenticate, Method: []byte("PLAIN"), Data: plain("alice", "bad")})
				s.expect2(&sn.DisconnectV2{HasReasonCode: true, ReasonCode: sn.BadUserNameOrPassword})
			})
		})
	}
}

// TestV2Forwarders: 2.0 clients behind a 2.0 forwarder (0xFC) are served
// as forwarded 1.2 clients are, each answered in an envelope with its own
// addressing information; Eclipse Paho's 0xFD form is not served
// (docs/mqttsn-2.md P3): dropped unanswered, counted in V2.Unsupported. A
// 1.2 forwarder (0xFE) at the same address is unaffected.
func TestV2Forwarders(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		a := h.app("up/#")
		f := h.sensor("10.0.0.2:5000")
		via := func(addr []byte, m sn.MessageV2) { f.send2(&sn.ForwarderEncapsulation{Addr: addr, Inner: m}) }
		from := func(addr []byte) sn.MessageV2 {
			t.Helper()
			fe, ok := f.recv2().(*sn.ForwarderEncapsulation)
			if !ok || string(fe.Addr) != string(addr) || fe.Paho {
				t.Fatalf("got %#v; want a 0xFC envelope for %x", fe, addr)
			}
			return fe.Inner
		}
		n1, n2 := []byte{0xAB, 0xCD}, []byte{0x01}
		for i, n := range [][]byte{n1, n2} {
			via(n, &sn.ConnectV2{CleanStart: true, PacketID: 1, KeepAlive: 60, ClientID: []byte(fmt.Sprint("node", i))})
			if ack, ok := from(n).(*sn.ConnackV2); !ok || ack.ReasonCode != sn.Success {
				t.Fatalf("node %d CONNECT answered %#v", i, ack)
			}
		}
		via(n1, &sn.SubscribeV2{QoS: sn.QoS1, PacketID: 2, TopicType: sn.TopicTypeName, TopicFilter: []byte("up/#")})
		if ack, ok := from(n1).(*sn.SubackV2); !ok || ack.ReasonCode != sn.GrantedQoS1 {
			t.Fatalf("SUBSCRIBE answered %#v", ack)
		}
		via(n2, &sn.PublishV2{QoS: sn.QoS1, PacketID: 2, TopicType: sn.TopicTypeName, TopicName: []byte("up/x"), Data: []byte("hi")})
		// node 2's PUBACK and node 1's delivery, in either order.
		var gotAck, gotPub bool
		for range 2 {
			fe, ok := f.recv2().(*sn.ForwarderEncapsulation)
			switch {
			case !ok:
				t.Fatalf("got %#v; want an envelope", fe)
			case string(fe.Addr) == string(n2):
				pa, ok := fe.Inner.(*sn.PubackV2)
				gotAck = ok && pa.PacketID == 2 && pa.ReasonCode == sn.Success
			case string(fe.Addr) == string(n1):
				p, ok := fe.Inner.(*sn.PublishV2)
				gotPub = ok && string(p.Data) == "hi"
				if ok {
					via(n1, &sn.PubackV2{PacketID: p.PacketID})
				}
			}
		}
		if !gotAck || !gotPub {
			t.Fatalf("PUBACK to node 2: %v, PUBLISH to node 1: %v; want both", gotAck, gotPub)
		}
		a.expect("up/x", "hi")
		// Eclipse Paho's 0xFD form.
		f.send2(&sn.ForwarderEncapsulation{Paho: true, Addr: []byte{0x00, 0x07},
			Inner: &sn.ConnectV2{CleanStart: true, PacketID: 1, KeepAlive: 60, ClientID: []byte("paho")}})
		f.expectNone(time.Second)
		if n := h.g.Stats().V2.Unsupported; n != 1 {
			t.Errorf("V2.Unsupported = %d; want 1", n)
		}
		if _, ok := h.b.Session("paho"); ok {
			t.Errorf("a 0xFD-forwarded CONNECT created a session")
		}
		// A 1.2 forwarder at the same address is served as before.
		f.node = []byte{0x09}
		f.connect("node12", true, 60)
	})
}

// TestV2RefusedReconnectAndPubrel pins mqttsn-2.md G2-9 and G2-14: a
// refused CONNECT from a connected client leaves its connection as it was,
// and a PUBREL for an unknown Packet Identifier is completed.
func TestV2RefusedReconnectAndPubrel(t *testing.T) {
	runWith(t, gateway.Config{}, gateway.Options{Authenticator: fakeAuth{"alice", "pw"}}, func(t *testing.T, h *harness) {
		s := h.sensor("10.0.0.2:5000")
		s.connect2(&sn.ConnectV2{CleanStart: true, ClientID: []byte("dev")})
		s.send2(&sn.ConnectV2{CleanStart: true, PacketID: 5, KeepAlive: 60, ClientID: []byte("dev"),
			Auth: true, AuthMethod: []byte("PLAIN"), AuthData: []byte("\x00alice\x00wrong")})
		s.expect2(&sn.ConnackV2{PacketID: 5, ReasonCode: sn.BadUserNameOrPassword})
		if info, _ := h.b.Session("dev"); info.State != mqttcore.StateActive {
			t.Errorf("core session %v after a refused re-CONNECT; want active", info.State)
		}
		s.send2(&sn.PingReqV2{PacketID: 6})
		s.expect2(&sn.PingRespV2{PacketID: 6})
		s.send2(&sn.PubrelV2{PacketID: 77})
		s.expect2(&sn.PubcompV2{PacketID: 77})
	})
}

// gateAuth is fakeAuth that checks only once release is closed. (release
// is made inside the test's synctest bubble, so that a worker blocked on it
// is durably blocked.)
type gateAuth struct {
	fakeAuth
	release chan struct{}
}

func (a *gateAuth) Authenticate(user string, password []byte) error {
	<-a.release
	return a.fakeAuth.Authenticate(user, password)
}

// TestV2AuthOffLoop: password checks run off the event loops, so a slow
// check holds up no other sensor, and at most max_pending_auth of them
// wait (plus one per worker being checked): one more CONNECT is refused
// with 0x89 "server busy", counted as a limit hit.
func TestV2AuthOffLoop(t *testing.T) {
	gate := &gateAuth{fakeAuth: fakeAuth{"alice", "pw"}}
	runWith(t, gateway.Config{Loops: 2, MaxPendingAuth: 1}, gateway.Options{Authenticator: gate}, func(t *testing.T, h *harness) {
		gate.release = make(chan struct{}) // before any CONNECT reaches a worker
		connect := func(id string) *sn.ConnectV2 {
			return &sn.ConnectV2{CleanStart: true, PacketID: 1, KeepAlive: 60, ClientID: []byte(id),
				Auth: true, AuthMethod: []byte("PLAIN"), AuthData: []byte("\x00alice\x00pw")}
		}
		var waiting []*sensor
		for i := range 3 { // two workers busy, one in the queue
			s := h.sensor(fmt.Sprintf("10.0.0.%d:5000", 10+i))
			s.send2(connect(fmt.Sprint("a", i)))
			synctest.Wait()
			waiting = append(waiting, s)
		}
		busy := h.sensor("10.0.0.20:5000")
		busy.send2(connect("b"))
		busy.expect2(&sn.ConnackV2{PacketID: 1, ReasonCode: sn.ServerBusy})
		if n := h.g.Stats().LimitHits[gateway.LimitPendingAuth]; n != 1 {
			t.Errorf("max_pending_auth hits = %d; want 1", n)
		}
		// The loops serve others meanwhile.
		other := h.sensor("10.0.0.30:5000")
		other.connect2(&sn.ConnectV2{CleanStart: true, ClientID: []byte("other")})
		other.send2(&sn.PingReqV2{PacketID: 2})
		other.expect2(&sn.PingRespV2{PacketID: 2})
		for _, s := range waiting {
			s.expectNone(time.Second) // no CONNACK before the check ends
		}
		close(gate.release)
		for _, s := range waiting {
			s.expect2(&sn.ConnackV2{PacketID: 1, ReasonCode: sn.Success})
		}
	})
}

// TestV2PahoForwarder pins docs/mqttsn-2.md P3: Eclipse Paho's 0xFD
// forwarder envelope is served from the forwarders paho_forwarders lists,
// each client answered in that form with its envelope echoed octet for
// octet; from any other source it is dropped and counted.
func TestV2PahoForwarder(t *testing.T) {
	run(t, gateway.Config{PahoForwarders: []string{"10.0.5.0/24"}}, func(t *testing.T, h *harness) {
		a := h.app("up/#")
		env := []byte{0x00, 0xAB, 0xCD} // Paho's gateway: Ctrl octet, Wireless Node Id
		connect := &sn.ConnectV2{CleanStart: true, PacketID: 1, KeepAlive: 60, ClientID: []byte("behind")}
		stranger := h.sensor("10.0.0.2:5000")
		stranger.send2(&sn.ForwarderEncapsulation{Paho: true, Addr: env, Inner: connect})
		stranger.expectNone(time.Second)
		if n := h.g.Stats().V2.Unsupported; n != 1 {
			t.Errorf("V2.Unsupported = %d; want 1", n)
		}
		f := h.sensor("10.0.5.7:5000")
		f.send2(&sn.ForwarderEncapsulation{Paho: true, Addr: env, Inner: connect})
		f.expect2(&sn.ForwarderEncapsulation{Paho: true, Addr: env, Inner: &sn.ConnackV2{PacketID: 1}})
		f.send2(&sn.ForwarderEncapsulation{Paho: true, Addr: env,
			Inner: &sn.PublishV2{QoS: sn.QoS1, PacketID: 2, TopicType: sn.TopicTypeName, TopicName: []byte("up/p"), Data: []byte("via paho")}})
		f.expect2(&sn.ForwarderEncapsulation{Paho: true, Addr: env, Inner: &sn.PubackV2{PacketID: 2}})
		a.expect("up/p", "via paho")
		if n := h.g.Stats().V2.PahoDeviations; n != 2 {
			t.Errorf("V2.PahoDeviations = %d; want 2 (two 0xFD envelopes served)", n)
		}
	})
}

// TestV2ProtectionRefused pins G2-27: Protection Encapsulation is not
// implemented; a protected packet gets DISCONNECT 0xF2 "protection packet
// not supported" and is counted in Stats.V2.Unsupported. From a sender
// without a connection nothing is created; a connected client's virtual
// connection ends (its will is published).
func TestV2ProtectionRefused(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		protected := func(inner []byte) *sn.ProtectionEncapsulation {
			return &sn.ProtectionEncapsulation{TagLength: 1, Scheme: 0x40, SenderID: [8]byte{1, 2, 3, 4, 5, 6, 7, 8},
				Random: [4]byte{9, 9, 9, 9}, Protected: append(inner, 0xAA, 0xBB, 0xCC, 0xDD)}
		}
		refusal := &sn.DisconnectV2{HasReasonCode: true, ReasonCode: sn.ProtectionNotSupported}

		// A sender without a connection: a protected CONNECT.
		stranger := h.sensor("10.0.0.3:5000")
		connect, _ := (&sn.ConnectV2{PacketID: 1, KeepAlive: 60, ClientID: []byte("p1")}).AppendBinary(nil)
		stranger.send2(protected(connect))
		stranger.expect2(refusal)
		synctest.Wait()
		if st := h.g.Stats(); st.V2.Unsupported != 1 || st.Clients != 0 {
			t.Fatalf("after a protected CONNECT: Unsupported %d, Clients %d; want 1, 0", st.V2.Unsupported, st.Clients)
		}

		// A connected client: a protected PINGREQ ends its connection.
		s := h.sensor("10.0.0.2:5000")
		s.connect2(&sn.ConnectV2{ClientID: []byte("dev"), Will: true, WillTopicType: sn.TopicTypeName,
			WillTopic: []byte("will/dev"), WillPayload: []byte("gone"), HasSessionExpiry: true, SessionExpiry: 3600})
		ping, _ := (&sn.PingReqV2{PacketID: 5}).AppendBinary(nil)
		s.send2(protected(ping))
		s.expect2(refusal)
		synctest.Wait() // the loop forgets the client after sending
		if st := h.g.Stats(); st.V2.Unsupported != 2 || st.Clients != 0 {
			t.Fatalf("after a protected PINGREQ: Unsupported %d, Clients %d; want 2, 0", st.V2.Unsupported, st.Clients)
		}
		if info, _ := h.b.Session("dev"); info.State != mqttcore.StateLost {
			t.Errorf("core session %v after the refusal; want lost", info.State)
		}
		// The next packet from that address needs a connection again.
		s.send2(&sn.PingReqV2{PacketID: 6})
		s.expect2(&sn.DisconnectV2{HasReasonCode: true, ReasonCode: sn.NoVirtualConnection})
	})
}

// TestV2AliasesSurviveTheConnection pins docs/mqttsn-2.md G2-3: session
// aliases are session state (CSD01). A CONNECT that resumes the session
// (Clean Start 0, within Session Expiry), even from another address after a
// DISCONNECT or a loss, gets them back, and PUBLISHes at QoS 0 and 1 by the
// old alias are delivered; a clean start or an expired session has none
// (0xF0 at QoS 1, a QoS 0 PUBLISH dropped and counted).
func TestV2AliasesSurviveTheConnection(t *testing.T) {
	connect := &sn.ConnectV2{ClientID: []byte("dev"), KeepAlive: 60, HasSessionExpiry: true, SessionExpiry: 600}
	setup := func(h *harness) (*app, *sensor, uint16) {
		a := h.app("#")
		s := h.sensor("10.0.0.2:5000")
		s.connect2(connect)
		alias := s.register2("t/a", 1)
		s.send2(&sn.PublishV2{QoS: sn.QoS1, PacketID: 2, TopicType: sn.TopicTypeSession, TopicAlias: alias, Data: []byte("1")})
		s.expect2(&sn.PubackV2{PacketID: 2})
		a.expect("t/a", "1")
		return a, s, alias
	}
	refused := func(t *testing.T, h *harness, a *app, s *sensor, alias uint16) {
		t.Helper()
		s.send2(&sn.PublishV2{QoS: sn.QoS1, PacketID: 3, TopicType: sn.TopicTypeSession, TopicAlias: alias, Data: []byte("2")})
		s.expect2(&sn.PubackV2{PacketID: 3, ReasonCode: sn.UnknownTopicAlias})
		before := h.g.Stats().InvalidTopic
		s.send2(&sn.PublishV2{TopicType: sn.TopicTypeSession, TopicAlias: alias, Data: []byte("3")})
		synctest.Wait()
		if n := h.g.Stats().InvalidTopic - before; n != 1 {
			t.Errorf("QoS 0 PUBLISH by a forgotten alias: InvalidTopic +%d; want +1", n)
		}
		a.expectNone()
		// By name it goes through, and REGISTER gives an alias again.
		s.send2(&sn.PublishV2{QoS: sn.QoS1, PacketID: 4, TopicType: sn.TopicTypeName, TopicName: []byte("t/a"), Data: []byte("4")})
		s.expect2(&sn.PubackV2{PacketID: 4})
		a.expect("t/a", "4")
		s.register2("t/a", 5)
	}
	for _, end := range []string{"disconnect", "loss", "oversleep"} {
		t.Run("resume after "+end, func(t *testing.T) {
			run(t, gateway.Config{}, func(t *testing.T, h *harness) {
				a, s, alias := setup(h)
				switch end {
				case "disconnect":
					s.send2(&sn.DisconnectV2{})
					synctest.Wait()
				case "loss":
					time.Sleep(91 * time.Second) // 1.5 x Keep Alive: the gateway declares it lost
					synctest.Wait()
				case "oversleep":
					s.send2(&sn.SleepReq{RetainTopicAliases: true, PacketID: 9, SleepDuration: 60})
					s.expect2(&sn.SleepResp{PacketID: 9})
					time.Sleep(91 * time.Second) // 1.5 x the sleep: overslept
					synctest.Wait()
				}
				if _, ok, _ := h.g.Sensor(context.Background(), "dev"); ok {
					t.Fatal("the gateway still holds the client after its connection ended")
				}
				s2 := h.sensor("10.0.0.3:5000") // another address: nothing of the old client is left
				if ack := s2.connect2(connect); !ack.SessionPresent {
					t.Fatalf("CONNACK without Session Present within the session expiry")
				}
				s2.send2(&sn.PublishV2{TopicType: sn.TopicTypeSession, TopicAlias: alias, Data: []byte("q0")})
				a.expect("t/a", "q0")
				s2.send2(&sn.PublishV2{QoS: sn.QoS1, PacketID: 3, TopicType: sn.TopicTypeSession, TopicAlias: alias, Data: []byte("q1")})
				s2.expect2(&sn.PubackV2{PacketID: 3})
				a.expect("t/a", "q1")
				if n := h.g.Stats().V2.AliasesResumed; n != 1 {
					t.Errorf("Stats.V2.AliasesResumed = %d; want 1", n)
				}
			})
		})
	}
	t.Run("clean start", func(t *testing.T) {
		run(t, gateway.Config{}, func(t *testing.T, h *harness) {
			a, s, alias := setup(h)
			s.send2(&sn.DisconnectV2{})
			synctest.Wait()
			clean := *connect
			clean.CleanStart = true
			if ack := s.connect2(&clean); ack.SessionPresent {
				t.Fatalf("CONNACK with Session Present after Clean Start 1")
			}
			refused(t, h, a, s, alias)
		})
	})
	t.Run("expired", func(t *testing.T) {
		run(t, gateway.Config{}, func(t *testing.T, h *harness) {
			a, s, alias := setup(h)
			s.send2(&sn.DisconnectV2{})
			synctest.Wait()
			time.Sleep(601 * time.Second) // past Session Expiry 600 s
			synctest.Wait()
			if ack := s.connect2(connect); ack.SessionPresent {
				t.Fatalf("CONNACK with Session Present after the session expired")
			}
			refused(t, h, a, s, alias)
			if n := h.g.Stats().V2.AliasesResumed; n != 0 {
				t.Errorf("Stats.V2.AliasesResumed = %d; want 0", n)
			}
		})
	})
}

// TestTopicIDsAfterA12Reconnect pins that 1.2 is unchanged by G2-3: a 1.2
// sensor's topic ids start afresh with every CONNECT (spec-interpretation
// G6), also when it resumes a persistent session after a DISCONNECT.
func TestTopicIDsAfterA12Reconnect(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		s := h.sensor("10.0.0.2:5000")
		s.connect("dev12", false, 60)
		id := s.register("t/a", 1)
		s.send(&sn.Disconnect{})
		s.expect(&sn.Disconnect{})
		s2 := h.sensor("10.0.0.3:5000")
		s2.connect("dev12", false, 60)
		s2.send(&sn.Publish{QoS: sn.QoS1, TopicID: id, MsgID: 2, Data: []byte("x")})
		s2.expect(&sn.Puback{TopicID: id, MsgID: 2, ReturnCode: sn.RejectedInvalidTopicID})
		if n := h.g.Stats().V2.AliasesResumed; n != 0 {
			t.Errorf("Stats.V2.AliasesResumed = %d; want 0", n)
		}
	})
}

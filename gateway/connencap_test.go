package gateway_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// TestV2ConnectionEncapsulation: a 2.0 sensor whose address changed
// resumes its virtual connection from the new address through a
// Connection Encapsulation only when its CONNECT allowed network address
// changes; otherwise, and for a client id nobody holds, the new address
// hears DISCONNECT "no virtual connection" and the session stays where it
// was.
func TestV2ConnectionEncapsulation(t *testing.T) {
	wrap := func(id string, inner sn.MessageV2) *sn.ConnEncapsulation {
		return &sn.ConnEncapsulation{ClientID: []byte(id), Inner: inner}
	}
	// With four loops, 10.0.0.2:5000 and 10.0.0.77:6000 belong to
	// different loops and 10.0.0.77:6001 to the same one (loopIndex): both
	// paths of a re-bind run.
	for _, tc := range []struct {
		allow   bool
		newAddr string
	}{{true, "10.0.0.77:6000"}, {true, "10.0.0.77:6001"}, {false, "10.0.0.77:6000"}} {
		allow := tc.allow
		name := map[bool]string{true: "allowed", false: "not allowed"}[allow]
		t.Run(name+"/active/"+tc.newAddr, func(t *testing.T) {
			run(t, gateway.Config{Loops: 4}, func(t *testing.T, h *harness) {
				old := h.sensor("10.0.0.2:5000")
				old.connect2(&sn.ConnectV2{ClientID: []byte("dev"), AllowAddressChange: allow,
					HasSessionExpiry: true, SessionExpiry: 600,
					Will: true, WillTopicType: sn.TopicTypeName, WillTopic: []byte("will/dev"), WillPayload: []byte("gone")})
				alias := old.register2("up/dev", 2)
				old.subscribe2(&sn.SubscribeV2{QoS: sn.QoS1, TopicType: sn.TopicTypeName, PacketID: 3, TopicFilter: []byte("cmd/dev")})
				a := h.app("up/#")
				w := h.app("will/#")
				moved := h.sensor(tc.newAddr)
				// The session alias travels with the virtual connection.
				moved.send2(wrap("dev", &sn.PublishV2{QoS: sn.QoS1, PacketID: 4, TopicType: sn.TopicTypeSession, TopicAlias: alias, Data: []byte("hi")}))
				if !allow {
					moved.expect2(&sn.DisconnectV2{HasReasonCode: true, ReasonCode: sn.NoVirtualConnection})
					a.expectNone()
					old.send2(&sn.PingReqV2{PacketID: 5})
					old.expect2(&sn.PingRespV2{PacketID: 5})
					if n := h.g.Stats().V2.Rebound; n != 0 {
						t.Errorf("V2.Rebound = %d; want 0", n)
					}
					return
				}
				moved.expect2(&sn.PubackV2{PacketID: 4})
				a.expect("up/dev", "hi")
				// Deliveries go to the new address, unwrapped packets from
				// it are the client's, and the old address is forgotten.
				h.publish("cmd/dev", "to new", mqttcore.AtLeastOnce, false)
				p, ok := moved.recv2().(*sn.PublishV2)
				if !ok || string(p.Data) != "to new" {
					t.Fatalf("at the new address got %#v; want the delivery", p)
				}
				moved.send2(&sn.PubackV2{PacketID: p.PacketID})
				moved.send2(&sn.PingReqV2{PacketID: 6})
				moved.expect2(&sn.PingRespV2{PacketID: 6})
				old.expectNone(time.Second)
				old.send2(&sn.PingReqV2{PacketID: 7})
				old.expect2(&sn.DisconnectV2{HasReasonCode: true, ReasonCode: sn.NoVirtualConnection})
				if info, _ := h.b.Session("dev"); info.State != mqttcore.StateActive {
					t.Errorf("core session %v; want active", info.State)
				}
				w.expectNone() // the move published no will
				if n := h.g.Stats().V2.Rebound; n != 1 {
					t.Errorf("V2.Rebound = %d; want 1", n)
				}
			})
		})
	}
	for _, allow := range []bool{true, false} {
		name := map[bool]string{true: "allowed", false: "not allowed"}[allow]
		t.Run(name+"/asleep", func(t *testing.T) {
			run(t, gateway.Config{Loops: 4}, func(t *testing.T, h *harness) {
				old := h.sensor("10.0.0.2:5000")
				old.connect2(&sn.ConnectV2{ClientID: []byte("dev"), AllowAddressChange: allow, HasSessionExpiry: true, SessionExpiry: 600})
				old.subscribe2(&sn.SubscribeV2{QoS: sn.QoS1, TopicType: sn.TopicTypeName, PacketID: 2, TopicFilter: []byte("cmd/dev")})
				old.send2(&sn.SleepReq{RetainTopicAliases: true, PacketID: 3, SleepDuration: 600})
				old.expect2(&sn.SleepResp{PacketID: 3})
				h.publish("cmd/dev", "queued", mqttcore.AtLeastOnce, false)
				moved := h.sensor("10.0.0.77:6000")
				moved.send2(wrap("dev", &sn.PingReqV2{PacketID: 9}))
				if !allow {
					moved.expect2(&sn.DisconnectV2{HasReasonCode: true, ReasonCode: sn.NoVirtualConnection})
					if info, _ := h.b.Session("dev"); info.State != mqttcore.StateAsleep || info.Queued != 1 {
						t.Errorf("core session %v with %d queued; want asleep with 1", info.State, info.Queued)
					}
					return
				}
				p, ok := moved.recv2().(*sn.PublishV2)
				if !ok || string(p.Data) != "queued" {
					t.Fatalf("waking at the new address got %#v; want the queued message", p)
				}
				moved.send2(&sn.PubackV2{PacketID: p.PacketID})
				moved.expect2(&sn.PingRespV2{PacketID: 9})
				if info, _ := h.b.Session("dev"); info.State != mqttcore.StateAsleep {
					t.Errorf("core session %v; want asleep again", info.State)
				}
			})
		})
	}
	// A re-bind whose wrapped packet leaves the client asleep: the WAKEUP
	// for the next message goes to the new address (G2-26).
	t.Run("allowed/asleep/wakeup", func(t *testing.T) {
		run(t, gateway.Config{Loops: 4}, func(t *testing.T, h *harness) {
			old := h.sensor("10.0.0.2:5000")
			old.connect2(&sn.ConnectV2{ClientID: []byte("dev"), AllowAddressChange: true, HasSessionExpiry: true, SessionExpiry: 600})
			old.subscribe2(&sn.SubscribeV2{QoS: sn.QoS1, TopicType: sn.TopicTypeName, PacketID: 2, TopicFilter: []byte("cmd/dev")})
			old.send2(&sn.SleepReq{RetainTopicAliases: true, PacketID: 3, SleepDuration: 600})
			old.expect2(&sn.SleepResp{PacketID: 3})
			moved := h.sensor("10.0.0.77:6000")
			moved.send2(wrap("dev", &sn.PublishV2{TopicType: sn.TopicTypeName, TopicName: []byte("up/dev"), Data: []byte("moved")}))
			synctest.Wait()
			if n := h.g.Stats().V2.Rebound; n != 1 {
				t.Fatalf("V2.Rebound = %d; want 1", n)
			}
			if info, _ := h.b.Session("dev"); info.State != mqttcore.StateAsleep {
				t.Fatalf("core session %v after the re-bind; want still asleep", info.State)
			}
			h.publish("cmd/dev", "for you", mqttcore.AtLeastOnce, false)
			moved.expect2(&sn.Wakeup{})
			old.expectNone(time.Second)
		})
	})
	t.Run("rules", func(t *testing.T) {
		run(t, gateway.Config{}, func(t *testing.T, h *harness) {
			s := h.sensor("10.0.0.2:5000")
			s.connect2(&sn.ConnectV2{ClientID: []byte("dev"), AllowAddressChange: true})
			// From the client's own address the envelope is unwrapped.
			s.send2(wrap("dev", &sn.PingReqV2{PacketID: 2}))
			s.expect2(&sn.PingRespV2{PacketID: 2})
			// Around a packet the draft does not list: a protocol error.
			st := h.sensor("10.0.0.3:5000")
			st.send2(wrap("dev", &sn.PubackV2{PacketID: 1}))
			st.expect2(&sn.DisconnectV2{HasReasonCode: true, ReasonCode: sn.NoVirtualConnection})
			// A client id nobody holds.
			st.send2(wrap("nobody", &sn.PingReqV2{PacketID: 3}))
			st.expect2(&sn.DisconnectV2{HasReasonCode: true, ReasonCode: sn.NoVirtualConnection})
			s.send2(wrap("dev", &sn.PubackV2{PacketID: 4}))
			s.expect2(&sn.DisconnectV2{HasReasonCode: true, ReasonCode: sn.ProtocolError})
		})
	})
}

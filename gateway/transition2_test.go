package gateway_test

import (
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// TestTransitionsV2 drives every transition of a 2.0 client's session state
// (the same machine as 1.2's, state.go, entered and left by 2.0 packets:
// CSD01 4.14) at the packet level, and checks each by what the sensor
// receives, what the core session is, and whether the will was published.
// The harness fails any step that leaves a client in an illegal state.
func TestTransitionsV2(t *testing.T) {
	will := func(id string) *sn.ConnectV2 {
		return &sn.ConnectV2{ClientID: []byte(id), Will: true, WillTopicType: sn.TopicTypeName,
			WillTopic: []byte("will/" + id), WillPayload: []byte("gone"),
			HasSessionExpiry: true, SessionExpiry: 3600}
	}
	active := func(t *testing.T, h *harness) *sensor {
		s := h.sensor("10.0.0.2:5000")
		s.connect2(will("dev1"))
		s.subscribe2(&sn.SubscribeV2{QoS: sn.QoS1, TopicType: sn.TopicTypeName, PacketID: 2, TopicFilter: []byte("cmd/dev1")})
		return s
	}
	asleep := func(t *testing.T, h *harness) *sensor {
		s := active(t, h)
		s.send2(&sn.SleepReq{RetainTopicAliases: true, PacketID: 3, SleepDuration: 600})
		s.expect2(&sn.SleepResp{PacketID: 3})
		return s
	}
	cases := []struct {
		name      string
		cfg       gateway.Config
		setup     func(t *testing.T, h *harness) *sensor
		step      func(t *testing.T, h *harness, s *sensor)
		state     mqttcore.State // the core session afterwards
		gone      bool           // the core session is gone
		willFired bool
	}{
		{
			name:  "none -> active (CONNECT)",
			setup: func(t *testing.T, h *harness) *sensor { return h.sensor("10.0.0.2:5000") },
			step: func(t *testing.T, h *harness, s *sensor) {
				if ack := s.connect2(will("dev1")); ack.SessionPresent {
					t.Errorf("CONNACK Session Present for a new session")
				}
			},
			state: mqttcore.StateActive,
		},
		{
			name:  "active -> active (CONNECT again, Clean Start 0: will of the old connection published)",
			setup: active,
			step: func(t *testing.T, h *harness, s *sensor) {
				if ack := s.connect2(will("dev1")); !ack.SessionPresent {
					t.Errorf("CONNACK without Session Present for a resumed session")
				}
			},
			state: mqttcore.StateActive, willFired: true,
		},
		{
			name:  "active -> disconnected (DISCONNECT: never answered, will discarded)",
			setup: active,
			step: func(t *testing.T, h *harness, s *sensor) {
				s.send2(&sn.DisconnectV2{})
				s.expectNone(time.Second)
			},
			state: mqttcore.StateDisconnected,
		},
		{
			name:  "active -> disconnected (DISCONNECT 0x04: will published)",
			setup: active,
			step: func(t *testing.T, h *harness, s *sensor) {
				s.send2(&sn.DisconnectV2{HasReasonCode: true, ReasonCode: sn.DisconnectWithWill})
				s.expectNone(time.Second)
			},
			state: mqttcore.StateLost, willFired: true,
		},
		{
			name:  "active -> disconnected (Eclipse Paho's 2-octet DISCONNECT)",
			setup: active,
			step: func(t *testing.T, h *harness, s *sensor) {
				s.sendRaw([]byte{0x02, 0x0E})
				s.expectNone(time.Second)
				if n := h.g.Stats().V2.PahoDeviations; n != 1 {
					t.Errorf("PahoDeviations = %d; want 1", n)
				}
			},
			state: mqttcore.StateDisconnected,
		},
		{
			name: "active -> gone (DISCONNECT with Session Expiry 0)",
			setup: func(t *testing.T, h *harness) *sensor {
				s := active(t, h)
				return s
			},
			step: func(t *testing.T, h *harness, s *sensor) {
				s.send2(&sn.DisconnectV2{HasSessionExpiry: true, SessionExpiry: 0})
				s.expectNone(time.Second)
			},
			gone: true,
		},
		{
			name: "active -> lost (DISCONNECT raising Session Expiry from 0: protocol error)",
			setup: func(t *testing.T, h *harness) *sensor {
				s := h.sensor("10.0.0.2:5000")
				c := will("dev1")
				c.HasSessionExpiry = false
				s.connect2(c)
				return s
			},
			step: func(t *testing.T, h *harness, s *sensor) {
				s.send2(&sn.DisconnectV2{HasSessionExpiry: true, SessionExpiry: 60})
				s.expect2(&sn.DisconnectV2{HasReasonCode: true, ReasonCode: sn.ProtocolError})
			},
			gone: true, willFired: true,
		},
		{
			name:  "active -> lost (keep-alive: 1.5 x Keep Alive without a packet)",
			setup: active,
			step: func(t *testing.T, h *harness, s *sensor) {
				time.Sleep(89 * time.Second) // 1.5 x 60 s is 90 s
				if info, _ := h.b.Session("dev1"); info.State != mqttcore.StateActive {
					t.Fatalf("lost after 89 s; want active until 90 s")
				}
				time.Sleep(2 * time.Second)
			},
			state: mqttcore.StateLost, willFired: true,
		},
		{
			name:  "active -> asleep (SLEEPREQ)",
			setup: active,
			step: func(t *testing.T, h *harness, s *sensor) {
				s.send2(&sn.SleepReq{RetainTopicAliases: true, PacketID: 3, SleepDuration: 600})
				s.expect2(&sn.SleepResp{PacketID: 3})
			},
			state: mqttcore.StateAsleep,
		},
		{
			name:  "asleep -> asleep (SLEEPREQ again restarts the sleep timer)",
			setup: asleep,
			step: func(t *testing.T, h *harness, s *sensor) {
				time.Sleep(800 * time.Second) // within 1.5 x 600 s
				s.send2(&sn.SleepReq{RetainTopicAliases: true, PacketID: 4, SleepDuration: 600})
				s.expect2(&sn.SleepResp{PacketID: 4})
				time.Sleep(800 * time.Second) // the first deadline has passed
			},
			state: mqttcore.StateAsleep,
		},
		{
			name:  "asleep -> awake -> asleep (PINGREQ, queued message, PINGRESP)",
			setup: asleep,
			step: func(t *testing.T, h *harness, s *sensor) {
				h.publish("cmd/dev1", "one", mqttcore.AtLeastOnce, false)
				s.expect2(&sn.Wakeup{}) // G2-26
				s.send2(&sn.PingReqV2{PacketID: 9})
				p, ok := s.recv2().(*sn.PublishV2)
				if !ok || string(p.Data) != "one" || p.QoS != sn.QoS1 {
					t.Fatalf("after PINGREQ got %#v; want the queued PUBLISH", p)
				}
				s.expectNone(time.Second) // no PINGRESP before the PUBACK
				s.send2(&sn.PubackV2{PacketID: p.PacketID})
				s.expect2(&sn.PingRespV2{PacketID: 9})
			},
			state: mqttcore.StateAsleep,
		},
		{
			name:  "asleep -> asleep (a message queued: one WAKEUP per sleep, G2-26)",
			setup: asleep,
			step: func(t *testing.T, h *harness, s *sensor) {
				h.publish("cmd/dev1", "one", mqttcore.AtLeastOnce, false)
				s.expect2(&sn.Wakeup{})
				h.publish("cmd/dev1", "two", mqttcore.AtMostOnce, false)
				s.expectNone(time.Second) // the hint was given: no second WAKEUP
				if n := h.g.Stats().V2.Wakeups; n != 1 {
					t.Errorf("Stats.V2.Wakeups = %d; want 1", n)
				}
				// Wake, take both, sleep again (PINGRESP): the next message
				// is announced again.
				s.send2(&sn.PingReqV2{PacketID: 9})
				p, ok := s.recv2().(*sn.PublishV2)
				if !ok || string(p.Data) != "one" {
					t.Fatalf("after PINGREQ got %#v; want the first queued PUBLISH", p)
				}
				s.send2(&sn.PubackV2{PacketID: p.PacketID})
				if p, ok := s.recv2().(*sn.PublishV2); !ok || string(p.Data) != "two" {
					t.Fatalf("got %#v; want the second queued PUBLISH", p)
				}
				s.expect2(&sn.PingRespV2{PacketID: 9})
				h.publish("cmd/dev1", "three", mqttcore.AtLeastOnce, false)
				s.expect2(&sn.Wakeup{})
				if n := h.g.Stats().V2.Wakeups; n != 2 {
					t.Errorf("Stats.V2.Wakeups = %d; want 2", n)
				}
			},
			state: mqttcore.StateAsleep,
		},
		{
			name:  "active -> active (a message for an active client: no WAKEUP)",
			setup: active,
			step: func(t *testing.T, h *harness, s *sensor) {
				h.publish("cmd/dev1", "one", mqttcore.AtMostOnce, false)
				if p, ok := s.recv2().(*sn.PublishV2); !ok || string(p.Data) != "one" {
					t.Fatalf("got %#v; want the PUBLISH, no WAKEUP", p)
				}
				if n := h.g.Stats().V2.Wakeups; n != 0 {
					t.Errorf("Stats.V2.Wakeups = %d; want 0", n)
				}
			},
			state: mqttcore.StateActive,
		},
		{
			name:  "asleep -> active (CONNECT)",
			setup: asleep,
			step:  func(t *testing.T, h *harness, s *sensor) { s.connect2(will("dev1")) },
			state: mqttcore.StateActive,
		},
		{
			name:  "asleep -> disconnected (DISCONNECT)",
			setup: asleep,
			step: func(t *testing.T, h *harness, s *sensor) {
				s.send2(&sn.DisconnectV2{})
				s.expectNone(time.Second)
			},
			state: mqttcore.StateDisconnected,
		},
		{
			name:  "asleep -> lost (1.5 x Sleep Duration without a packet)",
			setup: asleep,
			step: func(t *testing.T, h *harness, s *sensor) {
				time.Sleep(899 * time.Second)
				if info, _ := h.b.Session("dev1"); info.State != mqttcore.StateAsleep {
					t.Fatalf("state %v after 899 s; want asleep until 900 s", info.State)
				}
				time.Sleep(2 * time.Second)
			},
			state: mqttcore.StateLost, willFired: true,
		},
		{
			name:  "awake -> lost (no PUBACK after the retries)",
			cfg:   gateway.Config{RetryInterval: 5 * time.Second, MaxRetries: 1},
			setup: asleep,
			step: func(t *testing.T, h *harness, s *sensor) {
				h.publish("cmd/dev1", "one", mqttcore.AtLeastOnce, false)
				s.expect2(&sn.Wakeup{}) // G2-26
				s.send2(&sn.PingReqV2{PacketID: 9})
				s.recv2()
				s.recv2() // the retransmission
				time.Sleep(6 * time.Second)
			},
			state: mqttcore.StateLost, willFired: true,
		},
		{
			name:  "awake -> active (CONNECT during the flush)",
			setup: asleep,
			step: func(t *testing.T, h *harness, s *sensor) {
				h.publish("cmd/dev1", "one", mqttcore.AtLeastOnce, false)
				s.expect2(&sn.Wakeup{}) // G2-26
				s.send2(&sn.PingReqV2{PacketID: 9})
				s.recv2() // the PUBLISH, left unacknowledged
				c := will("dev1")
				c.Will = false
				s.connect2(c) // the old connection's will is published (G2-10)
				p, ok := s.recv2().(*sn.PublishV2)
				if !ok || string(p.Data) != "one" {
					t.Fatalf("after CONNECT got %#v; want the unacknowledged message again", p)
				}
			},
			state: mqttcore.StateActive, willFired: true,
		},
		{
			name:  "awake -> disconnected (DISCONNECT during the flush)",
			setup: asleep,
			step: func(t *testing.T, h *harness, s *sensor) {
				h.publish("cmd/dev1", "one", mqttcore.AtLeastOnce, false)
				s.expect2(&sn.Wakeup{}) // G2-26
				s.send2(&sn.PingReqV2{PacketID: 9})
				s.recv2()
				s.send2(&sn.DisconnectV2{})
				s.expectNone(time.Second)
			},
			state: mqttcore.StateDisconnected,
		},
		{
			name:  "active -> disconnected (taken over: DISCONNECT 0x8E)",
			setup: active,
			step: func(t *testing.T, h *harness, s *sensor) {
				other := h.sensor("10.0.0.3:5000")
				c := will("dev1")
				c.Will = false
				other.connect2(c)
				s.expect2(&sn.DisconnectV2{HasReasonCode: true, ReasonCode: sn.SessionTakenOver})
			},
			state: mqttcore.StateActive, willFired: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run(t, tc.cfg, func(t *testing.T, h *harness) {
				a := h.app("will/#")
				s := tc.setup(t, h)
				a.expectNone()
				tc.step(t, h, s)
				info, ok := h.b.Session("dev1")
				switch {
				case tc.gone && ok:
					t.Errorf("core session %+v; want none", info)
				case !tc.gone && !ok:
					t.Errorf("no core session; want %v", tc.state)
				case !tc.gone && info.State != tc.state:
					t.Errorf("core session %v; want %v", info.State, tc.state)
				}
				if tc.willFired {
					a.expect("will/dev1", "gone")
				} else {
					a.expectNone()
				}
			})
		})
	}
}

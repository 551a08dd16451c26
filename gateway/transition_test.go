package gateway_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// logTap collects the gateway's log output.
type logTap struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logTap) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logTap) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestSessionTransitions drives every transition of the session state
// machine (gateway/state.go) at the packet level and checks that the
// gateway logged it at Debug as "dimension from -> to", in order, after the
// step that causes it; and that no event left a client in a combination
// the table of legal states does not hold. The State dimension's
// transitions are also tested for their effects in state_test.go.
func TestSessionTransitions(t *testing.T) {
	// A sleeping client with a QoS 1 subscription to cmd/dev1.
	asleep := func(t *testing.T, h *harness) *sensor {
		s := h.sensor("10.0.0.2:5000")
		s.connect("dev1", false, 60)
		s.subscribe("cmd/dev1", sn.QoS1, 1)
		s.send(&sn.Disconnect{HasDuration: true, Duration: 600})
		s.expect(&sn.Disconnect{})
		return s
	}
	// An awake client with one unacknowledged QoS 1 PUBLISH.
	awake := func(t *testing.T, h *harness) *sensor {
		s := asleep(t, h)
		h.publish("cmd/dev1", "one", mqttcore.AtLeastOnce, false)
		s.send(&sn.PingReq{ClientID: []byte("dev1")})
		s.recv()
		return s
	}
	// An active client with an exact-name subscription at qos.
	subscribed := func(t *testing.T, h *harness, q sn.QoS) *sensor {
		s := h.sensor("10.0.0.2:5000")
		s.connect("dev1", true, 600)
		s.subscribe("cmd/dev1", q, 1)
		return s
	}
	cases := []struct {
		name string
		cfg  gateway.Config
		// setup brings the client to the state before the transition;
		// step causes it. Only lines logged during step count.
		setup func(t *testing.T, h *harness) *sensor
		step  func(t *testing.T, h *harness, s *sensor)
		want  []string
	}{
		// The state dimension (MQTT-SN 1.2 §6.14).
		{
			name:  "state active -> asleep",
			setup: func(t *testing.T, h *harness) *sensor { return subscribed(t, h, sn.QoS0) },
			step: func(t *testing.T, h *harness, s *sensor) {
				s.send(&sn.Disconnect{HasDuration: true, Duration: 60})
				s.expect(&sn.Disconnect{})
			},
			want: []string{"attachment attached -> detached", "state active -> asleep"},
		},
		{
			name:  "state active -> disconnected",
			setup: func(t *testing.T, h *harness) *sensor { return subscribed(t, h, sn.QoS0) },
			step: func(t *testing.T, h *harness, s *sensor) {
				s.send(&sn.Disconnect{})
				s.expect(&sn.Disconnect{})
			},
			want: []string{"attachment attached -> detached", "state active -> disconnected", "presence listed -> removed"},
		},
		{
			name: "state active -> lost",
			setup: func(t *testing.T, h *harness) *sensor {
				s := h.sensor("10.0.0.2:5000")
				s.connect("dev1", true, 10)
				return s
			},
			step: func(t *testing.T, h *harness, s *sensor) {
				time.Sleep(16 * time.Second) // keep-alive plus half
			},
			want: []string{"attachment attached -> detached", "state active -> lost", "presence listed -> removed"},
		},
		{
			name:  "state asleep -> awake -> asleep",
			setup: asleep,
			step: func(t *testing.T, h *harness, s *sensor) {
				s.send(&sn.PingReq{ClientID: []byte("dev1")})
				s.expect(&sn.PingResp{})
			},
			want: []string{"attachment detached -> attached", "state asleep -> awake",
				"attachment attached -> detached", "state awake -> asleep"},
		},
		{
			name:  "state asleep -> active",
			setup: asleep,
			step:  func(t *testing.T, h *harness, s *sensor) { s.connect("dev1", false, 60) },
			want:  []string{"state asleep -> active", "attachment detached -> attached"},
		},
		{
			name:  "state asleep -> disconnected",
			setup: asleep,
			step: func(t *testing.T, h *harness, s *sensor) {
				s.send(&sn.Disconnect{})
				s.expect(&sn.Disconnect{})
			},
			want: []string{"attachment detached -> attached", "attachment attached -> detached",
				"state asleep -> disconnected", "presence listed -> removed"},
		},
		{
			name:  "state asleep -> lost",
			setup: asleep,
			step:  func(t *testing.T, h *harness, s *sensor) { time.Sleep(661 * time.Second) },
			want:  []string{"state asleep -> lost", "presence listed -> removed"},
		},
		{
			name:  "state awake -> active",
			setup: awake,
			step:  func(t *testing.T, h *harness, s *sensor) { s.connect("dev1", false, 60) },
			want:  []string{"exchange publish -> none", "state awake -> active"},
		},
		{
			name:  "state awake -> disconnected",
			setup: awake,
			step: func(t *testing.T, h *harness, s *sensor) {
				s.send(&sn.Disconnect{})
				s.expect(&sn.Disconnect{})
			},
			want: []string{"attachment attached -> detached", "state awake -> disconnected", "presence listed -> removed"},
		},
		{
			name:  "state awake -> lost",
			cfg:   gateway.Config{RetryInterval: 5 * time.Second, MaxRetries: 1},
			setup: awake,
			step:  func(t *testing.T, h *harness, s *sensor) { time.Sleep(11 * time.Second) },
			want:  []string{"attachment attached -> detached", "state awake -> lost", "presence listed -> removed"},
		},
		// The will dialogue (§6.3).
		{
			name:  "dialogue none -> will_topic -> will_msg -> none",
			setup: func(t *testing.T, h *harness) *sensor { return h.sensor("10.0.0.2:5000") },
			step:  func(t *testing.T, h *harness, s *sensor) { s.connectWithWill("dev1", true, 60) },
			want: []string{"dialogue none -> will_topic", "dialogue will_topic -> will_msg",
				"dialogue will_msg -> none", "attachment detached -> attached"},
		},
		{
			name: "dialogue will_topic -> none (empty WILLTOPIC)",
			setup: func(t *testing.T, h *harness) *sensor {
				s := h.sensor("10.0.0.2:5000")
				s.send(&sn.Connect{Will: true, CleanSession: true, Duration: 60, ClientID: []byte("dev1")})
				s.expect(&sn.WillTopicReq{})
				return s
			},
			step: func(t *testing.T, h *harness, s *sensor) {
				s.send(&sn.WillTopic{})
				s.expect(&sn.Connack{ReturnCode: sn.Accepted})
			},
			want: []string{"dialogue will_topic -> none", "attachment detached -> attached"},
		},
		{
			name: "dialogue will_msg -> will_topic (CONNECT again)",
			setup: func(t *testing.T, h *harness) *sensor {
				s := h.sensor("10.0.0.2:5000")
				s.send(&sn.Connect{Will: true, CleanSession: true, Duration: 60, ClientID: []byte("dev1")})
				s.expect(&sn.WillTopicReq{})
				s.send(&sn.WillTopic{Topic: []byte("will/dev1")})
				s.expect(&sn.WillMsgReq{})
				return s
			},
			step: func(t *testing.T, h *harness, s *sensor) {
				s.send(&sn.Connect{Will: true, CleanSession: true, Duration: 60, ClientID: []byte("dev1")})
				s.expect(&sn.WillTopicReq{})
			},
			want: []string{"dialogue will_msg -> will_topic"},
		},
		{
			name: "dialogue will_topic -> none (abandoned)",
			cfg:  gateway.Config{RetryInterval: 5 * time.Second, MaxRetries: 1},
			setup: func(t *testing.T, h *harness) *sensor {
				s := h.sensor("10.0.0.2:5000")
				s.send(&sn.Connect{Will: true, CleanSession: true, Duration: 60, ClientID: []byte("dev1")})
				s.expect(&sn.WillTopicReq{})
				return s
			},
			step: func(t *testing.T, h *harness, s *sensor) {
				s.expect(&sn.WillTopicReq{})
				time.Sleep(6 * time.Second)
			},
			want: []string{"dialogue will_topic -> none", "state active -> lost", "presence listed -> removed"},
		},
		// The attachment to the core session.
		{
			name:  "attachment attached -> detached (taken over)",
			setup: func(t *testing.T, h *harness) *sensor { return subscribed(t, h, sn.QoS0) },
			step: func(t *testing.T, h *harness, s *sensor) {
				h.sensor("10.0.0.2:5001").connect("dev1", false, 60)
				s.expect(&sn.Disconnect{})
			},
			want: []string{"attachment attached -> detached", "state active -> disconnected", "presence listed -> removed"},
		},
		// The exchange in progress (§6.5, §6.10).
		{
			name:  "exchange none -> publish -> none",
			setup: func(t *testing.T, h *harness) *sensor { return subscribed(t, h, sn.QoS1) },
			step: func(t *testing.T, h *harness, s *sensor) {
				h.publish("cmd/dev1", "x", mqttcore.AtLeastOnce, false)
				p := s.recv().(*sn.Publish)
				s.send(&sn.Puback{TopicID: p.TopicID, MsgID: p.MsgID})
				synctest.Wait()
			},
			want: []string{"exchange none -> publish", "exchange publish -> none"},
		},
		{
			name: "exchange none -> register -> none",
			setup: func(t *testing.T, h *harness) *sensor {
				s := h.sensor("10.0.0.2:5000")
				s.connect("dev1", true, 600)
				s.subscribe("cmd/#", sn.QoS1, 1)
				return s
			},
			step: func(t *testing.T, h *harness, s *sensor) {
				h.publish("cmd/x", "x", mqttcore.AtLeastOnce, false)
				reg := s.recv().(*sn.Register)
				s.send(&sn.Regack{TopicID: reg.TopicID, MsgID: reg.MsgID})
				s.recv()
			},
			want: []string{"exchange none -> register", "exchange register -> none", "exchange none -> publish"},
		},
		{
			name:  "exchange publish -> none -> register (PUBACK invalid topic id)",
			setup: func(t *testing.T, h *harness) *sensor { return subscribed(t, h, sn.QoS1) },
			step: func(t *testing.T, h *harness, s *sensor) {
				h.publish("cmd/dev1", "x", mqttcore.AtLeastOnce, false)
				p := s.recv().(*sn.Publish)
				s.send(&sn.Puback{TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: sn.RejectedInvalidTopicID})
				if _, ok := s.recv().(*sn.Register); !ok {
					t.Fatal("want a REGISTER after PUBACK invalid topic id")
				}
			},
			want: []string{"exchange none -> publish", "exchange publish -> none", "exchange none -> register"},
		},
		{
			name:  "exchange publish -> pubrel -> none",
			setup: func(t *testing.T, h *harness) *sensor { return subscribed(t, h, sn.QoS2) },
			step: func(t *testing.T, h *harness, s *sensor) {
				h.publish("cmd/dev1", "x", mqttcore.ExactlyOnce, false)
				p := s.recv().(*sn.Publish)
				s.send(&sn.Pubrec{MsgID: p.MsgID})
				s.expect(&sn.Pubrel{MsgID: p.MsgID})
				s.send(&sn.Pubcomp{MsgID: p.MsgID})
				synctest.Wait()
			},
			want: []string{"exchange none -> publish", "exchange publish -> pubrel", "exchange pubrel -> none"},
		},
		{
			name: "exchange pubrel -> none -> pubrel (sleep and wake)",
			setup: func(t *testing.T, h *harness) *sensor {
				s := h.sensor("10.0.0.2:5000")
				s.connect("dev1", false, 600)
				s.subscribe("cmd/dev1", sn.QoS2, 1)
				h.publish("cmd/dev1", "x", mqttcore.ExactlyOnce, false)
				p := s.recv().(*sn.Publish)
				s.send(&sn.Pubrec{MsgID: p.MsgID})
				s.expect(&sn.Pubrel{MsgID: p.MsgID})
				return s
			},
			step: func(t *testing.T, h *harness, s *sensor) {
				s.send(&sn.Disconnect{HasDuration: true, Duration: 600})
				s.expect(&sn.Disconnect{})
				s.send(&sn.PingReq{ClientID: []byte("dev1")})
				if _, ok := s.recv().(*sn.Pubrel); !ok {
					t.Fatal("want the PUBREL again after waking")
				}
			},
			want: []string{"exchange pubrel -> none", "state active -> asleep", "state asleep -> awake", "exchange none -> pubrel"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tap := &logTap{}
			opts := gateway.Options{Logger: slog.New(slog.NewTextHandler(tap, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			runWith(t, tc.cfg, opts, func(t *testing.T, h *harness) {
				s := tc.setup(t, h)
				synctest.Wait()
				before := len(tap.String())
				tc.step(t, h, s)
				synctest.Wait()
				all := tap.String()
				if strings.Contains(all, "illegal session state") {
					t.Errorf("a client was left in an illegal state:\n%s", all)
				}
				logged := all[before:]
				rest := logged
				for _, w := range tc.want {
					i := strings.Index(rest, `msg="`+w+`"`)
					if i < 0 {
						t.Fatalf("no transition %q logged (in this order) during the step; logged:\n%s", w, logged)
					}
					rest = rest[i+len(w):]
				}
			})
		})
	}
}

// A connected client that CONNECTs again with the Will flag and asks to
// sleep before the dialogue ends is forgotten (there is no CONNACK, so no
// session to keep asleep), and its attachment to the core session ends
// with it: the core session must not stay attached to a client the gateway
// no longer has, where messages would pile up unsupervised.
func TestSleepRequestDuringWillDialogueEndsAttachment(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		will := h.app("will/#")
		s := h.sensor("10.0.0.2:5000")
		s.connectWithWill("dev1", false, 60)
		s.send(&sn.PingReq{}) // verified: its session outlives it (probation.go)
		s.expect(&sn.PingResp{})
		s.send(&sn.Connect{Will: true, Duration: 60, ClientID: []byte("dev1")})
		s.expect(&sn.WillTopicReq{})
		s.send(&sn.Disconnect{HasDuration: true, Duration: 60})
		s.expect(&sn.Disconnect{})
		coreState(t, h, "dev1", mqttcore.StateDisconnected)
		if st := h.g.Stats(); st.Clients != 0 || st.Asleep != 0 {
			t.Errorf("Clients, Asleep = %d, %d; want 0, 0", st.Clients, st.Asleep)
		}
		// A DISCONNECT ends the session normally: no will.
		time.Sleep(time.Hour)
		will.expectNone()
	})
}

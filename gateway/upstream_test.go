package gateway_test

import (
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// remote is a fake mqttcore.Upstream for transparent sessions ("t-*"):
// every connect, publish and subscribe waits until the test answers it.
type remote struct {
	mu      sync.Mutex
	pending []func(error)
	sinks   map[string]mqttcore.UpstreamSink
	up      map[string]bool // connected
}

func (r *remote) Claims(id string) bool { return strings.HasPrefix(id, "t-") }

func (r *remote) Open(id string, in mqttcore.UpstreamSink) mqttcore.UpstreamLink {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sinks == nil {
		r.sinks, r.up = map[string]mqttcore.UpstreamSink{}, map[string]bool{}
	}
	r.sinks[id] = in
	return &remoteLink{r: r, id: id}
}

// answer completes the oldest waiting exchange with err, once the
// gateway has handled everything sent to it (the test runs in a synctest
// bubble).
func (r *remote) answer(t *testing.T, err error) {
	t.Helper()
	synctest.Wait()
	r.mu.Lock()
	if len(r.pending) == 0 {
		r.mu.Unlock()
		t.Fatal("nothing waits for the remote")
	}
	f := r.pending[0]
	r.pending = r.pending[1:]
	r.mu.Unlock()
	f(err)
}

func (r *remote) sink(id string) mqttcore.UpstreamSink {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sinks[id]
}

type remoteLink struct {
	r  *remote
	id string
}

func (l *remoteLink) wait(done func(error)) {
	l.r.mu.Lock()
	l.r.pending = append(l.r.pending, done)
	l.r.mu.Unlock()
}

func (l *remoteLink) Attach(opts mqttcore.ConnectOptions, _ bool, done func(error)) bool {
	l.r.mu.Lock()
	up := l.r.up[l.id]
	l.r.mu.Unlock()
	if up && !opts.CleanStart {
		return false
	}
	l.wait(func(err error) {
		l.r.mu.Lock()
		l.r.up[l.id] = err == nil
		l.r.mu.Unlock()
		done(err)
	})
	return true
}

func (l *remoteLink) Publish(_ *mqttcore.Message, done func(error)) {
	if done != nil {
		l.wait(done)
	}
}
func (l *remoteLink) Subscribe(_ string, _ mqttcore.SubOptions, done func(error)) { l.wait(done) }
func (l *remoteLink) Unsubscribe(string)                                          {}
func (l *remoteLink) Offline(mqttcore.State, time.Duration) {
	l.r.mu.Lock()
	l.r.up[l.id] = false // as with close_on_sleep
	l.r.mu.Unlock()
}
func (l *remoteLink) PublishWill(*mqttcore.Will) {}
func (l *remoteLink) SetWill(*mqttcore.Will)     {}
func (l *remoteLink) Close()                     {}

// TestTransparentAnswersFollowTheRemote: a transparent sensor's CONNACK,
// SUBACK and PUBACK wait for the remote broker and carry its refusals; a
// CONNECT repeated meanwhile is not answered twice; a wake-up delivers
// what the remote sent once it resumed, then PINGRESP.
func TestTransparentAnswersFollowTheRemote(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		r := &remote{}
		h.b.SetUpstream(r)
		s := h.sensor("10.0.0.2:5000")
		s.send(&sn.Connect{Duration: 60, ClientID: []byte("t-1")})
		s.expectNone(5 * time.Second)
		s.send(&sn.Connect{Duration: 60, ClientID: []byte("t-1")}) // the sensor's T_retry
		s.expectNone(time.Second)
		r.answer(t, nil)
		s.expect(&sn.Connack{ReturnCode: sn.Accepted})
		s.expectNone(time.Second) // one CONNACK for both CONNECTs

		s.send(&sn.Subscribe{QoS: sn.QoS1, MsgID: 1, TopicName: []byte("cmd/t-1")})
		s.expectNone(time.Second)
		r.answer(t, nil)
		ack := s.recv().(*sn.Suback)
		if ack.ReturnCode != sn.Accepted || ack.TopicID == 0 || ack.MsgID != 1 {
			t.Fatalf("SUBACK = %+v; want accepted with a topic id", ack)
		}
		s.send(&sn.Subscribe{QoS: sn.QoS1, MsgID: 2, TopicName: []byte("cmd/other")})
		r.answer(t, mqttcore.ErrNotAuthorized)
		s.expect(&sn.Suback{QoS: sn.QoS1, MsgID: 2, ReturnCode: sn.RejectedNotSupported})

		id := s.register("data/t-1", 3)
		s.send(&sn.Publish{QoS: sn.QoS1, TopicID: id, MsgID: 4, Data: []byte("x")})
		s.expectNone(time.Second)
		r.answer(t, mqttcore.ErrNotAuthorized)
		s.expect(&sn.Puback{TopicID: id, MsgID: 4, ReturnCode: sn.RejectedNotSupported})
		s.send(&sn.Publish{QoS: sn.QoS1, TopicID: id, MsgID: 5, Data: []byte("y")})
		r.answer(t, nil)
		s.expect(&sn.Puback{TopicID: id, MsgID: 5, ReturnCode: sn.Accepted})

		// Asleep, then awake: the remote session resumes first, and what it
		// sends then is delivered before PINGRESP.
		s.send(&sn.Disconnect{HasDuration: true, Duration: 600})
		s.expect(&sn.Disconnect{})
		s.send(&sn.PingReq{ClientID: []byte("t-1")})
		s.expectNone(time.Second)
		if err := r.sink("t-1").Deliver(&mqttcore.Message{Topic: "cmd/t-1", Payload: []byte("open"), QoS: 1}); err != nil {
			t.Fatal(err)
		}
		s.expectNone(time.Second) // not before the remote answered
		r.answer(t, nil)
		p := s.recv().(*sn.Publish)
		if p.TopicID != ack.TopicID || string(p.Data) != "open" {
			t.Fatalf("PUBLISH = %+v; want open on topic id %d", p, ack.TopicID)
		}
		s.send(&sn.Puback{TopicID: p.TopicID, MsgID: p.MsgID})
		s.expect(&sn.PingResp{})

		// A sensor the remote refuses gets the refusal in CONNACK, and no
		// session stays behind.
		s2 := h.sensor("10.0.0.3:5000")
		s2.send(&sn.Connect{Duration: 60, ClientID: []byte("t-2")})
		r.answer(t, mqttcore.ErrNotAuthorized)
		s2.expect(&sn.Connack{ReturnCode: sn.RejectedNotSupported})
		if _, ok := h.b.Session("t-2"); ok {
			t.Fatal("the refused sensor's session stayed in the core")
		}
		// Beyond the remote's connection limit: congestion.
		s2.send(&sn.Connect{Duration: 60, ClientID: []byte("t-3")})
		r.answer(t, mqttcore.ErrTooManySessions)
		s2.expect(&sn.Connack{ReturnCode: sn.RejectedCongestion})
	})
}

// TestTransparentAnswersFollowTheRemoteV2 is TestTransparentAnswersFollowTheRemote
// for a 2.0 sensor: CONNACK, SUBACK and PUBACK wait for the remote broker
// and carry its refusals as 2.0 reason codes; a wake-up delivers what the
// remote sent once it resumed, then PINGRESP.
func TestTransparentAnswersFollowTheRemoteV2(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		r := &remote{}
		h.b.SetUpstream(r)
		s := h.sensor("10.0.0.2:5000")
		connect := &sn.ConnectV2{PacketID: 1, KeepAlive: 60, ClientID: []byte("t-1"), HasSessionExpiry: true, SessionExpiry: 3600}
		s.send2(connect)
		s.expectNone(5 * time.Second)
		s.send2(connect) // a repeat meanwhile
		s.expectNone(time.Second)
		r.answer(t, nil)
		s.expect2(&sn.ConnackV2{PacketID: 1})
		s.expectNone(time.Second) // one CONNACK for both CONNECTs

		s.send2(&sn.SubscribeV2{QoS: sn.QoS1, PacketID: 2, TopicType: sn.TopicTypeName, TopicFilter: []byte("cmd/t-1")})
		s.expectNone(time.Second)
		r.answer(t, nil)
		ack := s.recv2().(*sn.SubackV2)
		if ack.ReasonCode != sn.GrantedQoS1 || !ack.HasTopicAlias || ack.PacketID != 2 {
			t.Fatalf("SUBACK = %+v; want QoS 1 granted with an alias", ack)
		}
		s.send2(&sn.SubscribeV2{QoS: sn.QoS1, PacketID: 3, TopicType: sn.TopicTypeName, TopicFilter: []byte("cmd/other")})
		r.answer(t, mqttcore.ErrNotAuthorized)
		s.expect2(&sn.SubackV2{TopicType: sn.TopicTypePredefined, PacketID: 3, ReasonCode: sn.NotAuthorized})

		s.send2(&sn.PublishV2{QoS: sn.QoS1, PacketID: 4, TopicType: sn.TopicTypeName, TopicName: []byte("data/t-1"), Data: []byte("x")})
		s.expectNone(time.Second)
		r.answer(t, mqttcore.ErrUnavailable)
		s.expect2(&sn.PubackV2{PacketID: 4, ReasonCode: sn.Congestion})

		s.send2(&sn.SleepReq{RetainTopicAliases: true, PacketID: 5, SleepDuration: 600})
		s.expect2(&sn.SleepResp{PacketID: 5})
		s.send2(&sn.PingReqV2{PacketID: 6})
		s.expectNone(time.Second)
		if err := r.sink("t-1").Deliver(&mqttcore.Message{Topic: "cmd/t-1", Payload: []byte("open"), QoS: 1}); err != nil {
			t.Fatal(err)
		}
		s.expectNone(time.Second) // not before the remote answered
		r.answer(t, nil)
		p := s.recv2().(*sn.PublishV2)
		if p.TopicType != sn.TopicTypeSession || p.TopicAlias != ack.TopicAlias || string(p.Data) != "open" {
			t.Fatalf("PUBLISH = %+v; want open on alias %d", p, ack.TopicAlias)
		}
		s.send2(&sn.PubackV2{PacketID: p.PacketID})
		s.expect2(&sn.PingRespV2{PacketID: 6})

		// Refused by the remote: the reason code in CONNACK, no session left.
		s2 := h.sensor("10.0.0.3:5000")
		s2.send2(&sn.ConnectV2{CleanStart: true, PacketID: 7, KeepAlive: 60, ClientID: []byte("t-2")})
		r.answer(t, mqttcore.ErrNotAuthorized)
		s2.expect2(&sn.ConnackV2{PacketID: 7, ReasonCode: sn.NotAuthorized})
		if _, ok := h.b.Session("t-2"); ok {
			t.Fatal("the refused sensor's session stayed in the core")
		}
	})
}

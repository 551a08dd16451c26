package gateway_test

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/internal/memlink"
	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// harness is a broker core and a gateway serving an in-memory network. Tests
// run inside a synctest bubble, so retry, keep-alive and sleep deadlines
// pass in fake time and no test sleeps.
type harness struct {
	t   *testing.T
	b   *mqttcore.Broker
	g   *gateway.Gateway
	net *memlink.Network
	gw  netip.AddrPort
}

// run runs f in a synctest bubble with a fresh harness.
func run(t *testing.T, cfg gateway.Config, f func(t *testing.T, h *harness)) {
	t.Helper()
	runWith(t, cfg, gateway.Options{}, f)
}

// runWith is run with the gateway's options given.
func runWith(t *testing.T, cfg gateway.Config, opts gateway.Options, f func(t *testing.T, h *harness)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		b, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Loops == 0 {
			cfg.Loops = 2
		}
		// Every test is also a check of the session state machine: an event
		// that leaves a client in a combination state.go's table does not
		// hold is logged at Error, and fails the test.
		var errs *logTap
		if opts.Logger == nil {
			errs = &logTap{}
			opts.Logger = slog.New(slog.NewTextHandler(errs, &slog.HandlerOptions{Level: slog.LevelError}))
		}
		g, err := gateway.New(cfg, b, opts)
		if err != nil {
			t.Fatal(err)
		}
		n := memlink.New()
		link, err := n.Listen("10.0.0.1:1884")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- g.Serve(link) }()
		t.Cleanup(func() {
			if err := g.Close(); err != nil {
				t.Errorf("gateway Close: %v", err)
			}
			if err := <-served; err != nil {
				t.Errorf("Serve returned %v; want nil after Close", err)
			}
			if err := b.Close(); err != nil {
				t.Errorf("broker Close: %v", err)
			}
			if errs != nil && strings.Contains(errs.String(), "illegal session state") {
				t.Errorf("the gateway left a client in an illegal session state:\n%s", errs)
			}
		})
		f(t, &harness{t: t, b: b, g: g, net: n, gw: link.AddrPort()})
		// Every test is also a check of the gauges Stats keeps as clients
		// change: once everything is idle they equal what Counts finds by
		// walking the clients.
		synctest.Wait()
		if !t.Failed() {
			if c, err := g.Counts(context.Background()); err == nil {
				st := g.Stats()
				if got := (gateway.SensorCounts{Active: int(st.Active), Asleep: int(st.Asleep), Awake: int(st.Awake),
					Registrations: int(st.Registrations), Forwarded: int(st.Forwarded), Forwarders: int(st.Forwarders)}); got != c {
					t.Errorf("Stats gauges %+v; Counts() walking the clients = %+v", got, c)
				}
			}
		}
	})
}

// sensor is a scripted MQTT-SN client: it sends the frames a test gives it
// and checks the frames that come back.
type sensor struct {
	h    *harness
	link *memlink.Link
	node []byte // when set, everything goes through a forwarder envelope
}

func (h *harness) sensor(addr string) *sensor {
	h.t.Helper()
	l, err := h.net.Listen(addr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { l.Close() })
	return &sensor{h: h, link: l}
}

func (s *sensor) send(m sn.Message) {
	s.h.t.Helper()
	if s.node != nil {
		m = &sn.Encapsulated{NodeID: s.node, Inner: m}
	}
	b, err := m.AppendBinary(nil)
	if err != nil {
		s.h.t.Fatalf("encode %v: %v", m.Type(), err)
	}
	s.sendRaw(b)
}

func (s *sensor) sendRaw(b []byte) {
	s.h.t.Helper()
	if _, err := s.link.WriteToUDPAddrPort(b, s.h.gw); err != nil {
		s.h.t.Fatal(err)
	}
}

// recv returns the next message from the gateway, failing the test if none
// arrives within a minute of (fake) time.
func (s *sensor) recv() sn.Message {
	s.h.t.Helper()
	m, err := s.tryRecv(time.Minute)
	if err != nil {
		s.h.t.Fatalf("%v: waiting for a message from the gateway: %v", s.link.AddrPort(), err)
	}
	return m
}

func (s *sensor) tryRecv(wait time.Duration) (sn.Message, error) {
	buf := make([]byte, 70000)
	s.link.SetReadDeadline(time.Now().Add(wait))
	n, _, err := s.link.ReadFromUDPAddrPort(buf)
	if err != nil {
		return nil, err
	}
	m, err := sn.Decode(buf[:n])
	if err != nil {
		s.h.t.Fatalf("gateway sent an undecodable frame %x: %v", buf[:n], err)
	}
	if s.node != nil {
		e, ok := m.(*sn.Encapsulated)
		if !ok || string(e.NodeID) != string(s.node) {
			s.h.t.Fatalf("want an Encapsulated reply for node %x; got %#v", s.node, m)
		}
		m = e.Inner
	}
	return m.Clone(), nil
}

// expect receives the next message and compares it with want.
func (s *sensor) expect(want sn.Message) sn.Message {
	s.h.t.Helper()
	got := s.recv()
	if !reflect.DeepEqual(got, want) {
		s.h.t.Fatalf("got %T %+v; want %T %+v", got, got, want, want)
	}
	return got
}

// expectNone checks that nothing arrives during d of fake time.
func (s *sensor) expectNone(d time.Duration) {
	s.h.t.Helper()
	if m, err := s.tryRecv(d); !errors.Is(err, os.ErrDeadlineExceeded) {
		s.h.t.Fatalf("want no message; got %#v, %v", m, err)
	}
}

// connect runs CONNECT/CONNACK for id.
func (s *sensor) connect(id string, clean bool, keepAlive uint16) {
	s.h.t.Helper()
	s.send(&sn.Connect{CleanSession: clean, Duration: keepAlive, ClientID: []byte(id)})
	s.expect(&sn.Connack{ReturnCode: sn.Accepted})
}

// connectWithWill runs CONNECT with the Will flag and the will dialogue for
// id: the will is "gone" on will/<id>, QoS 0.
func (s *sensor) connectWithWill(id string, clean bool, keepAlive uint16) {
	s.h.t.Helper()
	s.send(&sn.Connect{Will: true, CleanSession: clean, Duration: keepAlive, ClientID: []byte(id)})
	s.expect(&sn.WillTopicReq{})
	s.send(&sn.WillTopic{Topic: []byte("will/" + id)})
	s.expect(&sn.WillMsgReq{})
	s.send(&sn.WillMsg{Message: []byte("gone")})
	s.expect(&sn.Connack{ReturnCode: sn.Accepted})
}

// register registers topic and returns its id.
func (s *sensor) register(topic string, msgID uint16) uint16 {
	s.h.t.Helper()
	s.send(&sn.Register{MsgID: msgID, TopicName: []byte(topic)})
	ack, ok := s.recv().(*sn.Regack)
	if !ok || ack.MsgID != msgID || ack.ReturnCode != sn.Accepted || ack.TopicID == 0 {
		s.h.t.Fatalf("REGISTER %q: got %#v", topic, ack)
	}
	return ack.TopicID
}

// subscribe subscribes to a topic name and returns the SUBACK.
func (s *sensor) subscribe(filter string, q sn.QoS, msgID uint16) *sn.Suback {
	s.h.t.Helper()
	s.send(&sn.Subscribe{QoS: q, MsgID: msgID, TopicName: []byte(filter)})
	ack, ok := s.recv().(*sn.Suback)
	if !ok || ack.MsgID != msgID || ack.ReturnCode != sn.Accepted {
		s.h.t.Fatalf("SUBSCRIBE %q: got %#v", filter, ack)
	}
	return ack
}

// app is an MQTT-side subscriber in the same process, through the core's
// inline API.
type app struct {
	t  *testing.T
	ch chan *mqttcore.Message
}

func (h *harness) app(filter string) *app {
	h.t.Helper()
	ch := make(chan *mqttcore.Message, 100)
	if _, err := h.b.Inline("app").SubscribeChan(filter, mqttcore.SubOptions{QoS: mqttcore.ExactlyOnce}, ch); err != nil {
		h.t.Fatal(err)
	}
	return &app{t: h.t, ch: ch}
}

// expect waits for the next message; inside the bubble an empty channel
// means nothing will come, so synctest.Wait settles it without a timeout.
func (a *app) expect(topic, payload string) *mqttcore.Message {
	a.t.Helper()
	synctest.Wait()
	select {
	case m := <-a.ch:
		if m.Topic != topic || string(m.Payload) != payload {
			a.t.Fatalf("app got %q %q; want %q %q", m.Topic, m.Payload, topic, payload)
		}
		return m
	default:
		a.t.Fatalf("app got nothing; want %q %q", topic, payload)
		return nil
	}
}

func (a *app) expectNone() {
	a.t.Helper()
	synctest.Wait()
	select {
	case m := <-a.ch:
		a.t.Fatalf("app got %q %q; want nothing", m.Topic, m.Payload)
	default:
	}
}

// publish publishes from the MQTT side.
func (h *harness) publish(topic, payload string, q mqttcore.QoS, retain bool) {
	h.t.Helper()
	if err := h.b.Inline("app-pub").Publish(&mqttcore.Message{Topic: topic, Payload: []byte(payload), QoS: q, Retain: retain}); err != nil {
		h.t.Fatal(err)
	}
}

package mqttcore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  mqttcore.Config
		ok   bool
	}{
		{"zero", mqttcore.Config{}, true},
		{"explicit", mqttcore.Config{MaxSessions: 10, MaxQueued: 5, MaxInflight: 1, MaxPacketSize: 100, MaxPayloadSize: 100, SysInterval: time.Second}, true},
		{"negative sessions", mqttcore.Config{MaxSessions: -1}, false},
		{"negative queued", mqttcore.Config{MaxQueued: -1}, false},
		{"inflight too big", mqttcore.Config{MaxInflight: 65536}, false},
		{"payload over packet", mqttcore.Config{MaxPacketSize: 100, MaxPayloadSize: 101}, false},
		{"default payload over small packet", mqttcore.Config{MaxPacketSize: 100}, true},
		{"sys interval too short", mqttcore.Config{SysInterval: time.Millisecond}, false},
		{"sys interval negative", mqttcore.Config{SysInterval: -time.Second}, false},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v; want ok %v", tt.name, err, tt.ok)
		}
		if err != nil && !isErr(err, mqttcore.ErrInvalidConfig) {
			t.Errorf("%s: Validate() = %v; want ErrInvalidConfig", tt.name, err)
		}
		b, err := mqttcore.New(tt.cfg, mqttcore.Options{})
		if (err == nil) != tt.ok {
			t.Errorf("%s: New() = %v; want ok %v", tt.name, err, tt.ok)
		}
		if b != nil {
			b.Close()
		}
	}
}

func TestLimits(t *testing.T) {
	b := newBroker(t, mqttcore.Config{MaxSessions: 2, MaxPayloadSize: 10, MaxRetained: 1, MaxTopicLevels: 3})
	c, _ := attach(t, b, persistent("a"))
	attach(t, b, persistent("b"))
	if _, _, err := b.Attach(&fakeFE{}, persistent("c")); !isErr(err, mqttcore.ErrTooManySessions) {
		t.Errorf("third session = %v; want ErrTooManySessions", err)
	}
	if _, _, err := b.Attach(&fakeFE{}, persistent("a")); err != nil {
		t.Errorf("resuming an existing session at the limit = %v", err)
	}
	in := b.Inline("p")
	tests := []struct {
		name string
		m    *mqttcore.Message
		want error
	}{
		{"payload at limit", &mqttcore.Message{Topic: "t", Payload: make([]byte, 10)}, nil},
		{"payload over", &mqttcore.Message{Topic: "t", Payload: make([]byte, 11)}, mqttcore.ErrPayloadTooLarge},
		{"retained 1", &mqttcore.Message{Topic: "r1", Payload: []byte("x"), Retain: true}, nil},
		{"retained replace", &mqttcore.Message{Topic: "r1", Payload: []byte("y"), Retain: true}, nil},
		{"retained 2", &mqttcore.Message{Topic: "r2", Payload: []byte("x"), Retain: true}, mqttcore.ErrRetainedFull},
		{"retained delete unknown", &mqttcore.Message{Topic: "r2", Retain: true}, nil},
		{"levels over", &mqttcore.Message{Topic: "a/b/c/d"}, mqttcore.ErrInvalidTopic},
		{"wildcard", &mqttcore.Message{Topic: "a/+"}, mqttcore.ErrInvalidTopic},
		{"qos 3", &mqttcore.Message{Topic: "a", QoS: 3}, mqttcore.ErrInvalidQoS},
	}
	for _, tt := range tests {
		if err := in.Publish(tt.m); !isErr(err, tt.want) {
			t.Errorf("%s: Publish = %v; want %v", tt.name, err, tt.want)
		}
	}
	if _, err := c.Publish(&mqttcore.Message{Topic: "$SYS/x"}, 0, 0); !isErr(err, mqttcore.ErrReservedTopic) {
		t.Errorf("client publish to $SYS = %v; want ErrReservedTopic", err)
	}
	if err := c.Subscribe("a/b/c/d", mqttcore.SubOptions{}); !isErr(err, mqttcore.ErrInvalidFilter) {
		t.Errorf("subscribe over level limit = %v; want ErrInvalidFilter", err)
	}
	if err := c.Subscribe("a", mqttcore.SubOptions{QoS: 3}); !isErr(err, mqttcore.ErrInvalidQoS) {
		t.Errorf("subscribe qos 3 = %v; want ErrInvalidQoS", err)
	}
	big := &mqttcore.Will{Topic: "w", Payload: []byte(strings.Repeat("x", 11))}
	if _, _, err := b.Attach(&fakeFE{}, mqttcore.ConnectOptions{ClientID: "a", Will: big}); !isErr(err, mqttcore.ErrPayloadTooLarge) {
		t.Errorf("oversized will = %v; want ErrPayloadTooLarge", err)
	}
	if _, _, err := b.Attach(&fakeFE{}, mqttcore.ConnectOptions{}); !isErr(err, mqttcore.ErrInvalidClientID) {
		t.Errorf("empty client id = %v; want ErrInvalidClientID", err)
	}
	lh := b.Stats().LimitHits
	if lh.Sessions != 1 || lh.Payload != 2 || lh.Retained != 1 {
		t.Errorf("LimitHits = %+v; want 1 session, 2 payload, 1 retained", lh)
	}
	if got := b.Stats().Retained; got != 1 {
		t.Errorf("Retained = %d; want 1", got)
	}
}

func TestUnsubscribeAndInlineChan(t *testing.T) {
	b := newBroker(t, mqttcore.Config{})
	c, _ := attach(t, b, persistent("s"))
	subscribe(t, c, "a/+", mqttcore.SubOptions{})
	if ok, err := c.Unsubscribe("a/+"); !ok || err != nil {
		t.Fatalf("Unsubscribe = %v, %v; want true, nil", ok, err)
	}
	if ok, _ := c.Unsubscribe("a/+"); ok {
		t.Error("second Unsubscribe reported existing")
	}
	in := b.Inline("p")
	ch := make(chan *mqttcore.Message, 1)
	sub, err := in.SubscribeChan("a/#", mqttcore.SubOptions{}, ch)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, in, "a/x", "1", 0, false)
	publish(t, in, "a/x", "2", 0, false)
	if n := len(drain(c)); n != 0 {
		t.Errorf("unsubscribed session got %d", n)
	}
	if m := <-ch; string(m.Payload) != "1" {
		t.Errorf("channel got %q; want 1", m.Payload)
	}
	if sub.Dropped() != 1 || b.Stats().Dropped != 1 {
		t.Errorf("Dropped = %d (stats %d); want 1", sub.Dropped(), b.Stats().Dropped)
	}
	sub.Unsubscribe()
	sub.Unsubscribe()
	publish(t, in, "a/x", "3", 0, false)
	select {
	case m := <-ch:
		t.Errorf("got %q after Unsubscribe", m.Payload)
	default:
	}
}

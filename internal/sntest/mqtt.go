package sntest

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// MQTTBuffer is the capacity of an MQTT client's Msgs channel.
const MQTTBuffer = 8192

// MQTT is a paho.golang MQTT 5 client of the core's TCP listener with its
// received PUBLISHes on a channel.
type MQTT struct {
	*paho.Client
	// Msgs receives every PUBLISH, in arrival order.
	Msgs chan *paho.Publish
	// Overflow counts messages dropped because Msgs was full.
	Overflow atomic.Int64
}

// MQTT connects a clean-start MQTT 5 client with clientID to the listener.
// It is disconnected and closed at cleanup.
func (e *Env) MQTT(t testing.TB, ctx context.Context, clientID string) *MQTT {
	t.Helper()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", e.MQTTAddr)
	if err != nil {
		t.Fatalf("dial MQTT listener %s: %v", e.MQTTAddr, err)
	}
	m := &MQTT{Msgs: make(chan *paho.Publish, MQTTBuffer)}
	m.Client = paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				select {
				case m.Msgs <- pr.Packet:
				default:
					m.Overflow.Add(1)
				}
				return true, nil
			},
		},
	})
	ca, err := m.Connect(ctx, &paho.Connect{ClientID: clientID, CleanStart: true, KeepAlive: 30})
	if err != nil {
		_ = conn.Close()
		t.Fatalf("paho Connect(%q) = %+v, %v", clientID, ca, err)
	}
	t.Cleanup(func() {
		_ = m.Disconnect(&paho.Disconnect{ReasonCode: 0})
		_ = conn.Close()
		select {
		case <-m.Done():
		case <-time.After(10 * time.Second):
			t.Errorf("paho client %q did not shut down within 10s", clientID)
		}
	})
	return m
}

// Subscribe subscribes to filters at qos with Retain As Published set (so
// that a live retained message keeps its RETAIN flag) and fails the test
// unless every filter is granted.
func (m *MQTT) Subscribe(t testing.TB, ctx context.Context, qos byte, filters ...string) {
	t.Helper()
	s := &paho.Subscribe{}
	for _, f := range filters {
		s.Subscriptions = append(s.Subscriptions, paho.SubscribeOptions{Topic: f, QoS: qos, RetainAsPublished: true})
	}
	sa, err := m.Client.Subscribe(ctx, s)
	if err != nil {
		t.Fatalf("paho Subscribe(%q) = %v", filters, err)
	}
	for i, rc := range sa.Reasons {
		if rc >= 0x80 {
			t.Fatalf("paho Subscribe(%q): filter %d refused with 0x%02x", filters, i, rc)
		}
	}
}

// Publish publishes and fails the test on error.
func (m *MQTT) Publish(t testing.TB, ctx context.Context, topic string, qos byte, retain bool, payload string) {
	t.Helper()
	if _, err := m.Client.Publish(ctx, &paho.Publish{Topic: topic, QoS: qos, Retain: retain, Payload: []byte(payload)}); err != nil {
		t.Fatalf("paho Publish(%q, qos %d) = %v", topic, qos, err)
	}
}

// Next returns the next PUBLISH received, failing the test when ctx ends
// first.
func (m *MQTT) Next(t testing.TB, ctx context.Context) *paho.Publish {
	t.Helper()
	select {
	case p := <-m.Msgs:
		return p
	case <-ctx.Done():
		t.Fatalf("MQTT client: waiting for a message: %v", ctx.Err())
		return nil
	}
}

// Expect receives the next PUBLISH and checks its topic, payload, QoS and
// RETAIN flag.
func (m *MQTT) Expect(t testing.TB, ctx context.Context, topic, payload string, qos byte, retain bool) {
	t.Helper()
	p := m.Next(t, ctx)
	if p.Topic != topic || string(p.Payload) != payload || p.QoS != qos || p.Retain != retain {
		t.Fatalf("MQTT client received (%q, %q, qos %d, retain %v); want (%q, %q, qos %d, retain %v)",
			p.Topic, p.Payload, p.QoS, p.Retain, topic, payload, qos, retain)
	}
}

package benchfleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/internal/mqttsub"
)

// mqttClient is the benchmark's own MQTT 5 client on the broker side.
type mqttClient struct {
	c       *paho.Client
	addr    string
	closing atomic.Bool // set by close: errors after it are the disconnect's
}

// dialMQTT connects an MQTT client called id to the broker at addr. Every
// PUBLISH it receives goes to onMessage (on paho's single delivery
// goroutine, or for a QoS 1 PUBLISH on its reader goroutine) when that is
// not nil; such a subscriber takes its QoS 1 PUBLISHes in itself and
// coalesces their acknowledgements into as few writes as it can
// (internal/mqttsub).
func dialMQTT(ctx context.Context, addr, id string, onMessage func(payload []byte), onError func(error)) (*mqttClient, error) {
	var d net.Dialer
	tcp, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mqtt client %s: dial broker %s: %w", id, addr, err)
	}
	conn := mqttsub.NewConn(tcp, onMessage)
	m := &mqttClient{addr: addr}
	cfg := paho.ClientConfig{Conn: conn, OnClientError: func(err error) {
		// paho reports the closed connection after Disconnect, too.
		if !m.closing.Load() && onError != nil {
			onError(fmt.Errorf("mqtt client %s: %w", id, err))
		}
	}}
	if onMessage != nil {
		cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				onMessage(pr.Packet.Payload)
				return true, nil
			},
		}
	}
	c := paho.NewClient(cfg)
	m.c = c
	ca, err := c.Connect(ctx, &paho.Connect{ClientID: id, KeepAlive: 60, CleanStart: true})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("mqtt client %s: connect to %s: %w", id, addr, err)
	}
	if ca.ReasonCode != 0 {
		conn.Close()
		return nil, fmt.Errorf("mqtt client %s: connect to %s: refused with reason 0x%02x", id, addr, ca.ReasonCode)
	}
	return m, nil
}

// subscribe subscribes to filter at qos.
func (m *mqttClient) subscribe(ctx context.Context, filter string, qos byte) error {
	sa, err := m.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: qos}}})
	if err != nil {
		return fmt.Errorf("mqtt subscribe %q on %s: %w", filter, m.addr, err)
	}
	if len(sa.Reasons) != 1 || sa.Reasons[0] > 2 {
		return fmt.Errorf("mqtt subscribe %q on %s: refused with reasons %x", filter, m.addr, sa.Reasons)
	}
	return nil
}

// publish publishes payload to topic at qos; for QoS 1 and 2 it waits for
// the broker's acknowledgement.
func (m *mqttClient) publish(ctx context.Context, topic string, qos byte, payload []byte) error {
	pr, err := m.c.Publish(ctx, &paho.Publish{Topic: topic, QoS: qos, Payload: payload})
	if err != nil {
		return fmt.Errorf("mqtt publish to %q on %s: %w", topic, m.addr, err)
	}
	if pr != nil && pr.ReasonCode >= 0x80 {
		return fmt.Errorf("mqtt publish to %q on %s: refused with reason 0x%02x", topic, m.addr, pr.ReasonCode)
	}
	return nil
}

// close disconnects and waits, at most a few seconds, for the client's
// goroutines to end.
func (m *mqttClient) close() {
	m.closing.Store(true)
	_ = m.c.Disconnect(&paho.Disconnect{ReasonCode: 0})
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-m.c.Done():
	case <-t.C:
	}
}

// isStop reports whether err only says the run is ending.
func isStop(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

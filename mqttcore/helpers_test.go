package mqttcore_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// fakeFE is a front-end that records Notify, Close and Acked calls.
type fakeFE struct {
	notes  atomic.Int64
	mu     sync.Mutex
	closed []error
	acks   []mqttcore.Ack
	ackCh  chan mqttcore.Ack // if set, each Ack is also sent here
}

func (f *fakeFE) Notify() { f.notes.Add(1) }

func (f *fakeFE) Acked(a mqttcore.Ack) {
	f.mu.Lock()
	f.acks = append(f.acks, a)
	ch := f.ackCh
	f.mu.Unlock()
	if ch != nil {
		ch <- a
	}
}

func (f *fakeFE) ackList() []mqttcore.Ack {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]mqttcore.Ack(nil), f.acks...)
}

func (f *fakeFE) Close(reason error) {
	f.mu.Lock()
	f.closed = append(f.closed, reason)
	f.mu.Unlock()
}

func (f *fakeFE) closeReasons() []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]error(nil), f.closed...)
}

// newBroker starts a broker with $SYS off and closes it at cleanup.
func newBroker(t testing.TB, cfg mqttcore.Config) *mqttcore.Broker {
	t.Helper()
	cfg.SysDisabled = true
	b, err := mqttcore.New(cfg, mqttcore.Options{})
	if err != nil {
		t.Fatalf("New(%+v) = %v", cfg, err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// attach attaches a fresh fakeFE or fails the test.
func attach(t testing.TB, b *mqttcore.Broker, opts mqttcore.ConnectOptions) (*mqttcore.Conn, *fakeFE) {
	t.Helper()
	fe := &fakeFE{}
	c, _, err := b.Attach(fe, opts)
	if err != nil {
		t.Fatalf("Attach(%q) = %v", opts.ClientID, err)
	}
	return c, fe
}

// persistent is ConnectOptions for a persistent session.
func persistent(id string) mqttcore.ConnectOptions {
	return mqttcore.ConnectOptions{ClientID: id, SessionExpiry: mqttcore.NeverExpire}
}

// subscribe subscribes or fails the test.
func subscribe(t testing.TB, c *mqttcore.Conn, filter string, opts mqttcore.SubOptions) {
	t.Helper()
	if err := c.Subscribe(filter, opts); err != nil {
		t.Fatalf("Subscribe(%q) = %v", filter, err)
	}
}

// drain returns every delivery Next has now.
func drain(c *mqttcore.Conn) []mqttcore.Delivery {
	var out []mqttcore.Delivery
	for {
		d, ok := c.Next()
		if !ok {
			return out
		}
		out = append(out, d)
	}
}

// topics lists the delivered topics (or "PUBREL" for releases).
func topics(ds []mqttcore.Delivery) []string {
	var out []string
	for _, d := range ds {
		if d.Release {
			out = append(out, "PUBREL")
			continue
		}
		out = append(out, d.Message.Topic)
	}
	return out
}

// publish publishes through an inline client or fails the test.
func publish(t testing.TB, in *mqttcore.Inline, topic, payload string, qos mqttcore.QoS, retain bool) {
	t.Helper()
	m := &mqttcore.Message{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain}
	if err := in.Publish(m); err != nil {
		t.Fatalf("Publish(%q) = %v", topic, err)
	}
}

// isErr reports whether err wraps want (nil want: err is nil).
func isErr(err, want error) bool {
	if want == nil {
		return err == nil
	}
	return errors.Is(err, want)
}

package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/bridge"
)

// TestReconfigure changes a connected bridge's rules in place: an out
// rule's prefix under the same filter (the subscription stays), and an in
// rule's prefix (the connection is replaced and the new filter subscribed
// on the remote). A change to the queue needs a restart and changes
// nothing; an invalid config changes nothing.
func TestReconfigure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	core := newCore(t)
	m, cfg, b := connectedCentral(t, ctx, core,
		bridge.Rule{Pattern: "sensors/#", Direction: bridge.Out, QoS: 1, RemotePrefix: "r1/"},
		bridge.Rule{Pattern: "cmd/#", Direction: bridge.In, QoS: 1, RemotePrefix: "c1/"},
	)
	remote := dialRemote(t, ctx, fmt.Sprintf("127.0.0.1:%d", m.port), "watcher")
	remote.subscribe(t, ctx, "r1/#", 1)
	remote.subscribe(t, ctx, "r2/#", 1)
	local := make(chan *mqttcore.Message, 100)
	if _, err := core.Inline("app").SubscribeChan("cmd/#", mqttcore.SubOptions{QoS: 1}, local); err != nil {
		t.Fatal(err)
	}
	sensor := core.Inline("sensor-1")
	out := func(payload, wantTopic string) {
		t.Helper()
		if err := sensor.Publish(&mqttcore.Message{Topic: "sensors/t", Payload: []byte(payload), QoS: 1}); err != nil {
			t.Fatal(err)
		}
		if p := remote.next(t, ctx); p.Topic != wantTopic || string(p.Payload) != payload {
			t.Fatalf("remote got %q %q; want %q %q", p.Topic, p.Payload, wantTopic, payload)
		}
	}
	// in: retried until the remote subscription (made after each
	// connection) is in place.
	in := func(remoteTopic, wantLocal string) {
		t.Helper()
		for {
			remote.publish(t, ctx, remoteTopic, 1, "x")
			select {
			case m := <-local:
				if m.Topic == wantLocal {
					return
				}
			case <-time.After(100 * time.Millisecond): // the subscription is not there yet
			case <-ctx.Done():
				t.Fatalf("%s never arrived as %s", remoteTopic, wantLocal)
			}
		}
	}
	out("1", "r1/sensors/t")
	in("c1/cmd/a", "cmd/a")

	next := cfg
	next.Rules = []bridge.Rule{
		{Pattern: "sensors/#", Direction: bridge.Out, QoS: 1, RemotePrefix: "r2/"},
		{Pattern: "cmd/#", Direction: bridge.In, QoS: 1, RemotePrefix: "c2/"},
	}
	changes, err := b.Reconfigure(next)
	if err != nil {
		t.Fatalf("Reconfigure = %v", err)
	}
	want := []string{"out rules: 1 (0 subscribed, 0 unsubscribed)", "in rules: 1", "reconnected to subscribe the new in rules"}
	if !slices.Equal(changes, want) {
		t.Errorf("Reconfigure changes = %q; want %q", changes, want)
	}
	out("2", "r2/sensors/t")
	if err := b.AwaitConnection(ctx); err != nil {
		t.Fatal(err)
	}
	in("c2/cmd/b", "cmd/b")

	// A connection setting: reconnected, and named.
	next.KeepAlive = 20 * time.Second
	if changes, err := b.Reconfigure(next); err != nil || !slices.Equal(changes, []string{"reconnected with the new keep_alive"}) {
		t.Errorf("Reconfigure(keep_alive) = %q, %v; want [reconnected with the new keep_alive]", changes, err)
	}
	if err := b.AwaitConnection(ctx); err != nil {
		t.Fatal(err)
	}
	out("2b", "r2/sensors/t")

	queue := next
	queue.Queue.MaxBytes = 1 << 20
	if _, err := b.Reconfigure(queue); !errors.Is(err, bridge.ErrRestartNeeded) {
		t.Errorf("Reconfigure(queue.max_bytes changed) = %v; want ErrRestartNeeded", err)
	}
	bad := next
	bad.Rules = nil
	if _, err := b.Reconfigure(bad); err == nil {
		t.Error("Reconfigure(no rules) = nil; want an error")
	}
	out("3", "r2/sensors/t") // neither changed anything
}

// TestReconfigureFailedSubscribeChangesNothing: a Reconfigure whose new out
// rule cannot be subscribed in the core (deeper than its max_topic_levels)
// fails and leaves every out rule as it was, the remote prefix of a kept
// subscription included.
func TestReconfigureFailedSubscribeChangesNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	core, err := mqttcore.New(mqttcore.Config{SysDisabled: true, MaxTopicLevels: 4}, mqttcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { core.Close() })
	m, cfg, b := connectedCentral(t, ctx, core, bridge.Rule{Pattern: "sensors/#", Direction: bridge.Out, QoS: 1, RemotePrefix: "r1/"})
	remote := dialRemote(t, ctx, fmt.Sprintf("127.0.0.1:%d", m.port), "watcher")
	remote.subscribe(t, ctx, "#", 1)

	next := cfg
	next.Rules = []bridge.Rule{
		{Pattern: "sensors/#", Direction: bridge.Out, QoS: 1, RemotePrefix: "r2/"},
		{Pattern: "a/b/c/d/e/#", Direction: bridge.Out, QoS: 1},
	}
	if _, err := b.Reconfigure(next); err == nil {
		t.Fatal("Reconfigure(a filter deeper than max_topic_levels) = nil; want an error")
	}
	if err := core.Inline("sensor-1").Publish(&mqttcore.Message{Topic: "sensors/t", Payload: []byte("1"), QoS: 1}); err != nil {
		t.Fatal(err)
	}
	if p := remote.next(t, ctx); p.Topic != "r1/sensors/t" {
		t.Fatalf("after a failed Reconfigure the remote got %q; want r1/sensors/t (the old rule)", p.Topic)
	}
}

// TestReconfigureReaddedInRule: an in rule removed by one Reconfigure and
// added back by the next, before the bridge could connect in between, is
// subscribed on the remote, not unsubscribed (its filter left on the list
// of removed filters would race the subscription).
func TestReconfigureReaddedInRule(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	core := newCore(t)
	keep := bridge.Rule{Pattern: "cmd/#", Direction: bridge.In, QoS: 1, RemotePrefix: "c1/"}
	m, cfg, b := connectedCentral(t, ctx, core, keep)
	away := cfg
	away.Servers = []string{fmt.Sprintf("mqtt://127.0.0.1:%d", freePort(t))} // nobody listens
	away.Rules = []bridge.Rule{{Pattern: "other/#", Direction: bridge.In, QoS: 1}}
	if _, err := b.Reconfigure(away); err != nil {
		t.Fatalf("Reconfigure(away) = %v", err)
	}
	if _, err := b.Reconfigure(cfg); err != nil {
		t.Fatalf("Reconfigure(back) = %v", err)
	}
	if err := b.AwaitConnection(ctx); err != nil {
		t.Fatal(err)
	}
	local := make(chan *mqttcore.Message, 100)
	if _, err := core.Inline("app").SubscribeChan("cmd/#", mqttcore.SubOptions{QoS: 1}, local); err != nil {
		t.Fatal(err)
	}
	remote := dialRemote(t, ctx, fmt.Sprintf("127.0.0.1:%d", m.port), "commander")
	// The subscription is made after the connection: published until one
	// arrives. The unsubscribe of the removed filters, if any, is answered
	// by then too (both go out at once), so one more must arrive as well.
	for got := 0; got < 2; {
		remote.publish(t, ctx, "c1/cmd/a", 1, "x")
		select {
		case <-local:
			got++
		case <-time.After(100 * time.Millisecond): // not subscribed yet
		case <-ctx.Done():
			t.Fatalf("c1/cmd/a never arrived twice after the in rule was added back (got %d)", got)
		}
	}
}

// TestReconfigureFailedConnectKeepsTrying: when the connection with the new
// settings does not start inside Reconfigure, the new configuration is in
// force all the same (Config returns it, so a reload records it), the error
// says so (ErrConnectRetrying), and the bridge goes on trying with backoff
// until it connects, with the new in rule subscribed; applying the same
// configuration again changes nothing.
func TestReconfigureFailedConnectKeepsTrying(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	core := newCore(t)
	m, cfg, b := connectedCentral(t, ctx, core,
		bridge.Rule{Pattern: "sensors/#", Direction: bridge.Out, QoS: 1, RemotePrefix: "r1/"},
		bridge.Rule{Pattern: "cmd/#", Direction: bridge.In, QoS: 1, RemotePrefix: "c1/"},
	)
	next := cfg
	next.Rules = []bridge.Rule{
		{Pattern: "sensors/#", Direction: bridge.Out, QoS: 1, RemotePrefix: "r2/"},
		{Pattern: "cmd/#", Direction: bridge.In, QoS: 1, RemotePrefix: "c2/"},
	}
	bridge.FailConnects(b, 2) // the start in Reconfigure and the first retry
	changes, err := b.Reconfigure(next)
	if !errors.Is(err, bridge.ErrConnectRetrying) {
		t.Fatalf("Reconfigure with a connection that does not start = %q, %v; want ErrConnectRetrying", changes, err)
	}
	if want := []string{"out rules: 1 (0 subscribed, 0 unsubscribed)", "in rules: 1"}; !slices.Equal(changes, want) {
		t.Errorf("Reconfigure changes = %q; want %q (made, though the connection did not start)", changes, want)
	}
	if got := b.Config(); !reflect.DeepEqual(got, next) {
		t.Errorf("after the failed start Config() = %+v; want the new configuration %+v", got, next)
	}
	if err := b.AwaitConnection(ctx); err != nil {
		t.Fatalf("the bridge did not connect after its connection failed to start: %v", err)
	}
	local := make(chan *mqttcore.Message, 100)
	if _, err := core.Inline("app").SubscribeChan("cmd/#", mqttcore.SubOptions{QoS: 1}, local); err != nil {
		t.Fatal(err)
	}
	remote := dialRemote(t, ctx, fmt.Sprintf("127.0.0.1:%d", m.port), "commander")
	remote.subscribe(t, ctx, "r2/#", 1)
	for got := false; !got; { // the subscription is made after the connection
		remote.publish(t, ctx, "c2/cmd/a", 1, "x")
		select {
		case lm := <-local:
			got = lm.Topic == "cmd/a"
		case <-time.After(100 * time.Millisecond): // not subscribed yet
		case <-ctx.Done():
			t.Fatal("c2/cmd/a never arrived: the new in rule was not subscribed")
		}
	}
	if err := core.Inline("sensor-1").Publish(&mqttcore.Message{Topic: "sensors/t", Payload: []byte("1"), QoS: 1}); err != nil {
		t.Fatal(err)
	}
	if p := remote.next(t, ctx); p.Topic != "r2/sensors/t" {
		t.Errorf("the remote got %q; want r2/sensors/t", p.Topic)
	}
	if changes, err := b.Reconfigure(next); err != nil || len(changes) != 0 {
		t.Errorf("Reconfigure(the same configuration again) = %q, %v; want no change", changes, err)
	}
}

// connectedCentral starts a Mosquitto and a bridge "central" to it with
// rules, on core, and waits until the bridge is connected.
func connectedCentral(t *testing.T, ctx context.Context, core *mqttcore.Broker, rules ...bridge.Rule) (*mosquitto, bridge.Config, *bridge.Bridge) {
	t.Helper()
	m := newMosquitto(t, "")
	m.start()
	cfg := testConfig(t, "central", m.url(), rules...)
	log, _ := testLogger(t)
	b := newBridge(t, cfg, core, log)
	if err := b.AwaitConnection(ctx); err != nil {
		t.Fatal(err)
	}
	return m, cfg, b
}

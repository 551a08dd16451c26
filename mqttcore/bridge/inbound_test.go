package bridge_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/bridge"
)

// quietFrontEnd is a core session's front-end that never reads: its queue
// fills and stays full until the test takes the messages with Next.
type quietFrontEnd struct{ notify chan struct{} }

func (f *quietFrontEnd) Notify() {
	select {
	case f.notify <- struct{}{}:
	default:
	}
}
func (f *quietFrontEnd) Close(error)        {}
func (f *quietFrontEnd) Acked(mqttcore.Ack) {}

// TestBridgeInboundRefusalNotAcknowledged: a remote message the core
// refuses for now (flow control: the one subscribed session's queue is
// full, and the hold times out) is not acknowledged to the remote. The
// bridge drops the connection and the remote sends it again; once the
// session has room, every message arrives in the core, in order, once.
func TestBridgeInboundRefusalNotAcknowledged(t *testing.T) {
	m := newMosquitto(t, "")
	m.start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	core, err := mqttcore.New(mqttcore.Config{SysDisabled: true, MaxQueued: 1, HoldTimeout: 50 * time.Millisecond}, mqttcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer core.Close()
	fe := &quietFrontEnd{notify: make(chan struct{}, 1)}
	valve, _, err := core.Attach(fe, mqttcore.ConnectOptions{ClientID: "valve", SessionExpiry: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := valve.Subscribe("cmd/#", mqttcore.SubOptions{QoS: 1}); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig(t, "central", m.url(), bridge.Rule{Pattern: "cmd/#", Direction: bridge.In, QoS: 1, RemotePrefix: "central/"})
	cfg.SessionExpiry = time.Hour // the remote keeps what we did not acknowledge
	log, logs := testLogger(t)
	b := newBridge(t, cfg, core, log)
	if err := b.AwaitConnection(ctx); err != nil {
		t.Fatal(err)
	}
	remote := dialRemote(t, ctx, fmt.Sprintf("127.0.0.1:%d", m.port), "central-app")
	// The bridge subscribes on the remote after connecting: a probe
	// published until it reaches the session fills its queue (one message).
	for queued := false; !queued; {
		remote.publish(t, ctx, "central/cmd/probe", 1, "probe")
		select {
		case <-fe.notify:
			queued = true
		case <-time.After(100 * time.Millisecond): // retry until the remote subscription is in place
		case <-ctx.Done():
			t.Fatal("the inbound rule never delivered")
		}
	}

	const n = 5
	for i := range n {
		remote.publish(t, ctx, "central/cmd/valve", 1, fmt.Sprint(i))
	}
	logs.waitFor(t, ctx, "refused by the core for now", "reconnecting")
	if st := b.Stats(); st.InboundDeferred == 0 {
		t.Fatalf("stats %+v: want InboundDeferred > 0 after a refusal", st)
	}

	// Make room: take the probes; the remote sends the refused message and
	// those after it again, and they arrive in order, once each.
	next := 0
	for next < n {
		d, ok := valve.Next()
		if !ok {
			select {
			case <-fe.notify:
			case <-ctx.Done():
				t.Fatalf("%d of %d messages reached the session: %v (stats %+v)", next, n, ctx.Err(), b.Stats())
			}
			continue
		}
		if d.PacketID != 0 {
			if err := valve.Ack(d.PacketID); err != nil {
				t.Fatal(err)
			}
		}
		if d.Message.Topic == "cmd/probe" {
			if next > 0 {
				t.Fatalf("a probe after message %d", next)
			}
			continue
		}
		if got := string(d.Message.Payload); got != fmt.Sprint(next) {
			t.Fatalf("message %q arrived; want %d (lost, duplicated or out of order)", got, next)
		}
		next++
	}
	t.Logf("stats after the refusals: %+v", b.Stats())
}

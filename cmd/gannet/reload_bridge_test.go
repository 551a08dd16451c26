package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/internal/outside"
	"github.com/gannet-mqtt/gannet/snclient"
	"github.com/gannet-mqtt/gannet/snpacket"
)

// TestReloadBridgeRules runs the gannet binary with a bridge whose out rule
// bridges a/# to a server that is down, so what sensors publish on a/x
// waits in the bridge's queue. A reload then points the bridge at a real
// Mosquitto (a connection change) and replaces a/# with b/# (a rule
// change), without a restart: the queued a/x messages are still delivered,
// b/x is bridged from then on and a/x no longer is, and the sensors publish
// on through the same sessions, none lost.
func TestReloadBridgeRules(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gannet binary; skipped with -short")
	}
	mosquittoBin := outside.Program(t, "mosquitto", "mosquitto")
	dir := t.TempDir()
	gannet := bridgeBuildGannet(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	deadPort := bridgeFreePort(t, "tcp") // nothing listens there
	cfgPath, udp, mport := bridgeServeConfig(t, dir, `backoff_min = "20ms"
backoff_max = "200ms"

[[bridge.rule]]
pattern = "a/#"
direction = "out"
qos = 1
remote_prefix = "edge/"
`, true)
	httpAddr := fmt.Sprintf("127.0.0.1:%d", bridgeFreePort(t, "tcp"))
	edit := func(pairs ...string) {
		t.Helper()
		text, err := os.ReadFile(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(pairs); i += 2 {
			if !bytes.Contains(text, []byte(pairs[i])) {
				t.Fatalf("config has no %q:\n%s", pairs[i], text)
			}
			text = bytes.Replace(text, []byte(pairs[i]), []byte(pairs[i+1]), 1)
		}
		if err := os.WriteFile(cfgPath, text, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// First the bridge points at deadPort; the reload points it at mport.
	mserver, deadServer := fmt.Sprintf("127.0.0.1:%d\"]", mport), fmt.Sprintf("127.0.0.1:%d\"]", deadPort)
	edit(mserver, deadServer, "[mqtt]", fmt.Sprintf("[http]\nenabled = true\naddress = %q\n\n[mqtt]", httpAddr))
	p := bridgeStart(t, gannet, "serve", "-config", cfgPath)
	httpURL := "http://" + httpAddr
	metric := func(name string, labels ...string) float64 {
		t.Helper()
		return value(t, scrape(t, httpURL), name, labels...)
	}

	a := bridgeSensor(t, ctx, udp, "sensor-a")
	b := bridgeSensor(t, ctx, udp, "sensor-b")
	if a == nil || b == nil {
		t.FailNow()
	}
	defer a.Close()
	defer b.Close()
	publish := func(c *snclient.Client, topic string, from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := c.Publish(ctx, snclient.Named(topic), snpacket.QoS1, false, fmt.Appendf(nil, "%s %d", topic, i)); err != nil {
				t.Fatalf("%s: publish %s %d: %v", c.ClientID(), topic, i, err)
			}
		}
	}
	const queuedA, bridgedB = 20, 5
	publish(a, "a/x", 0, queuedA)
	publish(b, "b/x", 0, 1) // not bridged yet
	if got := metric("gannet_bridge_queue_messages", "bridge", "central"); got != queuedA {
		t.Fatalf("bridge queue before the reload = %v messages; want %d (a/x only)\n%s", got, queuedA, p.out)
	}

	// The observer first: Mosquitto and a subscriber, then the reload
	// that points the bridge there.
	m := bridgeMosquitto(t, mosquittoBin, dir, mport)
	msgs, _ := bridgeSubscriber(t, ctx, fmt.Sprintf("127.0.0.1:%d", mport), m, "edge/#")
	edit(deadServer, mserver, `pattern = "a/#"`, `pattern = "b/#"`)
	var out, errOut bytes.Buffer
	if rc := run(ctx, []string{"reload", "-url", httpURL}, nil, &out, &errOut); rc != 0 {
		t.Fatalf("gannet reload = %d: %s%s", rc, out.String(), errOut.String())
	}
	for _, want := range []string{`applied:      bridge "central": out rules: 1 (1 subscribed, 1 unsubscribed)`,
		`applied:      bridge "central": reconnected with the new servers`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("gannet reload printed %q; want %q in it", out.String(), want)
		}
	}
	if strings.Contains(out.String(), "not applied") {
		t.Errorf("gannet reload printed %q; want everything applied", out.String())
	}

	// The same sensors, the same sessions: b/x is bridged now, a/x not.
	publish(b, "b/x", 1, 1+bridgedB)
	publish(a, "a/x", queuedA, queuedA+1)

	want := map[string]bool{}
	for i := range queuedA {
		want[fmt.Sprintf("a/x %d", i)] = true
	}
	for i := 1; i <= bridgedB; i++ {
		want[fmt.Sprintf("b/x %d", i)] = true
	}
	got := map[string]bool{}
	for len(got) < len(want) {
		select {
		case s := <-msgs:
			if !want[s] {
				t.Fatalf("Mosquitto got %q; want only %d queued a/x and %d b/x after the reload", s, queuedA, bridgedB)
			}
			got[s] = true
		case <-ctx.Done():
			var missing []string
			for w := range want {
				if !got[w] {
					missing = append(missing, w)
				}
			}
			slices.Sort(missing)
			t.Fatalf("Mosquitto never got %v\n%s", missing, p.out)
		}
	}
	// Every message queued, by the old rule or the new, was counted once;
	// the a/x after the reload was not queued (its PUBACK came before this).
	if q := metric("gannet_bridge_messages_queued_total", "bridge", "central"); q != queuedA+bridgedB {
		t.Errorf("gannet_bridge_messages_queued_total = %v; want %d", q, queuedA+bridgedB)
	}
	if lost := metric("gannet_mqttsn_sensors_lost_total"); lost != 0 {
		t.Errorf("gannet_mqttsn_sensors_lost_total = %v; want 0", lost)
	}
	if active := metric("gannet_mqttsn_sensors", "state", "active"); active != 2 {
		t.Errorf("gannet_mqttsn_sensors{state=active} = %v; want 2", active)
	}
}

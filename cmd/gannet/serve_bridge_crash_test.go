package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/internal/outside"
	"github.com/gannet-mqtt/gannet/snclient"
	"github.com/gannet-mqtt/gannet/snpacket"
)

// TestServeBridgeSIGKILLWith1000InFlight: sensors publish 3,000 QoS 1
// messages through `gannet serve` to a Mosquitto that is stopped
// (SIGSTOP) after the bridge connected, so its acknowledgements stop; once
// the bridge reports 1,000 messages in flight ($SYS queue/inflight, its
// max_inflight and Mosquitto's Receive Maximum) gannet is SIGKILLed,
// Mosquitto resumes and gannet starts again from the same store. Every
// message a sensor got a PUBACK for arrives at a subscriber on Mosquitto,
// in per-sensor order; the duplicates (what was in flight at the kill and
// is sent again) are counted and stay within the documented bound,
// max_inflight.
func TestServeBridgeSIGKILLWith1000InFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gannet binary; skipped with -short")
	}
	mosquittoBin := outside.Program(t, "mosquitto", "mosquitto")
	dir := t.TempDir()
	gannet := bridgeBuildGannet(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	const window = 1000
	const sensors, each = 10, 300
	mport := bridgeFreePort(t, "tcp")
	lport := bridgeFreePort(t, "tcp")
	udp := fmt.Sprintf("127.0.0.1:%d", bridgeFreePort(t, "udp"))
	cfgPath := filepath.Join(dir, "config.toml")
	cfg := fmt.Sprintf(`[[listen]]
network = "udp4"
address = %q

[mqtt]
address = "127.0.0.1:%d"

[[bridge]]
name = "central"
servers = ["mqtt://127.0.0.1:%d"]
client_id = "gannet-edge-2"
session_expiry = "1h"
backoff_min = "20ms"
backoff_max = "200ms"
max_inflight = %d
sys_interval = "100ms"

[[bridge.rule]]
pattern = "site/#"
direction = "out"
qos = 1
`, udp, lport, mport, window)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	m := bridgeMosquitto(t, mosquittoBin, dir, mport, fmt.Sprintf("max_inflight_messages %d", window))
	msgs, _ := bridgeSubscriber(t, ctx, fmt.Sprintf("127.0.0.1:%d", mport), m, "site/#")
	p := bridgeStart(t, gannet, "serve", "-config", cfgPath)
	sys := bridgeSysWatcher(t, ctx, fmt.Sprintf("127.0.0.1:%d", lport), p)
	sys.await(t, ctx, p, "connected", func(v int) bool { return v == 1 })

	m.cmd.Process.Signal(syscall.SIGSTOP)
	stopped := true
	defer func() {
		if stopped {
			m.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	var wg sync.WaitGroup
	for s := range sensors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := bridgeSensor(t, ctx, udp, fmt.Sprintf("sensor-%d", s))
			if c == nil {
				return
			}
			defer c.Close()
			topic := snclient.Named(fmt.Sprintf("site/s%d", s))
			for i := range each {
				if err := c.Publish(ctx, topic, snpacket.QoS1, false, fmt.Appendf(nil, "%d %d", s, i)); err != nil {
					t.Errorf("sensor %d message %d: %v", s, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// Every message is acknowledged to its sensor; Mosquitto is stopped, so
	// the bridge fills its window and waits.
	sys.await(t, ctx, p, "queue/inflight", func(v int) bool { return v == window })
	p.kill()
	m.cmd.Process.Signal(syscall.SIGCONT)
	stopped = false
	p = bridgeStart(t, gannet, "serve", "-config", cfgPath)

	got := newInOrder(sensors, sensors*each)
	got.take(t, ctx, msgs, sensors*each, p)
	dups, distinct := got.dups, got.distinct
	t.Logf("killed with %d in flight: all %d messages from %d sensors arrived in order; %d duplicates", window, distinct, sensors, dups)
	if dups > window {
		t.Fatalf("%d duplicates after a SIGKILL with %d in flight; the documented bound is max_inflight = %d", dups, window, window)
	}
}

// sysWatcher is an MQTT client on gannet's own listener subscribed to its
// bridge's $SYS topics.
type sysWatcher struct {
	vals chan [2]string // topic suffix, value
}

// bridgeSysWatcher subscribes to $SYS/broker/bridge/central/# on gannet's
// MQTT listener at addr, retrying while the process p starts.
func bridgeSysWatcher(t *testing.T, ctx context.Context, addr string, p *bridgeProc) *sysWatcher {
	t.Helper()
	w := &sysWatcher{vals: make(chan [2]string, 1000)}
	const prefix = "$SYS/broker/bridge/central/"
	c := paho.NewClient(paho.ClientConfig{
		ClientID: "sys-watcher",
		Conn:     procDial(t, ctx, p, addr),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			select {
			case w.vals <- [2]string{strings.TrimPrefix(pr.Packet.Topic, prefix), string(pr.Packet.Payload)}:
			default: // the test reads them as they come; a value dropped here comes again next sys_interval
			}
			return true, nil
		}},
	})
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: "sys-watcher", CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect(&paho.Disconnect{}) })
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: prefix + "#"}}}); err != nil {
		t.Fatal(err)
	}
	return w
}

// await waits until the $SYS topic suffix has a value ok accepts.
func (w *sysWatcher) await(t *testing.T, ctx context.Context, p *bridgeProc, suffix string, ok func(int) bool) {
	t.Helper()
	last := "none"
	for {
		select {
		case v := <-w.vals:
			if v[0] != suffix {
				continue
			}
			last = v[1]
			if n, err := strconv.Atoi(v[1]); err == nil && ok(n) {
				return
			}
		case <-p.exit:
			t.Fatalf("gannet exited while waiting for $SYS %s (last %s):\n%s", suffix, last, p.out)
		case <-ctx.Done():
			t.Fatalf("$SYS %s never reached the value wanted (last %s): %v\n%s", suffix, last, ctx.Err(), p.out)
		}
	}
}

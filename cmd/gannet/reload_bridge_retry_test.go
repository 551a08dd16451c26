package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/bridge"
)

// TestReloadBridgeConnectRetrying: a reload whose bridge took the new
// section but could not start its connection (bridge.ErrConnectRetrying;
// the bridge retries on its own) records the new section as in force and
// reports the failure, so reloading the same file again finds nothing to
// change. (mqttcore/bridge's TestReconfigureFailedConnectKeepsTrying
// checks that such a bridge does connect; here Reconfigure is wrapped to
// report the failed start.)
func TestReloadBridgeConnectRetrying(t *testing.T) {
	broker, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	cfg := bridge.Config{
		Name:       "central",
		Servers:    []string{fmt.Sprintf("mqtt://127.0.0.1:%d", bridgeFreePort(t, "tcp"))}, // nobody listens: it need not connect
		BackoffMin: 20 * time.Millisecond,
		BackoffMax: 200 * time.Millisecond,
		Rules:      []bridge.Rule{{Pattern: "sensors/#", Direction: bridge.Out, QoS: 1, RemotePrefix: "r1/"}},
		Queue:      bridge.QueueConfig{Path: filepath.Join(t.TempDir(), "central.db")},
	}
	bs, err := startBridges(context.Background(), []bridge.Config{cfg}, broker, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.stop() })
	bs.reconfigure = func(b *bridge.Bridge, c bridge.Config) ([]string, error) {
		changes, err := b.Reconfigure(c)
		if err != nil {
			return changes, err
		}
		return changes, fmt.Errorf("%w: test: connection manager not started", bridge.ErrConnectRetrying)
	}
	next := cfg
	next.Rules = []bridge.Rule{{Pattern: "sensors/#", Direction: bridge.Out, QoS: 1, RemotePrefix: "r2/"}}

	applied, notApplied, inForce := bs.reload([]bridge.Config{cfg}, []bridge.Config{next})
	if want := []string{`bridge "central": out rules: 1 (0 subscribed, 0 unsubscribed)`}; !slices.Equal(applied, want) {
		t.Errorf("reload applied %q; want %q", applied, want)
	}
	if len(notApplied) != 1 || !strings.Contains(notApplied[0], "retrying with backoff") {
		t.Errorf("reload did not apply %q; want the failed start, retried, reported", notApplied)
	}
	if !reflect.DeepEqual(inForce, []bridge.Config{next}) {
		t.Errorf("reload records %+v in force; want the new section %+v", inForce, next)
	}
	if bl := bs.bridges(); len(bl) != 1 || !reflect.DeepEqual(bl[0].Config(), next) {
		t.Errorf("after the reload the bridges run %d, want 1 with the new section", len(bl))
	}

	applied, notApplied, inForce = bs.reload(inForce, []bridge.Config{next})
	if len(applied) != 0 || len(notApplied) != 0 || !reflect.DeepEqual(inForce, []bridge.Config{next}) {
		t.Errorf("reloading the same file again = applied %q, not applied %q, in force %+v; want nothing to do", applied, notApplied, inForce)
	}
}

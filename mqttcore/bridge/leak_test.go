package bridge_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/bridge"
)

// TestBridgeCloseLeavesNoGoroutines: after Close (connected, and while
// still retrying an unreachable server) every goroutine the bridge, its
// store and autopaho started is gone.
func TestBridgeCloseLeavesNoGoroutines(t *testing.T) {
	m := newMosquitto(t, "")
	m.start()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, server := range []string{m.url(), fmt.Sprintf("mqtt://127.0.0.1:%d", freePort(t))} {
		core, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		before := runtime.NumGoroutine()
		cfg := testConfig(t, "leak", server,
			bridge.Rule{Pattern: "a/#", Direction: bridge.Both, QoS: 1})
		cfg.SysInterval = 100 * time.Millisecond
		b, err := bridge.New(cfg, core, bridge.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if server == m.url() {
			if err := b.AwaitConnection(ctx); err != nil {
				t.Fatal(err)
			}
		}
		core.Inline("s").Publish(&mqttcore.Message{Topic: "a/1", QoS: 1})
		closeStart := time.Now()
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: Close took %v", server, time.Since(closeStart))
		core.Close()
		waitStart := time.Now()
		defer func() { t.Logf("%s: goroutines gone %v after Close", server, time.Since(waitStart)) }()
		for runtime.NumGoroutine() > before-1 { // the core's timer loop is gone too
			select { // goroutines finish asynchronously after Close; bounded by ctx
			case <-ctx.Done():
				buf := make([]byte, 1<<20)
				stacks := string(buf[:runtime.Stack(buf, true)])
				t.Fatalf("%s: %d goroutines after Close, %d before New:\n%s", server, runtime.NumGoroutine(), before,
					strings.Join(strings.SplitAfterN(stacks, "\n\n", 40), ""))
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

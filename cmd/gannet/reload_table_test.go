package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/auth"
)

// newTestLive builds what serve builds for a reload, in process and
// without sockets: a core, a gateway, the [mqtt.auth] authenticator, the
// rate limiters and the bridges, from the file at path.
func newTestLive(t *testing.T, path string) *liveConfig {
	t.Helper()
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.check(path); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	broker, err := mqttcore.New(cfg.Broker, mqttcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	authn, err := auth.New(cfg.MQTT.Auth)
	if err != nil {
		t.Fatal(err)
	}
	opts := gateway.Options{Logger: log}
	lim, err := cfg.RateLimit.apply(&opts)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(cfg.Gateway, broker, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	mqttSrv, stopMQTT, err := startMQTT(context.Background(), cfg.MQTT, broker, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopMQTT() })
	bridges, err := startBridges(context.Background(), cfg.Bridges, broker, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bridges.stop() }) // before broker.Close (cleanups run last first)
	level := new(slog.LevelVar)
	return &liveConfig{path: path, cfg: cfg, level: level, log: log, authn: authn, limiters: lim, gw: gw, broker: broker, bridges: bridges, mqtt: mqttSrv}
}

// TestReloadReports reloads a running configuration with one change at a
// time and checks the report, key by key: what applied live, what needs a
// restart and why, and that a broken file is rejected whole.
func TestReloadReports(t *testing.T) {
	const baseFormat = `
[mqtt]
%s
[[listen]]
network = "udp"
address = "127.0.0.1:0"
[store]
type = "memory"
[gateway]
loops = 2
`
	const mqttOn = `address = "127.0.0.1:0"`
	restartLoops := "gateway.loops changed: needs a restart (it sets the number of event loops)"
	tests := []struct {
		name       string
		mqtt       string // the [mqtt] table at start (default: disabled)
		extra      string // appended to base (a [gateway] table continues base's)
		replace    [2]string
		applied    []string
		notApplied []string
		errPart    string                    // rejected: the error contains this
		running    func(lc *liveConfig) bool // what runs after the reload
	}{
		{name: "unchanged"},
		{name: "gateway limits, and loops",
			extra:      "max_message_size = 200\nretry_interval = \"5s\"\nloops = 3\n",
			replace:    [2]string{"loops = 2\n", ""},
			applied:    []string{"gateway.max_message_size = 200", "gateway.retry_interval = 5s"},
			notApplied: []string{restartLoops},
			running: func(lc *liveConfig) bool {
				c := lc.gw.Config()
				return c.MaxMessageSize == 200 && c.RetryInterval == 5*time.Second && c.Loops == 2
			}},
		{name: "gateway keys fixed at start",
			extra: "loop_queue = 10\nmax_pending_auth = 3\n[gateway.qos_minus_one]\nclient_id = \"q\"\n",
			notApplied: []string{"gateway.loop_queue changed: needs a restart (it sizes each event loop's queue)",
				"gateway.max_pending_auth changed: needs a restart (it sizes the queue of password checks)",
				"gateway.qos_minus_one.client_id changed: needs a restart (it names the core client made at start)"}},
		{name: "gateway policies",
			extra:   "max_clients = 10\naddress_migration = [\"s-*\"]\n[gateway.qos_minus_one]\nenabled = true\n",
			applied: []string{"gateway.max_clients = 10", "gateway.address_migration = [s-*]", "gateway.qos_minus_one.enabled = true"}},
		{name: "predefined",
			extra:   "[[gateway.predefined]]\nid = 1\ntopic = \"a\"\n",
			applied: []string{"gateway.predefined = (1 topic ids)"}},
		{name: "broker limits",
			extra:   "[broker]\nmax_queued = 10\nhold_timeout = \"2s\"\nmax_sessions = 2000000\noverflow = \"drop-oldest\"\n",
			applied: []string{"broker.max_sessions = 2000000", "broker.max_queued = 10", "broker.overflow = drop-oldest", "broker.hold_timeout = 2s"},
			running: func(lc *liveConfig) bool { return lc.broker.Config().MaxQueued == 10 }},
		{name: "broker sys",
			extra:      "[broker]\nsys_interval = \"1m\"\nmax_retained = 5\n",
			applied:    []string{"broker.max_retained = 5"},
			notApplied: []string{"broker.sys_interval changed: needs a restart (the $SYS timers of the core, gateway and transparent mode are set at start)"}},
		{name: "listen",
			replace:    [2]string{`address = "127.0.0.1:0"`, `address = "127.0.0.1:1"`},
			notApplied: []string{"listen[0].address changed: needs a restart (the listeners are bound at start; DTLS files' contents are reread)"}},
		{name: "mqtt disabled",
			replace:    [2]string{"disabled = true", "disabled = true\naddress = \"127.0.0.1:1\"\nmax_connections = 5"},
			notApplied: []string{"mqtt.address changed: needs a restart (the MQTT listener is bound at start)", "mqtt.max_connections changed: needs a restart (the MQTT listener is bound at start)"}},
		{name: "mqtt limits", mqtt: mqttOn,
			replace:    [2]string{mqttOn, "address = \"127.0.0.1:1\"\nmax_connections = 5\nserver_keep_alive = \"60s\""},
			applied:    []string{"mqtt.max_connections = 5", "mqtt.server_keep_alive = 1m0s"},
			notApplied: []string{"mqtt.address changed: needs a restart (the MQTT listener is bound at start)"},
			running: func(lc *liveConfig) bool {
				return lc.mqtt.Config().MaxConnections == 5 && lc.mqtt.Config().ServerKeepAlive == time.Minute
			}},
		{name: "broker max_packet_size reaches the mqtt listener", mqtt: mqttOn,
			extra:   "[broker]\nmax_packet_size = 100000\nmax_payload_size = 50000\n",
			applied: []string{"broker.max_packet_size = 100000", "broker.max_payload_size = 50000", "mqtt.max_packet_size = 100000 (from broker.max_packet_size)"},
			running: func(lc *liveConfig) bool { return lc.mqtt.Config().MaxPacketSize == 100000 }},
		{name: "listener added",
			extra:      "[[listen]]\nnetwork = \"udp\"\naddress = \"127.0.0.1:0\"\n",
			notApplied: []string{"listen changed: needs a restart (the listeners are bound at start; DTLS files' contents are reread)"}},
		{name: "store",
			replace:    [2]string{`type = "memory"`, "type = \"memory\"\npath = \"x.db\""},
			notApplied: []string{"store.path changed: needs a restart (the store is opened at start)"}},
		{name: "bridge added",
			extra:   "[[bridge]]\nname = \"up\"\nservers = [\"mqtt://127.0.0.1:1\"]\n[bridge.queue]\npath = \"QDIR/up.db\"\n[[bridge.rule]]\npattern = \"a/#\"\ndirection = \"out\"\nqos = 1\n",
			applied: []string{`bridge "up" started`}},
		{name: "broken value", extra: "max_message_size = 3\n", errPart: "max_message_size = 3"},
		{name: "max_clients above max_sessions", extra: "[broker]\nmax_sessions = 100\n", errPart: "max_clients"},
		{name: "unknown key", extra: "max_mesage_size = 300\n", errPart: "max_mesage_size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "gannet.toml")
			if tt.mqtt == "" {
				tt.mqtt = "disabled = true"
			}
			base := fmt.Sprintf(baseFormat, tt.mqtt)
			if err := os.WriteFile(path, []byte(base), 0o600); err != nil {
				t.Fatal(err)
			}
			lc := newTestLive(t, path)
			before := *lc.cfg
			text := base
			if tt.replace[0] != "" {
				text = strings.Replace(text, tt.replace[0], tt.replace[1], 1)
			}
			text += strings.ReplaceAll(tt.extra, "QDIR", filepath.ToSlash(dir))
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			rep := lc.reload()
			if tt.errPart != "" {
				if !strings.Contains(rep.Error, tt.errPart) || len(rep.Applied)+len(rep.NotApplied) != 0 {
					t.Errorf("reload() = %+v; want rejected with %q, nothing applied", rep, tt.errPart)
				}
				if lc.gw.Config().MaxMessageSize != gateway.DefaultMaxMessageSize || lc.broker.Config().MaxSessions != mqttcore.DefaultMaxSessions {
					t.Errorf("after a rejected reload the gateway runs %+v and the core %+v; want the configuration from before", lc.gw.Config(), lc.broker.Config())
				}
				if lc.cfg.Gateway.Loops != before.Gateway.Loops || len(lc.cfg.Bridges) != 0 {
					t.Errorf("after a rejected reload the configuration in force changed")
				}
				return
			}
			if rep.Error != "" {
				t.Fatalf("reload() rejected: %s", rep.Error)
			}
			if !slices.Equal(rep.Applied, orEmpty(tt.applied)) {
				t.Errorf("applied = %q; want %q", rep.Applied, tt.applied)
			}
			if !slices.Equal(rep.NotApplied, orEmpty(tt.notApplied)) {
				t.Errorf("not applied = %q; want %q", rep.NotApplied, tt.notApplied)
			}
			if tt.running != nil && !tt.running(lc) {
				t.Errorf("after the reload the gateway runs %+v, the core %+v; want the change applied", lc.gw.Config(), lc.broker.Config())
			}
			// Reloading the same file again changes nothing: what was not
			// applied is remembered as running.
			if again := lc.reload(); len(again.Applied) != 0 || !slices.Equal(again.NotApplied, orEmpty(tt.notApplied)) {
				t.Errorf("second reload of the same file = %+v; want nothing applied, the same restarts", again)
			}
		})
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

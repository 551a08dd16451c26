package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/internal/config"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/radio"
)

// TestRootConfigLoads keeps the annotated config.toml at the repository
// root, which `gannet serve` runs with, valid.
func TestRootConfigLoads(t *testing.T) {
	cfg, err := loadConfig("../../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Listen) == 0 {
		t.Error("config.toml has no [[listen]] entry")
	}
	if st := cfg.Store.options(); st.CheckpointBytes != 8<<20 || st.CheckpointInterval != 2*time.Second {
		t.Errorf("store options = %+v; want config.toml's checkpoint_bytes and checkpoint_interval", st)
	}
	if cfg.Gateway.RetryInterval != 10*time.Second || cfg.Broker.SysInterval != 10*time.Second {
		t.Errorf("retry_interval, sys_interval = %v, %v; want 10s, 10s", cfg.Gateway.RetryInterval, cfg.Broker.SysInterval)
	}
	var out bytes.Buffer
	if rc := run(context.Background(), []string{"check-config", "-c", "../../config.toml"}, nil, &out, &out); rc != 0 {
		t.Errorf("gannet check-config -c config.toml = %d: %s", rc, out.String())
	}
}

// TestBrokenConfigs checks that a broken file stops start-up with an error
// that names the key (and line) at fault. Each case changes one line of the
// root config.toml, or appends one table.
func TestBrokenConfigs(t *testing.T) {
	root, err := os.ReadFile("../../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, key, line, want string
	}{
		{"unknown key", "retry_interval", `retry_intervall = "5s"`, `unknown key "gateway.retry_intervall"`},
		{"integer duration", "retry_interval", "retry_interval = 5", "gateway.retry_interval: a duration needs a unit"},
		{"negative limit", "max_clients", "max_clients = -1", "max_clients = -1"},
		{"huge loop queue", "loop_queue", "loop_queue = 100000000", "loop_queue = 100000000: must be 0 (default) to 65536"},
		{"negative pending auth", "max_pending_auth", "max_pending_auth = -1", "max_pending_auth = -1: must be 0 (default) to 65536"},
		{"bad paho forwarder", "paho_forwarders", `paho_forwarders = ["10.0.0.1"]`, `paho_forwarders "10.0.0.1"`},
		{"bad log level", "level", `level = "loud"`, `log.level = "loud"`},
		{"bad migration", "address_migration", `address_migration = ["a*b"]`, "address_migration[0]"},
		{"bad predefined", "", "[[gateway.predefined]]\nid = 1\ntopic = \"a/#\"", "contains a wildcard"},
		{"not toml", "", "[gateway", "line"},
		{"negative checkpoint", "checkpoint_bytes", "checkpoint_bytes = -1", "checkpoint bytes -1: negative"},
		{"integer checkpoint interval", "checkpoint_interval", "checkpoint_interval = 2", "store.checkpoint_interval: a duration needs a unit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := string(root)
			if tc.key == "" {
				text += "\n" + tc.line + "\n"
			} else {
				re := regexp.MustCompile("(?m)^" + tc.key + " = .*$")
				if !re.MatchString(text) {
					t.Fatalf("config.toml has no %q line", tc.key)
				}
				text = re.ReplaceAllLiteralString(text, tc.line)
			}
			path := filepath.Join(t.TempDir(), "gannet.toml")
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			rc := run(context.Background(), []string{"check-config", "-c", path}, nil, &out, &out)
			if rc != 1 || !strings.Contains(out.String(), tc.want) {
				t.Errorf("check-config = %d, %q; want 1 and an error containing %q", rc, out.String(), tc.want)
			}
			// Every one names the line, value errors included.
			if !regexp.MustCompile(`: line [1-9][0-9]*: `).MatchString(out.String()) {
				t.Errorf("check-config = %q; want the line named", out.String())
			}
		})
	}
}

// loadRootExample loads the root config.toml with the commented example
// between "# BEGIN <name> EXAMPLE" and "# END <name> EXAMPLE" uncommented,
// so that the examples users copy cannot rot.
func loadRootExample(t *testing.T, name string) *fileConfig {
	t.Helper()
	root, err := os.ReadFile("../../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(root)
	start, end := strings.Index(text, "# BEGIN "+name+" EXAMPLE\n"), strings.Index(text, "# END "+name+" EXAMPLE")
	if start < 0 || end < start {
		t.Fatalf("config.toml has no BEGIN/END %s EXAMPLE block", name)
	}
	var b strings.Builder
	b.WriteString(text[:start])
	for _, line := range strings.Split(text[start:end], "\n")[1:] {
		b.WriteString(strings.TrimPrefix(line, "# ") + "\n") // "# # x" stays a comment
	}
	b.WriteString(text[end:])
	path := filepath.Join(t.TempDir(), "gannet.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatalf("config.toml with the %s example uncommented: %v", name, err)
	}
	return cfg
}

func TestRateLimitConfig(t *testing.T) {
	root, err := os.ReadFile("../../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	// The default configuration turns both limits on, sized for a carrier
	// NAT (docs/security.md says why these numbers).
	cfg, err := loadConfig("../../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*radio.LimiterConfig{
		"unknown_sources": {Rate: 100, Burst: 1000, MaxSources: 100000},
		"qos_minus_one":   {Rate: 200, Burst: 2000, MaxSources: 10000},
	}
	for name, got := range map[string]*radio.LimiterConfig{"unknown_sources": cfg.RateLimit.UnknownSources, "qos_minus_one": cfg.RateLimit.QoSMinus1} {
		if got == nil || *got != *want[name] {
			t.Errorf("config.toml rate_limit.%s = %+v; want %+v", name, got, want[name])
		}
	}
	var opts gateway.Options
	lims, err := cfg.RateLimit.apply(&opts)
	if err != nil {
		t.Fatal(err)
	}
	if lims.unknown.p.Load() == nil || lims.qosMinus1.p.Load() == nil || opts.UnknownSourceLimiter == nil || opts.QoSMinus1Limiter == nil {
		t.Fatalf("limiters = %v, %v; want both", lims.unknown.p.Load(), lims.qosMinus1.p.Load())
	}
	// A table with a bad value is refused by name.
	bad := filepath.Join(t.TempDir(), "bad.toml")
	text := strings.Replace(string(root), "rate = 200.0", "rate = 0.0", 1)
	if err := os.WriteFile(bad, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadConfig(bad); err == nil || !strings.Contains(err.Error(), "rate_limit.qos_minus_one") {
		t.Errorf("loadConfig with rate = 0: %v; want an error naming rate_limit.qos_minus_one", err)
	}
}

// TestSessionLimitsConfig: config.toml gives persistent sensors a finite
// session expiry and the gateway a share of the broker's sessions that
// leaves room for MQTT clients; a share that does not is refused by name.
func TestSessionLimitsConfig(t *testing.T) {
	cfg, err := loadConfig("../../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Gateway.SessionExpiry != gateway.DefaultSessionExpiry || cfg.Gateway.MaxClients != gateway.DefaultMaxClients ||
		cfg.Gateway.MaxUnverified != gateway.DefaultMaxUnverified {
		t.Errorf("config.toml session_expiry, max_clients, max_unverified = %v, %d, %d; want the defaults %v, %d, %d",
			cfg.Gateway.SessionExpiry, cfg.Gateway.MaxClients, cfg.Gateway.MaxUnverified,
			gateway.DefaultSessionExpiry, gateway.DefaultMaxClients, gateway.DefaultMaxUnverified)
	}
	for _, tc := range []struct{ toml, want string }{
		{"[broker]\nmax_sessions = 800\n", "gateway.max_clients = 900000: must be below broker.max_sessions = 800"},
		{"[gateway]\nmax_clients = 1000000\n", "gateway.max_clients = 1000000: must be below broker.max_sessions = 1000000"},
		{"[gateway]\nmax_unverified = -1\n", "max_unverified = -1"},
	} {
		path := filepath.Join(t.TempDir(), "gannet.toml")
		text := "[[listen]]\nnetwork = \"udp\"\naddress = \"127.0.0.1:0\"\n" + tc.toml
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := loadConfig(path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("loadConfig(%q) = %v; want an error containing %q", tc.toml, err, tc.want)
		}
	}
}

// FuzzConfig decodes arbitrary files as config.toml. A broken file must be
// an error, never a panic; a file that is accepted must describe a gateway
// and broker that start with it (their own constructors agree with
// Validate).
func FuzzConfig(f *testing.F) {
	root, err := os.ReadFile("../../config.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(root)
	f.Add([]byte("[gateway]\nretry_interval = 5\n"))
	f.Add([]byte("[[listen]]\nnetwork = \"udp\"\naddress = \"127.0.0.1:0\"\n[gateway]\nmax_clients = -1\n"))
	f.Add([]byte("[[gateway.predefined]]\nid = 65535\ntopic = \"a\"\n"))
	f.Add([]byte("[rate_limit.qos_minus_one]\nrate = 1e308\nburst = 1\nmax_sources = 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var cfg fileConfig
		if err := config.Decode(data, &cfg); err != nil {
			return
		}
		b, err := mqttcore.New(cfg.Broker, mqttcore.Options{})
		if err != nil {
			t.Fatalf("config accepted but the broker refuses it: %v", err)
		}
		defer b.Close()
		g, err := gateway.New(cfg.Gateway, b, gateway.Options{})
		if err != nil {
			t.Fatalf("config accepted but the gateway refuses it: %v", err)
		}
		g.Close()
		var opts gateway.Options
		if _, err := cfg.RateLimit.apply(&opts); err != nil {
			t.Fatalf("config accepted but its rate limits are refused: %v", err)
		}
	})
}

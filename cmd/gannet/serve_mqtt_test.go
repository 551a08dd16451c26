package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/listener"
)

// TestRootConfigMQTT checks the [mqtt] defaults of the root config.toml:
// plain TCP on localhost, anonymous allowed, no TLS or WebSocket.
func TestRootConfigMQTT(t *testing.T) {
	cfg, err := loadConfig("../../config.toml")
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.MQTT
	if m.Disabled || m.Address != "127.0.0.1:1883" || m.TLS.Enabled() || m.WebSocket.Enabled() {
		t.Errorf("[mqtt] = %+v; want plain TCP on 127.0.0.1:1883 only", m)
	}
	if m.ConnectTimeout != 10*time.Second || m.WriteTimeout != 30*time.Second {
		t.Errorf("connect_timeout, write_timeout = %v, %v; want 10s, 30s", m.ConnectTimeout, m.WriteTimeout)
	}
	if m.Auth.PasswordFile != "" || m.Auth.ACLFile != "" || m.Auth.Anonymous != "" {
		t.Errorf("[mqtt.auth] = %+v; want no files and the default anonymous policy", m.Auth)
	}
}

// TestConfigMQTTTLSExampleLoads uncomments the MQTT TLS/WebSocket example
// in the root config.toml and loads it, so the example cannot rot.
func TestConfigMQTTTLSExampleLoads(t *testing.T) {
	cfg := loadRootExample(t, "MQTT TLS")
	if !cfg.MQTT.TLS.Enabled() || cfg.MQTT.TLS.Address != "127.0.0.1:8883" || !cfg.MQTT.WebSocket.Enabled() || !cfg.MQTT.WebSocket.TLS {
		t.Errorf("[mqtt] = %+v; want TLS on 127.0.0.1:8883 and wss", cfg.MQTT)
	}
}

// TestBrokenMQTTConfigs: bad [mqtt] values stop start-up with an error
// naming the key.
func TestBrokenMQTTConfigs(t *testing.T) {
	for _, tc := range []struct{ name, section, want string }{
		{"integer duration", "[mqtt]\nconnect_timeout = 10", "mqtt.connect_timeout: a duration needs a unit"},
		{"negative timeout", "[mqtt]\nwrite_timeout = \"-1s\"", "write_timeout"},
		{"unknown key", "[mqtt]\nport = 1883", `unknown key "mqtt.port"`},
		{"bad anonymous", "[mqtt.auth]\nanonymous = \"maybe\"", `anonymous = "maybe"`},
		{"deny without passwords", "[mqtt.auth]\nanonymous = \"deny\"", "without a password_file"},
		{"tls key without cert", "[mqtt.tls]\nkey_file = \"k.pem\"", "cert_file and key_file"},
		{"tiny max packet size", "[mqtt]\nmax_packet_size = 10", "max packet size 10"},
		{"nothing to listen on", "[mqtt]\naddress = \"-\"", "nothing to listen on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "gannet.toml")
			text := "[[listen]]\nnetwork = \"udp\"\naddress = \"127.0.0.1:1884\"\n\n" + tc.section + "\n"
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := loadConfig(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("loadConfig(%q) = %v; want an error containing %q", tc.section, err, tc.want)
			}
		})
	}
}

// TestStartMQTT starts the listener as serve does, connects a paho
// client, and checks that stop closes it.
func TestStartMQTT(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	broker, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	log := slog.New(slog.DiscardHandler)

	_, stop, err := startMQTT(ctx, mqttConfig{Disabled: true}, broker, log)
	if err != nil || stop() != nil {
		t.Fatalf("startMQTT(disabled) = %v", err)
	}

	// Find a free port, then start on it: startMQTT does not report the
	// bound address, so port 0 would not do.
	addr := freeTCPAddr(t)
	_, stop, err = startMQTT(ctx, mqttConfig{Config: listener.Config{Address: addr}}, broker, log)
	if err != nil {
		t.Fatalf("startMQTT(%s) = %v", addr, err)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		stop()
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := paho.NewClient(paho.ClientConfig{Conn: nc})
	if ca, err := c.Connect(ctx, &paho.Connect{ClientID: "serve-test", CleanStart: true}); err != nil {
		stop()
		t.Fatalf("Connect = %+v, %v", ca, err)
	}
	if info, ok := broker.Session("serve-test"); !ok || info.State != mqttcore.StateActive {
		t.Errorf("session serve-test = %+v, %v; want active", info, ok)
	}
	if err := stop(); err != nil {
		t.Errorf("stop = %v", err)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatalf("client still connected after stop: %v", ctx.Err())
	}
	if _, err := d.DialContext(ctx, "tcp", addr); err == nil {
		t.Errorf("dial %s after stop succeeded; want refused", addr)
	}

	// Without max_packet_size in [mqtt] the broker's limit applies: a
	// CONNECT above the broker's 64 bytes gets CONNACK 0x95.
	small, err := mqttcore.New(mqttcore.Config{SysDisabled: true, MaxPacketSize: 64, MaxPayloadSize: 64}, mqttcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	smallAddr := freeTCPAddr(t)
	_, stopSmall, err := startMQTT(ctx, mqttConfig{Config: listener.Config{Address: smallAddr}}, small, log)
	if err != nil {
		t.Fatalf("startMQTT with the broker's max_packet_size = %v", err)
	}
	defer stopSmall()
	nc2, err := d.DialContext(ctx, "tcp", smallAddr)
	if err != nil {
		t.Fatal(err)
	}
	c2 := paho.NewClient(paho.ClientConfig{Conn: nc2})
	if ca, err := c2.Connect(ctx, &paho.Connect{ClientID: strings.Repeat("x", 80), CleanStart: true}); err == nil || ca == nil || ca.ReasonCode != 0x95 {
		t.Errorf("80-byte client id with a 64-byte broker limit: Connect = %+v, %v; want CONNACK 0x95", ca, err)
	}

	// A port already in use is an error naming the listener.
	_, stop, err = startMQTT(ctx, mqttConfig{Config: listener.Config{Address: addr}}, broker, log)
	if err != nil {
		t.Fatalf("restart on %s = %v", addr, err)
	}
	defer stop()
	if _, _, err := startMQTT(ctx, mqttConfig{Config: listener.Config{Address: addr}}, broker, log); err == nil || !strings.Contains(err.Error(), "mqtt listener") {
		t.Errorf("startMQTT on a busy port = %v; want an mqtt listener error", err)
	}
}

// freeTCPAddr returns a loopback address with a port that was free a
// moment ago.
func freeTCPAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

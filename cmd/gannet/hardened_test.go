package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/auth"
	"github.com/gannet-mqtt/gannet/snclient"
	"github.com/gannet-mqtt/gannet/snpacket"
)

const hardenedPath = "../../docs/hardened.toml"

// TestHardenedConfig loads docs/hardened.toml and checks that it is what
// docs/security.md promises: DTLS only with identity binding, an ACL, no
// anonymous MQTT clients, rate limits on and a finite session expiry.
func TestHardenedConfig(t *testing.T) {
	cfg, err := loadConfig(hardenedPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range cfg.Listen {
		if l.Network != "dtls" {
			t.Errorf("listener %s %s: want DTLS only", l.Network, l.Address)
		}
		if r := l.DTLS.IdentityRule; r != "equal" && r != "map" {
			t.Errorf("listener %s: identity_rule %q; want equal or map", l.Address, r)
		}
		if l.DTLS.HandshakeRate <= 0 {
			t.Errorf("listener %s: no handshake rate limit", l.Address)
		}
	}
	a := cfg.MQTT.Auth
	if a.ACLFile == "" || a.PasswordFile == "" || a.Anonymous != auth.AnonymousDeny {
		t.Errorf("[mqtt.auth] = %+v; want an acl_file, a password_file and anonymous = deny", a)
	}
	if cfg.RateLimit.UnknownSources == nil {
		t.Error("[rate_limit.unknown_sources] missing")
	}
	if e := cfg.Gateway.SessionExpiry; e <= 0 || e == mqttcore.NeverExpire {
		t.Errorf("gateway session_expiry = %v; want finite", e)
	}
	if cfg.Gateway.QoSMinus1.Enabled {
		t.Error("QoS -1 enabled; it has no identity")
	}
	if cfg.Store.Path != "/var/lib/gannet/gannet.db" {
		t.Errorf("[store] path = %q; want the unit's StateDirectory, /var/lib/gannet", cfg.Store.Path)
	}
	// check-config also opens the files the example names, which live in
	// /etc/gannet on a real box, and checks that the store's directory
	// takes files: here its only complaints may be that they are missing
	// and that /var/lib is not writable.
	var out strings.Builder
	if rc := run(context.Background(), []string{"check-config", "-c", hardenedPath}, nil, &out, &out); rc != 0 {
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if strings.Contains(line, "[store] path") && strings.Contains(line, "/var/lib") {
				continue
			}
			if !strings.Contains(line, "/etc/gannet/") || !strings.Contains(line, "no such file or directory") {
				t.Errorf("gannet check-config -c docs/hardened.toml = %d: %s", rc, line)
			}
		}
	}
}

// TestHardenedConfigServes runs gannet serve with docs/hardened.toml, its
// paths and addresses pointed at the test's files and loopback ports: a
// DTLS sensor publishes where the ACL lets it and is refused elsewhere, a
// DTLS sensor with another client id than its identity is refused, an
// anonymous MQTT client is refused and a user from the password file gets
// the sensor's message.
func TestHardenedConfigServes(t *testing.T) {
	data, err := os.ReadFile(hardenedPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const key = "00112233445566778899aabbccddeeff"
	hash, err := auth.HashPassword([]byte("app-secret"), auth.PBKDF2SHA512)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"psk.txt":  "sensor-1:" + key + "\nsensor-2:" + key + "\n",
		"passwd":   "app:" + hash + "\n",
		"acl.conf": "user app\ntopic read sensors/#\npattern write sensors/%c/#\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dtlsAddr := fmt.Sprintf("127.0.0.1:%d", bridgeFreePort(t, "udp"))
	mqttAddr := fmt.Sprintf("127.0.0.1:%d", bridgeFreePort(t, "tcp"))
	cfg := strings.NewReplacer(
		"/etc/gannet/", dir+"/",
		"/var/lib/gannet/", dir+"/",
		`"0.0.0.0:8884"`, fmt.Sprintf("%q", dtlsAddr),
		`"127.0.0.1:1883"`, fmt.Sprintf("%q", mqttAddr),
		`level = "info"`, `level = "warn"`,
	).Replace(string(data))
	cfgPath := filepath.Join(dir, "hardened.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sctx, stop := context.WithCancel(ctx)
	served := make(chan int, 1)
	go func() { served <- run(sctx, []string{"serve", "-c", cfgPath}, nil, io.Discard, io.Discard) }() // ends with sctx
	defer func() {
		stop()
		if rc := <-served; rc != 0 {
			t.Errorf("gannet serve exited %d", rc)
		}
	}()

	// An anonymous MQTT client is refused (and shows the listener is up).
	var conn net.Conn
	for conn == nil {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", mqttAddr)
		switch {
		case err == nil:
			conn = c
		case ctx.Err() != nil:
			t.Fatalf("gannet did not listen on %s: %v", mqttAddr, err)
		default:
			select { // poll the port of a server starting in this process; bounded by ctx
			case <-time.After(10 * time.Millisecond):
			case served := <-served:
				t.Fatalf("gannet serve exited %d", served)
			}
		}
	}
	anon := paho.NewClient(paho.ClientConfig{Conn: conn})
	if ack, err := anon.Connect(ctx, &paho.Connect{ClientID: "anon", CleanStart: true}); err == nil {
		t.Errorf("anonymous CONNECT accepted (%+v); want refused", ack)
	}
	conn.Close()

	got := make(chan aclMsg, 16)
	conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", mqttAddr)
	if err != nil {
		t.Fatal(err)
	}
	app := paho.NewClient(paho.ClientConfig{Conn: conn, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) {
			got <- aclMsg{pr.Packet.Topic, string(pr.Packet.Payload), pr.Packet.Retain}
			return true, nil
		}}})
	if _, err := app.Connect(ctx, &paho.Connect{ClientID: "app", CleanStart: true, KeepAlive: 30,
		Username: "app", UsernameFlag: true, Password: []byte("app-secret"), PasswordFlag: true}); err != nil {
		t.Fatalf("app CONNECT with its password: %v", err)
	}
	defer app.Disconnect(&paho.Disconnect{})
	if _, err := app.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "sensors/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}

	gw, err := net.ResolveUDPAddr("udp4", dtlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	imposter := dialSensor(t, ctx, gw, "sensor-2", key, "sensor-1", nil)
	mustRefuse(t, "dtls CONNECT as sensor-1 with sensor-2's key", imposter.Connect(ctx))
	s := dialSensor(t, ctx, gw, "sensor-1", key, "sensor-1", nil)
	if err := s.Connect(ctx); err != nil {
		t.Fatalf("dtls connect: %v", err)
	}
	mustRefuse(t, "publish to sensors/sensor-2/t", s.Publish(ctx, snclient.Named("sensors/sensor-2/t"), snpacket.QoS1, false, []byte("DENIED")))
	_, err = s.Subscribe(ctx, snclient.Named("sensors/#"), snpacket.QoS1)
	mustRefuse(t, "subscribe sensors/#", err)
	if err := s.Publish(ctx, snclient.Named("sensors/sensor-1/t"), snpacket.QoS1, false, []byte("21.5")); err != nil {
		t.Fatalf("publish to its own topic: %v", err)
	}
	aclWaitFor(t, ctx, got, "sensors/sensor-1/t", "21.5")
}

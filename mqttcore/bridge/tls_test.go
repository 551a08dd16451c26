package bridge_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/bridge"
)

// testPKI is a CA with a server and a client certificate, as PEM files.
type testPKI struct {
	dir                                              string
	ca, serverCert, serverKey, clientCert, clientKey string
}

func newTestPKI(t testing.TB, serverDNS string) testPKI {
	t.Helper()
	p := testPKI{dir: t.TempDir()}
	p.ca, p.serverCert, p.serverKey = filepath.Join(p.dir, "ca.pem"), filepath.Join(p.dir, "server.pem"), filepath.Join(p.dir, "server.key")
	p.clientCert, p.clientKey = filepath.Join(p.dir, "client.pem"), filepath.Join(p.dir, "client.key")
	now := time.Now()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gannet test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	writePEM(t, p.ca, "CERTIFICATE", caDER)
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, dns []string, certPath, keyPath string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, certPath, "CERTIFICATE", der)
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, keyPath, "EC PRIVATE KEY", kder)
	}
	leaf(2, serverDNS, x509.ExtKeyUsageServerAuth, []string{serverDNS}, p.serverCert, p.serverKey)
	leaf(3, "gannet-edge-1", x509.ExtKeyUsageClientAuth, nil, p.clientCert, p.clientKey)
	return p
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBridgeTLS bridges over mutual TLS to a Mosquitto listener that
// requires a client certificate; the server certificate names only
// "broker.test", so server_name (SNI and verification) is exercised too.
func TestBridgeTLS(t *testing.T) {
	pki := newTestPKI(t, "broker.test")
	tlsPort := freePort(t)
	m := newMosquitto(t, fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n",
		tlsPort, pki.ca, pki.serverCert, pki.serverKey))
	m.start(tlsPort)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	remote := dialRemote(t, ctx, fmt.Sprintf("127.0.0.1:%d", m.port), "watcher")
	remote.subscribe(t, ctx, "edge/#", 1)

	tests := []struct {
		name    string
		tls     bridge.TLSConfig
		connect bool
		log     string
	}{
		{"mutual TLS", bridge.TLSConfig{CAFile: pki.ca, CertFile: pki.clientCert, KeyFile: pki.clientKey, ServerName: "broker.test"}, true, ""},
		{"wrong server name", bridge.TLSConfig{CAFile: pki.ca, CertFile: pki.clientCert, KeyFile: pki.clientKey}, false, "certificate"},
		{"no client certificate", bridge.TLSConfig{CAFile: pki.ca, ServerName: "broker.test"}, false, "connect failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			core := newCore(t)
			cfg := testConfig(t, "tls", fmt.Sprintf("mqtts://127.0.0.1:%d", tlsPort),
				bridge.Rule{Pattern: "#", Direction: bridge.Out, QoS: 1, LocalPrefix: "sensors/", RemotePrefix: "edge/"})
			cfg.TLS = tc.tls
			log, lr := testLogger(t)
			b := newBridge(t, cfg, core, log)
			if !tc.connect {
				lr.waitFor(t, ctx, tc.log)
				if b.Stats().Connected {
					t.Fatal("bridge connected; want a TLS failure")
				}
				return
			}
			if err := b.AwaitConnection(ctx); err != nil {
				t.Fatal(err)
			}
			core.Inline("s").Publish(&mqttcore.Message{Topic: "sensors/t", Payload: []byte("over tls"), QoS: 1})
			if p := remote.next(t, ctx); p.Topic != "edge/t" || string(p.Payload) != "over tls" {
				t.Fatalf("remote got %q %q; want edge/t over tls", p.Topic, p.Payload)
			}
		})
	}
}

// TestBridgeWebSocket bridges over ws:// to Mosquitto's WebSocket listener.
func TestBridgeWebSocket(t *testing.T) {
	wsPort := freePort(t)
	m := newMosquitto(t, fmt.Sprintf("listener %d 127.0.0.1\nprotocol websockets\n", wsPort))
	m.start(wsPort)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	remote := dialRemote(t, ctx, fmt.Sprintf("127.0.0.1:%d", m.port), "watcher")
	remote.subscribe(t, ctx, "ws/#", 1)
	core := newCore(t)
	cfg := testConfig(t, "ws", fmt.Sprintf("ws://127.0.0.1:%d/mqtt", wsPort),
		bridge.Rule{Pattern: "#", Direction: bridge.Out, QoS: 1, LocalPrefix: "sensors/", RemotePrefix: "ws/"})
	b := newBridge(t, cfg, core, nil)
	if err := b.AwaitConnection(ctx); err != nil {
		t.Fatal(err)
	}
	core.Inline("s").Publish(&mqttcore.Message{Topic: "sensors/t", Payload: []byte("over websocket"), QoS: 1})
	if p := remote.next(t, ctx); p.Topic != "ws/t" || string(p.Payload) != "over websocket" {
		t.Fatalf("remote got %q %q; want ws/t over websocket", p.Topic, p.Payload)
	}
}

// TestBridgeFailover: with the first server down, the bridge connects to
// the next one in the list.
func TestBridgeFailover(t *testing.T) {
	m := newMosquitto(t, "")
	m.start()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dead := fmt.Sprintf("mqtt://127.0.0.1:%d", freePort(t))
	cfg := testConfig(t, "failover", dead, bridge.Rule{Pattern: "a/#", Direction: bridge.Out, QoS: 1})
	cfg.Servers = append(cfg.Servers, m.url())
	log, lr := testLogger(t)
	b := newBridge(t, cfg, newCore(t), log)
	if err := b.AwaitConnection(ctx); err != nil {
		t.Fatal(err)
	}
	lr.waitFor(t, ctx, "bridge connected", "server="+m.url())
}

// TestBridgeRemoteRefusal: a message the remote refuses (Mosquitto's ACL
// answers PUBACK "not authorized") is counted and logged, and the queue
// moves on.
func TestBridgeRemoteRefusal(t *testing.T) {
	acl := filepath.Join(t.TempDir(), "acl")
	if err := os.WriteFile(acl, []byte("topic readwrite ok/#\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := newMosquitto(t, "acl_file "+acl+"\n")
	m.start()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	remote := dialRemote(t, ctx, fmt.Sprintf("127.0.0.1:%d", m.port), "watcher")
	remote.subscribe(t, ctx, "ok/#", 1)
	core := newCore(t)
	log, lr := testLogger(t)
	b := newBridge(t, testConfig(t, "acl", m.url(), bridge.Rule{Pattern: "#", Direction: bridge.Out, QoS: 1}), core, log)
	if err := b.AwaitConnection(ctx); err != nil {
		t.Fatal(err)
	}
	s := core.Inline("s")
	s.Publish(&mqttcore.Message{Topic: "denied/x", QoS: 1})
	s.Publish(&mqttcore.Message{Topic: "ok/x", QoS: 1})
	lr.waitFor(t, ctx, "remote refused a message", "reason_code=0x87")
	if p := remote.next(t, ctx); p.Topic != "ok/x" {
		t.Fatalf("remote got %q; want ok/x", p.Topic)
	}
	if st := b.Stats(); st.RemoteRefused != 1 {
		t.Fatalf("RemoteRefused = %d; want 1", st.RemoteRefused)
	}
}

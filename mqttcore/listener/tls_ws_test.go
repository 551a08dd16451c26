package listener_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/gorilla/websocket"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/listener"
)

// testPKI is a throwaway CA with a server certificate for 127.0.0.1 and
// a client certificate, written as PEM files.
type testPKI struct {
	caFile, certFile, keyFile     string
	clientCertFile, clientKeyFile string
	pool                          *x509.CertPool
	clientCert                    tls.Certificate
}

// newTestPKI generates the CA and certificates in t's temporary directory.
func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatalf("GenerateKey: %v", err)
		}
		return k
	}
	writePEM := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gannet test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("CreateCertificate(CA): %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			IPAddresses:  ips,
			DNSNames:     []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatalf("CreateCertificate(%s): %v", cn, err)
		}
		return der, k
	}
	p := &testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = writePEM("ca.pem", "CERTIFICATE", caDER)

	srvDER, srvKey := issue(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.certFile = writePEM("server.pem", "CERTIFICATE", srvDER)
	kb, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	p.keyFile = writePEM("server.key", "PRIVATE KEY", kb)

	cliDER, cliKey := issue(3, "client", x509.ExtKeyUsageClientAuth, nil)
	p.clientCertFile = writePEM("client.pem", "CERTIFICATE", cliDER)
	kb, err = x509.MarshalPKCS8PrivateKey(cliKey)
	if err != nil {
		t.Fatal(err)
	}
	p.clientKeyFile = writePEM("client.key", "PRIVATE KEY", kb)
	if p.clientCert, err = tls.LoadX509KeyPair(p.clientCertFile, p.clientKeyFile); err != nil {
		t.Fatal(err)
	}
	return p
}

// dialPahoTLS connects paho over TLS with the given client config.
func dialPahoTLS(t testing.TB, ctx context.Context, addr string, tc *tls.Config, cp *paho.Connect) (*pahoClient, *paho.Connack, error) {
	t.Helper()
	d := tls.Dialer{Config: tc}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	// tls.Conn writes are not safe for concurrent use; paho writes from
	// several goroutines.
	return connectPaho(t, ctx, packets.NewThreadSafeConn(nc), cp)
}

func TestTLSListener(t *testing.T) {
	ctx := testCtx(t)
	pki := newTestPKI(t)
	ts := startServer(t, listener.Config{TLS: listener.TLSConfig{
		Address: "127.0.0.1:0", CertFile: pki.certFile, KeyFile: pki.keyFile,
	}}, mqttcore.Config{})
	tlsAddr := ts.srv.Addr("tls").String()

	// paho over TLS, verifying the server against the test CA.
	sub, _, err := dialPahoTLS(t, ctx, tlsAddr, &tls.Config{RootCAs: pki.pool, ServerName: "127.0.0.1"}, &paho.Connect{ClientID: "tls-sub", CleanStart: true})
	if err != nil {
		t.Fatalf("paho over TLS: %v", err)
	}
	sub.subscribe(t, ctx, 1, 1, "secure/#")

	// Plain MQTT on the TLS port fails the handshake; nothing is served.
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = nc.Write(connect5)
	buf := make([]byte, 64)
	if n, _ := nc.Read(buf); n > 0 && buf[0] == 0x20 {
		t.Errorf("plain CONNECT on the TLS port got a CONNACK %x", buf[:n])
	}
	_ = nc.Close()

	// A client that does not trust the CA fails verification.
	if _, _, err := dialPahoTLS(t, ctx, tlsAddr, &tls.Config{ServerName: "127.0.0.1"}, &paho.Connect{ClientID: "untrusting", CleanStart: true}); err == nil {
		t.Errorf("TLS dial without the test CA succeeded; want a verification error")
	}

	// mosquitto_pub and mosquitto_sub with --cafile.
	if _, err := os.Stat(pki.caFile); err != nil {
		t.Fatal(err)
	}
	tlsTS := &testServer{broker: ts.broker, srv: ts.srv, addr: tlsAddr}
	for _, v := range versions {
		mustMosqPub(t, ctx, tlsTS, "--cafile", pki.caFile, "-V", v, "-q", "1", "-t", "secure/"+v, "-m", "over tls")
		sub.expectMsg(t, ctx, "secure/"+v, "over tls", 1)
		ms := startMosqSub(t, ctx, tlsTS, "--cafile", pki.caFile, "-V", v, "-q", "1", "-t", "secure/to-mosq", "-C", "1", "-W", "15")
		sub.publish(t, ctx, "secure/to-mosq", "hello "+v, 1, false)
		ms.expect(t, ctx, "secure/to-mosq 1 0 hello "+v)
		if err := ms.wait(t, ctx); err != nil {
			t.Fatalf("mosquitto_sub over TLS: %v\n%s", err, ms.output())
		}
		sub.expectMsg(t, ctx, "secure/to-mosq", "hello "+v, 1) // sub sees its own publish
	}
}

func TestTLSClientCertificate(t *testing.T) {
	ctx := testCtx(t)
	pki := newTestPKI(t)
	ts := startServer(t, listener.Config{Address: "-", TLS: listener.TLSConfig{
		Address: "127.0.0.1:0", CertFile: pki.certFile, KeyFile: pki.keyFile, ClientCAFile: pki.caFile,
	}}, mqttcore.Config{})
	if ts.srv.Addr("tcp") != nil {
		t.Errorf("address \"-\" opened a plain TCP listener at %v", ts.srv.Addr("tcp"))
	}
	tlsAddr := ts.srv.Addr("tls").String()
	base := &tls.Config{RootCAs: pki.pool, ServerName: "127.0.0.1"}

	withCert := base.Clone()
	withCert.Certificates = []tls.Certificate{pki.clientCert}
	c, _, err := dialPahoTLS(t, ctx, tlsAddr, withCert, &paho.Connect{ClientID: "with-cert", CleanStart: true})
	if err != nil {
		t.Fatalf("connect with a client certificate: %v", err)
	}
	c.subscribe(t, ctx, 0, 0, "x")

	// Without a certificate the server refuses the handshake. With TLS 1.3
	// the client learns it on its first read, so run a full CONNECT.
	if _, ca, err := dialPahoTLS(t, ctx, tlsAddr, base.Clone(), &paho.Connect{ClientID: "no-cert", CleanStart: true}); err == nil {
		t.Errorf("connect without a client certificate = %+v; want an error", ca)
	}

	tlsTS := &testServer{broker: ts.broker, srv: ts.srv, addr: tlsAddr}
	mustMosqPub(t, ctx, tlsTS, "--cafile", pki.caFile, "--cert", pki.clientCertFile, "--key", pki.clientKeyFile, "-t", "x", "-m", "certified")
	c.expectMsg(t, ctx, "x", "certified", 0)
	if out, err := mosqPub(t, ctx, tlsTS, "--cafile", pki.caFile, "-t", "x", "-m", "anonymous"); err == nil {
		t.Errorf("mosquitto_pub without a client certificate succeeded: %s", out)
	}
	c.quiet(t, ctx)
}

// TestWebSocketAutopaho connects autopaho over ws:// and exchanges
// messages with a plain TCP paho client.
func TestWebSocketAutopaho(t *testing.T) {
	ctx := testCtx(t)
	ts := startServer(t, listener.Config{WebSocket: listener.WebSocketConfig{Address: "127.0.0.1:0"}}, mqttcore.Config{})
	wsAddr := ts.srv.Addr("websocket").String()
	u, err := url.Parse("ws://" + wsAddr + listener.DefaultWebSocketPath)
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(chan *paho.Publish, 16)
	cmCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cm, err := autopaho.NewConnection(cmCtx, autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     30,
		CleanStartOnInitialConnection: true,
		ConnectRetryDelay:             50 * time.Millisecond,
		ConnectTimeout:                5 * time.Second,
		OnConnectError:                func(err error) { t.Logf("autopaho connect error: %v", err) },
		ClientConfig: paho.ClientConfig{
			ClientID: "ws-client",
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){
				func(pr paho.PublishReceived) (bool, error) {
					msgs <- pr.Packet
					return true, nil
				},
			},
		},
	})
	if err != nil {
		t.Fatalf("autopaho.NewConnection: %v", err)
	}
	defer func() {
		_ = cm.Disconnect(ctx)
		<-cm.Done()
	}()
	if err := cm.AwaitConnection(ctx); err != nil {
		t.Fatalf("AwaitConnection over WebSocket: %v", err)
	}
	if _, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "ws/#", QoS: 2}}}); err != nil {
		t.Fatalf("Subscribe over WebSocket: %v", err)
	}
	tcp := mustPaho(t, ctx, ts.addr, &paho.Connect{ClientID: "tcp", CleanStart: true})
	tcp.subscribe(t, ctx, 1, 1, "tcp/#")
	tcp.publish(t, ctx, "ws/in", "to websocket", 2, false)
	select {
	case m := <-msgs:
		if m.Topic != "ws/in" || string(m.Payload) != "to websocket" || m.QoS != 2 {
			t.Errorf("WebSocket client received (%q, %q, qos %d)", m.Topic, m.Payload, m.QoS)
		}
	case <-ctx.Done():
		t.Fatalf("WebSocket client received nothing: %v", ctx.Err())
	}
	if _, err := cm.Publish(ctx, &paho.Publish{Topic: "tcp/in", Payload: []byte("from websocket"), QoS: 1}); err != nil {
		t.Fatalf("Publish over WebSocket: %v", err)
	}
	tcp.expectMsg(t, ctx, "tcp/in", "from websocket", 1)
	if st, ok := ts.sessionState("ws-client"); !ok || st != mqttcore.StateActive {
		t.Errorf("ws-client session = %v, %v; want active", st, ok)
	}
}

// TestWebSocketRequiresSubprotocol: a WebSocket client that does not offer
// the "mqtt" subprotocol is refused [MQTT-6.0.0-3] and counted.
func TestWebSocketRequiresSubprotocol(t *testing.T) {
	ctx := testCtx(t)
	ts := startServer(t, listener.Config{WebSocket: listener.WebSocketConfig{Address: "127.0.0.1:0"}}, mqttcore.Config{})
	u := "ws://" + ts.srv.Addr("websocket").String() + listener.DefaultWebSocketPath
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
	if err != nil {
		t.Fatalf("websocket.Dial(%s) = %v", u, err)
	}
	defer ws.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = ws.SetReadDeadline(dl)
	}
	_, _, err = ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
		t.Errorf("Read after dialing without the mqtt subprotocol: %v; want close status %v", err, websocket.ClosePolicyViolation)
	}
	if got := ts.srv.Stats().ProtocolErrors; got != 1 {
		t.Errorf("Stats().ProtocolErrors = %d; want 1", got)
	}
}

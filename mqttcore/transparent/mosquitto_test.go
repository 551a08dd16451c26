package transparent_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/internal/outside"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/transparent"
)

// startMosquitto runs an anonymous Mosquitto on a free port until the
// test ends and returns its address.
func startMosquitto(t *testing.T, ctx context.Context) string {
	t.Helper()
	return startMosquittoWith(t, ctx, "")
}

// startMosquittoWith is startMosquitto with extra configuration lines (such
// as another listener), waiting for morePorts to accept too.
func startMosquittoWith(t *testing.T, ctx context.Context, extra string, morePorts ...int) string {
	t.Helper()
	bin := outside.Program(t, "mosquitto", "mosquitto")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port)
	conf += extra
	ports := append([]int{port}, morePorts...)
	if os.Geteuid() == 0 {
		conf += "user root\n"
	}
	path := filepath.Join(t.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { // exits with the process
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	for _, p := range ports {
		for {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err == nil {
				c.Close()
				break
			}
			select { // poll an outside process's port, bounded by ctx
			case <-ctx.Done():
				t.Fatalf("mosquitto did not start: %v", err)
			case <-exited:
				t.Fatal("mosquitto exited")
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// sink is an UpstreamSink that records what the link hands it.
type sink struct {
	msgs  chan *mqttcore.Message
	taken chan struct{}
	once  sync.Once
}

func newSink() *sink {
	return &sink{msgs: make(chan *mqttcore.Message, 100), taken: make(chan struct{})}
}

func (s *sink) Deliver(m *mqttcore.Message) error { s.msgs <- m; return nil }
func (s *sink) TakenOver()                        { s.once.Do(func() { close(s.taken) }) }

// observe subscribes a paho client to filter on addr.
func observe(t *testing.T, ctx context.Context, addr, filter string) <-chan *paho.Publish {
	t.Helper()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *paho.Publish, 100)
	c := paho.NewClient(paho.ClientConfig{Conn: conn, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) { ch <- pr.Packet; return true, nil }}})
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: "observer", CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect(&paho.Disconnect{}) })
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	return ch
}

func newUpstream(t *testing.T, addr string, closeOnSleep bool) *transparent.Upstream {
	t.Helper()
	u, err := transparent.New(transparent.Config{Enabled: true, Server: "mqtt://" + addr, ClientIDs: []string{"s-*"},
		CloseOnSleep: closeOnSleep, SessionExpiry: time.Hour, ConnectTimeout: 5 * time.Second}, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

// attachLink opens and connects clientID's link, failing the test on a
// refusal.
func attachLink(t *testing.T, ctx context.Context, u *transparent.Upstream, id string, in mqttcore.UpstreamSink, will *mqttcore.Will) mqttcore.UpstreamLink {
	t.Helper()
	l := u.Open(id, in)
	done := make(chan error, 1)
	if !l.Attach(mqttcore.ConnectOptions{ClientID: id, SessionExpiry: time.Hour, Will: will}, false, func(err error) { done <- err }) {
		t.Fatal("Attach of a new link did not connect")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("connect %s: %v", id, err)
		}
	case <-ctx.Done():
		t.Fatal("no CONNACK")
	}
	return l
}

func next(t *testing.T, ctx context.Context, ch <-chan *paho.Publish, what string) *paho.Publish {
	t.Helper()
	select {
	case p := <-ch:
		return p
	case <-ctx.Done():
		t.Fatalf("no %s", what)
		return nil
	}
}

// TestTakenOverElsewhere: when the same client id connects through
// another gateway, the remote takes the session over. Mosquitto 2.0.11
// just closes the old connection (no DISCONNECT 0x8E, which would make the
// link tell its session); either way the old link does not reconnect on
// its own, not even to publish a will the core fires later, and the
// session works through the new gateway.
func TestTakenOverElsewhere(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr := startMosquitto(t, ctx)
	wills := observe(t, ctx, addr, "#")
	ua, ub := newUpstream(t, addr, false), newUpstream(t, addr, false)
	w := &mqttcore.Will{Topic: "will/s-1", Payload: []byte("bye"), QoS: 1}
	la := attachLink(t, ctx, ua, "s-1", newSink(), w)
	sb := newSink()
	lb := attachLink(t, ctx, ub, "s-1", sb, w)
	la.Offline(mqttcore.StateLost, 0) // the old gateway loses the sensor later
	la.PublishWill(w)
	subscribed := make(chan error, 1)
	lb.Subscribe("cmd/s-1", mqttcore.SubOptions{QoS: 1}, func(err error) { subscribed <- err })
	if err := <-subscribed; err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	lb.Publish(&mqttcore.Message{Topic: "cmd/s-1", Payload: []byte("through b"), QoS: 1}, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-sb.msgs:
		if string(m.Payload) != "through b" {
			t.Fatalf("b got %q", m.Payload)
		}
	case <-ctx.Done():
		t.Fatal("the session did not work through b")
	}
	// The observer sees b's publish and no will: the old gateway neither
	// reconnected nor published one (Mosquitto forwards in order, and its
	// close of a's connection came before b's CONNACK).
	if p := next(t, ctx, wills, "b's message"); p.Topic != "cmd/s-1" {
		t.Fatalf("observer got %s %q first; want b's message, no will", p.Topic, p.Payload)
	}
	if st := ua.Stats(); st.Connects != 1 {
		t.Fatalf("old gateway: %+v; want exactly one connect", st)
	}
}

// TestWillGoesUpstream: a lost sensor's will is published by the remote
// (DISCONNECT 0x04), the updated one after a will update; a sensor that
// was lost asleep, its connection closed, has its will published by the
// link.
func TestWillGoesUpstream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr := startMosquitto(t, ctx)
	wills := observe(t, ctx, addr, "will/#")
	u := newUpstream(t, addr, true)

	w1 := &mqttcore.Will{Topic: "will/s-1", Payload: []byte("lost"), QoS: 1}
	l1 := attachLink(t, ctx, u, "s-1", newSink(), w1)
	l1.Offline(mqttcore.StateLost, 0)
	l1.PublishWill(w1) // the core fires it too: it must not go twice
	if p := next(t, ctx, wills, "will of s-1"); p.Topic != "will/s-1" || string(p.Payload) != "lost" {
		t.Fatalf("got %s %q; want will/s-1 lost", p.Topic, p.Payload)
	}

	// A will update reaches the remote: the link reconnects with it,
	// resuming the session.
	w1b := &mqttcore.Will{Topic: "will/s-1b", Payload: []byte("first")}
	l1b := attachLink(t, ctx, u, "s-1b", newSink(), w1b)
	w1c := &mqttcore.Will{Topic: "will/s-1b", Payload: []byte("updated"), QoS: 1}
	l1b.SetWill(w1c)
	l1b.Offline(mqttcore.StateLost, 0)
	if p := next(t, ctx, wills, "will of s-1b"); string(p.Payload) != "updated" {
		t.Fatalf("got %s %q; want the updated will", p.Topic, p.Payload)
	}

	w2 := &mqttcore.Will{Topic: "will/s-2", Payload: []byte("never woke"), QoS: 1}
	l2 := attachLink(t, ctx, u, "s-2", newSink(), w2)
	l2.Offline(mqttcore.StateAsleep, time.Minute) // close_on_sleep: DISCONNECT 0x00, no will
	l2.PublishWill(w2)                            // the sleep deadline passed
	if p := next(t, ctx, wills, "will of s-2"); p.Topic != "will/s-2" || string(p.Payload) != "never woke" {
		t.Fatalf("got %s %q; want will/s-2 (and s-1's will only once)", p.Topic, p.Payload)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if st := u.Stats(); st.Connections != 0 {
		t.Fatalf("after Close: %+v; want no connection", st)
	}
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// TestCloseLeavesNoGoroutines: after Close every goroutine the links and
// their paho clients started is gone, and the connections are closed.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr := startMosquitto(t, ctx)
	before := runtime.NumGoroutine()
	u, err := transparent.New(transparent.Config{Enabled: true, Server: "mqtt://" + addr, ClientIDs: []string{"s-*"},
		CloseOnSleep: true, SessionExpiry: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		l := attachLink(t, ctx, u, fmt.Sprintf("s-%d", i), newSink(), nil)
		done := make(chan error, 1)
		l.Publish(&mqttcore.Message{Topic: "x", QoS: 1}, func(err error) { done <- err })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			l.Offline(mqttcore.StateAsleep, time.Minute)
		}
	}
	if st := u.Stats(); st.Connects != 3 || st.Published != 3 {
		t.Fatalf("stats %+v; want 3 connects and 3 publishes", st)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if st := u.Stats(); st.Connections != 0 {
		t.Fatalf("%d connections after Close", st.Connections)
	}
	for runtime.NumGoroutine() > before {
		select { // paho's goroutines finish asynchronously after Close; bounded by ctx
		case <-ctx.Done():
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before New:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// writeServerPKI writes a CA and a server certificate for dns, as PEM
// files, and returns their paths.
func writeServerPKI(t *testing.T, dns string) (ca, cert, key string) {
	t.Helper()
	dir := t.TempDir()
	ca, cert, key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	now := time.Now()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "transparent test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: dns}, DNSNames: []string{dns},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	for path, b := range map[string]*pem.Block{ca: {Type: "CERTIFICATE", Bytes: caDER}, cert: {Type: "CERTIFICATE", Bytes: srvDER},
		key: {Type: "EC PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return ca, cert, key
}

// TestTLS: over mqtts:// a sensor's session connects when the server's
// certificate verifies against ca_file with server_name, and is refused
// (ErrUnavailable: the sensor is told congestion and retries later) when
// it does not.
func TestTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ca, cert, key := writeServerPKI(t, "broker.test")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	startMosquittoWith(t, ctx, fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n", tlsPort, ca, cert, key), tlsPort)
	server := fmt.Sprintf("mqtts://127.0.0.1:%d", tlsPort)
	for _, tc := range []struct {
		name string
		tls  transparent.TLSConfig
		ok   bool
	}{
		{"verified", transparent.TLSConfig{CAFile: ca, ServerName: "broker.test"}, true},
		{"wrong server name", transparent.TLSConfig{CAFile: ca}, false},
		{"unknown CA", transparent.TLSConfig{ServerName: "broker.test"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := transparent.New(transparent.Config{Enabled: true, Server: server, TLS: tc.tls, ClientIDs: []string{"s-*"},
				ConnectTimeout: 5 * time.Second}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			link := u.Open("s-1", newSink())
			done := make(chan error, 1)
			link.Attach(mqttcore.ConnectOptions{ClientID: "s-1"}, false, func(err error) { done <- err })
			err = <-done
			switch {
			case tc.ok && err != nil:
				t.Fatalf("connect over TLS: %v", err)
			case !tc.ok && (err == nil || !errors.Is(err, mqttcore.ErrUnavailable)):
				t.Fatalf("connect over TLS = %v; want ErrUnavailable", err)
			case tc.ok:
				pub := make(chan error, 1)
				link.Publish(&mqttcore.Message{Topic: "t", Payload: []byte("over tls"), QoS: 1}, func(err error) { pub <- err })
				if err := <-pub; err != nil {
					t.Fatalf("publish over TLS: %v", err)
				}
			}
		})
	}
}

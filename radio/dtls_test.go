package radio

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
)

const (
	testKey1 = "000102030405060708090a0b0c0d0e0f"
	testKey2 = "f0e0d0c0b0a090807060504030201000"
)

func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func listenDTLST(t testing.TB, d DTLSConfig, opts ...DTLSOption) *DTLSLink {
	t.Helper()
	l, err := ListenDTLS(ListenerConfig{Network: "dtls", Address: "127.0.0.1:0", DTLS: d}, slog.New(slog.DiscardHandler), opts...)
	if err != nil {
		t.Fatalf("ListenDTLS = %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func pskLink(t testing.TB, d DTLSConfig) (*DTLSLink, string) {
	t.Helper()
	dir := t.TempDir()
	d.PSKFile = writeFile(t, dir, "psk", "# test keys\nsensor-1:"+testKey1+"\nsensor-2:"+testKey2+"\n")
	return listenDTLST(t, d), d.PSKFile
}

func hexKey(t testing.TB, s string) []byte {
	t.Helper()
	k, err := parsePSKs("test", []byte("x:"+s))
	if err != nil {
		t.Fatal(err)
	}
	return k["x"]
}

// dialPSK completes a pion/dtls PSK handshake with the server at addr.
func dialPSK(t testing.TB, addr net.Addr, identity, key string, extra ...dtls.ClientOption) (*dtls.Conn, error) {
	t.Helper()
	return dialPSKWithin(t, 10*time.Second, addr, identity, key, extra...)
}

// dialPSKWithin is dialPSK with a bound on the handshake, for handshakes
// expected to fail (a wrong key makes the server drop the client's Finished
// silently, so the client only gives up at its deadline).
func dialPSKWithin(t testing.TB, d time.Duration, addr net.Addr, identity, key string, extra ...dtls.ClientOption) (*dtls.Conn, error) {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	k := hexKey(t, key)
	opts := append([]dtls.ClientOption{
		dtls.WithPSK(func([]byte) ([]byte, error) { return k, nil }),
		dtls.WithPSKIdentityHint([]byte(identity)),
		dtls.WithCipherSuites(dtls.TLS_PSK_WITH_AES_128_CCM_8),
		dtls.WithConnectionIDGenerator(dtls.OnlySendCIDGenerator()),
	}, extra...)
	c, err := dtls.ClientWithOptions(pc, addr, opts...)
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); pc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := c.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// readLink reads one datagram from l within 10 s.
func readLink(t testing.TB, l *DTLSLink) (string, netip.AddrPort) {
	t.Helper()
	type r struct {
		b    string
		addr netip.AddrPort
		err  error
	}
	ch := make(chan r, 1)
	go func() {
		buf := make([]byte, 2048)
		n, a, err := l.ReadFromUDPAddrPort(buf)
		ch <- r{string(buf[:n]), a, err}
	}()
	select {
	case got := <-ch:
		if got.err != nil {
			t.Fatalf("link read: %v", got.err)
		}
		return got.b, got.addr
	case <-time.After(10 * time.Second):
		t.Fatal("nothing arrived on the link within 10 s")
	}
	return "", netip.AddrPort{}
}

func readConn(t testing.TB, c net.Conn) (string, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	return string(buf[:n]), err
}

func TestDTLSPSKSessionCarriesDatagramsBothWays(t *testing.T) {
	for _, suite := range []dtls.CipherSuiteID{dtls.TLS_PSK_WITH_AES_128_CCM_8, dtls.TLS_PSK_WITH_AES_128_CCM, dtls.TLS_PSK_WITH_AES_128_GCM_SHA256} {
		t.Run(suite.String(), func(t *testing.T) {
			l, _ := pskLink(t, DTLSConfig{})
			c, err := dialPSK(t, l.LocalAddr(), "sensor-1", testKey1, dtls.WithCipherSuites(suite))
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if _, err := c.Write([]byte("hello gateway")); err != nil {
				t.Fatal(err)
			}
			got, from := readLink(t, l)
			if got != "hello gateway" || !SyntheticPrefix.Contains(from.Addr()) {
				t.Fatalf("link read %q from %v; want \"hello gateway\" from an address in %v", got, from, SyntheticPrefix)
			}
			if id, ok := l.Identity(from); id != "sensor-1" || !ok {
				t.Errorf("Identity(%v) = %q, %v; want sensor-1, true", from, id, ok)
			}
			if _, err := l.WriteToUDPAddrPort([]byte("hello sensor"), from); err != nil {
				t.Fatal(err)
			}
			if got, err := readConn(t, c); got != "hello sensor" || err != nil {
				t.Fatalf("client read %q, %v; want \"hello sensor\"", got, err)
			}
			// The address is stable for the session.
			c.Write([]byte("again"))
			if _, from2 := readLink(t, l); from2 != from {
				t.Errorf("second datagram from %v; want the same address %v", from2, from)
			}
			if st := l.Stats(); st.Handshakes != 1 || st.Sessions != 1 || st.Received != 2 || st.Sent != 1 {
				t.Errorf("Stats() = %+v; want 1 handshake, 1 session, 2 received, 1 sent", st)
			}
		})
	}
}

func TestDTLSRefusesBadCredentials(t *testing.T) {
	for _, tc := range []struct {
		name, identity, key string
		d                   DTLSConfig
	}{
		{"wrong key", "sensor-1", testKey2, DTLSConfig{}},
		{"unknown identity", "intruder", testKey1, DTLSConfig{}},
		{"identity not in identity_map", "sensor-2", testKey2, DTLSConfig{IdentityRule: "map", IdentityMap: map[string]string{"sensor-1": "client-a"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := pskLink(t, tc.d)
			c, err := dialPSKWithin(t, time.Second, l.LocalAddr(), tc.identity, tc.key)
			if err == nil {
				// pion's client may finish before the server rejects its
				// Finished; then the server's alert ends the session.
				if _, rerr := readConn(t, c); rerr == nil {
					t.Fatal("handshake with bad credentials succeeded and the session works")
				}
			}
			if st := l.Stats(); st.Sessions != 0 || st.Handshakes != 0 {
				t.Errorf("Stats() = %+v; want no session", st)
			}
		})
	}
}

func TestDTLSIdentityMap(t *testing.T) {
	l, _ := pskLink(t, DTLSConfig{IdentityRule: "map", IdentityMap: map[string]string{"sensor-1": "client-a"}})
	c, err := dialPSK(t, l.LocalAddr(), "sensor-1", testKey1)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("x"))
	_, from := readLink(t, l)
	if id, ok := l.Identity(from); id != "client-a" || !ok {
		t.Errorf("Identity = %q, %v; want client-a, true", id, ok)
	}
	if id, ok := l.Identity(netip.MustParseAddrPort("[fd67:616e:6e65::99]:1")); ok {
		t.Errorf("Identity(no session) = %q, true; want false", id)
	}
}

// udpProxy relays between one client and a server; Switch moves its
// server-facing side to a new socket, as a NAT rebinding would.
type udpProxy struct {
	t      testing.TB
	front  *net.UDPConn
	server netip.AddrPort
	mu     sync.Mutex
	back   *net.UDPConn
	client netip.AddrPort
	wg     sync.WaitGroup
}

func newUDPProxy(t testing.TB, server netip.AddrPort) *udpProxy {
	p := &udpProxy{t: t, server: server, front: dialUDPT(t, "udp4", "127.0.0.1:0")}
	p.Switch()
	p.wg.Add(1)
	go func() { // exits when front is closed by Cleanup
		defer p.wg.Done()
		buf := make([]byte, 2048)
		for {
			n, from, err := p.front.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.client = from
			back := p.back
			p.mu.Unlock()
			back.WriteToUDPAddrPort(buf[:n], p.server)
		}
	}()
	t.Cleanup(func() { p.front.Close(); p.wg.Wait() })
	return p
}

// Switch opens a new server-facing socket; the old one stops relaying.
func (p *udpProxy) Switch() netip.AddrPort {
	back := dialUDPT(p.t, "udp4", "127.0.0.1:0")
	p.mu.Lock()
	old := p.back
	p.back = back
	p.mu.Unlock()
	if old != nil {
		old.Close()
	}
	p.wg.Add(1)
	go func() { // exits when back is closed (by the next Switch or Cleanup)
		defer p.wg.Done()
		buf := make([]byte, 2048)
		for {
			n, _, err := back.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			client := p.client
			p.mu.Unlock()
			p.front.WriteToUDPAddrPort(buf[:n], client)
		}
	}()
	return back.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestDTLSConnectionIDSurvivesAddressChange(t *testing.T) {
	l, _ := pskLink(t, DTLSConfig{})
	p := newUDPProxy(t, linkAddr(l))
	c, err := dialPSK(t, p.front.LocalAddr(), "sensor-1", testKey1)
	if err != nil {
		t.Fatalf("handshake through proxy: %v", err)
	}
	c.Write([]byte("before"))
	got, addr := readLink(t, l)
	if got != "before" {
		t.Fatalf("read %q; want before", got)
	}
	before, _ := l.RemoteAddr(addr)

	newSrc := p.Switch()
	c.Write([]byte("after"))
	got, addr2 := readLink(t, l)
	if got != "after" || addr2 != addr {
		t.Fatalf("after the address change read %q from %v; want \"after\" from the same session %v", got, addr2, addr)
	}
	// pion updates the peer address just after it hands the record over,
	// so wait (bounded) for it to follow before replying.
	deadline := time.Now().Add(10 * time.Second)
	after, _ := l.RemoteAddr(addr)
	for after.(*net.UDPAddr).AddrPort() != newSrc && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polling pion's state, bounded by deadline
		after, _ = l.RemoteAddr(addr)
	}
	if after.(*net.UDPAddr).AddrPort() != newSrc || after.String() == before.String() {
		t.Fatalf("session's peer address %v -> %v; want it to follow to %v", before, after, newSrc)
	}
	// Replies go to the new address.
	if _, err := l.WriteToUDPAddrPort([]byte("reply"), addr); err != nil {
		t.Fatal(err)
	}
	if got, err := readConn(t, c); got != "reply" || err != nil {
		t.Fatalf("client read %q, %v after the move; want reply", got, err)
	}
	if st := l.Stats(); st.Handshakes != 1 {
		t.Errorf("Handshakes = %d; want 1 (no new handshake after the move)", st.Handshakes)
	}
}

func TestDTLSReloadKeepsSessions(t *testing.T) {
	l, pskFile := pskLink(t, DTLSConfig{})
	c, err := dialPSK(t, l.LocalAddr(), "sensor-1", testKey1)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("one"))
	_, addr := readLink(t, l)

	// sensor-1's key changes, sensor-3 is added.
	os.WriteFile(pskFile, []byte("sensor-1:"+testKey2+"\nsensor-3:"+testKey1+"\n"), 0o600)
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("two"))
	if got, a := readLink(t, l); got != "two" || a != addr {
		t.Fatalf("after reload read %q from %v; want two from %v", got, a, addr)
	}
	if _, err := dialPSK(t, l.LocalAddr(), "sensor-3", testKey1); err != nil {
		t.Errorf("new identity after reload: %v", err)
	}
	if c2, err := dialPSKWithin(t, time.Second, l.LocalAddr(), "sensor-2", testKey2); err == nil {
		if _, rerr := readConn(t, c2); rerr == nil {
			t.Error("removed identity still handshakes after reload")
		}
	}
	// A broken file keeps the old keys.
	os.WriteFile(pskFile, []byte("garbage\n"), 0o600)
	if err := l.Reload(); err == nil {
		t.Error("Reload of a broken psk file succeeded")
	}
	if _, err := dialPSK(t, l.LocalAddr(), "sensor-3", testKey1); err != nil {
		t.Errorf("after a failed reload the previous keys stopped working: %v", err)
	}
	if st := l.Stats(); st.Reloads != 1 || st.ReloadFailures != 1 {
		t.Errorf("Reloads, ReloadFailures = %d, %d; want 1, 1", st.Reloads, st.ReloadFailures)
	}
}

func TestDTLSIdleSessionsAreReaped(t *testing.T) {
	l, _ := pskLink(t, DTLSConfig{IdleTimeout: 100 * time.Millisecond})
	c, err := dialPSK(t, l.LocalAddr(), "sensor-1", testKey1)
	if err != nil {
		t.Fatal(err)
	}
	// The client says nothing; the server closes the session and the
	// client's read ends with close_notify.
	if got, err := readConn(t, c); !errors.Is(err, io.EOF) {
		t.Fatalf("client read = %q, %v; want io.EOF when the idle session is reaped", got, err)
	}
	if st := l.Stats(); st.Reaped != 1 {
		t.Errorf("Reaped = %d; want 1", st.Reaped)
	}
}

func TestDTLSSessionLimits(t *testing.T) {
	l, _ := pskLink(t, DTLSConfig{MaxSessions: 1})
	c1, err := dialPSK(t, l.LocalAddr(), "sensor-1", testKey1)
	if err != nil {
		t.Fatal(err)
	}
	// The client finishes its handshake before the server registers the
	// session; a round trip makes sure it is registered first.
	c1.Write([]byte("first"))
	readLink(t, l)
	if c2, err := dialPSK(t, l.LocalAddr(), "sensor-2", testKey2); err == nil {
		if _, rerr := readConn(t, c2); rerr == nil {
			t.Fatal("second session beyond max_sessions works")
		}
	}
	if st := l.Stats(); st.SessionsRefused != 1 || st.Sessions != 1 {
		t.Errorf("SessionsRefused, Sessions = %d, %d; want 1, 1", st.SessionsRefused, st.Sessions)
	}
	// The same identity again replaces its old session, even at the cap.
	if _, err := dialPSK(t, l.LocalAddr(), "sensor-1", testKey1); err != nil {
		t.Fatal(err)
	}
	if _, err := readConn(t, c1); err == nil {
		t.Error("the replaced session still reads")
	}
	if st := l.Stats(); st.Replaced != 1 {
		t.Errorf("Replaced = %d; want 1 (stats %+v)", st.Replaced, st)
	}
}

func TestDTLSAttemptCapsHandshakesAndRateLimits(t *testing.T) {
	lim, err := NewLimiter(LimiterConfig{Rate: 1, Burst: 1, MaxSources: 16})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := pskLink(t, DTLSConfig{MaxHandshakes: 1})
	l.limiter = lim
	src := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 9), Port: 5}
	if err := l.attempt(src); err != nil {
		t.Fatalf("first attempt = %v", err)
	}
	if err := l.attempt(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 10), Port: 5}); !errors.Is(err, errRefused) {
		t.Fatalf("attempt beyond max_handshakes = %v; want refused", err)
	}
	<-l.hsSem
	if err := l.attempt(src); !errors.Is(err, errRefused) {
		t.Fatalf("second attempt from one source within its rate = %v; want refused", err)
	}
	if st := l.Stats(); st.HandshakesCapped != 1 || st.RateLimited != 1 {
		t.Errorf("HandshakesCapped, RateLimited = %d, %d; want 1, 1", st.HandshakesCapped, st.RateLimited)
	}
}

// testPKI makes a CA, a server certificate and client certificates.
type testPKI struct {
	dir                       string
	caKey                     *ecdsa.PrivateKey
	ca                        *x509.Certificate
	caFile, certFile, keyFile string
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	p.caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.caFile = writeFile(t, p.dir, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	cert := p.issue(t, "gateway", x509.ExtKeyUsageServerAuth)
	certPEM, keyPEM := pemPair(t, cert)
	p.certFile = writeFile(t, p.dir, "cert.pem", certPEM)
	p.keyFile = writeFile(t, p.dir, "key.pem", keyPEM)
	return p
}

func (p *testPKI) issue(t testing.TB, cn string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func pemPair(t testing.TB, c tls.Certificate) (string, string) {
	t.Helper()
	kb, err := x509.MarshalECPrivateKey(c.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
}

func dialCert(t testing.TB, p *testPKI, addr net.Addr, client *tls.Certificate) (*dtls.Conn, error) {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.ca)
	opts := []dtls.ClientOption{dtls.WithRootCAs(roots), dtls.WithServerName("127.0.0.1")}
	if client != nil {
		opts = append(opts, dtls.WithCertificates(*client))
	}
	c, err := dtls.ClientWithOptions(pc, addr, opts...)
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); pc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c, c.HandshakeContext(ctx)
}

func TestDTLSCertificatesWithMutualAuth(t *testing.T) {
	p := newTestPKI(t)
	l := listenDTLST(t, DTLSConfig{CertFile: p.certFile, KeyFile: p.keyFile, CAFile: p.caFile})
	good := p.issue(t, "sensor-7", x509.ExtKeyUsageClientAuth)
	c, err := dialCert(t, p, l.LocalAddr(), &good)
	if err != nil {
		t.Fatalf("handshake with a client certificate from the CA: %v", err)
	}
	c.Write([]byte("signed"))
	_, addr := readLink(t, l)
	if id, ok := l.Identity(addr); id != "sensor-7" || !ok {
		t.Errorf("Identity = %q, %v; want the certificate's CN sensor-7", id, ok)
	}

	other := newTestPKI(t) // a certificate from another CA
	stranger := other.issue(t, "sensor-7", x509.ExtKeyUsageClientAuth)
	for name, cert := range map[string]*tls.Certificate{"no client certificate": nil, "certificate from another CA": &stranger} {
		c, err := dialCert(t, p, l.LocalAddr(), cert)
		if err == nil {
			if _, rerr := readConn(t, c); rerr == nil {
				t.Errorf("%s: session works; want refused", name)
			}
		}
	}
	if st := l.Stats(); st.Sessions != 1 {
		t.Errorf("Sessions = %d; want only the good client's", st.Sessions)
	}
}

func TestDTLSOverIPv6(t *testing.T) {
	dir := t.TempDir()
	psk := writeFile(t, dir, "psk", "sensor-1:"+testKey1+"\n")
	l, err := ListenDTLS(ListenerConfig{Network: "dtls", Address: "[::1]:0", DTLS: DTLSConfig{PSKFile: psk}}, nil)
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	defer l.Close()
	pc, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	k := hexKey(t, testKey1)
	c, err := dtls.ClientWithOptions(pc, l.LocalAddr(),
		dtls.WithPSK(func([]byte) ([]byte, error) { return k, nil }),
		dtls.WithPSKIdentityHint([]byte("sensor-1")),
		dtls.WithCipherSuites(dtls.TLS_PSK_WITH_AES_128_GCM_SHA256),
		dtls.WithConnectionIDGenerator(dtls.OnlySendCIDGenerator()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.HandshakeContext(ctx); err != nil {
		t.Fatalf("handshake over IPv6: %v", err)
	}
	c.Write([]byte("v6"))
	got, addr := readLink(t, l)
	if got != "v6" || !SyntheticPrefix.Contains(addr.Addr()) {
		t.Fatalf("read %q from %v; want v6 from a synthetic address", got, addr)
	}
	if ra, _ := l.RemoteAddr(addr); ra.(*net.UDPAddr).IP.To4() != nil {
		t.Errorf("peer address %v; want the IPv6 loopback", ra)
	}
}

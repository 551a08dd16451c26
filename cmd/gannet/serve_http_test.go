package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore/auth"
)

func TestHTTPConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  httpConfig
		want string // "" for valid
	}{
		{"off", httpConfig{Address: "0.0.0.0:80"}, ""},
		{"default address", httpConfig{Enabled: true}, ""},
		{"loopback v6", httpConfig{Enabled: true, Address: "[::1]:9184"}, ""},
		{"localhost", httpConfig{Enabled: true, Address: "localhost:9184"}, ""},
		{"no port", httpConfig{Enabled: true, Address: "127.0.0.1"}, "http.address"},
		{"network without auth", httpConfig{Enabled: true, Address: "0.0.0.0:9184"}, "not a loopback address"},
		{"network without tls", httpConfig{Enabled: true, Address: ":9184", PasswordFile: "pw"}, "not a loopback address"},
		{"network with both", httpConfig{Enabled: true, Address: ":9184", PasswordFile: "pw", TLS: httpTLSConfig{CertFile: "c", KeyFile: "k"}}, ""},
		{"cert without key", httpConfig{Enabled: true, TLS: httpTLSConfig{CertFile: "c"}}, "go together"},
	} {
		err := tc.cfg.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Validate() = %v; want %q", tc.name, err, tc.want)
		}
	}
}

// writeSelfSigned writes a certificate for 127.0.0.1 and its key to dir.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gannet test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "http.crt"), filepath.Join(dir, "http.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestHTTPBasicAuthAndTLS serves the [http] listener with a password file
// and a certificate: without credentials or with wrong ones the answer is
// 401; with the right ones, over TLS, the handler runs; a reload of the
// password file takes effect.
func TestHTTPBasicAuthAndTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := writeSelfSigned(t, dir)
	hash, err := auth.HashPassword([]byte("s3cret"), auth.Bcrypt)
	if err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "http.passwd")
	if err := os.WriteFile(pwFile, []byte("prom:"+hash+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := httpConfig{Enabled: true, Address: "127.0.0.1:0", PasswordFile: pwFile, TLS: httpTLSConfig{CertFile: certFile, KeyFile: keyFile}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "inside") })
	s, err := startHTTP(cfg, h, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := "https://" + s.Addr().String() + "/"
	try := func(user, pass string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := try("", ""); code != http.StatusUnauthorized {
		t.Errorf("no credentials: %d; want 401", code)
	}
	if code, _ := try("prom", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d; want 401", code)
	}
	if code, body := try("prom", "s3cret"); code != 200 || body != "inside" {
		t.Errorf("right password: %d %q; want 200 inside", code, body)
	}
	if resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + s.Addr().String() + "/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP to the TLS listener answered 200")
		}
	}
	// A reload with another password file.
	other, err := auth.ParsePasswords(strings.NewReader("grafana:"+hash+"\n"), "other")
	if err != nil {
		t.Fatal(err)
	}
	s.setPasswords(other)
	if code, _ := try("prom", "s3cret"); code != http.StatusUnauthorized {
		t.Errorf("old user after reload: %d; want 401", code)
	}
	if code, _ := try("grafana", "s3cret"); code != 200 {
		t.Errorf("new user after reload: %d; want 200", code)
	}
}

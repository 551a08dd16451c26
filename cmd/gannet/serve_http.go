package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore/auth"
)

// defaultHTTPAddress is where [http] listens when enabled without an
// address: loopback only.
const defaultHTTPAddress = "127.0.0.1:9184"

// httpConfig is the [http] section: the operator's HTTP listener with
// /metrics (Prometheus), /healthz, /readyz and the status page. It is off
// unless enabled, so that a configuration written before it existed opens
// no new port; the annotated config.toml turns it on, on loopback.
type httpConfig struct {
	// Enabled turns the listener on.
	Enabled bool `toml:"enabled"`
	// Address is host:port; empty means defaultHTTPAddress. An address
	// other than a loopback one needs password_file and [http.tls]: the
	// page shows every sensor's id and address.
	Address string `toml:"address"`
	// PasswordFile, when set, requires HTTP basic authentication against
	// the users in it (the format of [mqtt.auth] password_file).
	PasswordFile string `toml:"password_file"`
	// TLS, when CertFile is set, serves HTTPS.
	TLS httpTLSConfig `toml:"tls"`
}

// httpTLSConfig is [http.tls].
type httpTLSConfig struct {
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
}

func (c *httpConfig) address() string {
	if c.Address == "" {
		return defaultHTTPAddress
	}
	return c.Address
}

// Validate checks the values; the files are checked by check (it opens
// them).
func (c *httpConfig) Validate() error {
	if !c.Enabled {
		return nil
	}
	host, _, err := net.SplitHostPort(c.address())
	if err != nil {
		return fmt.Errorf("http.address = %q: %w", c.Address, err)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return errors.New("http.tls: cert_file and key_file go together")
	}
	if !isLoopback(host) && (c.PasswordFile == "" || c.TLS.CertFile == "") {
		return fmt.Errorf("http.address = %q is not a loopback address: set http.password_file and [http.tls] (the status page lists every sensor)", c.address())
	}
	return nil
}

// isLoopback reports whether host names only the loopback interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// check loads the files the section names, as startHTTP does, and returns
// the password file.
func (c *httpConfig) check() (*auth.Passwords, *tls.Config, error) {
	var (
		pw  *auth.Passwords
		tc  *tls.Config
		err error
	)
	if c.PasswordFile != "" {
		if pw, err = auth.LoadPasswords(c.PasswordFile); err != nil {
			return nil, nil, fmt.Errorf("http.password_file: %w", err)
		}
	}
	if c.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("http.tls: %w", err)
		}
		tc = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return pw, tc, nil
}

// httpServer is the running [http] listener.
type httpServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
	mu   sync.Mutex
	pw   *auth.Passwords // nil: no basic auth
}

// startHTTP opens the [http] listener with handler h and serves it on a
// goroutine until stop. With the section off it returns nil.
func startHTTP(cfg httpConfig, h http.Handler, log *slog.Logger) (*httpServer, error) {
	if !cfg.Enabled {
		return nil, nil
	}
	pw, tc, err := cfg.check()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.address())
	if err != nil {
		return nil, fmt.Errorf("http listener: %w", err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	s := &httpServer{ln: ln, done: make(chan error, 1), pw: pw}
	s.srv = &http.Server{
		Handler:           s.authenticate(h),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() { s.done <- s.srv.Serve(ln) }() // exits when stop closes the server
	scheme := "http"
	if tc != nil {
		scheme = "https"
	}
	log.Info("serving http: status page, /metrics, /healthz, /readyz", "url", scheme+"://"+ln.Addr().String()+"/", "basic_auth", pw != nil)
	return s, nil
}

// Addr returns the bound address.
func (s *httpServer) Addr() net.Addr { return s.ln.Addr() }

// setPasswords replaces the basic-auth users (reload); nil turns basic
// auth off.
func (s *httpServer) setPasswords(pw *auth.Passwords) {
	s.mu.Lock()
	s.pw = pw
	s.mu.Unlock()
}

// authenticate wraps h with basic authentication when a password file is
// configured.
func (s *httpServer) authenticate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		pw := s.pw
		s.mu.Unlock()
		if pw != nil {
			user, pass, ok := r.BasicAuth()
			if !ok || !pw.Verify(user, []byte(pass)) {
				w.Header().Set("WWW-Authenticate", `Basic realm="gannet", charset="UTF-8"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// stop shuts the server down, waiting up to a few seconds for requests in
// progress.
func (s *httpServer) stop() error {
	if s == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("http listener: stop: %w", err)
	}
	return nil
}

// hostname is the box's name for the status page, or "".
func hostname() string {
	h, _ := os.Hostname()
	return h
}

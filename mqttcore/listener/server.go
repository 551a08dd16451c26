package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/auth"
)

// ErrServerClosed is returned by Serve and ServeWebSocket after Close.
var ErrServerClosed = errors.New("mqtt listener: server closed")

// Server is the MQTT 3.1/3.1.1/5.0 listener: it accepts TCP, TLS and WebSocket
// connections and attaches each client to its session in the broker core.
//
// Goroutines: one per served listener (the accept loop), and two per
// connection (the reader, which owns the connection's protocol state and
// calls into the core, and the writer, which owns the network writes and
// pulls deliveries from the core). All are started through goTracked and
// Close waits for every one of them. The Server holds one lock, mu, which
// guards the listener and connection sets and is never held while writing
// to the network or calling into the core.
type Server struct {
	broker *mqttcore.Broker
	cfg    atomic.Pointer[Config] // defaults filled in; SetConfig replaces it (reconfig.go)
	auth   *auth.Authenticator
	log    *slog.Logger
	warn   rateLimiter

	ctx    context.Context // cancelled by Close; WebSocket connections use it
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	https     map[*http.Server]struct{}
	conns     map[net.Conn]struct{}
	addrs     map[string]net.Addr

	wg    sync.WaitGroup
	stats serverCounters
}

// NewServer validates cfg and returns a Server for broker. authn decides who
// may connect; nil means one built from cfg.Auth (auth.New). What clients
// may publish and subscribe to is decided by the broker's Authorizer (see
// mqttcore.Authorizer), for every client of the broker alike; if the broker
// has none, authn becomes it, so an ACL in cfg.Auth is never ignored.
// logger receives connection events
// (Debug), misbehaving clients (Warn, rate-limited) and the server's own
// faults (Error); nil discards them.
func NewServer(broker *mqttcore.Broker, cfg Config, authn *auth.Authenticator, logger *slog.Logger) (*Server, error) {
	if broker == nil {
		return nil, errors.New("mqtt listener: new server: nil broker")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mqtt listener: new server: %w", err)
	}
	if authn == nil {
		a, err := auth.New(cfg.Auth)
		if err != nil {
			return nil, fmt.Errorf("mqtt listener: new server: %w", err)
		}
		authn = a
	}
	if broker.Authorizer() == nil {
		broker.SetAuthorizer(authn)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		broker:    broker,
		auth:      authn,
		log:       logger,
		warn:      rateLimiter{perSecond: 10},
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
		https:     make(map[*http.Server]struct{}),
		conns:     make(map[net.Conn]struct{}),
		addrs:     make(map[string]net.Addr),
	}
	d := cfg.withDefaults()
	s.cfg.Store(&d)
	return s, nil
}

// goTracked starts f on a goroutine that Close waits for. It reports false,
// and does not start f, once the server is closed.
func (s *Server) goTracked(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

// Listen opens every listener the configuration names (plain TCP unless
// Address is "-", TLS if TLS.CertFile is set, WebSocket if
// WebSocket.Address is set) and serves each on a tracked goroutine until
// Close. It returns once all are listening, or the first error (after
// closing what it opened). Addr reports the bound addresses.
func (s *Server) Listen() error {
	var opened []net.Listener
	fail := func(err error) error {
		for _, l := range opened {
			_ = l.Close()
		}
		return fmt.Errorf("mqtt listener: listen: %w", err)
	}
	var tc *tls.Config
	if s.conf().TLS.Enabled() {
		var err error
		if tc, err = s.conf().TLS.ServerTLS(); err != nil {
			return fail(err)
		}
	}
	type job struct {
		name  string
		l     net.Listener
		serve func(net.Listener) error
	}
	var jobs []job
	listen := func(name, addr string, serve func(net.Listener) error) error {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		opened = append(opened, l)
		jobs = append(jobs, job{name, l, serve})
		return nil
	}
	if s.conf().Address != "-" {
		if err := listen("tcp", s.conf().Address, s.Serve); err != nil {
			return fail(err)
		}
	}
	if tc != nil {
		if err := listen("tls", s.conf().TLS.Address, func(l net.Listener) error { return s.Serve(tls.NewListener(l, tc)) }); err != nil {
			return fail(err)
		}
	}
	if s.conf().WebSocket.Enabled() {
		serve := s.ServeWebSocket
		if s.conf().WebSocket.TLS {
			serve = func(l net.Listener) error { return s.ServeWebSocket(tls.NewListener(l, tc)) }
		}
		if err := listen("websocket", s.conf().WebSocket.Address, serve); err != nil {
			return fail(err)
		}
	}
	s.mu.Lock()
	for _, j := range jobs {
		s.addrs[j.name] = j.l.Addr()
	}
	s.mu.Unlock()
	for _, j := range jobs {
		s.log.Info("mqtt listener listening", "listener", j.name, "addr", j.l.Addr().String())
		// Exits when Close closes the listener.
		if !s.goTracked(func() {
			if err := j.serve(j.l); err != nil && !errors.Is(err, ErrServerClosed) {
				s.log.Error("mqtt listener stopped", "listener", j.name, "err", err)
			}
		}) {
			return fail(ErrServerClosed)
		}
	}
	return nil
}

// Addr returns the address a listener opened by Listen is bound to: name is
// "tcp", "tls" or "websocket". It returns nil for a listener not opened.
func (s *Server) Addr(name string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs[name]
}

// track adds l to the listener set; it reports false after Close.
func (s *Server) track(l net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.listeners[l] = struct{}{}
	return true
}

// untrack removes l from the listener set.
func (s *Server) untrack(l net.Listener) {
	s.mu.Lock()
	delete(s.listeners, l)
	s.mu.Unlock()
}

// Serve accepts MQTT connections on l (a TCP listener, or one wrapped by
// tls.NewListener) until Close, serving each on its own goroutines. It
// closes l before returning and returns ErrServerClosed after Close, or the
// error that stopped accepting.
func (s *Server) Serve(l net.Listener) error {
	if !s.track(l) {
		_ = l.Close()
		return ErrServerClosed
	}
	defer s.untrack(l)
	defer l.Close()
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Temporary (for example out of file descriptors): back off
				// as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Error("mqtt listener accept", "err", err, "retry_in", backoff)
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
				case <-s.ctx.Done():
					t.Stop()
				}
				continue
			}
			return fmt.Errorf("mqtt listener: accept on %s: %w", l.Addr(), err)
		}
		backoff = 0
		if !s.admit(nc) {
			continue
		}
		// Exits when the connection ends; Close ends it by closing nc.
		if !s.goTracked(func() { s.serveConn(nc) }) {
			s.release(nc)
			return ErrServerClosed
		}
	}
}

// ServeWebSocket serves MQTT over WebSocket on l (HTTP, or HTTPS when l is
// wrapped by tls.NewListener) at the configured path until Close. It
// returns ErrServerClosed after Close.
func (s *Server) ServeWebSocket(l net.Listener) error {
	path := s.conf().WebSocket.Path
	if path == "" {
		path = DefaultWebSocketPath
	}
	mux := http.NewServeMux()
	mux.HandleFunc(path, s.handleWebSocket)
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: s.conf().ConnectTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = l.Close()
		return ErrServerClosed
	}
	s.https[hs] = struct{}{}
	s.mu.Unlock()
	err := hs.Serve(l)
	s.mu.Lock()
	delete(s.https, hs)
	s.mu.Unlock()
	if errors.Is(err, http.ErrServerClosed) || s.isClosed() {
		return ErrServerClosed
	}
	return fmt.Errorf("mqtt listener: websocket on %s: %w", l.Addr(), err)
}

// admit counts an accepted connection and registers it, or closes it when
// MaxConnections are open or the server is closed.
func (s *Server) admit(nc net.Conn) bool {
	s.stats.accepted.Add(1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = nc.Close()
		return false
	}
	if len(s.conns) >= s.conf().MaxConnections {
		s.mu.Unlock()
		s.stats.refusedLimit.Add(1)
		s.warnf("mqtt connection refused: max_connections reached", "remote", nc.RemoteAddr().String(), "max_connections", s.conf().MaxConnections)
		_ = nc.Close()
		return false
	}
	s.conns[nc] = struct{}{}
	s.mu.Unlock()
	s.stats.current.Add(1)
	return true
}

// release forgets a connection and closes it.
func (s *Server) release(nc net.Conn) {
	s.mu.Lock()
	_, ok := s.conns[nc]
	delete(s.conns, nc)
	s.mu.Unlock()
	_ = nc.Close()
	if ok {
		s.stats.current.Add(-1)
	}
}

// isClosed reports whether Close was called.
func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops accepting, closes every listener and connection (their
// sessions are detached as lost, so wills are published per their delay)
// and waits for every goroutine the server started. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	ls := make([]net.Listener, 0, len(s.listeners))
	for l := range s.listeners {
		ls = append(ls, l)
	}
	hs := make([]*http.Server, 0, len(s.https))
	for h := range s.https {
		hs = append(hs, h)
	}
	cs := make([]net.Conn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	s.cancel()
	for _, l := range ls {
		_ = l.Close()
	}
	for _, h := range hs {
		_ = h.Close()
	}
	for _, c := range cs {
		_ = c.Close()
	}
	s.wg.Wait()
	return nil
}

// warnf logs a misbehaving peer at Warn, at most perSecond times a second;
// the rest are logged at Debug.
func (s *Server) warnf(msg string, args ...any) {
	level := slog.LevelWarn
	if !s.warn.allow(time.Now()) {
		level = slog.LevelDebug
	}
	s.log.Log(context.Background(), level, msg, args...)
}

// rateLimiter allows perSecond events per wall-clock second.
type rateLimiter struct {
	perSecond int
	mu        sync.Mutex
	second    int64
	n         int
}

// allow reports whether one more event fits in now's second.
func (r *rateLimiter) allow(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if sec := now.Unix(); sec != r.second {
		r.second, r.n = sec, 0
	}
	r.n++
	return r.n <= r.perSecond
}

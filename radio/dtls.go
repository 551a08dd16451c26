package radio

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
)

// SyntheticPrefix is the IPv6 unique local prefix (RFC 4193) DTLS sessions
// are numbered in: fd67:616e:6e65::/48 ("gann" "e" in ASCII). A session's
// address is fd67:616e:6e65:PPPP::N port PPPP, where PPPP is the DTLS
// listener's UDP port and N counts sessions from 1. The gateway keys
// clients by it; it never appears on the wire, and it is not the peer's
// real address (RemoteAddr gives that).
var SyntheticPrefix = netip.MustParsePrefix("fd67:616e:6e65::/48")

// ErrNoSession is returned by DTLSLink.WriteToUDPAddrPort for an address
// with no established session (it ended, was reaped or never existed).
var ErrNoSession = errors.New("no dtls session for this address")

// errRefused marks a connection attempt refused before its handshake.
var errRefused = errors.New("dtls connection attempt refused")

// DTLSLink is a DTLS 1.2 server exposed as one datagram link: every
// established session is a peer with a stable synthetic address (see
// SyntheticPrefix); records received on any session are read from the link
// in arrival order; a write goes to the session behind the address.
//
// PSK identities or certificate subjects are bound to MQTT-SN client ids;
// Identity reports the binding for the gateway's CONNECT check.
type DTLSLink struct {
	cfg  DTLSConfig
	log  *slog.Logger
	ln   net.Listener
	port uint16
	// prefix is the first 8 octets of every session address.
	prefix [8]byte

	creds   atomic.Pointer[credentials]
	limiter *Limiter // handshakes per source
	hsSem   chan struct{}
	in      chan inbound
	pool    sync.Pool // *[]byte of maxDatagram
	maxDg   int

	mu         sync.RWMutex
	sessions   map[netip.AddrPort]*session
	byIdentity map[string]*session
	nextID     uint64

	done      chan struct{}
	ctx       context.Context // cancelled by Close: ends handshakes in progress
	cancel    context.CancelFunc
	closeOnce sync.Once
	wg        sync.WaitGroup
	stats     dtlsStats
}

type session struct {
	conn     *dtls.Conn
	addr     netip.AddrPort
	identity string // PSK identity or certificate CN
	clientID string // the client id identity_rule binds it to
	last     atomic.Int64
}

type inbound struct {
	buf  *[]byte
	n    int
	addr netip.AddrPort
}

type dtlsStats struct {
	handshakes, handshakeFailures, handshakesCapped, rateLimited atomic.Uint64
	sessionsRefused, replaced, reaped, received, dropped         atomic.Uint64
	truncated, sent, noSession, reloads, reloadFailures          atomic.Uint64
	sessions, handshaking                                        atomic.Int64
}

// DTLSStats counts a DTLSLink's sessions and traffic. All counters are
// cumulative except Sessions and Handshaking.
type DTLSStats struct {
	Handshakes        uint64 // handshakes completed
	HandshakeFailures uint64 // handshakes failed (bad key, unknown identity, bad certificate, timeout)
	HandshakesCapped  uint64 // attempts dropped because max_handshakes were in progress
	RateLimited       uint64 // attempts refused by the per-source limit
	SessionsRefused   uint64 // handshakes completed beyond max_sessions, closed
	Replaced          uint64 // sessions closed because the same identity completed a new handshake
	Reaped            uint64 // sessions closed after idle_timeout
	Received          uint64 // datagrams read from sessions
	Dropped           uint64 // datagrams dropped because read_queue was full
	Truncated         uint64 // datagrams longer than max_datagram, dropped
	Sent              uint64 // datagrams written
	NoSession         uint64 // writes to an address without a session
	Reloads           uint64 // successful Reload calls
	ReloadFailures    uint64 // Reload calls that kept the old credentials
	Sessions          int64  // established sessions now
	Handshaking       int64  // handshakes in progress now
}

// DTLSOption adjusts a DTLSLink beyond its configuration.
type DTLSOption func(*dtlsOptions)

type dtlsOptions struct {
	limiter *Limiter
}

// WithHandshakeLimiter replaces the per-source handshake limiter built from
// handshake_rate and handshake_burst (for sharing one among listeners).
func WithHandshakeLimiter(lim *Limiter) DTLSOption {
	return func(o *dtlsOptions) { o.limiter = lim }
}

// ListenDTLS opens a DTLS listener for cfg (network "dtls"). log receives
// session events; nil discards them.
func ListenDTLS(cfg ListenerConfig, log *slog.Logger, opts ...DTLSOption) (*DTLSLink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.network() != "dtls" {
		return nil, fmt.Errorf("radio: listen %s: ListenDTLS needs network = \"dtls\", not %q", cfg.Address, cfg.network())
	}
	var o dtlsOptions
	for _, opt := range opts {
		opt(&o)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := cfg.DTLS
	if o.limiter == nil {
		lim, err := NewLimiter(d.handshakeLimiter())
		if err != nil {
			return nil, err
		}
		o.limiter = lim
	}
	creds, err := loadCredentials(&d)
	if err != nil {
		return nil, err
	}
	l := &DTLSLink{
		cfg: d, log: log, limiter: o.limiter,
		hsSem:      make(chan struct{}, d.maxHandshakes()),
		in:         make(chan inbound, d.readQueue()),
		maxDg:      cfg.maxDatagram(),
		sessions:   map[netip.AddrPort]*session{},
		byIdentity: map[string]*session{},
		done:       make(chan struct{}),
	}
	l.creds.Store(creds)
	l.pool.New = func() any { b := make([]byte, l.maxDg); return &b }

	laddr, err := net.ResolveUDPAddr("udp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("radio: dtls listen %s: %w", cfg.Address, err)
	}
	ln, err := dtls.ListenWithOptions("udp", laddr, l.serverOptions(creds)...)
	if err != nil {
		return nil, fmt.Errorf("radio: dtls listen %s: %w", cfg.Address, err)
	}
	l.ln = ln
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.port = uint16(ln.Addr().(*net.UDPAddr).Port)
	copy(l.prefix[:], SyntheticPrefix.Addr().AsSlice()[:6])
	binary.BigEndian.PutUint16(l.prefix[6:], l.port)

	l.wg.Add(2)
	go l.acceptLoop() // exits when the listener is closed
	go l.reapLoop()   // exits when done closes
	return l, nil
}

func (l *DTLSLink) serverOptions(creds *credentials) []dtls.ServerOption {
	var suites []dtls.CipherSuiteID
	opts := []dtls.ServerOption{
		dtls.WithExtendedMasterSecret(dtls.RequestExtendedMasterSecret),
		dtls.WithLoggerFactory(pionLogs{l.log}),
		dtls.WithMTU(min(l.maxDg, 1400)),
		dtls.WithOnConnectionAttempt(l.attempt),
		dtls.WithVerifyConnection(l.verifyConnection),
	}
	if creds.psks != nil {
		suites = append(suites, dtls.TLS_PSK_WITH_AES_128_CCM_8, dtls.TLS_PSK_WITH_AES_128_CCM,
			dtls.TLS_PSK_WITH_AES_128_GCM_SHA256)
		opts = append(opts, dtls.WithPSK(l.psk))
	}
	if creds.cert != nil {
		suites = append(suites,
			dtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			dtls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			dtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384)
		opts = append(opts, dtls.WithGetCertificate(func(*dtls.ClientHelloInfo) (*tls.Certificate, error) {
			return l.creds.Load().cert, nil
		}))
		switch l.cfg.clientAuth() {
		case "request":
			opts = append(opts, dtls.WithClientAuth(dtls.RequestClientCert),
				dtls.WithVerifyPeerCertificate(l.verifyPeer(false)))
		case "require":
			opts = append(opts, dtls.WithClientAuth(dtls.RequireAnyClientCert),
				dtls.WithVerifyPeerCertificate(l.verifyPeer(true)))
		}
	}
	opts = append(opts, dtls.WithCipherSuites(suites...))
	if l.cfg.connectionID() {
		opts = append(opts, dtls.WithConnectionIDGenerator(dtls.RandomCIDGenerator(8)))
	}
	return opts
}

// psk returns the key for a client's PSK identity from the current file.
func (l *DTLSLink) psk(identity []byte) ([]byte, error) {
	key, ok := l.creds.Load().psks[string(identity)]
	if !ok {
		return nil, fmt.Errorf("radio: dtls psk identity %q: %w", identity, errNoSuchIdentity)
	}
	return key, nil
}

// verifyPeer checks client certificates against the current CA pool (pion
// is told to accept any certificate so that a reload can change the pool).
func (l *DTLSLink) verifyPeer(required bool) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		return verifyClientCert(raw, l.creds.Load().cas, required)
	}
}

// verifyConnection fails a handshake whose identity cannot be bound to a
// client id.
func (l *DTLSLink) verifyConnection(st *dtls.State) error {
	id, err := identityOf(st)
	if err != nil {
		return err
	}
	if _, ok := l.bind(id); !ok {
		return fmt.Errorf("radio: dtls identity %q is not in identity_map", id)
	}
	return nil
}

// identityOf returns the PSK identity or the client certificate's subject
// common name.
func identityOf(st *dtls.State) (string, error) {
	if len(st.PeerCertificates) > 0 {
		c, err := x509.ParseCertificate(st.PeerCertificates[0])
		if err != nil {
			return "", fmt.Errorf("radio: dtls client certificate: %w", err)
		}
		if c.Subject.CommonName == "" {
			return "", errors.New("radio: dtls client certificate has no subject common name")
		}
		return c.Subject.CommonName, nil
	}
	if len(st.IdentityHint) > 0 {
		return string(st.IdentityHint), nil
	}
	return "", nil // a certificate handshake without client authentication
}

// bind applies identity_rule: the client id an identity may use.
func (l *DTLSLink) bind(identity string) (string, bool) {
	if identity == "" {
		return "", true // no client identity: nothing to bind
	}
	if l.cfg.IdentityRule == "map" {
		cid, ok := l.cfg.IdentityMap[identity]
		return cid, ok
	}
	return identity, true
}

// attempt runs in pion's Accept for every new source: the per-source
// limit and the cap on handshakes in progress.
func (l *DTLSLink) attempt(addr net.Addr) error {
	if l.limiter != nil {
		if ua, ok := addr.(*net.UDPAddr); ok && !l.limiter.Allow(ua.AddrPort().Addr(), time.Now()) {
			l.stats.rateLimited.Add(1)
			return errRefused
		}
	}
	select {
	case l.hsSem <- struct{}{}:
		return nil
	default:
		l.stats.handshakesCapped.Add(1)
		return errRefused
	}
}

func (l *DTLSLink) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, errRefused) {
				continue
			}
			select {
			case <-l.done:
				return
			default:
			}
			l.log.Error("dtls accept failed; no new sessions on this listener", "local", l.ln.Addr(), "err", err)
			return
		}
		l.stats.handshaking.Add(1)
		l.wg.Add(1)
		go l.serve(c.(*dtls.Conn)) // exits when the handshake fails or the session ends
	}
}

// serve runs one connection's handshake and then reads its records until
// it closes.
func (l *DTLSLink) serve(c *dtls.Conn) {
	defer l.wg.Done()
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.handshakeTimeout())
	err := c.HandshakeContext(ctx)
	cancel()
	<-l.hsSem
	l.stats.handshaking.Add(-1)
	if err != nil {
		l.stats.handshakeFailures.Add(1)
		l.log.Debug("dtls handshake failed", "remote", c.RemoteAddr(), "err", err)
		c.Close()
		return
	}
	st, _ := c.ConnectionState()
	identity, _ := identityOf(&st)
	clientID, _ := l.bind(identity)
	s := &session{conn: c, identity: identity, clientID: clientID}
	s.last.Store(time.Now().UnixNano())
	old, ok := l.register(s)
	if !ok && l.closed() {
		c.Close()
		return
	}
	if !ok {
		l.stats.sessionsRefused.Add(1)
		l.log.Warn("dtls session refused: max_sessions reached", "remote", c.RemoteAddr(), "max_sessions", l.cfg.maxSessions())
		c.Close()
		return
	}
	l.stats.handshakes.Add(1)
	if old != nil {
		l.stats.replaced.Add(1)
		old.conn.Close() // its reader removes it
	}
	l.log.Debug("dtls session established", "remote", c.RemoteAddr(), "addr", s.addr, "identity", identity)
	l.read(s)
}

// register numbers s and adds it; it returns the session s replaces (same
// identity), and false when max_sessions are established or the link is
// closing. (Close takes its list of sessions to close after closing done,
// under the same lock: a session registered before is closed by Close, one
// arriving after is refused here, so none is left reading after Close.)
func (l *DTLSLink) register(s *session) (*session, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed() {
		return nil, false
	}
	old := l.byIdentity[s.identity]
	if s.identity == "" {
		old = nil
	}
	if old == nil && len(l.sessions) >= l.cfg.maxSessions() {
		return nil, false
	}
	l.nextID++
	var a [16]byte
	copy(a[:8], l.prefix[:])
	binary.BigEndian.PutUint64(a[8:], l.nextID)
	s.addr = netip.AddrPortFrom(netip.AddrFrom16(a), l.port)
	l.sessions[s.addr] = s
	if s.identity != "" {
		l.byIdentity[s.identity] = s
	}
	l.stats.sessions.Add(1)
	return old, true
}

func (l *DTLSLink) unregister(s *session) {
	l.mu.Lock()
	if l.sessions[s.addr] == s {
		delete(l.sessions, s.addr)
		l.stats.sessions.Add(-1)
	}
	if l.byIdentity[s.identity] == s {
		delete(l.byIdentity, s.identity)
	}
	l.mu.Unlock()
}

// read queues s's records for ReadFromUDPAddrPort until s ends.
func (l *DTLSLink) read(s *session) {
	defer l.unregister(s)
	defer s.conn.Close()
	for {
		bp := l.pool.Get().(*[]byte)
		n, err := s.conn.Read(*bp)
		if err != nil {
			l.pool.Put(bp)
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() && !l.closed() {
				l.stats.truncated.Add(1) // pion's "buffer too small": the record is dropped
				continue
			}
			l.log.Debug("dtls session ended", "addr", s.addr, "identity", s.identity, "err", err)
			return
		}
		s.last.Store(time.Now().UnixNano())
		select {
		case l.in <- inbound{buf: bp, n: n, addr: s.addr}:
		default:
			l.pool.Put(bp)
			l.stats.dropped.Add(1)
		}
	}
}

func (l *DTLSLink) closed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// reapLoop closes sessions idle for idle_timeout.
func (l *DTLSLink) reapLoop() {
	defer l.wg.Done()
	idle := l.cfg.idleTimeout()
	t := time.NewTicker(max(idle/4, 10*time.Millisecond))
	defer t.Stop()
	var stale []*session
	for {
		select {
		case <-l.done:
			return
		case now := <-t.C:
			cutoff := now.Add(-idle).UnixNano()
			stale = stale[:0]
			l.mu.RLock()
			for _, s := range l.sessions {
				if s.last.Load() < cutoff {
					stale = append(stale, s)
				}
			}
			l.mu.RUnlock()
			for _, s := range stale {
				l.stats.reaped.Add(1)
				l.log.Info("dtls session reaped after idle_timeout", "addr", s.addr, "identity", s.identity, "idle_timeout", idle)
				s.conn.Close()
			}
		}
	}
}

// ReadFromUDPAddrPort copies the next record received on any session into b
// and returns the session's synthetic address. It allocates nothing.
func (l *DTLSLink) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	select {
	case d := <-l.in:
		n := copy(b, (*d.buf)[:d.n])
		l.pool.Put(d.buf)
		l.stats.received.Add(1)
		return n, d.addr, nil
	case <-l.done:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

// WriteToUDPAddrPort encrypts b into one record for the session behind
// addr. An address without a session gets ErrNoSession.
func (l *DTLSLink) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	l.mu.RLock()
	s := l.sessions[addr]
	l.mu.RUnlock()
	if s == nil {
		l.stats.noSession.Add(1)
		return 0, fmt.Errorf("radio: dtls write to %v: %w", addr, ErrNoSession)
	}
	n, err := s.conn.Write(b)
	if err != nil {
		return n, fmt.Errorf("radio: dtls write to %v (%v): %w", addr, s.conn.RemoteAddr(), err)
	}
	l.stats.sent.Add(1)
	return n, nil
}

// Identity returns the client id the session behind addr is bound to by
// identity_rule (its PSK identity or certificate common name, or the
// identity_map entry for it), and false when addr has no session. A
// session without a client identity (certificates without client_auth)
// returns "", true: any client id is allowed.
func (l *DTLSLink) Identity(addr netip.AddrPort) (string, bool) {
	l.mu.RLock()
	s := l.sessions[addr]
	l.mu.RUnlock()
	if s == nil {
		return "", false
	}
	return s.clientID, true
}

// PeerIdentity returns the identity the session behind addr authenticated
// with (PSK identity or client certificate common name, before
// identity_rule), "" for a session without one, and false when addr has no
// session. The gateway uses it as the sensor's ACL user.
func (l *DTLSLink) PeerIdentity(addr netip.AddrPort) (string, bool) {
	l.mu.RLock()
	s := l.sessions[addr]
	l.mu.RUnlock()
	if s == nil {
		return "", false
	}
	return s.identity, true
}

// RemoteAddr returns the current UDP address of the peer behind addr (it
// changes when a Connection ID peer moves).
func (l *DTLSLink) RemoteAddr(addr netip.AddrPort) (net.Addr, bool) {
	l.mu.RLock()
	s := l.sessions[addr]
	l.mu.RUnlock()
	if s == nil {
		return nil, false
	}
	return s.conn.RemoteAddr(), true
}

// Reload rereads the PSK file, certificate, key and CA file. New handshakes
// use the new set; established sessions are kept. On error the old set stays
// in force.
func (l *DTLSLink) Reload() error {
	creds, err := loadCredentials(&l.cfg)
	if err != nil {
		l.stats.reloadFailures.Add(1)
		return fmt.Errorf("radio: dtls reload on %v: %w", l.LocalAddr(), err)
	}
	l.creds.Store(creds)
	l.stats.reloads.Add(1)
	l.log.Info("dtls credentials reloaded", "local", l.LocalAddr(), "psks", len(creds.psks), "sessions", l.stats.sessions.Load())
	return nil
}

// LocalAddr returns the UDP address the listener is bound to.
func (l *DTLSLink) LocalAddr() net.Addr { return l.ln.Addr() }

// Close stops accepting, closes every session and waits for the link's
// goroutines. A blocked read returns net.ErrClosed.
func (l *DTLSLink) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		l.cancel()
		err = l.ln.Close()
		l.mu.RLock()
		all := make([]*session, 0, len(l.sessions))
		for _, s := range l.sessions {
			all = append(all, s)
		}
		l.mu.RUnlock()
		for _, s := range all {
			s.conn.Close()
		}
		l.wg.Wait()
	})
	if err != nil {
		return fmt.Errorf("radio: close dtls listener: %w", err)
	}
	return nil
}

// Stats returns the link's counters.
func (l *DTLSLink) Stats() DTLSStats {
	s := &l.stats
	return DTLSStats{
		Handshakes: s.handshakes.Load(), HandshakeFailures: s.handshakeFailures.Load(),
		HandshakesCapped: s.handshakesCapped.Load(), RateLimited: s.rateLimited.Load(),
		SessionsRefused: s.sessionsRefused.Load(), Replaced: s.replaced.Load(), Reaped: s.reaped.Load(),
		Received: s.received.Load(), Dropped: s.dropped.Load(), Truncated: s.truncated.Load(),
		Sent: s.sent.Load(), NoSession: s.noSession.Load(), Reloads: s.reloads.Load(),
		ReloadFailures: s.reloadFailures.Load(), Sessions: s.sessions.Load(), Handshaking: s.handshaking.Load(),
	}
}

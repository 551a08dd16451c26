// Package lossy wraps a datagram link to make it as bad as a radio link:
// loss, duplication, reordering, delay and address changes, drawn from a
// seeded generator so a failing run can be replayed. Test-only: only
// _test.go files import it.
//
// Impairments apply to datagrams written through the wrapper; wrap both
// ends (the gateway's link and each client's) to impair both directions.
// Delays and reorder holds use time.AfterFunc, so under testing/synctest
// they pass in fake time. The draws are deterministic for a given seed and
// order of writes; with several writing goroutines the order is the
// scheduler's (synctest makes it repeatable in practice, not in principle).
//
// An address change is simulated on the receiving side, as a NAT rebinding
// looks to a server: after ChangeAddress(from, to), datagrams from `from`
// are read as coming from `to`, and datagrams written to `to` are delivered
// to `from`.
//
// Goroutines: none of its own; timers fire on runtime goroutines and stop
// on Close.
package lossy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Conn is what Wrap wraps: a net.PacketConn with the AddrPort methods of
// *net.UDPConn (internal/memlink's Link and *net.UDPConn both qualify).
type Conn interface {
	net.PacketConn
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// Config sets the impairments. Probabilities are in [0, 1).
type Config struct {
	Loss      float64       // a datagram is dropped
	Duplicate float64       // a datagram is sent twice
	Reorder   float64       // a datagram is held back and sent after the next one (or after ReorderHold)
	Delay     time.Duration // every datagram is delayed by this much
	Jitter    time.Duration // plus a uniform random extra in [0, Jitter)
	// ReorderHold bounds how long a held datagram waits for a successor
	// (0: 10ms), so the last datagram of a burst is not held forever.
	ReorderHold time.Duration
	Seed        uint64
}

// Validate reports the first impossible setting.
func (c Config) Validate() error {
	for name, p := range map[string]float64{"loss": c.Loss, "duplicate": c.Duplicate, "reorder": c.Reorder} {
		if p < 0 || p >= 1 {
			return fmt.Errorf("lossy: %s = %v: must be in [0, 1)", name, p)
		}
	}
	if c.Delay < 0 || c.Jitter < 0 || c.ReorderHold < 0 {
		return errors.New("lossy: delay, jitter and reorder_hold must not be negative")
	}
	return nil
}

// Stats counts what the wrapper did to written datagrams.
type Stats struct {
	Written, Dropped, Duplicated, Reordered, Delayed uint64
}

// Link is a Conn with impairments. It implements Conn and the gateway's
// Link.
type Link struct {
	inner Conn
	cfg   Config

	mu      sync.Mutex
	rng     *rand.Rand
	held    *held
	timers  map[*time.Timer]struct{}
	closed  bool
	toAlias map[netip.AddrPort]netip.AddrPort // real source -> what reads report
	toReal  map[netip.AddrPort]netip.AddrPort // alias -> real destination
	stats   Stats
}

type held struct {
	b      []byte
	copies int
	addr   netip.AddrPort
	timer  *time.Timer
}

// Wrap returns inner with cfg's impairments. It panics on an invalid cfg
// (a test's mistake).
func Wrap(inner Conn, cfg Config) *Link {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if cfg.ReorderHold == 0 {
		cfg.ReorderHold = 10 * time.Millisecond
	}
	return &Link{
		inner: inner, cfg: cfg,
		rng:     rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		timers:  map[*time.Timer]struct{}{},
		toAlias: map[netip.AddrPort]netip.AddrPort{},
		toReal:  map[netip.AddrPort]netip.AddrPort{},
	}
}

// ChangeAddress makes datagrams from `from` read as coming from `to`, and
// datagrams written to `to` go to `from`: the peer at `from` appears to
// have moved to `to`.
func (l *Link) ChangeAddress(from, to netip.AddrPort) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.toAlias[from]; ok {
		delete(l.toReal, old)
	}
	l.toAlias[from] = to
	l.toReal[to] = from
}

// ReadFromUDPAddrPort reads from the inner link, reporting changed
// addresses.
func (l *Link) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, addr, err := l.inner.ReadFromUDPAddrPort(b)
	if err != nil {
		return n, addr, err
	}
	l.mu.Lock()
	if a, ok := l.toAlias[addr]; ok {
		addr = a
	}
	l.mu.Unlock()
	return n, addr, nil
}

// WriteToUDPAddrPort sends b to addr through the impairments. It always
// reports success, as UDP does for a datagram lost on the way.
func (l *Link) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, net.ErrClosed
	}
	if real, ok := l.toReal[addr]; ok {
		addr = real
	}
	l.stats.Written++
	if l.cfg.Loss > 0 && l.rng.Float64() < l.cfg.Loss {
		l.stats.Dropped++
		l.mu.Unlock()
		return len(b), nil
	}
	copies := 1
	if l.cfg.Duplicate > 0 && l.rng.Float64() < l.cfg.Duplicate {
		l.stats.Duplicated++
		copies = 2
	}
	p := append([]byte(nil), b...)
	// A datagram held for reordering goes out right after this one.
	var release *held
	if l.held != nil {
		release = l.held
		l.held = nil
		release.timer.Stop()
		delete(l.timers, release.timer)
	} else if l.cfg.Reorder > 0 && l.rng.Float64() < l.cfg.Reorder {
		l.stats.Reordered++
		h := &held{b: p, copies: copies, addr: addr}
		h.timer = time.AfterFunc(l.cfg.ReorderHold, func() { l.flushHeld(h) })
		l.timers[h.timer] = struct{}{}
		l.held = h
		copies = 0 // sent when released
	}
	delays := make([]time.Duration, copies)
	for i := range delays {
		delays[i] = l.delayLocked()
	}
	var releaseDelays []time.Duration
	if release != nil {
		for range release.copies {
			releaseDelays = append(releaseDelays, l.delayLocked())
		}
	}
	l.mu.Unlock()
	for _, d := range delays {
		l.send(p, addr, d)
	}
	for _, d := range releaseDelays {
		l.send(release.b, release.addr, d)
	}
	return len(b), nil
}

func (l *Link) delayLocked() time.Duration {
	d := l.cfg.Delay
	if l.cfg.Jitter > 0 {
		d += time.Duration(l.rng.Int64N(int64(l.cfg.Jitter)))
	}
	return d
}

// flushHeld sends a held datagram whose successor did not come in time.
func (l *Link) flushHeld(h *held) {
	l.mu.Lock()
	if l.held != h || l.closed {
		l.mu.Unlock()
		return
	}
	l.held = nil
	delete(l.timers, h.timer)
	delays := make([]time.Duration, h.copies)
	for i := range delays {
		delays[i] = l.delayLocked()
	}
	l.mu.Unlock()
	for _, d := range delays {
		l.send(h.b, h.addr, d)
	}
}

func (l *Link) send(b []byte, addr netip.AddrPort, d time.Duration) {
	if d <= 0 {
		l.inner.WriteToUDPAddrPort(b, addr)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.stats.Delayed++
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		l.mu.Lock()
		_, live := l.timers[t]
		delete(l.timers, t)
		l.mu.Unlock()
		if live {
			l.inner.WriteToUDPAddrPort(b, addr)
		}
	})
	l.timers[t] = struct{}{}
}

// Stats returns what the wrapper did so far.
func (l *Link) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// Close stops pending deliveries and closes the inner link.
func (l *Link) Close() error {
	l.mu.Lock()
	l.closed = true
	for t := range l.timers {
		t.Stop()
	}
	clear(l.timers)
	l.held = nil
	l.mu.Unlock()
	return l.inner.Close()
}

// ReadFrom implements net.PacketConn.
func (l *Link) ReadFrom(b []byte) (int, net.Addr, error) {
	n, ap, err := l.ReadFromUDPAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(ap), nil
}

// WriteTo implements net.PacketConn; addr must be a *net.UDPAddr.
func (l *Link) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("lossy: write to %T: want *net.UDPAddr", addr)
	}
	return l.WriteToUDPAddrPort(b, ua.AddrPort())
}

// LocalAddr returns the inner link's address.
func (l *Link) LocalAddr() net.Addr { return l.inner.LocalAddr() }

// SetDeadline sets the inner link's deadlines.
func (l *Link) SetDeadline(t time.Time) error { return l.inner.SetDeadline(t) }

// SetReadDeadline sets the inner link's read deadline.
func (l *Link) SetReadDeadline(t time.Time) error { return l.inner.SetReadDeadline(t) }

// SetWriteDeadline sets the inner link's write deadline.
func (l *Link) SetWriteDeadline(t time.Time) error { return l.inner.SetWriteDeadline(t) }

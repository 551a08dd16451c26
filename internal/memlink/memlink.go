// Package memlink is an in-memory datagram network for tests: links that
// behave like UDP sockets (unreliable, message-preserving, addressed by
// netip.AddrPort) without touching the kernel, so tests can run under
// testing/synctest with fake time. Only _test.go files import it.
//
// A datagram written to an address nobody listens on is dropped, as UDP
// would. Each link buffers a bounded number of datagrams; a full buffer
// drops the newest, as a full socket buffer would. An optional Filter lets a
// test drop, duplicate or rewrite datagrams in flight.
package memlink

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// ErrClosed is returned by operations on a closed link.
var ErrClosed = net.ErrClosed

// Filter decides the fate of one datagram from src to dst: it returns the
// payloads to deliver (none drops it, two duplicate it). It runs on the
// writer's goroutine and must not block.
type Filter func(src, dst netip.AddrPort, b []byte) [][]byte

// Network connects links by address.
type Network struct {
	mu     sync.Mutex
	links  map[netip.AddrPort]*Link
	filter Filter
	next   uint16
}

// New returns an empty network.
func New() *Network { return &Network{links: map[netip.AddrPort]*Link{}, next: 10000} }

// SetFilter installs f for every datagram sent from now on (nil removes it).
func (n *Network) SetFilter(f Filter) {
	n.mu.Lock()
	n.filter = f
	n.mu.Unlock()
}

// Listen opens a link at addr; a zero port picks a free one.
func (n *Network) Listen(addr string) (*Link, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("memlink: listen %q: %w", addr, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if ap.Port() == 0 {
		for {
			n.next++
			ap = netip.AddrPortFrom(ap.Addr(), n.next)
			if n.links[ap] == nil {
				break
			}
		}
	}
	if n.links[ap] != nil {
		return nil, fmt.Errorf("memlink: listen %v: address in use", ap)
	}
	l := &Link{net: n, addr: ap, in: make(chan datagram, 1024), done: make(chan struct{})}
	n.links[ap] = l
	return l, nil
}

type datagram struct {
	from netip.AddrPort
	b    []byte
}

// Link is one endpoint. It implements net.PacketConn and the AddrPort read
// and write methods of *net.UDPConn.
type Link struct {
	net  *Network
	addr netip.AddrPort
	in   chan datagram
	done chan struct{}
	once sync.Once

	mu       sync.Mutex
	deadline time.Time
}

// ReadFromUDPAddrPort blocks until a datagram arrives, the read deadline
// passes, or the link is closed.
func (l *Link) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	l.mu.Lock()
	dl := l.deadline
	l.mu.Unlock()
	var timeout <-chan time.Time
	if !dl.IsZero() {
		d := time.Until(dl)
		if d <= 0 {
			return 0, netip.AddrPort{}, os.ErrDeadlineExceeded
		}
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case d := <-l.in:
		return copy(b, d.b), d.from, nil
	case <-l.done:
		return 0, netip.AddrPort{}, ErrClosed
	case <-timeout:
		return 0, netip.AddrPort{}, os.ErrDeadlineExceeded
	}
}

// WriteToUDPAddrPort sends a copy of b to addr. It never blocks.
func (l *Link) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	select {
	case <-l.done:
		return 0, ErrClosed
	default:
	}
	l.net.mu.Lock()
	dst, f := l.net.links[addr], l.net.filter
	l.net.mu.Unlock()
	payloads := [][]byte{b}
	if f != nil {
		payloads = f(l.addr, addr, b)
	}
	if dst == nil {
		return len(b), nil
	}
	for _, p := range payloads {
		select {
		case dst.in <- datagram{from: l.addr, b: append([]byte(nil), p...)}:
		default: // receiver's buffer is full: dropped, as UDP would
		}
	}
	return len(b), nil
}

// WriteBatchUDPAddrPort sends bufs[i] to addrs[i] in order, as
// WriteToUDPAddrPort does each, so that a gateway serving a memlink takes
// its batched send path (gateway.BatchLink). It returns how many were sent
// and the first error.
func (l *Link) WriteBatchUDPAddrPort(bufs [][]byte, addrs []netip.AddrPort) (int, error) {
	for i, b := range bufs {
		if _, err := l.WriteToUDPAddrPort(b, addrs[i]); err != nil {
			return i, err
		}
	}
	return len(bufs), nil
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
		return 0, errors.New("memlink: write to a non-UDP address")
	}
	return l.WriteToUDPAddrPort(b, ua.AddrPort())
}

// Close closes the link; blocked reads return ErrClosed.
func (l *Link) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.net.mu.Lock()
		delete(l.net.links, l.addr)
		l.net.mu.Unlock()
	})
	return nil
}

// LocalAddr returns the link's address as a *net.UDPAddr.
func (l *Link) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(l.addr) }

// AddrPort returns the link's address.
func (l *Link) AddrPort() netip.AddrPort { return l.addr }

// SetDeadline sets the read deadline (writes never block).
func (l *Link) SetDeadline(t time.Time) error { return l.SetReadDeadline(t) }

// SetReadDeadline sets the deadline for future reads; zero means none.
func (l *Link) SetReadDeadline(t time.Time) error {
	l.mu.Lock()
	l.deadline = t
	l.mu.Unlock()
	return nil
}

// SetWriteDeadline does nothing: writes never block.
func (l *Link) SetWriteDeadline(time.Time) error { return nil }

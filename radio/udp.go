package radio

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// UDPLink is a plain UDP socket with batched receives. It implements the
// gateway's Link. ReadFromUDPAddrPort returns one datagram per call from a
// batch filled by one recvmmsg system call (Linux; elsewhere, or with
// batch_size = 1, one recvfrom per datagram) and allocates nothing.
// IPv4-mapped IPv6 source addresses are unmapped, so a dual-stack socket
// reports IPv4 senders as IPv4 addresses.
type UDPLink struct {
	conn *net.UDPConn
	rc   syscall.RawConn

	rmu   sync.Mutex // serialises reads; guards batch
	batch *recvBatch // nil when batching is off

	sendBatching bool
	sendBatchN   int          // datagrams per sendmmsg: batch_size
	sendInet6    bool         // the socket is AF_INET6
	smu          sync.Mutex   // guards sendFree
	sendFree     []*sendBatch // sendmmsg scratch not in use; one per concurrent writer at most

	stats udpStats
}

type udpStats struct {
	received, truncated, syscalls, sent, writeErrors, sendSyscalls atomic.Uint64
	readBuffer, writeBuffer                                        atomic.Int64
}

// UDPStats counts a UDPLink's traffic. All counters are cumulative.
type UDPStats struct {
	Received    uint64 // datagrams returned by ReadFromUDPAddrPort
	Truncated   uint64 // datagrams longer than max_datagram, dropped
	Syscalls    uint64 // receive system calls (Received/Syscalls is the mean batch)
	Sent        uint64 // datagrams written
	WriteErrors uint64 // writes that failed
	// SendSyscalls counts the send system calls (Sent/SendSyscalls is the
	// mean batch of WriteBatchUDPAddrPort's sendmmsg).
	SendSyscalls uint64
	ReadBuffer   int // effective SO_RCVBUF in octets, as the kernel reports it
	WriteBuffer  int // effective SO_SNDBUF in octets
}

// ListenUDP opens a plain UDP listener for cfg (network udp, udp4 or udp6).
func ListenUDP(cfg ListenerConfig) (*UDPLink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch cfg.network() {
	case "dtls", "multicast":
		return nil, fmt.Errorf("radio: listen %s: ListenUDP cannot open a %s listener", cfg.Address, cfg.network())
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(context.Background(), cfg.network(), cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("radio: listen %s %s: %w", cfg.network(), cfg.Address, err)
	}
	return newUDPLink(pc.(*net.UDPConn), cfg)
}

// newUDPLink wraps conn, applies cfg's buffer sizes and batch size, and
// takes ownership of conn (closing it on error).
func newUDPLink(conn *net.UDPConn, cfg ListenerConfig) (*UDPLink, error) {
	l := &UDPLink{conn: conn}
	fail := func(op string, err error) (*UDPLink, error) {
		conn.Close()
		return nil, fmt.Errorf("radio: %s on %v: %w", op, conn.LocalAddr(), err)
	}
	rb, wb := cfg.Buffers()
	if err := conn.SetReadBuffer(rb); err != nil {
		return fail("set SO_RCVBUF", err)
	}
	if err := conn.SetWriteBuffer(wb); err != nil {
		return fail("set SO_SNDBUF", err)
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return fail("raw conn", err)
	}
	l.rc = rc
	r, w := socketBuffers(rc)
	l.stats.readBuffer.Store(int64(r))
	l.stats.writeBuffer.Store(int64(w))
	if n := cfg.batchSize(); n > 1 && batchSupported {
		l.batch = newRecvBatch(n, cfg.maxDatagram(), &l.stats)
		l.sendBatching, l.sendBatchN, l.sendInet6 = true, n, socketInet6(rc)
	}
	return l, nil
}

// ReadFromUDPAddrPort copies the next datagram into b and returns its
// length and sender. A datagram longer than b is cut to len(b), as a UDP
// socket would. It blocks until a datagram arrives, the read deadline set
// with SetReadDeadline passes, or the link is closed.
func (l *UDPLink) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	if l.batch == nil {
		n, addr, err := l.conn.ReadFromUDPAddrPort(b)
		if err != nil {
			return 0, netip.AddrPort{}, err
		}
		l.stats.syscalls.Add(1)
		l.stats.received.Add(1)
		return n, netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port()), nil
	}
	l.rmu.Lock()
	defer l.rmu.Unlock()
	return l.batch.read(l.rc, b)
}

// WriteToUDPAddrPort sends b to addr in one system call. The gateway's loops
// send through WriteBatchUDPAddrPort instead, a burst at a time.
func (l *UDPLink) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	n, err := l.conn.WriteToUDPAddrPort(b, addr)
	if err != nil {
		l.stats.writeErrors.Add(1)
		return n, err
	}
	l.stats.sent.Add(1)
	l.stats.sendSyscalls.Add(1)
	return n, nil
}

// WriteBatchUDPAddrPort sends bufs[i] to addrs[i], in order, with one
// sendmmsg system call per batch_size datagrams (Linux; elsewhere, or
// with batch_size = 1, one write each). A datagram the kernel refuses is
// counted as a write error and skipped; the others still go out, and the
// first error is returned with the number sent. It allocates nothing.
func (l *UDPLink) WriteBatchUDPAddrPort(bufs [][]byte, addrs []netip.AddrPort) (int, error) {
	if len(addrs) < len(bufs) {
		return 0, fmt.Errorf("radio: write batch on %v: %d datagrams, %d addresses", l.conn.LocalAddr(), len(bufs), len(addrs))
	}
	sent := 0
	var first error
	one := func(b []byte, addr netip.AddrPort) {
		if _, err := l.WriteToUDPAddrPort(b, addr); err != nil {
			if first == nil {
				first = err
			}
			return
		}
		sent++
	}
	if !l.sendBatching {
		for i, b := range bufs {
			one(b, addrs[i])
		}
		return sent, first
	}
	s := l.getSendBatch()
	defer l.putSendBatch(s)
	for i := 0; i < len(bufs); {
		for i < len(bufs) && s.n < len(s.hdrs) {
			if !s.put(s.n, bufs[i], addrs[i]) {
				if s.n > 0 {
					break // what is prepared goes first, in order
				}
				one(bufs[i], addrs[i])
				i++
				continue
			}
			s.n++
			i++
		}
		refused := 0
		for s.sent < s.n {
			if err := l.rc.Write(s.fn); err != nil { // the socket is closed
				l.stats.writeErrors.Add(uint64(s.n - s.sent))
				s.clear()
				if first == nil {
					first = fmt.Errorf("radio: write batch on %v: %w", l.conn.LocalAddr(), err)
				}
				return sent, first
			}
			l.stats.sendSyscalls.Add(1)
			if s.errno != nil { // the datagram at s.sent was refused
				l.stats.writeErrors.Add(1)
				if first == nil {
					first = fmt.Errorf("radio: sendmmsg on %v: %w", l.conn.LocalAddr(), s.errno)
				}
				s.sent++
				refused++
			}
		}
		sent += s.n - refused
		l.stats.sent.Add(uint64(s.n - refused))
		s.clear()
	}
	return sent, first
}

// getSendBatch returns sendmmsg scratch for one WriteBatchUDPAddrPort:
// links are shared by several loops, so each call has its own, and none
// holds a lock across the system call.
func (l *UDPLink) getSendBatch() *sendBatch {
	l.smu.Lock()
	if n := len(l.sendFree); n > 0 {
		s := l.sendFree[n-1]
		l.sendFree = l.sendFree[:n-1]
		l.smu.Unlock()
		return s
	}
	l.smu.Unlock()
	return newSendBatch(l.sendBatchN, l.sendInet6)
}

func (l *UDPLink) putSendBatch(s *sendBatch) {
	l.smu.Lock()
	l.sendFree = append(l.sendFree, s)
	l.smu.Unlock()
}

// LocalAddr returns the socket's address.
func (l *UDPLink) LocalAddr() net.Addr { return l.conn.LocalAddr() }

// Close closes the socket; a blocked read returns net.ErrClosed.
func (l *UDPLink) Close() error { return l.conn.Close() }

// SetReadDeadline sets the deadline for blocked and future reads; a zero
// time means none. A read past it returns an error for which
// errors.Is(err, os.ErrDeadlineExceeded) holds.
func (l *UDPLink) SetReadDeadline(t time.Time) error { return l.conn.SetReadDeadline(t) }

// Conn returns the underlying socket, for options radio does not set.
func (l *UDPLink) Conn() *net.UDPConn { return l.conn }

// Stats returns the link's counters.
func (l *UDPLink) Stats() UDPStats {
	return UDPStats{
		Received: l.stats.received.Load(), Truncated: l.stats.truncated.Load(),
		Syscalls: l.stats.syscalls.Load(), Sent: l.stats.sent.Load(),
		WriteErrors: l.stats.writeErrors.Load(), SendSyscalls: l.stats.sendSyscalls.Load(),
		ReadBuffer: int(l.stats.readBuffer.Load()), WriteBuffer: int(l.stats.writeBuffer.Load()),
	}
}

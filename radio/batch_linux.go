//go:build linux

package radio

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSupported says whether recvmmsg batching is available here.
const batchSupported = true

// recvBatch receives up to len(hdrs) datagrams with one recvmmsg call and
// hands them out one at a time.
//
// golang.org/x/net/ipv4's PacketConn.ReadBatch makes the same system call
// but allocates a *net.UDPAddr and its IP for every datagram it returns;
// calling recvmmsg through x/sys/unix with our own sockaddr storage and
// decoding the sender straight into a netip.AddrPort allocates nothing.
type recvBatch struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for either family
	bufs  [][]byte
	zones map[uint32]string // IPv6 scope id -> zone, so a zone is allocated once

	n, next int   // datagrams in the batch, next to hand out
	err     error // result of the last recvmmsg
	fn      func(fd uintptr) bool
	stats   *udpStats
}

func newRecvBatch(n, size int, st *udpStats) *recvBatch {
	r := &recvBatch{
		hdrs:  make([]unix.Mmsghdr, n),
		iovs:  make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrInet6, n),
		bufs:  make([][]byte, n),
		zones: map[uint32]string{},
		stats: st,
	}
	slab := make([]byte, n*size)
	for i := range r.hdrs {
		r.bufs[i] = slab[i*size : (i+1)*size : (i+1)*size]
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(size)
		r.hdrs[i].Hdr.Iov = &r.iovs[i]
		r.hdrs[i].Hdr.SetIovlen(1)
		r.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
	}
	r.fn = r.recv // a method value made once, so reads do not allocate a closure
	return r
}

// recv runs one non-blocking recvmmsg; false asks the poller to wait.
func (r *recvBatch) recv(fd uintptr) bool {
	for i := range r.hdrs {
		r.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		r.hdrs[i].Hdr.Flags = 0
		r.hdrs[i].Len = 0
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])),
		uintptr(len(r.hdrs)), unix.MSG_DONTWAIT, 0, 0)
	for errno == unix.EINTR {
		n, _, errno = unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])),
			uintptr(len(r.hdrs)), unix.MSG_DONTWAIT, 0, 0)
	}
	switch errno {
	case 0:
		r.n, r.next, r.err = int(n), 0, nil
	case unix.EAGAIN:
		return false
	default:
		r.n, r.next, r.err = 0, 0, errno
	}
	return true
}

// read returns the next datagram, refilling the batch when it is used up.
func (r *recvBatch) read(rc syscall.RawConn, b []byte) (int, netip.AddrPort, error) {
	for {
		for r.next < r.n {
			i := r.next
			r.next++
			h := &r.hdrs[i]
			if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
				r.stats.truncated.Add(1)
				continue
			}
			n := copy(b, r.bufs[i][:h.Len])
			r.stats.received.Add(1)
			return n, r.addr(&r.names[i]), nil
		}
		if err := rc.Read(r.fn); err != nil {
			return 0, netip.AddrPort{}, err
		}
		if r.err != nil {
			return 0, netip.AddrPort{}, r.err
		}
		r.stats.syscalls.Add(1)
	}
}

// addr decodes a kernel sockaddr into an unmapped netip.AddrPort.
func (r *recvBatch) addr(sa *unix.RawSockaddrInet6) netip.AddrPort {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	if sa.Family == unix.AF_INET {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port)
	}
	a := netip.AddrFrom16(sa.Addr)
	if a.Is4In6() {
		return netip.AddrPortFrom(a.Unmap(), port)
	}
	if sa.Scope_id != 0 {
		z, ok := r.zones[sa.Scope_id]
		if !ok {
			z = strconv.FormatUint(uint64(sa.Scope_id), 10)
			if len(r.zones) < 64 {
				r.zones[sa.Scope_id] = z
			}
		}
		a = a.WithZone(z)
	}
	return netip.AddrPortFrom(a, port)
}

// socketBuffers reads back SO_RCVBUF and SO_SNDBUF.
func socketBuffers(rc syscall.RawConn) (r, w int) {
	_ = rc.Control(func(fd uintptr) {
		r, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		w, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	})
	return r, w
}

// sendBatch sends many datagrams with sendmmsg. One is taken from a pool
// per WriteBatch call, so that links shared by several loops need no lock
// around the system call.
type sendBatch struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for either family
	inet6 bool                    // the socket is AF_INET6 (IPv4 peers as mapped addresses)

	n, sent int   // datagrams prepared, sent by the last call
	errno   error // result of the last sendmmsg
	fn      func(fd uintptr) bool
}

func newSendBatch(n int, inet6 bool) *sendBatch {
	s := &sendBatch{
		hdrs:  make([]unix.Mmsghdr, n),
		iovs:  make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrInet6, n),
		inet6: inet6,
	}
	for i := range s.hdrs {
		s.hdrs[i].Hdr.Iov = &s.iovs[i]
		s.hdrs[i].Hdr.SetIovlen(1)
		s.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&s.names[i]))
	}
	s.fn = s.send // a method value made once, so writes do not allocate a closure
	return s
}

// put prepares datagram b to addr in slot i. It reports false when the
// address cannot be written here as a plain sockaddr (an IPv6 peer on an
// IPv4 socket, or a zone): such a datagram goes alone through the net
// package.
func (s *sendBatch) put(i int, b []byte, addr netip.AddrPort) bool {
	a := addr.Addr()
	if a.Zone() != "" || len(b) == 0 {
		return false
	}
	sa := &s.names[i]
	var port [2]byte
	binary.BigEndian.PutUint16(port[:], addr.Port())
	switch {
	case !s.inet6:
		if !a.Is4() && !a.Is4In6() {
			return false
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.Unmap().As4()}
		*(*[2]byte)(unsafe.Pointer(&sa4.Port)) = port
		s.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet4
	default:
		*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()} // As16 maps IPv4
		*(*[2]byte)(unsafe.Pointer(&sa.Port)) = port
		s.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
	}
	s.iovs[i].Base = &b[0]
	s.iovs[i].SetLen(len(b))
	return true
}

// send runs one non-blocking sendmmsg over the prepared slots from sent
// on; false asks the poller to wait until the socket is writable.
func (s *sendBatch) send(fd uintptr) bool {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[s.sent])),
			uintptr(s.n-s.sent), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			s.sent += int(n)
			s.errno = nil
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			s.errno = errno
			return true
		}
	}
}

// clear drops the references to the caller's buffers.
func (s *sendBatch) clear() {
	for i := range s.n {
		s.iovs[i].Base = nil
	}
	s.n, s.sent = 0, 0
}

// socketInet6 reports whether the socket is an AF_INET6 one.
func socketInet6(rc syscall.RawConn) bool {
	var d int
	_ = rc.Control(func(fd uintptr) {
		d, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
	})
	return d == unix.AF_INET6
}

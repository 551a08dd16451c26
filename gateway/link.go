package gateway

import (
	"net"
	"net/netip"
)

// Link is a datagram socket the gateway serves clients on. *net.UDPConn
// implements it, and so do the radio package's transports and the test
// networks. Addresses are netip.AddrPort values so that receiving a datagram
// allocates nothing; a transport without IP addresses (DTLS sessions, a
// forwarder's radio) maps each peer to a stable AddrPort of its own.
type Link interface {
	ReadFromUDPAddrPort(b []byte) (n int, addr netip.AddrPort, err error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	LocalAddr() net.Addr
	Close() error
}

// BatchLink is a Link that also sends many datagrams with one system call
// (radio.UDPLink, with sendmmsg). A loop gathers what it sends while it
// handles one burst of input, the acknowledgements one commit released
// most often, and hands them over in one call when it runs out of input
// (loop.flush). bufs[i] goes to addrs[i], in order; the call returns how
// many were sent and the first error.
type BatchLink interface {
	Link
	WriteBatchUDPAddrPort(bufs [][]byte, addrs []netip.AddrPort) (int, error)
}

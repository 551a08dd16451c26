// Package radio provides the datagram transports the MQTT-SN gateway serves
// sensors on: plain UDP over IPv4 and IPv6 with batched socket I/O, DTLS 1.2
// (PSK and certificates, Connection ID) exposed as one link whose peers are
// synthetic addresses, multicast links for ADVERTISE and SEARCHGW/GWINFO,
// and per-source token-bucket rate limits.
//
// Every link has the method set of the gateway's Link interface
// (ReadFromUDPAddrPort, WriteToUDPAddrPort, LocalAddr, Close), so the
// gateway serves any of them without knowing which it has. radio parses no
// MQTT-SN: it must not import snpacket or gateway, and the gateway must not
// import radio. cmd/gannet puts the two together.
//
// Goroutines and buffers:
//   - UDPLink starts no goroutine. It owns one batch of receive buffers; a
//     read copies one datagram from the batch into the caller's buffer, so
//     ReadFromUDPAddrPort allocates nothing (recvmmsg is called through
//     golang.org/x/sys/unix: x/net's ReadBatch allocates an address per
//     datagram). Reads are serialised by a mutex
//     (the gateway reads each link from one goroutine); writes go straight
//     to the socket and may run concurrently. WriteBatchUDPAddrPort sends
//     many datagrams with one sendmmsg, with scratch from a small free list
//     (one per concurrent writer, no lock across the system call); the
//     gateway's loops use it for the answers of one burst (gateway.BatchLink).
//   - DTLSLink starts one accept goroutine, one reaper goroutine, and one
//     goroutine per connection attempt that runs its handshake (at most
//     max_handshakes at once) and then reads the established session until
//     it closes (pion/dtls's Conn is a blocking net.Conn, and pion runs
//     goroutines of its own per session). Close cancels handshakes, closes
//     every session and waits for all of them. Received records are copied
//     into pooled buffers and queued on one bounded channel; a full queue
//     drops the datagram and counts it, as a full socket buffer would.
//     Lock order: DTLSLink.mu is never held while calling into pion.
//   - MulticastLink is a UDPLink bound to a group port that has joined the
//     group.
//
// radio never logs on the per-datagram path; DTLSLink logs session events
// (handshake failures at Debug, reaps and reloads at Info) through the
// injected *slog.Logger.
package radio

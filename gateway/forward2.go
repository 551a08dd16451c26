package gateway

import (
	"context"
	"log/slog"
	"net/netip"

	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// 2.0 forwarders (CSD01 Forwarder Encapsulation, 0xFC, digest C.5): as in
// 1.2 (forward.go), a forwarder relays the packets of clients the gateway
// cannot reach, each wrapped in an envelope with the client's addressing
// information, which the gateway keeps as the client's node id and echoes
// in everything it sends the client. The 2.0 envelope's Length covers the
// whole packet and its addressing information has a length octet; a
// forwarder speaks one version (0xFE is 1.2's envelope, 0xFC 2.0's), and
// the clients behind it speak that version. Eclipse Paho's 0xFD form (the
// Length covers the envelope only; its addressing information is opaque
// here and echoed octet for octet) is served only from the forwarders
// paho_forwarders lists: a forwarder is a trusted relay, vouching for the
// node ids behind it, so it is named, not accepted by its format
// (docs/mqttsn-2.md P3). Each client is answered in its forwarder's form.

// pahoForwarder reports whether src may use Eclipse Paho's 0xFD envelope.
func (g *Gateway) pahoForwarder(src netip.AddrPort) bool {
	paho := g.live().paho
	return len(paho) > 0 && allowed(paho, src.Addr())
}

// handleForwardedV2 handles a 2.0 Forwarder Encapsulation fe (datagram b)
// from the forwarder at key.
func (l *loop) handleForwardedV2(key clientKey, fe *sn.ForwarderEncapsulation, b []byte) {
	l.pahoReply = fe.Paho // answers go in the form the envelope came in
	defer func() { l.pahoReply = false }()
	if fe.Paho {
		l.g.stats.pahoDeviations.Add(1)
	}
	node := fe.Addr
	if node == nil {
		node = []byte{} // forwarded, with empty addressing information: not direct
	}
	c := l.lookup(key, node)
	if c == nil {
		l.unknownV2(key, node, fe.Inner, b)
		return
	}
	if !c.isV2 {
		// A 1.2 client with the same node id behind this address: a
		// forwarder speaks one version.
		l.g.stats.unexpected.Add(1)
		return
	}
	if l.g.log.Enabled(context.Background(), slog.LevelDebug) {
		l.g.log.Debug("received", "remote", key.addr, "msg_type", fe.Inner.Type(), "client_id", c.id, "version", "2.0")
	}
	c.v2.paho = fe.Paho
	if c.probation {
		switch fe.Inner.(type) {
		case *sn.ConnectV2, *sn.SearchGWV2, *sn.Pubwos:
		default:
			l.verified(c) // probation.go
		}
	}
	if _, ok := fe.Inner.(*sn.ConnEncapsulation); ok {
		c.unexpectedV2(fe.Inner) // a re-bind behind a forwarder: not served
		return
	}
	c.handleV2(fe.Inner)
	c.checkState()
}

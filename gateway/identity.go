package gateway

import (
	"net/netip"

	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// identifier is implemented by links that authenticate their peers, such as
// radio's DTLS link: Identity returns the client id the peer behind addr is
// bound to (its PSK identity or certificate common name after the link's
// identity rule), "" when the peer carries no identity, and false when addr
// has no authenticated peer.
type identifier interface {
	Identity(addr netip.AddrPort) (string, bool)
}

// identityAllows reports whether the peer at addr on link may CONNECT with
// clientID: always on links that do not authenticate peers; on links that
// do, only when the peer's bound identity is clientID (or the peer has no
// identity at all, as with server-only certificates).
func identityAllows(link Link, addr netip.AddrPort, clientID string) bool {
	id, ok := link.(identifier)
	if !ok {
		return true
	}
	bound, ok := id.Identity(addr)
	if !ok {
		return false
	}
	return bound == "" || bound == clientID
}

// refuseIdentity answers a CONNECT whose client id the link's identity
// binding does not allow with CONNACK "rejected: not supported", counts it,
// and reports true; otherwise it reports false and does nothing.
func (c *client) refuseIdentity(m *sn.Connect) bool {
	if identityAllows(c.key.link, c.key.addr, string(m.ClientID)) {
		return false
	}
	c.l.g.stats.rejected.Add(1)
	c.l.g.stats.identityRefused.Add(1)
	c.l.g.log.Debug("CONNECT refused: client id does not match the link's identity",
		"remote", c.key.addr, "client_id", string(m.ClientID))
	c.l.tx.connack = sn.Connack{ReturnCode: sn.RejectedNotSupported}
	c.send(&c.l.tx.connack)
	if c.conn == nil && c.state != StateAsleep {
		c.l.removeClient(c)
	}
	return true
}

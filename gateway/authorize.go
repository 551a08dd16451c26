package gateway

import (
	"errors"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// Authorization. The core decides what a sensor may do (its Authorizer,
// mqttcore.Options.Authorizer, usually the [mqtt.auth] ACL): the gateway
// names the sensor's ACL user when it attaches it, resolves every topic id
// to a name before the core sees it (topicid.go), and turns the core's
// ErrNotAuthorized into MQTT-SN's refusals:
//
//   - PUBLISH QoS 0/1/2 by normal, predefined or short id, retained or not:
//     PUBACK "rejected: not supported" (the core refused it in
//     Conn.Publish);
//   - REGISTER of a name the sensor may not publish to: REGACK "rejected:
//     not supported", asked here so the sensor learns it before publishing;
//   - SUBSCRIBE (wildcards and $SYS included): SUBACK "rejected: not
//     supported";
//   - CONNECT with a will, WILLTOPICUPD, WILLMSGUPD: CONNACK, WILLTOPICRESP,
//     WILLMSGRESP "rejected: not supported";
//   - QoS -1 PUBLISH: dropped silently (there is no one to answer), as the
//     configured QoS -1 client id (qos_minus_one.client_id), which is also
//     its ACL user;
//   - deliveries: the core queues for a sensor only what its user may read.
//
// Each refusal is counted in Stats.Denied (and Rejected) and logged at Warn,
// at most once per limitWarnInterval for the whole gateway.

// peerIdentifier is implemented by links that authenticate their peers,
// such as radio's DTLS link: PeerIdentity returns the PSK identity or
// certificate common name of the peer behind addr, "" if it presented none,
// and false when addr has no authenticated peer.
type peerIdentifier interface {
	PeerIdentity(addr netip.AddrPort) (string, bool)
}

// aclUser returns the user the core's Authorizer is asked about for the
// sensor with clientID at addr on link: the link's authenticated identity
// (DTLS PSK identity or certificate CN; CONNECT already checked it against
// the client id by identity_rule), else the client id itself, which on
// plain UDP (and DTLS without client identities) is only the sensor's
// claim.
func aclUser(link Link, addr netip.AddrPort, clientID string) string {
	if p, ok := link.(peerIdentifier); ok {
		if id, ok := p.PeerIdentity(addr); ok && id != "" {
			return id
		}
	}
	return clientID
}

// user returns the client's ACL user: for a 2.0 client that authenticated,
// the user name it authenticated (auth2.go).
func (c *client) user() string {
	if c.isV2 && c.v2.user() != "" {
		return c.v2.user()
	}
	return aclUser(c.key.link, c.key.addr, c.id)
}

// mayPublish asks the core whether the client may publish to topic,
// counting and logging a denial.
func (c *client) mayPublish(topic string) bool {
	err := c.l.g.broker.Authorize(c.user(), c.id, mqttcore.ActionPublish, topic)
	if err != nil {
		c.l.g.denied(c.id, c.key.addr, err)
		return false
	}
	return true
}

// mayPublishQoSMinus1 asks the core whether the QoS -1 sender at remote
// may publish to topic as the configured QoS -1 client id, counting and
// logging a denial.
func (g *Gateway) mayPublishQoSMinus1(remote netip.AddrPort, topic string) bool {
	id := g.live().QoSMinus1.ClientID
	if err := g.broker.Authorize(id, id, mqttcore.ActionPublish, topic); err != nil {
		g.stats.rejected.Add(1)
		g.denied(id, remote, err)
		return false
	}
	return true
}

// denial is the gateway's rate-limited log of authorization refusals.
type denial struct {
	lastWarn   atomic.Int64 // UnixNano of the last Warn line
	suppressed atomic.Uint64
}

// denied counts an authorization refusal in Stats.Denied (the caller
// counts it in Rejected) and logs it at Warn, at most once per
// limitWarnInterval (the line says how many went unlogged since).
func (g *Gateway) denied(clientID string, remote netip.AddrPort, err error) {
	g.stats.denied.Add(1)
	now := time.Now().UnixNano()
	last := g.deny.lastWarn.Load()
	if now-last < int64(limitWarnInterval) || !g.deny.lastWarn.CompareAndSwap(last, now) {
		g.deny.suppressed.Add(1)
		return
	}
	g.log.Warn("not authorized", "client_id", clientID, "remote", remote, "err", err,
		"suppressed", g.deny.suppressed.Swap(0))
}

// isDenied reports whether err is the core's authorization refusal.
func isDenied(err error) bool { return errors.Is(err, mqttcore.ErrNotAuthorized) }

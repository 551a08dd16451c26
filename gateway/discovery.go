package gateway

import (
	"net/netip"
	"time"

	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// Gateway discovery (MQTT-SN 1.2 §6.1, §6.2): the gateway announces itself
// with ADVERTISE every Advertise.Interval on each link it serves, and
// answers SEARCHGW with GWINFO, from known and unknown senders alike. It
// never answers the gateway-side messages (ADVERTISE, GWINFO) of other
// gateways, so two gateways cannot ping-pong (loop.handleUnknown).

// answerSearch answers a SEARCHGW from key (and forwarder node id) with
// GWINFO.
func (l *loop) answerSearch(key clientKey, node []byte) {
	l.sendTo(key, node, &sn.GWInfo{GatewayID: l.g.live().GatewayID})
}

// advertise sends ADVERTISE on link every Advertise.Interval until stop or
// g.done closes.
func (g *Gateway) advertise(link Link, stop <-chan struct{}) {
	set := g.live()                                      // advertise.address and .interval are fixed at start (reconfig.go)
	to := netip.MustParseAddrPort(set.Advertise.Address) // checked by Validate
	m := &sn.Advertise{Duration: uint16(set.Advertise.Interval / time.Second)}
	t := time.NewTicker(set.Advertise.Interval)
	defer t.Stop()
	var buf []byte
	for {
		m.GatewayID = g.live().GatewayID // a reload may change it
		buf, _ = m.AppendBinary(buf[:0]) // fixed size, cannot fail
		if _, err := link.WriteToUDPAddrPort(buf, to); err != nil {
			g.log.Warn("advertise failed", "remote", to, "err", err)
		} else {
			g.stats.sent.Add(1)
		}
		select {
		case <-t.C:
		case <-stop:
			return
		case <-g.done:
			return
		}
	}
}

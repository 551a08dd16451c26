package gateway

import (
	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// Transparent sessions (mqttcore/upstream.go): a sensor whose core session
// is carried by its own session on a remote broker is answered CONNACK
// once the remote answered, and a waking sensor gets its messages once the
// remote session is resumed. The loop never waits: it asks the core to
// defer the answer (Sync(AckConnect)) and goes on; the answer comes as an
// Acked event (onAcked -> upstreamConnected).

// awaitUpstream reports whether the client's CONNACK (or, when awake, its
// delivery and PINGRESP) waits for the remote session; the client is then
// marked waiting and deliver holds back until upstreamConnected.
func (c *client) awaitUpstream() bool {
	if !c.conn.Sync(mqttcore.Ack{Kind: mqttcore.AckConnect}) {
		return false
	}
	c.upWait = true
	return true
}

// upstreamConnected completes a CONNECT or a wake-up that waited for the
// remote: CONNACK (or the remote's refusal as the MQTT-SN return code), or
// for a waking client the delivery of what the remote had queued.
func (c *client) upstreamConnected(err error) {
	if !c.upWait {
		return
	}
	c.upWait = false
	if c.conn == nil {
		return // gone in the meantime (slept, disconnected)
	}
	if c.isV2 {
		c.upstreamConnectedV2(err) // connect2.go: the same, in MQTT-SN 2.0
		return
	}
	if c.state == StateAwake {
		if err != nil {
			c.l.g.log.Debug("wake refused by the remote broker", "client_id", c.id, "err", err)
			c.lose("wake refused by the remote broker")
			return
		}
		c.deliver()
		return
	}
	if err != nil {
		c.refused(err)
		c.l.g.log.Debug("connect refused by the remote broker", "client_id", c.id, "remote", c.key.addr, "err", err)
		_ = c.conn.SetSessionExpiry(0) // the session this CONNECT attached ends with it
		_ = c.conn.Disconnect()
		c.detach()
		c.l.tx.connack = sn.Connack{ReturnCode: returnCode(err)}
		c.send(&c.l.tx.connack)
		c.setState(StateDisconnected)
		c.l.removeClient(c)
		return
	}
	c.l.tx.connack = sn.Connack{ReturnCode: sn.Accepted}
	c.send(&c.l.tx.connack)
	c.saveState(false)
	c.deliver()
}

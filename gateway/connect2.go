package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// The 2.0 CONNECT (CSD01 3.1, digest C.5): one packet with the will inline
// and optional authentication, answered by one CONNACK with a reason code.
// There is no will dialogue: a 2.0 client is never in one.

// onConnectV2 handles a 2.0 CONNECT in any state. Every CONNECT is
// answered. A refused CONNECT from a client that is connected leaves that
// connection as it was (as in 1.2); a refused first CONNECT forgets the
// client. A CONNECT with authentication waits for its password check,
// which runs off the loop (auth2.go), and goes on in connectChecked.
func (c *client) onConnectV2(m *sn.ConnectV2) {
	if m.Auth {
		c.l.connectAuthV2(c.key, c.nodeID(), m)
		return
	}
	c.connectChecked(m, "")
}

// connectChecked goes on with a CONNECT whose authentication, if it had
// any, authenticated user.
func (c *client) connectChecked(m *sn.ConnectV2, user string) {
	g := c.l.g
	if m.PacketID == 0 {
		// Eclipse Paho's 2.0 tools send Packet Identifier 0 (CSD01 wants
		// non-zero): accepted and echoed, counted (docs/mqttsn-2.md P2).
		g.stats.pahoDeviations.Add(1)
	}
	id, assigned := string(m.ClientID), false
	if id == "" {
		id, assigned = assignClientID(), true
	}
	if len(id) > g.live().MaxClientIDLen {
		g.limitHit(LimitClientIDLen, "", c.key.addr, nil)
		c.refuseConnectV2(m.PacketID, sn.ClientIDNotValid)
		return
	}
	if !identityAllows(c.key.link, c.key.addr, id) { // identity.go: DTLS identity binding
		g.stats.identityRefused.Add(1)
		c.refuseConnectV2(m.PacketID, sn.NotAuthorized)
		return
	}
	if c.upWait && c.id == id {
		return // a repeat while the remote broker answers (upstream.go)
	}
	if c.id != "" && c.id != id {
		// Another client id from the same address: the old client is gone.
		key, node := c.key, c.ownNodeID()
		c.lose("replaced by client id " + id)
		nc := c.l.admit(key, node, []byte(id)) // probation.go
		if nc == nil {
			g.stats.rejected.Add(1)
			g.limitHit(LimitClients, id, key.addr, nil)
			c.l.tx2.connack = sn.ConnackV2{PacketID: m.PacketID, ReasonCode: sn.Congestion}
			c.l.sendToNodeV2(key, node, node != nil && c.l.pahoReply, &c.l.tx2.connack)
			return
		}
		nc.setV2()
		nc.v2.paho = node != nil && c.l.pahoReply
		c = nc
	}
	c.connectV2(m, id, user, assigned)
}

// connectV2 attaches the client to its core session for an accepted CONNECT
// and answers CONNACK.
func (c *client) connectV2(m *sn.ConnectV2, id, user string, assigned bool) {
	g := c.l.g
	resumed := c.id == id && !m.CleanStart
	var will *mqttcore.Will
	if m.Will {
		topic, ok := c.willTopicV2(m, id, resumed)
		if !ok {
			// A will by an alias that does not resolve (docs/mqttsn-2.md
			// V10): a protocol error.
			c.refuseConnectV2(m.PacketID, sn.ProtocolError)
			return
		}
		will = &mqttcore.Will{Topic: topic, Payload: clone(m.WillPayload), QoS: mqttcore.QoS(m.WillQoS), Retain: m.WillRetain}
	}
	expiry, capped := sessionExpiryV2(m, g.live().SessionExpiry)
	c.id = id
	paho := c.v2.paho // the forwarder's envelope form, which the CONNECT does not change
	*c.v2 = v2conn{
		paho:       paho,
		expiry:     expiry,
		maxPacket:  m.MaxPacketSize,
		allowMove:  m.AllowAddressChange,
		expiryZero: expiry == 0,
	}
	c.v2.setUser(user)
	if m.HasDefaultAwake {
		c.v2.awakeMax = m.DefaultAwakeMessages
	}
	c.keepAlive = m.KeepAlive
	c.clean = m.CleanStart
	if !resumed {
		// Session aliases last as long as the gateway's state of the
		// client: a CONNECT that resumes from the same address keeps them
		// (docs/mqttsn-2.md G2-3).
		c.resetTopics()
	}
	c.setOut(outFlight{})
	c.timerAt = 0
	c.setState(StateActive)
	c.setDialogue(nil)
	// The CONNECT's will, possibly none, replaces the stored one; the core
	// publishes the will of a virtual connection the CONNECT replaces
	// (CSD01 3.1: the old connection is deleted, its will published).
	present, err := c.attachPresent(m.CleanStart, will, false)
	if err != nil {
		c.refused(err)
		g.log.Debug("connect refused", "client_id", c.id, "remote", c.key.addr, "err", err)
		c.l.tx2.connack = sn.ConnackV2{PacketID: m.PacketID, ReasonCode: reasonCode(err)}
		c.sendV2(&c.l.tx2.connack)
		c.l.removeClient(c)
		return
	}
	ack := &c.l.tx2.connack
	*ack = sn.ConnackV2{PacketID: m.PacketID, SessionPresent: present && !m.CleanStart, ReasonCode: sn.Success}
	if capped && m.AllowServerValues {
		ack.HasSessionExpiry, ack.SessionExpiry = true, uint32(expiry/time.Second)
	}
	if assigned {
		ack.AssignedClientID = []byte(id)
	}
	g.stats.v2Connects.Add(1)
	c.indexMovable(m.AllowAddressChange) // connencap.go
	c.l.schedule(c)                      // keep-alive supervision starts
	if c.awaitUpstream() {
		// upstream.go: a transparent session's CONNACK follows the
		// remote broker's (upstreamConnectedV2).
		pending := *ack
		pending.AssignedClientID = clone(ack.AssignedClientID)
		c.v2.setConnack(&pending)
		return
	}
	c.sendV2(ack)
	c.saveState(false) // persist.go: where the sensor is, for a restart
	c.deliver()
}

// upstreamConnectedV2 is upstreamConnected (upstream.go) for a 2.0 client:
// the waiting CONNACK, or the remote's refusal as a reason code; for a
// waking client the delivery of what the remote had queued.
func (c *client) upstreamConnectedV2(err error) {
	if c.state == StateAwake {
		if err != nil {
			c.l.g.log.Debug("wake refused by the remote broker", "client_id", c.id, "err", err)
			c.lose("wake refused by the remote broker")
			return
		}
		c.deliver()
		return
	}
	ack := c.v2.takeConnack()
	if ack == nil {
		return // not reached: only a CONNECT waits outside awake
	}
	if err != nil {
		c.refused(err)
		c.l.g.log.Debug("connect refused by the remote broker", "client_id", c.id, "remote", c.key.addr, "err", err)
		_ = c.conn.SetSessionExpiry(0) // the session this CONNECT attached ends with it
		_ = c.conn.Disconnect()
		c.detach()
		c.l.tx2.connack = sn.ConnackV2{PacketID: ack.PacketID, ReasonCode: reasonCode(err)}
		c.sendV2(&c.l.tx2.connack)
		c.setState(StateDisconnected)
		c.l.removeClient(c)
		return
	}
	c.sendV2(ack)
	c.saveState(false)
	c.deliver()
}

// refuseConnectV2 answers a CONNECT with a failure reason code. A client
// that has no connection (a first CONNECT) is forgotten.
func (c *client) refuseConnectV2(packetID uint16, rc sn.ReasonCode) {
	c.l.g.stats.rejected.Add(1)
	c.l.tx2.connack = sn.ConnackV2{PacketID: packetID, ReasonCode: rc}
	c.sendV2(&c.l.tx2.connack)
	if c.conn == nil && c.state != StateAsleep {
		c.l.removeClient(c)
	}
}

// willTopicV2 resolves the topic of the CONNECT's will: a name, a
// predefined alias, or a session alias of the session the CONNECT resumes.
func (c *client) willTopicV2(m *sn.ConnectV2, id string, resumed bool) (string, bool) {
	switch m.WillTopicType {
	case sn.TopicTypeName:
		return string(m.WillTopic), true
	case sn.TopicTypePredefined:
		return c.l.g.ids.pre.Load().topic(id, m.WillTopicAlias)
	case sn.TopicTypeSession:
		if resumed {
			return c.topicName(sn.TopicIDNormal, m.WillTopicAlias)
		}
	}
	return "", false
}

// sessionExpiryV2 maps the CONNECT's Session Expiry Interval to the core's
// session expiry: absent is 0 (the session ends with the virtual
// connection), 0xFFFFFFFF never expires. Nothing is kept longer than
// session_expiry, the operator's bound for every sensor's session: capped
// reports that the client asked for more.
func sessionExpiryV2(m *sn.ConnectV2, limit time.Duration) (d time.Duration, capped bool) {
	if !m.HasSessionExpiry {
		return 0, false
	}
	d = expirySeconds(m.SessionExpiry)
	if d > limit {
		return limit, true
	}
	return d, false
}

// expirySeconds converts a 2.0 Session Expiry Interval to a duration.
func expirySeconds(s uint32) time.Duration {
	if s == 0xFFFFFFFF {
		return mqttcore.NeverExpire
	}
	return time.Duration(s) * time.Second
}

// assignClientID returns a client id for a CONNECT without one (CONNACK's
// Assigned Client Identifier): 23 characters from [0-9a-z], as CSD01 asks
// every server to accept.
func assignClientID() string {
	var b [9]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "gannet" + hex.EncodeToString(b[:])[:17]
}

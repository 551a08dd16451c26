package gateway

import (
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// onConnect handles CONNECT in any state. A client is active from the moment
// its CONNECT arrives; every CONNECT is answered, also a repeated one.
func (c *client) onConnect(m *sn.Connect) {
	cfg := c.l.g.live()
	if len(m.ClientID) > cfg.MaxClientIDLen {
		c.l.g.stats.rejected.Add(1)
		c.l.g.limitHit(LimitClientIDLen, "", c.key.addr, nil)
		c.l.tx.connack = sn.Connack{ReturnCode: sn.RejectedNotSupported}
		c.send(&c.l.tx.connack)
		if c.conn == nil && c.state != StateAsleep {
			c.l.removeClient(c)
		}
		return
	}
	if c.refuseIdentity(m) { // identity.go: DTLS identity binding
		return
	}
	if c.upWait && c.id == string(m.ClientID) {
		return // a repeat while the remote broker answers (upstream.go)
	}
	if c.id != "" && c.id != string(m.ClientID) {
		// Another client id from the same address: the old client is gone.
		key, node := c.key, c.ownNodeID()
		c.lose("replaced by client id " + string(m.ClientID))
		nc := c.l.admit(key, node, m.ClientID) // probation.go
		if nc == nil {
			c.l.refuseFull(key, node, m.ClientID)
			return
		}
		nc.onConnect(m)
		return
	}
	if c.id == "" {
		c.id = string(m.ClientID)
	}
	c.keepAlive = m.Duration
	c.clean = m.CleanSession
	c.resetTopics() // ids are per connection: the gateway REGISTERs again as needed
	c.setOut(outFlight{})
	c.timerAt = 0
	c.setState(StateActive)
	if m.Will {
		c.startDialogue(m.CleanSession) // will.go
		return
	}
	c.setDialogue(nil)
	// CleanSession=1 ends the session, will included; CleanSession=0 without
	// the Will flag keeps the stored will (§6.3, table in the spec notes B.2).
	c.connect(m.CleanSession, nil, !m.CleanSession)
}

// connect attaches the client to its core session and answers CONNACK.
func (c *client) connect(clean bool, will *mqttcore.Will, keepWill bool) {
	c.setDialogue(nil)
	c.timerAt = 0
	if !keepWill {
		c.dropStoredWill()
	}
	if err := c.attach(clean, will, keepWill); err != nil {
		c.refused(err)
		c.l.g.log.Debug("connect refused", "client_id", c.id, "remote", c.key.addr, "err", err)
		c.l.tx.connack = sn.Connack{ReturnCode: returnCode(err)}
		c.send(&c.l.tx.connack)
		c.l.removeClient(c)
		return
	}
	c.setState(StateActive)
	c.l.schedule(c) // keep-alive supervision starts
	if c.awaitUpstream() {
		return // upstream.go: CONNACK follows the remote broker's
	}
	c.l.tx.connack = sn.Connack{ReturnCode: sn.Accepted}
	c.send(&c.l.tx.connack)
	c.saveState(false) // persist.go: where the sensor is, for a restart
	c.deliver()
}

// sessionExpiry is the expiry of the client's core session.
func (c *client) sessionExpiry() time.Duration {
	if c.isV2 {
		return c.v2.expiry // the CONNECT's, at most session_expiry (connect2.go)
	}
	if c.clean {
		// CleanSession=1: the session lasts as long as the connection
		// (MQTT-SN §6.3, MQTT 3.1.2.4), sleep included: nothing is kept
		// once the sensor disconnects or is lost, and nothing is journalled.
		return 0
	}
	return c.l.g.live().SessionExpiry
}

// attach attaches the client to its core session, taking over any earlier
// attachment of the same client id.
func (c *client) attach(clean bool, will *mqttcore.Will, keepWill bool) error {
	_, err := c.attachPresent(clean, will, keepWill)
	return err
}

// attachPresent is attach, also reporting whether the core had a session
// for the client (a 2.0 CONNACK's Session Present).
func (c *client) attachPresent(clean bool, will *mqttcore.Will, keepWill bool) (present bool, err error) {
	expiry := c.sessionExpiry()
	att := &attachment{c: c}
	c.att = att // before Attach: a Close for the old attachment must find it stale
	conn, present, err := c.l.g.broker.Attach(att, mqttcore.ConnectOptions{
		ClientID:      c.id,
		Username:      c.user(), // the ACL user (authorize.go)
		CleanStart:    clean,
		SessionExpiry: expiry,
		Will:          will,
		KeepWill:      keepWill,
		MaxInflight:   1,            // one QoS 1/2 message in flight per direction (§6.5)
		Budget:        c.l.g.budget, // max_clients bounds sensors' sessions in the core
	})
	if err != nil {
		c.detach()
		return false, err
	}
	if c.probation && (!present || c.provisional) && expiry > 0 {
		// probation.go: a session this client's CONNECT created (now or in
		// an earlier CONNECT while on probation) ends with it until it is
		// verified.
		c.provisional = conn.SetSessionExpiry(0) == nil
	}
	c.setConn(conn)
	c.timerAt = 0
	if kept := conn.TakeFrontEndState(); kept != nil && present && !clean {
		c.resumeSession(kept) // persist.go: a 2.0 client's aliases come back
	}
	return present, nil
}

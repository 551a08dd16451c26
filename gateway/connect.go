package gateway

import (
	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// dialogue is the will dialogue that follows a CONNECT with the Will flag:
// WILLTOPICREQ, WILLTOPIC, WILLMSGREQ, WILLMSG, then CONNACK (§6.3).
type dialogue struct {
	cleanSession bool
	will         *mqttcore.Will // the topic, once WILLTOPIC arrived
	tries        int
}

// onConnect handles CONNECT in any state. A client is active from the moment
// its CONNECT arrives; every CONNECT is answered, also a repeated one.
func (c *client) onConnect(m *sn.Connect) {
	cfg := &c.l.g.cfg
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
	if c.id != "" && c.id != string(m.ClientID) {
		// Another client id from the same address: the old client is gone.
		key, node := c.key, []byte(nil)
		if c.fwd {
			node = append([]byte{}, c.node...)
		}
		c.lose("replaced by client id " + string(m.ClientID))
		c.l.newClient(key, node).onConnect(m)
		return
	}
	if c.id == "" {
		c.id = string(m.ClientID)
	}
	c.keepAlive = m.Duration
	c.topics.reset() // ids are per connection: the gateway REGISTERs again as needed
	c.out = outFlight{}
	c.timerAt = 0
	c.setState(StateActive)
	if m.Will {
		c.dialogue = &dialogue{cleanSession: m.CleanSession}
		c.send(&sn.WillTopicReq{})
		c.armRetry()
		return
	}
	c.dialogue = nil
	// CleanSession=1 ends the session, will included; CleanSession=0 without
	// the Will flag keeps the stored will (§6.3, table in the spec notes B.2).
	c.connect(m.CleanSession, nil, !m.CleanSession)
}

func (c *client) onWillTopic(m *sn.WillTopic) {
	d := c.dialogue
	switch {
	case d == nil:
		c.unexpected(m) // a late duplicate after CONNACK
	case d.will != nil:
		c.send(&sn.WillMsgReq{}) // a duplicate: the client missed our request
	case len(m.Topic) == 0:
		// The empty WILLTOPIC: no will (and with CleanSession=0 it deletes
		// the stored one). No WILLMSG follows.
		c.connect(d.cleanSession, nil, false)
	default:
		d.will = &mqttcore.Will{Topic: string(m.Topic), QoS: mqttcore.QoS(m.QoS), Retain: m.Retain}
		d.tries = 0
		c.send(&sn.WillMsgReq{})
		c.armRetry()
	}
}

func (c *client) onWillMsg(m *sn.WillMsg) {
	d := c.dialogue
	if d == nil || d.will == nil {
		c.unexpected(m)
		return
	}
	d.will.Payload = clone(m.Message)
	c.connect(d.cleanSession, d.will, false)
}

// connect attaches the client to its core session and answers CONNACK.
func (c *client) connect(clean bool, will *mqttcore.Will, keepWill bool) {
	c.dialogue = nil
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
	c.l.tx.connack = sn.Connack{ReturnCode: sn.Accepted}
	c.send(&c.l.tx.connack)
	c.deliver()
}

// dropStoredWill deletes the will stored in the client's core session
// without publishing it. A CONNECT with CleanSession=1 or with the Will
// flag deletes or replaces the stored will data (§6.3, spec notes B.2); the
// core, following MQTT, would publish the old will when an attachment is
// taken over or a session ended by a clean start. A session that is not
// attached here (asleep, or attached at the client's old address) is first
// taken over keeping its will, which publishes nothing.
func (c *client) dropStoredWill() {
	if c.conn == nil {
		if info, ok := c.l.g.broker.Session(c.id); !ok || !info.HasWill {
			return
		}
		if err := c.attach(false, nil, true); err != nil {
			return // the attach that follows reports the refusal
		}
	}
	_ = c.conn.SetWill(nil)
}

// attach attaches the client to its core session, taking over any earlier
// attachment of the same client id.
func (c *client) attach(clean bool, will *mqttcore.Will, keepWill bool) error {
	cfg := &c.l.g.cfg
	expiry := cfg.SessionExpiry
	if expiry == 0 {
		expiry = mqttcore.NeverExpire
	}
	att := &attachment{c: c}
	c.att = att // before Attach: a Close for the old attachment must find it stale
	conn, _, err := c.l.g.broker.Attach(att, mqttcore.ConnectOptions{
		ClientID:      c.id,
		CleanStart:    clean,
		SessionExpiry: expiry,
		Will:          will,
		KeepWill:      keepWill,
		MaxInflight:   1, // one QoS 1/2 message in flight per direction (§6.5)
	})
	if err != nil {
		c.att, c.conn = nil, nil
		return err
	}
	c.conn = conn
	c.timerAt = 0
	return nil
}

// onWillTopicUpd replaces the will topic, keeping the will message; an
// empty WILLTOPICUPD deletes the will (§6.4).
func (c *client) onWillTopicUpd(m *sn.WillTopicUpd) {
	var err error
	if len(m.Topic) == 0 {
		err = c.conn.SetWill(nil)
	} else {
		w := &mqttcore.Will{Topic: string(m.Topic), QoS: mqttcore.QoS(m.QoS), Retain: m.Retain}
		if old := c.conn.Will(); old != nil {
			w.Payload, w.Delay = old.Payload, old.Delay
		}
		err = c.conn.SetWill(w)
	}
	if err != nil {
		c.l.g.stats.rejected.Add(1)
	}
	c.send(&sn.WillTopicResp{ReturnCode: returnCode(err)})
}

// onWillMsgUpd replaces the will message. Without a will topic there is no
// will to change, and the update is refused.
func (c *client) onWillMsgUpd(m *sn.WillMsgUpd) {
	old := c.conn.Will()
	if old == nil {
		c.l.g.stats.rejected.Add(1)
		c.send(&sn.WillMsgResp{ReturnCode: sn.RejectedNotSupported})
		return
	}
	w := *old
	w.Payload = clone(m.Message)
	err := c.conn.SetWill(&w)
	c.send(&sn.WillMsgResp{ReturnCode: returnCode(err)})
}

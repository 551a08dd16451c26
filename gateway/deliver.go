package gateway

import (
	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// Kinds of gateway-to-client exchange. The gateway keeps at most one in
// progress per client, as the specification asks of clients (§6.5): the
// core's in-flight window for the client is 1.
const (
	outNone     uint8 = iota
	outRegister       // REGISTER sent, the delivery waits for REGACK
	outPublish        // QoS 1/2 PUBLISH sent, waiting for PUBACK or PUBREC
	outPubrel         // PUBREL sent, waiting for PUBCOMP
)

type outFlight struct {
	kind    uint8
	typ     sn.TopicIDType
	msgID   uint16
	topicID uint16
	tries   uint8 // resends so far; max_retries is at most 255
	d       mqttcore.Delivery
}

// deliver sends the client what its core session has for it, one exchange
// at a time. An awake client goes back to sleep when nothing is left.
func (c *client) deliver() {
	for c.conn != nil && c.out.kind == outNone && c.dialogue == nil {
		d, ok := c.conn.Next()
		if !ok {
			break
		}
		c.start(d)
	}
	if c.state == StateAwake && c.out.kind == outNone {
		c.backToSleep()
	}
}

// start begins delivering d.
func (c *client) start(d mqttcore.Delivery) {
	if d.Release { // after a re-attach: the PUBREL of a QoS 2 message
		c.out = outFlight{kind: outPubrel, msgID: d.PacketID, d: d}
		c.sendPubrel()
		c.armRetry()
		return
	}
	// The largest PUBLISH header is 9 octets (three-octet Length).
	if 9+len(d.Message.Payload) > c.l.g.cfg.MaxMessageSize {
		c.l.g.limitHit(LimitMessageSizeOut, c.id, c.key.addr, nil)
		c.abandon(d) // the spec: silently abandoned for this client (§6.9)
		return
	}
	typ, id, ok := c.topicFor(d.Message.Topic)
	if !ok {
		e := c.topics.add(d.Message.Topic, byGateway, c.l.g.cfg.MaxTopicsPerClient)
		if e == nil || e.flags&rejectedID != 0 {
			if e == nil {
				c.l.g.stats.rejected.Add(1)
				c.l.g.limitHit(LimitTopicsPerClient, c.id, c.key.addr, nil)
			}
			c.abandon(d)
			return
		}
		// Tell the client the id first; PUBLISH follows its REGACK (§6.10).
		c.regID++
		if c.regID == 0 {
			c.regID = 1
		}
		c.out = outFlight{kind: outRegister, msgID: c.regID, topicID: e.id, d: d}
		c.sendRegister()
		c.armRetry()
		return
	}
	c.publish(d, typ, id)
}

// topicFor finds how the client knows topic: a normal id it holds, a
// predefined id, or a two-character short name. ok is false when the
// gateway must REGISTER the name first.
func (c *client) topicFor(topic string) (sn.TopicIDType, uint16, bool) {
	if e := c.topics.byNameString(topic); e != nil && e.flags&rejectedID == 0 {
		return sn.TopicIDNormal, e.id, true
	}
	if id, ok := c.l.g.pre.id(c.id, topic); ok {
		return sn.TopicIDPredefined, id, true
	}
	if id, ok := sn.ShortTopicID(topic); ok {
		return sn.TopicIDShort, id, true
	}
	return 0, 0, false
}

func (c *client) publish(d mqttcore.Delivery, typ sn.TopicIDType, id uint16) {
	p := &c.l.tx.publish
	*p = sn.Publish{Dup: d.Dup, QoS: sn.QoS(d.QoS), Retain: d.Retain, TopicIDType: typ, TopicID: id, Data: d.Message.Payload}
	if d.QoS == mqttcore.AtMostOnce {
		c.send(p)
		return
	}
	p.MsgID = d.PacketID
	c.out = outFlight{kind: outPublish, typ: typ, msgID: d.PacketID, topicID: id, d: d}
	c.send(p)
	c.armRetry()
}

// abandon gives up on delivering d to this client: the core forgets it.
func (c *client) abandon(d mqttcore.Delivery) {
	if d.QoS != mqttcore.AtMostOnce {
		_ = c.conn.Ack(d.PacketID)
	}
}

func (c *client) sendRegister() {
	e := c.topics.byID(c.out.topicID)
	c.l.tx.register = sn.Register{TopicID: c.out.topicID, MsgID: c.out.msgID, TopicName: []byte(e.name)}
	c.send(&c.l.tx.register)
}

func (c *client) sendPubrel() {
	c.l.tx.pubrel = sn.Pubrel{MsgID: c.out.msgID}
	c.send(&c.l.tx.pubrel)
}

// retry resends the exchange in progress after retry_interval, or gives the
// client up as lost after max_retries (or ends a stalled will dialogue).
func (c *client) retry() {
	cfg := &c.l.g.cfg
	if d := c.dialogue; d != nil {
		if d.tries++; d.tries > cfg.MaxRetries {
			// Active since its CONNECT and now silent: lost. A client that
			// was connected before this CONNECT is still attached to its
			// core session, which must not outlive the gateway's state.
			c.dialogue = nil
			c.lose("will dialogue abandoned")
			return
		}
		if d.will == nil {
			c.send(&sn.WillTopicReq{})
		} else {
			c.send(&sn.WillMsgReq{})
		}
		c.armRetry()
		return
	}
	if c.out.kind == outNone {
		return
	}
	if c.out.tries++; int(c.out.tries) > cfg.MaxRetries {
		c.lose("no acknowledgement after max_retries")
		return
	}
	c.l.g.stats.retransmits.Add(1)
	switch c.out.kind {
	case outRegister:
		c.sendRegister()
	case outPublish:
		d := c.out.d
		d.Dup = true
		p := &c.l.tx.publish
		*p = sn.Publish{Dup: true, QoS: sn.QoS(d.QoS), Retain: d.Retain, TopicIDType: c.out.typ,
			TopicID: c.out.topicID, MsgID: c.out.msgID, Data: d.Message.Payload}
		c.send(p)
	case outPubrel:
		c.sendPubrel()
	}
	c.armRetry()
}

func (c *client) onRegack(m *sn.Regack) {
	if c.out.kind != outRegister || m.MsgID != c.out.msgID {
		c.unexpected(m)
		return
	}
	d, id := c.out.d, c.out.topicID
	c.out, c.timerAt = outFlight{}, 0
	if m.ReturnCode != sn.Accepted {
		// A refused REGISTER counts as unsubscribing from that exact topic
		// (§6.10); a wildcard subscription stays, so later messages on the
		// topic are dropped for this client instead of asked about again.
		if e := c.topics.byID(id); e != nil {
			e.flags |= rejectedID
			_, _ = c.conn.Unsubscribe(e.name)
		}
		c.abandon(d)
		c.deliver()
		return
	}
	c.publish(d, sn.TopicIDNormal, id)
	if c.out.kind == outNone {
		c.deliver() // QoS 0: nothing to wait for
	}
}

func (c *client) onPuback(m *sn.Puback) {
	if c.out.kind != outPublish || m.MsgID != c.out.msgID {
		c.unexpected(m)
		return
	}
	d, typ, id := c.out.d, c.out.typ, c.out.topicID
	c.out, c.timerAt = outFlight{}, 0
	switch {
	case m.ReturnCode == sn.Accepted:
		_ = c.conn.Ack(d.PacketID)
	case m.ReturnCode == sn.RejectedInvalidTopicID && typ == sn.TopicIDNormal:
		// The client lost the mapping: forget it, REGISTER again, resend.
		c.topics.removeID(id)
		c.start(d)
		return
	default:
		c.l.g.stats.rejected.Add(1)
		c.abandon(d)
	}
	c.deliver()
}

func (c *client) onPubrec(m *sn.Pubrec) {
	switch {
	case c.out.kind == outPublish && m.MsgID == c.out.msgID && c.out.d.QoS == mqttcore.ExactlyOnce:
		_ = c.conn.Received(m.MsgID)
		c.out = outFlight{kind: outPubrel, msgID: m.MsgID, d: c.out.d}
		c.sendPubrel()
		c.armRetry()
	case c.out.kind == outPubrel && m.MsgID == c.out.msgID:
		c.sendPubrel() // our PUBREL was lost
	default:
		c.unexpected(m)
	}
}

func (c *client) onPubcomp(m *sn.Pubcomp) {
	if c.out.kind != outPubrel || m.MsgID != c.out.msgID {
		c.unexpected(m)
		return
	}
	c.out, c.timerAt = outFlight{}, 0
	_ = c.conn.Complete(m.MsgID)
	c.deliver()
}

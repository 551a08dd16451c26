package gateway

import (
	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// onPublish handles a PUBLISH from the client (§6.8).
func (c *client) onPublish(m *sn.Publish) {
	topic, ok := c.topicName(m.TopicIDType, m.TopicID)
	if !ok {
		// Any QoS may be told its topic id is unknown, so the client can
		// REGISTER again (§6.8); QoS -1 senders expect no answer.
		c.l.g.stats.invalidTopic.Add(1)
		if m.QoS != sn.QoSMinus1 {
			c.sendPuback(m.TopicID, m.MsgID, sn.RejectedInvalidTopicID)
		}
		return
	}
	if m.QoS > sn.QoS0 && c.heldAtt != nil && c.heldAtt == c.att && m.MsgID == c.heldID {
		switch {
		case c.heldAns == heldPending:
			// The sensor resent (its T_retry was shorter than the hold) the
			// publish whose acknowledgement the core still holds. Its
			// answer comes from onAcked; publishing it again would park a
			// second copy behind the first, and a QoS 2 repeat would be
			// answered with PUBREC before the first copy was even routed.
			c.l.g.stats.heldRepeats.Add(1)
			return
		case m.Dup && (m.QoS == sn.QoS1 || c.heldAns != sn.Accepted):
			// A retransmission that crossed the answer on the wire: answer
			// it again rather than publish it again (a refused message
			// would otherwise be delivered after its refusal). A QoS 2
			// repeat that was accepted goes on: the core answers PUBREC.
			c.l.g.stats.heldRepeats.Add(1)
			c.sendPuback(m.TopicID, m.MsgID, c.heldAns)
			return
		}
	}
	c.heldAtt = nil
	q := mqttcore.AtMostOnce
	if m.QoS > 0 {
		q = mqttcore.QoS(m.QoS)
	}
	msg := newMessage(topic, m.Data, q, m.Retain)
	// The message id identifies the deferred acknowledgement; for QoS 2 a
	// repeat while awaiting PUBREL is not delivered again. The tag carries
	// what the PUBACK/PUBREC needs back.
	st, err := c.conn.Publish(msg, m.MsgID, ackTag(m.TopicID, m.QoS))
	if err == nil {
		countPublish(&c.l.g.stats.publishesIn, int8(m.QoS))
	}
	switch {
	case err != nil:
		c.refused(err)
		c.l.g.log.Debug("publish refused", "client_id", c.id, "topic", topic, "err", err)
		if m.QoS != sn.QoSMinus1 {
			c.sendPuback(m.TopicID, m.MsgID, returnCode(err))
		}
	case st == mqttcore.PublishPending:
		// Acknowledged when the core says (onAcked): once the message is
		// durable and every entitled queue had room.
		c.heldAtt, c.heldID, c.heldAns = c.att, m.MsgID, heldPending
	case m.QoS == sn.QoS1:
		c.sendPuback(m.TopicID, m.MsgID, sn.Accepted)
	case m.QoS == sn.QoS2:
		c.l.tx.pubrec = sn.Pubrec{MsgID: m.MsgID}
		c.send(&c.l.tx.pubrec)
	}
}

// heldPending marks client.heldAns while the core holds the answer; it is
// no MQTT-SN return code.
const heldPending sn.ReturnCode = 0xFF

// ackTag packs what a deferred PUBACK/PUBREC needs into mqttcore.Ack.Tag.
func ackTag(topicID uint16, q sn.QoS) uint32 { return uint32(topicID) | uint32(q&3)<<16 }

// onAcked sends an acknowledgement the core deferred, or the refusal it
// turned into (congestion: the sensor retries later, §6.8).
func (c *client) onAcked(a mqttcore.Ack) {
	switch a.Kind {
	case mqttcore.AckPublish:
		topicID, q := uint16(a.Tag), sn.QoS(a.Tag>>16)
		held := a.PacketID == c.heldID && c.heldAns == heldPending
		if a.Err != nil {
			c.refused(a.Err)
			c.l.g.log.Debug("publish refused after it was held", "client_id", c.id, "msg_id", a.PacketID, "err", a.Err)
			rc := returnCode(a.Err)
			if held {
				c.heldAns = rc
			}
			c.sendPuback(topicID, a.PacketID, rc)
			return
		}
		if held {
			c.heldAns = sn.Accepted
		}
		if q == sn.QoS2 {
			c.l.tx.pubrec = sn.Pubrec{MsgID: a.PacketID}
			c.send(&c.l.tx.pubrec)
			return
		}
		c.sendPuback(topicID, a.PacketID, sn.Accepted)
	case mqttcore.AckRelease:
		c.sendPubcomp(a.PacketID)
	case mqttcore.AckReceived:
		if c.out.kind == exchangePubrel && c.out.msgID == a.PacketID {
			c.sendPubrel()
		}
	case mqttcore.AckConnect:
		c.upstreamConnected(a.Err) // upstream.go
	case mqttcore.AckSubscribe:
		if sa, ok := c.l.subacks[c]; ok && sa.v1.MsgID == a.PacketID {
			delete(c.l.subacks, c)
			if a.Err != nil { // the store or a remote broker refused it
				c.refused(a.Err)
				sa.v1.TopicID, sa.v1.ReturnCode = 0, returnCode(a.Err)
			}
			c.l.tx.suback = sa.v1
			c.send(&c.l.tx.suback)
			c.deliver() // retained messages follow the SUBACK
		}
	}
}

func (c *client) onPubrel(m *sn.Pubrel) {
	// An unknown id is still answered, so a lost PUBCOMP heals; a known one
	// is answered once its release is on disk (onAcked).
	if c.conn.Release(m.MsgID) == nil && c.conn.Sync(mqttcore.Ack{Kind: mqttcore.AckRelease, PacketID: m.MsgID}) {
		return
	}
	c.sendPubcomp(m.MsgID)
}

func (c *client) sendPubcomp(msgID uint16) {
	c.l.tx.pubcomp = sn.Pubcomp{MsgID: msgID}
	c.send(&c.l.tx.pubcomp)
}

func (c *client) sendPuback(topicID, msgID uint16, rc sn.ReturnCode) {
	c.l.tx.puback = sn.Puback{TopicID: topicID, MsgID: msgID, ReturnCode: rc}
	c.send(&c.l.tx.puback)
}

// publishQoSMinus1 publishes a QoS -1 PUBLISH from a sender without a
// connection (§6.8), as the configured QoS -1 client id. Only predefined ids
// and short names can name its topic: the sender has no registry.
func (l *loop) publishQoSMinus1(key clientKey, m *sn.Publish) {
	g := l.g
	if !g.allowQoSMinus1(key.addr.Addr()) {
		g.stats.rejected.Add(1)
		return
	}
	topic, ok := g.ids.name(g.live().QoSMinus1.ClientID, nil, m.TopicIDType, m.TopicID)
	if !ok {
		g.stats.invalidTopic.Add(1)
		return
	}
	if !g.mayPublishQoSMinus1(key.addr, topic) {
		return // dropped: a QoS -1 sender expects no answer
	}
	msg := newMessage(topic, m.Data, mqttcore.AtMostOnce, m.Retain)
	if err := g.qosm1.Publish(msg); err != nil {
		g.stats.rejected.Add(1)
		g.log.Debug("qos -1 publish refused", "remote", key.addr, "topic", topic, "err", err)
		return
	}
	g.stats.qosMinus1.Add(1)
	countPublish(&g.stats.publishesIn, int8(sn.QoSMinus1))
}

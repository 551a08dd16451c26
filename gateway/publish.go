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
	q := mqttcore.AtMostOnce
	if m.QoS > 0 {
		q = mqttcore.QoS(m.QoS)
	}
	msg := newMessage(topic, m.Data, q, m.Retain)
	var pid uint16
	if m.QoS == sn.QoS2 {
		pid = m.MsgID // a repeat while awaiting PUBREL is not delivered again
	}
	_, err := c.conn.Publish(msg, pid)
	switch {
	case err != nil:
		c.refused(err)
		c.l.g.log.Debug("publish refused", "client_id", c.id, "topic", topic, "err", err)
		if m.QoS != sn.QoSMinus1 {
			c.sendPuback(m.TopicID, m.MsgID, returnCode(err))
		}
	case m.QoS == sn.QoS1:
		c.sendPuback(m.TopicID, m.MsgID, sn.Accepted)
	case m.QoS == sn.QoS2:
		c.l.tx.pubrec = sn.Pubrec{MsgID: m.MsgID}
		c.send(&c.l.tx.pubrec)
	}
}

func (c *client) onPubrel(m *sn.Pubrel) {
	_ = c.conn.Release(m.MsgID) // an unknown id is still answered, so a lost PUBCOMP heals
	c.l.tx.pubcomp = sn.Pubcomp{MsgID: m.MsgID}
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
	topic, ok := g.ids.name(g.cfg.QoSMinus1.ClientID, nil, m.TopicIDType, m.TopicID)
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
}

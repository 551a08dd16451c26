package gateway

import (
	"bytes"

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

// topicName resolves a topic id from the client to a topic name.
func (c *client) topicName(typ sn.TopicIDType, id uint16) (string, bool) {
	switch typ {
	case sn.TopicIDNormal:
		if e := c.topics.byID(id); e != nil && e.flags&rejectedID == 0 {
			return e.name, true
		}
		return "", false
	case sn.TopicIDPredefined:
		return c.l.g.pre.topic(c.id, id)
	case sn.TopicIDShort:
		name := sn.ShortTopicName(id)
		return string(name[:]), true
	}
	return "", false
}

// onRegister assigns a topic id to a topic name the client will publish to
// (§6.5). A name already known keeps its id.
func (c *client) onRegister(m *sn.Register) {
	rc, id := sn.Accepted, uint16(0)
	if bytes.ContainsAny(m.TopicName, "+#") {
		rc = sn.RejectedNotSupported // REGISTER is for publishing: no wildcards
	} else if e := c.topics.byName(m.TopicName); e != nil {
		e.flags = e.flags&^rejectedID | byClient
		id = e.id
	} else if e := c.topics.add(string(m.TopicName), byClient, c.l.g.cfg.MaxTopicsPerClient); e != nil {
		id = e.id
	} else {
		rc = sn.RejectedCongestion
		c.l.g.limitHit(LimitTopicsPerClient, c.id, c.key.addr, nil)
	}
	if rc != sn.Accepted {
		c.l.g.stats.rejected.Add(1)
	}
	c.l.tx.regack = sn.Regack{TopicID: id, MsgID: m.MsgID, ReturnCode: rc}
	c.send(&c.l.tx.regack)
}

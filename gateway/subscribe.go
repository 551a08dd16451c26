package gateway

import (
	"strings"

	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// onSubscribe handles SUBSCRIBE by topic name or filter, predefined id or
// short name (§6.9). SUBACK carries the topic id the gateway will use: a
// fresh normal id for an exact name, the predefined id for a predefined
// subscription, and 0 for wildcards and short names, which the gateway
// REGISTERs (or sends as short names) when a message arrives.
func (c *client) onSubscribe(m *sn.Subscribe) {
	filter, ok := c.filterFor(m.TopicIDType, m.TopicName, m.TopicID)
	if !ok {
		c.l.g.stats.invalidTopic.Add(1)
		c.sendSuback(0, m.TopicID, m.MsgID, sn.RejectedInvalidTopicID)
		return
	}
	var topicID uint16
	if m.TopicIDType == sn.TopicIDPredefined {
		topicID = m.TopicID // SUBACK repeats a predefined id
	}
	if err := c.conn.Subscribe(filter, mqttcore.SubOptions{QoS: mqttcore.QoS(m.QoS)}); err != nil {
		c.refused(err)
		c.l.g.log.Debug("subscribe refused", "client_id", c.id, "filter", filter, "err", err)
		c.sendSuback(0, 0, m.MsgID, returnCode(err))
		return
	}
	if m.TopicIDType == sn.TopicIDNormal && exactTopic(filter) {
		e := c.addTopic(filter, bySub)
		if e == nil { // max_topics_per_client reached: the client could not be told this topic
			_, _ = c.conn.Unsubscribe(filter)
			c.l.g.stats.rejected.Add(1)
			c.l.g.limitHit(LimitTopicsPerClient, c.id, c.key.addr, nil)
			c.sendSuback(0, 0, m.MsgID, sn.RejectedCongestion)
			return
		}
		e.flags &^= rejectedID
		topicID = e.id
	}
	if topicID != 0 && m.TopicIDType == sn.TopicIDNormal {
		c.saveState(false) // persist.go: the new id survives a restart
	}
	if c.conn.Sync(mqttcore.Ack{Kind: mqttcore.AckSubscribe, PacketID: m.MsgID}) {
		// The SUBACK promises the subscription: it goes once that is on
		// disk (onAcked), and deliveries wait for it.
		if c.l.subacks == nil {
			c.l.subacks = map[*client]pendingSuback{}
		}
		c.l.subacks[c] = pendingSuback{v1: sn.Suback{QoS: m.QoS, TopicID: topicID, MsgID: m.MsgID, ReturnCode: sn.Accepted}}
		return
	}
	c.sendSuback(m.QoS, topicID, m.MsgID, sn.Accepted)
	c.deliver() // retained messages follow the SUBACK
}

// onUnsubscribe removes a subscription; it is always answered (§6.10). The
// topic id SUBACK gave for it stays valid for the connection (registry.go).
func (c *client) onUnsubscribe(m *sn.Unsubscribe) {
	if filter, ok := c.filterFor(m.TopicIDType, m.TopicName, m.TopicID); ok {
		_, _ = c.conn.Unsubscribe(filter) // unsubscribing from nothing is not an error here
	}
	c.l.tx.unsuback = sn.Unsuback{MsgID: m.MsgID}
	c.send(&c.l.tx.unsuback)
}

// filterFor turns the topic of a SUBSCRIBE or UNSUBSCRIBE into a topic
// filter: the name itself, or what a predefined id or short name stands
// for (resolver.name).
func (c *client) filterFor(typ sn.TopicIDType, name []byte, id uint16) (filter string, ok bool) {
	if typ == sn.TopicIDNormal {
		return string(name), true
	}
	return c.topicName(typ, id)
}

// exactTopic reports whether a filter names one topic, so that the gateway
// can give it a topic id in SUBACK.
func exactTopic(filter string) bool {
	return !strings.ContainsAny(filter, "+#") && !strings.HasPrefix(filter, "$share/")
}

// pendingSuback is a SUBACK waiting for its subscription to be durable, in
// the client's version.
type pendingSuback struct {
	v1 sn.Suback
	v2 sn.SubackV2
}

func (c *client) sendSuback(q sn.QoS, topicID, msgID uint16, rc sn.ReturnCode) {
	c.l.tx.suback = sn.Suback{QoS: q, TopicID: topicID, MsgID: msgID, ReturnCode: rc}
	c.send(&c.l.tx.suback)
}

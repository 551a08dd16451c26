package gateway

import (
	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// onSubscribeV2 handles a 2.0 SUBSCRIBE (CSD01 3.8): by topic filter,
// predefined alias or session alias, with MQTT 5's subscription options
// (No Local, Retain As Published, Retain Handling), which are the core's own
// (mqttcore.SubOptions). The SUBACK grants the QoS in its reason code and
// returns an alias for a filter without wildcards given by name: the
// predefined alias when one is configured, else a session alias. A
// subscription by predefined alias and a wildcard get none (topic type 01,
// as CSD01 asks when no alias is returned).
func (c *client) onSubscribeV2(m *sn.SubscribeV2) {
	if c.conn == nil {
		c.unexpectedV2(m)
		return
	}
	ack := sn.SubackV2{TopicType: sn.TopicTypePredefined, PacketID: m.PacketID}
	filter, ok := c.topicV2(m.TopicType, m.TopicAlias, m.TopicFilter)
	if !ok {
		c.l.g.stats.invalidTopic.Add(1)
		ack.ReasonCode = sn.UnknownTopicAlias
		c.sendSubackV2(&ack)
		return
	}
	opts := mqttcore.SubOptions{
		QoS:               mqttcore.QoS(m.QoS),
		NoLocal:           m.NoLocal,
		RetainAsPublished: m.RetainAsPublished,
		RetainHandling:    mqttcore.RetainHandling(m.RetainHandling),
	}
	if err := c.conn.Subscribe(filter, opts); err != nil {
		c.refused(err)
		c.l.g.log.Debug("subscribe refused", "client_id", c.id, "filter", filter, "err", err)
		ack.ReasonCode = reasonCode(err)
		if ack.ReasonCode == sn.TopicNameInvalid {
			ack.ReasonCode = sn.TopicFilterInvalid
		}
		c.sendSubackV2(&ack)
		return
	}
	ack.ReasonCode = sn.ReasonCode(m.QoS) // granted QoS 0, 1 or 2
	if m.TopicType != sn.TopicTypePredefined && exactTopic(filter) {
		if id, ok := c.l.g.ids.pre.Load().id(c.id, filter); ok {
			ack.HasTopicAlias, ack.TopicAlias = true, id
		} else if e := c.addTopic(filter, bySub); e != nil {
			e.flags &^= rejectedID
			ack.TopicType, ack.HasTopicAlias, ack.TopicAlias = sn.TopicTypeSession, true, e.id
			c.saveState(false) // persist.go: the alias survives a restart
		} else {
			// max_topics_per_client: the client could not be told the
			// alias, so the subscription is not kept.
			_, _ = c.conn.Unsubscribe(filter)
			c.l.g.stats.rejected.Add(1)
			c.l.g.limitHit(LimitTopicsPerClient, c.id, c.key.addr, nil)
			ack.ReasonCode = sn.QuotaExceeded
			c.sendSubackV2(&ack)
			return
		}
	}
	if c.conn.Sync(mqttcore.Ack{Kind: mqttcore.AckSubscribe, PacketID: m.PacketID}) {
		// Sent once the subscription is durable (onAckedV2); deliveries
		// to the client wait for it.
		if c.l.subacks == nil {
			c.l.subacks = map[*client]pendingSuback{}
		}
		c.l.subacks[c] = pendingSuback{v2: ack}
		return
	}
	c.sendSubackV2(&ack)
	c.deliver() // retained messages follow the SUBACK
}

func (c *client) sendSubackV2(ack *sn.SubackV2) {
	c.l.tx2.suback = *ack
	c.sendV2(&c.l.tx2.suback)
}

// onUnsubscribeV2 removes a subscription; it is always answered, with
// 0x11 when there was none and 0xF0 for an alias the client does not hold.
// A session alias stays valid (as a 1.2 topic id does, registry.go).
func (c *client) onUnsubscribeV2(m *sn.UnsubscribeV2) {
	if c.conn == nil {
		c.unexpectedV2(m)
		return
	}
	rc := sn.Success
	if filter, ok := c.topicV2(m.TopicType, m.TopicAlias, m.TopicFilter); !ok {
		rc = sn.UnknownTopicAlias
	} else if existed, err := c.conn.Unsubscribe(filter); err != nil {
		rc = reasonCode(err)
	} else if !existed {
		rc = sn.NoSubscriptionExisted
	}
	c.l.tx2.unsuback = sn.UnsubackV2{PacketID: m.PacketID, ReasonCode: rc}
	c.sendV2(&c.l.tx2.unsuback)
}

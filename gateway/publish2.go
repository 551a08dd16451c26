package gateway

import (
	"bytes"

	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// 2.0 publishing in both directions, REGISTER from the client, and PUBWOS.
//
// Topic types: a 2.0 session alias is a normal topic id of the client's
// registry (registry.go), issued by REGACK and SUBACK; a predefined alias is
// a predefined id (predefined.go); a topic name travels in the PUBLISH
// itself. 2.0 has no short topic names. The gateway delivers by session
// alias when the client holds one, by predefined alias when one is
// configured, and otherwise by topic name: 2.0 lets a PUBLISH carry the
// name, so the gateway never REGISTERs to a 2.0 client (one exchange fewer
// per new topic; docs/mqttsn-2.md G2-5).

// topicV2 resolves the topic a client's PUBLISH, SUBSCRIBE or UNSUBSCRIBE
// names: the name or filter itself, a predefined alias, or a session alias
// the client holds. ok is false for an alias it does not hold.
func (c *client) topicV2(typ sn.TopicType, alias uint16, name []byte) (string, bool) {
	switch typ {
	case sn.TopicTypeName:
		return string(name), true
	case sn.TopicTypePredefined:
		return c.topicName(sn.TopicIDPredefined, alias)
	case sn.TopicTypeSession:
		return c.topicName(sn.TopicIDNormal, alias)
	}
	return "", false
}

// aliasFor returns how to name topic in a PUBLISH to the client: its
// session alias, a predefined alias, or the name (alias 0).
func (c *client) aliasFor(topic string) (sn.TopicType, uint16) {
	if e := c.topics.byNameString(topic); e != nil && e.flags&rejectedID == 0 {
		return sn.TopicTypeSession, e.id
	}
	if id, ok := c.l.g.ids.pre.Load().id(c.id, topic); ok {
		return sn.TopicTypePredefined, id
	}
	return sn.TopicTypeName, 0
}

// onPublishV2 handles a 2.0 PUBLISH from the client (CSD01 3.3).
func (c *client) onPublishV2(m *sn.PublishV2) {
	if c.conn == nil {
		c.unexpectedV2(m)
		return
	}
	if m.QoS > sn.QoS0 && m.PacketID == 0 {
		c.protocolError(sn.ProtocolError, "PUBLISH QoS 1/2 with Packet Identifier 0")
		return
	}
	topic, ok := c.topicV2(m.TopicType, m.TopicAlias, m.TopicName)
	if !ok {
		// An unknown session or predefined alias: 0xF0, so the client can
		// publish by name or REGISTER again. (CSD01 calls an unknown
		// predefined alias a protocol error; ending the connection of a
		// sensor with a stale table helps no one: docs/mqttsn-2.md G2-6.)
		c.l.g.stats.invalidTopic.Add(1)
		c.sendPubackV2(m.QoS, m.PacketID, sn.UnknownTopicAlias)
		return
	}
	if m.QoS > sn.QoS0 && c.heldAtt != nil && c.heldAtt == c.att && m.PacketID == c.heldID {
		switch {
		case c.heldAns == heldPending:
			// A repeat of the publish whose acknowledgement the core
			// still holds (see onPublish).
			c.l.g.stats.heldRepeats.Add(1)
			return
		case m.Dup && c.heldAns != sn.Accepted:
			// A QoS 2 repeat that crossed a refusal: refused again, never
			// published after its refusal. (2.0 sets DUP only on QoS 2.)
			c.l.g.stats.heldRepeats.Add(1)
			c.sendPubackV2(m.QoS, m.PacketID, c.heldReason())
			return
		}
	}
	c.heldAtt = nil
	q := mqttcore.AtMostOnce
	if m.QoS > 0 {
		q = mqttcore.QoS(m.QoS)
	}
	msg := newMessage(topic, m.Data, q, m.Retain)
	st, err := c.conn.Publish(msg, m.PacketID, ackTag(0, m.QoS))
	if err == nil {
		countPublish(&c.l.g.stats.publishesIn, int8(m.QoS))
	}
	switch {
	case err != nil:
		c.refused(err)
		c.l.g.log.Debug("publish refused", "client_id", c.id, "topic", topic, "err", err)
		c.sendPubackV2(m.QoS, m.PacketID, reasonCode(err))
	case st == mqttcore.PublishPending:
		c.heldAtt, c.heldID, c.heldAns = c.att, m.PacketID, heldPending
	default:
		c.sendPubackV2(m.QoS, m.PacketID, sn.Success)
	}
}

// heldReason is the reason code of the held answer (client.heldAns holds
// a 1.2 return code for both versions: accepted or the refusal's code).
func (c *client) heldReason() sn.ReasonCode {
	if c.heldAns == sn.Accepted {
		return sn.Success
	}
	return sn.Congestion // the only refusal of a held publish (onAckedV2)
}

// sendPubackV2 answers a PUBLISH: PUBACK at QoS 1, PUBREC at QoS 2, nothing
// at QoS 0.
func (c *client) sendPubackV2(q sn.QoS, packetID uint16, rc sn.ReasonCode) {
	switch q {
	case sn.QoS1:
		c.l.tx2.puback = sn.PubackV2{PacketID: packetID, ReasonCode: rc}
		c.sendV2(&c.l.tx2.puback)
	case sn.QoS2:
		c.l.tx2.pubrec = sn.PubrecV2{PacketID: packetID, ReasonCode: rc}
		c.sendV2(&c.l.tx2.pubrec)
	}
}

// onAckedV2 is onAcked for a 2.0 client.
func (c *client) onAckedV2(a mqttcore.Ack) {
	switch a.Kind {
	case mqttcore.AckPublish:
		q := sn.QoS(a.Tag >> 16)
		held := a.PacketID == c.heldID && c.heldAns == heldPending
		rc := sn.Success
		if a.Err != nil {
			c.refused(a.Err)
			c.l.g.log.Debug("publish refused after it was held", "client_id", c.id, "msg_id", a.PacketID, "err", a.Err)
			rc = reasonCode(a.Err)
		}
		if held {
			c.heldAns = sn.Accepted
			if rc.Failed() {
				c.heldAns = sn.RejectedCongestion
			}
		}
		c.sendPubackV2(q, a.PacketID, rc)
	case mqttcore.AckRelease:
		c.sendPubcompV2(a.PacketID)
	case mqttcore.AckReceived:
		if c.out.kind == exchangePubrel && c.out.msgID == a.PacketID {
			c.sendPubrel()
		}
	case mqttcore.AckConnect:
		c.upstreamConnected(a.Err) // upstream.go
	case mqttcore.AckSubscribe:
		if sa, ok := c.l.subacks[c]; ok && sa.v2.PacketID == a.PacketID {
			delete(c.l.subacks, c)
			if a.Err != nil { // the store or a remote broker refused it
				c.refused(a.Err)
				sa.v2.HasTopicAlias, sa.v2.TopicAlias = false, 0
				sa.v2.TopicType, sa.v2.ReasonCode = sn.TopicTypePredefined, reasonCode(a.Err)
			}
			c.l.tx2.suback = sa.v2
			c.sendV2(&c.l.tx2.suback)
			c.deliver() // retained messages follow the SUBACK
		}
	}
}

func (c *client) onPubrelV2(m *sn.PubrelV2) {
	if c.conn == nil {
		c.unexpectedV2(m)
		return
	}
	// As in 1.2: an unknown id is still completed, so a lost PUBCOMP heals.
	if c.conn.Release(m.PacketID) == nil && c.conn.Sync(mqttcore.Ack{Kind: mqttcore.AckRelease, PacketID: m.PacketID}) {
		return
	}
	c.sendPubcompV2(m.PacketID)
}

func (c *client) sendPubcompV2(packetID uint16) {
	c.l.tx2.pubcomp = sn.PubcompV2{PacketID: packetID}
	c.sendV2(&c.l.tx2.pubcomp)
}

// onRegisterV2 gives the client a session alias for a topic name it will
// publish to (CSD01 3.16). A name with a predefined alias gets that alias
// with reason 0x1A (CSD01: a session alias never names a topic that has a
// predefined one).
func (c *client) onRegisterV2(m *sn.RegisterV2) {
	if c.conn == nil {
		c.unexpectedV2(m)
		return
	}
	ack := &c.l.tx2.regack
	*ack = sn.RegackV2{TopicType: sn.TopicTypeSession, PacketID: m.PacketID}
	name := string(m.TopicName)
	switch {
	case bytes.ContainsAny(m.TopicName, "+#"):
		ack.ReasonCode = sn.TopicNameInvalid // REGISTER is for publishing
	case !c.mayPublish(name):
		ack.ReasonCode = sn.NotAuthorized // the ACL: told now rather than at PUBLISH
	default:
		if id, ok := c.l.g.ids.pre.Load().id(c.id, name); ok {
			ack.TopicType, ack.HasTopicAlias, ack.TopicAlias, ack.ReasonCode = sn.TopicTypePredefined, true, id, sn.TopicAliasExists
		} else if e := c.addTopic(name, byClient); e != nil {
			e.flags &^= rejectedID
			ack.HasTopicAlias, ack.TopicAlias = true, e.id
			c.saveState(false) // persist.go: the alias survives a restart
		} else {
			ack.ReasonCode = sn.QuotaExceeded
			c.l.g.limitHit(LimitTopicsPerClient, c.id, c.key.addr, nil)
		}
	}
	if ack.ReasonCode.Failed() {
		c.l.g.stats.rejected.Add(1)
	}
	c.sendV2(ack)
}

// onPubwos handles a PUBWOS from a client with a virtual connection: it is
// published at QoS 0 as that client (its ACL user, its predefined aliases),
// or, from an asleep client, as any PUBWOS without a connection. Nothing is
// answered; a refusal is counted.
func (c *client) onPubwos(m *sn.Pubwos) {
	if c.conn == nil {
		c.l.publishPubwos(c.key, m)
		return
	}
	var topic string
	var ok bool
	if m.TopicType == sn.TopicTypePredefined {
		topic, ok = c.topicName(sn.TopicIDPredefined, m.TopicAlias)
	} else {
		topic, ok = string(m.TopicName), true
	}
	if !ok {
		c.l.g.stats.invalidTopic.Add(1)
		return
	}
	if _, err := c.conn.Publish(newMessage(topic, m.Data, mqttcore.AtMostOnce, m.Retain), 0, 0); err != nil {
		c.refused(err)
		c.l.g.log.Debug("pubwos refused", "client_id", c.id, "topic", topic, "err", err)
		return
	}
	c.l.g.stats.qosMinus1.Add(1)
	countPublish(&c.l.g.stats.publishesIn, int8(sn.QoSMinus1))
}

// publishPubwos publishes a PUBWOS from a sender without a virtual
// connection: 2.0's QoS -1, under the same rules as 1.2's (qos_minus_one:
// enabled, allow_from, its client id, its ACL user and its rate limit).
// It is dropped, and counted, when any of them refuses.
func (l *loop) publishPubwos(key clientKey, m *sn.Pubwos) {
	g := l.g
	if !g.allowQoSMinus1(key.addr.Addr()) {
		g.stats.rejected.Add(1)
		return
	}
	id := g.live().QoSMinus1.ClientID
	var topic string
	if m.TopicType == sn.TopicTypePredefined {
		t, ok := g.ids.pre.Load().topic(id, m.TopicAlias)
		if !ok {
			g.stats.invalidTopic.Add(1)
			return
		}
		topic = t
	} else {
		topic = string(m.TopicName)
	}
	if !g.mayPublishQoSMinus1(key.addr, topic) {
		return // counted in Denied and Rejected
	}
	if err := g.qosm1.Publish(newMessage(topic, m.Data, mqttcore.AtMostOnce, m.Retain)); err != nil {
		g.stats.rejected.Add(1)
		g.log.Debug("pubwos refused", "remote", key.addr, "topic", topic, "err", err)
		return
	}
	g.stats.qosMinus1.Add(1)
	countPublish(&g.stats.publishesIn, int8(sn.QoSMinus1))
}

// Gateway to client.

// maxOut is the largest packet the client may be sent: max_message_size,
// or the client's Maximum Packet Size when smaller.
func (c *client) maxOut() int {
	n := c.l.g.live().MaxMessageSize
	if mp := int(c.v2.maxPacket); mp != 0 && mp < n {
		n = mp
	}
	return n
}

// publishV2 starts delivering d to a 2.0 client. A PUBLISH larger than the
// client accepts is not sent and counts as delivered (CSD01 3.1.7).
func (c *client) publishV2(d mqttcore.Delivery) {
	typ, alias := c.aliasFor(d.Message.Topic)
	p := c.publishPacketV2(d, typ, alias, false)
	if p.Len() > c.maxOut() {
		c.l.g.limitHit(LimitMessageSizeOut, c.id, c.key.addr, nil)
		c.abandon(d)
		return
	}
	countPublish(&c.l.g.stats.publishesOut, int8(d.QoS))
	if d.QoS == mqttcore.AtMostOnce {
		c.sendV2(p)
		return
	}
	// outFlight.typ holds the 2.0 topic type for a 2.0 client.
	c.setOut(outFlight{kind: exchangePublish, typ: sn.TopicIDType(typ), msgID: d.PacketID, topicID: alias, d: d})
	c.sendV2(p)
	c.armRetry()
}

// publishPacketV2 fills the loop's PUBLISH for d. DUP is set only on a
// retransmitted QoS 2 PUBLISH (CSD01 4.4). A topic name is copied into the
// loop's buffer: no allocation.
func (c *client) publishPacketV2(d mqttcore.Delivery, typ sn.TopicType, alias uint16, resend bool) *sn.PublishV2 {
	p := &c.l.tx2.publish
	*p = sn.PublishV2{QoS: sn.QoS(d.QoS), Retain: d.Retain, TopicType: typ, TopicAlias: alias, Data: d.Message.Payload}
	if typ == sn.TopicTypeName {
		c.l.nameBuf = append(c.l.nameBuf[:0], d.Message.Topic...)
		p.TopicName = c.l.nameBuf
	}
	if d.QoS != mqttcore.AtMostOnce {
		p.PacketID = d.PacketID
		p.Dup = d.QoS == mqttcore.ExactlyOnce && (resend || d.Dup)
	}
	return p
}

// resendPublishV2 retransmits the PUBLISH in flight.
func (c *client) resendPublishV2() {
	c.sendV2(c.publishPacketV2(c.out.d, sn.TopicType(c.out.typ), c.out.topicID, true))
}

// endPublishV2 ends the PUBLISH exchange in flight on the client's PUBACK
// or PUBREC with reason rc that is not a PUBREC's success.
func (c *client) endPublishV2(rc sn.ReasonCode) {
	d, typ, id := c.out.d, sn.TopicType(c.out.typ), c.out.topicID
	c.setOut(outFlight{})
	c.timerAt = 0
	switch {
	case !rc.Failed():
		_ = c.conn.Ack(d.PacketID)
	case rc == sn.UnknownTopicAlias && typ == sn.TopicTypeSession:
		// The client lost the alias: forget it and send by name.
		c.removeTopicID(id)
		c.saveState(false)
		c.start(d)
		return
	default:
		// A failure ends the exchange without a resend (CSD01 4.4).
		c.l.g.stats.rejected.Add(1)
		c.abandon(d)
	}
	c.deliver()
}

func (c *client) onPubackV2(m *sn.PubackV2) {
	if c.out.kind != exchangePublish || m.PacketID != c.out.msgID {
		c.unexpectedV2(m)
		return
	}
	c.endPublishV2(m.ReasonCode)
}

func (c *client) onPubrecV2(m *sn.PubrecV2) {
	if m.ReasonCode.Failed() && c.out.kind == exchangePublish && m.PacketID == c.out.msgID && c.out.d.QoS == mqttcore.ExactlyOnce {
		c.endPublishV2(m.ReasonCode) // the client refused the message
		return
	}
	if !c.pubrec(m.PacketID) { // deliver.go, as for 1.2
		c.unexpectedV2(m)
	}
}

func (c *client) onPubcompV2(m *sn.PubcompV2) {
	if !c.pubcomp(m.PacketID) { // deliver.go, as for 1.2
		c.unexpectedV2(m)
	}
}

package gateway

import (
	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// outFlight is the one gateway-to-client exchange in progress; its kind is
// the exchange dimension of the session state (state.go). Only setOut
// replaces it.
type outFlight struct {
	kind    exchange
	typ     sn.TopicIDType
	msgID   uint16
	topicID uint16
	tries   uint8 // resends so far; max_retries is at most 255
	d       mqttcore.Delivery
}

// deliver sends the client what its core session has for it, one exchange
// at a time. An awake client goes back to sleep when nothing is left.
func (c *client) deliver() {
	if c.upWait {
		return // upstream.go: nothing before the remote broker's answer
	}
	if len(c.l.subacks) > 0 {
		if _, waiting := c.l.subacks[c]; waiting {
			return // the SUBACK goes first: it may carry the topic id
		}
	}
	for c.conn != nil && c.out.kind == exchangeNone && c.dialogue() == nil && !c.awakeDone() {
		d, ok := c.conn.Next()
		if !ok {
			break
		}
		if c.isV2 && c.state == StateAwake {
			c.v2.awakeSent++ // Default Awake Messages (sleep2.go)
		}
		c.start(d)
	}
	if c.state == StateAwake && c.out.kind == exchangeNone {
		c.backToSleep()
	}
}

// start begins delivering d.
func (c *client) start(d mqttcore.Delivery) {
	if d.Release { // after a re-attach: the PUBREL of a QoS 2 message
		c.setOut(outFlight{kind: exchangePubrel, msgID: d.PacketID, d: d})
		c.sendPubrel()
		c.armRetry()
		return
	}
	if c.isV2 {
		c.publishV2(d) // publish2.go: by alias or name, never REGISTER
		return
	}
	// The largest PUBLISH header is 9 octets (three-octet Length).
	if 9+len(d.Message.Payload) > c.l.g.live().MaxMessageSize {
		c.l.g.limitHit(LimitMessageSizeOut, c.id, c.key.addr, nil)
		c.abandon(d) // the spec: silently abandoned for this client (§6.9)
		return
	}
	typ, id, ok := c.topicFor(d.Message.Topic)
	if !ok {
		c.register(d) // registry.go: PUBLISH follows the client's REGACK
		return
	}
	c.publish(d, typ, id)
}

func (c *client) publish(d mqttcore.Delivery, typ sn.TopicIDType, id uint16) {
	p := &c.l.tx.publish
	*p = sn.Publish{Dup: d.Dup, QoS: sn.QoS(d.QoS), Retain: d.Retain, TopicIDType: typ, TopicID: id, Data: d.Message.Payload}
	countPublish(&c.l.g.stats.publishesOut, int8(d.QoS))
	if d.QoS == mqttcore.AtMostOnce {
		c.send(p)
		return
	}
	p.MsgID = d.PacketID
	c.setOut(outFlight{kind: exchangePublish, typ: typ, msgID: d.PacketID, topicID: id, d: d})
	c.send(p)
	c.armRetry()
}

// abandon gives up on delivering d to this client: the core forgets it.
func (c *client) abandon(d mqttcore.Delivery) {
	if d.QoS != mqttcore.AtMostOnce {
		_ = c.conn.Ack(d.PacketID)
	}
}

func (c *client) sendPubrel() {
	if c.isV2 {
		c.l.tx2.pubrel = sn.PubrelV2{PacketID: c.out.msgID}
		c.sendV2(&c.l.tx2.pubrel)
		return
	}
	c.l.tx.pubrel = sn.Pubrel{MsgID: c.out.msgID}
	c.send(&c.l.tx.pubrel)
}

// inFlightTooLarge reports whether the PUBLISH in flight no longer fits
// max_message_size (or, for 2.0, the client's Maximum Packet Size), which a
// reload may have lowered since it was checked.
func (c *client) inFlightTooLarge(cfg *settings) bool {
	if c.isV2 {
		return c.publishPacketV2(c.out.d, sn.TopicType(c.out.typ), c.out.topicID, true).Len() > c.maxOut() // publish2.go
	}
	return 9+len(c.out.d.Message.Payload) > cfg.MaxMessageSize
}

// retry resends the exchange in progress after retry_interval (or at once
// when an awake client repeats its PINGREQ), or gives the client up as lost
// after max_retries (or ends a stalled will dialogue).
func (c *client) retry() {
	cfg := c.l.g.live()
	if c.dialogue() != nil {
		c.retryDialogue() // will.go
		return
	}
	if c.out.kind == exchangeNone {
		return
	}
	if c.out.kind == exchangePublish && c.inFlightTooLarge(cfg) {
		// A reload lowered max_message_size below this PUBLISH since it
		// was sent (or checked, deliver): abandoned like one too large for
		// its first send, not resent into the limit until the client is lost.
		d := c.out.d
		c.l.g.limitHit(LimitMessageSizeOut, c.id, c.key.addr, nil)
		c.setOut(outFlight{})
		c.timerAt = 0
		c.abandon(d)
		c.deliver()
		return
	}
	if c.out.tries++; int(c.out.tries) > cfg.MaxRetries {
		c.lose("no acknowledgement after max_retries")
		return
	}
	c.l.g.stats.retransmits.Add(1)
	switch c.out.kind {
	case exchangeRegister:
		c.sendRegister()
	case exchangePublish:
		if c.isV2 {
			c.resendPublishV2() // publish2.go
			break
		}
		d := c.out.d
		d.Dup = true
		p := &c.l.tx.publish
		*p = sn.Publish{Dup: true, QoS: sn.QoS(d.QoS), Retain: d.Retain, TopicIDType: c.out.typ,
			TopicID: c.out.topicID, MsgID: c.out.msgID, Data: d.Message.Payload}
		c.send(p)
	case exchangePubrel:
		c.sendPubrel()
	}
	c.armRetry()
}

// wakeRepeated handles a PINGREQ repeated by an awake client while its
// queue is being delivered. The client repeats it only after hearing
// nothing for its own T_retry, so the exchange in flight (our PUBLISH,
// REGISTER or PUBREL, or the client's answer) was lost, typically in a
// burst of wakes that overflowed a socket buffer. Waiting for our own
// retry_interval would outlast the client's patience (its N_retry x T_retry
// is often shorter), and the client would give up the wake without its
// PINGRESP while its messages arrive later. So resend now. The resend
// counts as one of max_retries, which bounds what a client repeating
// PINGREQ without acknowledging can make us send.
func (c *client) wakeRepeated() {
	if c.out.kind == exchangeNone {
		return // nothing in flight: PINGRESP follows when delivery ends
	}
	c.retry()
}

func (c *client) onPuback(m *sn.Puback) {
	if c.out.kind != exchangePublish || m.MsgID != c.out.msgID {
		c.unexpected(m)
		return
	}
	d, typ, id := c.out.d, c.out.typ, c.out.topicID
	c.setOut(outFlight{})
	c.timerAt = 0
	switch {
	case m.ReturnCode == sn.Accepted:
		_ = c.conn.Ack(d.PacketID)
	case m.ReturnCode == sn.RejectedInvalidTopicID && typ == sn.TopicIDNormal:
		// The client lost the mapping: forget it, REGISTER again, resend.
		c.removeTopicID(id)
		c.saveState(false)
		c.start(d)
		return
	default:
		c.l.g.stats.rejected.Add(1)
		c.abandon(d)
	}
	c.deliver()
}

func (c *client) onPubrec(m *sn.Pubrec) {
	if !c.pubrec(m.MsgID) {
		c.unexpected(m)
	}
}

// pubrec takes a client's PUBREC of id (either version) and reports false
// when no QoS 2 exchange of ours awaits one.
func (c *client) pubrec(id uint16) bool {
	switch {
	case c.out.kind == exchangePublish && id == c.out.msgID && c.out.d.QoS == mqttcore.ExactlyOnce:
		_ = c.conn.Received(id)
		c.setOut(outFlight{kind: exchangePubrel, msgID: id, d: c.out.d})
		if !c.conn.Sync(mqttcore.Ack{Kind: mqttcore.AckReceived, PacketID: id}) {
			c.sendPubrel() // else once the PUBREC is on disk (onAcked)
		}
		c.armRetry()
	case c.out.kind == exchangePubrel && id == c.out.msgID:
		c.sendPubrel() // our PUBREL was lost
	default:
		return false
	}
	return true
}

func (c *client) onPubcomp(m *sn.Pubcomp) {
	if !c.pubcomp(m.MsgID) {
		c.unexpected(m)
	}
}

// pubcomp takes a client's PUBCOMP of id (either version), which ends the
// exchange, and reports false when none awaits it.
func (c *client) pubcomp(id uint16) bool {
	if c.out.kind != exchangePubrel || id != c.out.msgID {
		return false
	}
	c.setOut(outFlight{})
	c.timerAt = 0
	_ = c.conn.Complete(id)
	c.deliver()
	return true
}

package snclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gannet-mqtt/gannet/snpacket"
)

// MQTT-SN 2.0 (Options.Version Version20). The client speaks the
// CSD01 draft's CONNECT (with the will inline), PUBLISH at QoS 0, 1 and 2
// (by session alias when it holds one, else by full topic name: 2.0 needs
// no REGISTER), PUBWOS for QoS -1, REGISTER, SUBSCRIBE, UNSUBSCRIBE,
// PINGREQ, SLEEPREQ (Sleep; CheckMessages wakes with PINGREQ) and
// DISCONNECT, and answers the gateway's PUBLISH, PUBREL and REGISTER.
// Options.Auth puts a single-step authentication into the CONNECT; a
// gateway that answers with AUTH instead of CONNACK gets no second step
// (errors.ErrUnsupported). No Connection Encapsulation; the will updates,
// which 2.0 dropped, return errors.ErrUnsupported.

// errUnsupportedV2 is the error of a method 2.0 (or this client's 2.0
// support) does not have.
func errUnsupportedV2(op string) error {
	return fmt.Errorf("snclient: %s: not available in MQTT-SN 2.0: %w", op, errors.ErrUnsupported)
}

// connectV2 sends a 2.0 CONNECT and waits for its CONNACK. A persistent
// session asks for a Session Expiry that never ends, which is what a 1.2
// gateway does with CleanSession=0; a clean one leaves it absent (0). A
// CONNACK without Session Present means the gateway has no session, so the
// client forgets its session aliases.
func (c *Client) connectV2(ctx context.Context, will *Will) error {
	const op = "connect"
	m := &snpacket.ConnectV2{
		CleanStart:    !c.opts.PersistentSession,
		PacketID:      c.nextMsgID(),
		KeepAlive:     uint16(c.opts.KeepAlive / time.Second),
		MaxPacketSize: uint16(c.opts.MaxMessageSize),
		ClientID:      []byte(c.opts.ClientID),

		AllowAddressChange: c.opts.AllowAddressChange,
	}
	if c.opts.PersistentSession {
		m.HasSessionExpiry, m.SessionExpiry = true, 0xFFFFFFFF
	}
	if will != nil {
		m.Will, m.WillQoS, m.WillRetain = true, will.QoS, will.Retain
		m.WillTopicType, m.WillTopic, m.WillPayload = snpacket.TopicTypeName, []byte(will.Topic), will.Message
	}
	if a := c.opts.Auth; a != nil {
		m.Auth, m.AuthMethod, m.AuthData = true, []byte(a.Method), a.Data
	}
	// CSD01 §4.4: a CONNECT is never retransmitted; the client waits as
	// long as the retransmissions would take, then gives up.
	r, err := c.exchange(ctx, op, m, nil, waitSpec{
		types: typeBit(snpacket.TypeConnack) | typeBit(typeAuth), msgID: m.PacketID, byID: true, once: true})
	if err != nil {
		return err
	}
	if r.typ == typeAuth {
		return fmt.Errorf("snclient: %s: gateway asked for another authentication step (AUTH 0x%02x): %w",
			op, uint8(r.reason), errors.ErrUnsupported)
	}
	if err := refusedReply(op, "", r); err != nil {
		return err
	}
	c.mu.Lock()
	if !r.sessionPresent {
		c.clearTopicsLocked() // the gateway's session aliases are gone too
	}
	c.setStateLocked(StateActive)
	if !c.isClosed {
		c.startKeepAliveLocked()
	}
	c.mu.Unlock()
	return nil
}

// disconnectV2 sends a 2.0 DISCONNECT (reason Success: the gateway discards
// the will). 2.0 never answers a DISCONNECT, so nothing is awaited; the
// client is disconnected once it is sent.
func (c *Client) disconnectV2() error {
	c.mu.Lock()
	c.stopKeepAliveLocked()
	c.setStateLocked(StateDisconnected)
	c.mu.Unlock()
	return c.send("disconnect", &snpacket.DisconnectV2{})
}

// sleepV2 sends SLEEPREQ for d and waits for SLEEPRESP. It keeps the
// session topic aliases (Retain Topic Aliases = 1), as 1.2 keeps topic ids
// over sleep, so the client's tables stay valid.
func (c *Client) sleepV2(ctx context.Context, d time.Duration) error {
	const op = "sleep"
	if d < time.Second || d > 0xFFFFFFFF*time.Second || d%time.Second != 0 {
		return fmt.Errorf("snclient: %s: duration %v is not 1..4294967295 whole seconds: %w", op, d, ErrInvalidOption)
	}
	if err := c.acquire(ctx, op); err != nil {
		return err
	}
	defer c.release()
	if err := c.checkState(op, StateActive, StateAsleep); err != nil {
		return err
	}
	c.mu.Lock()
	c.stopKeepAliveLocked()
	m := &snpacket.SleepReq{RetainTopicAliases: true, PacketID: c.nextMsgIDLocked(), SleepDuration: uint32(d / time.Second)}
	c.mu.Unlock()
	r, err := c.exchange(ctx, op, m, nil, waitSpec{types: typeBit(typeSleepResp), msgID: m.PacketID, byID: true})
	if err == nil {
		err = refusedReply(op, "", r)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if c.state == StateActive && !c.isClosed {
			c.startKeepAliveLocked() // still connected
		}
		return err
	}
	c.setStateLocked(StateAsleep)
	return nil
}

// topicV2Locked returns how to send topic t in a 2.0 PUBLISH: a predefined
// alias, the session alias the client holds for the name, or the name.
func (c *Client) topicV2Locked(t Topic) (typ snpacket.TopicType, alias uint16) {
	if t.Kind == snpacket.TopicIDPredefined {
		return snpacket.TopicTypePredefined, t.ID
	}
	if id, ok := c.predefByName[t.Name]; ok {
		return snpacket.TopicTypePredefined, id
	}
	if id, ok := c.preByName[t.Name]; ok {
		return snpacket.TopicTypePredefined, id
	}
	if id, ok := c.nameToID[t.Name]; ok {
		return snpacket.TopicTypeSession, id
	}
	return snpacket.TopicTypeName, 0
}

// checkV2 rejects the topics 2.0 does not have: short topic names.
func checkV2(t Topic) error {
	if t.Kind == snpacket.TopicIDShort {
		return fmt.Errorf("short topic %q: MQTT-SN 2.0 has no short topic names: %w", t.Name, ErrInvalidTopic)
	}
	return nil
}

// publishUnackedV2 sends a QoS 0 PUBLISH, or for QoS -1 a PUBWOS (which
// needs no connection and takes a predefined alias or a full name).
func (c *Client) publishUnackedV2(t Topic, qos snpacket.QoS, retain bool, payload []byte) error {
	if err := t.check(true); err != nil {
		return fmt.Errorf("snclient: publish %v: %w", t, err)
	}
	if err := checkV2(t); err != nil {
		return fmt.Errorf("snclient: publish %v: %w", t, err)
	}
	c.mu.Lock()
	closed, state := c.isClosed, c.state
	typ, alias := c.topicV2Locked(t)
	c.mu.Unlock()
	var name []byte
	if typ == snpacket.TopicTypeName {
		name = []byte(t.Name)
	}
	switch {
	case closed:
		return fmt.Errorf("snclient: publish %v: %w", t, ErrClosed)
	case qos == snpacket.QoSMinus1:
		if typ == snpacket.TopicTypeSession { // no session alias without a session
			typ, alias, name = snpacket.TopicTypeName, 0, []byte(t.Name)
		}
		w := snpacket.Pubwos{Retain: retain, TopicType: typ, TopicAlias: alias, TopicName: name, Data: payload}
		b, err := w.AppendBinary(c.getBuf())
		return c.sendEncoded(b, err, w.Len())
	case state != StateActive:
		return fmt.Errorf("snclient: publish %v: client is %v: %w", t, state, ErrNotConnected)
	}
	p := snpacket.PublishV2{Retain: retain, TopicType: typ, TopicAlias: alias, TopicName: name, Data: payload}
	b, err := p.AppendBinary(c.getBuf())
	return c.sendEncoded(b, err, p.Len())
}

// sendEncoded sends a 2.0 PUBLISH or PUBWOS of n octets that the caller
// encoded into a buffer from getBuf, concrete type by concrete type: going
// through the outgoing interface would move the packet to the heap.
func (c *Client) sendEncoded(b []byte, err error, n int) error {
	defer c.putBuf(b)
	switch {
	case err != nil:
		return fmt.Errorf("snclient: publish: %w", err)
	case n > c.opts.MaxMessageSize:
		return fmt.Errorf("snclient: publish: %d octets, limit %d: %w", n, c.opts.MaxMessageSize, ErrTooLarge)
	}
	if err := c.write(b); err != nil {
		return fmt.Errorf("snclient: publish: send to %v: %w", c.addr, err)
	}
	return nil
}

// publishAckedV2 runs a 2.0 QoS 1 or 2 PUBLISH. DUP is set only on a
// retransmitted QoS 2 PUBLISH, as 2.0 asks. A PUBACK or PUBREC "unknown
// topic alias" for a session alias makes the client forget the alias and
// publish once more by name.
func (c *Client) publishAckedV2(ctx context.Context, t Topic, qos snpacket.QoS, retain bool, payload []byte) error {
	const op = "publish"
	if err := t.check(true); err != nil {
		return fmt.Errorf("snclient: %s %v: %w", op, t, err)
	}
	if err := checkV2(t); err != nil {
		return fmt.Errorf("snclient: %s %v: %w", op, t, err)
	}
	if err := c.acquire(ctx, op); err != nil {
		return err
	}
	defer c.release()
	for attempt := 0; ; attempt++ {
		if err := c.checkState(op, StateActive); err != nil {
			return err
		}
		c.mu.Lock()
		typ, alias := c.topicV2Locked(t)
		id := c.nextMsgIDLocked()
		c.mu.Unlock()
		p := &snpacket.PublishV2{QoS: qos, Retain: retain, TopicType: typ, PacketID: id, TopicAlias: alias, Data: payload}
		if typ == snpacket.TopicTypeName {
			p.TopicName = []byte(t.Name)
		}
		var dup *bool
		if qos == snpacket.QoS2 {
			dup = &p.Dup
		}
		r, err := c.exchange(ctx, op, p, dup, waitSpec{
			types: typeBit(snpacket.TypePuback) | typeBit(snpacket.TypePubrec), msgID: id, byID: true})
		if err != nil {
			return err
		}
		if r.reason == snpacket.UnknownTopicAlias && typ == snpacket.TopicTypeSession && attempt == 0 {
			c.forgetTopicID(alias)
			continue
		}
		if err := refusedReply(op, t.String(), r); err != nil || r.typ == snpacket.TypePuback {
			return err // QoS 1 done, or a refusal
		}
		r, err = c.exchange(ctx, op, &snpacket.PubrelV2{PacketID: id}, nil,
			waitSpec{types: typeBit(snpacket.TypePubcomp), msgID: id, byID: true})
		if err != nil {
			return err
		}
		return refusedReply(op, t.String(), r)
	}
}

// registerHeldV2 asks the gateway for a session alias for name (REGISTER
// without an alias, answered by REGACK), and returns it; when the gateway
// answers with the predefined alias it has for name, that one, learned for
// publishing and delivery. The caller holds the request turn.
func (c *Client) registerHeldV2(ctx context.Context, op, name string) (uint16, error) {
	if err := c.checkState(op, StateActive); err != nil {
		return 0, err
	}
	c.mu.Lock()
	id, ok := c.nameToID[name]
	if pre, isPre := c.preByName[name]; isPre {
		id, ok = pre, true
	}
	pid := c.nextMsgIDLocked()
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	r, err := c.exchange(ctx, op, &snpacket.RegisterV2{PacketID: pid, TopicName: []byte(name)}, nil,
		waitSpec{types: typeBit(snpacket.TypeRegack), msgID: pid, byID: true, name: name})
	if err != nil {
		return 0, err
	}
	if err := refusedReply(op, name, r); err != nil {
		return 0, err
	}
	if r.topicID == 0 {
		return 0, fmt.Errorf("snclient: %s %q: gateway assigned no session alias: %w", op, name, ErrInvalidTopicID)
	}
	return r.topicID, nil
}

// subscribeV2 runs a 2.0 SUBSCRIBE with options o. The caller holds the
// request turn and has checked topic, qos and o. The granted QoS comes in the Reason Code; a
// session alias returned for a name without wildcards is recorded.
func (c *Client) subscribeV2(ctx context.Context, topic Topic, qos snpacket.QoS, o SubscribeOptions) (Subscription, error) {
	const op = "subscribe"
	if err := checkV2(topic); err != nil {
		return Subscription{}, fmt.Errorf("snclient: %s %v: %w", op, topic, err)
	}
	id := c.nextMsgID()
	m := &snpacket.SubscribeV2{QoS: qos, PacketID: id,
		NoLocal: o.NoLocal, RetainAsPublished: o.RetainAsPublished, RetainHandling: o.RetainHandling}
	w := waitSpec{types: typeBit(snpacket.TypeSuback), msgID: id, byID: true}
	if topic.Kind == snpacket.TopicIDPredefined {
		m.TopicType, m.TopicAlias = snpacket.TopicTypePredefined, topic.ID
	} else {
		m.TopicType, m.TopicFilter = snpacket.TopicTypeName, []byte(topic.Name)
		if !isWildcard(topic.Name) {
			w.name = topic.Name
		}
	}
	r, err := c.exchange(ctx, op, m, nil, w)
	if err != nil {
		return Subscription{}, err
	}
	if err := refusedReply(op, topic.String(), r); err != nil {
		return Subscription{}, err
	}
	return Subscription{QoS: r.qos, TopicID: r.topicID}, nil
}

// unsubscribeV2 runs a 2.0 UNSUBSCRIBE; the caller holds the request turn.
func (c *Client) unsubscribeV2(ctx context.Context, topic Topic) error {
	const op = "unsubscribe"
	if err := checkV2(topic); err != nil {
		return fmt.Errorf("snclient: %s %v: %w", op, topic, err)
	}
	id := c.nextMsgID()
	m := &snpacket.UnsubscribeV2{PacketID: id}
	if topic.Kind == snpacket.TopicIDPredefined {
		m.TopicType, m.TopicAlias = snpacket.TopicTypePredefined, topic.ID
	} else {
		m.TopicType, m.TopicFilter = snpacket.TopicTypeName, []byte(topic.Name)
	}
	r, err := c.exchange(ctx, op, m, nil, waitSpec{types: typeBit(snpacket.TypeUnsuback), msgID: id, byID: true})
	if err != nil {
		return err
	}
	return refusedReply(op, topic.String(), r)
}

// v2Reply files a 2.0 answer under the 1.2 type of the same name.
func v2Reply(typ snpacket.MsgType, pt snpacket.PacketType, id uint16, rc snpacket.ReasonCode) reply {
	r := reply{typ: typ, msgID: id, ptype: pt, reason: rc, rc: snpacket.Accepted}
	if rc.Failed() {
		r.rc = snpacket.RejectedNotSupported // only "not accepted" matters to offer
	}
	return r
}

// handleV2 processes one 2.0 packet from the gateway, on the reader
// goroutine; m is valid only during the call.
func (c *Client) handleV2(m snpacket.MessageV2) {
	switch m := m.(type) {
	case *snpacket.PublishV2:
		c.handlePublishV2(m)
	case *snpacket.PubrelV2:
		c.offer(reply{typ: snpacket.TypePubrel})
		c.mu.Lock()
		delete(c.inQoS2, m.PacketID)
		c.mu.Unlock()
		c.replyEncoded((&snpacket.PubcompV2{PacketID: m.PacketID}).AppendBinary(c.getBuf()))
	case *snpacket.RegisterV2:
		c.handleRegisterV2(m)
	case *snpacket.PingRespV2:
		if !c.offer(reply{typ: snpacket.TypePingResp}) {
			c.keepAliveAnswered()
		}
	case *snpacket.DisconnectV2:
		if !c.offer(reply{typ: snpacket.TypeDisconnect}) {
			c.connectionEnded(StateDisconnected,
				fmt.Errorf("snclient: gateway %v sent DISCONNECT (0x%02x %v): %w", c.addr, uint8(m.ReasonCode), m.ReasonCode, ErrGatewayDisconnected))
		}
	case *snpacket.Auth:
		r := v2Reply(typeAuth, m.Type(), m.PacketID, m.ReasonCode)
		r.rc = snpacket.Accepted // an AUTH step is not a refusal
		c.offer(r)
	case *snpacket.SleepResp:
		c.offer(v2Reply(typeSleepResp, m.Type(), m.PacketID, m.ReasonCode))
	case *snpacket.ConnackV2:
		r := v2Reply(snpacket.TypeConnack, m.Type(), m.PacketID, m.ReasonCode)
		r.sessionPresent = m.SessionPresent
		c.offer(r)
	case *snpacket.PubackV2:
		c.offer(v2Reply(snpacket.TypePuback, m.Type(), m.PacketID, m.ReasonCode))
	case *snpacket.PubrecV2:
		c.offer(v2Reply(snpacket.TypePubrec, m.Type(), m.PacketID, m.ReasonCode))
	case *snpacket.PubcompV2:
		c.offer(v2Reply(snpacket.TypePubcomp, m.Type(), m.PacketID, m.ReasonCode))
	case *snpacket.UnsubackV2:
		c.offer(v2Reply(snpacket.TypeUnsuback, m.Type(), m.PacketID, m.ReasonCode))
	case *snpacket.RegackV2:
		r := v2Reply(snpacket.TypeRegack, m.Type(), m.PacketID, m.ReasonCode)
		if m.HasTopicAlias && (m.TopicType == snpacket.TopicTypeSession || m.TopicType == snpacket.TopicTypePredefined) {
			// A predefined alias (Reason Code "topic alias exists") is
			// learned as such, not as a session alias.
			r.topicID, r.predefined = m.TopicAlias, m.TopicType == snpacket.TopicTypePredefined
		}
		c.offer(r)
	case *snpacket.SubackV2:
		r := v2Reply(snpacket.TypeSuback, m.Type(), m.PacketID, m.ReasonCode)
		if m.ReasonCode <= snpacket.GrantedQoS2 {
			r.qos = snpacket.QoS(m.ReasonCode)
		}
		if m.HasTopicAlias {
			// A session alias goes into the session table, a predefined
			// one is learned as predefined.
			r.topicID, r.predefined = m.TopicAlias, m.TopicType != snpacket.TopicTypeSession
		}
		c.offer(r)
	case *snpacket.Wakeup:
		c.onWakeup() // wakeup.go
	default:
		// ADVERTISE, GWINFO, AUTH and client-only packets.
	}
}

// handlePublishV2 delivers a 2.0 application message and acknowledges it.
func (c *Client) handlePublishV2(p *snpacket.PublishV2) {
	c.offer(reply{typ: snpacket.TypePublish}) // activity
	var topic string
	known, idType := true, snpacket.TopicIDNormal
	switch p.TopicType {
	case snpacket.TopicTypeName:
		topic = string(p.TopicName)
	case snpacket.TopicTypeSession:
		c.mu.Lock()
		topic, known = c.idToName[p.TopicAlias]
		c.mu.Unlock()
	case snpacket.TopicTypePredefined:
		topic, known = c.predefinedName(p.TopicAlias)
		idType = snpacket.TopicIDPredefined
	}
	if !known {
		switch p.QoS {
		case snpacket.QoS1:
			c.replyEncoded((&snpacket.PubackV2{PacketID: p.PacketID, ReasonCode: snpacket.UnknownTopicAlias}).AppendBinary(c.getBuf()))
		case snpacket.QoS2:
			c.replyEncoded((&snpacket.PubrecV2{PacketID: p.PacketID, ReasonCode: snpacket.UnknownTopicAlias}).AppendBinary(c.getBuf()))
		}
		return
	}
	if p.QoS == snpacket.QoS2 {
		c.mu.Lock()
		_, dup := c.inQoS2[p.PacketID]
		if !dup {
			if c.inQoS2 == nil {
				c.inQoS2 = make(map[uint16]struct{})
			}
			c.inQoS2[p.PacketID] = struct{}{}
		}
		c.mu.Unlock()
		if dup {
			c.replyEncoded((&snpacket.PubrecV2{PacketID: p.PacketID}).AppendBinary(c.getBuf()))
			return
		}
	}
	if h := c.opts.Handler; h != nil {
		h(Message{Topic: topic, TopicIDType: idType, TopicID: p.TopicAlias,
			QoS: p.QoS, Retain: p.Retain, Dup: p.Dup, Payload: p.Data})
	}
	switch p.QoS {
	case snpacket.QoS1:
		c.replyEncoded((&snpacket.PubackV2{PacketID: p.PacketID}).AppendBinary(c.getBuf()))
	case snpacket.QoS2:
		c.replyEncoded((&snpacket.PubrecV2{PacketID: p.PacketID}).AppendBinary(c.getBuf()))
	}
}

// handleRegisterV2 answers the gateway's REGISTER, which announces a
// session alias for a topic name (before a PUBLISH on a wildcard match).
func (c *Client) handleRegisterV2(m *snpacket.RegisterV2) {
	c.offer(reply{typ: snpacket.TypeRegister})
	name := string(m.TopicName)
	rc := snpacket.Accepted
	if f := c.opts.RegisterFilter; f != nil {
		rc = f(m.TopicAlias, name)
	}
	if !m.HasTopicAlias {
		rc = snpacket.RejectedInvalidTopicID // a server's REGISTER must carry the alias
	}
	reason := snpacket.Success
	switch rc {
	case snpacket.Accepted:
		c.mu.Lock()
		c.storeTopicLocked(name, m.TopicAlias)
		c.mu.Unlock()
	case snpacket.RejectedCongestion:
		reason = snpacket.Congestion
	case snpacket.RejectedInvalidTopicID:
		reason = snpacket.UnknownTopicAlias
	default:
		reason = snpacket.ImplementationError
	}
	c.replyEncoded((&snpacket.RegackV2{PacketID: m.PacketID, ReasonCode: reason}).AppendBinary(c.getBuf()))
}

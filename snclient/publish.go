package snclient

import (
	"context"
	"fmt"

	"github.com/gannet-mqtt/gannet/snpacket"
)

// Publish sends payload to topic at qos, with the retain flag:
//
//   - QoS -1 needs no connection (MQTT-SN 1.2 §6.8): the topic must be a
//     short name or a predefined id (or a name listed in
//     Options.PredefinedTopics); the PUBLISH is sent once and forgotten.
//   - QoS 0 sends one PUBLISH and returns.
//   - QoS 1 waits for PUBACK; QoS 2 waits for PUBREC, sends PUBREL and
//     waits for PUBCOMP. Unanswered messages are retransmitted every
//     RetryInterval, a PUBLISH with DUP set, up to MaxRetries times.
//
// A Named topic without a known id is registered first. When the gateway
// answers "invalid topic id" for a registered id, the client registers the
// name again and retries once; for a predefined id or a short name that is
// an error. A refusal is a *ReturnCodeError (errors.Is(err, ErrCongestion)
// for congestion). QoS 1 and 2 publishes, like every request, take turns:
// one is outstanding at a time.
//
// Publishing at QoS 0 or -1 to a topic with a known id allocates nothing
// and does not wait; payload may be reused as soon as Publish returns.
//
// In MQTT-SN 2.0 a Named topic travels by the session alias the client
// holds for it (from Register, a SUBACK or the gateway's REGISTER) or else
// by its full name, so nothing is registered first; QoS -1 sends a PUBWOS;
// short topics do not exist (ErrInvalidTopic); DUP is set only on a
// retransmitted QoS 2 PUBLISH; a refusal is a *ReasonCodeError.
func (c *Client) Publish(ctx context.Context, topic Topic, qos snpacket.QoS, retain bool, payload []byte) error {
	if c.v2 {
		switch qos {
		case snpacket.QoSMinus1, snpacket.QoS0:
			return c.publishUnackedV2(topic, qos, retain, payload)
		case snpacket.QoS1, snpacket.QoS2:
			return c.publishAckedV2(ctx, topic, qos, retain, payload)
		}
	}
	switch qos {
	case snpacket.QoSMinus1, snpacket.QoS0:
		return c.publishUnacked(ctx, topic, qos, retain, payload)
	case snpacket.QoS1, snpacket.QoS2:
		return c.publishAcked(ctx, topic, qos, retain, payload)
	}
	return fmt.Errorf("snclient: publish %v: QoS %v: %w", topic, qos, ErrInvalidOption)
}

// topicIDLocked returns how to send topic in a PUBLISH, and false for a name
// that needs registering first.
func (c *Client) topicIDLocked(t Topic) (snpacket.TopicIDType, uint16, bool) {
	switch t.Kind {
	case snpacket.TopicIDShort:
		id, _ := snpacket.ShortTopicID(t.Name)
		return snpacket.TopicIDShort, id, true
	case snpacket.TopicIDPredefined:
		return snpacket.TopicIDPredefined, t.ID, true
	}
	if id, ok := c.predefByName[t.Name]; ok {
		return snpacket.TopicIDPredefined, id, true
	}
	id, ok := c.nameToID[t.Name]
	return snpacket.TopicIDNormal, id, ok
}

func (c *Client) publishUnacked(ctx context.Context, t Topic, qos snpacket.QoS, retain bool, payload []byte) error {
	if err := t.check(true); err != nil {
		return fmt.Errorf("snclient: publish %v: %w", t, err)
	}
	c.mu.Lock()
	closed, state := c.isClosed, c.state
	typ, id, ok := c.topicIDLocked(t)
	c.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("snclient: publish %v: %w", t, ErrClosed)
	case qos == snpacket.QoSMinus1:
		if typ == snpacket.TopicIDNormal {
			return fmt.Errorf("snclient: publish %v at QoS -1: needs a short name or predefined id: %w", t, ErrInvalidTopic)
		}
	case state != StateActive:
		return fmt.Errorf("snclient: publish %v: client is %v: %w", t, state, ErrNotConnected)
	case !ok:
		var err error
		if id, err = c.register(ctx, "publish", t.Name); err != nil {
			return err
		}
	}
	p := snpacket.Publish{QoS: qos, Retain: retain, TopicIDType: typ, TopicID: id, Data: payload}
	return c.sendPublish(&p)
}

// sendPublish encodes p into a reused buffer and sends it, allocating
// nothing on success.
func (c *Client) sendPublish(p *snpacket.Publish) error {
	if n := p.Len(); n > c.opts.MaxMessageSize {
		return fmt.Errorf("snclient: publish: PUBLISH of %d octets, limit %d: %w", n, c.opts.MaxMessageSize, ErrTooLarge)
	}
	b, err := p.AppendBinary(c.getBuf())
	if err != nil {
		c.putBuf(b)
		return fmt.Errorf("snclient: publish: %w", err)
	}
	err = c.write(b)
	c.putBuf(b)
	if err != nil {
		return fmt.Errorf("snclient: publish: send PUBLISH to %v: %w", c.addr, err)
	}
	return nil
}

func (c *Client) publishAcked(ctx context.Context, t Topic, qos snpacket.QoS, retain bool, payload []byte) error {
	const op = "publish"
	if err := t.check(true); err != nil {
		return fmt.Errorf("snclient: %s %v: %w", op, t, err)
	}
	if err := c.acquire(ctx, op); err != nil {
		return err
	}
	defer c.release()
	defer c.forgetPublish()
	for attempt := 0; ; attempt++ {
		if err := c.checkState(op, StateActive); err != nil {
			return err
		}
		c.mu.Lock()
		typ, id, ok := c.topicIDLocked(t)
		msgID := c.nextMsgIDLocked()
		c.mu.Unlock()
		if !ok {
			var err error
			if id, err = c.registerHeld(ctx, op, t.Name); err != nil {
				return err
			}
		}
		p := &c.pubOut // ours while we hold the request turn
		*p = snpacket.Publish{QoS: qos, Retain: retain, TopicIDType: typ, TopicID: id, MsgID: msgID, Data: payload}
		r, err := c.exchange(ctx, op, p, &p.Dup, waitSpec{
			types: typeBit(snpacket.TypePuback) | typeBit(snpacket.TypePubrec), msgID: msgID, byID: true})
		if err != nil {
			return err
		}
		if r.typ == snpacket.TypePuback {
			if r.rc == snpacket.RejectedInvalidTopicID && typ == snpacket.TopicIDNormal && attempt == 0 {
				c.forgetTopicID(id) // MQTT-SN 1.2 §6.7: register again, then retry
				continue
			}
			return refused(op, t.String(), r.typ, r.rc) // QoS 1 done, or a QoS 2 refusal
		}
		_, err = c.exchange(ctx, op, &snpacket.Pubrel{MsgID: msgID}, nil,
			waitSpec{types: typeBit(snpacket.TypePubcomp), msgID: msgID, byID: true})
		return err
	}
}

// forgetPublish drops pubOut's reference to the caller's payload; the
// caller holds the request turn.
func (c *Client) forgetPublish() { c.pubOut = snpacket.Publish{} }

// Register registers topic name with the gateway (REGISTER/REGACK) and
// returns its topic id, or the cached id when it is registered already.
// Over MQTT-SN 2.0 a gateway may answer with the predefined alias it has
// for name; the client then publishes and receives name by that alias.
// Publish registers on first use, so calling Register is optional.
func (c *Client) Register(ctx context.Context, name string) (uint16, error) {
	return c.register(ctx, "register", name)
}

func (c *Client) register(ctx context.Context, op, name string) (uint16, error) {
	if err := Named(name).check(true); err != nil {
		return 0, fmt.Errorf("snclient: %s %q: %w", op, name, err)
	}
	if err := c.acquire(ctx, op); err != nil {
		return 0, err
	}
	defer c.release()
	if c.v2 {
		return c.registerHeldV2(ctx, op, name)
	}
	return c.registerHeld(ctx, op, name)
}

// registerHeld registers name; the caller holds the request turn.
func (c *Client) registerHeld(ctx context.Context, op, name string) (uint16, error) {
	if err := c.checkState(op, StateActive); err != nil {
		return 0, err
	}
	c.mu.Lock()
	id, ok := c.nameToID[name]
	msgID := c.nextMsgIDLocked()
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	r, err := c.exchange(ctx, op, &snpacket.Register{MsgID: msgID, TopicName: []byte(name)}, nil,
		waitSpec{types: typeBit(snpacket.TypeRegack), msgID: msgID, byID: true, name: name})
	if err != nil {
		return 0, err
	}
	if err := refused(op, name, r.typ, r.rc); err != nil {
		return 0, err
	}
	if r.topicID == 0 || r.topicID == 0xFFFF {
		return 0, fmt.Errorf("snclient: %s %q: gateway assigned reserved topic id 0x%04x: %w", op, name, r.topicID, ErrInvalidTopicID)
	}
	return r.topicID, nil
}

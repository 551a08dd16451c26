package snclient

import (
	"context"
	"fmt"

	"github.com/gannet-mqtt/gannet/snpacket"
)

// Subscription is the gateway's answer to a SUBSCRIBE.
type Subscription struct {
	// QoS is the QoS the gateway granted.
	QoS snpacket.QoS
	// TopicID is the id the gateway will use in PUBLISH for a topic name
	// without wildcards; 0 for wildcard filters and short names, and the
	// predefined id for a predefined topic.
	TopicID uint16
}

// Subscribe subscribes to topic with maximum QoS qos (SUBSCRIBE/SUBACK,
// retransmitted with DUP). A Named topic may hold the wildcards + and #;
// messages on the concrete topics they match arrive after the gateway
// REGISTERs them, which the client accepts (see Options.RegisterFilter). A
// refusal is a *ReturnCodeError. In MQTT-SN 2.0 the subscription options
// are MQTT 5's defaults, the granted QoS comes from the SUBACK's reason
// code, TopicID is the session alias the gateway assigned (or the
// predefined alias it named), and a refusal is a *ReasonCodeError.
func (c *Client) Subscribe(ctx context.Context, topic Topic, qos snpacket.QoS) (Subscription, error) {
	return c.subscribe(ctx, topic, qos, SubscribeOptions{})
}

// SubscribeOptions are MQTT 5's subscription options, which MQTT-SN 2.0
// carries in SUBSCRIBE. MQTT-SN 1.2 has none: there only the zero value is
// allowed.
type SubscribeOptions struct {
	// NoLocal: the gateway does not send this client its own publications.
	NoLocal bool
	// RetainAsPublished: forwarded messages keep the RETAIN flag they were
	// published with.
	RetainAsPublished bool
	// RetainHandling says when retained messages are sent at subscribe
	// time (RetainSend, RetainSendIfNew, RetainDoNotSend).
	RetainHandling RetainHandling
}

// SubscribeWith is Subscribe with subscription options (MQTT-SN 2.0 only;
// non-zero options on a 1.2 client are ErrInvalidOption).
func (c *Client) SubscribeWith(ctx context.Context, topic Topic, qos snpacket.QoS, o SubscribeOptions) (Subscription, error) {
	return c.subscribe(ctx, topic, qos, o)
}

func (c *Client) subscribe(ctx context.Context, topic Topic, qos snpacket.QoS, o SubscribeOptions) (Subscription, error) {
	const op = "subscribe"
	switch {
	case o.RetainHandling > snpacket.RetainDoNotSend:
		return Subscription{}, fmt.Errorf("snclient: %s %v: retain handling %d: %w", op, topic, o.RetainHandling, ErrInvalidOption)
	case !c.v2 && o != (SubscribeOptions{}):
		return Subscription{}, fmt.Errorf("snclient: %s %v: MQTT-SN 1.2 has no subscription options: %w", op, topic, ErrInvalidOption)
	}
	if err := topic.check(false); err != nil {
		return Subscription{}, fmt.Errorf("snclient: %s %v: %w", op, topic, err)
	}
	if qos < snpacket.QoS0 || qos > snpacket.QoS2 {
		return Subscription{}, fmt.Errorf("snclient: %s %v: QoS %v outside 0..2: %w", op, topic, qos, ErrInvalidOption)
	}
	if err := c.acquire(ctx, op); err != nil {
		return Subscription{}, err
	}
	defer c.release()
	if err := c.checkState(op, StateActive); err != nil {
		return Subscription{}, err
	}
	if c.v2 {
		return c.subscribeV2(ctx, topic, qos, o)
	}
	msgID := c.nextMsgID()
	m := &snpacket.Subscribe{QoS: qos, TopicIDType: topic.Kind, MsgID: msgID}
	w := waitSpec{types: typeBit(snpacket.TypeSuback), msgID: msgID, byID: true}
	switch topic.Kind {
	case snpacket.TopicIDNormal:
		m.TopicName = []byte(topic.Name)
		if !isWildcard(topic.Name) {
			w.name = topic.Name
		}
	case snpacket.TopicIDShort:
		m.TopicID, _ = snpacket.ShortTopicID(topic.Name)
	case snpacket.TopicIDPredefined:
		m.TopicID = topic.ID
	}
	r, err := c.exchange(ctx, op, m, &m.Dup, w)
	if err != nil {
		return Subscription{}, err
	}
	if err := refused(op, topic.String(), r.typ, r.rc); err != nil {
		return Subscription{}, err
	}
	return Subscription{QoS: r.qos, TopicID: r.topicID}, nil
}

// Unsubscribe ends a subscription (UNSUBSCRIBE/UNSUBACK). topic must be
// given as it was subscribed.
func (c *Client) Unsubscribe(ctx context.Context, topic Topic) error {
	const op = "unsubscribe"
	if err := topic.check(false); err != nil {
		return fmt.Errorf("snclient: %s %v: %w", op, topic, err)
	}
	if err := c.acquire(ctx, op); err != nil {
		return err
	}
	defer c.release()
	if err := c.checkState(op, StateActive); err != nil {
		return err
	}
	if c.v2 {
		return c.unsubscribeV2(ctx, topic)
	}
	msgID := c.nextMsgID()
	m := &snpacket.Unsubscribe{TopicIDType: topic.Kind, MsgID: msgID}
	switch topic.Kind {
	case snpacket.TopicIDNormal:
		m.TopicName = []byte(topic.Name)
	case snpacket.TopicIDShort:
		m.TopicID, _ = snpacket.ShortTopicID(topic.Name)
	case snpacket.TopicIDPredefined:
		m.TopicID = topic.ID
	}
	_, err := c.exchange(ctx, op, m, nil, waitSpec{types: typeBit(snpacket.TypeUnsuback), msgID: msgID, byID: true})
	return err
}

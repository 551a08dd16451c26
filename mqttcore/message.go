package mqttcore

import (
	"fmt"
	"sync/atomic"
	"time"
)

// QoS is an MQTT quality-of-service level, 0, 1 or 2.
type QoS uint8

// QoS levels.
const (
	AtMostOnce  QoS = 0
	AtLeastOnce QoS = 1
	ExactlyOnce QoS = 2
)

// Valid reports whether q is 0, 1 or 2.
func (q QoS) Valid() bool { return q <= ExactlyOnce }

// Message is one application message. Once handed to the core it is shared,
// immutable, by every queue and retained slot that holds it: neither the
// publisher nor a receiver may modify it or its Payload.
type Message struct {
	// Topic is the topic name (no wildcards).
	Topic string
	// Payload is the application payload; nil or empty is allowed (and, with
	// Retain, deletes the retained message).
	Payload []byte
	// QoS is the publish QoS.
	QoS QoS
	// Retain asks the core to retain the message.
	Retain bool
	// Origin names the publisher: the client id for session publishes (set
	// by the core), the inline client's name for Inline publishes. No-local
	// subscriptions and bridge loop prevention compare against it.
	Origin string
	// Props holds optional MQTT 5 properties, nil when there are none so a
	// plain message stays small.
	Props *Properties
	// expiresAt is the absolute expiry (unix nanoseconds), 0 for none. Set
	// by the core from Props.MessageExpiry when the message is accepted.
	expiresAt int64
	// seq is the message's journal sequence number (0 without a journal),
	// set once when the core accepts it.
	seq uint64
	// stored is 1 once the journal commit that holds the message landed
	// (atomic): a durable session does not send it before.
	stored uint32
}

// ExpiresAt returns the absolute expiry the core computed from
// Props.MessageExpiry when it accepted m (zero: none). A journal stores it
// with the message.
func (m *Message) ExpiresAt() time.Time { return unixTime(m.expiresAt) }

// SetExpiresAt restores the absolute expiry of a message a journal loads.
// Use it only before handing the message to the core.
func (m *Message) SetExpiresAt(t time.Time) { m.expiresAt = unixNano(t) }

// isStored reports whether m's journal commit has landed.
func (m *Message) isStored() bool { return atomic.LoadUint32(&m.stored) != 0 }

// markStored records that m's journal commit landed.
func (m *Message) markStored() { atomic.StoreUint32(&m.stored, 1) }

// Properties are the MQTT 5 PUBLISH properties a front-end forwards
// unchanged (topic aliases are per connection and belong to the front-end;
// subscription identifiers are per subscriber, see Conn.SubscriptionIDs).
type Properties struct {
	// PayloadFormat is 0 (unspecified bytes) or 1 (UTF-8).
	PayloadFormat uint8
	// MessageExpiry is the message lifetime; 0 means none. The core drops a
	// queued message once it has expired and reports the remaining lifetime
	// in Delivery.ExpiryLeft.
	MessageExpiry time.Duration
	// ContentType is the MIME type, if any.
	ContentType string
	// ResponseTopic is the request/response reply topic, if any.
	ResponseTopic string
	// CorrelationData is request/response correlation data, if any.
	CorrelationData []byte
	// User holds user properties in order.
	User []UserProperty
}

// UserProperty is one MQTT 5 user property.
type UserProperty struct {
	Key, Value string
}

// expired reports whether m has expired at now (unix nanoseconds).
func (m *Message) expired(now int64) bool {
	return m.expiresAt != 0 && now >= m.expiresAt
}

// Will is a session's last-will message.
type Will struct {
	Topic   string
	Payload []byte
	QoS     QoS
	Retain  bool
	Props   *Properties
	// Delay is the MQTT 5 will delay: the will is published this long after
	// an abnormal end, or when the session expires, whichever comes first.
	Delay time.Duration
}

// validateWill checks a will's topic, QoS and size.
func (b *Broker) validateWill(w *Will) error {
	if w == nil {
		return nil
	}
	if err := b.validTopic(w.Topic); err != nil {
		return fmt.Errorf("will topic %q: %w", w.Topic, err)
	}
	if !w.QoS.Valid() {
		return fmt.Errorf("will qos %d: %w", w.QoS, ErrInvalidQoS)
	}
	if len(w.Payload) > b.conf().MaxPayloadSize {
		b.stats.limitPayload.Add(1)
		return fmt.Errorf("will payload of %d bytes: %w", len(w.Payload), ErrPayloadTooLarge)
	}
	if w.Delay < 0 {
		return fmt.Errorf("will delay %v: negative", w.Delay)
	}
	return nil
}

// Delivery is one thing a front-end must send, as returned by Conn.Next. It
// is returned by value and points at the shared Message: no allocation.
type Delivery struct {
	// Message is the shared, immutable message (nil when Release is set).
	Message *Message
	// QoS is the delivery QoS (the minimum of publish and subscription QoS).
	QoS QoS
	// Retain is the RETAIN flag to send (set for retained messages sent on
	// subscribe, and per retain-as-published otherwise).
	Retain bool
	// Dup is set when this is a retransmission after a re-attach.
	Dup bool
	// PacketID is the outbound packet id for QoS 1 and 2, 0 for QoS 0.
	PacketID uint16
	// Release is set when the front-end must (re)send PUBREL for PacketID
	// rather than a PUBLISH: a QoS 2 message whose PUBREC arrived before the
	// previous attachment ended.
	Release bool
	// ExpiryLeft is the remaining message expiry when the message has one.
	ExpiryLeft time.Duration
}

package mqttcore

import (
	"fmt"
	"strings"
	"sync/atomic"
)

// Inline publishes and subscribes from Go code in the same process (the
// MQTT-SN gateway's own messages, the bridge), without a session or a
// socket. Its name is the Origin of what it publishes, so subscriptions
// with NoLocal (and the bridge's loop prevention) can recognise it.
type Inline struct {
	b    *Broker
	name string
}

// Inline returns an in-process client called name.
func (b *Broker) Inline(name string) *Inline { return &Inline{b: b, name: name} }

// Name returns the client's name.
func (c *Inline) Name() string { return c.name }

// Publish validates and routes m, setting m.Origin to the client's name.
// The core takes ownership of m: do not modify it afterwards. $SYS topics
// are allowed here. Inline callbacks run on this goroutine.
func (c *Inline) Publish(m *Message) error {
	if err := c.b.validatePublish(m, false); err != nil {
		return fmt.Errorf("mqttcore: inline %q publish: %w", c.name, err)
	}
	m.Origin = c.name
	if err := c.b.publish(m); err != nil {
		return fmt.Errorf("mqttcore: inline %q publish: %w", c.name, err)
	}
	return nil
}

// inlineSub is an inline subscriber in the tree.
type inlineSub struct {
	name string
	fn   func(*Message)
}

// InlineSub is one inline subscription.
type InlineSub struct {
	b       *Broker
	sub     *subscription
	dropped atomic.Uint64
}

// Subscribe calls fn for every message matching filter (which may be a
// $share/group/filter), on the publisher's goroutine (for wills and $SYS,
// the broker's timer goroutine) with no core lock held. fn receives the shared message and must not modify it or block for
// long. Delivery is synchronous, so opts.QoS does not matter; NoLocal and
// RetainHandling do (retained messages are passed to fn before Subscribe
// returns; m.Retain is the publisher's flag).
func (c *Inline) Subscribe(filter string, opts SubOptions, fn func(*Message)) (*InlineSub, error) {
	if fn == nil {
		return nil, fmt.Errorf("mqttcore: inline %q subscribe %q: nil callback", c.name, filter)
	}
	b := c.b
	group, f, err := parseFilter(filter, b.cfg.MaxTopicLevels)
	if err != nil {
		return nil, fmt.Errorf("mqttcore: inline %q subscribe: %w", c.name, err)
	}
	if err := validSubOptions(filter, opts); err != nil {
		return nil, err
	}
	is := &InlineSub{b: b}
	is.sub = &subscription{inl: &inlineSub{name: c.name, fn: fn}, filter: strings.Clone(filter), opts: opts}
	b.tree.mu.Lock()
	b.tree.insert(is.sub, f, group)
	b.tree.mu.Unlock()
	if group == "" && opts.RetainHandling != NoRetained {
		var msgs []*Message
		if err := b.store.MatchRetained(f, func(m *Message) { msgs = append(msgs, m) }); err != nil {
			return is, fmt.Errorf("mqttcore: inline %q subscribe %q: retained: %w", c.name, filter, err)
		}
		now := b.now().UnixNano()
		for _, m := range msgs {
			if !m.expired(now) {
				fn(m)
			}
		}
	}
	return is, nil
}

// SubscribeChan is Subscribe with a channel: each message is sent without
// blocking; when ch is full the message is dropped and counted (see
// Dropped and Stats.Dropped).
func (c *Inline) SubscribeChan(filter string, opts SubOptions, ch chan<- *Message) (*InlineSub, error) {
	var is *InlineSub
	var ready atomic.Pointer[InlineSub]
	is, err := c.Subscribe(filter, opts, func(m *Message) {
		select {
		case ch <- m:
		default:
			if x := ready.Load(); x != nil {
				x.dropped.Add(1)
			}
			c.b.stats.dropped.Add(1)
		}
	})
	if is != nil {
		ready.Store(is)
	}
	return is, err
}

// Dropped returns how many messages a SubscribeChan subscription dropped
// because its channel was full.
func (s *InlineSub) Dropped() uint64 { return s.dropped.Load() }

// Unsubscribe removes the subscription; it is idempotent.
func (s *InlineSub) Unsubscribe() {
	s.b.tree.mu.Lock()
	defer s.b.tree.mu.Unlock()
	if s.sub.node != nil {
		s.b.tree.remove(s.sub)
	}
}

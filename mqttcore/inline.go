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
// are allowed here. Inline callbacks run on this goroutine. A QoS 1/2
// message returns once it is durable (the journal commit, and inline
// subscribers that hold it, such as the bridge's queue) and accepted by
// flow control; the error then says why it was not (ErrCongestion,
// ErrStoreFailed). QoS 0 never waits.
func (c *Inline) Publish(m *Message) error {
	b := c.b
	if err := b.validatePublish(m, false); err != nil {
		return fmt.Errorf("mqttcore: inline %q publish: %w", c.name, err)
	}
	m.Origin = c.name
	var p *pending
	var wait chan error
	if m.QoS > AtMostOnce && (b.journal != nil || b.heldSubs.Load() > 0) {
		wait = make(chan error, 1)
		p = b.newPending(wait, m)
	}
	parked, err := b.publish(m, p, nil, m.QoS > AtMostOnce)
	if err != nil {
		return fmt.Errorf("mqttcore: inline %q publish: %w", c.name, err)
	}
	if parked {
		if p == nil {
			wait = make(chan error, 1)
			p = b.newPending(wait, m)
		}
		b.park(m, p, nil)
	}
	if p == nil {
		return nil
	}
	p.release(nil)
	if err := <-wait; err != nil {
		return fmt.Errorf("mqttcore: inline %q publish: %w", c.name, err)
	}
	return nil
}

// Hold is a held acknowledgement: an inline subscriber registered with
// SubscribeHeld gets one with each message and must call Done exactly once,
// when the message is safe with it (for the bridge: committed to its
// queue). The publisher's PUBACK/PUBREC waits for it. The zero Hold (no
// publisher waits) ignores Done.
type Hold struct{ p *pending }

// Done releases the hold; a non-nil err refuses the publish (the publisher
// gets the protocol's refusal and may retry).
func (h Hold) Done(err error) {
	if h.p != nil {
		h.p.release(err)
	}
}

// inlineSub is an inline subscriber in the tree: fn, or held when the
// subscriber holds the publisher's acknowledgement.
type inlineSub struct {
	name string
	fn   func(*Message)
	held func(*Message, Hold)
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
	return c.subscribe(filter, opts, &inlineSub{name: c.name, fn: fn})
}

// SubscribeHeld is Subscribe for a subscriber that must make a message safe
// before its publisher is acknowledged (the bridge's durable queue): fn
// gets a Hold with each message and calls Done once, from any goroutine,
// without blocking the publisher meanwhile. Retained messages passed at
// subscribe time come with the zero Hold.
func (c *Inline) SubscribeHeld(filter string, opts SubOptions, fn func(*Message, Hold)) (*InlineSub, error) {
	if fn == nil {
		return nil, fmt.Errorf("mqttcore: inline %q subscribe %q: nil callback", c.name, filter)
	}
	c.b.heldSubs.Add(1)
	return c.subscribe(filter, opts, &inlineSub{name: c.name, fn: func(m *Message) { fn(m, Hold{}) }, held: fn})
}

// subscribe inserts an inline subscription and passes it the matching
// retained messages.
func (c *Inline) subscribe(filter string, opts SubOptions, in *inlineSub) (*InlineSub, error) {
	b := c.b
	group, f, err := parseFilter(filter, b.conf().MaxTopicLevels)
	if err != nil {
		return nil, fmt.Errorf("mqttcore: inline %q subscribe: %w", c.name, err)
	}
	if err := validSubOptions(filter, opts); err != nil {
		return nil, err
	}
	is := &InlineSub{b: b}
	is.sub = &subscription{inl: in, filter: strings.Clone(filter), opts: opts}
	b.tree.mu.Lock()
	b.tree.insert(is.sub, f, group)
	b.tree.mu.Unlock()
	if group == "" && opts.RetainHandling != NoRetained {
		var msgs []*Message
		if err := b.retained.MatchRetained(f, func(m *Message) { msgs = append(msgs, m) }); err != nil {
			return is, fmt.Errorf("mqttcore: inline %q subscribe %q: retained: %w", c.name, filter, err)
		}
		now := b.now().UnixNano()
		for _, m := range msgs {
			if !m.expired(now) {
				in.fn(m)
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

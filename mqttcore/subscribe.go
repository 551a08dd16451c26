package mqttcore

import (
	"fmt"
	"strings"
)

// validSubOptions checks QoS and retain handling.
func validSubOptions(filter string, o SubOptions) error {
	if !o.QoS.Valid() {
		return fmt.Errorf("mqttcore: subscribe %q: qos %d: %w", filter, o.QoS, ErrInvalidQoS)
	}
	if o.RetainHandling > NoRetained {
		return fmt.Errorf("mqttcore: subscribe %q: retain handling %d: %w", filter, o.RetainHandling, ErrInvalidFilter)
	}
	return validSubID(filter, o)
}

// Subscribe adds or replaces the session's subscription to filter (which
// may be a $share/group/filter). Matching retained messages are queued per
// opts.RetainHandling (never for shared subscriptions) and the front-end is
// notified; send SUBACK first, then drain Next.
func (c *Conn) Subscribe(filter string, opts SubOptions) error {
	b, s := c.b, c.s
	group, f, err := parseFilter(filter, b.conf().MaxTopicLevels)
	if err != nil {
		return fmt.Errorf("mqttcore: subscribe %q for %q: %w", filter, s.clientID, err)
	}
	if err := validSubOptions(filter, opts); err != nil {
		return err
	}
	if err := b.Authorize(c.user, s.clientID, ActionSubscribe, filter); err != nil {
		return err
	}
	if link := c.upLink(); link != nil {
		// Transparent: the remote holds the subscription; Sync(AckSubscribe)
		// waits for its SUBACK (upstream.go).
		op := &upOp{}
		s.mu.Lock()
		if s.up != nil {
			s.up.subscribe = op
		}
		s.mu.Unlock()
		link.Subscribe(filter, opts, op.finish)
		return nil
	}
	b.tree.mu.Lock()
	s.mu.Lock()
	ok := c.attachedLocked()
	s.mu.Unlock()
	if !ok {
		b.tree.mu.Unlock()
		return fmt.Errorf("mqttcore: subscribe %q for %q: %w", filter, s.clientID, ErrDetached)
	}
	var sub *subscription
	for _, x := range s.subs {
		if x.filter == filter {
			sub = x
			break
		}
	}
	isNew := sub == nil
	if isNew {
		sub = &subscription{sess: s, filter: strings.Clone(filter), opts: opts}
		b.tree.insert(sub, f, group)
		s.subs = append(s.subs, sub)
	} else {
		sub.opts = opts
	}
	s.markSubID(opts)
	b.tree.mu.Unlock()
	b.recordHeader(s) // the front-end's Sync(AckSubscribe) waits for it

	if group != "" || opts.RetainHandling == NoRetained || (opts.RetainHandling == SendRetainedIfNew && !isNew) {
		return nil
	}
	var msgs []*Message
	if err := b.retained.MatchRetained(f, func(m *Message) { msgs = append(msgs, m) }); err != nil {
		return fmt.Errorf("mqttcore: subscribe %q for %q: retained: %w", filter, s.clientID, err)
	}
	if len(msgs) == 0 {
		return nil
	}
	now := b.now().UnixNano()
	var (
		fe     FrontEnd
		queued int64
	)
	var ops []Op
	s.mu.Lock()
	for _, m := range msgs {
		if m.expired(now) {
			continue
		}
		e := entry{msg: m, qos: min(m.QoS, opts.QoS), flags: flagRetain}
		journal := s.persist && e.qos > AtMostOnce && m.seq != 0
		if journal {
			e.flags |= flagDurable // m is stored: the retained set holds it
		}
		x, grew, kept := s.enqueue(e)
		if x != nil {
			fe = x
		}
		if grew {
			queued++
		}
		if journal && kept {
			ops = append(ops, entryOp(s, &e))
		}
	}
	s.mu.Unlock()
	for _, op := range ops {
		b.lazyOp(op)
	}
	b.stats.queued.Add(queued)
	if fe != nil {
		fe.Notify()
	}
	return nil
}

// Unsubscribe removes the session's subscription to filter, reporting
// whether it existed.
func (c *Conn) Unsubscribe(filter string) (existed bool, err error) {
	b, s := c.b, c.s
	if link := c.upLink(); link != nil {
		link.Unsubscribe(filter) // transparent: the remote holds it (upstream.go)
		return true, nil
	}
	b.tree.mu.Lock()
	s.mu.Lock()
	ok := c.attachedLocked()
	s.mu.Unlock()
	if !ok {
		b.tree.mu.Unlock()
		return false, fmt.Errorf("mqttcore: unsubscribe %q for %q: %w", filter, s.clientID, ErrDetached)
	}
	for i, x := range s.subs {
		if x.filter == filter {
			b.tree.remove(x)
			s.subs = append(s.subs[:i], s.subs[i+1:]...)
			if len(s.subs) == 0 {
				s.subs = nil
			}
			existed = true
			break
		}
	}
	b.tree.mu.Unlock()
	if existed {
		b.recordHeader(s) // the front-end's Sync(AckSubscribe) waits for it
	}
	return existed, nil
}

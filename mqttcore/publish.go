package mqttcore

import (
	"fmt"
	"slices"
	"strings"
)

// validTopic checks a topic name against the configured level limit.
func (b *Broker) validTopic(topic string) error {
	return checkTopic(topic, b.conf().MaxTopicLevels)
}

// validatePublish checks a message before the core takes it. fromClient
// forbids $SYS topics.
func (b *Broker) validatePublish(m *Message, fromClient bool) error {
	if m == nil {
		return fmt.Errorf("nil message: %w", ErrInvalidTopic)
	}
	if err := b.validTopic(m.Topic); err != nil {
		return err
	}
	if fromClient && strings.HasPrefix(m.Topic, "$SYS") {
		return fmt.Errorf("topic %q: %w", m.Topic, ErrReservedTopic)
	}
	if !m.QoS.Valid() {
		return fmt.Errorf("topic %q qos %d: %w", m.Topic, m.QoS, ErrInvalidQoS)
	}
	if max := b.conf().MaxPayloadSize; len(m.Payload) > max {
		b.stats.limitPayload.Add(1)
		return fmt.Errorf("topic %q payload of %d bytes, limit %d: %w", m.Topic, len(m.Payload), max, ErrPayloadTooLarge)
	}
	return nil
}

// publish takes ownership of a validated message and routes it. p carries
// the publisher's acknowledgement (nil when no one waits); src is the
// publishing session, if any. With mayPark, a message that flow control
// must hold is not routed and publish reports parked: the caller parks it.
func (b *Broker) publish(m *Message, p *pending, src *Session, mayPark bool) (parked bool, err error) {
	if b.journal != nil && m.seq == 0 {
		m.seq = b.seq.Add(1)
	}
	mayPark = mayPark && m.QoS > AtMostOnce && b.conf().Overflow == OverflowBackpressure
	if mayPark && src != nil && src.parked.Load() > 0 {
		return true, nil // behind this publisher's earlier held messages
	}
	parked, err = b.retainAndRoute(m, p, mayPark)
	if err != nil || parked {
		return parked, err
	}
	b.stats.received.Add(1)
	if p != nil {
		p.commitOps()
	}
	return false, nil
}

// retainAndRoute updates the retained set and fans m out, unless mayPark is
// set and a queue entitled to m at QoS 1/2 is full: then it changes nothing
// and reports parked. Journal ops go to p (or, without p, ride lazily).
// $SYS messages come here directly so they do not count as received.
func (b *Broker) retainAndRoute(m *Message, p *pending, mayPark bool) (parked bool, err error) {
	if m.Props != nil && m.Props.MessageExpiry > 0 && m.expiresAt == 0 {
		m.expiresAt = addDur(b.now().UnixNano(), m.Props.MessageExpiry)
	}
	hp := b.hits.Get().(*[]hit)
	hits := (*hp)[:0]
	defer func() {
		clear(hits)
		*hp = hits[:0]
		b.hits.Put(hp)
	}()
	b.tree.mu.RLock()
	hits = b.tree.match(m.Topic, hits)
	multi := false // a session with several subscriptions may match twice
	for i := range hits {
		if s := hits[i].sub.sess; s != nil && len(s.subs) > 1 {
			multi = true
			break
		}
	}
	b.tree.mu.RUnlock()
	if mayPark && b.anyFull(m, hits) {
		return true, nil
	}
	if m.Retain {
		if err := b.retain(m, p); err != nil {
			return false, err
		}
	}
	b.route(m, hits, multi, p)
	return false, nil
}

// anyFull reports whether a session that would get m at QoS 1/2 has a full
// queue and holds its publishers back.
func (b *Broker) anyFull(m *Message, hits []hit) bool {
	for i := range hits {
		h := &hits[i]
		s := h.sub.sess
		if s == nil || h.opts.QoS == AtMostOnce || !s.holdsBack() {
			continue
		}
		if h.opts.NoLocal && m.Origin == s.clientID {
			continue
		}
		return true
	}
	return false
}

// retain updates the retained set for m and records the change.
func (b *Broker) retain(m *Message, p *pending) error {
	var op Op
	if len(m.Payload) == 0 {
		removed, err := b.retained.DeleteRetained(m.Topic)
		if err != nil {
			return fmt.Errorf("delete retained %q: %w", m.Topic, err)
		}
		if !removed {
			return nil
		}
		b.stats.retained.Add(-1)
		op = Op{Kind: OpUnretain, Topic: m.Topic}
	} else {
		added, err := b.retained.SetRetained(m, b.conf().MaxRetained)
		if err != nil {
			if isRetainedFull(err) {
				b.stats.limitRetained.Add(1)
			}
			return fmt.Errorf("retain %q: %w", m.Topic, err)
		}
		if added {
			b.stats.retained.Add(1)
		}
		op = Op{Kind: OpRetain, Message: m}
	}
	if b.journal == nil || strings.HasPrefix(m.Topic, "$SYS") {
		return nil
	}
	if p != nil {
		p.ops = append(p.ops, op)
	} else {
		b.lazyOp(op)
	}
	return nil
}

// publishWill publishes a session's will as a message from that client.
func (b *Broker) publishWill(w pendingWill) {
	if w.link != nil {
		w.link.PublishWill(w.will) // a transparent session's will is the remote's (upstream.go)
		return
	}
	m := &Message{
		Topic:   w.will.Topic,
		Payload: w.will.Payload,
		QoS:     w.will.QoS,
		Retain:  w.will.Retain,
		Origin:  w.clientID,
		Props:   w.will.Props,
	}
	b.stats.wills.Add(1)
	var p *pending
	if b.journal != nil {
		p = b.getPending(nil, Ack{}, nil, m) // nobody to tell; commits the will's entries
	}
	// The will was validated when it was set; a retained-store refusal is
	// counted by publish and there is no one to report it to. A will is
	// never parked: no publisher waits for it.
	_, _ = b.publish(m, p, nil, false)
	if p != nil {
		p.release(nil)
	}
}

// route fans m out to the matched subscriptions: one queue entry per
// session (the highest QoS of its matching non-shared subscriptions), one
// per share group, one callback per inline subscription. Front-ends are
// notified and callbacks run after every lock is released. Entries for
// journalled sessions go to p's ops and wait for its commit. Beyond growing
// the pooled scratch slices and session queues, it does not allocate.
func (b *Broker) route(m *Message, hits []hit, multi bool, p *pending) int {
	if multi {
		// Bring a session's overlapping subscriptions together so it gets
		// one copy at the highest QoS. Shared and inline hits sort first
		// (key 0) and are never merged.
		slices.SortFunc(hits, func(a, b hit) int {
			ka, kb := a.key(), b.key()
			switch {
			case ka < kb:
				return -1
			case ka > kb:
				return 1
			}
			return 0
		})
	}

	fp := b.fes.Get().(*[]FrontEnd)
	fes := (*fp)[:0]
	n := 0
	var queued int64
	durable := b.journal != nil && m.QoS > AtMostOnce && !strings.HasPrefix(m.Topic, "$SYS")
	if durable && p == nil {
		m.markStored() // nobody waits: its entries go out without waiting for the commit
	}
	for i := 0; i < len(hits); {
		h := hits[i]
		end := i + 1
		if k := h.key(); k != 0 {
			for end < len(hits) && hits[end].key() == k {
				end++
			}
		}
		group := hits[i:end]
		i = end
		s := h.sub.sess
		if s == nil {
			continue // inline: called below
		}
		var qos QoS
		rap, want := false, false
		for _, g := range group {
			if g.opts.NoLocal && m.Origin == s.clientID {
				continue
			}
			want = true
			qos = max(qos, g.opts.QoS)
			rap = rap || g.opts.RetainAsPublished
		}
		if !want {
			continue
		}
		e := entry{msg: m, qos: min(qos, m.QoS)}
		if rap && m.Retain {
			e.flags = flagRetain
		}
		s.mu.Lock()
		journal := durable && e.qos > AtMostOnce && s.persist && !s.dead
		if journal {
			e.flags |= flagDurable
		}
		fe, grew, kept := s.enqueue(e)
		s.mu.Unlock()
		if journal && kept {
			if p != nil {
				p.ops = append(p.ops, entryOp(s, &e))
				p.wake = append(p.wake, s)
			} else {
				b.lazyOp(entryOp(s, &e)) // m is marked stored above
			}
		}
		if fe != nil {
			fes = append(fes, fe)
		}
		if grew {
			queued++
		}
		n++
	}
	b.stats.queued.Add(queued)
	for _, fe := range fes {
		fe.Notify()
	}
	for _, h := range hits {
		if in := h.sub.inl; in != nil && !(h.opts.NoLocal && m.Origin == in.name) {
			if in.held != nil {
				if p != nil && m.QoS > AtMostOnce {
					p.hold()
				} else {
					p = nil // QoS 0 promises nothing: no one waits
				}
				in.held(m, Hold{p})
			} else {
				in.fn(m)
			}
			n++
		}
	}
	clear(fes)
	*fp = fes[:0]
	b.fes.Put(fp)
	return n
}

// key is the de-duplication key: the session id for non-shared session
// subscriptions, 0 (never merged) otherwise.
func (h hit) key() uint64 {
	if h.sub.sess == nil || h.shared {
		return 0
	}
	return h.sub.sess.id
}

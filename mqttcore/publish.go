package mqttcore

import (
	"fmt"
	"slices"
	"strings"
)

// validTopic checks a topic name against the configured level limit.
func (b *Broker) validTopic(topic string) error {
	return checkTopic(topic, b.cfg.MaxTopicLevels)
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
	if len(m.Payload) > b.cfg.MaxPayloadSize {
		b.stats.limitPayload.Add(1)
		return fmt.Errorf("topic %q payload of %d bytes, limit %d: %w", m.Topic, len(m.Payload), b.cfg.MaxPayloadSize, ErrPayloadTooLarge)
	}
	return nil
}

// publish takes ownership of a validated message, counts it as received,
// updates the retained store and fans it out.
func (b *Broker) publish(m *Message) error {
	if err := b.retainAndRoute(m); err != nil {
		return err
	}
	b.stats.received.Add(1)
	return nil
}

// retainAndRoute updates the retained store and fans m out; $SYS messages
// come here directly so they do not count as received.
func (b *Broker) retainAndRoute(m *Message) error {
	if m.Props != nil && m.Props.MessageExpiry > 0 && m.expiresAt == 0 {
		m.expiresAt = addDur(b.now().UnixNano(), m.Props.MessageExpiry)
	}
	if m.Retain {
		if len(m.Payload) == 0 {
			if removed, err := b.store.DeleteRetained(m.Topic); err != nil {
				return fmt.Errorf("delete retained %q: %w", m.Topic, err)
			} else if removed {
				b.stats.retained.Add(-1)
			}
		} else {
			added, err := b.store.SetRetained(m, b.cfg.MaxRetained)
			if err != nil {
				if isRetainedFull(err) {
					b.stats.limitRetained.Add(1)
				}
				return fmt.Errorf("retain %q: %w", m.Topic, err)
			}
			if added {
				b.stats.retained.Add(1)
			}
		}
	}
	b.route(m)
	return nil
}

// publishWill publishes a session's will as a message from that client.
func (b *Broker) publishWill(w pendingWill) {
	m := &Message{
		Topic:   w.will.Topic,
		Payload: w.will.Payload,
		QoS:     w.will.QoS,
		Retain:  w.will.Retain,
		Origin:  w.clientID,
		Props:   w.will.Props,
	}
	b.stats.wills.Add(1)
	// The will was validated when it was set; a retained-store refusal is
	// counted by publish and there is no one to report it to.
	_ = b.publish(m)
}

// route fans m out to every matching subscription: one queue entry per
// session (the highest QoS of its matching non-shared subscriptions), one
// per share group, one callback per inline subscription. Front-ends are
// notified and callbacks run after every lock is released. Beyond growing
// the pooled scratch slices and session queues, it does not allocate.
func (b *Broker) route(m *Message) int {
	hp := b.hits.Get().(*[]hit)
	hits := (*hp)[:0]
	b.tree.mu.RLock()
	hits = b.tree.match(m.Topic, hits)
	multi := false
	for i := range hits {
		if s := hits[i].sub.sess; s != nil && len(s.subs) > 1 {
			multi = true
			break
		}
	}
	b.tree.mu.RUnlock()
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
		fe, grew := s.enqueue(e)
		s.mu.Unlock()
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
			in.fn(m)
			n++
		}
	}
	clear(fes)
	*fp = fes[:0]
	b.fes.Put(fp)
	clear(hits)
	*hp = hits[:0]
	b.hits.Put(hp)
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

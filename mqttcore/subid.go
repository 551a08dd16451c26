package mqttcore

import (
	"fmt"
	"strings"
)

// MaxSubscriptionID is the largest MQTT 5 Subscription Identifier, the
// largest variable byte integer (MQTT 5.0 section 3.8.2.1.2).
const MaxSubscriptionID = 268435455

// validSubID checks a subscription's identifier range; 0 means none.
func validSubID(filter string, o SubOptions) error {
	if o.SubscriptionID > MaxSubscriptionID {
		return fmt.Errorf("mqttcore: subscribe %q: subscription identifier %d above %d: %w",
			filter, o.SubscriptionID, MaxSubscriptionID, ErrInvalidFilter)
	}
	return nil
}

// markSubID records that s may hold a subscription with an identifier. The
// caller holds b.tree.mu for writing.
func (s *Session) markSubID(o SubOptions) {
	if o.SubscriptionID != 0 {
		s.noSubIDs.Store(false)
	}
}

// SubscriptionIDs appends to dst, and returns, the MQTT 5 Subscription
// Identifiers of the session's subscriptions that match m (MQTT 5.0
// section 3.3.4: one copy carries the identifiers of every matching
// subscription). A front-end calls it for a delivery right after Next
// returns it, with a buffer of its own, so it allocates nothing beyond
// growing dst. It takes the tree's read lock, so it must not be called
// with any core lock held (none is held after Next returns).
//
// The identifiers are those of the subscriptions when it is called, not at
// the publish: a subscription removed in between no longer contributes. A
// No Local subscription does not contribute to a message the session
// published itself (it did not match). A shared subscription with an
// identifier contributes whenever its filter matches, whichever member of
// its group the message was routed to.
//
// A session that has never held a subscription with an identifier costs
// one atomic load: s.noSubIDs is set by the first walk that finds none and
// cleared (under the tree's write lock) by a Subscribe that sets one.
func (c *Conn) SubscriptionIDs(m *Message, dst []uint32) []uint32 {
	s := c.s
	if m == nil || s.noSubIDs.Load() {
		return dst
	}
	t := &c.b.tree
	t.mu.RLock()
	defer t.mu.RUnlock()
	has := false
	for _, sub := range s.subs {
		id := sub.opts.SubscriptionID
		if id == 0 {
			continue
		}
		has = true
		if sub.opts.NoLocal && m.Origin == s.clientID {
			continue
		}
		if MatchFilter(shareFree(sub.filter), m.Topic) {
			dst = append(dst, id)
		}
	}
	if !has {
		// Cleared only by Subscribe, which holds the write lock, so this
		// store cannot hide a subscription added meanwhile.
		s.noSubIDs.Store(true)
	}
	return dst
}

// shareFree returns a valid filter without its "$share/group/" prefix.
func shareFree(filter string) string {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			return rest[i+1:]
		}
	}
	return filter
}

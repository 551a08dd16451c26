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

// addSubIDs sets d.SubscriptionIDs to the identifiers of the session's
// subscriptions that match d's message (MQTT 5.0 section 3.3.4: a single
// copy carries the identifiers of every matching subscription). It is
// called by Next after the session lock is released, because the tree lock
// comes first in the lock order.
//
// The identifiers are those of the subscriptions at the time of Next, not
// of the publish: a subscription removed in between no longer contributes.
// A No Local subscription does not contribute to a message the session
// published itself (it did not match). A shared subscription with an
// identifier contributes whenever its filter matches, whichever member of
// its group the message was routed to.
//
// A session that has never held a subscription with an identifier costs
// one atomic load: s.noSubIDs is set by the first walk that finds none and
// cleared (under the tree's write lock) by a Subscribe that sets one. It
// does not allocate unless some identifier matches.
func (c *Conn) addSubIDs(d *Delivery) {
	s := c.s
	if d.Message == nil || s.noSubIDs.Load() {
		return
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
		if sub.opts.NoLocal && d.Message.Origin == s.clientID {
			continue
		}
		if MatchFilter(shareFree(sub.filter), d.Message.Topic) {
			d.SubscriptionIDs = append(d.SubscriptionIDs, id)
		}
	}
	if !has {
		// Cleared only by Subscribe, which holds the write lock, so this
		// store cannot hide a subscription added meanwhile.
		s.noSubIDs.Store(true)
	}
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

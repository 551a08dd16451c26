package mqttcore

// RetainHandling is the MQTT 5 retain-handling subscription option.
type RetainHandling uint8

// Retain-handling values.
const (
	// SendRetained sends matching retained messages at every subscribe.
	SendRetained RetainHandling = 0
	// SendRetainedIfNew sends them only if the subscription did not exist.
	SendRetainedIfNew RetainHandling = 1
	// NoRetained never sends retained messages at subscribe.
	NoRetained RetainHandling = 2
)

// SubOptions are a subscription's options. The zero value is an MQTT 3.1.1
// QoS 0 subscription.
type SubOptions struct {
	// QoS is the maximum QoS delivered on this subscription.
	QoS QoS
	// NoLocal: do not deliver messages whose Origin is this subscriber.
	NoLocal bool
	// RetainAsPublished: keep the RETAIN flag of forwarded messages (else
	// it is cleared for messages that are not sent because of subscribe).
	RetainAsPublished bool
	// RetainHandling selects which retained messages are sent on subscribe.
	RetainHandling RetainHandling
	// SubscriptionID is the MQTT 5 Subscription Identifier, 1 to
	// MaxSubscriptionID, or 0 for none. Conn.SubscriptionIDs gives the
	// identifiers of the subscriptions a delivery matches (see subid.go).
	SubscriptionID uint32
}

// subscription is one (subscriber, filter) pair. It is shared by the tree
// node that indexes it and the subscriber's own list. Its mutable fields
// (opts, idx) are guarded by tree.mu.
type subscription struct {
	sess   *Session   // session subscriber, or nil
	inl    *inlineSub // inline subscriber, or nil
	filter string     // as given, including any $share/group/ prefix
	node   *node
	group  *shareGroup // nil unless shared
	idx    int32       // index in node.subs or group.subs
	opts   SubOptions
}

// online reports whether the subscriber can take a message now; inline
// subscribers always can. Read without tree.mu held for writing, so it uses
// the session's atomic flag.
func (s *subscription) online() bool {
	return s.sess == nil || s.sess.online.Load()
}

// hit is one matched subscription with the options copied under the tree's
// read lock, so fan-out may read them after the lock is released.
type hit struct {
	sub    *subscription
	opts   SubOptions
	shared bool
}

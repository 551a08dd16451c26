package mqttcore

import (
	"fmt"
	"sync/atomic"
)

// Action is what a client asks an Authorizer for.
type Action uint8

// Actions.
const (
	// ActionPublish: publish to a topic name, retained or not, at any QoS;
	// also checked for a will's topic when the will is set (Attach,
	// Conn.SetWill).
	ActionPublish Action = iota + 1
	// ActionSubscribe: subscribe with a topic filter, as given (it may be
	// "$share/<group>/<filter>"). The Authorizer decides how a filter with
	// wildcards relates to its rules.
	ActionSubscribe
	// ActionRead: receive one message on a topic name. Checked for every
	// message queued for a session (fan-out and retained messages at
	// subscribe), as Mosquitto does, so a subscription only delivers what
	// the session's user may read, even if the rules changed after it was
	// made.
	ActionRead
)

// String returns the action's name.
func (a Action) String() string {
	switch a {
	case ActionPublish:
		return "publish"
	case ActionSubscribe:
		return "subscribe"
	case ActionRead:
		return "read"
	}
	return "action(" + itoa(int64(a)) + ")"
}

// Authorizer decides what a client may do, whatever its front-end: the core
// asks it for every client publish, subscribe, will and delivery. user is
// the ConnectOptions.Username of the session's current attachment ("" for
// anonymous), clientID the session's client id.
//
// Allow is called on the publish and fan-out paths, possibly while the
// core holds a session's lock: it must be fast, must not block and must not
// call back into the Broker. It must be safe for concurrent use.
type Authorizer interface {
	Allow(user, clientID string, action Action, topic string) bool
}

// authorizer boxes an Authorizer for the broker's atomic pointer.
type authorizer struct{ a Authorizer }

// SetAuthorizer replaces the broker's Authorizer (nil: allow everything)
// at run time, for a reload. Checks already running finish with the old
// one; every later check uses the new one. Existing subscriptions are not
// re-checked, but every message they deliver is (ActionRead).
func (b *Broker) SetAuthorizer(a Authorizer) {
	if a == nil {
		b.authz.Store(nil)
		return
	}
	b.authz.Store(&authorizer{a})
}

// Authorizer returns the broker's current Authorizer, nil if it has none.
func (b *Broker) Authorizer() Authorizer {
	if az := b.authz.Load(); az != nil {
		return az.a
	}
	return nil
}

// Authorize asks the broker's Authorizer whether user (client clientID)
// may perform action on topic, and counts a denial in Stats.Denied. It
// returns nil or an error wrapping ErrNotAuthorized. Front-ends call it for
// what they do without a session, such as MQTT-SN QoS -1 publishes, which
// they then make through Inline; everything done through a Conn is checked
// by the core itself.
func (b *Broker) Authorize(user, clientID string, action Action, topic string) error {
	if b.allowed(user, clientID, action, topic) {
		return nil
	}
	return fmt.Errorf("mqttcore: %s %q by %q (user %q): %w", action, topic, clientID, user, ErrNotAuthorized)
}

// allowed asks the Authorizer and counts a denial. Without an Authorizer
// everything is allowed. It does not allocate.
func (b *Broker) allowed(user, clientID string, action Action, topic string) bool {
	az := b.authz.Load()
	if az == nil || az.a.Allow(user, clientID, action, topic) {
		return true
	}
	switch action {
	case ActionPublish:
		b.stats.deniedPublish.Add(1)
	case ActionSubscribe:
		b.stats.deniedSubscribe.Add(1)
	case ActionRead:
		b.stats.deniedRead.Add(1)
	}
	return false
}

// authorizeWill checks a will's topic for publishing; nil will is allowed.
func (b *Broker) authorizeWill(user, clientID string, w *Will) error {
	if w == nil {
		return nil
	}
	az := b.authz.Load()
	if az == nil || az.a.Allow(user, clientID, ActionPublish, w.Topic) {
		return nil
	}
	b.stats.deniedWill.Add(1)
	return fmt.Errorf("will topic %q (user %q): %w", w.Topic, user, ErrNotAuthorized)
}

// mayRead reports whether session s may receive m. The caller holds s.mu
// (which guards s.user).
func (b *Broker) mayRead(s *Session, m *Message) bool {
	return b.allowed(s.user, s.clientID, ActionRead, m.Topic)
}

// authzPointer is the broker's current Authorizer.
type authzPointer = atomic.Pointer[authorizer]

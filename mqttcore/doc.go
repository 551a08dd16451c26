// Package mqttcore is Gannet's protocol-neutral MQTT broker core.
//
// # What it owns
//
// The core owns every broker-side piece of MQTT state: sessions (client id,
// clean start, session expiry, will, subscriptions), the one bounded queue per
// session that both buffers messages while the session is offline (a sleeping
// MQTT-SN sensor's buffer is this queue; there is no second one) and feeds an
// attached front-end, in-flight QoS 1/2 state in both directions, outbound
// packet ids, the subscription tree (with "+", "#", the "$" rule and shared
// subscriptions), retained messages, wills, limits and counters, and the
// $SYS/broker/... topics.
//
// Front-ends (the MQTT TCP listener in mqttcore/listener, the MQTT-SN gateway
// in package gateway) attach to sessions through [Broker.Attach], implement the
// two-method [FrontEnd] interface, pull deliveries with [Conn.Next] and report
// acknowledgements with [Conn.Ack], [Conn.Received] and [Conn.Complete]. Go code
// in the same process (the gateway itself, the bridge) publishes and subscribes
// through [Inline].
//
// A session an [Upstream] claims ([Broker.SetUpstream]; mqttcore/transparent
// is the MQTT 5 one) is transparent: its publishes, subscriptions and will
// go to its own session on a remote broker through an [UpstreamLink], the
// remote's messages come back into its queue, and its acknowledgements
// (including CONNACK, [AckConnect]) wait for the remote's (upstream.go).
//
// What a client may publish, subscribe to, set as a will and receive is
// decided for every front-end alike by one [Authorizer]
// ([Options.Authorizer], [Broker.SetAuthorizer]); refusals wrap
// [ErrNotAuthorized] (authorize.go).
//
// # What it must not import
//
// Only the standard library. The core knows nothing of MQTT-SN, topic ids,
// network addresses or any wire codec; it never logs (it returns errors that
// wrap the sentinels in errors.go) and has no package-level mutable state.
//
// # Goroutines and buffers
//
// The core starts exactly one goroutine per [Broker]: the timer loop, which
// fires will delays, sleep deadlines and session expiry from one shared heap
// and publishes $SYS topics. It exits when [Broker.Close] is called, and Close
// waits for it. There is no goroutine and no timer per session or per
// message: an offline session is plain memory. All other work runs on the
// caller's goroutine (the front-end's, or the inline publisher's).
//
// A [Message] handed to the core is owned by the core from then on and must
// not be modified: one message is shared, immutable, by every queue it is
// fanned out to. Front-ends that decode into a reusable buffer must copy the
// payload before publishing.
//
// With a [Journal] (Options.Journal; mqttcore/boltstore is the bbolt one)
// every change to a persistent session and to the retained set is recorded
// as an [Op] as it happens, and a QoS 1/2 acknowledgement is deferred
// ([PublishPending], [FrontEnd].Acked, [Conn.Sync]) until the commit that
// holds it has landed; [New] rebuilds the sessions from [Journal.Load].
// Without one everything is in memory and nothing waits. Flow control
// (Config.Overflow) holds a publisher's acknowledgement instead of dropping
// a message a full queue cannot take.
//
// The limits in force are one immutable [Config] behind an atomic pointer,
// read with one load and no lock; [Broker.SetConfig] swaps it for a reload
// (reconfig.go says what a change means for sessions and queues that
// exist).
//
// The core never calls into a front-end (Notify, Close) or an inline callback
// while holding one of its locks. The lock order is written down in
// docs/mqttcore.md and in broker.go.
package mqttcore

// Package transparent is Gannet's transparent mode: a sensor whose client
// id matches a configured pattern gets its own MQTT 5 session on a remote
// broker (paho.golang), with its own client id and credentials, instead of
// being aggregated into the gateway's bridge.
//
// # What it owns
//
// An [Upstream] implements mqttcore.Upstream: the broker core asks it
// which sessions are transparent and hands each one a link
// (mqttcore.UpstreamLink). A link owns one paho client at a time (dialled
// on the sensor's CONNECT, on a wake-up after a sleep with CloseOnSleep, or
// on demand after the connection dropped) and maps the core's calls to the
// remote: CONNECT with the sensor's clean start, the configured session
// expiry, the sensor's will and its credentials (Config.Devices or the
// Username/Password templates); PUBLISH whose PUBACK/PUBCOMP (or refusal)
// completes the sensor's deferred acknowledgement; SUBSCRIBE whose SUBACK
// does the same; and DISCONNECT on sleep (CloseOnSleep), on a normal
// disconnect (reason 0x00) or a lost sensor (0x04: the remote publishes the
// will). Messages from the remote are queued in the sensor's core session
// (the one sleep buffer) before paho acknowledges them.
//
// The core session stays the sensor's session at the gateway (attachment,
// queue, in-flight state, deadlines); the remote session holds the
// subscriptions and, while the sensor is away or moves to another gateway,
// its messages.
//
// # What it must not import
//
// mqttcore and paho.golang, never the gateway or anything MQTT-SN.
//
// # Goroutines
//
// A link's operations run in order on a worker goroutine that exists only
// while operations wait (it exits when its queue is empty), started
// through Upstream's tracked helper; Close cancels every exchange and
// waits for them. While a link holds a connection, paho runs its reader,
// pinger and message router for it: transparent mode costs goroutines per
// connected sensor, and per sleeping sensor unless CloseOnSleep is set.
// No lock of this package is held while calling the core or paho.
package transparent

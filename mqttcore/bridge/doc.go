// Package bridge connects the broker core to remote MQTT brokers: each
// bridge is one MQTT 5 connection (paho.golang autopaho) with
// Mosquitto-style topic rules, and a durable outbound queue on bbolt that
// survives uplink outages and process restarts.
//
// # What it owns
//
// A [Bridge] owns its autopaho connection, its inline client of the core
// (named after the bridge; that name is the Origin of every message it
// publishes locally, which is how outbound forwarding recognises and skips
// them), and a [Store]: one bbolt file holding the outbound queue
// (autopaho's queue.Queue, keyed by big-endian sequence number) and the
// MQTT session state of in-flight QoS 1/2 messages (paho's session store
// interface), so nothing handed to the bridge is lost across a restart.
//
// # Imports
//
// It imports mqttcore (never the reverse), paho.golang and bbolt. It logs
// through an injected *slog.Logger.
//
// # Goroutines
//
// Per Bridge: autopaho's connection and queue goroutines (stopped by
// Close), the Store's commit goroutine (stopped by Store.Close) and one
// statistics loop (stopped by Close). Outbound messages are written to the
// queue on the publisher's goroutine, inside the core's inline callback:
// the publisher waits for one group-committed fsync, never for the uplink.
//
// # Lock order
//
// Store.sendMu, then Store.mu (a leaf). The commit goroutine takes only
// Store.mu, and only outside a transaction's I/O.
package bridge

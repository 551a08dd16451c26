// Package gateway is Gannet's MQTT-SN 1.2 front-end: it serves MQTT-SN
// clients on datagram links and connects each to a session of the broker
// core (package mqttcore).
//
// # What it owns
//
// Everything MQTT-SN adds to an MQTT session: client addresses (and the
// Wireless Node Ids of clients behind forwarders), per-client topic ids, the
// predefined topic table, the will dialogue, the one gateway-to-client
// exchange in flight with its Tretry/Nretry retransmission, keep-alive
// supervision, and the sleep states (active, asleep, awake). Subscriptions,
// queues, in-flight QoS state, retained messages and wills are the core's:
// a sleeping client is a detached core session, and the core's bounded
// per-session queue is its only buffer.
//
// # Goroutines
//
// New starts a fixed number of event loops (Config.Loops, one per CPU by
// default). Each client belongs to the loop its address hashes to, and
// only that loop's goroutine touches it: no locks on the per-datagram path.
// Serve runs on the caller's goroutine and only reads: it hands each
// datagram to its loop through a bounded channel (a full channel drops the
// datagram and counts it). The core reaches a loop only through the
// attachment's Notify and Close, which post an event and return. Each loop
// has one timer heap for keep-alive, retry and sleep deadlines; a sleeping
// client costs an entry there and no goroutine or timer of its own. Close
// stops the loops and waits for every goroutine the gateway started.
//
// # Buffers
//
// Received datagrams come from a pool and go back to it once handled;
// decoded messages alias them (snpacket.Decoder), so anything kept beyond
// the handling of one datagram is copied: topic names into the registry,
// payloads into the core's messages. Each loop encodes into one buffer.
//
// # Imports
//
// snpacket and mqttcore only; never radio (links are plain [Link] values).
// The package logs through an injected *slog.Logger: per-packet traces at
// Debug behind Enabled, peers' mistakes counted in [Stats].
package gateway

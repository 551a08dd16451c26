// Package gateway is Gannet's MQTT-SN front-end: it serves MQTT-SN 1.2 and
// 2.0 (OASIS CSD01) clients side by side on datagram links and connects
// each to a session of the broker core (package mqttcore).
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
// # Where each concept lives
//
//   - state.go: a client's session state, one machine of five named
//     dimensions, the table of legal combinations, and the only functions
//     that change them (each logs "dimension from -> to" at Debug).
//   - topicid.go: the resolver, the one mapping between topic ids (normal,
//     predefined, short) and names, used by PUBLISH, SUBSCRIBE,
//     UNSUBSCRIBE, QoS -1 and delivery; registry.go: a client's normal ids
//     and both REGISTER exchanges; predefined.go: the configured ids.
//   - connect.go, will.go, sleep.go, migrate.go: CONNECT, the will
//     dialogue and updates, sleep and wake, waking from a new address.
//   - publish.go (client to gateway, QoS -1 included), subscribe.go,
//     deliver.go (gateway to client, one exchange at a time).
//   - discovery.go: ADVERTISE, SEARCHGW/GWINFO; forward.go: forwarder
//     encapsulation; identity.go: DTLS identity binding; authorize.go: the
//     sensor's ACL user and how the core's authorization refusals are
//     answered, counted and logged.
//   - loop.go: the event loop and its dispatch; addrindex.go: clients by
//     address; timers.go: the loop's timer heap.
//   - limits.go: limits, their counting and rate-limited logging, the QoS -1
//     allow-list; config.go, stats.go, sys.go: configuration and counters;
//     reconfig.go: the settings in force, one atomically swapped immutable
//     value every read goes through, and SetConfig (a reload).
//   - v2.go: MQTT-SN 2.0 beside 1.2: which version a sender speaks, the
//     2.0 dispatch and reason codes; connect2.go, auth2.go, publish2.go,
//     subscribe2.go, sleep2.go: the 2.0 procedures; connencap.go:
//     Connection Encapsulation; forward2.go: 2.0 forwarders; stats2.go:
//     the 2.0 counters.
//     docs/mqttsn-2.md records every 2.0 choice.
//   - probation.go: admission (exact max_clients) and probation of clients
//     that have not answered since CONNACK (max_unverified), which keeps a
//     CONNECT flood from crowding out the others.
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

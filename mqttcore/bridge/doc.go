// Package bridge connects the broker core to remote MQTT brokers: each
// bridge is one MQTT 5 connection (paho.golang autopaho) with
// Mosquitto-style topic rules, and a durable outbound queue on bbolt that
// survives uplink outages and process restarts.
//
// # What it owns
//
// A [Bridge] owns its autopaho connection (which dials, reconnects with
// backoff and reads packets), its inline client of the core (named after
// the bridge; that name is the Origin of every message it publishes
// locally, which is how outbound forwarding recognises and skips them), a
// [Store] and an outbox. The Store is one bbolt file holding the outbound
// queue (keyed by big-endian sequence number), the QoS 1/2 messages in
// flight and the PUBREC records of inbound QoS 2 messages, so nothing
// handed to the bridge is lost across a restart. The outbox is the client
// half of the MQTT session (packet ids, send quota, acknowledgements: it
// is paho's session manager, with paho's own state for the server half)
// and the sender that moves committed messages from the queue to the
// connection in batches.
//
// All reads and writes of the file go through a [Backend] (commit.go), in
// gannet always a mqttcore/boltstore Store with its write-ahead log: the
// queue's writes are keyed ops in the log, one record and one fdatasync
// per group, applied to the bbolt file at checkpoints. By default
// (OpenStore) the bridge's own file at queue.path with a private Store
// (its log beside it, path.wal.0 and path.wal.1); with Options.Backend
// (OpenSharedStore) a file shared with others, such as the broker core's
// durable store, the bridge's buckets under "bridge/<name>", so that its
// writes and the core's share each log record and its fdatasync.
//
// # Imports
//
// It imports mqttcore (never the reverse), paho.golang and bbolt. It logs
// through an injected *slog.Logger.
//
// # Goroutines
//
// Per Bridge: autopaho's connection goroutines (its queue loop idles: the
// bridge never publishes through paho; paho's acknowledgement goroutine
// sends the inbound acknowledgements that became due every 10 ms), the
// outbox's sender (stopped by Close), the private boltstore Store's
// committer, syncer and checkpoints when the file is its own (stopped by
// Store.Close) and one statistics loop
// (stopped by Close). Outbound messages are encoded and appended to the
// queue on the publisher's goroutine, inside the core's inline callback,
// without waiting: the core holds the publisher's acknowledgement until
// the commit's callback releases it (mqttcore.Hold), never waiting for the
// uplink. The remote's PUBACKs are taken out of the stream on paho's
// reader goroutine (bufConn.Read, before paho decodes anything), which
// only updates the outbox and wakes the sender; other acknowledgements go
// through paho's session interface on the same goroutine. Inbound messages
// are published into the core on paho's router goroutine, which waits for
// the core (a commit, flow control) and only then acknowledges.
//
// # Lock order
//
// Store.takeMu (the sender's take), then Store.sendMu, then Store.mu (a
// leaf); the Store's buffer pool (queueBufs.mu) is a leaf taken alone. On
// the path of every message nothing is allocated that can be reused: the
// Store's Log calls come from a pool and give their ops, keys and (for
// the core's callback) the queued buffer back once committed; the
// sender's records go back to the buffers when their removal commits.
// outbox.mu is never held while
// taking another lock, submitting a write or writing to the network; the
// connection's write lock (bufConn, which paho also takes) is held only
// across one write. The store's committer and syncer run the writes'
// done callbacks, which take Store.mu or outbox.mu briefly and never
// block.
package bridge

// Package boltstore is the broker core's durable journal: it implements
// [mqttcore.Journal] with a write-ahead log in front of a bbolt file, and
// rebuilds the sessions and retained messages from them at start-up.
//
// # What it owns
//
// A [Store] owns one bbolt file (created, with its directory, on first
// start) and the two segment files of its log beside it (PATH.wal.0 and
// PATH.wal.1). Commit calls go into a bounded queue; the committer takes
// the first one, drains whatever else is queued (or waits up to
// Options.MaxDelay, and while the previous group is still being synced),
// encodes their ops into one CRC-checked log record and writes it at the
// end of the active segment. The syncer fdatasyncs the segment once for
// every group written since its last sync and then calls each done, in
// call order. A call whose ops cannot be stored (a topic too long for a
// key) is failed alone; the others go on.
//
// The bbolt file is brought up to date behind the log: when a segment
// holds Options.CheckpointBytes of records, or Options.CheckpointInterval
// has passed, the other segment becomes the active one and a checkpoint
// applies this one's records to the file in one transaction (leaving out
// ops that later ops of the same checkpoint replace), recording the index
// of the last record it holds; the segment is then written over from its
// start. Open applies the records the file does not hold yet (replay).
//
// The on-disk formats (the log's records, the buckets, keys and record
// encodings, and their versions) are described in wal.go, oplog.go,
// format.go and docs/durability.md. Buckets whose names begin with "core."
// are the core's; other users of the file (the bridge's durable queue)
// keep their own buckets and write them through [Store.Log] (keyed ops in
// the log) or [Store.Update], which the committer runs in a bbolt
// transaction after applying everything logged before it. A user may also
// have a private Store on a file of its own (the bridge's queue.path);
// Options.Adopt lets it take over such a file written before it had a log.
//
// # Imports
//
// It imports mqttcore (never the reverse) and bbolt, and never logs: it
// returns errors and counts in [Stats].
//
// # Goroutines
//
// Per Store: the committer and the syncer, started by Open and waited for
// by Close; and one goroutine per background checkpoint, which exits
// after its transaction and is waited for by the committer (before it
// applies anything itself) and by Close. done callbacks run on the syncer
// (Commit calls) or the committer (Update calls, checkpoints); they must
// not block or call Commit or Update. Load and View run on the caller's
// goroutine in read transactions.
package boltstore

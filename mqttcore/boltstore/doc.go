// Package boltstore is the broker core's durable journal on bbolt: it
// implements [mqttcore.Journal], writing every recorded change to one bbolt
// file with group commit, and rebuilds the sessions and retained messages
// from it at start-up.
//
// # What it owns
//
// A [Store] owns one bbolt file (created, with its directory, on first
// start) and one commit goroutine. Commit and Update calls go into a bounded
// queue; the committer takes the first one, drains whatever else is queued
// without waiting (or waits up to Options.MaxDelay), applies them all in one
// bbolt transaction in call order (two fdatasyncs), then calls each done. A
// call whose apply fails is taken out and the others are re-run without it,
// so apply functions must be idempotent; only that call's done gets the
// error.
//
// The on-disk format (buckets, keys, record encodings and their versions)
// is described in format.go and docs/durability.md. Buckets whose names
// begin with "core." are the core's; other users of the file (the bridge's
// durable queue) keep their own buckets and write them through
// [Store.Update], so that their writes share the core's fsyncs.
//
// # Imports
//
// It imports mqttcore (never the reverse) and bbolt, and never logs: it
// returns errors and counts in [Stats].
//
// # Goroutines
//
// One per Store: the committer, started by Open and waited for by Close.
// done callbacks run on it; they must not block or call Commit or Update.
// Load and View run on the caller's goroutine in a read transaction.
package boltstore

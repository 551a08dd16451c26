package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
	"github.com/gannet-mqtt/gannet/mqttcore/bridge"
)

// Store types ([store] type).
const (
	storeBolt   = "bolt"
	storeMemory = "memory"
)

// defaultStorePath is where the core's store lives when [store] path is
// not set: relative to the configuration file, created on first start.
const defaultStorePath = "data/gannet.db"

// storeConfig is the [store] table: where the broker core keeps what must
// survive a restart (persistent sessions, their queues, retained messages,
// the gateway's per-sensor state). docs/durability.md explains each choice.
type storeConfig struct {
	// Type is "bolt" (the default: a bbolt file) or "memory" (nothing
	// survives the process; for tests and for users who want none).
	Type string `toml:"type"`
	// Path is the store file; a relative path is relative to the
	// directory of the configuration file. Default data/gannet.db.
	Path string `toml:"path"`
	// Sync is the fsync policy: "always" (default: an acknowledgement
	// follows an fsync) or "never" (written, not synced: a power cut can
	// lose the last seconds; a crash of gannet alone loses nothing).
	Sync string `toml:"sync"`
	// MaxDelay bounds how long a commit waits for others to share its
	// fsync (group commit). 0, the default, commits as soon as the
	// committer is free, which already batches everything that arrived
	// during the previous commit.
	MaxDelay time.Duration `toml:"max_delay"`
	// CheckpointBytes is how much of the write-ahead log accumulates
	// before it is applied to the bbolt file (0: boltstore's default,
	// 8 MiB). The log on disk and the memory holding its records until
	// their checkpoint stay within about twice this.
	CheckpointBytes int `toml:"checkpoint_bytes"`
	// CheckpointInterval bounds how long a logged change waits for its
	// checkpoint when less than CheckpointBytes arrives (0: 2s).
	CheckpointInterval time.Duration `toml:"checkpoint_interval"`
}

// options returns the boltstore options the table asks for.
func (c *storeConfig) options() boltstore.Options {
	return boltstore.Options{Sync: c.Sync, MaxDelay: c.MaxDelay,
		CheckpointBytes: c.CheckpointBytes, CheckpointInterval: c.CheckpointInterval}
}

// Validate checks the table.
func (c *storeConfig) Validate() error {
	switch c.Type {
	case "", storeBolt, storeMemory:
	default:
		return fmt.Errorf("store.type = %q: must be %q or %q", c.Type, storeBolt, storeMemory)
	}
	if err := c.options().Validate(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// path returns the store file for a configuration read from configPath.
func (c *storeConfig) path(configPath string) string {
	p := c.Path
	if p == "" {
		p = defaultStorePath
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(configPath), p)
	}
	return p
}

// openStore opens the configured store for the broker core: nil for
// memory. The returned close function is to be called after the broker
// (and the bridges sharing the file) have closed.
func openStore(c storeConfig, configPath string) (*boltstore.Store, func() error, error) {
	if c.Type == storeMemory {
		return nil, func() error { return nil }, nil
	}
	st, err := boltstore.Open(c.path(configPath), c.options())
	if err != nil {
		return nil, nil, err
	}
	return st, st.Close, nil
}

// journalOf returns st as the core's Journal, or nil (not a typed nil) for
// memory.
func journalOf(st *boltstore.Store) mqttcore.Journal {
	if st == nil {
		return nil
	}
	return st
}

// backendOf returns st as the bridges' shared Backend, or nil for memory.
func backendOf(st *boltstore.Store) bridge.Backend {
	if st == nil {
		return nil
	}
	return st
}

package boltstore

import (
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"
)

// TestBoltOptions: the file is opened the way durability-notes.md's
// "Take" asks (hash-map free list, not synced; a large initial mapping),
// and Sync picks bbolt's NoSync.
func TestBoltOptions(t *testing.T) {
	for _, tc := range []struct {
		sync   string
		noSync bool
	}{{"", false}, {SyncAlways, false}, {SyncNever, true}} {
		s, err := Open(filepath.Join(t.TempDir(), "core.db"), Options{Sync: tc.sync})
		if err != nil {
			t.Fatal(err)
		}
		db := s.db
		if db.NoSync != tc.noSync || !db.NoFreelistSync || db.FreelistType != bbolt.FreelistMapType {
			t.Errorf("Sync %q: NoSync %v, NoFreelistSync %v, FreelistType %v; want %v, true, %v",
				tc.sync, db.NoSync, db.NoFreelistSync, db.FreelistType, tc.noSync, bbolt.FreelistMapType)
		}
		if s.opts.InitialMmapSize < 64<<20 {
			t.Errorf("InitialMmapSize %d; want at least 64 MiB by default", s.opts.InitialMmapSize)
		}
		s.Close()
	}
}

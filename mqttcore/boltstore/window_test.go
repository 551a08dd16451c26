package boltstore

import (
	"bytes"
	"fmt"
	"testing"
)

// TestWindowReuse: a reset window keeps the chunks it used (and three
// quarters of the spares it did not use), and records added after the reset read back
// without the old ones.
func TestWindowReuse(t *testing.T) {
	var w window
	rec := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 1000+i%7) }
	fill := func(from, n int) {
		for i := range n {
			w.add(uint64(from+i), rec(from+i))
		}
	}
	check := func(from, n int) {
		t.Helper()
		i := from
		if err := w.records(func(p []byte) error {
			if !bytes.Equal(p, rec(i)) {
				return fmt.Errorf("record %d: %d bytes, want %d of %d", i, len(p), len(rec(i)), byte(i))
			}
			i++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if i != from+n {
			t.Fatalf("read records %d to %d, want %d to %d", from, i, from, from+n)
		}
	}
	fill(1, 1000) // about 4 chunks
	used := len(w.chunks)
	if used < 3 {
		t.Fatalf("1,000 records of 1 KB in %d chunks, want at least 3", used)
	}
	first := &w.chunks[0][:1][0]
	w.reset()
	if !w.empty() || w.size != 0 {
		t.Fatalf("after reset: empty %v, size %d", w.empty(), w.size)
	}
	if len(w.spare) != used {
		t.Fatalf("kept %d chunks, want the %d used", len(w.spare), used)
	}
	fill(2000, 10) // fits in one chunk: one spare reused
	check(2000, 10)
	if got := len(w.spare); got != used-1 {
		t.Fatalf("%d spares after reusing one, want %d", got, used-1)
	}
	reused := false
	for _, s := range append(w.spare, w.chunks...) {
		if &s[:1][0] == first {
			reused = true
		}
	}
	if !reused {
		t.Fatal("the first chunk is neither reused nor kept")
	}
	w.reset()
	if want := 1 + (used-1)*3/4; len(w.spare) != want {
		t.Fatalf("kept %d chunks after a reset that used 1 of %d; want %d (the used one, 3/4 of the others)", len(w.spare), used, want)
	}
	// A log that stays small keeps no burst: the unused spares shrink at
	// every reset.
	for i := 0; len(w.spare) > 1; i++ {
		if i > used {
			t.Fatalf("%d chunks kept after %d resets that used 1 each; want 1", len(w.spare), i)
		}
		fill(3000+i, 1)
		w.reset()
	}
	// A payload larger than a chunk gets one of its own, not kept.
	big := bytes.Repeat([]byte{7}, windowChunk+1)
	w.add(1, big)
	w.reset()
	for _, s := range w.spare {
		if cap(s) != windowChunk {
			t.Fatalf("kept a chunk of %d bytes", cap(s))
		}
	}
}

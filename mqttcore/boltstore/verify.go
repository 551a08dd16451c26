package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
)

// verifyPages checks the page structure of a bbolt file the way bbolt's
// own consistency check does, reading the file with plain reads: every
// page reachable from the root is inside the pages in use, says it is the
// page it was reached as, is a branch or a leaf whose elements lie inside
// it, is reached once, and holds its keys in order within its parent's
// bounds. bbolt runs these checks whenever it opens a file for writing
// without a synced free list, and panics, on a goroutine of its own where
// nothing can recover, at the first failure; Open runs this first.
//
// pageSize, hwm (the number of pages in use) and txid come from the file's
// read-only bbolt handle, which has validated the meta pages.
func verifyPages(f *os.File, pageSize int, hwm, txid uint64) error {
	v := verifier{f: f, pageSize: pageSize, hwm: hwm, seen: make([]uint64, hwm/64+1)}
	root, err := v.metaRoot(txid)
	if err != nil {
		return err
	}
	v.mark(0, 0)
	v.mark(1, 0)
	return v.tree(root, nil, nil, 0)
}

// Layout of a bbolt page (internal/common in bbolt; native byte order).
const (
	pageHeaderSize = 16
	elemSize       = 16
	flagBranch     = 0x01
	flagLeaf       = 0x02
	leafBucket     = 0x01
	metaMagic      = 0xED0CDAED
	maxDepth       = 64
)

var ne = binary.NativeEndian

type verifier struct {
	f        *os.File
	pageSize int
	hwm      uint64
	seen     []uint64 // bit set of the pages reached
}

func (v *verifier) read(off int64, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := v.f.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("read %d bytes at %d: %w", n, off, err)
	}
	return b, nil
}

// metaRoot returns the root page of the root bucket from the meta page of
// transaction txid.
func (v *verifier) metaRoot(txid uint64) (uint64, error) {
	for i := range 2 {
		p, err := v.read(int64(i*v.pageSize), pageHeaderSize+64)
		if err != nil {
			return 0, err
		}
		m := p[pageHeaderSize:]
		h := fnv.New64a()
		h.Write(m[:56])
		if ne.Uint32(m[0:]) != metaMagic || ne.Uint64(m[48:]) != txid || ne.Uint64(m[56:]) != h.Sum64() {
			continue
		}
		return ne.Uint64(m[16:]), nil
	}
	return 0, fmt.Errorf("no valid meta page for transaction %d", txid)
}

// mark records pages id..id+overflow as reached, failing on the second
// reference.
func (v *verifier) mark(id uint64, overflow uint32) error {
	for i := id; i <= id+uint64(overflow); i++ {
		w, bit := i/64, uint64(1)<<(i%64)
		if v.seen[w]&bit != 0 {
			return fmt.Errorf("page %d: reached twice", i)
		}
		v.seen[w] |= bit
	}
	return nil
}

// tree checks the subtree at page id, whose keys must lie in [lo, hi)
// (nil: unbounded).
func (v *verifier) tree(id uint64, lo, hi []byte, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("page %d: tree deeper than %d", id, maxDepth)
	}
	if id < 2 || id >= v.hwm {
		return fmt.Errorf("page %d: outside the %d pages in use", id, v.hwm)
	}
	p, err := v.read(int64(id)*int64(v.pageSize), v.pageSize)
	if err != nil {
		return err
	}
	overflow := ne.Uint32(p[12:])
	if got := ne.Uint64(p[0:]); got != id {
		return fmt.Errorf("page %d: says it is page %d", id, got)
	}
	if id+uint64(overflow) >= v.hwm {
		return fmt.Errorf("page %d: %d overflow pages run past the %d pages in use", id, overflow, v.hwm)
	}
	if err := v.mark(id, overflow); err != nil {
		return err
	}
	limit := (int(overflow) + 1) * v.pageSize
	if overflow > 0 {
		// Read only as far as the keys and bucket headers go: a large
		// value is not looked at.
		if p, err = v.readNeeded(int64(id)*int64(v.pageSize), p, limit); err != nil {
			return fmt.Errorf("page %d: %w", id, err)
		}
	}
	if err := v.page(p, limit, lo, hi, depth); err != nil {
		return fmt.Errorf("page %d: %w", id, err)
	}
	return nil
}

// readNeeded returns the start of a page with overflow pages (limit bytes
// in all), given its first page first: the element headers, and every key
// and bucket header they point at.
func (v *verifier) readNeeded(off int64, first []byte, limit int) ([]byte, error) {
	count := int(ne.Uint16(first[10:]))
	need := pageHeaderSize + count*elemSize
	if need > limit {
		return nil, fmt.Errorf("%d elements do not fit", count)
	}
	p := first
	if need > len(p) {
		var err error
		if p, err = v.read(off, need); err != nil {
			return nil, err
		}
	}
	leaf := ne.Uint16(p[8:]) == flagLeaf
	for i := range count {
		e := pageHeaderSize + i*elemSize
		var end uint64
		if leaf {
			flags, pos, ksize, vsize := ne.Uint32(p[e:]), ne.Uint32(p[e+4:]), ne.Uint32(p[e+8:]), ne.Uint32(p[e+12:])
			end = uint64(e) + uint64(pos) + uint64(ksize)
			if flags&leafBucket != 0 {
				end += uint64(vsize)
			}
		} else {
			end = uint64(e) + uint64(ne.Uint32(p[e:])) + uint64(ne.Uint32(p[e+4:]))
		}
		if end > uint64(limit) {
			return nil, fmt.Errorf("element %d: outside the page", i)
		}
		need = max(need, int(end))
	}
	if need <= len(p) {
		return p, nil
	}
	return v.read(off, need)
}

// page checks one branch or leaf page (or an inline bucket's page): p
// holds at least its element headers, keys and bucket headers, and limit
// is its size.
func (v *verifier) page(p []byte, limit int, lo, hi []byte, depth int) error {
	flags, count := ne.Uint16(p[8:]), int(ne.Uint16(p[10:]))
	if pageHeaderSize+count*elemSize > len(p) {
		return fmt.Errorf("%d elements do not fit", count)
	}
	var prev []byte
	for i := range count {
		e := pageHeaderSize + i*elemSize
		var key, val []byte
		var child uint64
		var leafFlags uint32
		switch flags {
		case flagBranch:
			pos, ksize := ne.Uint32(p[e:]), ne.Uint32(p[e+4:])
			child = ne.Uint64(p[e+8:])
			if uint64(e)+uint64(pos)+uint64(ksize) > uint64(len(p)) {
				return fmt.Errorf("element %d: key outside the page", i)
			}
			key = p[e+int(pos) : e+int(pos)+int(ksize)]
		case flagLeaf:
			leafFlags = ne.Uint32(p[e:])
			pos, ksize, vsize := ne.Uint32(p[e+4:]), ne.Uint32(p[e+8:]), ne.Uint32(p[e+12:])
			end := uint64(e) + uint64(pos) + uint64(ksize)
			if end+uint64(vsize) > uint64(limit) || end > uint64(len(p)) {
				return fmt.Errorf("element %d: key or value outside the page", i)
			}
			key = p[e+int(pos) : end]
			if leafFlags&leafBucket != 0 {
				if end+uint64(vsize) > uint64(len(p)) {
					return fmt.Errorf("element %d: bucket header outside the page", i)
				}
				val = p[end : end+uint64(vsize)]
			}
		default:
			return fmt.Errorf("type %#x: neither branch nor leaf", flags)
		}
		if len(key) == 0 {
			return fmt.Errorf("element %d: empty key", i)
		}
		if (prev != nil && bytes.Compare(prev, key) >= 0) || (lo != nil && bytes.Compare(key, lo) < 0) || (hi != nil && bytes.Compare(key, hi) >= 0) {
			return fmt.Errorf("element %d: key %x out of order", i, key)
		}
		prev = key
		if flags == flagBranch {
			next := hi
			if i+1 < count {
				e2 := e + elemSize
				pos, ksize := ne.Uint32(p[e2:]), ne.Uint32(p[e2+4:])
				if uint64(e2)+uint64(pos)+uint64(ksize) > uint64(len(p)) {
					return fmt.Errorf("element %d: key outside the page", i+1)
				}
				next = p[e2+int(pos) : e2+int(pos)+int(ksize)]
			}
			if err := v.tree(child, key, next, depth+1); err != nil {
				return err
			}
			continue
		}
		if leafFlags&leafBucket != 0 {
			if err := v.bucket(key, val, depth); err != nil {
				return err
			}
		}
	}
	return nil
}

// bucket checks the bucket stored in a leaf element: its own tree, or its
// inline page.
func (v *verifier) bucket(name, val []byte, depth int) error {
	if len(val) < 16 {
		return fmt.Errorf("bucket %q: header of %d bytes", name, len(val))
	}
	root := ne.Uint64(val)
	var err error
	if root == 0 {
		if len(val) < 16+pageHeaderSize {
			err = errors.New("inline page too short")
		} else if flags := ne.Uint16(val[16+8:]); flags != flagLeaf {
			err = fmt.Errorf("inline page of type %#x", flags)
		} else {
			err = v.page(val[16:], len(val)-16, nil, nil, depth+1)
		}
	} else {
		err = v.tree(root, nil, nil, depth+1)
	}
	if err != nil {
		return fmt.Errorf("bucket %q: %w", name, err)
	}
	return nil
}

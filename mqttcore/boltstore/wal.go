package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// The write-ahead log: two segment files beside the bbolt file, PATH.wal.0
// and PATH.wal.1. A group of Commit calls is one record, written at the
// end of the active segment with one fdatasync; its callers are told once
// that sync has returned. The bbolt file is brought up to date later, in
// one transaction per checkpoint, which records in core.meta "log" the
// index of the last record it holds; then the segment holding those
// records can be written over.
//
// Segment file (version 2):
//
//	header  16 bytes magic "gannet core log\n", uint32 BE version (2),
//	        uint32 reserved (0), uint64 BE store id (core.meta "logid";
//	        a log is never replayed into another store)
//	records from offset 32, each at an 8-byte-aligned offset:
//	        uint32 crc, uint32 payload length, uint64 index, uint32 crc of
//	        the previous record of this lap (0 for the first), uint32 0,
//	        payload, zero padding to 8 bytes
//
// crc is CRC-32C of everything in the record after it, seeded with the
// store id's two halves XORed (crcSeed). Indexes increase
// by one from record to record. A segment is preallocated with zeros and
// reused from its start (a new "lap") once its records are in the bbolt
// file, so what follows the last record is zeros or records of an earlier
// lap, whose indexes are lower and whose chain does not continue.
//
// Version 2 added the keyed ops (keyed.go) to the payloads; its records
// are otherwise those of version 1. A version 1 segment is read as it is
// and its header rewritten to version 2 when it is opened, so that a
// gannet that knows only version 1 refuses the log (ErrNewerFormat)
// instead of taking a keyed op for damage.
const (
	// LogVersion is the version of the log segment format this package
	// writes; a segment with a higher one is refused with ErrNewerFormat.
	LogVersion = 2

	logMagic      = "gannet core log\n"
	logHeaderSize = 32
	recHeaderSize = 24
	// logGrowMin and logGrowMax bound how much a segment grows at once:
	// zeros written and synced ahead of the records, so that a record's
	// fdatasync writes data only, not the file's size.
	logGrowMin = 64 << 10
	logGrowMax = 4 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrLogCorrupt is wrapped, with ErrCorrupt, by Open's error for a log
// segment that is damaged other than at its tail.
var ErrLogCorrupt = errors.New("write-ahead log is damaged")

const adviceLog = "restore the store from a backup (and delete its .wal.* files), or move the .wal.* files aside to start from the store file alone (the changes recorded only in the log are lost)"

// segment is one log file.
type segment struct {
	f     *os.File
	name  string
	size  int64  // the file's size: zeros past off
	off   int64  // where the next record goes
	prev  uint32 // crc of the last record of this lap
	index uint64 // index of the last record of this lap, 0 when none
	step  int64  // how much to grow by at least
	seed  uint32 // the records' CRC seed, from the store id
}

// crcSeed derives the records' CRC seed from the store id: a record
// written by someone who does not know the id (a message payload made to
// look like a record, left in a segment from an earlier pass) does not
// read as one.
func crcSeed(id uint64) uint32 { return uint32(id) ^ uint32(id>>32) }

func recordCRC(seed uint32, b []byte) uint32 { return crc32.Update(seed, crcTable, b) }

func segmentName(path string, i int) string { return fmt.Sprintf("%s.wal.%d", path, i) }

func logHeader(id uint64) []byte {
	b := make([]byte, logHeaderSize)
	copy(b, logMagic)
	binary.BigEndian.PutUint32(b[16:], LogVersion)
	binary.BigEndian.PutUint64(b[24:], id)
	return b
}

// logRecord is one record read back.
type logRecord struct {
	index   uint64
	payload []byte
}

// openSegment opens (creating) segment file name of store id and reads its
// records of the current lap; it grows by step at a time (bounded by
// logGrowMin and logGrowMax). A missing, empty or header-less file (a
// creation cut short) is given a fresh header. The segment's write
// position is left after its last record.
func openSegment(name string, id uint64, sync bool, step int64) (*segment, []logRecord, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("boltstore: open log %s: %w", name, err)
	}
	sg := &segment{f: f, name: name, step: step, seed: crcSeed(id)}
	recs, err := sg.load(id, sync)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return sg, recs, nil
}

func (sg *segment) load(id uint64, sync bool) ([]logRecord, error) {
	data, err := io.ReadAll(sg.f)
	if err != nil {
		return nil, fmt.Errorf("boltstore: read log %s: %w", sg.name, err)
	}
	sg.size = int64(len(data))
	if len(data) < logHeaderSize || bytes.Equal(data[:logHeaderSize], make([]byte, logHeaderSize)) {
		// New, or created and cut short before its header was synced.
		if _, err := sg.f.WriteAt(logHeader(id), 0); err != nil {
			return nil, fmt.Errorf("boltstore: write log %s: %w", sg.name, err)
		}
		sg.size = max(sg.size, logHeaderSize)
		if sync {
			if err := sg.f.Sync(); err != nil {
				return nil, fmt.Errorf("boltstore: sync log %s: %w", sg.name, err)
			}
			if err := syncDir(filepath.Dir(sg.name)); err != nil {
				return nil, err
			}
		}
		sg.off = logHeaderSize
		return nil, nil
	}
	if string(data[:16]) != logMagic {
		return nil, openError(sg.name, ErrForeign, fmt.Sprintf("magic %q, want %q", data[:16], logMagic), "check the store path, or move the file aside")
	}
	if v := binary.BigEndian.Uint32(data[16:]); v > LogVersion {
		return nil, openError(sg.name, ErrNewerFormat, fmt.Sprintf("log format version %d; this gannet reads up to %d", v, LogVersion), adviceNewer)
	} else if v < 1 {
		return nil, openError(sg.name, fmt.Errorf("%w: %w", ErrCorrupt, ErrLogCorrupt), fmt.Sprintf("log format version %d", v), adviceLog)
	}
	if got := binary.BigEndian.Uint64(data[24:]); got != id {
		return nil, openError(sg.name, fmt.Errorf("%w: %w", ErrCorrupt, ErrLogCorrupt),
			fmt.Sprintf("the log belongs to another store file (store id %016x, the store file's is %016x)", got, id), adviceLog)
	}
	if v := binary.BigEndian.Uint32(data[16:]); v < LogVersion {
		// Upgrade in place: its records read the same in this version.
		if _, err := sg.f.WriteAt(logHeader(id), 0); err != nil {
			return nil, fmt.Errorf("boltstore: upgrade log %s: %w", sg.name, err)
		}
		if sync {
			if err := fdatasync(sg.f); err != nil {
				return nil, fmt.Errorf("boltstore: upgrade log %s: %w", sg.name, err)
			}
		}
	}
	recs, end, err := readRecords(data, sg.seed)
	if err != nil {
		return nil, openError(sg.name, fmt.Errorf("%w: %w", ErrCorrupt, ErrLogCorrupt), err.Error(), adviceLog)
	}
	sg.off = end
	if n := len(recs); n > 0 {
		sg.index = recs[n-1].index
		sg.prev = binary.BigEndian.Uint32(data[recs[n-1].at:])
	}
	out := make([]logRecord, len(recs))
	for i, r := range recs {
		out[i] = logRecord{index: r.index, payload: r.payload}
	}
	return out, nil
}

type readRec struct {
	index   uint64
	at      int64
	payload []byte
}

// parseRecord checks the record at off on its own: its crc, and that it
// fits in data.
func parseRecord(data []byte, off int64, seed uint32) (r readRec, prev uint32, next int64, ok bool) {
	if off+recHeaderSize > int64(len(data)) {
		return r, 0, 0, false
	}
	h := data[off:]
	crc, n := binary.BigEndian.Uint32(h), int64(binary.BigEndian.Uint32(h[4:]))
	end := off + recHeaderSize + n
	if end > int64(len(data)) || binary.BigEndian.Uint32(h[20:]) != 0 {
		return r, 0, 0, false
	}
	if recordCRC(seed, data[off+4:end]) != crc {
		return r, 0, 0, false
	}
	r = readRec{index: binary.BigEndian.Uint64(h[8:]), at: off, payload: data[off+recHeaderSize : end]}
	return r, binary.BigEndian.Uint32(h[16:]), align8(end), true
}

func align8(n int64) int64 { return (n + 7) &^ 7 }

// readRecords reads the current lap of a segment: records from the header
// on while each is intact, chained to the one before (its previous-crc
// field) and numbered one above it. The lap ends at zeros, at a record of
// an earlier lap, or at a torn record: the last write, cut by a crash,
// which was never acknowledged and is dropped. A damaged record that is
// followed by a record of this lap (an intact record numbered above it)
// is not a torn write but damage, and an error.
func readRecords(data []byte, seed uint32) (recs []readRec, end int64, err error) {
	off := int64(logHeaderSize)
	var prevCRC uint32
	for {
		r, prev, next, ok := parseRecord(data, off, seed)
		if ok && prev == prevCRC && (len(recs) == 0 || r.index == recs[len(recs)-1].index+1) && r.index != 0 {
			recs = append(recs, r)
			prevCRC = binary.BigEndian.Uint32(data[off:])
			off = next
			continue
		}
		if ok || isZero(data[off:min(off+recHeaderSize, int64(len(data)))]) {
			// Zeros, or an intact record of an earlier lap: the end.
			return recs, off, nil
		}
		// Not intact: the torn tail, unless a later record of this lap
		// shows that writing went on after it.
		if len(recs) > 0 {
			want := recs[len(recs)-1].index + 1
			for o := off + 8; o+recHeaderSize <= int64(len(data)); o += 8 {
				if r, _, _, ok := parseRecord(data, o, seed); ok && r.index > want && r.index-want < 1<<20 {
					return nil, 0, fmt.Errorf("record %d at offset %d does not read back (bad checksum or length), but record %d follows it at offset %d", want, off, r.index, o)
				}
			}
		}
		return recs, off, nil
	}
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// appendRecord writes a record of payload p with index idx at the
// segment's write position, growing the file first when needed (zeros,
// synced unless sync is false, so that a full disk fails here, before the
// record is written, and the record's own fdatasync has no size change to
// write). buf is scratch space; the grown buffer is returned.
func (sg *segment) appendRecord(buf []byte, idx uint64, p []byte, sync bool) ([]byte, error) {
	n := int64(recHeaderSize + len(p))
	total := align8(n)
	if sg.off+total > sg.size {
		if err := sg.grow(sg.off+total, sync); err != nil {
			return buf, err
		}
	}
	buf = append(buf[:0], make([]byte, recHeaderSize)...)
	binary.BigEndian.PutUint32(buf[4:], uint32(len(p)))
	binary.BigEndian.PutUint64(buf[8:], idx)
	binary.BigEndian.PutUint32(buf[16:], sg.prev)
	buf = append(buf, p...)
	crc := recordCRC(sg.seed, buf[4:])
	binary.BigEndian.PutUint32(buf, crc)
	for int64(len(buf)) < total {
		buf = append(buf, 0)
	}
	if _, err := sg.f.WriteAt(buf, sg.off); err != nil {
		return buf, fmt.Errorf("write log %s: %w", sg.name, err)
	}
	sg.off += total
	sg.prev = crc
	sg.index = idx
	return buf, nil
}

// grow extends the segment with zeros to at least need bytes: by its
// size again (at least logGrowMin) up to its step, or, when that does not
// fit on the disk, by only what need asks.
func (sg *segment) grow(need int64, sync bool) error {
	roundUp := func(n int64) int64 { return (n + logGrowMin - 1) / logGrowMin * logGrowMin }
	step := min(max(sg.size, logGrowMin), max(sg.step, logGrowMin), logGrowMax)
	size := roundUp(max(need, sg.size+step))
	err := sg.growTo(size, sync)
	if err != nil && roundUp(need) < size {
		err = sg.growTo(roundUp(need), sync)
	}
	return err
}

func (sg *segment) growTo(size int64, sync bool) error {
	zeros := make([]byte, min(size-sg.size, 64<<10))
	for at := sg.size; at < size; {
		k := min(int64(len(zeros)), size-at)
		if _, err := sg.f.WriteAt(zeros[:k], at); err != nil {
			// Leave the file as it was: a half-grown tail is only zeros,
			// but it would be counted as preallocated.
			_ = sg.f.Truncate(sg.size)
			return fmt.Errorf("grow log %s to %d bytes: %w", sg.name, size, err)
		}
		at += k
	}
	if sync {
		if err := fdatasync(sg.f); err != nil {
			_ = sg.f.Truncate(sg.size)
			return fmt.Errorf("grow log %s to %d bytes: %w", sg.name, size, err)
		}
	}
	sg.size = size
	return nil
}

// rewind starts a new lap: the segment's records are all in the bbolt
// file, so the next record goes at its start.
func (sg *segment) rewind() {
	sg.off = logHeaderSize
	sg.prev = 0
	sg.index = 0
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("boltstore: sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("boltstore: sync directory %s: %w", dir, err)
	}
	return nil
}

// replayable merges the records of both segments that the bbolt file does
// not hold yet (index above applied) into one run in index order, and
// checks that it continues the file: applied+1, applied+2, ...
func replayable(applied uint64, segs ...[]logRecord) ([]logRecord, error) {
	var out []logRecord
	for _, recs := range segs {
		for _, r := range recs {
			if r.index > applied {
				out = append(out, r)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].index < out[j].index })
	want := applied + 1
	for _, r := range out {
		if r.index != want {
			return nil, fmt.Errorf("the store file holds the log up to record %d, but the next record in the log is %d: records are missing", want-1, r.index)
		}
		want++
	}
	return out, nil
}

package benchfleet

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// HeaderLen is the size of the stamp at the start of every benchmark
// payload, and so the smallest payload size.
const HeaderLen = 24

// magic marks a benchmark payload ("gnb1"), so stray messages on the same
// topics are counted as foreign instead of corrupting the statistics.
const magic = 0x676e6231

// ErrNotStamped is returned by ParseStamp for a payload that does not carry a
// benchmark stamp.
var ErrNotStamped = errors.New("benchfleet: payload carries no benchmark stamp")

// Stamp writes the benchmark header into b: the source index (the sending
// sensor, or the receiving one in fanout), the sequence number and the send
// time in Unix nanoseconds. b must be at least HeaderLen octets; the rest of b
// is left alone. Stamp allocates nothing.
func Stamp(b []byte, src uint32, seq uint64, sentUnixNano int64) {
	_ = b[HeaderLen-1]
	binary.BigEndian.PutUint32(b[0:4], magic)
	binary.BigEndian.PutUint32(b[4:8], src)
	binary.BigEndian.PutUint64(b[8:16], seq)
	binary.BigEndian.PutUint64(b[16:24], uint64(sentUnixNano))
}

// ParseStamp reads the header Stamp wrote.
func ParseStamp(b []byte) (src uint32, seq uint64, sentUnixNano int64, err error) {
	if len(b) < HeaderLen {
		return 0, 0, 0, fmt.Errorf("parse stamp: %d octets, want at least %d: %w", len(b), HeaderLen, ErrNotStamped)
	}
	if binary.BigEndian.Uint32(b[0:4]) != magic {
		return 0, 0, 0, fmt.Errorf("parse stamp: bad magic %x: %w", b[0:4], ErrNotStamped)
	}
	return binary.BigEndian.Uint32(b[4:8]), binary.BigEndian.Uint64(b[8:16]), int64(binary.BigEndian.Uint64(b[16:24])), nil
}

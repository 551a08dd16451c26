package benchfleet

import (
	"errors"
	"testing"
)

func TestStampRoundTrip(t *testing.T) {
	cases := []struct {
		src  uint32
		seq  uint64
		sent int64
		size int
	}{
		{0, 0, 0, HeaderLen},
		{1, 2, 1700000000123456789, 64},
		{1<<32 - 1, 1<<64 - 1, -1, 1000},
	}
	for _, tc := range cases {
		b := make([]byte, tc.size)
		for i := range b {
			b[i] = 0xAA
		}
		Stamp(b, tc.src, tc.seq, tc.sent)
		src, seq, sent, err := ParseStamp(b)
		if err != nil || src != tc.src || seq != tc.seq || sent != tc.sent {
			t.Errorf("ParseStamp(Stamp(%d, %d, %d)) = %d, %d, %d, %v; want the same values, nil",
				tc.src, tc.seq, tc.sent, src, seq, sent, err)
		}
		for i := HeaderLen; i < len(b); i++ {
			if b[i] != 0xAA {
				t.Fatalf("Stamp changed octet %d past the header", i)
			}
		}
	}
}

func TestParseStampRejects(t *testing.T) {
	good := make([]byte, HeaderLen)
	Stamp(good, 1, 2, 3)
	bad := append([]byte(nil), good...)
	bad[0] ^= 0xFF
	cases := map[string][]byte{
		"empty":     nil,
		"truncated": good[:HeaderLen-1],
		"bad magic": bad,
		"text":      []byte("hello, this is not a benchmark payload"),
	}
	for name, b := range cases {
		if _, _, _, err := ParseStamp(b); !errors.Is(err, ErrNotStamped) {
			t.Errorf("%s: ParseStamp(%x) error = %v; want ErrNotStamped", name, b, err)
		}
	}
}

func TestStampDoesNotAllocate(t *testing.T) {
	b := make([]byte, 64)
	if n := testing.AllocsPerRun(1000, func() { Stamp(b, 7, 8, 9) }); n != 0 {
		t.Errorf("Stamp allocates %v times per call; want 0", n)
	}
}

func BenchmarkStamp(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 64)
	for i := uint64(0); b.Loop(); i++ {
		Stamp(buf, 1, i, int64(i))
	}
}

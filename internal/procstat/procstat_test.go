package procstat

import (
	"os"
	"testing"
	"time"
)

func TestParseVmRSS(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    uint64
		wantErr bool
	}{
		{"typical", "Name:\tgannet\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t5\n", 1234 * 1024, false},
		{"no rss", "Name:\tkworker\nThreads:\t1\n", 0, true},
		{"bad unit", "VmRSS:\t1234 MB\n", 0, true},
		{"bad number", "VmRSS:\tlots kB\n", 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseVmRSS([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseVmRSS(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestParseStatCPU(t *testing.T) {
	tail := " S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0 1 0"
	cases := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"plain", "42 (gannet)" + tail, 4 * time.Second, false},
		{"name with spaces and parens", "42 (a) b (c)" + tail, 4 * time.Second, false},
		{"no paren", "42 gannet S 1 2", 0, true},
		{"short", "42 (gannet) S 1 2 3", 0, true},
		{"bad number", "42 (gannet) S 1 2 3 4 5 6 7 8 9 10 x 150 0", 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tc.in))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("parseStatCPU(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestReadOwnProcess(t *testing.T) {
	rss, err := ReadRSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Errorf("ReadRSS(self) = %d, %v; want at least 1 MiB, nil", rss, err)
	}
	if _, err := ReadCPU(os.Getpid()); err != nil {
		t.Errorf("ReadCPU(self) = %v", err)
	}
	if _, err := ReadRSS(-1); err == nil {
		t.Error("ReadRSS(-1) = nil error; want one")
	}
}

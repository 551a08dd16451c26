package gateway_test

import (
	"syscall"
	"testing"
	"time"
)

// cpuMeter reports, besides ns/op (wall time), the process's CPU time per
// operation (user + system, every goroutine: sensor, gateway and core) as
// cpu-ns/op. On a shared, loaded machine wall time mostly measures the
// neighbours; CPU time per message is what the gateway costs, and is what
// docs/performance.md compares between versions.
type cpuMeter struct {
	b     *testing.B
	start time.Duration
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// startCPU starts measuring; call it where the timed loop begins.
func startCPU(b *testing.B) *cpuMeter { return &cpuMeter{b: b, start: processCPU()} }

// stop reports cpu-ns/op for the b.N operations since startCPU.
func (m *cpuMeter) stop() {
	if m.b.N > 0 {
		m.b.ReportMetric(float64(processCPU()-m.start)/float64(m.b.N), "cpu-ns/op")
	}
}

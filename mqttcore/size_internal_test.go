package mqttcore

import (
	"testing"
	"unsafe"
)

// TestSessionSize keeps a session in the 320-byte size class: every
// sleeping sensor is one (DEVELOPERS.md: under 1 KiB in all).
func TestSessionSize(t *testing.T) {
	const budget = 320
	if n := unsafe.Sizeof(Session{}); n > budget {
		t.Errorf("sizeof(Session) = %d bytes; budget %d", n, budget)
	}
}

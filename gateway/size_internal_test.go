package gateway

import (
	"testing"
	"unsafe"
)

// TestClientSize keeps the gateway's share of a sleeping sensor small: the
// budget for a whole sleeping session is 1 KiB, and the core takes most.
func TestClientSize(t *testing.T) {
	const budget = 224
	if n := unsafe.Sizeof(client{}); n > budget {
		t.Errorf("sizeof(client) = %d bytes; budget %d", n, budget)
	} else {
		t.Logf("sizeof(client) = %d bytes", n)
	}
}

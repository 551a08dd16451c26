//go:build !linux

package radio

import (
	"net/netip"
	"syscall"
)

// batchSupported says whether recvmmsg batching is available here.
const batchSupported = false

type recvBatch struct{}

func newRecvBatch(int, int, *udpStats) *recvBatch { return nil }

func (r *recvBatch) read(syscall.RawConn, []byte) (int, netip.AddrPort, error) {
	panic("radio: batching is not supported on this platform")
}

// socketBuffers is not implemented here: the effective sizes read as 0.
func socketBuffers(syscall.RawConn) (r, w int) { return 0, 0 }

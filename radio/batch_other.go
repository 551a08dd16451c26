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

// sendBatch is never made here (batching is off); it only compiles.
type sendBatch struct {
	hdrs    []struct{}
	n, sent int
	errno   error
	fn      func(fd uintptr) bool
}

func newSendBatch(int, bool) *sendBatch { return nil }

func (s *sendBatch) put(int, []byte, netip.AddrPort) bool { return false }

func (s *sendBatch) clear() {}

func socketInet6(syscall.RawConn) bool { return false }

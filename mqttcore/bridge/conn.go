package bridge

import (
	"bufio"
	"math"
	"net"
	"sync"
)

// bufConn is the bridge's connection as paho sees it: buffered reads and
// writes, and a fast path for PUBACKs.
//
// Writes: its lock serialises them. paho takes it around each packet,
// which it writes in pieces (it looks for a sync.Locker), the sender around
// each batch; what was written under the lock goes out in one write when
// it is released.
//
// Reads: paho reads each packet into a fresh bytes.Buffer grown by 512
// bytes and decodes it into several structs (about 1.5 KB and a dozen
// allocations for a 4-byte PUBACK: the most the bridge allocated per
// message). The remote's PUBACKs are all for the sender's PUBLISHes (paho
// publishes nothing), so Read takes them out of the stream and hands
// their packet id and reason code to onPuback (the outbox) straight from
// the read buffer; every other packet passes through to paho unchanged.
// Only paho's reader goroutine calls Read.
type bufConn struct {
	net.Conn
	mu     sync.Mutex
	locked bool // under mu
	r      *bufio.Reader
	w      *bufio.Writer

	onPuback func(id uint16, reasonCode byte)
	pass     int // bytes of the current packet still to pass through to paho
}

// readBuf is the read buffer's size; a PUBACK larger than it (a long
// reason string) goes through paho.
const readBuf = 16 << 10

func newBufConn(c net.Conn, onPuback func(id uint16, reasonCode byte)) *bufConn {
	return &bufConn{Conn: c, r: bufio.NewReaderSize(c, readBuf), w: bufio.NewWriterSize(c, 4<<10), onPuback: onPuback}
}

// Read passes packets other than PUBACK through to paho, at most to the end
// of the current packet.
func (c *bufConn) Read(p []byte) (int, error) {
	for c.pass == 0 {
		hdr, rl, err := c.header()
		if err != nil {
			return 0, err
		}
		if rl < 0 { // a malformed length: from here on everything goes to paho, which fails on it
			c.pass = math.MaxInt
			break
		}
		total := 1 + vbiLen(rl) + rl
		if hdr != 0x40 || c.onPuback == nil || rl < 2 || total > readBuf {
			c.pass = total
			break
		}
		b, err := c.r.Peek(total)
		if err != nil {
			return 0, err
		}
		o := total - rl
		id := uint16(b[o])<<8 | uint16(b[o+1])
		rc := byte(0)
		if rl > 2 {
			rc = b[o+2]
		}
		_, _ = c.r.Discard(total)
		c.onPuback(id, rc) // then on to the next packet (blocking for it, as a Read does)
	}
	n, err := c.r.Read(p[:min(len(p), c.pass)])
	c.pass -= n
	return n, err
}

// header peeks at the next packet's first byte and remaining length (-1
// if that is malformed).
func (c *bufConn) header() (hdr byte, rl int, err error) {
	for i := 1; i <= 4; i++ {
		b, err := c.r.Peek(1 + i)
		if err != nil {
			return 0, 0, err
		}
		hdr = b[0]
		rl = 0
		for j, shift := 1, 0; j <= i; j, shift = j+1, shift+7 {
			rl |= int(b[j]&0x7F) << shift
		}
		if b[i]&0x80 == 0 {
			return hdr, rl, nil
		}
	}
	return hdr, -1, nil
}

// vbiLen is the length of rl's variable byte integer encoding.
func vbiLen(rl int) int {
	n := 1
	for ; rl > 127; rl >>= 7 {
		n++
	}
	return n
}

// Lock starts a packet or a batch.
func (c *bufConn) Lock() {
	c.mu.Lock()
	c.locked = true
}

// Unlock writes out what was written since Lock. A write error shows up
// on the connection's next read (paho's reader then drops it).
func (c *bufConn) Unlock() {
	_ = c.w.Flush()
	c.locked = false
	c.mu.Unlock()
}

// Write buffers under the lock (paho and the sender always take it); a
// write without it goes straight out.
func (c *bufConn) Write(p []byte) (int, error) {
	if c.locked {
		return c.w.Write(p)
	}
	return c.Conn.Write(p)
}

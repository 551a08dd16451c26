package listener

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"
)

// A server-side close with a reason (a DISCONNECT, or a CONNACK that
// refuses) must reach the client. Closing a socket that still has unread
// input makes the kernel send a TCP reset instead of a FIN, and a reset
// can destroy the DISCONNECT before the client has read it: the client
// then sees "connection reset by peer" and never learns the reason. So the
// server sends the packet, shuts down its write side (the client reads
// the packet and then end of stream), reads and discards whatever the
// client still sends until it closes or CloseDrainTimeout passes, and only
// then closes.

// closeGracefully shuts down the write side (unless the writer already
// did, see startLinger) and drains input until the client closes or the
// drain deadline passes. It runs on the reader goroutine once the writer has
// exited, before release closes the connection.
func (c *client) closeGracefully() {
	until := c.lingerUntil.Load()
	if until == 0 {
		if err := closeWrite(c.nc); err != nil {
			return // nothing written can be saved; release closes
		}
		until = time.Now().Add(c.srv.conf().CloseDrainTimeout).UnixNano()
	}
	_ = c.nc.SetReadDeadline(time.Unix(0, until))
	_, _ = io.Copy(io.Discard, c.nc)
}

// startLinger is the writer's half of a graceful close after it sent the
// core's closing DISCONNECT: shut down the write side and bound the
// reader, which ends on the next packet (the core has detached the Conn)
// or at the deadline and then drains until it. It reports false, having
// closed the connection, when the write side cannot be shut down.
func (c *client) startLinger() bool {
	if err := closeWrite(c.nc); err != nil {
		_ = c.nc.Close()
		return false
	}
	until := time.Now().Add(c.srv.conf().CloseDrainTimeout)
	c.lingerUntil.Store(until.UnixNano())
	_ = c.nc.SetReadDeadline(until)
	return true
}

// closeWrite shuts down the write side of a TCP, TLS or WebSocket
// connection: TLS sends close_notify and then shuts down TCP; WebSocket
// sends a close frame and then shuts down TCP.
func closeWrite(nc net.Conn) error {
	switch c := nc.(type) {
	case *tls.Conn:
		err := c.CloseWrite()
		if cw, ok := c.NetConn().(closeWriter); ok {
			err = errors.Join(err, cw.CloseWrite())
		}
		return err
	case closeWriter:
		return c.CloseWrite()
	default:
		return errors.ErrUnsupported
	}
}

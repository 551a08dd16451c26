package listener

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// WebSocket library: gorilla/websocket, the one the bridge and autopaho
// already use (autopaho links it into every binary that dials ws://), so
// the binary carries one WebSocket implementation. Its Conn keeps net.Conn
// deadline semantics (a read deadline that fires leaves the connection
// usable for the DISCONNECT that follows a keep-alive timeout) and starts no
// goroutine of its own.

// wsCloseWait bounds the write of a WebSocket close frame.
const wsCloseWait = time.Second

// handleWebSocket upgrades one HTTP request and serves MQTT on it. The
// handler's goroutine (started by net/http) becomes the connection's
// reader; it is counted in s.wg so Close waits for it.
func (s *Server) handleWebSocket(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "server closing", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	up := websocket.Upgrader{
		HandshakeTimeout: s.conf().ConnectTimeout,
		Subprotocols:     []string{WebSocketSubprotocol},
		CheckOrigin:      originChecker(s.conf().WebSocket.OriginPatterns),
	}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		// Upgrade has answered with an HTTP error.
		s.warnf("mqtt websocket upgrade refused", "remote", r.RemoteAddr, "err", err)
		return
	}
	if ws.Subprotocol() != WebSocketSubprotocol {
		// [MQTT-6.0.0-3]: the client must offer "mqtt".
		s.stats.accepted.Add(1)
		s.stats.protocol.Add(1)
		s.warnf("mqtt websocket without the mqtt subprotocol", "remote", r.RemoteAddr)
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "subprotocol mqtt required"), time.Now().Add(wsCloseWait))
		_ = ws.Close()
		return
	}
	ws.SetReadLimit(int64(s.conf().MaxPacketSize) + 16)
	nc := &wsConn{ws: ws, remote: wsAddr(r.RemoteAddr)}
	if !s.admit(nc) {
		return
	}
	s.serveConn(nc)
}

// originChecker returns the Upgrader's origin check: a request without an
// Origin header, a same-origin request, or an origin whose host (or
// scheme://host, for a pattern with "://") matches one of patterns
// (path.Match syntax, case-insensitive) is allowed.
func originChecker(patterns []string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		if origin == "" {
			return true
		}
		u, err := url.Parse(origin)
		if err != nil {
			return false
		}
		if strings.EqualFold(u.Host, r.Host) {
			return true
		}
		for _, p := range patterns {
			target := u.Host
			if strings.Contains(p, "://") {
				target = u.Scheme + "://" + u.Host
			}
			if ok, err := path.Match(strings.ToLower(p), strings.ToLower(target)); err == nil && ok {
				return true
			}
		}
		return false
	}
}

// wsConn is a WebSocket connection as a net.Conn: MQTT in binary messages
// [MQTT-6.0.0-1], a packet free to span messages [MQTT-6.0.0-2]. One
// goroutine reads and one writes at a time, as gorilla/websocket requires;
// Close may be called from any goroutine.
type wsConn struct {
	ws     *websocket.Conn
	remote wsAddr
	r      io.Reader // the current message, nil between messages

	// writeDeadline (unix ns, 0 for none) is applied by Write: gorilla's
	// SetWriteDeadline is a plain field write that its writes read, while
	// the listener sets deadlines from other goroutines than the writer.
	writeDeadline atomic.Int64
}

// Read reads from the current binary message, moving to the next one when
// it is used up. A close frame with a normal or going-away status reads as
// io.EOF, a read deadline that passed as os.ErrDeadlineExceeded; a text
// message closes the connection with status 1003.
func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			mt, r, err := c.ws.NextReader()
			if err != nil {
				if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
					return 0, io.EOF
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					// gorilla replaces the network's timeout error with
					// its own, which does not wrap os.ErrDeadlineExceeded;
					// the keep-alive check looks for that.
					return 0, fmt.Errorf("websocket read: %w: %w", err, os.ErrDeadlineExceeded)
				}
				return 0, err
			}
			if mt != websocket.BinaryMessage {
				_ = c.ws.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.CloseUnsupportedData, "mqtt needs binary messages"), time.Now().Add(wsCloseWait))
				return 0, errors.New("websocket: text message (MQTT needs binary messages)")
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

// Write sends p as one binary message within the write deadline.
func (c *wsConn) Write(p []byte) (int, error) {
	var dl time.Time
	if ns := c.writeDeadline.Load(); ns != 0 {
		dl = time.Unix(0, ns)
	}
	_ = c.ws.SetWriteDeadline(dl) // only the writing goroutine touches gorilla's field
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, fmt.Errorf("websocket write: %w", err)
	}
	return len(p), nil
}

// CloseWrite sends a normal-closure close frame and shuts down the
// underlying connection's write side, so the peer reads everything sent
// before and then the end of the stream.
func (c *wsConn) CloseWrite() error {
	err := c.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(wsCloseWait))
	if cw, ok := c.ws.NetConn().(closeWriter); ok {
		err = errors.Join(err, cw.CloseWrite())
	}
	return err
}

// Close sends a normal-closure close frame (bounded by wsCloseWait) and
// closes the connection.
func (c *wsConn) Close() error {
	_ = c.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(wsCloseWait))
	return c.ws.Close()
}

// LocalAddr returns the listener's address.
func (c *wsConn) LocalAddr() net.Addr { return c.ws.LocalAddr() }

// RemoteAddr returns the HTTP client's address.
func (c *wsConn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines.
func (c *wsConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

// SetReadDeadline sets the read deadline (gorilla passes it to the
// network connection, which allows any goroutine to set it).
func (c *wsConn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline from any goroutine: for the
// next Write, and at once on the network connection so that a write in
// progress is bounded by it too.
func (c *wsConn) SetWriteDeadline(t time.Time) error {
	var ns int64
	if !t.IsZero() {
		ns = t.UnixNano()
	}
	c.writeDeadline.Store(ns)
	return c.ws.NetConn().SetWriteDeadline(t)
}

// closeWriter is a connection whose write side can be shut down on its own
// (*net.TCPConn, *tls.Conn, wsConn).
type closeWriter interface {
	CloseWrite() error
}

// wsAddr is a WebSocket peer address.
type wsAddr string

// Network returns "websocket".
func (wsAddr) Network() string { return "websocket" }

// String returns the peer's host:port.
func (a wsAddr) String() string { return string(a) }

package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/gorilla/websocket"
)

// errNotMQTT5 marks a remote broker that answered our MQTT 5 CONNECT with
// an MQTT 3.1.x CONNACK (a refusal: it does not speak MQTT 5).
var errNotMQTT5 = errors.New("remote broker does not speak MQTT 5")

// dial is autopaho's AttemptConnection: it opens the TCP, TLS or WebSocket
// connection to u and wraps it so that an MQTT 3.1.x CONNACK is reported
// as errNotMQTT5 rather than as a garbled MQTT 5 packet.
func (b *Bridge) dial(ctx context.Context, cfg autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
	s := u.String()
	b.lastURL.Store(&s)
	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	var (
		c   net.Conn
		err error
	)
	switch strings.ToLower(u.Scheme) {
	case "mqtt", "tcp":
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", u.Host)
	case "mqtts", "tls", "ssl":
		d := tls.Dialer{Config: cfg.TlsCfg}
		c, err = d.DialContext(ctx, "tcp", u.Host)
	case "ws", "wss":
		d := *websocket.DefaultDialer
		d.TLSClientConfig = cfg.TlsCfg
		d.Subprotocols = []string{"mqtt"}
		var ws *websocket.Conn
		ws, _, err = d.DialContext(ctx, u.String(), nil)
		if err == nil {
			c = &wsConn{Conn: ws}
		}
	default:
		err = fmt.Errorf("unsupported scheme %q", u.Scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("bridge: dial %s: %w", s, err)
	}
	return &sniffConn{Conn: c, Locker: new(sync.Mutex)}, nil
}

// sniffConn checks the first packet from the server: an MQTT 3.1.x
// CONNACK (remaining length 2; an MQTT 5 CONNACK is at least 3) becomes
// errNotMQTT5. The Locker makes paho serialise its writes.
type sniffConn struct {
	net.Conn
	sync.Locker
	checked bool
	pending []byte
}

// connack311 names the MQTT 3.1.1 CONNACK return codes.
var connack311 = [...]string{
	1: "unacceptable protocol version", 2: "identifier rejected", 3: "server unavailable",
	4: "bad user name or password", 5: "not authorized",
}

func (c *sniffConn) Read(p []byte) (int, error) {
	if !c.checked {
		var hdr [4]byte
		if _, err := io.ReadFull(c.Conn, hdr[:2]); err != nil {
			return 0, err
		}
		c.checked = true
		if hdr[0] == 0x20 && hdr[1] == 2 {
			if _, err := io.ReadFull(c.Conn, hdr[2:4]); err != nil {
				return 0, err
			}
			rc := int(hdr[3])
			what := "unknown"
			if rc > 0 && rc < len(connack311) {
				what = connack311[rc]
			}
			return 0, fmt.Errorf("%w: it answered with an MQTT 3.1.1 CONNACK, return code %d (%s)", errNotMQTT5, rc, what)
		}
		c.pending = append(c.pending, hdr[:2]...)
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// wsConn is a WebSocket connection as a net.Conn carrying MQTT in binary
// messages.
type wsConn struct {
	*websocket.Conn
	r io.Reader
}

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			_, r, err := c.NextReader()
			if err != nil {
				return 0, err
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

func (c *wsConn) Write(p []byte) (int, error) {
	if err := c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

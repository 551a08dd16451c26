package listener

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore/auth"
	"github.com/gannet-mqtt/gannet/mqttcore/listener/internal/framing"
)

// Defaults for zero fields of Config.
const (
	// DefaultAddress is where the MQTT listener listens: localhost only, so
	// the default of anonymous access without an ACL is safe.
	DefaultAddress = "127.0.0.1:1883"
	// DefaultTLSAddress is where the TLS listener listens when TLS is
	// configured.
	DefaultTLSAddress = "127.0.0.1:8883"
	// DefaultWebSocketPath is the HTTP path of the WebSocket listener.
	DefaultWebSocketPath = "/mqtt"
	// DefaultConnectTimeout bounds the time from accepting a connection to
	// receiving its CONNECT (TLS and WebSocket handshakes included).
	DefaultConnectTimeout = 10 * time.Second
	// DefaultWriteTimeout bounds one write to a client; a client that
	// reads nothing for that long is disconnected.
	DefaultWriteTimeout = 30 * time.Second
	// DefaultMaxConnections bounds simultaneous connections over all
	// listeners of a Server.
	DefaultMaxConnections = 1000
	// DefaultTopicAliasMaximum is the number of MQTT 5 topic aliases a
	// client may use when publishing.
	DefaultTopicAliasMaximum = 16
	// DefaultOutboundTopicAliasMaximum bounds the topic aliases the server
	// uses towards an MQTT 5 client (never more than the client's Topic
	// Alias Maximum).
	DefaultOutboundTopicAliasMaximum = 16
	// DefaultCloseDrainTimeout bounds how long the server reads and
	// discards a client's input after it sent a closing DISCONNECT or
	// refusing CONNACK and shut down its side of the connection.
	DefaultCloseDrainTimeout = time.Second
	// MaxServerKeepAlive is the largest server_keep_alive MQTT can express.
	MaxServerKeepAlive = 65535 * time.Second
	// DefaultMaxPacketSize is the maximum packet size when Config leaves it
	// zero: 1 MiB.
	DefaultMaxPacketSize = framing.DefaultMaxPacketSize
	// WebSocketSubprotocol is the WebSocket subprotocol MQTT requires
	// [MQTT-6.0.0-3].
	WebSocketSubprotocol = "mqtt"
)

// Config configures a Server: the [mqtt] table of config.toml. Its zero value means the defaults: a
// plain TCP listener on 127.0.0.1:1883, no TLS, no WebSocket, anonymous
// access without an ACL. Validate rejects bad values and never adjusts them.
type Config struct {
	// Address is the host:port of the plain TCP listener. Empty means
	// DefaultAddress; "-" means no plain TCP listener (TLS or WebSocket
	// only).
	Address string `toml:"address"`
	// MaxPacketSize is the largest packet, in bytes including the fixed
	// header, accepted from a client, and the Maximum Packet Size announced
	// to MQTT 5 clients. A larger packet is refused before any of its body
	// is read. Zero means DefaultMaxPacketSize.
	MaxPacketSize int `toml:"max_packet_size"`
	// ConnectTimeout bounds the time from accept to a complete CONNECT.
	// Zero means DefaultConnectTimeout.
	ConnectTimeout time.Duration `toml:"connect_timeout"`
	// WriteTimeout bounds each write to a client. Zero means
	// DefaultWriteTimeout.
	WriteTimeout time.Duration `toml:"write_timeout"`
	// MaxConnections bounds simultaneous connections; a connection beyond
	// it is closed at once and counted. Zero means DefaultMaxConnections.
	MaxConnections int `toml:"max_connections"`
	// TopicAliasMaximum is the Topic Alias Maximum announced to MQTT 5
	// clients, 1..65535. Zero means DefaultTopicAliasMaximum.
	TopicAliasMaximum int `toml:"topic_alias_maximum"`
	// OutboundTopicAliasMaximum bounds the topic aliases the server uses
	// when delivering to an MQTT 5 client that allows them (its Topic Alias
	// Maximum), 1..65535; -1 turns outbound aliases off. Zero means
	// DefaultOutboundTopicAliasMaximum.
	OutboundTopicAliasMaximum int `toml:"outbound_topic_alias_maximum"`
	// ServerKeepAlive caps the keep alive of clients, in whole seconds up to
	// MaxServerKeepAlive. An MQTT 5 client asking for more (or for none) is
	// told this value in CONNACK (Server Keep Alive) and held to it; an
	// MQTT 3.1 or 3.1.1 client, which cannot be told, is refused with
	// CONNACK 0x02 (identifier rejected), as Mosquitto's max_keepalive
	// does. Zero means no cap: the client's value applies.
	ServerKeepAlive time.Duration `toml:"server_keep_alive"`
	// CloseDrainTimeout bounds how long the server keeps reading and
	// discarding a client's input after sending a closing DISCONNECT (or a
	// refusing CONNACK) and shutting down its write side, so the client
	// reads the reason before the connection closes instead of a TCP reset.
	// Zero means DefaultCloseDrainTimeout.
	CloseDrainTimeout time.Duration `toml:"close_drain_timeout"`
	// TLS configures the optional TLS listener.
	TLS TLSConfig `toml:"tls"`
	// WebSocket configures the optional WebSocket listener.
	WebSocket WebSocketConfig `toml:"websocket"`
	// Auth configures passwords, anonymous access and the ACL. It is used
	// when NewServer is given no Authenticator.
	Auth auth.Config `toml:"auth"`
}

// TLSConfig configures the TLS listener. It is enabled when CertFile is set.
type TLSConfig struct {
	// Address is the host:port of the TLS listener. Empty means
	// DefaultTLSAddress.
	Address string `toml:"address"`
	// CertFile and KeyFile are PEM files with the server's certificate
	// chain and private key. Both or neither.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// ClientCAFile, when set, is a PEM file of CAs; clients must then
	// present a certificate signed by one of them.
	ClientCAFile string `toml:"client_ca_file"`
}

// Enabled reports whether a TLS listener is configured.
func (c TLSConfig) Enabled() bool { return c.CertFile != "" }

// WebSocketConfig configures the WebSocket listener. It is enabled when
// Address is set.
type WebSocketConfig struct {
	// Address is the host:port of the HTTP listener; empty means none.
	Address string `toml:"address"`
	// Path is the HTTP path upgraded to WebSocket. Empty means
	// DefaultWebSocketPath.
	Path string `toml:"path"`
	// OriginPatterns are host patterns (path.Match syntax) of browser
	// origins allowed besides the listener's own host; empty allows
	// same-origin requests and clients that send no Origin header.
	OriginPatterns []string `toml:"origin_patterns"`
	// TLS serves WebSocket over HTTPS with the TLS section's certificate.
	TLS bool `toml:"tls"`
}

// Enabled reports whether a WebSocket listener is configured.
func (c WebSocketConfig) Enabled() bool { return c.Address != "" }

// Validate reports the first bad value, naming its key. It never changes c.
func (c Config) Validate() error {
	if c.Address != "-" {
		if err := checkAddress("address", c.Address); err != nil {
			return err
		}
	}
	if err := c.limits().Validate(); err != nil {
		return fmt.Errorf("listener server config: %w", err)
	}
	if c.ConnectTimeout < 0 {
		return fmt.Errorf("listener server config: connect_timeout = %v: must not be negative", c.ConnectTimeout)
	}
	if c.WriteTimeout < 0 {
		return fmt.Errorf("listener server config: write_timeout = %v: must not be negative", c.WriteTimeout)
	}
	if c.MaxConnections < 0 {
		return fmt.Errorf("listener server config: max_connections = %d: must not be negative", c.MaxConnections)
	}
	if c.TopicAliasMaximum < 0 || c.TopicAliasMaximum > 65535 {
		return fmt.Errorf("listener server config: topic_alias_maximum = %d: must be 0 (default) to 65535", c.TopicAliasMaximum)
	}
	if c.OutboundTopicAliasMaximum < -1 || c.OutboundTopicAliasMaximum > 65535 {
		return fmt.Errorf("listener server config: outbound_topic_alias_maximum = %d: must be -1 (off), 0 (default) or 1 to 65535", c.OutboundTopicAliasMaximum)
	}
	if c.ServerKeepAlive < 0 || c.ServerKeepAlive > MaxServerKeepAlive || c.ServerKeepAlive%time.Second != 0 {
		return fmt.Errorf("listener server config: server_keep_alive = %v: must be whole seconds from 0 (no cap) to %v", c.ServerKeepAlive, MaxServerKeepAlive)
	}
	if c.CloseDrainTimeout < 0 {
		return fmt.Errorf("listener server config: close_drain_timeout = %v: must not be negative", c.CloseDrainTimeout)
	}
	t := c.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		return fmt.Errorf("listener server config: tls: cert_file and key_file must be set together")
	}
	if !t.Enabled() && (t.ClientCAFile != "" || t.Address != "") {
		return fmt.Errorf("listener server config: tls: address or client_ca_file set without cert_file")
	}
	if t.Enabled() {
		if err := checkAddress("tls.address", t.Address); err != nil {
			return err
		}
	}
	w := c.WebSocket
	if w.Enabled() {
		if err := checkAddress("websocket.address", w.Address); err != nil {
			return err
		}
		if w.Path != "" && !strings.HasPrefix(w.Path, "/") {
			return fmt.Errorf("listener server config: websocket.path = %q: must start with /", w.Path)
		}
		if w.TLS && !t.Enabled() {
			return fmt.Errorf("listener server config: websocket.tls = true without tls.cert_file")
		}
	} else if w.Path != "" || len(w.OriginPatterns) > 0 || w.TLS {
		return fmt.Errorf("listener server config: websocket: path, origin_patterns or tls set without address")
	}
	if c.Address == "-" && !t.Enabled() && !w.Enabled() {
		return fmt.Errorf("listener server config: address = \"-\" and no tls or websocket listener: nothing to listen on")
	}
	if err := c.Auth.Validate(); err != nil {
		return fmt.Errorf("listener server config: %w", err)
	}
	return nil
}

// checkAddress checks that a non-empty address is host:port.
func checkAddress(key, addr string) error {
	if addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("listener server config: %s = %q: %w", key, addr, err)
	}
	return nil
}

// limits returns the framing limits of c.
func (c Config) limits() framing.Limits {
	return framing.Limits{MaxPacketSize: c.MaxPacketSize}
}

// withDefaults returns c with zero fields replaced by defaults.
func (c Config) withDefaults() Config {
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	if c.MaxPacketSize == 0 {
		c.MaxPacketSize = DefaultMaxPacketSize
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.TopicAliasMaximum == 0 {
		c.TopicAliasMaximum = DefaultTopicAliasMaximum
	}
	switch c.OutboundTopicAliasMaximum {
	case 0:
		c.OutboundTopicAliasMaximum = DefaultOutboundTopicAliasMaximum
	case -1:
		c.OutboundTopicAliasMaximum = 0
	}
	if c.CloseDrainTimeout == 0 {
		c.CloseDrainTimeout = DefaultCloseDrainTimeout
	}
	if c.TLS.Enabled() && c.TLS.Address == "" {
		c.TLS.Address = DefaultTLSAddress
	}
	if c.WebSocket.Enabled() && c.WebSocket.Path == "" {
		c.WebSocket.Path = DefaultWebSocketPath
	}
	return c
}

// ServerTLS loads the certificate, key and optional client CA named by c
// into a tls.Config for a listener (TLS 1.2 at least).
func (c TLSConfig) ServerTLS() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("listener tls: load %s and %s: %w", c.CertFile, c.KeyFile, err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("listener tls: client ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("listener tls: client ca %s: no PEM certificates", c.ClientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

package radio

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Defaults for a zero ListenerConfig.
const (
	DefaultBatchSize        = 32
	DefaultMaxDatagram      = 2048
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultMaxHandshakes    = 64
	DefaultIdleTimeout      = 24 * time.Hour
	DefaultMaxSessions      = 100000
	DefaultReadQueue        = 1024
	DefaultHandshakeRate    = 10
	DefaultHandshakeBurst   = 20
	DefaultHandshakeSources = 65536
	// DefaultReadBuffer and DefaultWriteBuffer are the SO_RCVBUF and
	// SO_SNDBUF a UDP listener asks for. A fleet's bursts arrive together:
	// the 1,000 PUBACKs of one fan-out, 1,000 CONNECTs of a power cut's
	// end, a wake storm's PINGREQs and PUBACKs. Linux charges a small
	// datagram about 800 octets of buffer (its skb), so its usual default
	// of 208 KiB holds some 270 and drops the rest. 4 MiB (Linux doubles
	// the request) holds about 10,000, and costs memory only while full.
	// The kernel caps the request at net.core.rmem_max/wmem_max.
	DefaultReadBuffer  = 4 << 20
	DefaultWriteBuffer = 4 << 20
	// MaxBatchSize is the largest batch_size accepted.
	MaxBatchSize = 1024
)

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("invalid listener config")

// ListenerConfig is one [[listen]] entry of config.toml: a plain UDP socket
// or a DTLS listener. The zero value of every field but Address means the
// default. Validate rejects bad values; nothing is clamped.
type ListenerConfig struct {
	// Network is "udp" (IPv6 socket that also accepts IPv4 where the
	// address allows it), "udp4", "udp6", "dtls" (DTLS 1.2 over UDP) or
	// "multicast" (a discovery link that joins the group in Address, for
	// SEARCHGW/GWINFO and ADVERTISE). Empty means "udp".
	Network string `toml:"network"`
	// Address is "host:port" ("[::]:1884", "0.0.0.0:1884", ":1884"); for
	// "multicast" the group and port ("239.255.0.186:1885").
	Address string `toml:"address"`
	// BatchSize is how many datagrams one recvmmsg system call may return,
	// and one sendmmsg may carry (0: DefaultBatchSize; 1 turns batching off
	// both ways). Plain UDP only.
	BatchSize int `toml:"batch_size"`
	// MaxDatagram is the size of each receive slot in octets
	// (0: DefaultMaxDatagram; 16..65535). A longer datagram is dropped and
	// counted as truncated; keep it above the gateway's max_message_size.
	MaxDatagram int `toml:"max_datagram"`
	// ReadBuffer and WriteBuffer set SO_RCVBUF and SO_SNDBUF in octets
	// (0: DefaultReadBuffer, DefaultWriteBuffer). Linux caps them at
	// net.core.rmem_max/wmem_max; the effective size is in Stats. Plain UDP
	// and multicast only.
	ReadBuffer  int `toml:"read_buffer"`
	WriteBuffer int `toml:"write_buffer"`
	// DTLS configures a "dtls" listener; it must be empty for the others.
	DTLS DTLSConfig `toml:"dtls"`
	// Multicast configures a "multicast" listener; it must be empty for
	// the others.
	Multicast MulticastOptions `toml:"multicast"`
}

// MulticastOptions are a multicast listener's settings besides its group.
type MulticastOptions struct {
	// Interface names the interface to join on and send from ("": the
	// system's choice). IPv6 link-local groups need one.
	Interface string `toml:"interface"`
	// Radius is the IPv4 TTL or IPv6 hop limit of datagrams sent to the
	// group (0: 1, the local link; at most 255).
	Radius int `toml:"radius"`
	// Loopback delivers datagrams sent to the group to members on this
	// host too.
	Loopback bool `toml:"loopback"`
}

func (m *MulticastOptions) isZero() bool { return *m == MulticastOptions{} }

// DTLSConfig configures a DTLS listener. At least one of PSKFile and
// CertFile/KeyFile is required.
type DTLSConfig struct {
	// PSKFile names a file of "identity:hexkey" lines ('#' starts a
	// comment), the format of mosquitto's psk_file. PSK suites offered:
	// TLS_PSK_WITH_AES_128_CCM_8, TLS_PSK_WITH_AES_128_CCM,
	// TLS_PSK_WITH_AES_128_GCM_SHA256.
	PSKFile string `toml:"psk_file"`
	// CertFile and KeyFile are the gateway's PEM certificate chain and key.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// CAFile is a PEM bundle that client certificates must chain to.
	CAFile string `toml:"ca_file"`
	// ClientAuth is "none" (default when CAFile is empty), "request"
	// (verify a certificate if one is sent) or "require" (default when
	// CAFile is set). "request" and "require" need CAFile.
	ClientAuth string `toml:"client_auth"`
	// IdentityRule binds the session's identity (PSK identity or the
	// certificate subject's common name) to the MQTT-SN client id: "equal"
	// (default: they must be equal) or "map" (IdentityMap gives the client
	// id; an identity missing from it fails the handshake).
	IdentityRule string `toml:"identity_rule"`
	// IdentityMap maps identity -> client id for IdentityRule "map".
	IdentityMap map[string]string `toml:"identity_map"`
	// ConnectionID turns RFC 9146 Connection IDs on or off (default on):
	// with it a client whose address changes keeps its session.
	ConnectionID *bool `toml:"connection_id"`
	// HandshakeTimeout bounds one handshake (0: DefaultHandshakeTimeout).
	HandshakeTimeout time.Duration `toml:"handshake_timeout"`
	// MaxHandshakes caps handshakes in progress at once; a ClientHello
	// beyond it is ignored and counted (0: DefaultMaxHandshakes).
	MaxHandshakes int `toml:"max_handshakes"`
	// IdleTimeout closes a session that has received nothing for this long
	// (0: DefaultIdleTimeout). Set it above the longest sensor sleep.
	IdleTimeout time.Duration `toml:"idle_timeout"`
	// MaxSessions caps established sessions; a handshake beyond it is
	// refused and counted (0: DefaultMaxSessions).
	MaxSessions int `toml:"max_sessions"`
	// ReadQueue is how many received datagrams may wait for the gateway to
	// read them; more are dropped and counted (0: DefaultReadQueue).
	ReadQueue int `toml:"read_queue"`
	// HandshakeRate and HandshakeBurst limit new handshakes per source
	// address (IPv6: per /64) with a token bucket (0: 10 per second, burst
	// 20; generous because many sensors may share one carrier NAT address).
	// HandshakeSources bounds the table of sources (0: 65536).
	HandshakeRate    float64 `toml:"handshake_rate"`
	HandshakeBurst   int     `toml:"handshake_burst"`
	HandshakeSources int     `toml:"handshake_sources"`
}

func (d *DTLSConfig) isZero() bool {
	return d.PSKFile == "" && d.CertFile == "" && d.KeyFile == "" && d.CAFile == "" &&
		d.ClientAuth == "" && d.IdentityRule == "" && len(d.IdentityMap) == 0 &&
		d.ConnectionID == nil && d.HandshakeTimeout == 0 && d.MaxHandshakes == 0 &&
		d.IdleTimeout == 0 && d.MaxSessions == 0 && d.ReadQueue == 0 &&
		d.HandshakeRate == 0 && d.HandshakeBurst == 0 && d.HandshakeSources == 0
}

// handshakeLimiter is the per-source limiter the settings describe.
func (d *DTLSConfig) handshakeLimiter() LimiterConfig {
	c := LimiterConfig{Rate: d.HandshakeRate, Burst: d.HandshakeBurst, MaxSources: d.HandshakeSources}
	if c.Rate == 0 {
		c.Rate = DefaultHandshakeRate
	}
	if c.Burst == 0 {
		c.Burst = DefaultHandshakeBurst
	}
	if c.MaxSources == 0 {
		c.MaxSources = DefaultHandshakeSources
	}
	return c
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

// Validate reports the first bad value in c.
func (c *ListenerConfig) Validate() error {
	switch c.Network {
	case "", "udp", "udp4", "udp6", "dtls", "multicast":
	default:
		return invalid("listen.network = %q: must be udp, udp4, udp6, dtls or multicast", c.Network)
	}
	if c.Address == "" {
		return invalid("listen.address is required")
	}
	_, port, err := net.SplitHostPort(c.Address)
	if err != nil {
		return invalid("listen.address = %q: want host:port: %v", c.Address, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return invalid("listen.address = %q: port %q is not a number from 0 to 65535", c.Address, port)
	}
	if c.BatchSize < 0 || c.BatchSize > MaxBatchSize {
		return invalid("listen.batch_size = %d: must be 0 (default) to %d", c.BatchSize, MaxBatchSize)
	}
	if c.MaxDatagram != 0 && (c.MaxDatagram < 16 || c.MaxDatagram > 65535) {
		return invalid("listen.max_datagram = %d: must be 0 (default) or 16..65535", c.MaxDatagram)
	}
	if c.ReadBuffer < 0 {
		return invalid("listen.read_buffer = %d: must not be negative", c.ReadBuffer)
	}
	if c.WriteBuffer < 0 {
		return invalid("listen.write_buffer = %d: must not be negative", c.WriteBuffer)
	}
	if c.Network != "multicast" && !c.Multicast.isZero() {
		return invalid("listen.multicast is set on a %q listener: set network = \"multicast\"", c.network())
	}
	if c.Network == "multicast" {
		mc := c.multicastConfig()
		if err := mc.Validate(); err != nil {
			return err
		}
	}
	if c.Network != "dtls" {
		if !c.DTLS.isZero() {
			return invalid("listen.dtls is set on a %q listener: set network = \"dtls\"", c.network())
		}
		return nil
	}
	return c.DTLS.validate()
}

// Validate reports the first bad value in d. A zero DTLSConfig is valid on
// its own (it is the section of a plain UDP listener);
// ListenerConfig.Validate requires credentials for a "dtls" listener.
func (d *DTLSConfig) Validate() error {
	if d.isZero() {
		return nil
	}
	return d.validate()
}

func (d *DTLSConfig) validate() error {
	if d.PSKFile == "" && d.CertFile == "" && d.KeyFile == "" {
		return invalid("listen.dtls: psk_file or cert_file and key_file are required")
	}
	if (d.CertFile == "") != (d.KeyFile == "") {
		return invalid("listen.dtls: cert_file and key_file go together")
	}
	switch d.ClientAuth {
	case "", "none":
	case "request", "require":
		if d.CAFile == "" {
			return invalid("listen.dtls.client_auth = %q needs ca_file", d.ClientAuth)
		}
	default:
		return invalid("listen.dtls.client_auth = %q: must be none, request or require", d.ClientAuth)
	}
	if d.CAFile != "" && d.CertFile == "" {
		return invalid("listen.dtls.ca_file needs cert_file and key_file: client certificates are only asked for in certificate handshakes")
	}
	switch d.IdentityRule {
	case "", "equal":
		if len(d.IdentityMap) > 0 {
			return invalid("listen.dtls.identity_map is set but identity_rule is not \"map\"")
		}
	case "map":
		if len(d.IdentityMap) == 0 {
			return invalid("listen.dtls.identity_rule = \"map\" needs identity_map")
		}
		for id, cid := range d.IdentityMap {
			if id == "" || cid == "" {
				return invalid("listen.dtls.identity_map: empty identity or client id (%q = %q)", id, cid)
			}
		}
	default:
		return invalid("listen.dtls.identity_rule = %q: must be equal or map", d.IdentityRule)
	}
	if d.HandshakeTimeout < 0 {
		return invalid("listen.dtls.handshake_timeout = %v: must not be negative", d.HandshakeTimeout)
	}
	if d.MaxHandshakes < 0 {
		return invalid("listen.dtls.max_handshakes = %d: must not be negative", d.MaxHandshakes)
	}
	if d.IdleTimeout < 0 {
		return invalid("listen.dtls.idle_timeout = %v: must not be negative", d.IdleTimeout)
	}
	if d.MaxSessions < 0 {
		return invalid("listen.dtls.max_sessions = %d: must not be negative", d.MaxSessions)
	}
	if d.ReadQueue < 0 {
		return invalid("listen.dtls.read_queue = %d: must not be negative", d.ReadQueue)
	}
	if d.HandshakeRate < 0 || d.HandshakeBurst < 0 || d.HandshakeSources < 0 {
		return invalid("listen.dtls: handshake_rate, handshake_burst and handshake_sources must not be negative")
	}
	return nil
}

// multicastConfig is the MulticastConfig of a "multicast" listener.
func (c *ListenerConfig) multicastConfig() MulticastConfig {
	return MulticastConfig{
		Group: c.Address, Interface: c.Multicast.Interface, Radius: c.Multicast.Radius,
		Loopback: c.Multicast.Loopback, BatchSize: c.BatchSize, MaxDatagram: c.MaxDatagram,
		ReadBuffer: c.ReadBuffer,
	}
}

func (c *ListenerConfig) network() string {
	if c.Network == "" {
		return "udp"
	}
	return c.Network
}

// Buffers returns the SO_RCVBUF and SO_SNDBUF sizes a UDP listener asks
// the kernel for: ReadBuffer and WriteBuffer, or their defaults.
func (c *ListenerConfig) Buffers() (read, write int) {
	return orDefault(c.ReadBuffer, DefaultReadBuffer), orDefault(c.WriteBuffer, DefaultWriteBuffer)
}

func (c *ListenerConfig) batchSize() int   { return orDefault(c.BatchSize, DefaultBatchSize) }
func (c *ListenerConfig) maxDatagram() int { return orDefault(c.MaxDatagram, DefaultMaxDatagram) }
func (d *DTLSConfig) maxHandshakes() int   { return orDefault(d.MaxHandshakes, DefaultMaxHandshakes) }
func (d *DTLSConfig) maxSessions() int     { return orDefault(d.MaxSessions, DefaultMaxSessions) }
func (d *DTLSConfig) readQueue() int       { return orDefault(d.ReadQueue, DefaultReadQueue) }
func (d *DTLSConfig) connectionID() bool   { return d.ConnectionID == nil || *d.ConnectionID }
func (d *DTLSConfig) handshakeTimeout() time.Duration {
	return orDefault(d.HandshakeTimeout, DefaultHandshakeTimeout)
}
func (d *DTLSConfig) idleTimeout() time.Duration { return orDefault(d.IdleTimeout, DefaultIdleTimeout) }

func (d *DTLSConfig) clientAuth() string {
	switch {
	case d.ClientAuth != "":
		return d.ClientAuth
	case d.CAFile != "":
		return "require"
	}
	return "none"
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

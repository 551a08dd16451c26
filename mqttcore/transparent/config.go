package transparent

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"strings"
	"time"
)

// Defaults for zero Config fields.
const (
	DefaultMaxConnections = 10000
	DefaultConnectTimeout = 10 * time.Second
	DefaultKeepAlive      = 60 * time.Second
	DefaultUsername       = "{client_id}"
	// DefaultMaxOps bounds one link's queue of operations waiting for the
	// remote (QoS 0 publishes beyond it are dropped and counted; others
	// are refused with congestion).
	DefaultMaxOps = 64
)

// ErrInvalidConfig is wrapped by every Config.Validate error.
var ErrInvalidConfig = errors.New("invalid transparent config")

// Config configures transparent mode. The zero value of each field means
// its default; Validate rejects bad values and never adjusts them.
type Config struct {
	// Enabled turns transparent mode on. When false nothing else is
	// checked and New refuses the config.
	Enabled bool `toml:"enabled"`
	// Server is the remote broker: "mqtt://host:port" or "tcp://host:port",
	// or over TLS "mqtts://host:port" ("tls://", "ssl://").
	Server string `toml:"server"`
	// TLS configures the TLS of an mqtts:// server.
	TLS TLSConfig `toml:"tls"`
	// ClientIDs are path.Match patterns ("valve-*"); a sensor whose client
	// id matches one is transparent. At least one is required.
	ClientIDs []string `toml:"client_ids"`
	// Username and Password are templates for the remote credentials;
	// "{client_id}" stands for the sensor's client id. Username defaults
	// to "{client_id}"; an empty Password sends none. A Devices entry for
	// the client id overrides both.
	Username string `toml:"username"`
	Password string `toml:"password"`
	// Devices gives per-client credentials ([[transparent.device]]).
	Devices []Device `toml:"device"`
	// MaxConnections bounds the upstream connections held at once; a
	// sensor beyond it is refused (CONNACK congestion), counted and
	// logged.
	MaxConnections int `toml:"max_connections"`
	// CloseOnSleep closes a sensor's upstream connection while it sleeps;
	// the remote broker holds its messages (with SessionExpiry long
	// enough) and they arrive when it wakes. Without it a sleeping sensor
	// keeps its connection and its messages queue in the gateway.
	CloseOnSleep bool `toml:"close_on_sleep"`
	// SessionExpiry is the remote session expiry of a sensor that
	// connects with CleanSession=0; 0 means the gateway's own
	// session_expiry as the core passes it. A CleanSession=1 sensor's
	// remote session ends with its connection.
	SessionExpiry time.Duration `toml:"session_expiry"`
	// ConnectTimeout bounds dialling plus CONNACK, and each later
	// exchange with the remote (PUBACK, SUBACK).
	ConnectTimeout time.Duration `toml:"connect_timeout"`
	// KeepAlive is the MQTT keep-alive of each upstream connection.
	KeepAlive time.Duration `toml:"keep_alive"`
}

// TLSConfig is the TLS towards the remote broker.
type TLSConfig struct {
	// CAFile is a PEM file of CA certificates that verify the server;
	// empty: the system's roots.
	CAFile string `toml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and key (the
	// gateway's, for every sensor) for mutual TLS; set both or neither.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// ServerName overrides the name sent in SNI and checked in the server
	// certificate (default: the server's host).
	ServerName string `toml:"server_name"`
}

// Device is one sensor's remote credentials.
type Device struct {
	// ClientID is the sensor's client id; it must match ClientIDs.
	ClientID string `toml:"client_id"`
	// Username and Password are sent to the remote broker for it.
	Username string `toml:"username"`
	Password string `toml:"password"`
}

// Validate reports the first bad field; a disabled config is valid.
func (c *Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	u, err := url.Parse(c.Server)
	switch {
	case c.Server == "":
		return fmt.Errorf("%w: server is required", ErrInvalidConfig)
	case err != nil:
		return fmt.Errorf("%w: server %q: %v", ErrInvalidConfig, c.Server, err)
	case !plainScheme(u.Scheme) && !tlsScheme(u.Scheme):
		return fmt.Errorf("%w: server %q: scheme %q, want mqtt://, tcp://, mqtts://, tls:// or ssl://", ErrInvalidConfig, c.Server, u.Scheme)
	case (c.TLS.CertFile == "") != (c.TLS.KeyFile == ""):
		return fmt.Errorf("%w: tls: set both cert_file and key_file, or neither", ErrInvalidConfig)
	case c.TLS != (TLSConfig{}) && !tlsScheme(u.Scheme):
		return fmt.Errorf("%w: tls is set but server %q is not mqtts://", ErrInvalidConfig, c.Server)
	case u.Host == "" || u.Port() == "":
		return fmt.Errorf("%w: server %q: want host:port", ErrInvalidConfig, c.Server)
	case len(c.ClientIDs) == 0:
		return fmt.Errorf("%w: client_ids: at least one pattern is required", ErrInvalidConfig)
	case c.MaxConnections < 0:
		return fmt.Errorf("%w: max_connections %d is negative", ErrInvalidConfig, c.MaxConnections)
	case c.SessionExpiry < 0:
		return fmt.Errorf("%w: session_expiry %v is negative", ErrInvalidConfig, c.SessionExpiry)
	case c.ConnectTimeout < 0:
		return fmt.Errorf("%w: connect_timeout %v is negative", ErrInvalidConfig, c.ConnectTimeout)
	case c.KeepAlive < 0 || c.KeepAlive > 65535*time.Second || c.KeepAlive%time.Second != 0:
		return fmt.Errorf("%w: keep_alive %v: want whole seconds up to 65535s", ErrInvalidConfig, c.KeepAlive)
	case c.SessionExpiry > 0 && c.SessionExpiry < time.Second:
		return fmt.Errorf("%w: session_expiry %v is under a second", ErrInvalidConfig, c.SessionExpiry)
	}
	for _, p := range c.ClientIDs {
		if p == "" {
			return fmt.Errorf("%w: client_ids: empty pattern", ErrInvalidConfig)
		}
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("%w: client_ids: pattern %q: %v", ErrInvalidConfig, p, err)
		}
	}
	seen := map[string]bool{}
	for _, d := range c.Devices {
		id := d.ClientID
		switch {
		case id == "":
			return fmt.Errorf("%w: device with an empty client_id", ErrInvalidConfig)
		case seen[id]:
			return fmt.Errorf("%w: device %q listed twice", ErrInvalidConfig, id)
		case d.Username == "":
			return fmt.Errorf("%w: device %q: username is required", ErrInvalidConfig, id)
		case !c.Claims(id):
			return fmt.Errorf("%w: device %q matches none of client_ids", ErrInvalidConfig, id)
		}
		seen[id] = true
	}
	return nil
}

// plainScheme and tlsScheme classify a server URL's scheme.
func plainScheme(s string) bool { return s == "mqtt" || s == "tcp" }
func tlsScheme(s string) bool   { return s == "mqtts" || s == "tls" || s == "ssl" }

// ClientTLS loads the TLS configuration for server (nil for a plain
// mqtt:// server): the files are read here, so a bad one is reported at
// start-up (and by check-config).
func (c *Config) ClientTLS() (*tls.Config, error) {
	u, err := url.Parse(c.Server)
	if err != nil {
		return nil, fmt.Errorf("transparent: server %q: %w", c.Server, err)
	}
	if !tlsScheme(u.Scheme) {
		return nil, nil
	}
	tc := &tls.Config{ServerName: c.TLS.ServerName, MinVersion: tls.VersionTLS12}
	if tc.ServerName == "" {
		tc.ServerName = u.Hostname()
	}
	if c.TLS.CAFile != "" {
		pem, err := os.ReadFile(c.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("transparent: tls ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("transparent: tls ca_file %s: no PEM certificate in it", c.TLS.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("transparent: tls cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Claims reports whether clientID matches one of the patterns.
func (c *Config) Claims(clientID string) bool {
	for _, p := range c.ClientIDs {
		if ok, _ := path.Match(p, clientID); ok {
			return true
		}
	}
	return false
}

// credentials returns the remote username and password of clientID:
// its Devices entry (devices indexes them) or the templates.
func (c *Config) credentials(devices map[string]Device, clientID string) (user, pass string) {
	if d, ok := devices[clientID]; ok {
		return d.Username, d.Password
	}
	return strings.ReplaceAll(c.Username, "{client_id}", clientID), strings.ReplaceAll(c.Password, "{client_id}", clientID)
}

// withDefaults fills in zero fields.
func (c Config) withDefaults() Config {
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.Username == "" {
		c.Username = DefaultUsername
	}
	return c
}

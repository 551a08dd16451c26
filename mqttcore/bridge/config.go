package bridge

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// Direction says which way a rule forwards messages.
type Direction string

// Rule directions, as in Mosquitto's bridge "topic" lines.
const (
	// Out forwards local messages to the remote broker.
	Out Direction = "out"
	// In forwards remote messages into the local core.
	In Direction = "in"
	// Both forwards in both directions.
	Both Direction = "both"
)

func (d Direction) out() bool { return d == Out || d == Both }
func (d Direction) in() bool  { return d == In || d == Both }

// Defaults used when a Config field is zero.
const (
	DefaultKeepAlive      = 30 * time.Second
	DefaultConnectTimeout = 10 * time.Second
	DefaultBackoffMin     = time.Second
	DefaultBackoffMax     = 2 * time.Minute
	DefaultSysInterval    = 10 * time.Second
	DefaultMaxBytes       = 64 << 20
	DefaultMaxAge         = 7 * 24 * time.Hour
	DefaultMaxBatch       = 1024
	DefaultMaxPending     = 256
	DefaultMaxInflight    = 256
	// MaxMaxInflight is the largest accepted MaxInflight (packet ids are
	// 16 bits, and SUBSCRIBEs need some).
	MaxMaxInflight = 65000
	// MinSysInterval is the shortest accepted SysInterval.
	MinSysInterval = 100 * time.Millisecond
)

// Config is one bridge: one MQTT 5 connection to a remote broker, its topic
// rules and its durable outbound queue. It is the [[bridge]] section of
// config.toml. The zero value of every optional field means its default.
type Config struct {
	// Name identifies the bridge in logs and $SYS, and is the Origin of
	// the messages it publishes into the core. Required, unique, no "/".
	Name string `toml:"name"`
	// Servers are the remote broker's URLs, tried in order (failover):
	// mqtt://host:1883, mqtts://host:8883 (also tls://, ssl://),
	// ws://host/path or wss://host/path.
	Servers []string `toml:"servers"`
	// TLS configures mqtts:// and wss:// servers.
	TLS TLSConfig `toml:"tls"`
	// Username and Password are sent in CONNECT when Username is set.
	Username string `toml:"username"`
	Password string `toml:"password"`
	// ClientID is the client id on the remote broker (default
	// "gannet-bridge-" + Name). Keep it stable: the remote session (and
	// in-flight QoS 1/2 messages) belong to it.
	ClientID string `toml:"client_id"`
	// KeepAlive is the MQTT keep-alive (default 30s; whole seconds, at
	// most 65535s).
	KeepAlive time.Duration `toml:"keep_alive"`
	// CleanStart discards the remote session at the first connection.
	CleanStart bool `toml:"clean_start"`
	// SessionExpiry asks the remote broker to keep the session this long
	// after a disconnect (whole seconds; 0: the session ends with the
	// connection). A persistent session keeps inbound QoS 1/2 messages
	// queued remotely while the uplink is down.
	SessionExpiry time.Duration `toml:"session_expiry"`
	// ConnectTimeout bounds one connection attempt (default 10s).
	ConnectTimeout time.Duration `toml:"connect_timeout"`
	// BackoffMin and BackoffMax bound the exponential reconnect delay,
	// which doubles from BackoffMin up to BackoffMax with +-25% jitter
	// (defaults 1s and 2m).
	BackoffMin time.Duration `toml:"backoff_min"`
	BackoffMax time.Duration `toml:"backoff_max"`
	// SysInterval is how often queue statistics are published under
	// $SYS/broker/bridge/<name>/ (default 10s; "0s" with SysDisabled off
	// means the default).
	SysInterval time.Duration `toml:"sys_interval"`
	// SysDisabled turns the $SYS statistics off.
	SysDisabled bool `toml:"sys_disabled"`
	// MaxInflight bounds the messages taken from the queue and not yet
	// removed from the file (sent and unacknowledged, or acknowledged with
	// their removal not yet committed); default 256. What is sent and
	// unacknowledged is further bounded by the remote's Receive Maximum.
	// A crash of Gannet re-sends at most this many messages.
	MaxInflight int `toml:"max_inflight"`
	// Rules say what is forwarded; at least one is required.
	Rules []Rule `toml:"rule"`
	// Queue configures the durable outbound queue.
	Queue QueueConfig `toml:"queue"`
}

// TLSConfig is the TLS configuration for mqtts:// and wss:// servers. With
// no CA file the system roots are used.
type TLSConfig struct {
	// CAFile is a PEM file of CA certificates that verify the server.
	CAFile string `toml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and key for mutual
	// TLS; set both or neither.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// ServerName overrides the name sent in SNI and checked in the server
	// certificate (default: the URL's host).
	ServerName string `toml:"server_name"`
}

// Rule is one topic rule, like a Mosquitto bridge "topic" line: the local
// topic is LocalPrefix+Pattern, the remote topic RemotePrefix+Pattern.
type Rule struct {
	// Pattern is a topic filter ("+" and "#" allowed, no $share).
	Pattern string `toml:"pattern"`
	// Direction is out, in or both.
	Direction Direction `toml:"direction"`
	// QoS caps the QoS of forwarded messages (0, 1 or 2; default 0 is a
	// real cap, so set it: most bridges want 1). It is also the QoS of the
	// remote subscription for in rules.
	QoS mqttcore.QoS `toml:"qos"`
	// LocalPrefix and RemotePrefix are prepended to Pattern on each side.
	LocalPrefix  string `toml:"local_prefix"`
	RemotePrefix string `toml:"remote_prefix"`
}

// QueueConfig is the durable outbound queue.
type QueueConfig struct {
	// Path is the bridge's own bbolt file, one per bridge, with the
	// write-ahead log of the core's store beside it (Path.wal.0 and
	// Path.wal.1; mqttcore/boltstore). Empty: the queue lives in the
	// broker core's store file (gannet serve's [store]), so a message
	// bound for the uplink and for a local session costs one commit; that
	// needs a bbolt [store].
	Path string `toml:"path"`
	// MaxBytes bounds the queued messages' bytes (default 64 MiB). When a
	// new message would exceed it, the oldest QoS 0 message is dropped,
	// else the oldest message; drops are counted and logged.
	MaxBytes int64 `toml:"max_bytes"`
	// MaxAge drops queued messages older than this (default 168h).
	MaxAge time.Duration `toml:"max_age"`
	// MaxBatch bounds how many writes go into one log record and its
	// fdatasync (default 1024). Only for a queue in its own file.
	MaxBatch int `toml:"max_batch"`
	// MaxPending bounds the writes waiting for the disk (default 256).
	// Writes that do not wait for their commit (QoS 0 messages, the
	// sender's hand-overs and removals) run ahead of the disk by at most
	// this many, which bounds the QoS 0 messages a crash can lose (what it
	// can re-send is bounded by Config.MaxInflight); beyond it writers wait
	// (counted in WriteWaits). Only for a queue in its own file.
	MaxPending int `toml:"max_pending"`
	// CheckpointBytes and CheckpointInterval say when the log of a queue
	// in its own file is applied to the bbolt file: after this many log
	// bytes or this long, whichever comes first (defaults 8 MiB and 2s,
	// boltstore's). Each log segment stays within about twice
	// CheckpointBytes on disk, and the log's records are also held in
	// memory until their checkpoint. Only for a queue in its own file
	// ([store]'s checkpoint_bytes and checkpoint_interval apply to one in
	// the core's store).
	CheckpointBytes    int           `toml:"checkpoint_bytes"`
	CheckpointInterval time.Duration `toml:"checkpoint_interval"`
}

// errConfig is wrapped by every error Validate returns.
var errConfig = errors.New("invalid bridge configuration")

// Validate checks c and rejects bad values (it never clamps them).
func (c *Config) Validate() error {
	if err := c.validate(); err != nil {
		if c.Name != "" {
			return fmt.Errorf("bridge %q: %w", c.Name, err)
		}
		return fmt.Errorf("bridge: %w", err)
	}
	return nil
}

func (c *Config) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", errConfig, fmt.Sprintf(format, a...))
	}
	if c.Name == "" {
		return bad("name is required")
	}
	if strings.ContainsAny(c.Name, "/+#") {
		return bad("name %q: must not contain /, + or #", c.Name)
	}
	if len(c.Servers) == 0 {
		return bad("servers: at least one URL is required")
	}
	for _, s := range c.Servers {
		if _, err := parseServer(s); err != nil {
			return bad("servers: %v", err)
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return bad("tls: cert_file and key_file go together")
	}
	for name, d := range map[string]time.Duration{
		"keep_alive": c.KeepAlive, "session_expiry": c.SessionExpiry, "connect_timeout": c.ConnectTimeout,
		"backoff_min": c.BackoffMin, "backoff_max": c.BackoffMax, "sys_interval": c.SysInterval,
		"queue.max_age": c.Queue.MaxAge, "queue.checkpoint_interval": c.Queue.CheckpointInterval,
	} {
		if d < 0 {
			return bad("%s = %v: must not be negative", name, d)
		}
	}
	if c.KeepAlive%time.Second != 0 || c.KeepAlive > 65535*time.Second {
		return bad("keep_alive = %v: must be whole seconds, at most 65535s", c.KeepAlive)
	}
	if c.SessionExpiry%time.Second != 0 || c.SessionExpiry > 0xFFFFFFFF*time.Second {
		return bad("session_expiry = %v: must be whole seconds, at most 4294967295s", c.SessionExpiry)
	}
	if c.SysInterval > 0 && c.SysInterval < MinSysInterval {
		return bad("sys_interval = %v: must be 0 (default) or at least %v", c.SysInterval, MinSysInterval)
	}
	if c.backoffMin() > c.backoffMax() {
		return bad("backoff_min = %v is above backoff_max = %v", c.backoffMin(), c.backoffMax())
	}
	if c.MaxInflight < 0 || c.MaxInflight > MaxMaxInflight {
		return bad("max_inflight = %d: must be 0 (default) to %d", c.MaxInflight, MaxMaxInflight)
	}
	if len(c.Rules) == 0 {
		return bad("at least one [[bridge.rule]] is required")
	}
	for i, r := range c.Rules {
		if err := r.validate(); err != nil {
			return fmt.Errorf("rule %d: %w", i+1, err)
		}
	}
	if c.Queue.MaxBytes < 0 {
		return bad("queue.max_bytes = %d: must not be negative", c.Queue.MaxBytes)
	}
	if c.Queue.MaxBatch < 0 {
		return bad("queue.max_batch = %d: must not be negative", c.Queue.MaxBatch)
	}
	if c.Queue.MaxPending < 0 {
		return bad("queue.max_pending = %d: must not be negative", c.Queue.MaxPending)
	}
	if c.Queue.CheckpointBytes < 0 {
		return bad("queue.checkpoint_bytes = %d: must not be negative", c.Queue.CheckpointBytes)
	}
	return nil
}

func (r *Rule) validate() error {
	switch r.Direction {
	case Out, In, Both:
	default:
		return fmt.Errorf("%w: direction = %q: must be out, in or both", errConfig, r.Direction)
	}
	if !r.QoS.Valid() {
		return fmt.Errorf("%w: qos = %d: must be 0, 1 or 2", errConfig, r.QoS)
	}
	if r.Pattern == "" && r.LocalPrefix == "" && r.RemotePrefix == "" {
		return fmt.Errorf("%w: pattern is required", errConfig)
	}
	if strings.HasPrefix(r.Pattern, "$share/") {
		return fmt.Errorf("%w: pattern %q: shared subscriptions cannot be bridged", errConfig, r.Pattern)
	}
	for _, p := range []struct{ name, v string }{{"local_prefix", r.LocalPrefix}, {"remote_prefix", r.RemotePrefix}} {
		if strings.ContainsAny(p.v, "+#") {
			return fmt.Errorf("%w: %s = %q: must not contain wildcards", errConfig, p.name, p.v)
		}
	}
	for _, f := range []string{r.LocalPrefix + r.Pattern, r.RemotePrefix + r.Pattern} {
		if err := validFilter(f); err != nil {
			return fmt.Errorf("%w: filter %q: %v", errConfig, f, err)
		}
	}
	return nil
}

// validFilter checks the MQTT topic filter rules: "#" only last and alone
// in its level, "+" alone in its level.
func validFilter(f string) error {
	if f == "" {
		return errors.New("empty filter")
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return errors.New(`"#" must be a whole last level`)
		}
		if strings.Contains(l, "+") && l != "+" {
			return errors.New(`"+" must be a whole level`)
		}
	}
	return nil
}

// parseServer parses and checks one server URL.
func parseServer(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	switch u.Scheme {
	case "mqtt", "tcp", "mqtts", "tls", "ssl", "ws", "wss":
	default:
		return nil, fmt.Errorf("%q: scheme must be mqtt, mqtts, tls, ssl, ws or wss", s)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%q: no host", s)
	}
	if u.Port() == "" {
		return nil, fmt.Errorf("%q: no port", s)
	}
	return u, nil
}

func (c *Config) clientID() string {
	if c.ClientID != "" {
		return c.ClientID
	}
	return "gannet-bridge-" + c.Name
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func (c *Config) keepAlive() time.Duration { return orDefault(c.KeepAlive, DefaultKeepAlive) }
func (c *Config) connectTimeout() time.Duration {
	return orDefault(c.ConnectTimeout, DefaultConnectTimeout)
}
func (c *Config) backoffMin() time.Duration  { return orDefault(c.BackoffMin, DefaultBackoffMin) }
func (c *Config) backoffMax() time.Duration  { return orDefault(c.BackoffMax, DefaultBackoffMax) }
func (c *Config) sysInterval() time.Duration { return orDefault(c.SysInterval, DefaultSysInterval) }
func (c *Config) maxInflight() int           { return orDefault(c.MaxInflight, DefaultMaxInflight) }
func (q *QueueConfig) maxBytes() int64       { return orDefault(q.MaxBytes, DefaultMaxBytes) }
func (q *QueueConfig) maxAge() time.Duration { return orDefault(q.MaxAge, DefaultMaxAge) }
func (q *QueueConfig) maxBatch() int         { return orDefault(q.MaxBatch, DefaultMaxBatch) }
func (q *QueueConfig) maxPending() int       { return orDefault(q.MaxPending, DefaultMaxPending) }

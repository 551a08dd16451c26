package gateway

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Defaults for a zero Config.
const (
	// DefaultMaxClients leaves a tenth of the core's default max_sessions
	// to MQTT listener clients: the gateway's sessions count against
	// max_clients in the core too (mqttcore.SessionBudget).
	DefaultMaxClients         = 900_000
	DefaultMaxUnverified      = 50_000
	DefaultSessionExpiry      = 7 * 24 * time.Hour
	DefaultMaxMessageSize     = 1500
	DefaultMaxClientIDLen     = 64
	DefaultMaxTopicsPerClient = 256
	DefaultRetryInterval      = 10 * time.Second
	DefaultMaxRetries         = 3
	DefaultLoopQueue          = 1024
	DefaultMaxPendingAuth     = 256
	DefaultQoSMinus1ClientID  = "gannet-qos-1"
)

// Upper bounds of settings that size memory allocated at start-up, so that a
// typo cannot make the gateway allocate gigabytes before serving anything.
const (
	MaxLoops          = 256
	MaxLoopQueue      = 65536
	MaxMaxPendingAuth = 65536
)

// ErrInvalidConfig is wrapped by every error Config.Validate returns.
var ErrInvalidConfig = errors.New("invalid gateway config")

// Config is the gateway's configuration, the [gateway] table of config.toml.
// The zero value is valid and means the defaults. Validate rejects bad
// values; nothing is silently clamped.
type Config struct {
	// GatewayID is sent in ADVERTISE and GWINFO.
	GatewayID uint8 `toml:"gateway_id"`
	// Loops is the number of event loops sessions are spread over
	// (0: one per CPU).
	Loops int `toml:"loops"`
	// MaxClients caps the clients with gateway state (active, asleep or
	// awake), and the sessions MQTT-SN clients hold in the core, attached
	// or not; it must be below the core's max_sessions, so MQTT listener
	// clients always have room. A CONNECT beyond it is answered "rejected:
	// congestion" (0: DefaultMaxClients).
	MaxClients int `toml:"max_clients"`
	// MaxUnverified caps the clients that have sent nothing since their
	// CONNACK (a CONNECT from a spoofed address never does). A new CONNECT
	// beyond it evicts the oldest such client of its loop (its session
	// ends with it, if its CONNECT created it). Each loop has an equal
	// share, at least 1. Keep it well below MaxClients: strangers then
	// never hold the places of clients that answered (0:
	// DefaultMaxUnverified).
	MaxUnverified int `toml:"max_unverified"`
	// LoopQueue is how many received datagrams may wait for one loop; more
	// are dropped and counted (0: DefaultLoopQueue).
	LoopQueue int `toml:"loop_queue"`
	// MaxPendingAuth is how many MQTT-SN 2.0 CONNECTs (and
	// re-authentications) may wait for their password check, which runs
	// off the event loops; one beyond it is refused with CONNACK "server
	// busy" and counted (0: DefaultMaxPendingAuth).
	MaxPendingAuth int `toml:"max_pending_auth"`
	// MaxMessageSize is the largest datagram accepted from or sent to a
	// client, in octets (0: DefaultMaxMessageSize; at most 65535). A
	// message for a client that would be larger is not delivered to it and
	// is counted, as the specification asks.
	MaxMessageSize int `toml:"max_message_size"`
	// MaxClientIDLen is the longest client id accepted in CONNECT
	// (0: DefaultMaxClientIDLen). MQTT-SN 1.2 asks for 1 to 23 characters;
	// real sensors often use longer ids.
	MaxClientIDLen int `toml:"max_client_id_len"`
	// MaxTopicsPerClient caps the normal topic ids one client holds; an id
	// is held until the client CONNECTs again, also after UNSUBSCRIBE
	// (0: DefaultMaxTopicsPerClient).
	MaxTopicsPerClient int `toml:"max_topics_per_client"`
	// RetryInterval is Tretry: how long the gateway waits for an
	// acknowledgement of a REGISTER, PUBLISH or PUBREL before resending it
	// (0: DefaultRetryInterval).
	RetryInterval time.Duration `toml:"retry_interval"`
	// MaxRetries is Nretry: resends before a silent client is lost
	// (0: DefaultMaxRetries).
	MaxRetries int `toml:"max_retries"`
	// SessionExpiry is how long the core keeps a persistent
	// (CleanSession=0) client's session (subscriptions, queued messages,
	// will) after it disconnects or is lost (0: DefaultSessionExpiry, a
	// week). MQTT-SN 1.2 keeps it until a CONNECT with CleanSession; a
	// finite default lets sessions nobody comes back for go away. Set it
	// above the longest time a sensor may stay away.
	SessionExpiry time.Duration `toml:"session_expiry"`
	// AddressMigration lists the client ids (exact, or a prefix ending in
	// "*"; "*" alone means every client) that may wake from sleep with a
	// PINGREQ carrying their client id from an address other than the one
	// they slept at. Empty (the default): a sensor whose address changed
	// must CONNECT again. See docs/security.md for the trade-off.
	AddressMigration []string `toml:"address_migration"`
	// PahoForwarders lists the source prefixes (CIDR) of forwarders that
	// may use Eclipse Paho's MQTT-SN 2.0 Forwarder Encapsulation (0xFD,
	// not the draft's 0xFC; docs/mqttsn-2.md P3). Empty (the default):
	// 0xFD is dropped and counted.
	PahoForwarders []string `toml:"paho_forwarders"`
	// Predefined lists the predefined topic ids.
	Predefined []PredefinedTopic `toml:"predefined"`
	// QoSMinus1 configures publishing without a connection.
	QoSMinus1 QoSMinus1Config `toml:"qos_minus_one"`
	// Advertise configures periodic ADVERTISE messages.
	Advertise AdvertiseConfig `toml:"advertise"`
}

// PredefinedTopic maps a predefined topic id to a topic name. A topic
// containing "{client_id}" is a template, expanded with the client's id.
// With ClientID set, the mapping applies to that client only and overrides
// a global mapping of the same id.
type PredefinedTopic struct {
	ID       uint16 `toml:"id"`
	Topic    string `toml:"topic"`
	ClientID string `toml:"client_id"`
}

// QoSMinus1Config configures QoS -1 PUBLISH, which needs no connection and
// is accepted only with predefined ids and short topic names.
type QoSMinus1Config struct {
	// Enabled turns QoS -1 on; it is off by default, because anyone who
	// can send a datagram can then publish.
	Enabled bool `toml:"enabled"`
	// AllowFrom lists the source prefixes (CIDR, e.g. "10.0.0.0/8") from
	// which QoS -1 is accepted; empty means any source.
	AllowFrom []string `toml:"allow_from"`
	// ClientID is the origin the core sees for these messages
	// (default DefaultQoSMinus1ClientID). Only global predefined topics and
	// templates expanded with this id apply.
	ClientID string `toml:"client_id"`
}

// AdvertiseConfig configures periodic ADVERTISE messages.
type AdvertiseConfig struct {
	// Interval between ADVERTISE messages; 0 turns them off (the default).
	// The specification suggests more than 15 minutes.
	Interval time.Duration `toml:"interval"`
	// Address is the broadcast or multicast "host:port" to send them to.
	Address string `toml:"address"`
}

// withDefaults returns c with zero fields replaced by their defaults.
func (c Config) withDefaults() Config {
	if c.MaxClients == 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.LoopQueue == 0 {
		c.LoopQueue = DefaultLoopQueue
	}
	if c.MaxPendingAuth == 0 {
		c.MaxPendingAuth = DefaultMaxPendingAuth
	}
	if c.MaxUnverified == 0 {
		c.MaxUnverified = DefaultMaxUnverified
	}
	if c.SessionExpiry == 0 {
		c.SessionExpiry = DefaultSessionExpiry
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.MaxClientIDLen == 0 {
		c.MaxClientIDLen = DefaultMaxClientIDLen
	}
	if c.MaxTopicsPerClient == 0 {
		c.MaxTopicsPerClient = DefaultMaxTopicsPerClient
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = DefaultRetryInterval
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.QoSMinus1.ClientID == "" {
		c.QoSMinus1.ClientID = DefaultQoSMinus1ClientID
	}
	return c
}

// Validate reports the first invalid value, naming its key.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("gateway: %s: %w", fmt.Sprintf(format, args...), ErrInvalidConfig)
	}
	switch {
	case c.Loops < 0 || c.Loops > MaxLoops:
		return bad("loops = %d: must be 0 (one per CPU) to %d", c.Loops, MaxLoops)
	case c.MaxClients < 0:
		return bad("max_clients = %d: must not be negative", c.MaxClients)
	case c.MaxUnverified < 0:
		return bad("max_unverified = %d: must not be negative", c.MaxUnverified)
	case c.LoopQueue < 0 || c.LoopQueue > MaxLoopQueue:
		return bad("loop_queue = %d: must be 0 (default) to %d", c.LoopQueue, MaxLoopQueue)
	case c.MaxPendingAuth < 0 || c.MaxPendingAuth > MaxMaxPendingAuth:
		return bad("max_pending_auth = %d: must be 0 (default) to %d", c.MaxPendingAuth, MaxMaxPendingAuth)
	case c.MaxMessageSize != 0 && (c.MaxMessageSize < 16 || c.MaxMessageSize > 65535):
		return bad("max_message_size = %d: must be 16 to 65535", c.MaxMessageSize)
	case c.MaxClientIDLen < 0:
		return bad("max_client_id_len = %d: must not be negative", c.MaxClientIDLen)
	case c.MaxTopicsPerClient < 0 || c.MaxTopicsPerClient > 65534:
		return bad("max_topics_per_client = %d: must be 0 to 65534", c.MaxTopicsPerClient)
	case c.RetryInterval < 0:
		return bad("retry_interval = %v: must not be negative", c.RetryInterval)
	case c.MaxRetries < 0 || c.MaxRetries > 255:
		return bad("max_retries = %d: must be 0 (default) to 255", c.MaxRetries)
	case c.SessionExpiry < 0:
		return bad("session_expiry = %v: must not be negative", c.SessionExpiry)
	case c.Advertise.Interval < 0:
		return bad("advertise.interval = %v: must not be negative", c.Advertise.Interval)
	case c.Advertise.Interval > 0 && c.Advertise.Interval < time.Second:
		return bad("advertise.interval = %v: must be at least 1s", c.Advertise.Interval)
	case c.Advertise.Interval > 65535*time.Second:
		return bad("advertise.interval = %v: ADVERTISE carries at most 65535s", c.Advertise.Interval)
	case c.Advertise.Interval > 0 && c.Advertise.Address == "":
		return bad("advertise.address is required when advertise.interval is set")
	}
	if c.Advertise.Address != "" {
		if _, err := netip.ParseAddrPort(c.Advertise.Address); err != nil {
			return bad("advertise.address = %q: %v", c.Advertise.Address, err)
		}
	}
	for i, p := range c.AddressMigration {
		if p == "" || strings.Contains(strings.TrimSuffix(p, "*"), "*") {
			return bad("address_migration[%d] = %q: want a client id or a prefix ending in *", i, p)
		}
	}
	for _, p := range c.PahoForwarders {
		if _, err := netip.ParsePrefix(p); err != nil {
			return bad("paho_forwarders %q: %v", p, err)
		}
	}
	for _, p := range c.QoSMinus1.AllowFrom {
		if _, err := netip.ParsePrefix(p); err != nil {
			return bad("qos_minus_one.allow_from %q: %v", p, err)
		}
	}
	type key struct {
		id     uint16
		client string
	}
	seen := map[key]bool{}
	for i, p := range c.Predefined {
		switch {
		case p.ID == 0 || p.ID == 0xFFFF:
			return bad("predefined[%d]: id %d is reserved", i, p.ID)
		case p.Topic == "":
			return bad("predefined[%d] (id %d): topic is empty", i, p.ID)
		case strings.ContainsAny(p.Topic, "+#"):
			return bad("predefined[%d] (id %d): topic %q contains a wildcard", i, p.ID, p.Topic)
		case seen[key{p.ID, p.ClientID}]:
			return bad("predefined[%d]: id %d is defined twice for client %q", i, p.ID, p.ClientID)
		}
		seen[key{p.ID, p.ClientID}] = true
	}
	return nil
}

package snclient

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/gannet-mqtt/gannet/snpacket"
)

// Defaults applied by New for zero-valued Options fields.
const (
	DefaultKeepAlive      = 60 * time.Second
	DefaultRetryInterval  = 10 * time.Second // T_retry, MQTT-SN 1.2 §7.2 suggests 10-15 s
	DefaultMaxRetries     = 3                // N_retry, §7.2 suggests 3-5
	DefaultMaxMessageSize = 1500
	// MaxClientIDLen is the longest client id MQTT-SN 1.2 allows (as MQTT 3.1).
	MaxClientIDLen = 23
)

// Options configure a Client. The zero value is valid: every zero field
// means its default. Options are read once by New; later changes have no
// effect.
type Options struct {
	// Version is the protocol: Version12 (the zero value means it too) or
	// Version20 (MQTT-SN 2.0, draft CSD01; see docs/mqttsn-2.md for what
	// the client supports in 2.0).
	Version Version
	// ClientID identifies the client to the gateway: 1 to 23 octets. Empty
	// means a random id "snc-" followed by 8 hex digits.
	ClientID string
	// KeepAlive is the CONNECT Duration: the client sends PINGREQ once per
	// period while active. Whole seconds, 1 s to 65535 s; zero means
	// DefaultKeepAlive.
	KeepAlive time.Duration
	// PersistentSession, when true, sends CONNECT with CleanSession=0 so the
	// gateway keeps subscriptions, registrations and will data. The zero
	// value asks for a clean session.
	PersistentSession bool
	// Will, when not nil, is offered in the CONNECT will dialogue.
	Will *Will
	// Auth, when not nil, authenticates an MQTT-SN 2.0 CONNECT (1.2 has no
	// authentication). Only single-step methods are supported: the gateway
	// must answer the CONNECT with CONNACK, not with AUTH.
	Auth *Auth
	// AllowAddressChange sets an MQTT-SN 2.0 CONNECT's "allow network
	// address changes": the gateway may then re-bind the connection to a
	// new address that sends a Connection Encapsulation naming the client
	// id. (The client does not send that envelope itself yet; see
	// docs/mqttsn-2.md.) A 1.2 client refuses it.
	AllowAddressChange bool
	// IgnoreWakeup makes an asleep MQTT-SN 2.0 client ignore the
	// gateway's WAKEUP, so that it wakes only when the application calls
	// CheckMessages (a sensor that keeps to its own schedule). By default
	// a WAKEUP runs CheckMessages at once.
	IgnoreWakeup bool
	// RetryInterval is T_retry: how long to wait for an answer before
	// retransmitting. Zero means DefaultRetryInterval.
	RetryInterval time.Duration
	// MaxRetries is N_retry: retransmissions before giving up (and treating
	// the connection as lost). Zero means DefaultMaxRetries.
	MaxRetries int
	// MaxMessageSize bounds every datagram sent and received, in octets
	// (16 to 65535). Longer incoming datagrams are dropped. Zero means
	// DefaultMaxMessageSize.
	MaxMessageSize int
	// PredefinedTopics maps predefined topic ids to their names, as
	// configured on the gateway. Incoming PUBLISHes with a predefined id are
	// delivered under this name, and Publish(Named(name)) uses the id instead
	// of registering the name.
	PredefinedTopics map[uint16]string
	// Handler receives every application message from the gateway; see
	// [Handler]. Nil means messages are acknowledged and dropped.
	Handler Handler
	// RegisterFilter, when set, decides on every REGISTER from the gateway:
	// it returns snpacket.Accepted to accept the id, or a rejection code to
	// send in the REGACK (the gateway then treats it as an unsubscribe from
	// that topic). It runs on the reader goroutine and must not block. Nil
	// accepts every registration.
	RegisterFilter func(topicID uint16, topic string) snpacket.ReturnCode
	// ConnectionLost, when set, is called once each time an active (or
	// asleep) connection ends without the client asking: the keep-alive or a
	// request ran out of retries (the error wraps ErrNoResponse) or the
	// gateway sent DISCONNECT (ErrGatewayDisconnected). It runs on the reader
	// goroutine, a timer goroutine or the caller of a failed request; it must
	// not block, and must call neither Close nor the client's blocking
	// methods (hand reconnecting to another goroutine).
	ConnectionLost func(err error)
	// Logger, when set, receives state transitions ("from -> to") and
	// dropped datagrams at Debug level. Nil means the client never logs.
	Logger *slog.Logger
}

// Will is the will a client registers with the gateway in the CONNECT
// dialogue.
type Will struct {
	// Topic is the will topic name; it must not be empty.
	Topic string
	// Message is the will payload.
	Message []byte
	// QoS is the will's QoS, 0 to 2.
	QoS snpacket.QoS
	// Retain sets the will's retain flag.
	Retain bool
}

// Auth is the authentication an MQTT-SN 2.0 CONNECT carries: a method
// name, such as "PLAIN", and its data (see PlainAuth).
type Auth struct {
	// Method names the method; 1 to 255 octets.
	Method string
	// Data is the method's data, at most 65535 octets.
	Data []byte
}

// PlainAuth returns the SASL PLAIN (RFC 4616) authentication for user and
// password, without an authorization identity.
func PlainAuth(user, password string) *Auth {
	return &Auth{Method: "PLAIN", Data: []byte("\x00" + user + "\x00" + password)}
}

// Validate reports the first invalid field of o, naming it. Zero values are
// valid (they mean the defaults); Validate never adjusts a value.
func (o *Options) Validate() error {
	switch {
	case o.Version != snpacket.VersionUnknown && o.Version != snpacket.Version12 && o.Version != snpacket.Version20:
		return optErr("Version", "%v is neither 1.2 nor 2.0", o.Version)
	case len(o.ClientID) > MaxClientIDLen:
		return optErr("ClientID", "%d octets, at most %d allowed", len(o.ClientID), MaxClientIDLen)
	case o.KeepAlive < 0 || o.KeepAlive > 65535*time.Second:
		return optErr("KeepAlive", "%v outside 0..65535s", o.KeepAlive)
	case o.KeepAlive%time.Second != 0:
		return optErr("KeepAlive", "%v is not a whole number of seconds", o.KeepAlive)
	case o.RetryInterval < 0:
		return optErr("RetryInterval", "%v is negative", o.RetryInterval)
	case o.MaxRetries < 0:
		return optErr("MaxRetries", "%d is negative", o.MaxRetries)
	case o.MaxMessageSize != 0 && (o.MaxMessageSize < 16 || o.MaxMessageSize > snpacket.MaxLen):
		return optErr("MaxMessageSize", "%d outside 16..%d", o.MaxMessageSize, snpacket.MaxLen)
	case o.AllowAddressChange && o.Version != snpacket.Version20:
		return optErr("AllowAddressChange", "MQTT-SN %v has no Connection Encapsulation", Version12)
	}
	if a := o.Auth; a != nil {
		switch {
		case o.Version != snpacket.Version20:
			return optErr("Auth", "MQTT-SN %v has no authentication", Version12)
		case a.Method == "" || len(a.Method) > 255:
			return optErr("Auth.Method", "%d octets, want 1 to 255", len(a.Method))
		case len(a.Data) > 0xFFFF:
			return optErr("Auth.Data", "%d octets, at most 65535", len(a.Data))
		}
	}
	if w := o.Will; w != nil {
		switch {
		case w.Topic == "":
			return optErr("Will.Topic", "empty")
		case w.QoS < snpacket.QoS0 || w.QoS > snpacket.QoS2:
			return optErr("Will.QoS", "%v outside 0..2", w.QoS)
		}
	}
	for id, name := range o.PredefinedTopics {
		switch {
		case id == 0 || id == 0xFFFF:
			return optErr("PredefinedTopics", "reserved topic id 0x%04x", id)
		case name == "":
			return optErr("PredefinedTopics", "empty name for topic id %d", id)
		}
	}
	return nil
}

func optErr(field, format string, args ...any) error {
	return fmt.Errorf("snclient: option %s: %s: %w", field, fmt.Sprintf(format, args...), ErrInvalidOption)
}

// withDefaults returns a copy of o with every zero field set to its default
// and the maps and will copied, so the caller's values can change freely.
func (o Options) withDefaults(randomID func() string) Options {
	if o.ClientID == "" {
		o.ClientID = randomID()
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.RetryInterval == 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = DefaultMaxRetries
	}
	if o.MaxMessageSize == 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.Will != nil {
		w := *o.Will
		w.Message = append([]byte(nil), w.Message...)
		o.Will = &w
	}
	if o.Auth != nil {
		a := *o.Auth
		a.Data = append([]byte(nil), a.Data...)
		o.Auth = &a
	}
	if o.PredefinedTopics != nil {
		m := make(map[uint16]string, len(o.PredefinedTopics))
		for id, name := range o.PredefinedTopics {
			m[id] = name
		}
		o.PredefinedTopics = m
	}
	return o
}

package gateway

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
)

// Changing the configuration of a running gateway.
//
// Every read of a [gateway] setting goes through one atomic pointer to an
// immutable settings value (Gateway.live): on the per-datagram path that is
// one atomic load, no lock, no allocation. SetConfig builds a new value and
// swaps it in; sessions and the state they hold stay as they are, and a
// change applies to what happens next:
//
//   - gateway_id: the next GWINFO and ADVERTISE.
//   - max_clients: nobody is disconnected; a CONNECT is refused while the
//     gateway holds as many clients (or more), and the sensors' share of the
//     core's sessions (mqttcore.SessionBudget) follows.
//   - max_unverified: clients on probation stay; each loop's share is
//     recomputed, and a CONNECT beyond it evicts the loop's oldest as usual
//     (one per CONNECT, so a lowered limit is reached gradually).
//   - max_message_size: the next datagram received, and the next message
//     sent, is measured against it; a 1.2 PUBLISH in flight that no longer
//     fits is abandoned at its retry (deliver.go). Raised, receive buffers grow as they are
//     recycled (a smaller one is replaced before its next read); the read
//     each link has in progress at that moment keeps its old buffer, so a
//     datagram above the old limit arriving just then is dropped and
//     counted like any oversized one.
//   - max_client_id_len, session_expiry: the next CONNECT (a session keeps
//     the expiry it was given).
//   - max_topics_per_client: the next registration; ids held stay.
//   - retry_interval, max_retries: the next resend timer and retry count.
//   - address_migration, paho_forwarders, qos_minus_one.enabled and
//     .allow_from: the next datagram they concern.
//   - predefined: the table is replaced whole (SetPredefined).
//
// loops, loop_queue and max_pending_auth size the event loops and queues
// built by New; qos_minus_one.client_id names the core client built by New;
// advertise.interval and advertise.address set up the ADVERTISE goroutine
// of each link. Those keep their running values (SetConfig names them).

// settings is the configuration in force with what is derived from it.
// It is never modified once stored: SetConfig stores a new one.
type settings struct {
	Config // defaults filled in
	// allow is qos_minus_one.allow_from, parsed.
	allow []netip.Prefix
	// paho is paho_forwarders, parsed (forward2.go).
	paho []netip.Prefix
	// loops is the number of event loops (fixed at New).
	loops int
	// unverifiedPerLoop is each loop's share of max_unverified, at least 1.
	unverifiedPerLoop int
}

// newSettings derives the settings of cfg, which Validate accepted, for a
// gateway of loops event loops.
func newSettings(cfg Config, loops int) *settings {
	cfg = cfg.withDefaults()
	s := &settings{Config: cfg, loops: loops, unverifiedPerLoop: max(1, cfg.MaxUnverified/loops)}
	for _, p := range cfg.QoSMinus1.AllowFrom {
		s.allow = append(s.allow, netip.MustParsePrefix(p)) // checked by Validate
	}
	for _, p := range cfg.PahoForwarders {
		s.paho = append(s.paho, netip.MustParsePrefix(p)) // checked by Validate
	}
	return s
}

// live returns the settings in force: one atomic load.
func (g *Gateway) live() *settings { return g.set.Load() }

// recvSize is the receive buffer size: one octet more than
// max_message_size, to notice oversized datagrams.
func (s *settings) recvSize() int { return s.MaxMessageSize + 1 }

// SetConfig applies cfg to the running gateway (see the comment above for
// what each change means). An invalid cfg, or a max_clients not below the
// core's max_sessions, is refused whole and nothing changes. Keys that
// cannot change while the gateway runs keep their running values and are
// returned by their config.toml names. SetConfig is not safe for
// concurrent use with itself (serve calls it under its reload lock).
func (g *Gateway) SetConfig(cfg Config) (kept []string, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	next := cfg.withDefaults()
	if ms := g.broker.Config().MaxSessions; next.MaxClients >= ms {
		return nil, fmt.Errorf("gateway: max_clients = %d: must be below the broker's max_sessions = %d, so MQTT clients keep room: %w",
			next.MaxClients, ms, ErrInvalidConfig)
	}
	old := g.live()
	keep := func(name string, differ bool, restore func()) {
		if differ {
			kept = append(kept, name)
			restore()
		}
	}
	keep("loops", loopCount(next) != old.loops, func() { next.Loops = old.Loops })
	keep("loop_queue", next.LoopQueue != old.LoopQueue, func() { next.LoopQueue = old.LoopQueue })
	keep("max_pending_auth", next.MaxPendingAuth != old.MaxPendingAuth, func() { next.MaxPendingAuth = old.MaxPendingAuth })
	keep("qos_minus_one.client_id", next.QoSMinus1.ClientID != old.QoSMinus1.ClientID, func() { next.QoSMinus1.ClientID = old.QoSMinus1.ClientID })
	keep("advertise.interval", next.Advertise.Interval != old.Advertise.Interval, func() { next.Advertise.Interval = old.Advertise.Interval })
	keep("advertise.address", next.Advertise.Address != old.Advertise.Address, func() { next.Advertise.Address = old.Advertise.Address })
	if err := g.budget.SetMax(next.MaxClients); err != nil {
		return nil, fmt.Errorf("gateway: max_clients: %w", err)
	}
	if !reflect.DeepEqual(next.Predefined, old.Predefined) {
		g.ids.pre.Store(newPredefined(next.Predefined))
	}
	g.set.Store(newSettings(next, old.loops))
	return kept, nil
}

// ConfigChanges lists the config.toml keys of the [gateway] table whose
// values differ between a and b (defaults filled in), in table order;
// "predefined" stands for the whole [[gateway.predefined]] list.
func ConfigChanges(a, b Config) []string {
	a, b = a.withDefaults(), b.withDefaults()
	var ch []string
	add := func(name string, differ bool) {
		if differ {
			ch = append(ch, name)
		}
	}
	add("gateway_id", a.GatewayID != b.GatewayID)
	add("loops", a.Loops != b.Loops)
	add("max_clients", a.MaxClients != b.MaxClients)
	add("max_unverified", a.MaxUnverified != b.MaxUnverified)
	add("loop_queue", a.LoopQueue != b.LoopQueue)
	add("max_pending_auth", a.MaxPendingAuth != b.MaxPendingAuth)
	add("max_message_size", a.MaxMessageSize != b.MaxMessageSize)
	add("max_client_id_len", a.MaxClientIDLen != b.MaxClientIDLen)
	add("max_topics_per_client", a.MaxTopicsPerClient != b.MaxTopicsPerClient)
	add("retry_interval", a.RetryInterval != b.RetryInterval)
	add("max_retries", a.MaxRetries != b.MaxRetries)
	add("session_expiry", a.SessionExpiry != b.SessionExpiry)
	add("address_migration", !slices.Equal(a.AddressMigration, b.AddressMigration))
	add("paho_forwarders", !slices.Equal(a.PahoForwarders, b.PahoForwarders))
	add("predefined", !slices.Equal(a.Predefined, b.Predefined))
	add("qos_minus_one.enabled", a.QoSMinus1.Enabled != b.QoSMinus1.Enabled)
	add("qos_minus_one.allow_from", !slices.Equal(a.QoSMinus1.AllowFrom, b.QoSMinus1.AllowFrom))
	add("qos_minus_one.client_id", a.QoSMinus1.ClientID != b.QoSMinus1.ClientID)
	add("advertise.interval", a.Advertise.Interval != b.Advertise.Interval)
	add("advertise.address", a.Advertise.Address != b.Advertise.Address)
	return ch
}

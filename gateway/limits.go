package gateway

import (
	"errors"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// Limit names one of the gateway's configurable limits, as counted in
// Stats.LimitHits and named in the log line a hit produces.
type Limit uint8

// The limits. Each is a key of the [gateway] table except LimitBroker, which
// stands for the [broker] table's limits as the core reports them.
const (
	// LimitClients is max_clients: CONNACK "rejected: congestion".
	LimitClients Limit = iota
	// LimitClientIDLen is max_client_id_len: CONNACK "rejected: not supported".
	LimitClientIDLen
	// LimitTopicsPerClient is max_topics_per_client: REGACK or SUBACK
	// "rejected: congestion"; a message that needs a new id is not delivered.
	LimitTopicsPerClient
	// LimitMessageSizeIn is max_message_size for received datagrams: dropped.
	LimitMessageSizeIn
	// LimitMessageSizeOut is max_message_size for messages to a client: not
	// delivered to that client (§6.9: silently abandoned).
	LimitMessageSizeOut
	// LimitLoopQueue is loop_queue: a datagram for a busy loop is dropped.
	LimitLoopQueue
	// LimitBroker is a limit of the broker core (max_sessions, max_inflight,
	// max_payload_size, max_retained): the protocol's refusal is sent.
	LimitBroker
	// LimitUnknownSourceRate is Options.UnknownSourceLimiter (the
	// rate_limit.unknown_sources table): the datagram is dropped unanswered.
	LimitUnknownSourceRate
	// LimitQoSMinus1Rate is Options.QoSMinus1Limiter (the
	// rate_limit.qos_minus_one table): the QoS -1 PUBLISH is dropped.
	LimitQoSMinus1Rate
	// LimitUnverified is max_unverified reached by a CONNECT: the oldest
	// client on probation of the loop is evicted (probation.go).
	LimitUnverified
	// LimitPendingAuth is max_pending_auth: a 2.0 CONNECT whose password
	// check has no place in the queue gets CONNACK "server busy" (auth2.go).
	LimitPendingAuth
	numLimits
)

var limitNames = [numLimits]string{
	"max_clients", "max_client_id_len", "max_topics_per_client",
	"max_message_size (received)", "max_message_size (sent)", "loop_queue", "broker",
	"rate_limit.unknown_sources", "rate_limit.qos_minus_one", "max_unverified", "max_pending_auth",
}

// String returns the configuration key of the limit.
func (l Limit) String() string {
	if l < numLimits {
		return limitNames[l]
	}
	return "unknown"
}

// LimitHits counts, per limit, how often the limit was hit.
type LimitHits [numLimits]uint64

// limitWarnInterval spaces the Warn lines about hit limits: a flood of
// oversized datagrams must not become a flood of log lines.
const limitWarnInterval = time.Second

// limits counts limit hits and rate-limits their log lines.
type limits struct {
	hits       [numLimits]atomic.Uint64
	lastWarn   atomic.Int64 // UnixNano of the last Warn line
	suppressed atomic.Uint64
}

// limitHit counts a hit of l and logs it at Warn, at most once per
// limitWarnInterval for the whole gateway (the line says how many hits went
// unlogged since the last one).
func (g *Gateway) limitHit(l Limit, clientID string, remote netip.AddrPort, err error) {
	g.limits.hits[l].Add(1)
	now := time.Now().UnixNano()
	last := g.limits.lastWarn.Load()
	if now-last < int64(limitWarnInterval) || !g.limits.lastWarn.CompareAndSwap(last, now) {
		g.limits.suppressed.Add(1)
		return
	}
	attrs := []any{"limit", l.String(), "remote", remote, "suppressed", g.limits.suppressed.Swap(0)}
	if clientID != "" {
		attrs = append(attrs, "client_id", clientID)
	}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	g.log.Warn("limit hit", attrs...)
}

// allowUnknown asks the configured limiter whether the gateway may work on
// m from src, a source with no client state; it counts and logs a refusal.
// Messages the gateway ignores anyway cost nothing and are not limited.
func (g *Gateway) allowUnknown(src netip.AddrPort, m sn.Message) bool {
	lim, which := g.opts.UnknownSourceLimiter, LimitUnknownSourceRate
	switch m := m.(type) {
	case *sn.Publish:
		if m.QoS == sn.QoSMinus1 {
			lim, which = g.opts.QoSMinus1Limiter, LimitQoSMinus1Rate
		}
	case *sn.Advertise, *sn.GWInfo, *sn.Connack, *sn.WillTopicReq, *sn.WillMsgReq, *sn.Suback,
		*sn.Unsuback, *sn.PingResp, *sn.WillTopicResp, *sn.WillMsgResp:
		return true // ignored, and counted, by handleUnknown
	}
	if lim == nil || lim.Allow(src.Addr(), time.Now()) {
		return true
	}
	g.limitHit(which, "", src, nil)
	return false
}

// isBrokerLimit reports whether err is the core refusing for one of its
// limits, as opposed to refusing the request itself.
func isBrokerLimit(err error) bool {
	return errors.Is(err, mqttcore.ErrTooManySessions) || errors.Is(err, mqttcore.ErrInflightFull) ||
		errors.Is(err, mqttcore.ErrPayloadTooLarge) || errors.Is(err, mqttcore.ErrRetainedFull) ||
		errors.Is(err, mqttcore.ErrQueueFull)
}

// allowQoSMinus1 reports whether src may publish at QoS -1: the feature is
// on and src is in qos_minus_one.allow_from (anyone when that is empty).
// The per-source rate (Options.QoSMinus1Limiter) is asked before, in
// allowUnknown.
func (g *Gateway) allowQoSMinus1(src netip.Addr) bool {
	set := g.live()
	return set.QoSMinus1.Enabled && allowed(set.allow, src)
}

// allowed reports whether src may publish at QoS -1.
func allowed(prefixes []netip.Prefix, src netip.Addr) bool {
	if len(prefixes) == 0 {
		return true
	}
	src = src.Unmap()
	for _, p := range prefixes {
		if p.Contains(src) {
			return true
		}
	}
	return false
}

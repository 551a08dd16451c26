package main

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/radio"
)

// rateLimitConfig is the [rate_limit] table: per-source token buckets the
// gateway consults for work it does on behalf of unverified sources. Each
// sub-table is optional; without it that limit is off.
type rateLimitConfig struct {
	// UnknownSources limits the datagrams the gateway answers or acts on
	// for a source it has no client for: CONNECT, SEARCHGW, a wake from a
	// new address, and the DISCONNECT that refuses anything else.
	UnknownSources *radio.LimiterConfig `toml:"unknown_sources"`
	// QoSMinus1 limits QoS -1 PUBLISH per source.
	QoSMinus1 *radio.LimiterConfig `toml:"qos_minus_one"`
}

// Validate checks the tables that are present.
func (c *rateLimitConfig) Validate() error {
	for name, lc := range map[string]*radio.LimiterConfig{"unknown_sources": c.UnknownSources, "qos_minus_one": c.QoSMinus1} {
		if lc == nil {
			continue
		}
		if err := lc.Validate(); err != nil {
			return fmt.Errorf("rate_limit.%s: %w", name, err)
		}
	}
	return nil
}

// swapLimiter is a gateway.SourceLimiter whose radio.Limiter a reload can
// replace, turn on or turn off; with none it allows everything.
type swapLimiter struct {
	p atomic.Pointer[radio.Limiter]
}

// Allow implements gateway.SourceLimiter.
func (s *swapLimiter) Allow(src netip.Addr, now time.Time) bool {
	l := s.p.Load()
	return l == nil || l.Allow(src, now)
}

// limiters are the gateway's [rate_limit] limiters.
type limiters struct {
	unknown, qosMinus1 swapLimiter
}

// named lists the limiters by their table's name, for the metrics.
func (l *limiters) named() []namedLimiter {
	return []namedLimiter{{"unknown_sources", &l.unknown}, {"qos_minus_one", &l.qosMinus1}}
}

// apply gives the gateway the limiters the [rate_limit] table asks for.
// They are always set, so that a reload can turn a limit on later; one
// whose table is absent allows everything.
func (c *rateLimitConfig) apply(opts *gateway.Options) (*limiters, error) {
	l := &limiters{}
	if err := l.set(c); err != nil {
		return nil, err
	}
	opts.UnknownSourceLimiter, opts.QoSMinus1Limiter = &l.unknown, &l.qosMinus1
	return l, nil
}

// set builds the limiters c asks for and puts them in force; on error
// none changes. A replaced limiter starts with full buckets.
func (l *limiters) set(c *rateLimitConfig) error {
	build := func(name string, lc *radio.LimiterConfig) (*radio.Limiter, error) {
		if lc == nil {
			return nil, nil
		}
		lim, err := radio.NewLimiter(*lc)
		if err != nil {
			return nil, fmt.Errorf("rate_limit.%s: %w", name, err)
		}
		return lim, nil
	}
	unknown, err := build("unknown_sources", c.UnknownSources)
	if err != nil {
		return err
	}
	qosm1, err := build("qos_minus_one", c.QoSMinus1)
	if err != nil {
		return err
	}
	l.unknown.p.Store(unknown)
	l.qosMinus1.p.Store(qosm1)
	return nil
}

// Validate checks what spans the tables of config.toml: the gateway's
// max_clients is the sensors' share of the broker's max_sessions
// (mqttcore.SessionBudget), and must leave room for MQTT clients.
func (c *fileConfig) Validate() error {
	mc, ms := c.Gateway.MaxClients, c.Broker.MaxSessions
	if mc == 0 {
		mc = gateway.DefaultMaxClients
	}
	if ms == 0 {
		ms = mqttcore.DefaultMaxSessions
	}
	if mc > 0 && ms > 0 && mc >= ms {
		return fmt.Errorf("gateway.max_clients = %d: must be below broker.max_sessions = %d: it is the sensors' share of the broker's sessions, and MQTT clients need room", mc, ms)
	}
	return nil
}

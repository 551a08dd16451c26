package main

import (
	"fmt"

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

// apply sets the gateway's limiters the [rate_limit] table asks for.
func (c *rateLimitConfig) apply(opts *gateway.Options) error {
	if c.UnknownSources != nil {
		lim, err := radio.NewLimiter(*c.UnknownSources)
		if err != nil {
			return fmt.Errorf("rate_limit.unknown_sources: %w", err)
		}
		opts.UnknownSourceLimiter = lim
	}
	if c.QoSMinus1 != nil {
		lim, err := radio.NewLimiter(*c.QoSMinus1)
		if err != nil {
			return fmt.Errorf("rate_limit.qos_minus_one: %w", err)
		}
		opts.QoSMinus1Limiter = lim
	}
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

package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/bridge"
	"github.com/gannet-mqtt/gannet/mqttcore/transparent"
	"github.com/gannet-mqtt/gannet/radio"
)

// fileConfig is the whole of config.toml. Each section is the owning
// package's own Config; this type only puts them together.
type fileConfig struct {
	Log     logConfig       `toml:"log"`
	Broker  mqttcore.Config `toml:"broker"`
	Gateway gateway.Config  `toml:"gateway"`
	// Listen lists the MQTT-SN datagram listeners (plain UDP or DTLS).
	Listen []radio.ListenerConfig `toml:"listen"`
	// Bridges are the uplinks to remote MQTT brokers (docs/bridge.md).
	Bridges []bridge.Config `toml:"bridge"`
	// MQTT is the MQTT 3.1.1/5.0 listener for local applications
	// (serve_mqtt.go, docs/configuration.md).
	MQTT mqttConfig `toml:"mqtt"`
	// RateLimit holds the per-source limits on work for unverified sources
	// (serve_limits.go).
	RateLimit rateLimitConfig `toml:"rate_limit"`
	// HTTP is the operator's HTTP listener: status page, /metrics,
	// /healthz, /readyz (serve_http.go).
	HTTP httpConfig `toml:"http"`
	// Store is where the broker core's durable state lives
	// (serve_store.go, docs/durability.md).
	Store storeConfig `toml:"store"`
	// Transparent gives sensors whose client ids match its patterns their
	// own session on a remote broker (serve_transparent.go,
	// docs/scaling.md).
	Transparent transparent.Config `toml:"transparent"`
}

type logConfig struct {
	// Level is debug, info, warn or error (default info).
	Level string `toml:"level"`
	// Format is text or json (default text).
	Format string `toml:"format"`
}

func (c *logConfig) Validate() error {
	if _, err := c.level(); err != nil {
		return err
	}
	switch c.Format {
	case "", "text", "json":
		return nil
	}
	return fmt.Errorf("log.format = %q: must be text or json", c.Format)
}

// logger returns a logger writing to w at the configured level and format.
// Call it after Validate.
func (c *logConfig) logger(w io.Writer) *slog.Logger {
	log, _ := c.loggerVar(w)
	return log
}

// loggerVar is logger with its level in a LevelVar, which a reload sets.
func (c *logConfig) loggerVar(w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level, _ := c.level() // checked by Validate
	lv := new(slog.LevelVar)
	lv.Set(level)
	opts := &slog.HandlerOptions{Level: lv}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), lv
	}
	return slog.New(slog.NewTextHandler(w, opts)), lv
}

func (c *logConfig) level() (slog.Level, error) {
	var l slog.Level
	if c.Level == "" {
		return slog.LevelInfo, nil
	}
	if err := l.UnmarshalText([]byte(c.Level)); err != nil {
		return 0, fmt.Errorf("log.level = %q: must be debug, info, warn or error", c.Level)
	}
	return l, nil
}

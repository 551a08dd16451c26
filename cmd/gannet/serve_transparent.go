package main

import (
	"log/slog"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/transparent"
)

// transparentMode is [transparent] while serving: nil up when it is off.
type transparentMode struct {
	up  *transparent.Upstream
	log *slog.Logger
}

// startTransparent creates transparent mode when [transparent] enables it.
func startTransparent(cfg transparent.Config, log *slog.Logger) (*transparentMode, error) {
	t := &transparentMode{log: log}
	if !cfg.Enabled {
		return t, nil
	}
	up, err := transparent.New(cfg, log)
	if err != nil {
		return nil, err
	}
	t.up = up
	log.Info("transparent mode", "server", cfg.Server, "client_ids", cfg.ClientIDs, "close_on_sleep", cfg.CloseOnSleep)
	return t, nil
}

// install makes broker hand the claimed sessions to transparent mode.
func (t *transparentMode) install(broker *mqttcore.Broker) {
	if t.up != nil {
		broker.SetUpstream(t.up)
	}
}

// stop disconnects the upstream sessions normally (the remote broker keeps
// them for their expiry) and logs the counters.
func (t *transparentMode) stop() {
	if t.up == nil {
		return
	}
	_ = t.up.Close()
	st := t.up.Stats()
	t.log.Info("transparent mode stopped", "connects", st.Connects, "refused_max_connections", st.RefusedMaxConnections,
		"connect_failures", st.ConnectFailures, "published", st.Published, "delivered", st.Delivered, "rejected", st.Rejected)
}

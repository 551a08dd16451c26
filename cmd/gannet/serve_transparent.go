package main

import (
	"log/slog"
	"sync"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/transparent"
)

// transparentMode is [transparent] while serving: nil up when it is off.
type transparentMode struct {
	up   *transparent.Upstream
	log  *slog.Logger
	quit chan struct{}  // closed by stop: the $SYS loop ends
	wg   sync.WaitGroup // the $SYS loop
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

// install makes broker hand the claimed sessions to transparent mode and,
// unless [broker] sys_disabled, publishes its counters under
// $SYS/broker/transparent/ every sys_interval.
func (t *transparentMode) install(broker *mqttcore.Broker) {
	if t.up == nil {
		return
	}
	broker.SetUpstream(t.up)
	if broker.Config().SysDisabled {
		return
	}
	t.quit = make(chan struct{})
	t.wg.Add(1)
	go func() { // exits when stop closes quit
		defer t.wg.Done()
		in := broker.Inline("$SYS/transparent")
		tick := time.NewTicker(broker.Config().SysInterval)
		defer tick.Stop()
		for {
			for topic, v := range t.up.SysTopics() {
				if err := in.Publish(&mqttcore.Message{Topic: topic, Payload: []byte(v), Retain: true}); err != nil {
					t.log.Debug("transparent: publish $SYS", "topic", topic, "err", err)
				}
			}
			select {
			case <-t.quit:
				return
			case <-tick.C:
			}
		}
	}()
}

// stop disconnects the upstream sessions normally (the remote broker keeps
// them for their expiry) and logs the counters.
func (t *transparentMode) stop() {
	if t.up == nil {
		return
	}
	if t.quit != nil {
		close(t.quit)
		t.wg.Wait()
	}
	_ = t.up.Close()
	st := t.up.Stats()
	t.log.Info("transparent mode stopped", "connects", st.Connects, "refused_max_connections", st.RefusedMaxConnections,
		"connect_failures", st.ConnectFailures, "published", st.Published, "delivered", st.Delivered, "rejected", st.Rejected)
}

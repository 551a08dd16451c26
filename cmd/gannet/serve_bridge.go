package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/bridge"
)

// startBridges starts one bridge per [[bridge]] section. Each subscribes
// its out rules in the core at once (so nothing published after this call
// is missed) and connects to its remote broker in the background. stop
// closes them in reverse order; call it before the broker closes.
func startBridges(ctx context.Context, cfgs []bridge.Config, broker *mqttcore.Broker, log *slog.Logger) (bridges []*bridge.Bridge, stop func() error, err error) {
	var started []*bridge.Bridge
	stop = func() error {
		var errs []error
		for i := len(started) - 1; i >= 0; i-- {
			errs = append(errs, started[i].Close())
		}
		return errors.Join(errs...)
	}
	names := make(map[string]bool, len(cfgs))
	paths := make(map[string]string, len(cfgs))
	for _, c := range cfgs {
		if err := ctx.Err(); err != nil {
			return nil, nil, errors.Join(err, stop())
		}
		if names[c.Name] {
			return nil, nil, errors.Join(fmt.Errorf("bridge %q: two [[bridge]] sections with this name", c.Name), stop())
		}
		names[c.Name] = true
		p := filepath.Clean(c.Queue.Path)
		if other, ok := paths[p]; ok {
			return nil, nil, errors.Join(fmt.Errorf("bridge %q: queue.path %s is already used by bridge %q", c.Name, c.Queue.Path, other), stop())
		}
		paths[p] = c.Name
		b, err := bridge.New(c, broker, bridge.Options{Logger: log})
		if err != nil {
			return nil, nil, errors.Join(err, stop())
		}
		started = append(started, b)
		log.Info("bridge started", "bridge", c.Name, "servers", c.Servers, "queue", c.Queue.Path)
	}
	return started, stop, nil
}

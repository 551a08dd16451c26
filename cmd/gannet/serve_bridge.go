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
//
// A bridge without queue.path keeps its queue in the core's store file
// (shared, a bridge.Backend, when [store] is bolt), so that one commit makes
// a message durable for the uplink and for local sessions alike.
func startBridges(ctx context.Context, cfgs []bridge.Config, broker *mqttcore.Broker, shared bridge.Backend, log *slog.Logger) (bridges []*bridge.Bridge, stop func() error, err error) {
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
		opts := bridge.Options{Logger: log}
		queue := c.Queue.Path
		if c.Queue.Path == "" {
			if shared == nil {
				return nil, nil, errors.Join(fmt.Errorf("bridge %q: queue.path is required with [store] type = \"memory\"", c.Name), stop())
			}
			opts.Backend, queue = shared, "the core's store"
		} else {
			p := filepath.Clean(c.Queue.Path)
			if other, ok := paths[p]; ok {
				return nil, nil, errors.Join(fmt.Errorf("bridge %q: queue.path %s is already used by bridge %q", c.Name, c.Queue.Path, other), stop())
			}
			paths[p] = c.Name
		}
		b, err := bridge.New(c, broker, opts)
		if err != nil {
			return nil, nil, errors.Join(err, stop())
		}
		started = append(started, b)
		log.Info("bridge started", "bridge", c.Name, "servers", c.Servers, "queue", queue)
	}
	return started, stop, nil
}

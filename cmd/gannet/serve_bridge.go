package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/bridge"
)

// bridgeSet is the running bridges, one per [[bridge]] section. A reload
// adds, removes, reconfigures or restarts them (reload); the status page
// and /metrics read the current list.
type bridgeSet struct {
	broker *mqttcore.Broker
	shared bridge.Backend // the core's store, for bridges without queue.path; nil for memory
	log    *slog.Logger

	mu   sync.Mutex // one change at a time (start, reload, stop)
	list atomic.Pointer[[]*bridge.Bridge]

	// reconfigure stands in for (*bridge.Bridge).Reconfigure in tests
	// (nil: the real one).
	reconfigure func(*bridge.Bridge, bridge.Config) ([]string, error)
}

// bridges returns the running bridges.
func (bs *bridgeSet) bridges() []*bridge.Bridge {
	if bs == nil {
		return nil
	}
	if l := bs.list.Load(); l != nil {
		return *l
	}
	return nil
}

// startBridges starts one bridge per [[bridge]] section. Each subscribes
// its out rules in the core at once (so nothing published after this call
// is missed) and connects to its remote broker in the background. Stop
// closes them in reverse order; call it before the broker closes.
//
// A bridge without queue.path keeps its queue in the core's store file
// (shared, a bridge.Backend, when [store] is bolt), so that one commit makes
// a message durable for the uplink and for local sessions alike.
func startBridges(ctx context.Context, cfgs []bridge.Config, broker *mqttcore.Broker, shared bridge.Backend, log *slog.Logger) (*bridgeSet, error) {
	bs := &bridgeSet{broker: broker, shared: shared, log: log}
	if err := checkBridges(cfgs, shared); err != nil {
		return nil, err
	}
	var started []*bridge.Bridge
	for _, c := range cfgs {
		if err := ctx.Err(); err != nil {
			bs.list.Store(&started)
			return nil, errors.Join(err, bs.stop())
		}
		b, err := bs.start(c)
		if err != nil {
			bs.list.Store(&started)
			return nil, errors.Join(err, bs.stop())
		}
		started = append(started, b)
	}
	bs.list.Store(&started)
	return bs, nil
}

// checkBridges checks what New cannot see: names and queue files are
// unique, and a bridge without queue.path has a store to share.
func checkBridges(cfgs []bridge.Config, shared bridge.Backend) error {
	names := make(map[string]bool, len(cfgs))
	paths := make(map[string]string, len(cfgs))
	for _, c := range cfgs {
		if names[c.Name] {
			return fmt.Errorf("bridge %q: two [[bridge]] sections with this name", c.Name)
		}
		names[c.Name] = true
		if c.Queue.Path == "" {
			if shared == nil {
				return fmt.Errorf("bridge %q: queue.path is required with [store] type = \"memory\"", c.Name)
			}
			continue
		}
		p := filepath.Clean(c.Queue.Path)
		if other, ok := paths[p]; ok {
			return fmt.Errorf("bridge %q: queue.path %s is already used by bridge %q", c.Name, c.Queue.Path, other)
		}
		paths[p] = c.Name
	}
	return nil
}

// start makes one bridge.
func (bs *bridgeSet) start(c bridge.Config) (*bridge.Bridge, error) {
	opts := bridge.Options{Logger: bs.log}
	queue := c.Queue.Path
	if c.Queue.Path == "" {
		opts.Backend, queue = bs.shared, "the core's store"
	}
	b, err := bridge.New(c, bs.broker, opts)
	if err != nil {
		return nil, err
	}
	bs.log.Info("bridge started", "bridge", c.Name, "servers", c.Servers, "queue", queue)
	return b, nil
}

// stop closes every bridge, in reverse order.
func (bs *bridgeSet) stop() error {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	list := bs.bridges()
	var errs []error
	for i := len(list) - 1; i >= 0; i-- {
		errs = append(errs, list[i].Close())
	}
	empty := []*bridge.Bridge{}
	bs.list.Store(&empty)
	return errors.Join(errs...)
}

// reload changes the running bridges from old to next (both checked):
// a bridge whose section is gone is closed (its queue stays where it is),
// a new one is started, a changed one is reconfigured in place
// (bridge.Reconfigure: rules and connection) or, for a change to its queue
// settings, max_inflight or $SYS settings, closed and made anew on the same
// queue. It returns what it did and what it could not do, and the
// [[bridge]] sections now in force, as each bridge reports them
// (bridge.Config): a section it could not apply keeps its old value, one
// whose new connection is still being started (bridge.ErrConnectRetrying)
// its new one, and one whose bridge is not running is left out.
func (bs *bridgeSet) reload(old, next []bridge.Config) (applied, notApplied []string, inForce []bridge.Config) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	running := map[string]*bridge.Bridge{}
	for _, b := range bs.bridges() {
		running[b.Name()] = b
	}
	oldByName := map[string]bridge.Config{}
	for _, c := range old {
		oldByName[c.Name] = c
	}
	nextNames := map[string]bool{}
	for _, c := range next {
		nextNames[c.Name] = true
	}
	// Removals first: a renamed bridge may take over the queue file.
	for _, c := range old {
		b := running[c.Name]
		if nextNames[c.Name] || b == nil {
			continue
		}
		depth := b.Stats().Depth
		if err := b.Close(); err != nil {
			notApplied = append(notApplied, fmt.Sprintf("bridge %q removed, but closing it: %v", c.Name, err))
		} else {
			applied = append(applied, fmt.Sprintf("bridge %q removed (%d messages stay in its queue, sent if it is configured again)", c.Name, depth))
		}
		delete(running, c.Name)
	}
	var list []*bridge.Bridge
	for _, c := range next {
		prev, had := oldByName[c.Name]
		b := running[c.Name]
		switch {
		case b == nil: // new, or not running after an earlier failure
			nb, err := bs.start(c)
			if err != nil {
				notApplied = append(notApplied, fmt.Sprintf("bridge %q not started: %v", c.Name, err))
				continue
			}
			applied = append(applied, fmt.Sprintf("bridge %q started", c.Name))
			list = append(list, nb)
			inForce = append(inForce, c)
		case had && reflect.DeepEqual(prev, c):
			list = append(list, b)
			inForce = append(inForce, c)
		default:
			reconfigure := (*bridge.Bridge).Reconfigure
			if bs.reconfigure != nil {
				reconfigure = bs.reconfigure
			}
			changes, err := reconfigure(b, c)
			switch {
			case err == nil:
				for _, ch := range changes {
					applied = append(applied, fmt.Sprintf("bridge %q: %s", c.Name, ch))
				}
				list = append(list, b)
				inForce = append(inForce, c)
			case errors.Is(err, bridge.ErrRestartNeeded):
				// Closed and made anew: the queue file (or bucket) is
				// reopened, and what it holds is sent.
				if cerr := b.Close(); cerr != nil {
					bs.log.Error("bridge: closing for a restart", "bridge", c.Name, "err", cerr)
				}
				nb, err := bs.start(c)
				if err != nil {
					notApplied = append(notApplied, fmt.Sprintf("bridge %q stopped to apply its new queue settings, and not restarted: %v (messages for it are not queued until a reload starts it)", c.Name, err))
					continue
				}
				applied = append(applied, fmt.Sprintf("bridge %q restarted on its queue (queue, max_inflight or $SYS settings changed)", c.Name))
				list = append(list, nb)
				inForce = append(inForce, c)
			case errors.Is(err, bridge.ErrConnectRetrying):
				// The new section is in force, its connection is being
				// retried: recorded as applied, so the next reload
				// compares with it.
				for _, ch := range changes {
					applied = append(applied, fmt.Sprintf("bridge %q: %s", c.Name, ch))
				}
				notApplied = append(notApplied, fmt.Sprintf("bridge %q: %v (the new settings are in force; it queues meanwhile)", c.Name, err))
				list = append(list, b)
				inForce = append(inForce, b.Config())
			default:
				notApplied = append(notApplied, fmt.Sprintf("bridge %q: %v (it runs on as before)", c.Name, err))
				list = append(list, b)
				inForce = append(inForce, b.Config()) // the section it runs with: prev
			}
		}
	}
	bs.list.Store(&list)
	return applied, notApplied, inForce
}

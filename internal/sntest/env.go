package sntest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/listener"
)

// Timeout bounds one end-to-end test: Context ends after it.
const Timeout = 30 * time.Second

// LogEnv names the environment variable that turns on the gateway's debug
// log on stderr ("SNTEST_LOG=1 go test ./gateway/ -run E2E").
const LogEnv = "SNTEST_LOG"

// Context returns a context that ends after Timeout or at the test's
// cleanup, whichever comes first.
func Context(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// Options configure Start. The zero value runs the defaults with $SYS
// publishing off and two gateway loops.
type Options struct {
	// Gateway is the gateway's configuration; Loops 0 means 2.
	Gateway gateway.Config
	// Core is the broker core's configuration; SysDisabled is always set,
	// so $SYS messages never reach an MQTT client subscribed to "#".
	Core mqttcore.Config
	// Journal makes the core durable (nil: memory only). The Env does not
	// close it.
	Journal mqttcore.Journal
	// UDPAddr is the gateway's UDP address ("": a free loopback port), for
	// a restart on the address the sensors know.
	UDPAddr string
	// Authenticator checks MQTT-SN 2.0 CONNECTs' passwords
	// (gateway.Options.Authenticator); nil: none.
	Authenticator gateway.Authenticator
}

// Env is a running Gannet: the core, its MQTT listener on a free loopback
// TCP port, and the gateway on a free loopback UDP port.
type Env struct {
	t        testing.TB
	Broker   *mqttcore.Broker
	Gateway  *gateway.Gateway
	Listener *listener.Server
	// UDPAddr is the gateway's "127.0.0.1:port".
	UDPAddr string
	// MQTTAddr is the MQTT listener's "127.0.0.1:port".
	MQTTAddr string

	served    chan error
	closeOnce sync.Once
}

// Start starts a core, its MQTT listener and a gateway, all on loopback.
// They are stopped at cleanup, or earlier by Close.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	var log *slog.Logger
	if os.Getenv(LogEnv) != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	core := opts.Core
	core.SysDisabled = true
	b, err := mqttcore.New(core, mqttcore.Options{Journal: opts.Journal})
	if err != nil {
		t.Fatalf("mqttcore.New(%+v) = %v", core, err)
	}
	srv, err := listener.NewServer(b, listener.Config{Address: "127.0.0.1:0"}, nil, log)
	if err != nil {
		b.Close()
		t.Fatalf("listener.NewServer = %v", err)
	}
	if err := srv.Listen(); err != nil {
		b.Close()
		t.Fatalf("listener Listen = %v", err)
	}
	gcfg := opts.Gateway
	if gcfg.Loops == 0 {
		gcfg.Loops = 2
	}
	g, err := gateway.New(gcfg, b, gateway.Options{Logger: log, Authenticator: opts.Authenticator})
	if err != nil {
		srv.Close()
		b.Close()
		t.Fatalf("gateway.New(%+v) = %v", gcfg, err)
	}
	ua := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	if opts.UDPAddr != "" {
		if ua, err = net.ResolveUDPAddr("udp4", opts.UDPAddr); err != nil {
			t.Fatalf("sntest: UDPAddr %q: %v", opts.UDPAddr, err)
		}
	}
	udp, err := net.ListenUDP("udp4", ua)
	if err != nil {
		g.Close()
		srv.Close()
		b.Close()
		t.Fatalf("listen UDP on 127.0.0.1: %v", err)
	}
	e := &Env{
		t: t, Broker: b, Gateway: g, Listener: srv,
		UDPAddr:  udp.LocalAddr().String(),
		MQTTAddr: srv.Addr("tcp").String(),
		served:   make(chan error, 1),
	}
	go func() { e.served <- g.Serve(udp) }() // exits when Close closes the gateway (and udp)
	t.Cleanup(e.Close)
	return e
}

// Close stops the gateway (waiting for Serve to return), the MQTT listener
// and the core, in that order, reporting failures as test errors. It is
// idempotent; clients created after Start are closed by their own cleanups,
// which run before this one.
func (e *Env) Close() {
	e.closeOnce.Do(func() {
		if err := e.Gateway.Close(); err != nil {
			e.t.Errorf("gateway Close = %v", err)
		}
		if err := <-e.served; err != nil && !errors.Is(err, gateway.ErrClosed) {
			e.t.Errorf("gateway Serve returned %v; want nil after Close", err)
		}
		if err := e.Listener.Close(); err != nil {
			e.t.Errorf("listener Close = %v", err)
		}
		if err := e.Broker.Close(); err != nil {
			e.t.Errorf("broker Close = %v", err)
		}
	})
}

// WaitFor polls cond every 2 ms until it holds, failing the test when ctx
// ends first. It is for state that is only observable by polling (a core
// session's state, a counter); the wait is bounded by ctx, and the poll
// interval is not a synchronisation.
func WaitFor(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	if cond() {
		return
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// WaitGone waits until the core holds no session for clientID: a clean
// session ends with its connection (disconnected, lost or replaced).
func (e *Env) WaitGone(t testing.TB, ctx context.Context, clientID string) {
	t.Helper()
	WaitFor(t, ctx, "session "+clientID+" to end", func() bool {
		_, ok := e.Broker.Session(clientID)
		return !ok
	})
}

// WaitSession waits until the core holds a session for clientID in state.
func (e *Env) WaitSession(t testing.TB, ctx context.Context, clientID string, state mqttcore.State) mqttcore.SessionInfo {
	t.Helper()
	var info mqttcore.SessionInfo
	WaitFor(t, ctx, "session "+clientID+" "+state.String(), func() bool {
		var ok bool
		info, ok = e.Broker.Session(clientID)
		return ok && info.State == state
	})
	return info
}

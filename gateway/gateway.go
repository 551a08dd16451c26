package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// Options are the gateway's collaborators.
type Options struct {
	// Logger receives the gateway's logs; nil discards them.
	Logger *slog.Logger
	// UnknownSourceLimiter, when set, is asked before the gateway does any
	// work for a datagram from a source it has no client for (CONNECT,
	// SEARCHGW, a wake from a new address, the DISCONNECT that refuses
	// anything else). A refused datagram is dropped unanswered and counted
	// (LimitUnknownSourceRate): its source is unverified, so an answer could
	// feed a reflection attack.
	UnknownSourceLimiter SourceLimiter
	// QoSMinus1Limiter, when set, is asked before a QoS -1 PUBLISH is
	// accepted; a refused one is dropped and counted (LimitQoSMinus1Rate).
	QoSMinus1Limiter SourceLimiter
	// Authenticator checks the user name and password a 2.0 CONNECT
	// authenticates with (auth2.go); serve passes the [mqtt.auth] password
	// file, the MQTT listener's. Nil: 2.0 authentication is refused (a
	// CONNECT without authentication is served as for 1.2).
	Authenticator Authenticator
}

// SourceLimiter decides whether a source may have more of the gateway's
// work now; radio.Limiter (per-source token buckets) implements it. It must
// be safe for concurrent use and should not allocate.
type SourceLimiter interface {
	Allow(src netip.Addr, now time.Time) bool
}

// Gateway is the MQTT-SN front-end of a broker core. It serves one or more
// links; each client's session is owned by one of a fixed set of event
// loops, chosen by the client's address.
type Gateway struct {
	set    atomic.Pointer[settings] // the configuration in force; SetConfig swaps it (reconfig.go)
	opts   Options
	broker *mqttcore.Broker
	log    *slog.Logger
	ids    resolver // topic ids to names and back (topicid.go)
	qosm1  *mqttcore.Inline
	loops  []*loop
	stats  stats
	limits limits
	deny   denial    // rate-limited log of authorization refusals (authorize.go)
	pool   sync.Pool // *datagram
	done   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	links  map[Link]struct{}
	closed bool

	budget   *mqttcore.SessionBudget     // max_clients: the sensors' share of the core's sessions
	durable  bool                        // the core journals sessions: sensors' state is saved (persist.go)
	restored map[string][]restoredClient // by link local address, until Serve adopts them; guarded by mu

	authq chan *authJob // 2.0 password checks waiting for a worker (auth2.go)

	asleepMu    sync.Mutex
	asleepOwner map[string]*loop // client id -> loop, for address migration (migrate.go)
	// movableOwner: client id -> loop of the 2.0 clients that allow
	// address changes (connencap.go); guarded by asleepMu too.
	movableOwner map[string]*loop
}

// New returns a gateway in front of broker. Its event loops run until Close.
func New(cfg Config, broker *mqttcore.Broker, opts Options) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if broker == nil {
		return nil, errors.New("gateway: new: nil broker")
	}
	if ms := broker.Config().MaxSessions; cfg.MaxClients >= ms {
		return nil, fmt.Errorf("gateway: max_clients = %d: must be below the broker's max_sessions = %d, so MQTT clients keep room: %w",
			cfg.MaxClients, ms, ErrInvalidConfig)
	}
	budget, err := mqttcore.NewSessionBudget(cfg.MaxClients)
	if err != nil {
		return nil, fmt.Errorf("gateway: new: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Gateway{
		opts:   opts,
		broker: broker,
		log:    log,
		qosm1:  broker.Inline(cfg.QoSMinus1.ClientID),
		done:   make(chan struct{}),
		links:  map[Link]struct{}{},

		asleepOwner: map[string]*loop{},
		durable:     broker.Durable(),
		budget:      budget,
	}
	g.set.Store(newSettings(cfg, loopCount(cfg)))
	g.ids.pre.Store(newPredefined(cfg.Predefined))
	g.authq = make(chan *authJob, cfg.MaxPendingAuth)
	g.pool.New = func() any { return &datagram{buf: make([]byte, g.live().recvSize())} }
	for range g.loopCount() {
		l := newLoop(g)
		g.loops = append(g.loops, l)
		g.goTracked(l.run)        // exits when g.done closes
		g.goTracked(g.authWorker) // exits when g.done closes (auth2.go)
	}
	g.loadRestored() // persist.go: adopted by Serve, per link
	if bc := broker.Config(); !bc.SysDisabled {
		g.goTracked(func() { g.sysLoop(bc.SysInterval) }) // exits when g.done closes
	}
	return g, nil
}

// loopCount is the number of event loops: loops, or one per CPU.
func (g *Gateway) loopCount() int { return g.live().loops }

// loopCount is the number of event loops cfg asks for: loops, or one per
// CPU.
func loopCount(cfg Config) int {
	if cfg.Loops > 0 {
		return cfg.Loops
	}
	return runtime.GOMAXPROCS(0)
}

// goTracked runs f on a goroutine that Close waits for.
func (g *Gateway) goTracked(f func()) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
}

// Config returns the configuration in force, defaults filled in (SetConfig
// may have changed it since New).
func (g *Gateway) Config() Config { return g.live().Config }

// Stats returns a snapshot of the gateway's counters.
func (g *Gateway) Stats() Stats { return g.stats.snapshot(&g.limits) }

// datagram is one received datagram on its way from a link's reader to the
// loop that owns its sender. Its buffer is recycled through the pool.
type datagram struct {
	buf  []byte
	n    int
	addr netip.AddrPort
	link Link
}

// Serve reads datagrams from link and hands each to the loop that owns its
// sender, until link fails or the gateway is closed (then it returns nil).
// It also sends ADVERTISE on link when configured. Close closes the link.
func (g *Gateway) Serve(link Link) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return fmt.Errorf("gateway: serve %v: %w", link.LocalAddr(), ErrClosed)
	}
	g.links[link] = struct{}{}
	g.mu.Unlock()
	g.adoptRestored(link) // persist.go: sensors from before a restart, before their datagrams
	if g.live().Advertise.Interval > 0 {
		stop := make(chan struct{})
		defer close(stop)
		g.goTracked(func() { g.advertise(link, stop) }) // exits when Serve returns or g.done closes
	}
	set := g.live()
	for {
		d := g.pool.Get().(*datagram)
		if len(d.buf) < set.recvSize() { // max_message_size was raised (reconfig.go)
			d.buf = make([]byte, set.recvSize())
		}
		n, addr, err := link.ReadFromUDPAddrPort(d.buf)
		if err != nil {
			g.pool.Put(d)
			select {
			case <-g.done:
				return nil
			default:
			}
			return fmt.Errorf("gateway: read from %v: %w", link.LocalAddr(), err)
		}
		g.stats.received.Add(1)
		// One load per datagram. A full buffer means too large for the
		// buffer, which is above max_message_size unless a reload raised
		// it during this read: dropped either way (reconfig.go).
		set = g.live()
		if n > set.MaxMessageSize || n == len(d.buf) {
			g.limitHit(LimitMessageSizeIn, "", addr, nil)
			g.pool.Put(d)
			continue
		}
		d.n, d.addr, d.link = n, addr, link
		l := g.loops[loopIndex(addr, len(g.loops))]
		select {
		case l.in <- d:
		default:
			g.limitHit(LimitLoopQueue, "", addr, nil)
			g.pool.Put(d)
		}
	}
}

// loopIndex spreads senders over n loops by address.
func loopIndex(addr netip.AddrPort, n int) int {
	if n == 1 {
		return 0
	}
	a := addr.Addr().As16()
	h := uint64(addr.Port())
	for _, b := range a {
		h = (h ^ uint64(b)) * 0x100000001b3
	}
	return int(h % uint64(n))
}

// ErrClosed is returned by Serve on a closed gateway.
var ErrClosed = errors.New("gateway closed")

// Close stops serving: it closes every link, stops the loops and detaches
// every client from the core as disconnected, without publishing wills (a
// gateway restart is not the sensors' fault). Their sessions stay in the
// core. Close waits for every goroutine the gateway started.
func (g *Gateway) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	close(g.done)
	var errs []error
	for link := range g.links {
		if err := link.Close(); err != nil {
			errs = append(errs, fmt.Errorf("gateway: close %v: %w", link.LocalAddr(), err))
		}
	}
	g.mu.Unlock()
	g.wg.Wait()
	return errors.Join(errs...)
}

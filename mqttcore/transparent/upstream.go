package transparent

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// Upstream is transparent mode: the mqttcore.Upstream that gives each
// claimed sensor its own MQTT 5 session on the remote broker. Create it
// with New, install it with Broker.SetUpstream, and Close it after the
// broker.
type Upstream struct {
	cfg     Config
	devices map[string]Device // cfg.Devices by client id
	addr    string            // host:port of the remote
	tls     *tls.Config       // nil for a plain mqtt:// remote
	log     *slog.Logger

	ctx    context.Context // cancelled by Close: every remote exchange ends
	cancel context.CancelFunc
	wg     sync.WaitGroup // link workers and reconnect timers

	mu     sync.Mutex
	closed bool
	live   map[*link]struct{} // links holding a connection

	conns     atomic.Int64 // connections held now
	connects  atomic.Int64 // successful connects
	refused   atomic.Int64 // connects refused for max_connections
	failures  atomic.Int64 // connects the remote refused or that failed
	published atomic.Int64 // messages the remote acknowledged
	delivered atomic.Int64 // messages from the remote queued for sensors
	rejected  atomic.Int64 // publishes and subscribes the remote refused
	dropped   atomic.Int64 // QoS 0 publishes dropped: the link's queue was full
	logged    atomic.Int64 // unix ns of the last refusal logged
}

// Stats are transparent mode's counters.
type Stats struct {
	// Connections is the number of upstream connections held now.
	Connections int64
	// Connects counts upstream connections established.
	Connects int64
	// RefusedMaxConnections counts sensors refused because
	// max_connections were held.
	RefusedMaxConnections int64
	// ConnectFailures counts connects that failed or the remote refused.
	ConnectFailures int64
	// Published counts sensor messages the remote acknowledged (QoS 1/2)
	// or was sent (QoS 0).
	Published int64
	// Delivered counts messages from the remote queued for sensors.
	Delivered int64
	// Rejected counts publishes and subscriptions the remote refused.
	Rejected int64
	// Dropped counts QoS 0 publishes dropped because a sensor's link had
	// DefaultMaxOps operations waiting.
	Dropped int64
}

// New validates cfg and returns an Upstream. log receives connection
// events and refusals.
func New(cfg Config, log *slog.Logger) (*Upstream, error) {
	if !cfg.Enabled {
		return nil, fmt.Errorf("transparent: new: %w: not enabled", ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("transparent: new: %w", err)
	}
	u, _ := url.Parse(cfg.Server) // validated
	tc, err := cfg.ClientTLS()
	if err != nil {
		return nil, fmt.Errorf("transparent: new: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	devices := make(map[string]Device, len(cfg.Devices))
	for _, d := range cfg.Devices {
		devices[d.ClientID] = d
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Upstream{cfg: cfg.withDefaults(), devices: devices, addr: u.Host, tls: tc, log: log, ctx: ctx, cancel: cancel, live: map[*link]struct{}{}}, nil
}

// Claims implements mqttcore.Upstream.
func (u *Upstream) Claims(clientID string) bool { return u.cfg.Claims(clientID) }

// Open implements mqttcore.Upstream.
func (u *Upstream) Open(clientID string, in mqttcore.UpstreamSink) mqttcore.UpstreamLink {
	return &link{u: u, id: clientID, in: in, progress: make(chan struct{}, 1)}
}

// Stats returns the counters.
func (u *Upstream) Stats() Stats {
	return Stats{
		Connections:           u.conns.Load(),
		Connects:              u.connects.Load(),
		RefusedMaxConnections: u.refused.Load(),
		ConnectFailures:       u.failures.Load(),
		Published:             u.published.Load(),
		Delivered:             u.delivered.Load(),
		Rejected:              u.rejected.Load(),
		Dropped:               u.dropped.Load(),
	}
}

// Close disconnects every upstream connection normally (the remote keeps
// each session for its expiry, so sensors resume it through this gateway
// after a restart or through another one) and waits for the links'
// goroutines. Close the broker first. Close is idempotent.
func (u *Upstream) Close() error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil
	}
	u.closed = true
	u.mu.Unlock()
	u.cancel() // a worker waiting on the remote gives up now
	u.wg.Wait()
	u.mu.Lock()
	links := make([]*link, 0, len(u.live))
	for l := range u.live {
		links = append(links, l)
	}
	u.mu.Unlock()
	for _, l := range links {
		l.drop(0x00) // workers have exited: the link is ours
	}
	u.wg.Wait()
	return nil
}

// goTracked starts f on a goroutine Close waits for; it reports false
// (and does not start f) once Close has begun.
func (u *Upstream) goTracked(f func()) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return false
	}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		f()
	}()
	return true
}

// acquire takes one of max_connections, counting and logging a refusal.
func (u *Upstream) acquire(clientID string) bool {
	for {
		n := u.conns.Load()
		if n >= int64(u.cfg.MaxConnections) {
			u.refused.Add(1)
			u.warnRateLimited("transparent: max_connections reached, sensor refused", "client_id", clientID, "max_connections", u.cfg.MaxConnections)
			return false
		}
		if u.conns.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// warnRateLimited logs at Warn at most once a second.
func (u *Upstream) warnRateLimited(msg string, args ...any) {
	now := time.Now().UnixNano()
	if last := u.logged.Load(); now-last > int64(time.Second) && u.logged.CompareAndSwap(last, now) {
		u.log.Warn(msg, args...)
	}
}

// setLive records whether l holds a connection.
func (u *Upstream) setLive(l *link, on bool) {
	u.mu.Lock()
	if on {
		u.live[l] = struct{}{}
	} else {
		delete(u.live, l)
	}
	u.mu.Unlock()
}

// SysTopics returns transparent mode's counters as $SYS topics and values
// ($SYS/broker/transparent/...), for the caller to publish retained.
func (u *Upstream) SysTopics() map[string]string {
	s := u.Stats()
	p := "$SYS/broker/transparent/"
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	return map[string]string{
		p + "connections":             n(s.Connections),
		p + "connects":                n(s.Connects),
		p + "refused/max_connections": n(s.RefusedMaxConnections),
		p + "connect_failures":        n(s.ConnectFailures),
		p + "messages/published":      n(s.Published),
		p + "messages/delivered":      n(s.Delivered),
		p + "messages/rejected":       n(s.Rejected),
		p + "messages/dropped":        n(s.Dropped),
	}
}

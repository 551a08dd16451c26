package bridge

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/internal/pahoprops"
)

// Options are a bridge's collaborators.
type Options struct {
	// Logger receives the bridge's logs (default: discarded).
	Logger *slog.Logger
	// Now is the clock for queue ages (default time.Now).
	Now func() time.Time
	// Backend, if set, is a bbolt file shared with others and its commit
	// pipeline (the core's durable store): the bridge's queue lives in it,
	// under the bucket "bridge/<name>", and its writes share the
	// backend's fsyncs. queue.path, max_batch, max_pending and the
	// checkpoint settings are then not used. By default the queue is its
	// own file at queue.path, with a log of its own (OpenStore).
	Backend Backend
}

// Bridge is one running bridge. Create it with New, stop it with Close.
type Bridge struct {
	cfg    atomic.Pointer[Config] // replaced by Reconfigure (reconfig.go)
	log    *slog.Logger
	inline *mqttcore.Inline
	store  *Store
	out    *outbox
	stop   chan struct{}
	wg     sync.WaitGroup

	// mu guards the connection manager and the out rules' subscriptions,
	// which Reconfigure replaces; it is never held across a network write.
	mu     sync.Mutex
	cm     *autopaho.ConnectionManager
	cancel context.CancelFunc // cancels cm's context
	subs   []*outSub
	// cmChanged is closed (and replaced) each time connect starts a new
	// connection manager, for AwaitConnection.
	cmChanged chan struct{}
	closed    bool   // set by Close: no connection manager is started after it
	gen       uint64 // counts the Reconfigures that replaced the connection; a retry of an older one gives up
	// newConn starts a connection manager: autopaho.NewConnection, or a
	// test's stand-in (export_test.go).
	newConn func(context.Context, autopaho.ClientConfig) (*autopaho.ConnectionManager, error)
	in      atomic.Pointer[[]Rule]   // the in rules, read by inbound
	dropIn  atomic.Pointer[[]string] // remote filters to unsubscribe, kept until the remote's UNSUBACK (reconfig.go)

	lastURL    atomic.Pointer[string]
	connected  atomic.Bool
	failWarned atomic.Int64                // unix ns of the last connect-failure warning, 0 while connected
	forwarded  atomic.Uint64               // local messages written to the queue
	received   atomic.Uint64               // remote messages published into the core
	loops      atomic.Uint64               // local messages skipped because they came from this bridge
	outErrs    atomic.Uint64               // local messages that could not be queued
	inErrs     atomic.Uint64               // remote messages the core refused
	refused    atomic.Uint64               // messages the remote refused (PUBACK/PUBREC reason >= 0x80)
	inDeferred atomic.Uint64               // remote messages left unacknowledged because the core refused them for now
	inRetries  atomic.Int64                // reconnects in a row to have refused inbound messages sent again
	inHalted   atomic.Pointer[paho.Client] // the connection on which inbound stopped after a refusal
	conn       atomic.Pointer[bufConn]     // the current connection, closed to have inbound messages sent again
	errLogged  atomic.Int64                // unix ns of the last logged store error
	closeOnce  sync.Once
}

// Stats are a bridge's counters: the queue's (StoreStats) and its own.
type Stats struct {
	StoreStats
	// Connected reports whether the remote connection is up.
	Connected bool
	// Forwarded counts local messages written to the outbound queue.
	Forwarded uint64
	// Received counts remote messages published into the core.
	Received uint64
	// LoopsPrevented counts local messages not sent out because this
	// bridge brought them in.
	LoopsPrevented uint64
	// QueueErrors counts local messages that could not be queued (too
	// large, or a disk error); InboundErrors remote messages the core
	// refused (for example an invalid topic after remapping, or a full
	// queue).
	QueueErrors, InboundErrors uint64
	// InboundDeferred counts remote messages the core refused for now
	// (flow control, a full queue, a store failure): they were not
	// acknowledged, and the bridge reconnected so the remote sends them
	// again.
	InboundDeferred uint64
	// RemoteRefused counts QoS 1/2 messages the remote broker refused with
	// an error reason code in PUBACK or PUBREC (for example "not
	// authorized"): MQTT 5 says not to resend them, so they are lost.
	RemoteRefused uint64
}

// ackInterval is how often paho sends the inbound acknowledgements that
// became due (manual acknowledgement, in order).
const ackInterval = 10 * time.Millisecond

// InlineName returns the name of a bridge's inline client of the core: the
// Origin of the messages it brings in.
func InlineName(bridgeName string) string { return "$bridge/" + bridgeName }

// New opens the bridge's queue file, subscribes the out rules in the core
// and starts connecting to the remote broker in the background. Messages
// published locally are queued from now on, whether or not the remote is
// reachable.
func New(cfg Config, broker *mqttcore.Broker, opts Options) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("bridge", cfg.Name)
	tlsCfg, urls, err := cfg.dialSettings()
	if err != nil {
		return nil, err
	}
	so := StoreOptions{
		MaxBytes: cfg.Queue.MaxBytes, MaxAge: cfg.Queue.MaxAge, MaxBatch: cfg.Queue.MaxBatch, MaxPending: cfg.Queue.MaxPending,
		CheckpointBytes: cfg.Queue.CheckpointBytes, CheckpointInterval: cfg.Queue.CheckpointInterval, Now: opts.Now,
	}
	var st *Store
	switch {
	case opts.Backend != nil:
		st, err = OpenSharedStore(opts.Backend, "bridge/"+cfg.Name, so)
	case cfg.Queue.Path == "":
		err = errors.New("queue.path is required when the queue cannot share the core's store (a [store] of type bolt)")
	default:
		st, err = OpenStore(cfg.Queue.Path, so)
	}
	if err != nil {
		return nil, fmt.Errorf("bridge %q: %w", cfg.Name, err)
	}
	out, err := newOutbox(st, cfg.maxInflight())
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("bridge %q: %w", cfg.Name, err)
	}
	b := &Bridge{
		log:    log,
		inline: broker.Inline(InlineName(cfg.Name)),
		store:  st,
		out:    out,
		stop:   make(chan struct{}),

		cmChanged: make(chan struct{}),
		newConn:   autopaho.NewConnection,
	}
	b.cfg.Store(&cfg)
	out.onRefused = b.remoteRefused
	out.onError = b.storeError
	if st.adopted {
		log.Info("bridge queue file converted to the format with a write-ahead log (path.wal.0, path.wal.1 beside it); an older gannet opens it only after a clean stop",
			"path", cfg.Queue.Path)
	}
	if s := st.Stats(); s.Depth > 0 || s.Inflight > 0 {
		log.Info("bridge queue reopened", "queued", s.Depth, "bytes", s.Bytes, "inflight", s.Inflight, "path", cfg.Queue.Path)
	}
	in := inRules(cfg.Rules)
	b.in.Store(&in)
	for _, r := range cfg.Rules {
		if !r.Direction.out() {
			continue
		}
		os, err := b.subscribeOut(r)
		if err != nil {
			b.unsubscribe()
			st.Close()
			return nil, err
		}
		b.subs = append(b.subs, os)
	}
	if err := b.connect(&cfg, tlsCfg, urls); err != nil {
		b.unsubscribe()
		st.Close()
		return nil, err
	}
	out.start()
	b.wg.Add(1)
	go b.statsLoop() // exits when Close closes b.stop
	return b, nil
}

// dialSettings loads the TLS files of a validated cfg and parses its
// servers, for connect.
func (cfg *Config) dialSettings() (*tls.Config, []*url.URL, error) {
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("bridge %q: %w", cfg.Name, err)
	}
	urls := make([]*url.URL, len(cfg.Servers))
	for i, s := range cfg.Servers {
		urls[i], _ = parseServer(s) // checked by Validate
	}
	return tlsCfg, urls, nil
}

// conf returns the configuration in force.
func (b *Bridge) conf() *Config { return b.cfg.Load() }

// connect starts a connection manager for cfg. The caller holds b.mu or
// owns b alone.
func (b *Bridge) connect(cfg *Config, tlsCfg *tls.Config, urls []*url.URL) error {
	log := b.log
	out := b.out
	ctx, cancel := context.WithCancel(context.Background())
	pc := autopaho.ClientConfig{
		ServerUrls:                    urls,
		TlsCfg:                        tlsCfg,
		KeepAlive:                     uint16(cfg.keepAlive() / time.Second),
		CleanStartOnInitialConnection: cfg.CleanStart,
		SessionExpiryInterval:         uint32(cfg.SessionExpiry / time.Second),
		ReconnectBackoff:              b.reconnectDelay,
		ConnectTimeout:                cfg.connectTimeout(),
		AttemptConnection:             b.attempt,
		OnConnectionDown:              b.connectionDown,
		OnConnectError:                b.connectError,
		Errors:                        logger{log, slog.LevelWarn, "autopaho"},
		Debug:                         logger{log, slog.LevelDebug, "autopaho"},
		PahoErrors:                    logger{log, slog.LevelDebug, "paho"},
		PahoDebug:                     logger{log, slog.LevelDebug, "paho"},
		ConnectUsername:               cfg.Username,
		ClientConfig: paho.ClientConfig{
			ClientID: cfg.clientID(),
			Session:  out,
			// Inbound messages are acknowledged once the core has them
			// (inbound); paho sends the acknowledgements in order.
			EnableManualAcknowledgment: true,
			SendAcksInterval:           ackInterval,
			OnPublishReceived:          []func(paho.PublishReceived) (bool, error){b.inbound},
			OnClientError:              func(err error) { log.Warn("bridge connection error", "err", err) },
		},
	}
	pc.OnConnectionUp = func(cm *autopaho.ConnectionManager, ca *paho.Connack) { b.connectionUp(ctx, cm, ca) }
	if cfg.Password != "" {
		pc.ConnectPassword = []byte(cfg.Password)
	}
	cm, err := b.newConn(ctx, pc)
	if err != nil {
		cancel()
		return fmt.Errorf("bridge %q: start connection: %w", cfg.Name, err)
	}
	b.cm, b.cancel = cm, cancel
	close(b.cmChanged)
	b.cmChanged = make(chan struct{})
	return nil
}

// retryConnect starts connection managers for cfg, with backoff, until one
// starts: after a Reconfigure whose connect failed, the bridge goes on
// trying with the settings in force, as after any outage. The caller holds
// b.mu.
func (b *Bridge) retryConnect(cfg *Config, tlsCfg *tls.Config, urls []*url.URL) {
	gen := b.gen
	b.wg.Add(1)
	go func() { // exits when a manager starts, a later Reconfigure replaces the connection, or Close
		defer b.wg.Done()
		for attempt := 1; ; attempt++ {
			t := time.NewTimer(cfg.backoff(attempt))
			select {
			case <-b.stop:
				t.Stop()
				return
			case <-t.C:
			}
			b.mu.Lock()
			if b.closed || b.gen != gen {
				b.mu.Unlock()
				return
			}
			err := b.connect(cfg, tlsCfg, urls)
			b.mu.Unlock()
			if err == nil {
				b.log.Info("bridge: connection started after a failed start", "attempt", attempt+1)
				return
			}
			b.connectError(err) // a Warn once per outage, then Debug
		}
	}()
}

// disconnect stops the connection manager and waits (bounded) for it. The
// caller holds b.mu.
func (b *Bridge) disconnect() {
	b.cancel()
	select {
	case <-b.cm.Done():
	case <-time.After(b.conf().connectTimeout() + 5*time.Second):
		b.log.Warn("bridge: connection did not shut down in time")
	}
}

// Close stops forwarding, disconnects from the remote broker and closes
// the queue file. Queued and in-flight messages stay in the file for the
// next New.
func (b *Bridge) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.unsubscribe()
		b.disconnect()
		b.closed = true
		b.mu.Unlock()
		close(b.stop)
		b.wg.Wait()
		b.out.close()
		if cerr := b.out.Close(); cerr != nil {
			err = fmt.Errorf("bridge %q: close session: %w", b.Name(), cerr)
		}
		if cerr := b.store.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("bridge %q: %w", b.Name(), cerr)
		}
	})
	return err
}

// unsubscribe removes the out rules' subscriptions. The caller holds b.mu
// or owns b alone.
func (b *Bridge) unsubscribe() {
	for _, s := range b.subs {
		s.sub.Unsubscribe()
	}
}

// Name returns the bridge's name.
func (b *Bridge) Name() string { return b.conf().Name }

// Stats returns the bridge's counters.
func (b *Bridge) Stats() Stats {
	st := b.store.Stats()
	st.Inflight, _ = b.out.counts()
	return Stats{
		StoreStats:      st,
		Connected:       b.connected.Load(),
		Forwarded:       b.forwarded.Load(),
		Received:        b.received.Load(),
		LoopsPrevented:  b.loops.Load(),
		QueueErrors:     b.outErrs.Load(),
		InboundErrors:   b.inErrs.Load(),
		InboundDeferred: b.inDeferred.Load(),
		RemoteRefused:   b.refused.Load(),
	}
}

// AwaitConnection waits until the remote connection is up or ctx ends,
// through a Reconfigure's change of connection (or its retries to start
// one). It returns an error once the bridge is closed.
func (b *Bridge) AwaitConnection(ctx context.Context) error {
	for {
		b.mu.Lock()
		cm, changed, closed := b.cm, b.cmChanged, b.closed
		b.mu.Unlock()
		err := cm.AwaitConnection(ctx)
		if err == nil || ctx.Err() != nil || closed {
			return err
		}
		select { // cm was stopped: by Close, or by a Reconfigure that starts another
		case <-changed:
		case <-b.stop:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Config returns the configuration in force: the last one New or
// Reconfigure applied.
func (b *Bridge) Config() Config { return *b.conf() }

// outbound returns the core callback of an out rule: remap, cap the QoS
// and write the message to the durable queue. It runs on the publisher's
// goroutine and never waits: the core holds the publisher's PUBACK/PUBREC
// (hold) until the queue's group commit has made the message durable
// (QoS 1/2), so a gateway loop or an MQTT connection goes on meanwhile and
// many publishers share one commit. QoS 0 promises nothing and is released
// at once.
//
// The rule is read at each message: Reconfigure may change a rule's QoS
// cap or prefixes under the same local filter without a new subscription.
func (b *Bridge) outbound(os *outSub) func(*mqttcore.Message, mqttcore.Hold) {
	return func(m *mqttcore.Message, hold mqttcore.Hold) {
		r := os.rule.Load()
		if m.Origin == b.inline.Name() {
			b.loops.Add(1)
			hold.Done(nil)
			return
		}
		topic := r.RemotePrefix + strings.TrimPrefix(m.Topic, r.LocalPrefix)
		qos := min(m.QoS, r.QoS)
		data, err := encodeQueuedTo(&b.store.bufs, topic, byte(qos), m.Retain, m.Payload, m.Props)
		if err != nil {
			b.outErrs.Add(1)
			b.log.Warn("bridge: encode outbound message", "topic", m.Topic, "err", err)
			hold.Done(nil) // a message we cannot encode is not the publisher's to retry
			return
		}
		if err := b.store.appendHeld(data, qos > 0, hold); err != nil {
			// The queue refused it (full, closed): the publisher gets the
			// protocol's refusal and may retry.
			b.outErrs.Add(1)
			b.log.Warn("bridge: queue outbound message", "topic", m.Topic, "err", err)
			hold.Done(fmt.Errorf("bridge %q: %w: %w", b.Name(), mqttcore.ErrStoreFailed, err))
			return
		}
		b.forwarded.Add(1)
	}
}

// inbound publishes a remote message into the core through the bridge's
// inline client (so its Origin is the bridge and it is not sent back), and
// acknowledges it to the remote (paho's manual acknowledgements, sent in
// the order the messages came) only once the core has it: for QoS 1/2,
// once Publish returned, which with a durable store is after the commit.
//
// A message the core refuses for now (flow control, a full queue, a failed
// store write, shutdown) is not acknowledged: an acknowledgement is a
// promise. Acknowledgements go out in order, so nothing after it on this
// connection is acknowledged either, or published (that keeps the order):
// the bridge drops the connection, and the remote sends them again, with
// DUP, when it reconnects (after backoff) and finds its session
// (session_expiry). A message the core can never take (an invalid topic
// after remapping, too large, not authorized) is acknowledged, counted and
// logged: sent again, it would be refused again forever.
func (b *Bridge) inbound(pr paho.PublishReceived) (bool, error) {
	p := pr.Packet
	if pr.Client != nil && b.inHalted.Load() == pr.Client {
		return true, nil // after a refusal on this connection: left for the remote to send again
	}
	handled := false
	for _, r := range *b.in.Load() {
		if !topicMatch(r.RemotePrefix+r.Pattern, p.Topic) {
			continue
		}
		handled = true
		m := &mqttcore.Message{
			Topic:   r.LocalPrefix + strings.TrimPrefix(p.Topic, r.RemotePrefix),
			Payload: p.Payload,
			QoS:     min(mqttcore.QoS(p.QoS), r.QoS),
			Retain:  p.Retain,
			Props:   pahoprops.ToCore(p.Properties),
		}
		err := b.inline.Publish(m)
		switch {
		case err == nil:
			b.received.Add(1)
			b.inRetries.Store(0)
		case permanentRefusal(err):
			b.inErrs.Add(1)
			b.log.Warn("bridge: inbound message refused by the core; acknowledged, it cannot be taken", "topic", p.Topic, "err", err)
		default:
			b.inErrs.Add(1)
			b.inDeferred.Add(1)
			b.haltInbound(pr.Client, p, err)
			return true, nil
		}
		break
	}
	b.ack(pr)
	return handled, nil
}

// permanentRefusal reports whether the core refused a message for good
// (sending it again cannot help), as opposed to for now.
func permanentRefusal(err error) bool {
	for _, e := range []error{mqttcore.ErrInvalidTopic, mqttcore.ErrReservedTopic, mqttcore.ErrInvalidQoS,
		mqttcore.ErrPayloadTooLarge, mqttcore.ErrNotAuthorized} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// ack acknowledges an inbound QoS 1/2 message to the remote (PUBACK or
// PUBREC; paho sends them in order).
func (b *Bridge) ack(pr paho.PublishReceived) {
	if pr.Client == nil || pr.Packet.QoS == 0 {
		return
	}
	if err := pr.Client.Ack(pr.Packet); err != nil {
		b.log.Debug("bridge: acknowledge inbound message", "msg_id", pr.Packet.PacketID, "err", err)
	}
}

// haltInbound stops taking messages on the connection of c after the core
// refused p for now, and drops the connection, so that the remote sends p
// and what followed it again when the bridge reconnects (after backoff,
// growing while the refusals go on).
func (b *Bridge) haltInbound(c *paho.Client, p *paho.Publish, err error) {
	if c != nil {
		b.inHalted.Store(c)
	}
	n := b.inRetries.Add(1)
	level := slog.LevelWarn // at most once per reconnect, which backs off
	if errors.Is(err, mqttcore.ErrClosed) {
		level = slog.LevelDebug // shutting down
	}
	b.log.Log(context.Background(), level, "bridge: inbound message refused by the core for now; not acknowledged, reconnecting so the remote sends it again",
		"server", b.server(), "topic", p.Topic, "msg_id", p.PacketID, "err", err, "retry", n)
	if conn := b.conn.Load(); conn != nil {
		_ = conn.Conn.Close() // paho's reader fails; autopaho reconnects with backoff (reconnectDelay)
	}
}

// reconnectDelay is autopaho's ReconnectBackoff: the configured backoff,
// but after the bridge dropped a connection itself to have inbound
// messages sent again, the first attempt waits too, longer each time.
func (b *Bridge) reconnectDelay(attempt int) time.Duration {
	if n := int(b.inRetries.Load()); n > 0 {
		attempt += n
	}
	return b.conf().backoff(attempt)
}

// connectionUp runs when a connection of the manager whose context is ctx
// is up: it subscribes the in rules on the remote, and unsubscribes the
// filters of in rules a Reconfigure removed.
func (b *Bridge) connectionUp(ctx context.Context, cm *autopaho.ConnectionManager, ca *paho.Connack) {
	b.connected.Store(true)
	b.failWarned.Store(0)
	b.log.Info("bridge connected", "server", b.server(), "session_present", ca.SessionPresent)
	// The removed filters stay to do until the remote acknowledges their
	// UNSUBSCRIBE: if this connection ends first, the next one sends it
	// again (with a persistent session the remote keeps them meanwhile).
	if drop := b.dropIn.Load(); drop != nil && len(*drop) > 0 {
		b.wg.Add(1)
		go func() { // exits when the UNSUBACK arrives or the connection ends
			defer b.wg.Done()
			uctx, cancel := context.WithTimeout(ctx, b.conf().connectTimeout())
			defer cancel()
			ua, err := cm.Unsubscribe(uctx, &paho.Unsubscribe{Topics: *drop})
			if ua == nil { // no UNSUBACK (paho also errs on an UNSUBACK with a refusal)
				b.log.Warn("bridge: unsubscribe removed in rules on remote; sent again on the next connection", "server", b.server(), "filters", *drop, "err", err)
				return
			}
			for i, rc := range ua.Reasons {
				if rc >= 0x80 && i < len(*drop) { // an answer all the same: sending it again would not change it
					b.log.Warn("bridge: remote refused to unsubscribe a removed in rule", "server", b.server(), "filter", (*drop)[i], "reason_code", fmt.Sprintf("0x%02x", rc))
				}
			}
			// Done, unless a Reconfigure meanwhile made a new list (which
			// holds these filters too, unless a new in rule wants them).
			b.dropIn.CompareAndSwap(drop, nil)
		}()
	}
	in := *b.in.Load()
	if len(in) == 0 {
		return
	}
	sub := &paho.Subscribe{}
	for _, r := range in {
		sub.Subscriptions = append(sub.Subscriptions, paho.SubscribeOptions{
			Topic: r.RemotePrefix + r.Pattern, QoS: byte(r.QoS), NoLocal: true, RetainAsPublished: true,
		})
	}
	b.wg.Add(1)
	go func() { // exits when the SUBACK arrives or the connection ends
		defer b.wg.Done()
		ctx, cancel := context.WithTimeout(ctx, b.conf().connectTimeout()) // Close and Reconfigure cancel ctx
		defer cancel()
		sa, err := cm.Subscribe(ctx, sub)
		if err != nil {
			b.log.Warn("bridge: subscribe on remote", "server", b.server(), "err", err)
			return
		}
		for i, rc := range sa.Reasons {
			if rc >= 0x80 && i < len(sub.Subscriptions) {
				b.log.Error("bridge: remote refused subscription", "server", b.server(), "filter", sub.Subscriptions[i].Topic, "reason_code", rc)
			}
		}
	}()
}

func (b *Bridge) connectionDown() bool {
	b.connected.Store(false)
	b.log.Warn("bridge connection lost; messages are queued on disk", "server", b.server())
	return true
}

func (b *Bridge) connectError(err error) {
	server := b.server()
	var ce *autopaho.ConnackError
	switch {
	case errors.Is(err, errNotMQTT5):
		b.log.Error("bridge: remote broker refused MQTT 5", "server", server, "reason", err.Error())
	case errors.As(err, &ce) && ce.ReasonCode == 0x84:
		b.log.Error("bridge: remote broker refused MQTT 5", "server", server,
			"reason", fmt.Sprintf("CONNACK reason code 0x84 (unsupported protocol version) %s", ce.Reason))
	case errors.As(err, &ce):
		b.log.Error("bridge: remote broker refused the connection", "server", server, "reason_code", ce.ReasonCode, "reason", ce.Reason)
	default:
		// Warn once per outage (and every 10 minutes of it); each retry
		// is logged at Debug.
		now := time.Now().UnixNano()
		if last := b.failWarned.Load(); last == 0 || now-last > int64(10*time.Minute) {
			b.failWarned.Store(now)
			b.log.Warn("bridge: connect failed; retrying with backoff, messages are queued on disk", "server", server, "err", err)
		} else {
			b.log.Debug("bridge: connect failed", "server", server, "err", err)
		}
	}
}

func (b *Bridge) server() string {
	if p := b.lastURL.Load(); p != nil {
		return *p
	}
	return ""
}

// backoff is the reconnect delay after failed attempt n: none before the
// first attempt, then doubling from BackoffMin to BackoffMax, +-25%.
func (c *Config) backoff(attempt int) time.Duration {
	if attempt == 0 {
		return 0
	}
	d, hi := c.backoffMin(), c.backoffMax()
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d - d/4 + rand.N(d/2+1)
}

// tlsConfig loads the TLS files (nil when none is set and no server needs
// TLS beyond the system roots).
func (c *Config) tlsConfig() (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLS.ServerName}
	if c.TLS.CAFile != "" {
		pem, err := os.ReadFile(c.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s: no PEM certificate found", c.TLS.CAFile)
		}
	}
	if c.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file/key_file: %w", err)
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, nil
}

// statsLoop publishes the statistics in $SYS, expires old messages and
// logs drops. It exits when Close closes b.stop.
func (b *Bridge) statsLoop() {
	defer b.wg.Done()
	t := time.NewTicker(b.conf().sysInterval())
	defer t.Stop()
	var last Stats
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		b.store.Expire()
		s := b.Stats()
		if s.Dropped != last.Dropped {
			b.log.Warn("bridge queue dropped messages",
				"dropped_qos0", s.DroppedQoS0-last.DroppedQoS0, "dropped_oldest", s.DroppedOldest-last.DroppedOldest,
				"expired", s.Expired-last.Expired, "too_large", s.TooLarge-last.TooLarge,
				"dropped_total", s.Dropped, "queued", s.Depth, "bytes", s.Bytes)
		}
		last = s
		if !b.conf().SysDisabled {
			b.publishSys(s)
		}
	}
}

// SysTopics returns the $SYS topics and values for s, as published every
// SysInterval.
func (b *Bridge) SysTopics(s Stats) map[string]string {
	p := "$SYS/broker/bridge/" + b.Name() + "/"
	conn := "0"
	if s.Connected {
		conn = "1"
	}
	return map[string]string{
		p + "connected":         conn,
		p + "queue/messages":    fmt.Sprint(s.Depth),
		p + "queue/bytes":       fmt.Sprint(s.Bytes),
		p + "queue/oldest_age":  fmt.Sprintf("%d seconds", int64(s.OldestAge/time.Second)),
		p + "queue/inflight":    fmt.Sprint(s.Inflight),
		p + "messages/dropped":  fmt.Sprint(s.Dropped),
		p + "messages/refused":  fmt.Sprint(s.RemoteRefused),
		p + "messages/sent":     fmt.Sprint(s.Sent),
		p + "messages/received": fmt.Sprint(s.Received),
		p + "messages/queued":   fmt.Sprint(s.Forwarded),
	}
}

func (b *Bridge) publishSys(s Stats) {
	for topic, v := range b.SysTopics(s) {
		if err := b.inline.Publish(&mqttcore.Message{Topic: topic, Payload: []byte(v), Retain: true}); err != nil {
			b.log.Debug("bridge: publish $SYS", "topic", topic, "err", err)
		}
	}
}

// topicMatch reports whether topic matches the MQTT filter.
func topicMatch(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && !strings.HasPrefix(filter, "$") {
		return false
	}
	for {
		f, frest, fmore := strings.Cut(filter, "/")
		t, trest, tmore := strings.Cut(topic, "/")
		switch {
		case f == "#":
			return true
		case f != "+" && f != t:
			return false
		}
		if !fmore || !tmore {
			return !fmore && !tmore || fmore && frest == "#"
		}
		filter, topic = frest, trest
	}
}

// encodeQueued returns a queue record: 8 bytes of room for the enqueue
// time, then the MQTT 5 PUBLISH packet (with a zero packet id, set when it
// is sent). Without properties (the common case: sensors' messages) it is
// encoded here in one allocation; with them, through paho.
func encodeQueued(topic string, qos byte, retain bool, payload []byte, props *mqttcore.Properties) ([]byte, error) {
	return encodeQueuedTo(nil, topic, qos, retain, payload, props)
}

// encodeQueuedTo is encodeQueued into a buffer from bufs (nil: a new
// one) when there are no properties.
func encodeQueuedTo(bufs *queueBufs, topic string, qos byte, retain bool, payload []byte, props *mqttcore.Properties) ([]byte, error) {
	if props != nil {
		p := &paho.Publish{QoS: qos, Retain: retain, Topic: topic, Payload: payload, Properties: pahoprops.ToPaho(props)}
		buf := bytes.NewBuffer(make([]byte, 8, 8+len(topic)+len(payload)+64))
		if _, err := p.Packet().WriteTo(buf); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	}
	if len(topic) > 0xFFFF {
		return nil, fmt.Errorf("topic of %d bytes: at most 65535", len(topic))
	}
	rl := 2 + len(topic) + 1 + len(payload) // topic, property length 0, payload
	if qos > 0 {
		rl += 2
	}
	if rl > 268435455 {
		return nil, fmt.Errorf("packet of %d bytes: beyond MQTT's 268435455", rl)
	}
	vbi := 1
	for n := rl; n > 127; n >>= 7 {
		vbi++
	}
	var b []byte
	if bufs != nil {
		b = bufs.get(8 + 1 + vbi + rl)
	} else {
		b = make([]byte, 0, 8+1+vbi+rl)
	}
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	h := byte(3<<4) | qos<<1
	if retain {
		h |= 1
	}
	b = append(b, h)
	for n := rl; ; {
		d := byte(n & 0x7F)
		n >>= 7
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			break
		}
	}
	b = append(b, byte(len(topic)>>8), byte(len(topic)))
	b = append(b, topic...)
	if qos > 0 {
		b = append(b, 0, 0) // packet id, set by the sender
	}
	b = append(b, 0) // no properties
	return append(b, payload...), nil
}

// remoteRefused counts and logs a message the remote refused with an
// error reason code in PUBACK, PUBREC or PUBCOMP.
func (b *Bridge) remoteRefused(id uint16, rc byte) {
	b.refused.Add(1)
	b.log.Warn("bridge: remote refused a message", "server", b.server(), "msg_id", id, "reason_code", fmt.Sprintf("0x%02x", rc))
}

// storeError logs a failed write or read of the queue file, at most once a
// second (each one is counted in Stats().FailedWrites).
func (b *Bridge) storeError(msg string, err error) {
	now := time.Now().UnixNano()
	if last := b.errLogged.Load(); now-last > int64(time.Second) && b.errLogged.CompareAndSwap(last, now) {
		b.log.Error(msg, "err", err)
	}
}

// attempt is autopaho's AttemptConnection: dial, then buffer the reads
// (paho reads each packet in several small reads) and take the PUBACKs of
// what the sender sent before paho sees them (bufConn).
func (b *Bridge) attempt(ctx context.Context, cfg autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
	c, err := b.dial(ctx, cfg, u)
	if err != nil {
		return nil, err
	}
	bc := newBufConn(c, b.out.end)
	b.conn.Store(bc)
	return bc, nil
}

// logger adapts slog to paho's logger interface.
type logger struct {
	l     *slog.Logger
	level slog.Level
	src   string
}

func (l logger) Println(v ...any) {
	if l.l.Enabled(context.Background(), l.level) {
		l.l.Log(context.Background(), l.level, strings.TrimSpace(fmt.Sprintln(v...)), "src", l.src)
	}
}

func (l logger) Printf(format string, v ...any) {
	if l.l.Enabled(context.Background(), l.level) {
		l.l.Log(context.Background(), l.level, fmt.Sprintf(format, v...), "src", l.src)
	}
}

package transparent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/internal/pahoprops"
)

// link is one sensor's upstream session: the mqttcore.UpstreamLink of a
// transparent core session. Its operations run in order on a worker
// goroutine that exists only while operations wait (a sleeping sensor
// whose connection is closed costs this struct and no goroutine); the
// connection, while open, has paho's goroutines.
type link struct {
	u  *Upstream
	id string
	in mqttcore.UpstreamSink

	mu      sync.Mutex
	ops     []op
	running bool
	// mirrors of the worker's state that Attach decides on, guarded by mu
	connected bool
	regWill   *mqttcore.Will // the will the connection carries

	// Owned by the worker (or by Close once workers are gone).
	cli      *paho.Client
	sess     *countingSession
	params   connectParams // of the last connect
	willGone bool          // the remote has (or will have) published the will
	slept    bool          // the connection was closed for a sleep (close_on_sleep)
	taken    bool          // the remote session was taken over elsewhere

	handled  atomic.Int64  // QoS 1/2 messages from the remote handed to the core
	progress chan struct{} // poked when handled grows
}

// op is one queued operation. run does it; fail reports it refused
// without running (the queue is full or the Upstream closed).
type op struct {
	run  func(ctx context.Context)
	fail func(err error)
}

// receiveMaximum is the Receive Maximum of every upstream CONNECT.
const receiveMaximum = 16

// connectParams are what a connect sends.
type connectParams struct {
	clean  bool
	expiry uint32
	will   *mqttcore.Will
}

// enqueue adds o to the link's queue and starts the worker if needed.
// Beyond DefaultMaxOps waiting operations o is refused.
func (l *link) enqueue(o op, force bool) {
	l.mu.Lock()
	if len(l.ops) >= DefaultMaxOps && !force {
		l.mu.Unlock()
		if o.fail != nil {
			o.fail(fmt.Errorf("transparent: %q: %d operations wait for the remote: %w", l.id, DefaultMaxOps, mqttcore.ErrCongestion))
		}
		return
	}
	l.ops = append(l.ops, o)
	start := !l.running
	l.running = true
	l.mu.Unlock()
	if start && !l.u.goTracked(l.work) { // exits when the queue is empty
		l.mu.Lock()
		ops := l.ops
		l.ops, l.running = nil, false
		l.mu.Unlock()
		for _, o := range ops {
			if o.fail != nil {
				o.fail(fmt.Errorf("transparent: %q: %w", l.id, mqttcore.ErrClosed))
			}
		}
	}
}

// work runs queued operations until none is left.
func (l *link) work() {
	for {
		l.mu.Lock()
		if len(l.ops) == 0 {
			l.running = false
			l.mu.Unlock()
			return
		}
		o := l.ops[0]
		l.ops[0] = op{}
		l.ops = l.ops[1:]
		if len(l.ops) == 0 {
			l.ops = nil
		}
		l.mu.Unlock()
		o.run(l.u.ctx)
	}
}

// Attach implements mqttcore.UpstreamLink.
func (l *link) Attach(opts mqttcore.ConnectOptions, present bool, done func(error)) bool {
	p := connectParams{clean: opts.CleanStart, will: opts.Will}
	if !opts.CleanStart {
		p.expiry = expirySeconds(opts.SessionExpiry)
		if l.u.cfg.SessionExpiry > 0 {
			p.expiry = expirySeconds(l.u.cfg.SessionExpiry)
		}
	}
	l.mu.Lock()
	need := !l.connected || opts.CleanStart || l.regWill != opts.Will
	l.mu.Unlock()
	if !need {
		return false
	}
	l.enqueue(op{
		run: func(ctx context.Context) {
			l.taken = false
			done(l.connect(ctx, p, true))
		},
		fail: done,
	}, true)
	return true
}

// connect (re)connects with p, replacing any open connection; with
// barrier it then waits until the messages the remote sent right after
// its CONNACK are queued in the core. It runs on the worker.
func (l *link) connect(ctx context.Context, p connectParams, barrier bool) error {
	if l.cli != nil {
		l.drop(0x00)
	}
	if !l.u.acquire(l.id) {
		return fmt.Errorf("transparent: connect %q: %d upstream connections: %w", l.id, l.u.cfg.MaxConnections, mqttcore.ErrTooManySessions)
	}
	ctx, cancel := context.WithTimeout(ctx, l.u.cfg.ConnectTimeout)
	defer cancel()
	var conn net.Conn
	var err error
	if l.u.tls != nil {
		conn, err = (&tls.Dialer{Config: l.u.tls}).DialContext(ctx, "tcp", l.u.addr)
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", l.u.addr)
	}
	if err != nil {
		l.u.conns.Add(-1)
		if l.u.ctx.Err() != nil { // Close: not a failure of the remote
			return fmt.Errorf("transparent: connect %q: %w", l.id, mqttcore.ErrClosed)
		}
		l.u.failures.Add(1)
		l.u.warnRateLimited("transparent: cannot reach the remote broker", "client_id", l.id, "server", l.u.cfg.Server, "err", err)
		return fmt.Errorf("transparent: connect %q: %v: %w", l.id, err, mqttcore.ErrUnavailable)
	}
	sess := newCountingSession()
	var cli *paho.Client
	cli = paho.NewClient(paho.ClientConfig{
		// paho writes from several goroutines (this worker, its router's
		// acknowledgements, its pinger): the conn must lock its writes.
		Conn:               packets.NewThreadSafeConn(conn),
		Session:            sess,
		OnPublishReceived:  []func(paho.PublishReceived) (bool, error){l.received},
		OnClientError:      func(err error) { l.lost(cli, 0, err) },
		OnServerDisconnect: func(d *paho.Disconnect) { l.lost(cli, d.ReasonCode, nil) },
	})
	user, pass := l.u.cfg.credentials(l.u.devices, l.id)
	recvMax := uint16(receiveMaximum)
	cp := &paho.Connect{
		ClientID:     l.id,
		CleanStart:   p.clean,
		KeepAlive:    uint16(l.u.cfg.KeepAlive / time.Second),
		Username:     user,
		UsernameFlag: user != "",
		Password:     []byte(pass),
		PasswordFlag: pass != "",
		// A sensor takes one message at a time; a small Receive Maximum
		// keeps the remote from flooding its queue, and keeps paho's
		// per-connection channel (one slot per message) small.
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &p.expiry, ReceiveMaximum: &recvMax},
	}
	if w := p.will; w != nil {
		cp.WillMessage = &paho.WillMessage{Topic: w.Topic, Payload: w.Payload, QoS: byte(w.QoS), Retain: w.Retain}
		if w.Delay > 0 {
			d := expirySeconds(w.Delay)
			cp.WillProperties = &paho.WillProperties{WillDelayInterval: &d}
		}
	}
	base := l.handled.Load() // messages may follow the CONNACK before Connect returns
	ca, err := cli.Connect(ctx, cp)
	if err != nil {
		_ = conn.Close()
		l.u.conns.Add(-1)
		l.u.failures.Add(1)
		if ca != nil {
			l.u.warnRateLimited("transparent: the remote broker refused a sensor", "client_id", l.id, "reason_code", fmt.Sprintf("0x%02x", ca.ReasonCode))
			return fmt.Errorf("transparent: connect %q: remote CONNACK 0x%02x: %w", l.id, ca.ReasonCode, connackErr(ca.ReasonCode))
		}
		return fmt.Errorf("transparent: connect %q: %v: %w", l.id, err, mqttcore.ErrUnavailable)
	}
	l.cli, l.sess, l.params, l.willGone, l.slept = cli, sess, p, false, false
	l.u.connects.Add(1)
	l.u.setLive(l, true)
	l.mu.Lock()
	l.connected, l.regWill = true, p.will
	l.mu.Unlock()
	l.u.log.Debug("transparent: upstream connected", "client_id", l.id, "session_present", ca.SessionPresent, "clean_start", p.clean)
	if barrier && ca.SessionPresent {
		l.barrier(ctx, base)
	}
	return nil
}

// barrier waits until the QoS 1/2 messages the remote sent before it
// answered an UNSUBSCRIBE round trip are queued in the core session: a
// resumed session's queued messages follow the CONNACK at once, and a
// sensor waking up should find them in its queue. Bounded by ctx.
func (l *link) barrier(ctx context.Context, base int64) {
	// Any UNSUBACK will do, a refusal too: the remote answers after it
	// wrote what it had queued.
	if _, err := l.cli.Unsubscribe(ctx, &paho.Unsubscribe{Topics: []string{"$gannet/barrier"}}); err != nil && ctx.Err() != nil {
		return
	}
	want := base + l.sess.beforeUnsuback()
	for l.handled.Load() < want {
		select {
		case <-l.progress:
		case <-ctx.Done():
			return
		}
	}
}

// received is paho's handler for a PUBLISH from the remote: the message is
// queued in the core session before paho acknowledges it.
func (l *link) received(pr paho.PublishReceived) (bool, error) {
	p := pr.Packet
	m := &mqttcore.Message{Topic: p.Topic, Payload: p.Payload, QoS: mqttcore.QoS(p.QoS), Retain: p.Retain, Props: pahoprops.ToCore(p.Properties)}
	err := l.in.Deliver(m)
	if err == nil {
		l.u.delivered.Add(1)
	}
	if p.QoS > 0 {
		l.handled.Add(1)
		select {
		case l.progress <- struct{}{}:
		default:
		}
	}
	return true, err
}

// lost is paho's report that cli's connection ended.
func (l *link) lost(cli *paho.Client, reason byte, err error) {
	l.enqueue(op{run: func(context.Context) {
		if l.cli != cli {
			return // an earlier connection
		}
		l.release()
		l.u.log.Debug("transparent: upstream connection lost", "client_id", l.id, "reason_code", fmt.Sprintf("0x%02x", reason), "err", err)
		if reason == 0x8E { // session taken over: the sensor connected elsewhere
			l.taken = true
			l.in.TakenOver()
		}
	}}, true)
}

// release forgets the connection (already closed) and its slot.
func (l *link) release() {
	l.cli, l.sess = nil, nil
	l.u.conns.Add(-1)
	l.u.setLive(l, false)
	l.mu.Lock()
	l.connected, l.regWill = false, nil
	l.mu.Unlock()
}

// drop ends the connection with DISCONNECT reason rc (0x00 keeps the will
// unpublished, 0x04 asks the remote to publish it) and releases it.
func (l *link) drop(rc byte) {
	if l.cli == nil {
		return
	}
	_ = l.cli.Disconnect(&paho.Disconnect{ReasonCode: rc})
	if rc == 0x04 && l.params.will != nil {
		l.willGone = true
	}
	l.release()
}

// ensure reconnects a link whose connection is gone, resuming the remote
// session, before an operation that needs it.
func (l *link) ensure(ctx context.Context) error {
	if l.cli != nil {
		return nil
	}
	if l.taken {
		return fmt.Errorf("transparent: %q: the remote session was taken over: %w", l.id, mqttcore.ErrTakenOver)
	}
	p := l.params
	p.clean = false
	return l.connect(ctx, p, false)
}

// Publish implements mqttcore.UpstreamLink.
func (l *link) Publish(m *mqttcore.Message, done func(error)) {
	fail := done
	if done == nil {
		fail = func(error) { l.u.dropped.Add(1) }
	}
	l.enqueue(op{
		run: func(ctx context.Context) {
			err := l.publish(ctx, m)
			if done != nil {
				done(err)
			}
		},
		fail: fail,
	}, false)
}

// publish sends m and waits for the remote's acknowledgement.
func (l *link) publish(ctx context.Context, m *mqttcore.Message) error {
	if err := l.ensure(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, l.u.cfg.ConnectTimeout)
	defer cancel()
	pr, err := l.cli.Publish(ctx, &paho.Publish{QoS: byte(m.QoS), Retain: m.Retain, Topic: m.Topic, Payload: m.Payload, Properties: pahoprops.ToPaho(m.Props)})
	if pr != nil && pr.ReasonCode >= 0x80 {
		l.u.rejected.Add(1)
		l.u.log.Debug("transparent: the remote refused a publish", "client_id", l.id, "topic", m.Topic, "reason_code", fmt.Sprintf("0x%02x", pr.ReasonCode))
		return fmt.Errorf("transparent: publish %q from %q: remote reason 0x%02x: %w", m.Topic, l.id, pr.ReasonCode, reasonErr(pr.ReasonCode))
	}
	if err != nil {
		return fmt.Errorf("transparent: publish %q from %q: %v: %w", m.Topic, l.id, err, mqttcore.ErrUnavailable)
	}
	l.u.published.Add(1)
	return nil
}

// Subscribe implements mqttcore.UpstreamLink.
func (l *link) Subscribe(filter string, o mqttcore.SubOptions, done func(error)) {
	l.enqueue(op{
		run: func(ctx context.Context) {
			if err := l.ensure(ctx); err != nil {
				done(err)
				return
			}
			ctx, cancel := context.WithTimeout(ctx, l.u.cfg.ConnectTimeout)
			defer cancel()
			sa, err := l.cli.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{
				Topic: filter, QoS: byte(o.QoS), NoLocal: o.NoLocal, RetainAsPublished: o.RetainAsPublished, RetainHandling: byte(o.RetainHandling),
			}}})
			switch {
			case sa != nil && len(sa.Reasons) == 1 && sa.Reasons[0] >= 0x80:
				l.u.rejected.Add(1)
				done(fmt.Errorf("transparent: subscribe %q for %q: remote reason 0x%02x: %w", filter, l.id, sa.Reasons[0], reasonErr(sa.Reasons[0])))
			case err != nil:
				done(fmt.Errorf("transparent: subscribe %q for %q: %v: %w", filter, l.id, err, mqttcore.ErrUnavailable))
			default:
				done(nil)
			}
		},
		fail: done,
	}, false)
}

// Unsubscribe implements mqttcore.UpstreamLink.
func (l *link) Unsubscribe(filter string) {
	l.enqueue(op{run: func(ctx context.Context) {
		if l.ensure(ctx) != nil {
			return
		}
		ctx, cancel := context.WithTimeout(ctx, l.u.cfg.ConnectTimeout)
		defer cancel()
		_, _ = l.cli.Unsubscribe(ctx, &paho.Unsubscribe{Topics: []string{filter}})
	}}, false)
}

// Offline implements mqttcore.UpstreamLink.
func (l *link) Offline(how mqttcore.State, _ time.Duration) {
	switch how {
	case mqttcore.StateAsleep:
		if !l.u.cfg.CloseOnSleep {
			return // the connection stays; messages queue in the core session
		}
		l.enqueue(op{run: func(context.Context) {
			if l.cli != nil {
				l.drop(0x00)
				l.slept = true
			}
		}}, true)
	case mqttcore.StateLost:
		l.enqueue(op{run: func(context.Context) { l.drop(0x04) }}, true) // the remote publishes the will
	default:
		l.enqueue(op{run: func(context.Context) { l.drop(0x00) }}, true)
	}
}

// SetWill implements mqttcore.UpstreamLink. A session that outlives its
// connection (session expiry above 0) reconnects with the new will at
// once, resuming itself; a CleanSession=1 sensor's session would not
// survive that, so its new will waits for its next CONNECT (Attach sees
// that the will changed).
func (l *link) SetWill(w *mqttcore.Will) {
	l.enqueue(op{run: func(ctx context.Context) {
		if l.cli == nil || l.params.will == w || l.params.expiry == 0 {
			return
		}
		p := l.params
		p.clean, p.will = false, w
		if err := l.connect(ctx, p, false); err != nil {
			l.u.warnRateLimited("transparent: will update not sent upstream", "client_id", l.id, "err", err)
		}
	}}, true)
}

// PublishWill implements mqttcore.UpstreamLink.
func (l *link) PublishWill(w *mqttcore.Will) {
	l.enqueue(op{run: func(ctx context.Context) {
		if l.willGone || l.taken {
			return
		}
		if l.cli != nil && l.params.will == w {
			l.drop(0x04)
			return
		}
		if !l.slept {
			// The connection ended without us: the remote published the
			// will then, or the session lives on through another gateway
			// (taken over): reconnecting would steal it back.
			return
		}
		// The connection that carried the will ended normally (closed on
		// sleep): publish it as a message of the sensor.
		if err := l.ensure(ctx); err != nil {
			l.u.warnRateLimited("transparent: will not published upstream", "client_id", l.id, "err", err)
			return
		}
		if err := l.publish(ctx, &mqttcore.Message{Topic: w.Topic, Payload: w.Payload, QoS: w.QoS, Retain: w.Retain, Props: w.Props}); err != nil {
			l.u.warnRateLimited("transparent: will not published upstream", "client_id", l.id, "err", err)
		}
		l.willGone = true
		l.drop(0x00)
	}}, true)
}

// Close implements mqttcore.UpstreamLink.
func (l *link) Close() {
	l.enqueue(op{run: func(context.Context) { l.drop(0x00) }}, true)
}

// connackErr maps a refusing CONNACK reason code to a core error.
func connackErr(rc byte) error {
	switch rc {
	case 0x84, 0x86, 0x87, 0x85, 0x8A, 0x8C: // version, bad credentials, not authorized, client id, banned, bad auth method
		return mqttcore.ErrNotAuthorized
	case 0x89, 0x97, 0x9F, 0x88, 0x9C, 0x9D: // busy, quota, rate, unavailable, use another server, server moved
		return mqttcore.ErrUnavailable
	}
	return errRefused
}

// reasonErr maps a refusing PUBACK/PUBREC/SUBACK reason code.
func reasonErr(rc byte) error {
	switch rc {
	case 0x87:
		return mqttcore.ErrNotAuthorized
	case 0x90:
		return mqttcore.ErrInvalidTopic
	case 0x8F:
		return mqttcore.ErrInvalidFilter
	case 0x95:
		return mqttcore.ErrPayloadTooLarge
	case 0x97, 0x9F, 0x91:
		return mqttcore.ErrCongestion
	}
	return errRefused
}

// errRefused is a remote refusal with no closer core sentinel.
var errRefused = errors.New("refused by the remote broker")

// expirySeconds converts an expiry to MQTT 5 seconds (NeverExpire and
// anything longer than the field saturate at 0xFFFFFFFF).
func expirySeconds(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	s := (d + time.Second - 1) / time.Second
	if s >= 0xFFFFFFFF || d == mqttcore.NeverExpire {
		return 0xFFFFFFFF
	}
	return uint32(s)
}

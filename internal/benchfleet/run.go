package benchfleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gannet-mqtt/gannet/internal/procstat"
	"github.com/gannet-mqtt/gannet/snclient"
	"github.com/gannet-mqtt/gannet/snpacket"
)

// Progress lets a caller watch a run: the current phase and how far it has
// got. Safe for concurrent use; the zero value is ready.
type Progress struct {
	phase atomic.Pointer[string]
	total atomic.Int64
	done  atomic.Int64
}

// Phase returns the current phase ("connecting", "sending", ...), how many
// of its steps are done, and how many there are (-1 when unknown, e.g. a
// phase bounded by time).
func (p *Progress) Phase() (name string, done, total int64) {
	if s := p.phase.Load(); s != nil {
		name = *s
	}
	return name, p.done.Load(), p.total.Load()
}

func (p *Progress) start(name string, total int64) {
	p.done.Store(0)
	p.total.Store(total)
	p.phase.Store(&name)
}

func (p *Progress) add(n int64) { p.done.Add(n) }

// errLog counts errors and keeps the first few.
type errLog struct {
	n     atomic.Uint64
	mu    sync.Mutex
	first []string
}

// snapshot returns the count and the first errors.
func (e *errLog) snapshot() (uint64, []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n.Load(), append([]string(nil), e.first...)
}

func (e *errLog) add(err error) {
	e.n.Add(1)
	e.mu.Lock()
	if len(e.first) < 5 {
		e.first = append(e.first, err.Error())
	}
	e.mu.Unlock()
}

// run is one benchmark run in progress.
type run struct {
	cfg  Config
	gw   *net.UDPAddr
	prog *Progress
	errs errLog
	lat  Histogram
	rep  *Report
}

// Run executes the configured scenario and returns its report. The report
// is returned, with what was measured, even when the run ends early with an
// error (ctx cancelled, gateway unreachable). prog may be nil.
func Run(ctx context.Context, cfg Config, prog *Progress) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if prog == nil {
		prog = new(Progress)
	}
	ap := netip.MustParseAddrPort(cfg.Gateway) // checked by Validate
	r := &run{cfg: cfg, gw: net.UDPAddrFromAddrPort(ap), prog: prog}
	r.rep = &Report{
		Scenario:    cfg.Scenario,
		Sensors:     cfg.Sensors,
		QoS:         cfg.QoS,
		PayloadSize: cfg.PayloadSize,
		Rate:        cfg.Rate,
		Window:      cfg.Window,
		LoadBefore:  procstat.LoadAvg(),
	}
	if cfg.Scenario != ScenarioEcho && cfg.Scenario != ScenarioConnectStorm && cfg.Scenario != ScenarioIdle {
		r.rep.TopicMode = cfg.TopicMode
	}
	if cfg.Scenario != ScenarioEcho && cfg.Scenario != ScenarioMQTTPublish {
		r.rep.Protocol = snclient.Version12.String()
		if cfg.Version == snclient.Version20 {
			r.rep.Protocol = snclient.Version20.String()
		}
	}
	if cfg.GatewayPID > 0 {
		r.rep.Gateway = &GatewayReport{PID: cfg.GatewayPID}
	}
	// Each sensor holds one socket; the MQTT client, the runtime and stdio a
	// few more.
	if lim, err := RaiseNoFile(uint64(cfg.Sensors) + 256); err != nil {
		r.note(fmt.Sprintf("open-files limit %d: %v", lim, err))
	}
	var err error
	switch cfg.Scenario {
	case ScenarioPublish:
		err = r.publish(ctx)
	case ScenarioFanout:
		err = r.fanout(ctx)
	case ScenarioConnectStorm, ScenarioIdle:
		err = r.connectOnly(ctx)
	case ScenarioSleepers:
		err = r.sleepers(ctx)
	case ScenarioEcho:
		err = r.echo(ctx)
	case ScenarioMQTTPublish:
		err = r.mqttPublish(ctx)
	}
	r.rep.LoadAfter = procstat.LoadAvg()
	r.rep.Errors, r.rep.FirstErrors = r.errs.snapshot()
	return r.rep, err
}

func (r *run) note(s string) { r.rep.Notes = append(r.rep.Notes, s) }

// barrier waits at a synchronisation point (see Config.Barrier).
func (r *run) barrier(name string) error {
	if r.cfg.Barrier == nil {
		return nil
	}
	r.prog.start("waiting: "+name, -1)
	if err := r.cfg.Barrier(name); err != nil {
		return fmt.Errorf("bench: barrier %q: %w", name, err)
	}
	return nil
}

// clientOptions returns the snclient options of sensor i.
func (r *run) clientOptions(i int, persistent bool, h snclient.Handler) snclient.Options {
	size := max(snclient.DefaultMaxMessageSize, r.cfg.PayloadSize+16)
	var predef map[uint16]string
	if r.cfg.TopicMode == TopicPredefined {
		// Deliveries on the predefined id (fanout, sleepers) need its name.
		_, name := r.cfg.groupTopic()
		predef = map[uint16]string{r.cfg.TopicID: name}
	}
	return snclient.Options{
		PredefinedTopics:  predef,
		Version:           r.cfg.Version,
		ClientID:          r.cfg.clientID(i),
		KeepAlive:         r.cfg.KeepAlive,
		PersistentSession: persistent,
		RetryInterval:     r.cfg.RetryInterval,
		MaxRetries:        r.cfg.MaxRetries,
		MaxMessageSize:    min(size, snpacket.MaxLen),
		Handler:           h,
		// The sleepers scenario measures sessions with messages queued and
		// wakes them when it says: a 2.0 WAKEUP must not wake them early.
		IgnoreWakeup: r.cfg.Scenario == ScenarioSleepers,
	}
}

// dialUDP opens sensor i's socket, connected to the gateway and bound to
// its share of Config.Bind.
func (r *run) dialUDP(i int) (*net.UDPConn, error) {
	var laddr *net.UDPAddr
	if n := len(r.cfg.Bind); n > 0 {
		laddr = &net.UDPAddr{IP: r.cfg.Bind[i%n].AsSlice()}
	}
	conn, err := net.DialUDP("udp", laddr, r.gw)
	if err != nil {
		return nil, fmt.Errorf("sensor %d: open socket to %v: %w", i, r.gw, err)
	}
	return conn, nil
}

// newSensor opens sensor i's socket and client, without connecting.
func (r *run) newSensor(i int, persistent bool, h snclient.Handler) (*snclient.Client, error) {
	conn, err := r.dialUDP(i)
	if err != nil {
		return nil, err
	}
	c, err := snclient.New(conn, r.gw, r.clientOptions(i, persistent, h))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("sensor %d: %w", i, err)
	}
	return c, nil
}

// workers runs f(i) for i in 0..n-1 on at most limit goroutines (0: n) and
// waits for them. f returns false to stop the whole batch early.
func workers(n, limit int, f func(i int) bool) {
	if limit <= 0 || limit > n {
		limit = n
	}
	var next atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range limit {
		wg.Add(1)
		go func() { // exits when the indices run out or f asks to stop
			defer wg.Done()
			for !stop.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if !f(i) {
					stop.Store(true)
				}
			}
		}()
	}
	wg.Wait()
}

// connectAll opens and connects every sensor, at most Config.Concurrency at
// a time, then runs after (if not nil) on each connected sensor within the
// same worker. Sensors that fail are closed and left nil. The phase's report
// goes into r.rep.Connect.
func (r *run) connectAll(ctx context.Context, persistent bool, handler func(i int) snclient.Handler,
	after func(ctx context.Context, i int, c *snclient.Client) error) []*snclient.Client {
	n := r.cfg.Sensors
	clients := make([]*snclient.Client, n)
	var hist Histogram
	var connected, failed atomic.Int64
	var lastOK atomic.Int64
	if err := r.barrier("start"); err != nil {
		r.errs.add(err)
		return clients
	}
	r.prog.start("connecting", int64(n))
	start := time.Now()
	workers(n, r.cfg.Concurrency, func(i int) bool {
		if ctx.Err() != nil {
			return false
		}
		var h snclient.Handler
		if handler != nil {
			h = handler(i)
		}
		c, err := r.newSensor(i, persistent, h)
		if err != nil {
			r.errs.add(err)
			failed.Add(1)
			return true
		}
		t0 := time.Now()
		if err := c.Connect(ctx); err != nil {
			r.errs.add(fmt.Errorf("sensor %d: %w", i, err))
			failed.Add(1)
			c.Close()
			return true
		}
		t1 := time.Now()
		hist.Record(t1.Sub(t0))
		for {
			l := lastOK.Load()
			if t1.UnixNano() <= l || lastOK.CompareAndSwap(l, t1.UnixNano()) {
				break
			}
		}
		if after != nil {
			if err := after(ctx, i, c); err != nil {
				r.errs.add(fmt.Errorf("sensor %d: %w", i, err))
				failed.Add(1)
				c.Close()
				return true
			}
		}
		clients[i] = c
		connected.Add(1)
		r.prog.add(1)
		return true
	})
	cr := &ConnectReport{Connected: int(connected.Load()), Failed: int(failed.Load()), Latency: hist.Summary(),
		Histogram: hist.Buckets(), StartUnixNano: start.UnixNano(), EndUnixNano: lastOK.Load()}
	if l := lastOK.Load(); l > 0 {
		cr.Seconds = time.Unix(0, l).Sub(start).Seconds()
		if cr.Seconds > 0 {
			cr.PerSec = float64(cr.Connected) / cr.Seconds
		}
	}
	for _, c := range clients {
		if c != nil {
			cr.Retransmitted += c.Stats().Retransmitted
		}
	}
	r.rep.Connect = cr
	return clients
}

// closeAll ends every sensor, with DISCONNECT when Config.Disconnect is set.
func (r *run) closeAll(clients []*snclient.Client) {
	r.prog.start("closing", int64(len(clients)))
	workers(len(clients), 256, func(i int) bool {
		c := clients[i]
		if c == nil {
			return true
		}
		if r.cfg.Disconnect {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := c.Disconnect(ctx); err != nil && !errors.Is(err, snclient.ErrNotConnected) {
				r.errs.add(fmt.Errorf("sensor %d: %w", i, err))
			}
			cancel()
		}
		c.Close()
		r.prog.add(1)
		return true
	})
}

// gatewayRSS reads the gateway's RSS, after Config.Settle, or returns 0
// when no pid was given.
func (r *run) gatewayRSS(ctx context.Context, settle bool) uint64 {
	if r.cfg.GatewayPID <= 0 {
		return 0
	}
	if settle && r.cfg.Settle > 0 {
		r.prog.start("settling", -1)
		t := time.NewTimer(r.cfg.Settle)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	rss, err := procstat.ReadRSS(r.cfg.GatewayPID)
	if err != nil {
		r.errs.add(err)
	}
	return rss
}

// gatewayCPU reads the gateway's CPU time, or returns -1 when no pid was
// given or /proc could not say.
func (r *run) gatewayCPU() time.Duration {
	if r.cfg.GatewayPID <= 0 {
		return -1
	}
	d, err := procstat.ReadCPU(r.cfg.GatewayPID)
	if err != nil {
		r.errs.add(err)
		return -1
	}
	return d
}

// selfCPU returns this process's CPU time so far, or -1 when /proc cannot
// say.
func selfCPU() time.Duration {
	d, err := procstat.ReadCPU(os.Getpid())
	if err != nil {
		return -1
	}
	return d
}

// setBenchCPU records this process's CPU use over a phase of wall time wall.
func (r *run) setBenchCPU(before time.Duration, wall time.Duration) {
	if after := selfCPU(); before >= 0 && after >= 0 && wall > 0 {
		r.rep.BenchCPUPercent = 100 * (after - before).Seconds() / wall.Seconds()
	}
}

// setCPU records the gateway's CPU use over a phase of wall time wall.
func (r *run) setCPU(before, after time.Duration, wall time.Duration) {
	if g := r.rep.Gateway; g != nil && wall > 0 && before >= 0 && after >= 0 {
		g.CPUMeasured = true
		g.CPUSeconds = (after - before).Seconds()
		g.CPUPercent = 100 * g.CPUSeconds / wall.Seconds()
	}
}

// setRSS records the gateway's RSS before and after sessions were made.
func (r *run) setRSS(before, after uint64, sessions int) {
	if g := r.rep.Gateway; g != nil {
		g.RSSBefore, g.RSSAfter = before, after
		if sessions > 0 && before > 0 && after > 0 { // 0: not measured
			g.RSSPerSession = (float64(after) - float64(before)) / float64(sessions)
		}
	}
}

// drain waits until want unique deliveries arrived, Config.Drain passed or
// ctx ended.
func (r *run) drain(ctx context.Context, t *Tracker, want uint64) {
	r.prog.start("draining", int64(want))
	deadline := time.NewTimer(r.cfg.Drain)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		d := t.Delivered()
		r.prog.done.Store(int64(d))
		if d >= want {
			return
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// finish fills the delivery part of the report.
func (r *run) finish(t *Tracker, tl *Timeline, sent, acked, expected uint64, sendStart, sendEnd time.Time) {
	rep := r.rep
	rep.Sent, rep.Acknowledged, rep.Expected = sent, acked, expected
	rep.Delivered = t.Delivered()
	rep.Duplicated = t.Duplicates()
	rep.Foreign = t.Foreign()
	if rep.Expected > rep.Delivered {
		rep.Lost = rep.Expected - rep.Delivered
	}
	rep.SendSeconds = sendEnd.Sub(sendStart).Seconds()
	if rep.SendSeconds > 0 {
		rep.SentPerSec = float64(sent) / rep.SendSeconds
	}
	if last := t.LastDelivery(); !last.IsZero() {
		if s := last.Sub(sendStart).Seconds(); s > 0 {
			rep.DeliveredPerSec = float64(rep.Delivered) / s
		}
	}
	rep.Latency = r.lat.Summary()
	rep.Histogram = r.lat.Buckets()
	if tl != nil {
		rep.Timeline = tl.Slots()
	}
}

// newTimeline returns a timeline over the sending and draining phases.
func (r *run) newTimeline(start time.Time) *Timeline {
	span := r.cfg.Duration + r.cfg.Drain
	if r.cfg.Duration == 0 {
		span = 10*time.Minute + r.cfg.Drain // a count-bounded run: an upper bound
	}
	width := max(100*time.Millisecond, span/200)
	if r.cfg.Duration == 0 {
		width = 100 * time.Millisecond
	}
	return NewTimeline(start, span, width)
}

// pacer spaces one sender's messages at rate per second, starting at an
// offset into the first interval so a fleet does not send in lockstep. It
// allocates nothing per message.
type pacer struct {
	interval time.Duration
	next     time.Time
	timer    *time.Timer
}

func newPacer(rate float64, start time.Time, i, n int) *pacer {
	if rate <= 0 {
		return nil
	}
	iv := time.Duration(float64(time.Second) / rate)
	p := &pacer{interval: iv, next: start.Add(iv * time.Duration(i) / time.Duration(n))}
	p.timer = time.NewTimer(time.Hour)
	p.timer.Stop()
	return p
}

// wait blocks until the next send time; false when stop closed first.
func (p *pacer) wait(stop <-chan struct{}) bool {
	if p == nil {
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	d := time.Until(p.next)
	p.next = p.next.Add(p.interval)
	if d <= 0 {
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	p.timer.Reset(d)
	select {
	case <-p.timer.C:
		return true
	case <-stop:
		p.timer.Stop()
		return false
	}
}

// stopAfter returns a channel closed after d (never when d is 0) or when ctx
// ends, and a function that releases its timer.
func stopAfter(ctx context.Context, d time.Duration) (<-chan struct{}, func()) {
	stop := make(chan struct{})
	var once sync.Once
	closeStop := func() { once.Do(func() { close(stop) }) }
	var t *time.Timer
	if d > 0 {
		t = time.AfterFunc(d, closeStop)
	}
	ctxStop := context.AfterFunc(ctx, closeStop)
	return stop, func() {
		if t != nil {
			t.Stop()
		}
		ctxStop()
	}
}

// fill returns a payload buffer of the configured size, its tail filled.
func (r *run) fill() []byte {
	b := make([]byte, r.cfg.PayloadSize)
	for i := HeaderLen; i < len(b); i++ {
		b[i] = 'x'
	}
	return b
}

package mqttcore

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Lock order (see docs/mqttcore.md): Broker.mu, then tree.mu, then
// Session.mu, then journalState.mu. The retained index's lock and the
// parking lock are leaves: never held while taking another. No lock is held while calling FrontEnd methods or inline
// callbacks, and the fan-out path takes tree.mu (read) and Session.mu one
// after the other, never nested.

// Options are the broker's non-configuration dependencies.
type Options struct {
	// Journal makes sessions and retained messages durable; nil keeps
	// everything in memory (nothing survives the process, nothing waits).
	Journal Journal
	// Version is reported on $SYS/broker/version.
	Version string
	// Authorizer decides what clients may publish, subscribe to, set as a
	// will and receive; nil allows everything. Replace it with
	// Broker.SetAuthorizer. See authorize.go.
	Authorizer Authorizer
}

// Broker is the broker core. Create it with New and stop it with Close.
type Broker struct {
	cfg      atomic.Pointer[Config] // defaults filled in; replaced whole by SetConfig (reconfig.go)
	journal  Journal
	retained *retainedIndex
	version  string
	started  time.Time

	mu       sync.Mutex // guards sessions, timers, closed and Session lifecycle fields
	sessions map[string]*Session
	timers   timerHeap
	closed   bool
	nextID   uint64

	tree tree

	stats counters
	authz authzPointer // the Authorizer, nil: allow everything (authorize.go)
	// upstream claims transparent sessions (upstream.go); guarded by mu.
	upstream Upstream

	hits     sync.Pool // *[]hit, fan-out scratch
	fes      sync.Pool // *[]FrontEnd, fan-out scratch
	pendings sync.Pool // *pending, deferred acknowledgements

	seq         atomic.Uint64 // last journal message sequence number
	retryWanted atomic.Bool   // the timer loop should retry parked publishes
	heldSubs    atomic.Int32  // inline subscriptions that hold acknowledgements (ever made)
	jstate      journalState
	parking     parking
	restored    []Restored // front-end states loaded from the journal, until taken
	// kept holds the front-end state of detached sessions that the
	// front-end asked the core to hold until a resume (persist.go); guarded
	// by mu. Only such sessions have an entry.
	kept map[*Session][]byte

	wake chan struct{} // pokes the timer loop when the earliest deadline moves
	done chan struct{} // closed by Close
	wg   sync.WaitGroup
}

// New validates cfg, fills in defaults and starts the broker's one timer
// goroutine.
func New(cfg Config, opts Options) (*Broker, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("mqttcore: new broker: %w", err)
	}
	b := &Broker{
		journal:  opts.Journal,
		retained: newRetainedIndex(),
		version:  opts.Version,
		sessions: make(map[string]*Session),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	if b.version == "" {
		b.version = "gannet"
	}
	d := cfg.withDefaults()
	b.cfg.Store(&d)
	b.hits.New = func() any { s := make([]hit, 0, 64); return &s }
	b.fes.New = func() any { s := make([]FrontEnd, 0, 64); return &s }
	b.pendings.New = func() any {
		p := &pending{b: b}
		p.doneFn = p.committed
		return p
	}
	b.started = b.now()
	b.SetAuthorizer(opts.Authorizer)
	if err := b.load(); err != nil {
		return nil, err
	}
	b.stats.retained.Store(int64(b.retained.RetainedCount()))
	b.goTracked(b.timerLoop)
	return b, nil
}

// goTracked starts a goroutine that Close waits for. Every goroutine the
// core starts goes through here.
func (b *Broker) goTracked(f func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		f()
	}()
}

// Config returns the effective configuration (defaults filled in): the
// one in force, which SetConfig may have replaced since New.
func (b *Broker) Config() Config { return *b.cfg.Load() }

// now reads the clock. The core uses the real clock and real timers only;
// tests run it inside a testing/synctest bubble, where both are fake and
// time advances only when every goroutine in the bubble is blocked, so no
// test sleeps.
func (b *Broker) now() time.Time { return time.Now() }

// Close stops the timer goroutine, waits for it, refuses publishes held by
// flow control, hands the journal what it has not yet committed and closes
// every attached front-end with ErrClosed. Sessions are not ended: no wills
// are published. The journal itself is the caller's to close, after the
// broker. Close is idempotent.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	var fes []FrontEnd
	for _, s := range b.sessions {
		s.mu.Lock()
		if s.conn != nil {
			fes = append(fes, s.fe)
			b.unattachLocked(s)
		}
		s.mu.Unlock()
	}
	b.mu.Unlock()
	close(b.done)
	b.wg.Wait()
	b.refuseParked()
	if b.journal != nil {
		b.flushLazy()
	}
	for _, fe := range fes {
		fe.Close(fmt.Errorf("mqttcore: broker closing: %w", ErrClosed))
	}
	return nil
}

// poke wakes the timer loop to recompute its next deadline.
func (b *Broker) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// unattachLocked clears s's attachment. The caller holds b.mu and s.mu.
func (b *Broker) unattachLocked(s *Session) {
	s.gen++
	s.conn, s.fe = nil, nil
	s.notified = false
	s.online.Store(false)
	s.setEligible(false)
	b.stats.connected.Add(-1)
}

// Attach attaches front-end fe to the session opts.ClientID, creating it
// or resuming it (sessionPresent reports which). A session already attached
// elsewhere is taken over: its front-end's Close is called with
// ErrTakenOver. With CleanStart any existing session is ended first. After
// Attach the front-end calls Next until it reports nothing: retransmissions
// and queued messages come first.
func (b *Broker) Attach(fe FrontEnd, opts ConnectOptions) (c *Conn, sessionPresent bool, err error) {
	if opts.ClientID == "" {
		return nil, false, fmt.Errorf("mqttcore: attach: %w", ErrInvalidClientID)
	}
	if fe == nil {
		return nil, false, fmt.Errorf("mqttcore: attach %q: nil front-end", opts.ClientID)
	}
	if opts.SessionExpiry < 0 {
		return nil, false, fmt.Errorf("mqttcore: attach %q: negative session expiry %v", opts.ClientID, opts.SessionExpiry)
	}
	if err := b.validateWill(opts.Will); err != nil {
		return nil, false, fmt.Errorf("mqttcore: attach %q: %w", opts.ClientID, err)
	}
	if err := b.authorizeWill(opts.Username, opts.ClientID, opts.Will); err != nil {
		return nil, false, fmt.Errorf("mqttcore: attach %q: %w", opts.ClientID, err)
	}
	cfg := b.conf()
	window := cfg.MaxInflight
	if opts.MaxInflight > 0 && opts.MaxInflight < window {
		window = opts.MaxInflight
	}

	var (
		oldFE    FrontEnd
		wills    []pendingWill
		keepWill bool
	)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, false, fmt.Errorf("mqttcore: attach %q: %w", opts.ClientID, ErrClosed)
	}
	s := b.sessions[opts.ClientID]
	if s != nil {
		s.mu.Lock()
		wasAttached := s.conn != nil
		if wasAttached {
			oldFE = s.fe
			b.unattachLocked(s)
		}
		s.mu.Unlock()
		// MQTT 5 3.1.3.2.2: the old connection's will is sent unless the new
		// one resumes the session and the will has a delay; a will waiting
		// for its delay on an offline session is cancelled by a resume.
		keepWill = opts.KeepWill && !opts.CleanStart && opts.Will == nil
		if !keepWill {
			if s.will != nil && (opts.CleanStart || (wasAttached && s.will.Delay == 0)) {
				wills = append(wills, pendingWill{s.clientID, s.will, s.up.linkOf()})
			}
			s.will = nil
		}
		if opts.CleanStart {
			b.endSessionLocked(s) // a transparent session's link closes; the new one connects clean
			s = nil
		} else {
			s.sleepAt, s.willAt, s.expireAt = 0, 0, 0
			b.scheduleLocked(s)
			s.chargeLocked(opts.Budget) // budget.go: a restored session joins its budget
		}
	}
	sessionPresent = s != nil
	if s == nil {
		if len(b.sessions) >= cfg.MaxSessions {
			b.mu.Unlock()
			b.stats.limitSessions.Add(1)
			b.afterUnlock(oldFE, wills)
			return nil, false, fmt.Errorf("mqttcore: attach %q: %d sessions: %w", opts.ClientID, cfg.MaxSessions, ErrTooManySessions)
		}
		if opts.Budget != nil && !opts.Budget.takeLocked() { // budget.go
			b.mu.Unlock()
			b.stats.limitSessions.Add(1)
			b.afterUnlock(oldFE, wills)
			return nil, false, fmt.Errorf("mqttcore: attach %q: front-end's budget of %d sessions: %w", opts.ClientID, opts.Budget.Max(), ErrTooManySessions)
		}
		b.nextID++
		s = &Session{b: b, clientID: opts.ClientID, id: b.nextID, heapIdx: -1, budget: opts.Budget}
		b.sessions[s.clientID] = s
		b.stats.sessions.Add(1)
	}
	s.state = StateActive
	if !keepWill {
		s.will = opts.Will
	}
	s.expiry = opts.SessionExpiry
	b.setPersistLocked(s)
	s.setEligible(true)
	link := b.linkLocked(s) // upstream.go: nil unless transparent
	s.mu.Lock()
	s.gen++
	c = &Conn{b: b, s: s, gen: s.gen, user: opts.Username, inMax: cfg.MaxInflight}
	s.conn, s.fe = c, fe
	s.hint = nil
	s.user = opts.Username
	s.window = uint16(window)
	s.notified = false
	s.unsent = 0
	for i := range s.inflight {
		s.inflight[i].flags &^= flagSent | flagPending
		s.unsent++
	}
	s.online.Store(true)
	b.stats.connected.Add(1)
	s.mu.Unlock()
	b.mu.Unlock()
	b.afterUnlock(oldFE, wills)
	if link != nil {
		b.upstreamAttach(c, link, opts, sessionPresent)
	}
	return c, sessionPresent, nil
}

// pendingWill is a will to publish once the locks are released.
type pendingWill struct {
	clientID string
	will     *Will
	link     UpstreamLink // a transparent session's will goes upstream
}

// afterUnlock closes a taken-over front-end and publishes wills; called with
// no lock held.
func (b *Broker) afterUnlock(oldFE FrontEnd, wills []pendingWill) {
	if oldFE != nil {
		oldFE.Close(fmt.Errorf("mqttcore: attach: %w", ErrTakenOver))
	}
	for _, w := range wills {
		b.publishWill(w)
	}
}

// detach ends c's attachment in the given way.
func (b *Broker) detach(c *Conn, how State, sleepFor time.Duration, hint queuedHint) error {
	if sleepFor < 0 {
		return fmt.Errorf("mqttcore: sleep %v for %q: negative", sleepFor, c.s.clientID)
	}
	s := c.s
	b.mu.Lock()
	s.mu.Lock()
	if !c.attachedLocked() {
		s.mu.Unlock()
		b.mu.Unlock()
		return fmt.Errorf("mqttcore: %s %q: %w", how, s.clientID, ErrDetached)
	}
	b.unattachLocked(s)
	s.hint = hint
	link := s.up.linkOf()
	s.mu.Unlock()
	if link != nil {
		link.Offline(how, sleepFor) // before any will fires: it may go with the connection
	}
	wills := b.offlineLocked(s, how, b.now().UnixNano(), sleepFor)
	if !s.dead {
		b.writeHeaderLocked(s)
	}
	b.mu.Unlock()
	b.afterUnlock(nil, wills)
	return nil
}

// offlineLocked moves a just-unattached session to state how at time now
// and schedules its deadlines; it returns wills due now. The caller holds
// b.mu.
func (b *Broker) offlineLocked(s *Session, how State, now int64, sleepFor time.Duration) []pendingWill {
	s.state = how
	switch how {
	case StateAsleep:
		if sleepFor > 0 {
			s.sleepAt = addDur(now, sleepFor)
		}
		s.setEligible(true) // a sleeper's full queue holds its publishers
		b.scheduleLocked(s)
		return nil
	case StateDisconnected:
		s.will = nil
	case StateLost:
		if s.will != nil {
			s.willAt = addDur(now, s.will.Delay)
		}
	}
	if s.expiry != NeverExpire {
		s.expireAt = addDur(now, s.expiry)
	}
	return b.fireLocked(s, now)
}

// Kick ends clientID's attachment as if the connection were lost (the will
// is published after its delay) and closes its front-end with ErrKicked.
// It reports whether the client was attached.
func (b *Broker) Kick(clientID string) bool {
	b.mu.Lock()
	s := b.sessions[clientID]
	if s == nil {
		b.mu.Unlock()
		return false
	}
	s.mu.Lock()
	fe := s.fe
	if s.conn == nil {
		s.mu.Unlock()
		b.mu.Unlock()
		return false
	}
	b.unattachLocked(s)
	link := s.up.linkOf()
	s.mu.Unlock()
	if link != nil {
		link.Offline(StateLost, 0)
	}
	wills := b.offlineLocked(s, StateLost, b.now().UnixNano(), 0)
	if !s.dead {
		b.writeHeaderLocked(s)
	}
	b.mu.Unlock()
	fe.Close(fmt.Errorf("mqttcore: kick %q: %w", clientID, ErrKicked))
	b.afterUnlock(nil, wills)
	return true
}

// SessionInfo is a snapshot of one session for administration and tests.
type SessionInfo struct {
	ClientID      string
	State         State
	Subscriptions int
	Queued        int
	Inflight      int
	Dropped       int
	HasWill       bool
}

// Session returns a snapshot of clientID's session.
func (b *Broker) Session(clientID string) (SessionInfo, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.sessions[clientID]
	if s == nil {
		return SessionInfo{}, false
	}
	info := SessionInfo{ClientID: s.clientID, State: s.state, HasWill: s.will != nil}
	b.tree.mu.RLock()
	info.Subscriptions = len(s.subs)
	b.tree.mu.RUnlock()
	s.mu.Lock()
	info.Queued, info.Inflight, info.Dropped = int(s.q.n), len(s.inflight), int(s.dropped)
	s.mu.Unlock()
	return info, true
}

// endSessionLocked removes s from the broker: subscriptions, queue,
// in-flight state and deadlines go. The caller holds b.mu.
func (b *Broker) endSessionLocked(s *Session) {
	delete(b.sessions, s.clientID)
	delete(b.kept, s) // persist.go: state kept for a resume goes with the session
	if link := s.takeLink(); link != nil {
		link.Close()
	}
	s.releaseLocked() // budget.go
	b.timers.remove(s)
	b.tree.mu.Lock()
	for _, sub := range s.subs {
		b.tree.remove(sub)
	}
	s.subs = nil
	b.tree.mu.Unlock()
	s.mu.Lock()
	s.dead = true
	if s.conn != nil {
		b.unattachLocked(s)
	}
	b.stats.queued.Add(-int64(s.q.reset()))
	s.reclass()
	s.inflight, s.inQoS2 = nil, nil
	wasFull := s.setFull(false)
	persist := s.persist
	s.persist = false
	s.setEligible(false)
	s.mu.Unlock()
	s.will = nil
	b.stats.sessions.Add(-1)
	if persist {
		b.commit([]Op{{Kind: OpEndSession, SessionID: s.id}}, nil)
	}
	if wasFull {
		// Parked publishes may fit now; the timer loop retries them, since
		// a retry calls front-ends and b.mu is held here.
		b.retryWanted.Store(true)
		b.poke()
	}
}

// addDur returns now+d, saturating instead of overflowing.
func addDur(now int64, d time.Duration) int64 {
	if int64(d) > 1<<62 || now+int64(d) < now {
		return 1<<63 - 1
	}
	return now + int64(d)
}

package gateway

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// clientKey is where a client's datagrams come from: the link and the source
// address. A client behind a forwarder shares its forwarder's key and is
// told apart by its Wireless Node Id (client.node; forward.go).
type clientKey struct {
	link Link
	addr netip.AddrPort
}

// loop is one event loop. Its goroutine owns every client in its maps and
// everything in them; other goroutines reach it only through in (datagrams)
// and post (core events).
type loop struct {
	g       *Gateway
	in      chan *datagram
	dec     sn.Decoder
	dec2    sn.DecoderV2 // for 2.0 clients (v2.go)
	out     []byte       // encode buffer
	nameBuf []byte       // a topic name for a 2.0 PUBLISH (publish2.go)
	nodeBuf []byte       // a forwarded client's node id, for encoding (client.nodeID)
	tx      txScratch
	tx2     txScratch2
	sendq   sendQueue // datagrams for a BatchLink, sent by flush
	// pahoReply: the 2.0 forwarder envelope being handled is Eclipse
	// Paho's 0xFD form, so answers to a sender without a client go in it
	// too (forward2.go). Set only while such a datagram (or the result of
	// its password check) is handled.
	pahoReply bool

	clients    map[Link]*linkClients // by the link their datagrams arrive on
	asleepByID map[string]*client    // asleep clients that may migrate (migrate.go)
	dialogues  map[*client]*dialogue // the 1.2 will dialogues in progress (will.go)
	movable    map[string]*client    // 2.0 clients that allow address changes (connencap.go)
	timers     timerHeap
	timer      *time.Timer
	armedAt    int64

	// subacks holds SUBACKs waiting for the core to make their
	// subscription durable (Conn.Sync); deliveries to that client wait too.
	subacks map[*client]pendingSuback

	probation probationQueue // clients not yet verified (probation.go)

	mu     sync.Mutex
	events []coreEvent
	spare  []coreEvent   // the loop's: the last batch handled, emptied, for post to fill next
	wake   chan struct{} // 1-buffered: events are waiting
}

// coreEvent is something the core told an attachment, to be handled on the
// loop's goroutine.
type coreEvent struct {
	att     *attachment
	closed  error         // nil: Notify
	move    *migration    // set: a step of an address migration, att is nil
	ack     mqttcore.Ack  // Kind set: a deferred acknowledgement is ready
	restore *restoreBatch // set: sensors from the store to rebuild (persist.go), att is nil
	inspect func(*loop)   // set: runs on the loop's goroutine (inspect.go), att is nil
	rebind  *rebind       // set: a step of a 2.0 re-bind (connencap.go), att is nil
	auth    *authJob      // set: a 2.0 password check is done (auth2.go), att is nil
	wakeup  *client       // set: a message was queued for this asleep 2.0 client (sleep2.go), att is nil
}

func newLoop(g *Gateway) *loop {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &loop{
		g:          g,
		in:         make(chan *datagram, g.live().LoopQueue),
		out:        make([]byte, 0, g.live().MaxMessageSize+64),
		clients:    map[Link]*linkClients{},
		asleepByID: map[string]*client{},
		timer:      t,
		wake:       make(chan struct{}, 1),
	}
}

// run is the loop's goroutine. It exits when the gateway closes, after
// detaching its clients.
func (l *loop) run() {
	for {
		select {
		case d := <-l.in:
			l.handleDatagram(d)
			l.g.pool.Put(d)
		case <-l.wake:
			l.handleEvents()
		case <-l.timer.C:
			l.armedAt = 0
			l.fireTimers()
		case <-l.g.done:
			l.shutdown()
			return
		}
		l.arm()
		l.stepDone()
	}
}

// stepDone ends one step of the loop (a datagram or a batch of events
// handled): what the send queue gathered goes out when nothing more is at
// hand, or after maxSendHold steps of a loop that never runs dry (a flood
// of QoS 0 must not hold another sensor's PUBACK).
func (l *loop) stepDone() {
	q := &l.sendq
	if len(q.ends) == 0 {
		return
	}
	if q.held++; q.held >= maxSendHold || len(l.in) == 0 && len(l.wake) == 0 {
		l.flush()
	}
}

func (l *loop) now() int64 { return time.Now().UnixNano() }

// arm points the loop's timer at the earliest deadline.
func (l *loop) arm() {
	if len(l.timers) == 0 {
		return
	}
	at := l.timers[0].due
	if l.armedAt != 0 && l.armedAt <= at {
		return
	}
	l.timer.Stop()
	l.timer.Reset(time.Duration(at - l.now()))
	l.armedAt = at
}

func (l *loop) fireTimers() {
	now := l.now()
	for {
		c, ok := l.timers.popDue(now)
		if !ok {
			return
		}
		c.timerFired(now)
		c.checkState()
	}
}

// post hands a core event to the loop; it never blocks.
func (l *loop) post(e coreEvent) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *loop) handleEvents() {
	l.mu.Lock()
	events := l.events
	// The two slices take turns: a batch of events (every deferred PUBACK
	// is one) does not leave its array to the garbage collector.
	l.events, l.spare = l.spare, nil
	l.mu.Unlock()
	defer func() {
		clear(events)
		if cap(events) > maxSpareEvents {
			events = nil // a burst passed: do not keep its array
		}
		l.spare = events[:0]
	}()
	for _, e := range events {
		if e.inspect != nil {
			e.inspect(l)
			continue
		}
		if e.move != nil {
			l.handleMigration(e.move)
			continue
		}
		if e.wakeup != nil {
			e.wakeup.sendWakeup() // sleep2.go
			continue
		}
		if e.rebind != nil {
			l.handleRebind(e.rebind)
			continue
		}
		if e.auth != nil {
			l.authChecked(e.auth)
			continue
		}
		if e.restore != nil {
			l.handleRestore(e.restore)
			continue
		}
		c := e.att.c
		if e.ack.Kind != 0 {
			if !c.removed && c.isV2 {
				c.onAckedV2(e.ack) // publish2.go
			} else if !c.removed {
				c.onAcked(e.ack) // the sensor still waits for it, whichever attachment
			}
			continue
		}
		if c.removed || c.att != e.att {
			continue // an earlier attachment, or a client already gone
		}
		if e.closed != nil {
			c.takenOver(e.closed)
			continue
		}
		e.att.notified.Store(false)
		c.deliver()
		c.checkState()
	}
}

// maxSpareEvents bounds the event array a loop keeps for reuse.
const maxSpareEvents = 4096

// attachment is the core's FrontEnd for one attachment of a client. The
// core calls it from any goroutine; it only posts to the owning loop.
type attachment struct {
	c        *client
	notified atomic.Bool
}

// Notify implements mqttcore.FrontEnd.
func (a *attachment) Notify() {
	if !a.notified.Swap(true) {
		a.c.l.post(coreEvent{att: a})
	}
}

// Close implements mqttcore.FrontEnd: the session was taken over or kicked.
func (a *attachment) Close(reason error) { a.c.l.post(coreEvent{att: a, closed: reason}) }

// Acked implements mqttcore.FrontEnd: a deferred acknowledgement is ready.
func (a *attachment) Acked(ack mqttcore.Ack) { a.c.l.post(coreEvent{att: a, ack: ack}) }

// handleDatagram decodes one datagram and dispatches it. The sender's
// client decides the version: a 2.0 client's datagrams go to the 2.0 codec;
// a sender without a client is classified by its datagram (v2.go).
func (l *loop) handleDatagram(d *datagram) {
	b := d.buf[:d.n]
	key := clientKey{d.link, d.addr}
	direct := l.lookup(key, nil)
	if direct != nil && direct.isV2 {
		l.handleDatagramV2(direct, b)
		return
	}
	if direct == nil && sn.DetectVersion(b) == sn.Version20 && l.handleUnknownV2(key, b) {
		return
	}
	m, err := l.dec.Decode(b)
	if err != nil {
		if direct != nil && l.switchVersion(direct, b) {
			return
		}
		if direct == nil && l.handleUnknownV2(key, b) {
			// Not 1.2: perhaps a 2.0 sensor the gateway has forgotten
			// (a restart), told "no virtual connection" (v2.go).
			return
		}
		l.g.stats.malformed.Add(1)
		if l.g.log.Enabled(context.Background(), slog.LevelDebug) {
			l.g.log.Debug("malformed datagram dropped", "remote", d.addr, "err", err)
		}
		return
	}
	node, m := unwrapForwarded(m)
	c := direct
	if node != nil {
		c = l.lookup(key, node)
	}
	if l.g.log.Enabled(context.Background(), slog.LevelDebug) {
		l.g.log.Debug("received", "remote", d.addr, "msg_type", m.Type(), "client_id", c.clientID())
	}
	if c == nil {
		l.handleUnknown(key, node, m)
		return
	}
	if c.isV2 {
		// A 1.2 envelope naming a 2.0 client behind the same forwarder:
		// a forwarder speaks one version (forward2.go).
		l.g.stats.unexpected.Add(1)
		return
	}
	if c.probation {
		l.verify(c, m) // probation.go
	}
	c.handle(m)
	c.checkState()
}

// handleUnknown answers a datagram from a sender with no client state.
func (l *loop) handleUnknown(key clientKey, node []byte, m sn.Message) {
	if !l.g.allowUnknown(key.addr, m) {
		return
	}
	switch m := m.(type) {
	case *sn.Connect:
		c := l.admit(key, node, m.ClientID) // probation.go
		if c == nil {
			l.refuseFull(key, node, m.ClientID)
			return
		}
		c.onConnect(m)
		c.checkState()
	case *sn.SearchGW:
		l.answerSearch(key, node)
	case *sn.Publish:
		if m.QoS == sn.QoSMinus1 {
			l.publishQoSMinus1(key, m)
			return
		}
		l.refuseUnknown(key, node)
	case *sn.PingReq:
		if !l.wakeFromNewAddress(key, node, m) {
			l.refuseUnknown(key, node)
		}
	case *sn.Register, *sn.Regack, *sn.Puback, *sn.Pubrec, *sn.Pubrel, *sn.Pubcomp,
		*sn.Subscribe, *sn.Unsubscribe, *sn.Disconnect,
		*sn.WillTopic, *sn.WillMsg, *sn.WillTopicUpd, *sn.WillMsgUpd:
		l.refuseUnknown(key, node)
	default:
		// ADVERTISE, GWINFO and the gateway-to-client types are not for us;
		// answering them could start a loop with another gateway.
		l.g.stats.unexpected.Add(1)
	}
}

// refuseFull answers a CONNECT for which max_clients has no place.
func (l *loop) refuseFull(key clientKey, node, clientID []byte) {
	l.g.stats.rejected.Add(1)
	l.g.limitHit(LimitClients, string(clientID), key.addr, nil)
	l.tx.connack = sn.Connack{ReturnCode: sn.RejectedCongestion}
	l.sendTo(key, node, &l.tx.connack)
}

// refuseUnknown tells a sender the gateway has no connection for it, so it
// can CONNECT again (§6.12). DISCONNECT is the shortest message there is, so
// a spoofed sender cannot use the gateway as an amplifier.
func (l *loop) refuseUnknown(key clientKey, node []byte) {
	l.g.stats.unknownClient.Add(1)
	l.sendTo(key, node, &l.tx.disconnect)
}

// sendTo encodes m, wraps it for a forwarded client, and writes it. It
// reports whether the message fit in max_message_size and was written.
func (l *loop) sendTo(key clientKey, node []byte, m sn.Message) bool {
	msg := l.wrapForwarded(node, m)
	out, err := msg.AppendBinary(l.out[:0])
	l.tx.encap.Inner = nil
	if err != nil || len(out) > l.g.live().MaxMessageSize {
		l.g.limitHit(LimitMessageSizeOut, "", key.addr, err)
		return false
	}
	l.out = out
	if err := l.write(key, out); err != nil {
		l.g.log.Debug("write failed", "remote", key.addr, "msg_type", m.Type(), "err", err)
		return false
	}
	return true
}

// sendQueue gathers the datagrams a loop sends on a BatchLink, so that
// one system call carries a burst of them (flush).
type sendQueue struct {
	link  BatchLink // the link of every queued datagram; nil when empty
	data  []byte    // the datagrams, back to back
	ends  []int     // where each ends in data
	addrs []netip.AddrPort
	bufs  [][]byte // flush's scratch: views into data
	held  int      // loop steps since the first datagram was queued
}

// Bounds of one sendQueue: a flush is due when any is reached. A step is
// one datagram or one batch of core events handled.
const (
	maxSendBatch      = 64
	maxSendBatchBytes = 64 << 10
	maxSendHold       = 16
)

// write sends the encoded datagram out to key: queued for the next flush
// on a BatchLink (copied, so out may be reused), at once on any other
// link. Sends on the loop's goroutine keep their order either way: every
// one of them goes through write.
func (l *loop) write(key clientKey, out []byte) error {
	bl, ok := key.link.(BatchLink)
	if !ok {
		if _, err := key.link.WriteToUDPAddrPort(out, key.addr); err != nil {
			return err
		}
		l.g.stats.sent.Add(1)
		return nil
	}
	q := &l.sendq
	if q.link != nil && (q.link != bl || len(q.data)+len(out) > maxSendBatchBytes) {
		l.flush()
	}
	q.link = bl
	q.data = append(q.data, out...)
	q.ends = append(q.ends, len(q.data))
	q.addrs = append(q.addrs, key.addr)
	if len(q.ends) >= maxSendBatch {
		l.flush()
	}
	return nil
}

// flush sends the queued datagrams with one WriteBatchUDPAddrPort.
func (l *loop) flush() {
	q := &l.sendq
	if len(q.ends) == 0 {
		return
	}
	start := 0
	for _, end := range q.ends {
		q.bufs = append(q.bufs, q.data[start:end])
		start = end
	}
	n, err := q.link.WriteBatchUDPAddrPort(q.bufs, q.addrs)
	l.g.stats.sent.Add(uint64(n))
	if err != nil {
		l.g.log.Debug("write failed", "datagrams", len(q.ends), "sent", n, "err", err)
	}
	clear(q.bufs)
	q.link, q.data, q.ends, q.addrs, q.bufs, q.held = nil, q.data[:0], q.ends[:0], q.addrs[:0], q.bufs[:0], 0
}

// shutdown detaches every client without publishing wills, after sending
// what the send queue still holds (answers to messages already committed).
func (l *loop) shutdown() {
	l.flush()
	detach := func(c *client) {
		if c.conn != nil {
			_ = c.conn.Disconnect() // the core may already be closed
		}
	}
	for _, lc := range l.clients {
		for _, c := range lc.direct {
			detach(c)
		}
		for _, m := range lc.forwarded {
			for _, c := range m {
				detach(c)
			}
		}
	}
	l.timer.Stop()
}

// txScratch holds the loop's outgoing message values, reused so that
// sending allocates nothing.
type txScratch struct {
	encap      sn.Encapsulated
	publish    sn.Publish
	puback     sn.Puback
	pubrec     sn.Pubrec
	pubrel     sn.Pubrel
	pubcomp    sn.Pubcomp
	register   sn.Register
	regack     sn.Regack
	suback     sn.Suback
	unsuback   sn.Unsuback
	connack    sn.Connack
	pingresp   sn.PingResp
	disconnect sn.Disconnect
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

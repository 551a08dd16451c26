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

// clientKey identifies a client by where its datagrams come from: the link,
// the address, and for a client behind a forwarder the Wireless Node Id.
type clientKey struct {
	link Link
	addr netip.AddrPort
}

// loop is one event loop. Its goroutine owns every client in its maps and
// everything in them; other goroutines reach it only through in (datagrams)
// and post (core events).
type loop struct {
	g       *Gateway
	idx     int
	in      chan *datagram
	dec     sn.Decoder
	out     []byte // encode buffer
	nodeBuf []byte // a forwarded client's node id, for encoding (client.nodeID)
	tx      txScratch

	clients    map[Link]*linkClients // by the link their datagrams arrive on
	asleepByID map[string]*client    // asleep clients that may migrate (migrate.go)
	timers     timerHeap
	timer      *time.Timer
	armedAt    int64

	mu     sync.Mutex
	events []coreEvent
	wake   chan struct{} // 1-buffered: events are waiting
}

// coreEvent is something the core told an attachment, to be handled on the
// loop's goroutine.
type coreEvent struct {
	att    *attachment
	closed error      // nil: Notify
	move   *migration // set: a step of an address migration, att is nil
	// inspect, when set, runs on the loop's goroutine (inspect.go); att is nil.
	inspect func(*loop)
}

func newLoop(g *Gateway, idx int) *loop {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &loop{
		g:          g,
		idx:        idx,
		in:         make(chan *datagram, g.cfg.LoopQueue),
		out:        make([]byte, 0, g.cfg.MaxMessageSize+64),
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
	l.events = nil
	l.mu.Unlock()
	for _, e := range events {
		if e.inspect != nil {
			e.inspect(l)
			continue
		}
		if e.move != nil {
			l.handleMigration(e.move)
			continue
		}
		c := e.att.c
		if c.removed || c.att != e.att {
			continue // an earlier attachment, or a client already gone
		}
		if e.closed != nil {
			c.takenOver(e.closed)
			continue
		}
		e.att.notified.Store(false)
		c.deliver()
	}
}

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

// handleDatagram decodes one datagram and dispatches it.
func (l *loop) handleDatagram(d *datagram) {
	m, err := l.dec.Decode(d.buf[:d.n])
	if err != nil {
		l.g.stats.malformed.Add(1)
		if l.g.log.Enabled(context.Background(), slog.LevelDebug) {
			l.g.log.Debug("malformed datagram dropped", "remote", d.addr, "err", err)
		}
		return
	}
	key := clientKey{d.link, d.addr}
	var node []byte
	if e, ok := m.(*sn.Encapsulated); ok {
		node, m = e.NodeID, e.Inner
	}
	c := l.lookup(key, node)
	if l.g.log.Enabled(context.Background(), slog.LevelDebug) {
		l.g.log.Debug("received", "remote", d.addr, "msg_type", m.Type(), "client_id", c.clientID())
	}
	if c == nil {
		l.handleUnknown(key, node, m)
		return
	}
	c.handle(m)
}

// handleUnknown answers a datagram from a sender with no client state.
func (l *loop) handleUnknown(key clientKey, node []byte, m sn.Message) {
	if !l.g.allowUnknown(key.addr, m) {
		return
	}
	switch m := m.(type) {
	case *sn.Connect:
		if n := l.g.stats.clients.Load(); n >= int64(l.g.cfg.MaxClients) {
			l.g.stats.rejected.Add(1)
			l.g.limitHit(LimitClients, string(m.ClientID), key.addr, nil)
			l.tx.connack = sn.Connack{ReturnCode: sn.RejectedCongestion}
			l.sendTo(key, node, &l.tx.connack)
			return
		}
		c := l.newClient(key, node)
		c.onConnect(m)
	case *sn.SearchGW:
		l.sendTo(key, node, &sn.GWInfo{GatewayID: l.g.cfg.GatewayID})
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

// refuseUnknown tells a sender the gateway has no connection for it, so it
// can CONNECT again (§6.12). DISCONNECT is the shortest message there is, so
// a spoofed sender cannot use the gateway as an amplifier.
func (l *loop) refuseUnknown(key clientKey, node []byte) {
	l.g.stats.unknownClient.Add(1)
	l.sendTo(key, node, &l.tx.disconnect)
}

func (l *loop) publishQoSMinus1(key clientKey, m *sn.Publish) {
	g := l.g
	if !g.cfg.QoSMinus1.Enabled || !allowed(g.allow, key.addr.Addr()) {
		g.stats.rejected.Add(1)
		return
	}
	var topic string
	switch m.TopicIDType {
	case sn.TopicIDShort:
		name := sn.ShortTopicName(m.TopicID)
		topic = string(name[:])
	case sn.TopicIDPredefined:
		t, ok := g.pre.topic(g.cfg.QoSMinus1.ClientID, m.TopicID)
		if !ok {
			g.stats.invalidTopic.Add(1)
			return
		}
		topic = t
	}
	msg := newMessage(topic, m.Data, mqttcore.AtMostOnce, m.Retain)
	if err := g.qosm1.Publish(msg); err != nil {
		g.stats.rejected.Add(1)
		g.log.Debug("qos -1 publish refused", "remote", key.addr, "topic", topic, "err", err)
		return
	}
	g.stats.qosMinus1.Add(1)
}

// linkClients are a loop's clients on one link, by source address. Every
// client, so every sleeping sensor, has an entry here: the key is compact.
type linkClients struct {
	direct    map[addrKey]*client
	forwarded map[addrKey]map[string]*client // node id -> client
}

// addrKey is a source address as the maps key it: 24 octets instead of
// netip.AddrPort's 32 (which holds a pointer for the zone). IPv6 zones are
// not part of it, so two link-local senders with the same address and port
// on two interfaces of one link would be taken for one.
type addrKey struct {
	ip   [16]byte
	port uint16
	v4   bool
}

func keyOf(a netip.AddrPort) addrKey {
	ip := a.Addr()
	return addrKey{ip: ip.As16(), port: a.Port(), v4: ip.Is4()}
}

// lookup finds the client at key (and forwarder node id), or nil.
func (l *loop) lookup(key clientKey, node []byte) *client {
	lc := l.clients[key.link]
	if lc == nil {
		return nil
	}
	if node == nil {
		return lc.direct[keyOf(key.addr)]
	}
	return lc.forwarded[keyOf(key.addr)][string(node)]
}

func (l *loop) newClient(key clientKey, node []byte) *client {
	c := &client{l: l, key: key, state: StateActive, lastSeen: l.now()}
	if node != nil {
		c.node, c.fwd = string(node), true // a copy: node aliases the datagram
	}
	l.insert(c)
	return c
}

// insert adds c to the loop's maps under its key.
func (l *loop) insert(c *client) {
	lc := l.clients[c.key.link]
	if lc == nil {
		lc = &linkClients{direct: map[addrKey]*client{}, forwarded: map[addrKey]map[string]*client{}}
		l.clients[c.key.link] = lc
	}
	k := keyOf(c.key.addr)
	if !c.fwd {
		lc.direct[k] = c
	} else {
		m := lc.forwarded[k]
		if m == nil {
			m = map[string]*client{}
			lc.forwarded[k] = m
		}
		m[c.node] = c
	}
	l.g.stats.clients.Add(1)
	if c.state == StateAsleep {
		l.g.stats.asleep.Add(1)
	}
}

func (l *loop) removeClient(c *client) {
	if c.removed {
		return
	}
	c.removed = true
	l.unschedule(c)
	if lc := l.clients[c.key.link]; lc != nil {
		k := keyOf(c.key.addr)
		if !c.fwd {
			delete(lc.direct, k)
		} else if m := lc.forwarded[k]; m != nil {
			delete(m, c.node)
			if len(m) == 0 {
				delete(lc.forwarded, k)
			}
		}
	}
	l.g.stats.clients.Add(-1)
	if c.state == StateAsleep {
		l.g.stats.asleep.Add(-1)
		c.indexAsleep(false)
	}
}

// sendTo encodes m, wraps it for a forwarded client, and writes it. It
// reports whether the message fit in max_message_size and was written.
func (l *loop) sendTo(key clientKey, node []byte, m sn.Message) bool {
	var msg sn.Message = m
	if node != nil {
		l.tx.encap = sn.Encapsulated{NodeID: node, Inner: m}
		msg = &l.tx.encap
	}
	out, err := msg.AppendBinary(l.out[:0])
	l.tx.encap.Inner = nil
	if err != nil || len(out) > l.g.cfg.MaxMessageSize {
		l.g.limitHit(LimitMessageSizeOut, "", key.addr, err)
		return false
	}
	l.out = out
	if _, err := key.link.WriteToUDPAddrPort(out, key.addr); err != nil {
		l.g.log.Debug("write failed", "remote", key.addr, "msg_type", m.Type(), "err", err)
		return false
	}
	l.g.stats.sent.Add(1)
	return true
}

// shutdown detaches every client without publishing wills.
func (l *loop) shutdown() {
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

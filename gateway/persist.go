package gateway

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// A sensor with a persistent session relies on more than its core session:
// the address it sends from, the topic ids it registered or was given, and
// whether it sleeps and until when. The gateway hands that to the core as
// the session's front-end state (mqttcore.Conn.SetFrontEndState), which the
// core's journal stores with the session and gives back after a restart
// (Broker.Restored). The gateway then rebuilds the client before it reads
// its first datagram from the link the sensor used: a sensor asleep before
// the restart wakes with PINGREQ and gets its queued messages, an awake one
// goes on publishing with the topic ids it registered, as if nothing had
// happened. Only persistent sessions are stored (CleanSession=0); the core
// keeps no copy of the state in memory, so a sleeping sensor's RAM cost is
// unchanged.
//
// The state is written when it changes: at CONNACK, when a topic id is
// issued or withdrawn, and when the sensor goes to sleep (with its
// deadline). It rides the journal's next commit (no acknowledgement waits
// for it): a crash within that fraction of a second can cost a registration,
// which the sensor learns from a PUBACK "invalid topic id" and repeats.

// stateVersion is the first octet of the encoded state of a 1.2 sensor;
// stateVersionV2 that of a 2.0 sensor, whose state goes on with its 2.0
// fields (a gateway that predates 2.0 refuses it, and the sensor CONNECTs
// again, rather than taking it for a 1.2 sensor).
const (
	stateVersion   = 1
	stateVersionV2 = 2
)

// stateEnded flags (in the second octet) the state of a 2.0 sensor whose
// connection ended (keepSession): after a restart it is not rebuilt as
// connected, it waits in the core for the sensor to resume its session.
const stateEnded = 4

// savedState is the decoded front-end state of one sensor.
type savedState struct {
	link      string // the link's local address
	addr      netip.AddrPort
	node      string
	fwd       bool
	asleep    bool
	ended     bool // the sensor ended its connection: kept for a resume, not rebuilt
	keepAlive uint16
	sleepFor  uint16
	sleepAt   int64 // unix ns, when asleep
	regID     uint16
	next      uint16
	topics    []topicEntry
	v2        *v2conn // a 2.0 sensor's own state, nil for 1.2
}

// saveState hands the client's state to the core, if the core journals
// it; asleep says the client is on its way to sleep (its deadline is in
// timerAt).
func (c *client) saveState(asleep bool) {
	if c.conn == nil || !c.l.g.durable {
		return
	}
	c.conn.SetFrontEndState(c.appendState(nil, asleep))
}

// appendState encodes the client's state.
func (c *client) appendState(b []byte, asleep bool) []byte {
	if c.isV2 {
		b = append(b, stateVersionV2)
	} else {
		b = append(b, stateVersion)
	}
	flags := byte(0)
	if c.fwd {
		flags |= 1
	}
	if asleep {
		flags |= 2
	}
	b = append(b, flags)
	b = appendStr(b, c.key.link.LocalAddr().String())
	ab, _ := c.key.addr.MarshalBinary()
	b = appendStr(b, string(ab))
	b = appendStr(b, c.node)
	b = binary.BigEndian.AppendUint16(b, c.keepAlive)
	b = binary.BigEndian.AppendUint16(b, c.sleepFor)
	b = binary.BigEndian.AppendUint64(b, uint64(c.timerAt))
	b = binary.BigEndian.AppendUint16(b, c.regID)
	b = binary.BigEndian.AppendUint16(b, c.topics.next)
	b = binary.AppendUvarint(b, uint64(len(c.topics.entries)))
	for _, e := range c.topics.entries {
		b = binary.BigEndian.AppendUint16(b, e.id)
		b = append(b, e.flags)
		b = appendStr(b, e.name)
	}
	if c.isV2 {
		v := c.v2
		b = appendStr(b, v.user())
		b = binary.BigEndian.AppendUint64(b, uint64(v.expiry))
		b = binary.BigEndian.AppendUint32(b, v.sleepFor)
		b = binary.BigEndian.AppendUint16(b, v.maxPacket)
		b = append(b, v.awakeMax, boolBits(v.allowMove, v.paho, v.expiryZero))
	}
	return b
}

// boolBits packs flags into one octet, the first in bit 0.
func boolBits(flags ...bool) byte {
	var b byte
	for i, f := range flags {
		if f {
			b |= 1 << i
		}
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errBadState reports front-end state the gateway cannot read.
var errBadState = errors.New("gateway: stored sensor state is malformed")

// decodeState reads what appendState wrote.
func decodeState(b []byte) (savedState, error) {
	var s savedState
	r := stateReader{b: b}
	version := r.byte()
	if version != stateVersion && version != stateVersionV2 {
		return s, fmt.Errorf("%w: unknown version", errBadState)
	}
	flags := r.byte()
	s.fwd, s.asleep, s.ended = flags&1 != 0, flags&2 != 0, flags&stateEnded != 0
	s.link = r.str()
	if err := s.addr.UnmarshalBinary([]byte(r.str())); err != nil && r.err == nil {
		r.err = err
	}
	s.node = r.str()
	s.keepAlive = r.u16()
	s.sleepFor = r.u16()
	s.sleepAt = int64(r.u64())
	s.regID = r.u16()
	s.next = r.u16()
	n := r.uvarint()
	if n > uint64(len(b)) {
		return s, fmt.Errorf("%w: %d topics", errBadState, n)
	}
	for range n {
		e := topicEntry{id: r.u16(), flags: r.byte()}
		e.name = r.str()
		s.topics = append(s.topics, e)
	}
	if version == stateVersionV2 {
		v := &v2conn{}
		v.setUser(r.str())
		v.expiry = time.Duration(r.u64())
		v.sleepFor = binary.BigEndian.Uint32(r.take(4))
		v.maxPacket = r.u16()
		v.awakeMax = r.byte()
		f := r.byte()
		v.allowMove, v.paho, v.expiryZero = f&1 != 0, f&2 != 0, f&4 != 0
		s.v2 = v
	}
	if r.err != nil {
		return s, fmt.Errorf("%w: %v", errBadState, r.err)
	}
	return s, nil
}

// stateReader reads the encoding, remembering the first error.
type stateReader struct {
	b   []byte
	err error
}

func (r *stateReader) take(n int) []byte {
	if r.err != nil || n < 0 || len(r.b) < n {
		if r.err == nil {
			r.err = errors.New("truncated")
		}
		return make([]byte, max(n, 0))
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *stateReader) byte() byte  { return r.take(1)[0] }
func (r *stateReader) u16() uint16 { return binary.BigEndian.Uint16(r.take(2)) }
func (r *stateReader) u64() uint64 { return binary.BigEndian.Uint64(r.take(8)) }
func (r *stateReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		if r.err == nil {
			r.err = errors.New("bad length")
		}
		return 0
	}
	r.b = r.b[n:]
	return v
}
func (r *stateReader) str() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		if r.err == nil {
			r.err = errors.New("truncated string")
		}
		return ""
	}
	return string(r.take(int(n)))
}

// restoredClient is one sensor to rebuild, waiting for its link.
type restoredClient struct {
	id    string
	state savedState
}

// loadRestored reads the sensors the core brought back from its journal and
// keeps them, by link, until Serve starts on that link. Malformed state is
// logged and skipped (the core session stays, and the sensor CONNECTs
// again).
func (g *Gateway) loadRestored() {
	for _, r := range g.broker.Restored() {
		st, err := decodeState(r.FrontEnd)
		if err != nil {
			g.log.Warn("cannot restore a sensor's gateway state; it must connect again", "client_id", r.ClientID, "err", err)
			continue
		}
		if st.ended {
			// A 2.0 sensor that ended its connection: the core holds its
			// state until it resumes the session (keepSession). One that
			// overslept (keepOverslept) may come back asleep, which the
			// core leaves to the gateway to rebuild: hand it back.
			if r.State == mqttcore.StateAsleep {
				g.broker.KeepDetachedFrontEndState(r.ClientID, r.FrontEnd)
			}
			continue
		}
		if g.restored == nil {
			g.restored = map[string][]restoredClient{}
		}
		g.restored[st.link] = append(g.restored[st.link], restoredClient{id: r.ClientID, state: st})
	}
}

// adoptRestored rebuilds, on their loops, the restored sensors that used
// link, and waits until every loop has them, so that no datagram from them
// is read before.
func (g *Gateway) adoptRestored(link Link) {
	g.mu.Lock()
	rs := g.restored[link.LocalAddr().String()]
	delete(g.restored, link.LocalAddr().String())
	g.mu.Unlock()
	if len(rs) == 0 {
		return
	}
	done := make(chan struct{}, len(g.loops))
	byLoop := make([][]restoredClient, len(g.loops))
	for _, r := range rs {
		i := loopIndex(r.state.addr, len(g.loops))
		byLoop[i] = append(byLoop[i], r)
	}
	posted := 0
	for i, l := range g.loops {
		if len(byLoop[i]) == 0 {
			continue
		}
		l.post(coreEvent{restore: &restoreBatch{link: link, clients: byLoop[i], done: done}})
		posted++
	}
	for range posted {
		select {
		case <-done:
		case <-g.done:
			return
		}
	}
	g.log.Info("sensors restored from the store", "link", link.LocalAddr().String(), "sensors", len(rs))
}

// restoreBatch is the sensors of one link to rebuild on one loop.
type restoreBatch struct {
	link    Link
	clients []restoredClient
	done    chan<- struct{}
}

// handleRestore rebuilds restored sensors on this loop: asleep ones asleep
// with their deadline, awake or active ones attached again (the core held
// their sessions asleep for a grace period meanwhile).
func (l *loop) handleRestore(rb *restoreBatch) {
	defer func() { rb.done <- struct{}{} }()
	now := l.now()
	for _, r := range rb.clients {
		st := r.state
		key := clientKey{rb.link, st.addr}
		var node []byte
		if st.fwd {
			node = []byte(st.node)
		}
		if l.lookup(key, node) != nil {
			continue
		}
		c := &client{l: l, key: key, node: st.node, fwd: st.fwd, id: r.id, state: StateAsleep,
			keepAlive: st.keepAlive, sleepFor: st.sleepFor, regID: st.regID, lastSeen: now}
		c.topics = registry{entries: st.topics, next: st.next}
		if st.v2 != nil { // a 2.0 sensor (v2.go)
			c.setV2()
			*c.v2 = *st.v2
		}
		if st.asleep {
			c.timerAt = st.sleepAt
			if c.timerAt <= now {
				c.timerAt = now // overslept during the outage: lost at once
			}
			l.insert(c)
			c.indexAsleep(true)
			if c.isV2 {
				c.indexMovable(c.v2.allowMove) // connencap.go
				// WAKEUP (sleep2.go) for the first message queued from now
				// on: the restored core session has no callback.
				l.g.broker.NotifyAsleep(c.id, c.queuedWhileAsleep)
			}
			l.schedule(c)
			continue
		}
		c.state = StateActive
		l.insert(c)
		if c.isV2 {
			c.indexMovable(c.v2.allowMove)
		}
		if err := c.attach(false, nil, true); err != nil {
			l.g.log.Warn("cannot restore a sensor's session", "client_id", c.id, "err", err)
			l.removeClient(c)
			continue
		}
		l.schedule(c) // keep-alive counts from now
		c.deliver()
	}
}

// A 2.0 client's session aliases are session state (CSD01, digest C.6):
// a client that resumes its session may go on using them. They must not
// cost gateway memory while the client is away, so when the attachment of a
// 2.0 client whose session outlives it ends (DISCONNECT, a loss, a
// DISCONNECT with will), the gateway hands its state, in the encoding
// above, to the core (mqttcore.Conn.KeepFrontEndState), which holds it
// with the detached session, journals it when durable, and drops it when
// the session ends (expiry, a clean start). The CONNECT that resumes the
// session takes it back (attachPresent) and the client has its aliases
// again, from any address and after a gateway restart. A 1.2 client's
// topic ids do not survive a new CONNECT (1.2 §6.7, spec-interpretation
// G6): nothing is kept for it, and what a restart left is dropped.

// keepSession hands a 2.0 client's state to its core session as its
// attachment is about to end. A 1.2 client keeps nothing, and its
// journalled state is deleted: after a restart it must not be rebuilt as
// connected, its session waits in the core for its next CONNECT.
func (c *client) keepSession() {
	if c.conn == nil {
		return
	}
	if !c.isV2 {
		if c.l.g.durable {
			c.conn.SetFrontEndState(nil)
		}
		return
	}
	if c.v2.expiry == 0 {
		return // kept also without aliases: the journal must say it ended
	}
	c.conn.KeepFrontEndState(c.endedState())
}

// keepOverslept hands an asleep 2.0 client's state to its detached core
// session as the gateway forgets the client for oversleeping its deadline:
// its session aliases come back if it resumes the session, as after a
// DISCONNECT.
func (c *client) keepOverslept() {
	if c.isV2 && c.v2.expiry != 0 {
		c.l.g.broker.KeepDetachedFrontEndState(c.id, c.endedState())
	}
}

// endedState is the client's state flagged as ended: what the core keeps
// for a resume, and what a restart does not rebuild.
func (c *client) endedState() []byte {
	b := c.appendState(nil, false)
	b[1] |= stateEnded
	return b
}

// resumeSession restores, for a 2.0 client whose CONNECT resumed its
// session (Clean Start 0, Session Present), the aliases kept with it.
// State that does not decode, or that a 1.2 sensor left, gives none.
func (c *client) resumeSession(kept []byte) {
	if len(kept) == 0 || !c.isV2 {
		return
	}
	st, err := decodeState(kept)
	if err != nil || st.v2 == nil {
		if err != nil {
			c.l.g.log.Warn("cannot read a resumed session's aliases; the client must register again", "client_id", c.id, "err", err)
		}
		return
	}
	n := len(c.topics.entries)
	if n > 0 || len(st.topics) == 0 {
		// A sensor rebuilt after a restart holds its aliases already
		// (handleRestore), or there are none to give back.
		return
	}
	if limit := c.l.g.live().MaxTopicsPerClient; limit > 0 && len(st.topics) > limit {
		st.topics = st.topics[:limit] // max_topics_per_client lowered meanwhile
	}
	c.topics = registry{entries: st.topics, next: st.next}
	c.topicsChanged(n)
	c.l.g.stats.v2AliasesResumed.Add(1)
}

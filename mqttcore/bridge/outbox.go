package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/eclipse/paho.golang/packets"
	paholog "github.com/eclipse/paho.golang/paho/log"
	"github.com/eclipse/paho.golang/paho/session"
	"github.com/eclipse/paho.golang/paho/session/state"
)

// errPublishViaPaho is returned if anything publishes through the paho
// client: outbound messages go through the bridge's queue and sender only.
var errPublishViaPaho = errors.New("bridge: publish through the paho client is not supported; use the queue")

// outbox is the client half of the bridge's MQTT session and its sender:
// paho's session manager interface (paho.ClientConfig.Session) for the
// packet ids and acknowledgements of what we send, and the one goroutine
// (run) that takes committed messages from the queue and writes them to
// the connection in batches, in queue order. The server half (inbound
// QoS 2) is paho's own session state over the Store's server bucket.
//
// Flow control. On the wire at most min(Receive Maximum, window) QoS 1/2
// PUBLISH (or their PUBREL) are unacknowledged (the send quota, MQTT 5
// §4.9, rebuilt per connection). Beyond that, at most window messages are
// unsettled: taken from the queue and not yet removed from the file by a
// committed write. A crash re-sends at most the unsettled messages, so
// window is also the bound on duplicates after a crash.
type outbox struct {
	st        *Store
	srv       *state.State // the server half: inbound QoS 2
	window    int
	onRefused func(id uint16, reasonCode byte)
	onError   func(msg string, err error)

	kick      chan struct{} // capacity 1: something may be sendable
	stop      chan struct{} // closed by close
	done      chan struct{} // closed when run exits
	closeOnce sync.Once

	mu        sync.Mutex
	conn      io.Writer // nil while disconnected; a sync.Locker (bufConn)
	gen       uint64    // incremented on each connection
	quota     int       // send quota left on this connection
	flights   map[uint16]*flight
	nextID    uint16
	ord       uint64    // send order of flights
	resend    []uint16  // flights to send again on this connection, in order
	pubrels   []uint16  // PUBRELs whose record committed, to send
	acked     []uint16  // fully acknowledged, their removal not yet submitted
	ackedRecs [][]byte  // their records (flight.rec), reused once removed
	spare     []uint16  // the other acked slice, swapped in by the sender
	spareRecs [][]byte  // the other ackedRecs
	unsettled int       // see the type comment
	free      []*flight // ended PUBLISH flights, for reuse (at most window)

	// The sender's own (run, sendBatch): reused from batch to batch.
	recs     []flightRec
	moveDone func(error) // moveAsync's callback for a batch without QoS 0 or 2
}

// flight is one packet id in use by us.
type flight struct {
	kind   byte   // packets.PUBLISH (QoS 1/2), PUBREL, SUBSCRIBE or UNSUBSCRIBE
	ord    uint64 // send order, for resending
	data   []byte // PUBLISH or PUBREL packet, for resending
	rec    []byte // a PUBLISH taken from the queue: its record (data is in it), reused once removed
	onConn bool   // holds a send quota slot on this connection
	resp   chan<- packets.ControlPacket
}

// newOutbox loads the in-flight messages of a previous run (sent again
// when the connection is up: with DUP if the remote kept our session, from
// the head of the queue if not).
func newOutbox(st *Store, window int) (*outbox, error) {
	o := &outbox{
		st:        st,
		srv:       state.New(noClientStore{}, st.ServerSession()),
		window:    window,
		onRefused: func(uint16, byte) {},
		onError:   func(string, error) {},
		kick:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		flights:   make(map[uint16]*flight),
	}
	recs, err := st.inflight()
	if err != nil {
		return nil, fmt.Errorf("bridge: load in-flight messages: %w", err)
	}
	for _, r := range recs {
		kind := r.data()[0] >> 4
		if kind != packets.PUBLISH && kind != packets.PUBREL {
			continue
		}
		o.ord++
		o.flights[r.id] = &flight{kind: kind, ord: o.ord, data: r.data()}
		o.unsettled++
	}
	o.moveDone = func(err error) {
		if err != nil {
			o.onError("bridge: record messages in flight", err)
		}
	}
	st.setNotify(o.wake)
	return o, nil
}

// start starts the sender; close stops it.
func (o *outbox) start() {
	go o.run() // exits when close closes stop; close waits on done
}

func (o *outbox) close() {
	o.closeOnce.Do(func() {
		close(o.stop)
		<-o.done
		o.mu.Lock()
		acked, recs := o.acked, o.ackedRecs
		o.acked, o.ackedRecs = nil, nil
		o.mu.Unlock()
		o.settle(acked, recs) // committed by the Store's Close
	})
}

// wake tells the sender to look again; it never blocks.
func (o *outbox) wake() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

func (o *outbox) run() {
	defer close(o.done)
	var buf []byte
	var ts []taken
	for {
		select {
		case <-o.stop:
			return
		case <-o.kick:
		}
		for {
			var ok bool
			buf, ts, ok = o.sendBatch(buf[:0], ts[:0])
			if !ok {
				break
			}
		}
	}
}

// sendBatch sends what it can in one write: PUBRELs whose record
// committed, flights to resend, then new messages from the queue. It
// reports whether it sent anything (so the caller tries again).
func (o *outbox) sendBatch(buf []byte, ts []taken) ([]byte, []taken, bool) {
	o.mu.Lock()
	acked, ackedRecs := o.acked, o.ackedRecs
	o.acked, o.ackedRecs, o.spare, o.spareRecs = o.spare[:0], o.spareRecs[:0], nil, nil
	o.mu.Unlock()
	o.settle(acked, ackedRecs)
	clear(ackedRecs)
	o.mu.Lock()
	o.spare, o.spareRecs = acked[:0], ackedRecs[:0] // settle copied both
	o.mu.Unlock()

	o.mu.Lock()
	conn, gen := o.conn, o.gen
	if conn == nil {
		o.mu.Unlock()
		return buf, ts, false
	}
	for _, id := range o.pubrels {
		if f := o.flights[id]; f != nil && f.kind == packets.PUBREL {
			buf = append(buf, f.data...)
		}
	}
	o.pubrels = o.pubrels[:0]
	for len(o.resend) > 0 && o.quota > 0 {
		f := o.flights[o.resend[0]]
		o.resend = o.resend[1:]
		if f == nil {
			continue
		}
		f.onConn = true
		o.quota--
		buf = append(buf, f.data...)
	}
	n := 0
	if len(o.resend) == 0 {
		n = max(0, min(o.quota, o.window-o.unsettled))
	}
	o.mu.Unlock()

	if n > 0 {
		var err error
		ts, err = o.st.take(n, ts)
		if err != nil && !errors.Is(err, ErrClosed) {
			o.onError("bridge: read queue", err)
		}
	}
	if len(ts) > 0 {
		recs := o.recs[:0]
		qos0, qos2 := 0, false
		o.mu.Lock()
		sameConn := o.conn != nil && o.gen == gen
		for i := range ts {
			t := &ts[i]
			o.unsettled++
			if t.qos == 0 {
				qos0++
				continue
			}
			qos2 = qos2 || t.qos == 2
			id := o.allocID()
			if err := setPacketID(t.data(), id); err != nil { // cannot happen for packets we encoded
				o.onError("bridge: queued packet", err)
			}
			o.ord++
			f := o.newFlightLocked()
			*f = flight{kind: packets.PUBLISH, ord: o.ord, data: t.data(), rec: t.rec, onConn: sameConn}
			o.flights[id] = f
			if sameConn {
				o.quota--
			} else {
				o.resend = append(o.resend, id) // connection lost meanwhile: sent on the next one
			}
			recs = append(recs, flightRec{id: id, rec: t.rec})
		}
		o.mu.Unlock()
		o.recs = recs[:0] // moveAsync keeps none of recs itself, only the records
		var committed chan error
		if qos2 { // exactly once: the in-flight record is on disk before the PUBLISH leaves
			committed = make(chan error, 1)
		}
		moved := o.moveDone
		if qos0 > 0 || qos2 {
			moved = func(err error) {
				o.moveDone(err)
				if qos0 > 0 {
					o.mu.Lock()
					o.unsettled -= qos0
					o.mu.Unlock()
					o.wake()
				}
				if committed != nil {
					committed <- err
				}
			}
		}
		err := o.st.moveAsync(ts, recs, moved)
		if err == nil && committed != nil {
			err = <-committed
		}
		if err != nil && !errors.Is(err, ErrClosed) {
			o.onError("bridge: record messages in flight", err)
		}
		if err != nil && sameConn && !errors.Is(err, ErrClosed) {
			// The hand-over of a batch with QoS 2 failed to commit (a disk
			// error, counted and logged): the messages are still in the
			// queue on disk. Send them anyway, as the resend pass, rather
			// than hold their quota slots forever; exactly once cannot
			// survive a failing disk.
			o.mu.Lock()
			for _, r := range recs {
				if f := o.flights[r.id]; f != nil && f.onConn {
					f.onConn = false
					o.quota++
					o.resend = append(o.resend, r.id)
				}
			}
			o.mu.Unlock()
			o.write(conn, buf)
			return buf, ts, true
		}
		if err != nil || !sameConn {
			// Not sent now: in flight on disk (sent again on the next
			// connection) or, if the store closed, still in the queue. (A
			// QoS 0 message taken just as the connection dropped is lost;
			// QoS 0 promises no more.)
			o.write(conn, buf)
			return buf, ts, err == nil
		}
		for i := range ts {
			buf = append(buf, ts[i].data()...)
		}
	}
	return buf, ts, o.write(conn, buf)
}

// settle submits the removal of acknowledged messages from the file, in
// one write; they stop counting against the window when it commits, and
// their records (recs, from the queue's buffers; nil for none) go back to
// the queue's buffers. ids and recs are the caller's again on return.
func (o *outbox) settle(ids []uint16, recs [][]byte) {
	if len(ids) == 0 {
		return
	}
	sr := settlePool.Get().(*settleReq)
	if sr.fn == nil {
		sr.fn = sr.done
	}
	sr.o, sr.n, sr.recs = o, len(ids), append(sr.recs[:0], recs...)
	err := o.st.deleteFlightsAsync(ids, sr.fn)
	if err != nil {
		sr.release()
		if !errors.Is(err, ErrClosed) {
			o.onError("bridge: remove acknowledged messages", err)
		}
	}
}

// settleReq is the callback of one settle's write, pooled: the outbox,
// how many messages the write settles and their records.
type settleReq struct {
	o    *outbox
	n    int
	recs [][]byte
	fn   func(error) // sr.done, bound once
}

var settlePool = sync.Pool{New: func() any { return new(settleReq) }}

// done runs once the removal is committed (committer goroutine). The
// records are free then: the flights are gone, and the hand-over that
// logged them committed before this removal (call order).
func (sr *settleReq) done(err error) {
	o, n := sr.o, sr.n
	if err == nil {
		for _, rec := range sr.recs {
			o.st.bufs.put(rec)
		}
	}
	sr.release()
	if err != nil {
		o.onError("bridge: remove acknowledged messages", err)
	}
	o.mu.Lock()
	o.unsettled -= n
	o.mu.Unlock()
	o.wake()
}

func (sr *settleReq) release() {
	clear(sr.recs)
	*sr = settleReq{recs: sr.recs[:0], fn: sr.fn}
	settlePool.Put(sr)
}

// newFlightLocked returns a flight to fill: an ended one when there is
// one (end frees them); the caller holds mu.
func (o *outbox) newFlightLocked() *flight {
	if k := len(o.free); k > 0 {
		f := o.free[k-1]
		o.free[k-1] = nil
		o.free = o.free[:k-1]
		return f
	}
	return new(flight)
}

// write writes buf in one call, holding the connection's write lock (paho
// takes it for its own packets); it reports whether there was anything.
// A write error is left to paho's reader, which sees the connection fail.
func (o *outbox) write(conn io.Writer, buf []byte) bool {
	if len(buf) == 0 {
		return false
	}
	if l, ok := conn.(sync.Locker); ok {
		l.Lock()
		defer l.Unlock()
	}
	_, _ = conn.Write(buf)
	return true
}

// allocID returns a free packet id; the caller holds mu. The window is
// far below 65535 (Validate), so one is always free.
func (o *outbox) allocID() uint16 {
	for {
		o.nextID++
		if o.nextID == 0 {
			o.nextID = 1
		}
		if _, used := o.flights[o.nextID]; !used {
			return o.nextID
		}
	}
}

// setPacketID writes id into a QoS 1/2 PUBLISH packet.
func setPacketID(p []byte, id uint16) error {
	i := 1
	for ; i < len(p) && i < 5 && p[i]&0x80 != 0; i++ {
	}
	i++ // past the last length byte
	if i+2 > len(p) {
		return errors.New("bridge: truncated PUBLISH packet")
	}
	tl := int(p[i])<<8 | int(p[i+1])
	i += 2 + tl
	if i+2 > len(p) {
		return errors.New("bridge: truncated PUBLISH packet")
	}
	p[i], p[i+1] = byte(id>>8), byte(id)
	return nil
}

// ConAckReceived is called by paho when a connection is up, before it
// reads from it. Without a remote session the messages we had in flight go
// back to the head of the queue; with one they are sent again (PUBLISH
// with DUP, PUBREL), first, within the send quota.
func (o *outbox) ConAckReceived(conn io.Writer, cp *packets.Connect, ca *packets.Connack) error {
	if err := o.srv.ConAckReceived(conn, cp, ca); err != nil {
		return err
	}
	recvMax := 65535
	if ca.Properties != nil && ca.Properties.ReceiveMaximum != nil {
		recvMax = int(*ca.Properties.ReceiveMaximum)
	}
	if !ca.SessionPresent {
		o.mu.Lock()
		n := 0
		for id, f := range o.flights {
			if f.kind == packets.PUBLISH || f.kind == packets.PUBREL {
				delete(o.flights, id)
				n++
			}
		}
		o.resend = o.resend[:0]
		o.mu.Unlock()
		if _, err := o.st.requeue(); err != nil {
			return err
		}
		o.mu.Lock()
		o.unsettled -= n
		o.mu.Unlock()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.resend = o.resend[:0]
	for id, f := range o.flights {
		f.onConn = false
		if f.kind == packets.PUBLISH && f.data[0]&0x08 == 0 {
			f.data = bytes.Clone(f.data) // the old bytes may still be in a pending write
			f.data[0] |= 0x08            // DUP
		}
		o.resend = append(o.resend, id)
	}
	sort.Slice(o.resend, func(i, j int) bool { return o.flights[o.resend[i]].ord < o.flights[o.resend[j]].ord })
	o.pubrels = o.pubrels[:0]
	o.quota = min(recvMax, o.window)
	o.conn = conn
	o.gen++
	o.wake()
	return nil
}

// ConnectionLost is called by paho when the connection ends. Messages in
// flight stay in flight (the session outlives the connection).
func (o *outbox) ConnectionLost(dp *packets.Disconnect) error {
	err := o.srv.ConnectionLost(dp)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.conn = nil
	o.endRequestsLocked()
	return err
}

// endRequestsLocked ends SUBSCRIBE and UNSUBSCRIBE transactions (paho
// treats an empty packet as "removed from the session").
func (o *outbox) endRequestsLocked() {
	for id, f := range o.flights {
		if f.resp != nil {
			f.resp <- packets.ControlPacket{}
			delete(o.flights, id)
		}
	}
}

// AddToSession gives a SUBSCRIBE or UNSUBSCRIBE its packet id. PUBLISH
// goes through the queue, never through paho.
func (o *outbox) AddToSession(_ context.Context, p session.Packet, resp chan<- packets.ControlPacket) error {
	if p.Type() == packets.PUBLISH {
		return errPublishViaPaho
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.conn == nil {
		return session.ErrNoConnection
	}
	id := o.allocID()
	o.flights[id] = &flight{kind: p.Type(), resp: resp}
	p.SetIdentifier(id)
	return nil
}

// PacketReceived handles acknowledgements of what we sent, and hands
// inbound PUBLISH and PUBREL to the server half.
func (o *outbox) PacketReceived(cp *packets.ControlPacket, pubs chan<- *packets.Publish) error {
	switch p := cp.Content.(type) {
	case *packets.Puback:
		o.end(p.PacketID, p.ReasonCode)
	case *packets.Pubcomp:
		o.end(p.PacketID, p.ReasonCode)
	case *packets.Pubrec:
		if p.ReasonCode >= 0x80 {
			o.end(p.PacketID, p.ReasonCode)
			return nil
		}
		o.pubrec(p.PacketID)
	case *packets.Suback, *packets.Unsuback:
		o.mu.Lock()
		defer o.mu.Unlock()
		if f := o.flights[cp.PacketID()]; f != nil && f.resp != nil {
			f.resp <- *cp
			delete(o.flights, cp.PacketID())
		}
	default:
		return o.srv.PacketReceived(cp, pubs)
	}
	return nil
}

// end completes a PUBLISH (PUBACK, PUBCOMP, or an error PUBREC): the send
// quota slot is free at once; the sender submits the removal from the file
// (one write for all acknowledged since its last pass), and the message is
// settled when that commits.
func (o *outbox) end(id uint16, reasonCode byte) {
	o.mu.Lock()
	f := o.flights[id]
	if f == nil || (f.kind != packets.PUBLISH && f.kind != packets.PUBREL) {
		o.mu.Unlock()
		return // not ours (a stale acknowledgement after a session reset)
	}
	delete(o.flights, id)
	if f.onConn {
		o.quota++
	}
	o.acked = append(o.acked, id)
	o.ackedRecs = append(o.ackedRecs, f.rec)
	if len(o.free) < o.window {
		*f = flight{}
		o.free = append(o.free, f)
	}
	o.mu.Unlock()
	if reasonCode >= 0x80 {
		o.onRefused(id, reasonCode)
	}
	o.wake() // acknowledgements read in one burst share one pass of the sender
}

// pubrec replaces an in-flight QoS 2 PUBLISH with its PUBREL, which is sent
// once that record is on disk (so the PUBLISH is never sent again).
func (o *outbox) pubrec(id uint16) {
	rel := []byte{packets.PUBREL<<4 | 2, 2, byte(id >> 8), byte(id)}
	o.mu.Lock()
	f := o.flights[id]
	conn := o.conn
	if f == nil || f.kind == packets.PUBREL {
		o.mu.Unlock()
		if f == nil && conn != nil { // MQTT 5: PUBREL "packet identifier not found"
			o.write(conn, []byte{packets.PUBREL<<4 | 2, 3, byte(id >> 8), byte(id), 0x92})
		} else if conn != nil { // PUBREC again: PUBREL again
			o.write(conn, rel)
		}
		return
	}
	if f.kind != packets.PUBLISH {
		o.mu.Unlock()
		return
	}
	f.kind, f.data = packets.PUBREL, rel
	g := o.gen
	o.mu.Unlock()
	err := o.st.pubrelAsync(id, rel, func(err error) {
		if err != nil {
			o.onError("bridge: record PUBREL", err)
			return // not sent: the PUBLISH is sent again on the next connection
		}
		o.mu.Lock()
		if o.gen == g {
			o.pubrels = append(o.pubrels, id)
		}
		o.mu.Unlock()
		o.wake()
	})
	if err != nil && !errors.Is(err, ErrClosed) {
		o.onError("bridge: record PUBREL", err)
	}
}

// Ack acknowledges an inbound message (server half).
func (o *outbox) Ack(pb *packets.Publish) error { return o.srv.Ack(pb) }

// Close ends the session state: pending requests are told.
func (o *outbox) Close() error {
	err := o.srv.Close()
	o.mu.Lock()
	o.endRequestsLocked()
	o.mu.Unlock()
	return err
}

// SetErrorLogger passes paho's error logger to the server half.
func (o *outbox) SetErrorLogger(l paholog.Logger) { o.srv.SetErrorLogger(l) }

// SetDebugLogger passes paho's debug logger to the server half.
func (o *outbox) SetDebugLogger(l paholog.Logger) { o.srv.SetDebugLogger(l) }

// counts returns the PUBLISH/PUBREL flights and the unsettled count.
func (o *outbox) counts() (flights, unsettled int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, f := range o.flights {
		if f.kind == packets.PUBLISH || f.kind == packets.PUBREL {
			flights++
		}
	}
	return flights, o.unsettled
}

// noClientStore is the client store of the server-half paho state: the
// client half is the outbox's, so it holds nothing.
type noClientStore struct{}

func (noClientStore) Put(uint16, byte, io.WriterTo) error { return nil }
func (noClientStore) Get(uint16) (io.ReadCloser, error)   { return nil, ErrNotInStore }
func (noClientStore) Delete(uint16) error                 { return nil }
func (noClientStore) Quarantine(uint16) error             { return nil }
func (noClientStore) List() ([]uint16, error)             { return nil, nil }
func (noClientStore) Reset() error                        { return nil }

package mqttsub

import (
	"bufio"
	"math"
	"net"
	"sync"
	"time"
)

// Conn is the connection a benchmark's MQTT client gives paho: reads
// are buffered, and, for a subscriber, writes are coalesced.
//
// paho reads a packet a few octets at a time (the fixed header, each octet
// of the remaining length, then the rest), one read system call each on a
// bare socket; through a bufio.Reader one read fetches many packets. A
// subscriber at QoS 1 writes a PUBACK for every message, each in its own
// write. With coalesce, Write appends to a buffer and one flusher goroutine
// writes whatever has gathered: one system call for as many PUBACKs as
// arrived during the previous write, and none ever waits for a timer.
//
// paho takes the connection's lock (it looks for a sync.Locker) around
// each packet it writes; Conn's Lock is that lock.
//
// A subscriber's QoS 1 PUBLISHes do not reach paho at all: paho reads each
// packet into a fresh buffer grown 512 octets at a time, decodes it into
// several structs and hands it through two goroutines before the handler
// sees it, which cost the bench more than the sensors' own sockets. Read
// takes them out of the stream, gives the payload to onPublish straight
// from the read buffer and queues the PUBACK (MQTT 5, success: no reason
// code) with the coalesced writes. Everything else, QoS 0 and 2 PUBLISHes
// included, passes through to paho unchanged. Only paho's reader goroutine
// calls Read.
type Conn struct {
	net.Conn
	r *bufio.Reader

	onPublish func(payload []byte) // nil: every packet goes to paho
	pass      int                  // octets of the current packet still to pass to paho

	coalesce bool
	mu       sync.Mutex
	locked   bool   // under mu: the caller holds the lock (paho's packet)
	pending  []byte // under mu: written, not yet handed to the flusher
	spare    []byte // under mu: the flusher's previous buffer, for reuse
	err      error  // under mu: the flusher's write failed
	kick     chan struct{}
	done     chan struct{}
	flushed  chan struct{} // closed when the flusher exits
	once     sync.Once
}

// readBuf is the read buffer's size; a PUBLISH larger than it goes
// through paho.
const readBuf = 64 << 10

// NewConn wraps c. A subscriber (onPublish set) coalesces its writes
// and takes its QoS 1 PUBLISHes out of the stream; it starts the flusher
// goroutine, which exits when the connection is closed.
func NewConn(c net.Conn, onPublish func(payload []byte)) *Conn {
	coalesce := onPublish != nil
	m := &Conn{Conn: c, r: bufio.NewReaderSize(c, readBuf), coalesce: coalesce, onPublish: onPublish,
		done: make(chan struct{}), flushed: make(chan struct{})}
	if !coalesce {
		close(m.flushed)
		return m
	}
	m.kick = make(chan struct{}, 1)
	go m.flush() // exits when Close closes done
	return m
}

// Read passes packets other than QoS 1 PUBLISH through to paho, at most
// to the end of the current packet.
func (m *Conn) Read(p []byte) (int, error) {
	if m.onPublish == nil {
		return m.r.Read(p)
	}
	for m.pass == 0 {
		hdr, rl, err := m.header()
		if err != nil {
			return 0, err
		}
		if rl < 0 { // a malformed length: from here on everything goes to paho, which fails on it
			m.pass = math.MaxInt
			break
		}
		total := 1 + vbiLen(rl) + rl
		if hdr&0xF6 != 0x32 || total > readBuf { // not PUBLISH at QoS 1 (DUP and RETAIN may be set)
			m.pass = total
			break
		}
		b, err := m.r.Peek(total)
		if err != nil {
			return 0, err
		}
		id, payload, ok := parsePublishQoS1(b[total-rl : total])
		if !ok {
			m.pass = total // paho reports it
			break
		}
		m.onPublish(payload)
		_, _ = m.r.Discard(total)
		if err := m.puback(id); err != nil {
			return 0, err
		}
	}
	n, err := m.r.Read(p[:min(len(p), m.pass)])
	m.pass -= n
	return n, err
}

// puback queues a PUBACK for packet id with the coalesced writes.
func (m *Conn) puback(id uint16) error {
	m.Lock()
	defer m.Unlock()
	if m.err != nil {
		return m.err
	}
	m.pending = append(m.pending, 0x40, 0x02, byte(id>>8), byte(id))
	return nil
}

// parsePublishQoS1 returns the packet id and payload of an MQTT 5 QoS 1
// PUBLISH's variable header and payload, b; false if it is malformed.
func parsePublishQoS1(b []byte) (id uint16, payload []byte, ok bool) {
	if len(b) < 2 {
		return 0, nil, false
	}
	o := 2 + (int(b[0])<<8 | int(b[1]))
	if len(b) < o+2 {
		return 0, nil, false
	}
	id = uint16(b[o])<<8 | uint16(b[o+1])
	o += 2
	props, n := decodeVBI(b[o:])
	if n == 0 || len(b) < o+n+props || id == 0 {
		return 0, nil, false
	}
	return id, b[o+n+props:], true
}

// header peeks at the next packet's first octet and remaining length (-1
// if that is malformed).
func (m *Conn) header() (hdr byte, rl int, err error) {
	for i := 1; i <= 4; i++ {
		b, err := m.r.Peek(1 + i)
		if err != nil {
			return 0, 0, err
		}
		if b[i]&0x80 == 0 {
			rl, _ = decodeVBI(b[1:])
			return b[0], rl, nil
		}
	}
	return 0, -1, nil
}

// decodeVBI decodes an MQTT variable byte integer from the start of b and
// returns it and its length, or a length of 0 if b holds no complete one.
func decodeVBI(b []byte) (v, n int) {
	for i := 0; i < 4 && i < len(b); i++ {
		v |= int(b[i]&0x7F) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}

// vbiLen is the length of v's variable byte integer encoding.
func vbiLen(v int) int {
	n := 1
	for ; v > 127; v >>= 7 {
		n++
	}
	return n
}

// Lock starts a packet.
func (m *Conn) Lock() {
	m.mu.Lock()
	m.locked = true
}

// Unlock ends a packet and wakes the flusher.
func (m *Conn) Unlock() {
	m.locked = false
	wake := len(m.pending) > 0
	m.mu.Unlock()
	if wake {
		select {
		case m.kick <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// Write buffers p when coalescing, taking the lock itself if the caller
// does not hold it (paho writes only through ControlPacket.WriteTo, which
// holds it, so locked is never read while another goroutine holds mu);
// otherwise it writes p at once.
func (m *Conn) Write(p []byte) (int, error) {
	if !m.coalesce {
		return m.Conn.Write(p)
	}
	if !m.locked { // only paho's WriteTo takes the lock; nothing else writes concurrently with it
		m.Lock()
		defer m.Unlock()
	}
	if m.err != nil {
		return 0, m.err
	}
	m.pending = append(m.pending, p...)
	return len(p), nil
}

// flush is the flusher goroutine: it writes what has gathered whenever it
// is woken. A failed write is reported by the next Write; paho's reader
// sees the broken connection on its own.
func (m *Conn) flush() {
	defer close(m.flushed)
	for {
		last := false
		select {
		case <-m.kick:
		case <-m.done:
			last = true // write what is left (a DISCONNECT), then exit
		}
		for {
			m.mu.Lock()
			b := m.pending
			m.pending, m.spare = m.spare[:0], nil
			m.mu.Unlock()
			if len(b) == 0 {
				break
			}
			_, err := m.Conn.Write(b)
			m.mu.Lock()
			m.spare = b[:0]
			if err != nil && m.err == nil {
				m.err = err
			}
			m.mu.Unlock()
		}
		if last {
			return
		}
	}
}

// closeFlushTimeout bounds the last flush on Close, should the broker
// have stopped reading.
const closeFlushTimeout = time.Second

// Close writes what is still buffered, waits for the flusher to exit and
// closes the connection.
func (m *Conn) Close() error {
	m.once.Do(func() {
		_ = m.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
		close(m.done)
	})
	<-m.flushed
	return m.Conn.Close()
}

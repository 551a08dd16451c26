package benchfleet

import (
	"bufio"
	"net"
	"sync"
	"time"
)

// mqttConn is the connection the benchmark's MQTT clients give paho: reads
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
// each packet it writes; mqttConn's Lock is that lock.
type mqttConn struct {
	net.Conn
	r *bufio.Reader

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

// newMQTTConn wraps c. With coalesce it starts the flusher goroutine,
// which exits when the connection is closed.
func newMQTTConn(c net.Conn, coalesce bool) *mqttConn {
	m := &mqttConn{Conn: c, r: bufio.NewReaderSize(c, 64<<10), coalesce: coalesce,
		done: make(chan struct{}), flushed: make(chan struct{})}
	if !coalesce {
		close(m.flushed)
		return m
	}
	m.kick = make(chan struct{}, 1)
	go m.flush() // exits when Close closes done
	return m
}

// Read reads through the buffer.
func (m *mqttConn) Read(p []byte) (int, error) { return m.r.Read(p) }

// Lock starts a packet.
func (m *mqttConn) Lock() {
	m.mu.Lock()
	m.locked = true
}

// Unlock ends a packet and wakes the flusher.
func (m *mqttConn) Unlock() {
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
func (m *mqttConn) Write(p []byte) (int, error) {
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
func (m *mqttConn) flush() {
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
func (m *mqttConn) Close() error {
	m.once.Do(func() {
		_ = m.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
		close(m.done)
	})
	<-m.flushed
	return m.Conn.Close()
}

package snclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gannet-mqtt/gannet/snpacket"
)

// Client is an MQTT-SN client of one gateway, speaking 1.2 or, with
// Options.Version, 2.0. Its methods are safe for concurrent use. Create it
// with [New] or [Dial]; release it with Close.
type Client struct {
	opts Options
	v2   bool           // opts.Version is snpacket.Version20
	pc   net.PacketConn // the link; owned, closed by Close
	addr net.Addr       // the gateway
	conn net.Conn       // pc as a connected socket (Write instead of WriteTo), or nil
	udp  *net.UDPConn   // pc as a UDP socket, for allocation-free reads, or nil
	gw   netip.AddrPort // the gateway's address when udp != nil and not connected
	log  *slog.Logger

	predefByName map[string]uint16 // reverse of opts.PredefinedTopics; read-only

	bufs    chan []byte   // reusable send buffers
	slot    chan struct{} // one request/response exchange at a time
	replies chan reply    // answers for the exchange in progress
	closed  chan struct{} // closed by Close

	// retry is exchange's T_retry timer and pubOut its PUBLISH, reused
	// from one exchange to the next so that a QoS 1 publish allocates
	// nothing; only the holder of the request turn (slot) touches them.
	retry  *time.Timer
	pubOut snpacket.Publish

	readerDone chan struct{} // closed when the reader goroutine exits
	timers     sync.WaitGroup
	stats      stats

	mu       sync.Mutex // guards the fields below; never held across I/O or callbacks
	isClosed bool
	waking   bool // a WAKEUP's CheckMessages runs (wakeup.go)
	state    State
	wait     waitSpec          // what the exchange in progress waits for
	msgID    uint16            // last MsgId used
	nameToID map[string]uint16 // normal topic ids for publishing
	idToName map[uint16]string // normal topic ids for delivery
	// preLearned and preByName are 2.0 predefined aliases the gateway
	// named in a REGACK or SUBACK for a topic name (tables.go), besides
	// Options.PredefinedTopics.
	preLearned map[uint16]string
	preByName  map[string]uint16
	inQoS2     map[uint16]struct{} // incoming QoS 2 MsgIds between PUBREC and PUBREL
	will       *Will
	pingGen    uint64      // invalidates keep-alive timer callbacks
	pingTimer  *time.Timer // keep-alive timer, nil when stopped
	pingOut    bool        // a keep-alive PINGREQ awaits its PINGRESP
	pingTries  int         // retransmissions of the outstanding PINGREQ
	pingSent   time.Time   // when the first PINGREQ of this period went out
}

// New returns a client that talks to the gateway at addr over pc, and starts
// its reader goroutine. The client owns pc from now on: Close closes it.
// pc may be an unconnected socket shared with nothing else, or a connected
// *net.UDPConn (as Dial makes); datagrams from other addresses are ignored.
// New does not send anything; call Connect (or Publish at QoS -1). When
// New fails, pc stays open and the caller's.
func New(pc net.PacketConn, addr net.Addr, opts Options) (*Client, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if pc == nil || addr == nil {
		return nil, fmt.Errorf("snclient: new client: nil link or gateway address: %w", ErrInvalidOption)
	}
	c := &Client{
		opts:       opts.withDefaults(randomClientID),
		pc:         pc,
		addr:       addr,
		bufs:       make(chan []byte, 4),
		slot:       make(chan struct{}, 1),
		replies:    make(chan reply, 1),
		closed:     make(chan struct{}),
		readerDone: make(chan struct{}),
		log:        opts.Logger,
	}
	c.will = c.opts.Will
	c.v2 = c.opts.Version == snpacket.Version20
	if len(c.opts.PredefinedTopics) > 0 {
		c.predefByName = make(map[string]uint16, len(c.opts.PredefinedTopics))
		for id, name := range c.opts.PredefinedTopics {
			c.predefByName[name] = id
		}
	}
	if u, ok := pc.(*net.UDPConn); ok {
		c.udp = u
		if r, ok := u.RemoteAddr().(*net.UDPAddr); ok && r != nil {
			c.conn = u
		} else if ua, ok := addr.(*net.UDPAddr); ok {
			ap := ua.AddrPort()
			c.gw = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		} else {
			c.udp = nil // an address we cannot compare cheaply: use ReadFrom
		}
	}
	go c.readLoop() // exits when Close closes pc; Close waits on readerDone
	return c, nil
}

// Dial resolves address, opens a UDP socket connected to it and returns a
// client over it (see New). network is "udp", "udp4" or "udp6". ctx bounds
// the name resolution.
func Dial(ctx context.Context, network, address string, opts Options) (*Client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, fmt.Errorf("snclient: dial %s %s: %w", network, address, err)
	}
	u, ok := nc.(*net.UDPConn)
	if !ok {
		nc.Close()
		return nil, fmt.Errorf("snclient: dial %s %s: not a datagram network: %w", network, address, ErrInvalidOption)
	}
	c, err := New(u, u.RemoteAddr(), opts)
	if err != nil {
		u.Close()
		return nil, err
	}
	return c, nil
}

func randomClientID() string { return fmt.Sprintf("snc-%08x", rand.Uint32()) }

// ClientID returns the client id sent in CONNECT.
func (c *Client) ClientID() string { return c.opts.ClientID }

// State returns the connection state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Close stops the client without telling the gateway (call Disconnect
// first for a clean end): it stops the keep-alive, closes the link, waits for
// the reader goroutine and any running timer callback, and makes blocking
// calls in progress return ErrClosed. Close must not be called from the
// handler or a callback. Calling Close again returns nil.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		return nil
	}
	c.isClosed = true
	close(c.closed)
	c.stopKeepAliveLocked()
	c.mu.Unlock()

	err := c.pc.Close()
	<-c.readerDone
	c.timers.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("snclient: close link to %v: %w", c.addr, err)
	}
	return nil
}

// setStateLocked moves to state s, logging the transition.
func (c *Client) setStateLocked(s State) {
	if c.state == s {
		return
	}
	if c.log != nil && c.log.Enabled(context.Background(), slog.LevelDebug) {
		c.log.Debug("snclient state", "client_id", c.opts.ClientID, "remote", c.addr.String(),
			"state", c.state.String()+" -> "+s.String())
	}
	c.state = s
}

// nextMsgIDLocked returns a fresh MsgId, never 0.
func (c *Client) nextMsgIDLocked() uint16 {
	c.msgID++
	if c.msgID == 0 {
		c.msgID = 1
	}
	return c.msgID
}

func (c *Client) nextMsgID() uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nextMsgIDLocked()
}

// getBuf returns an empty send buffer of capacity MaxMessageSize.
func (c *Client) getBuf() []byte {
	select {
	case b := <-c.bufs:
		return b[:0]
	default:
		return make([]byte, 0, c.opts.MaxMessageSize)
	}
}

// putBuf returns a buffer from getBuf for reuse.
func (c *Client) putBuf(b []byte) {
	select {
	case c.bufs <- b:
	default:
	}
}

// write sends one datagram to the gateway.
func (c *Client) write(b []byte) error {
	var err error
	if c.conn != nil {
		_, err = c.conn.Write(b)
	} else {
		_, err = c.pc.WriteTo(b, c.addr)
	}
	if err == nil {
		c.stats.sent.Add(1)
	}
	return err
}

// outgoing is a packet of either version: a snpacket.Message (1.2) or a
// snpacket.MessageV2 (2.0).
type outgoing interface {
	Len() int
	AppendBinary(b []byte) ([]byte, error)
}

// typeName returns the packet type of m for error texts, such as "PUBLISH".
func typeName(m outgoing) string {
	switch m := m.(type) {
	case snpacket.Message:
		return m.Type().String()
	case snpacket.MessageV2:
		return m.Type().String()
	}
	return fmt.Sprintf("%T", m)
}

// send encodes m and sends it to the gateway. op names the operation for
// the error text.
func (c *Client) send(op string, m outgoing) error {
	if n := m.Len(); n > c.opts.MaxMessageSize {
		return fmt.Errorf("snclient: %s: %v of %d octets, limit %d: %w", op, typeName(m), n, c.opts.MaxMessageSize, ErrTooLarge)
	}
	b, err := m.AppendBinary(c.getBuf())
	if err != nil {
		c.putBuf(b)
		return fmt.Errorf("snclient: %s: %w", op, err)
	}
	err = c.write(b)
	c.putBuf(b)
	if err != nil {
		return fmt.Errorf("snclient: %s: send %v to %v: %w", op, typeName(m), c.addr, err)
	}
	return nil
}

// acquire takes the client's single request/response turn.
func (c *Client) acquire(ctx context.Context, op string) error {
	select {
	case c.slot <- struct{}{}: // free: no need to watch ctx and closed
		return nil
	default:
	}
	select {
	case c.slot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("snclient: %s: waiting for the previous request: %w", op, ctx.Err())
	case <-c.closed:
		return fmt.Errorf("snclient: %s: %w", op, ErrClosed)
	}
}

func (c *Client) release() { <-c.slot }

// checkState returns ErrNotConnected (or ErrClosed) unless the client is in
// one of the given states.
func (c *Client) checkState(op string, ok ...State) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isClosed {
		return fmt.Errorf("snclient: %s: %w", op, ErrClosed)
	}
	for _, s := range ok {
		if c.state == s {
			return nil
		}
	}
	return fmt.Errorf("snclient: %s: client is %v: %w", op, c.state, ErrNotConnected)
}

// connectionEnded moves an active, asleep or awake client to state s (lost
// or disconnected), stops the keep-alive and reports err to
// Options.ConnectionLost.
func (c *Client) connectionEnded(s State, err error) {
	c.mu.Lock()
	switch c.state {
	case StateActive, StateAsleep, StateAwake:
	default:
		c.mu.Unlock()
		return
	}
	c.setStateLocked(s)
	c.stopKeepAliveLocked()
	cb := c.opts.ConnectionLost
	c.mu.Unlock()
	if cb != nil {
		cb(err)
	}
}

// Stats counts a client's datagrams since New.
type Stats struct {
	// Sent counts datagrams written to the gateway, retransmissions
	// included.
	Sent uint64
	// Received counts datagrams from the gateway that decoded.
	Received uint64
	// Dropped counts datagrams ignored: undecodable, or not from the
	// gateway.
	Dropped uint64
	// Retransmitted counts retransmissions (requests and keep-alive
	// PINGREQs) after T_retry expired.
	Retransmitted uint64
	// Wakeups counts 2.0 WAKEUPs acted on: each started a CheckMessages
	// (wakeup.go).
	Wakeups uint64
}

type stats struct {
	sent, received, dropped, retransmitted, wakeups atomic.Uint64
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return Stats{
		Sent:          c.stats.sent.Load(),
		Received:      c.stats.received.Load(),
		Dropped:       c.stats.dropped.Load(),
		Retransmitted: c.stats.retransmitted.Load(),
		Wakeups:       c.stats.wakeups.Load(),
	}
}

package listener

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/listener/internal/framing"
)

// MQTT 5 reason codes the session layer sends besides the framing ones in
// errors.go.
const (
	reasonSuccess              = 0x00
	reasonDisconnectWithWill   = 0x04
	reasonNoSubscriptionExists = 0x11
	reasonUnspecified          = 0x80
	reasonImplementation       = 0x83
	reasonClientIDInvalid      = 0x85
	reasonBadCredentials       = 0x86
	reasonNotAuthorized        = 0x87
	reasonServerUnavailable    = 0x88
	reasonServerShuttingDown   = 0x8B
	reasonBadAuthMethod        = 0x8C
	reasonKeepAliveTimeout     = 0x8D
	reasonSessionTakenOver     = 0x8E
	reasonTopicFilterInvalid   = 0x8F
	reasonTopicNameInvalid     = 0x90
	reasonPacketIDNotFound     = 0x92
	reasonReceiveMaxExceeded   = 0x93
	reasonTopicAliasInvalid    = 0x94
	reasonQuotaExceeded        = 0x97
	reasonAdministrative       = 0x98
)

// MQTT 3.1 and 3.1.1 CONNACK return codes [MQTT-3.2.2-3] (MQTT 3.1 section
// 3.2 has the same ones).
const (
	connack311IDRejected     = 0x02
	connack311Unavailable    = 0x03
	connack311BadCredentials = 0x04
	connack311NotAuthorized  = 0x05
)

// maxClientID31 is the longest client identifier MQTT 3.1 allows (section
// 3.1, "Client Identifier": 1 to 23 characters).
const maxClientID31 = 23

// maxDrain is how many deliveries the writer sends before it looks at
// acknowledgements and control packets again.
const maxDrain = 64

// outQueue is the capacity of the reader-to-writer channel of control
// packets (acknowledgements, SUBACK, PINGRESP). A full queue blocks the
// reader, so a client that does not read cannot make the server buffer.
const outQueue = 64

// closeErr ends a connection from the session layer: reason is the MQTT 5
// DISCONNECT reason (0 for none), counter the refusal counter to bump.
type closeErr struct {
	reason  byte
	counter *atomic.Uint64
	err     error
}

func (e *closeErr) Error() string { return e.err.Error() }
func (e *closeErr) Unwrap() error { return e.err }

// errClientDisconnect marks a DISCONNECT from the client.
var errClientDisconnect = errors.New("client sent disconnect")

// client is one network connection. The reader goroutine (serveConn) owns
// every field not marked otherwise; after CONNECT, version, clientID,
// username, mods and cc are read-only and shared with the writer.
type client struct {
	srv    *Server
	cfg    *Config // the server's configuration when the connection came (SetConfig may replace the server's)
	nc     net.Conn
	remote string
	r      *framing.Reader
	w      *framing.Writer // writer goroutine only (and the reader before it starts)
	bw     *bufio.Writer

	version  byte
	clientID string
	username string
	mods     packets.Mods
	cc       *mqttcore.Conn

	keepAlive      time.Duration // 1.5 times the keep alive in force, 0 for none
	expiryZero     bool          // the CONNECT asked for session expiry 0
	aliases        []string      // inbound topic aliases, index alias-1
	disconnectWill bool          // MQTT 5 DISCONNECT 0x04
	lastAckUnknown bool          // the last acknowledgement named an unknown id
	answered       bool          // a refusing CONNACK was written: close gracefully

	outAliases aliasTable // writer goroutine only: outbound topic aliases
	subIDs     []uint32   // writer goroutine only: a delivery's subscription identifiers
	subIDInts  []int      // writer goroutine only: the same, as mochi encodes them

	// lingerUntil is set (unix ns) once the writer has sent the core's
	// closing DISCONNECT and shut down the write side: the reader keeps
	// reading, and then draining, until then (see closeGracefully).
	lingerUntil atomic.Int64

	out        chan packets.Packet // reader -> writer
	notify     chan struct{}       // core -> writer, 1-buffered
	kick       chan error          // core -> writer, 1-buffered: FrontEnd.Close
	stop       chan struct{}       // reader -> writer: send what is queued, then exit
	writerDone chan struct{}       // closed when the writer exits

	kickMu     sync.Mutex
	kickReason error // set once by Close

	deferred deferredAcks // acknowledgements the core completed, for the writer
}

// Notify implements mqttcore.FrontEnd: wake the writer.
func (c *client) Notify() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// Close implements mqttcore.FrontEnd: the core detached this connection
// (takeover, kick, broker closing). The writer sends an MQTT 5 DISCONNECT
// and closes the network connection; the write is bounded by a deadline so
// Close never waits.
func (c *client) Close(reason error) {
	if reason == nil {
		reason = mqttcore.ErrClosed
	}
	c.kickMu.Lock()
	first := c.kickReason == nil
	if first {
		c.kickReason = reason
	}
	c.kickMu.Unlock()
	if !first {
		return
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.conf().WriteTimeout))
	c.kick <- reason // 1-buffered and sent once: never blocks
}

// serveConn runs one connection on the calling goroutine (its reader) until
// it ends, then detaches its session, stops its writer and closes it.
func (s *Server) serveConn(nc net.Conn) {
	c := &client{
		srv:        s,
		cfg:        s.conf(), // one snapshot: what CONNACK announces is what the connection enforces
		nc:         nc,
		remote:     nc.RemoteAddr().String(),
		out:        make(chan packets.Packet, outQueue),
		notify:     make(chan struct{}, 1),
		kick:       make(chan error, 1),
		stop:       make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	defer s.release(nc)
	r, err := framing.NewReader(nc, c.cfg.limits())
	if err != nil { // the config was validated; this is our fault
		s.log.Error("mqtt listener: reader", "err", err)
		return
	}
	c.r = r
	c.bw = bufio.NewWriterSize(nc, 4096)
	c.w = framing.NewWriter(c.bw)

	if err := c.connect(); err != nil {
		c.connectFailed(err)
		if c.answered {
			c.closeGracefully()
		}
		return
	}
	// Exits when stop is closed, on a kick, or on a write error.
	if !s.goTracked(c.writeLoop) {
		close(c.writerDone)
		_ = c.cc.Lost()
		return
	}
	s.log.Debug("mqtt client connected", "client_id", c.clientID, "remote", c.remote, "version", c.version)
	err = c.readLoop()
	c.finish(err)
}

// connect reads the CONNECT, authenticates the client, attaches its session
// and sends CONNACK.
func (c *client) connect() error {
	s := c.srv
	_ = c.nc.SetReadDeadline(time.Now().Add(c.cfg.ConnectTimeout))
	pk, err := c.r.ReadPacket(0)
	if err != nil {
		return err
	}
	s.stats.received.Add(1)
	c.version = pk.ProtocolVersion
	cp := &pk.Connect
	v5 := c.version == 5

	if v5 && pk.Properties.AuthenticationMethod != "" {
		// Enhanced authentication is not supported [MQTT-4.12.0-1].
		s.stats.refusedAuth.Add(1)
		return c.refuse(reasonBadAuthMethod, 0, fmt.Errorf("authentication method %q not supported", pk.Properties.AuthenticationMethod))
	}
	c.username = string(cp.Username)
	if err := s.auth.Authenticate(c.username, cp.Password); err != nil {
		s.stats.refusedAuth.Add(1)
		if c.username == "" {
			return c.refuse(reasonNotAuthorized, connack311NotAuthorized, err)
		}
		return c.refuse(reasonBadCredentials, connack311BadCredentials, err)
	}

	c.clientID = cp.ClientIdentifier
	if c.version == 3 {
		if n := utf8.RuneCountInString(c.clientID); n == 0 || n > maxClientID31 {
			// MQTT 3.1 has no assigned identifiers and a 23-character limit.
			s.stats.refusedID.Add(1)
			return c.refuse(0, connack311IDRejected, fmt.Errorf("mqtt 3.1 client id of %d characters, want 1 to %d", n, maxClientID31))
		}
	}
	assigned := ""
	if c.clientID == "" {
		if !v5 && !cp.Clean {
			// [MQTT-3.1.3-8]: a 3.1.1 client with an empty id must ask for
			// a clean session.
			s.stats.refusedID.Add(1)
			return c.refuse(reasonClientIDInvalid, connack311IDRejected, errors.New("empty client id without clean session"))
		}
		id, err := newClientID()
		if err != nil {
			s.stats.refusedOther.Add(1)
			return c.refuse(reasonUnspecified, connack311Unavailable, err)
		}
		c.clientID = id
		if v5 {
			assigned = id
		}
	}

	opts := mqttcore.ConnectOptions{ClientID: c.clientID, Username: c.username, CleanStart: cp.Clean}
	if v5 {
		if pk.Properties.SessionExpiryIntervalFlag {
			opts.SessionExpiry = expiryDuration(pk.Properties.SessionExpiryInterval)
		}
		opts.MaxInflight = int(pk.Properties.ReceiveMaximum)
		if pk.Properties.MaximumPacketSize > 0 {
			if err := c.w.SetMaxPacketSize(int(pk.Properties.MaximumPacketSize)); err != nil {
				return c.refuse(byte(framing.ReasonProtocolError), 0, err)
			}
			c.mods.MaxSize = pk.Properties.MaximumPacketSize
		}
		if pk.Properties.RequestProblemInfoFlag && pk.Properties.RequestProblemInfo == 0 {
			c.mods.DisallowProblemInfo = true
		}
	} else if !cp.Clean {
		// MQTT 3.1.1: a persistent session lasts while the broker runs.
		opts.SessionExpiry = mqttcore.NeverExpire
	}
	c.expiryZero = opts.SessionExpiry == 0
	if cp.WillFlag {
		w := &mqttcore.Will{
			Topic:   cp.WillTopic,
			Payload: cp.WillPayload,
			QoS:     mqttcore.QoS(cp.WillQos),
			Retain:  cp.WillRetain,
		}
		if v5 {
			w.Props = messageProps(&cp.WillProperties)
			w.Delay = time.Duration(cp.WillProperties.WillDelayInterval) * time.Second
		}
		opts.Will = w
	}
	keepAlive := time.Duration(cp.Keepalive) * time.Second
	serverKeepAlive := false
	if max := c.cfg.ServerKeepAlive; max > 0 && (keepAlive == 0 || keepAlive > max) {
		if !v5 {
			// MQTT 3.1 and 3.1.1 cannot tell the client another keep
			// alive; refuse as Mosquitto's max_keepalive does.
			s.stats.refusedKA.Add(1)
			return c.refuse(0, connack311IDRejected, fmt.Errorf("keep alive %v above server_keep_alive %v", keepAlive, max))
		}
		keepAlive, serverKeepAlive = max, true // [MQTT-3.2.2-21]
	}
	if keepAlive > 0 {
		c.keepAlive = keepAlive * 3 / 2 // [MQTT-3.1.2-24]
	}

	cc, present, err := s.broker.Attach(c, opts)
	if errors.Is(err, mqttcore.ErrNotAuthorized) { // the will's topic
		s.stats.refusedAuth.Add(1)
		return c.refuse(reasonNotAuthorized, connack311NotAuthorized, err)
	}
	if err != nil {
		s.stats.refusedOther.Add(1)
		switch {
		case errors.Is(err, mqttcore.ErrInvalidTopic):
			return c.refuse(reasonTopicNameInvalid, connack311NotAuthorized, err)
		case errors.Is(err, mqttcore.ErrTooManySessions), errors.Is(err, mqttcore.ErrPayloadTooLarge):
			return c.refuse(reasonQuotaExceeded, connack311Unavailable, err)
		case errors.Is(err, mqttcore.ErrClosed):
			return c.refuse(reasonServerUnavailable, connack311Unavailable, err)
		default:
			return c.refuse(reasonUnspecified, connack311Unavailable, err)
		}
	}
	c.cc = cc
	if v5 {
		c.aliases = make([]string, c.cfg.TopicAliasMaximum)
		c.outAliases.init(min(pk.Properties.TopicAliasMaximum, uint16(c.cfg.OutboundTopicAliasMaximum)))
	}

	ack := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connack},
		ProtocolVersion: c.version,
		SessionPresent:  present && c.version != 3, // MQTT 3.1 has no session present flag
		Mods:            c.mods,
	}
	if v5 {
		p := &ack.Properties
		p.AssignedClientID = assigned
		p.ReceiveMaximum = uint16(cc.InboundWindow()) // what the core enforces on this connection
		p.MaximumPacketSize = uint32(c.cfg.MaxPacketSize)
		p.TopicAliasMaximum = uint16(c.cfg.TopicAliasMaximum)
		// Subscription Identifier Available is left out: it means 1.
		if serverKeepAlive {
			p.ServerKeepAlive, p.ServerKeepAliveFlag = uint16(keepAlive/time.Second), true
		}
		p.WildcardSubAvailable, p.WildcardSubAvailableFlag = 1, true
		p.SharedSubAvailable, p.SharedSubAvailableFlag = 1, true
	}
	// The writer has not started: the reader may use the Writer, and the
	// CONNACK goes out before any delivery [MQTT-3.2.0-1].
	if err := c.writeNow(&ack); err != nil {
		_ = cc.Lost()
		return err
	}
	s.stats.connected.Add(1)
	// Attach does not notify: a resumed session's retransmissions and
	// queued messages wait for the writer's first drain.
	c.Notify()
	return nil
}

// refuse answers a refused CONNECT (MQTT 5 reason v5, or 3.1.1 return code
// v311; 0 sends nothing) and returns the error that ends the connection.
func (c *client) refuse(v5, v311 byte, err error) error {
	code := v311
	if c.version == 5 {
		code = v5
	}
	if code != 0 {
		ack := packets.Packet{
			FixedHeader:     packets.FixedHeader{Type: packets.Connack},
			ProtocolVersion: c.version,
			ReasonCode:      code,
		}
		c.answered = c.writeNow(&ack) == nil
	}
	c.srv.warnf("mqtt connect refused", "client_id", c.clientID, "remote", c.remote, "reason", fmt.Sprintf("0x%02x", code), "err", err)
	return &closeErr{err: fmt.Errorf("connect refused: %w", err)}
}

// connectFailed closes a connection whose CONNECT did not succeed,
// answering a framing error per framing.CloseResponse.
func (c *client) connectFailed(err error) {
	s := c.srv
	var ce *closeErr
	if errors.As(err, &ce) {
		return // already answered and counted
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		s.stats.connectTimeout.Add(1)
		s.warnf("mqtt connect timeout", "remote", c.remote, "timeout", c.cfg.ConnectTimeout)
		return
	}
	c.countReadError(err)
	if pk, ok := framing.CloseResponse(err, 0); ok {
		c.answered = c.writeNow(&pk) == nil
	}
	if _, ok := framing.Reason(err); ok {
		s.warnf("mqtt connect rejected", "remote", c.remote, "err", err)
	} else if !errors.Is(err, io.EOF) {
		s.log.Debug("mqtt connection closed before connect", "remote", c.remote, "err", err)
	}
}

// countReadError counts a framing error by its reason code.
func (c *client) countReadError(err error) {
	st := &c.srv.stats
	switch {
	case errors.Is(err, framing.ErrPacketTooLarge):
		st.tooLarge.Add(1)
	case errors.Is(err, framing.ErrUnsupportedVersion):
		st.badVersion.Add(1)
	case errors.Is(err, framing.ErrProtocol):
		st.protocol.Add(1)
	case errors.Is(err, framing.ErrMalformed):
		st.malformed.Add(1)
	}
}

// writeNow writes and flushes one packet from the reader goroutine; only
// before the writer starts or after it has exited.
func (c *client) writeNow(pk *packets.Packet) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.conf().WriteTimeout))
	if err := c.w.WritePacket(pk); err != nil {
		return err
	}
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("write %s packet: %w", framing.TypeName(pk.FixedHeader.Type), err)
	}
	c.srv.stats.sent.Add(1)
	return nil
}

// readLoop reads and handles packets until the connection ends; it returns
// why.
func (c *client) readLoop() error {
	for {
		c.armReadDeadline()
		pk, err := c.r.ReadPacket(c.version)
		if err != nil {
			return err
		}
		c.srv.stats.received.Add(1)
		if err := c.handle(&pk); err != nil {
			return err
		}
	}
}

// armReadDeadline sets the read deadline for the next packet: the keep
// alive, or the end of the drain once the writer has started a graceful
// close. It checks lingerUntil after setting the keep-alive deadline, and
// the writer sets lingerUntil before the deadline, so one of the two always
// sees the other's.
func (c *client) armReadDeadline() {
	if c.keepAlive > 0 {
		_ = c.nc.SetReadDeadline(time.Now().Add(c.keepAlive))
	} else {
		_ = c.nc.SetReadDeadline(time.Time{})
	}
	if u := c.lingerUntil.Load(); u != 0 {
		_ = c.nc.SetReadDeadline(time.Unix(0, u))
	}
}

// send queues a control packet for the writer. It returns an error when the
// writer has exited.
func (c *client) send(pk packets.Packet) error {
	pk.ProtocolVersion = c.version
	pk.Mods = c.mods
	select {
	case c.out <- pk:
		return nil
	case <-c.writerDone:
		return errors.New("writer stopped")
	}
}

// finish ends the connection after readLoop returned err: it detaches the
// session (normally after DISCONNECT, as lost otherwise), lets the writer
// send what is queued plus the closing packet, and waits for it.
func (c *client) finish(err error) {
	s := c.srv
	var final *packets.Packet
	kicked := c.kicked()
	normal := errors.Is(err, errClientDisconnect)
	var ce *closeErr
	switch {
	case kicked != nil:
		// The core closed us; the writer sends the DISCONNECT.
	case normal:
		s.log.Debug("mqtt client disconnected", "client_id", c.clientID, "remote", c.remote, "will", c.disconnectWill)
	case errors.As(err, &ce):
		if ce.counter != nil {
			ce.counter.Add(1)
		}
		if c.version == 5 && ce.reason != 0 {
			final = &packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}, ReasonCode: ce.reason}
		}
		s.warnf("mqtt client closed", "client_id", c.clientID, "remote", c.remote, "reason", fmt.Sprintf("0x%02x", ce.reason), "err", err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.stats.keepAlive.Add(1)
		if c.version == 5 {
			final = &packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}, ReasonCode: reasonKeepAliveTimeout}
		}
		s.warnf("mqtt keep alive timeout", "client_id", c.clientID, "remote", c.remote, "keep_alive", c.keepAlive*2/3)
	default:
		if pk, ok := framing.CloseResponse(err, c.version); ok {
			final = &pk
		}
		if _, ok := framing.Reason(err); ok {
			c.countReadError(err)
			s.warnf("mqtt packet rejected", "client_id", c.clientID, "remote", c.remote, "err", err)
		} else {
			s.log.Debug("mqtt connection lost", "client_id", c.clientID, "remote", c.remote, "err", err)
		}
	}
	if kicked == nil {
		// Detach first, so no delivery is started after the closing packet.
		var derr error
		if normal && !c.disconnectWill {
			derr = c.cc.Disconnect()
		} else {
			derr = c.cc.Lost()
		}
		if derr != nil && !errors.Is(derr, mqttcore.ErrDetached) {
			s.log.Error("mqtt listener: detach", "client_id", c.clientID, "err", derr)
		}
	}
	if final != nil {
		final.ProtocolVersion, final.Mods = c.version, c.mods
		select {
		case c.out <- *final:
		default: // the queue is full of packets the client does not read
		}
	}
	lingering := c.lingerUntil.Load() != 0
	if final == nil && !normal && !lingering {
		// Nothing more to say: unblock a writer stuck on a dead peer.
		_ = c.nc.Close()
	} else {
		_ = c.nc.SetWriteDeadline(time.Now().Add(s.conf().WriteTimeout))
	}
	close(c.stop)
	<-c.writerDone
	if final != nil || c.lingerUntil.Load() != 0 { // the writer may have started one meanwhile
		c.closeGracefully()
	}
}

// kicked returns the reason the core closed this connection, or nil.
func (c *client) kicked() error {
	c.kickMu.Lock()
	defer c.kickMu.Unlock()
	return c.kickReason
}

// expiryDuration converts an MQTT 5 Session Expiry Interval.
func expiryDuration(sec uint32) time.Duration {
	if sec == 0xFFFFFFFF {
		return mqttcore.NeverExpire
	}
	return time.Duration(sec) * time.Second
}

// newClientID returns an assigned client identifier.
func newClientID() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("assign client id: %w", err)
	}
	return "gannet-" + hex.EncodeToString(b[:]), nil
}

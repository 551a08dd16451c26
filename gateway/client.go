package gateway

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// client is the gateway's state for one MQTT-SN client: what the core does
// not know (its address, topic ids, where it is in the MQTT-SN procedures).
// Its loop's goroutine owns it. A sleeping client keeps this struct and a
// detached core session, and costs no goroutine.
//
// Every sleeping sensor pays for this struct, so its fields are ordered to
// pack (TestClientSize holds it to a budget).
type client struct {
	l    *loop
	key  clientKey
	node string // Wireless Node Id behind a forwarder (when fwd)
	id   string // client id, once CONNECT arrived

	conn *mqttcore.Conn // nil while asleep or during the will dialogue
	att  *attachment    // the FrontEnd of conn
	// v2 is a 2.0 client's own state (v2.go), nil for 1.2. It has the
	// place the will dialogue's pointer had: only 1.2 has that dialogue,
	// and it is short, so it waits in loop.dialogues (will.go).
	v2 *v2conn

	lastSeen int64 // UnixNano of the last datagram
	// timerAt is the Tretry deadline of the exchange in flight while
	// active or awake, and the sleep deadline while asleep (the two never
	// overlap: sleeping ends any exchange); 0 if none.
	timerAt int64

	topics registry  // the client's normal topic ids (registry.go)
	out    outFlight // the one gateway-to-client exchange in progress

	// heldAtt is the attachment on which the client's QoS 1/2 PUBLISH
	// heldID had its acknowledgement deferred (flow control, the journal's
	// commit), nil for none; heldAns is heldPending while it waits, then
	// the answer sent, so a retransmission gets it again (publish.go).
	heldAtt *attachment

	heapPos   int32  // index+1 in the loop's timer heap, 0 when not in it
	keepAlive uint16 // CONNECT Duration, seconds (0: not supervised)
	sleepFor  uint16 // DISCONNECT Duration, seconds
	regID     uint16 // the last REGISTER MsgId the gateway used
	heldID    uint16 // see heldAtt
	state     State  // with dialogue, conn, out.kind and removed: the session state (state.go)
	removed   bool   // see presence (state.go); only markRemoved sets it
	fwd       bool   // behind a forwarder: datagrams are Encapsulated with node
	heldAns   sn.ReturnCode
	clean     bool // CONNECT had CleanSession: the core session ends with the connection
	isV2      bool // speaks MQTT-SN 2.0; its own state is in v2 (v2.go)
	// inDialogue: a will dialogue is in progress (1.2 only); its state is
	// in loop.dialogues (dialogue(), will.go).
	inDialogue bool
	// probation: nothing received since CONNACK yet; provisional: the
	// session was created by that CONNECT and has expiry 0 until the
	// client is verified (probation.go).
	probation, provisional bool
	// upWait: a transparent session's CONNACK or wake-up waits for the
	// remote broker (upstream.go).
	upWait bool
}

func (c *client) clientID() string {
	if c == nil {
		return ""
	}
	return c.id
}

// handle dispatches one message from the client.
func (c *client) handle(m sn.Message) {
	c.lastSeen = c.l.now()
	if c.state == StateAsleep {
		// An asleep client may only CONNECT, wake (PINGREQ) or DISCONNECT.
		switch m.(type) {
		case *sn.Connect, *sn.PingReq, *sn.Disconnect, *sn.SearchGW:
		default:
			c.unexpected(m)
			return
		}
	}
	if c.dialogue() != nil {
		switch m.(type) {
		case *sn.Connect, *sn.WillTopic, *sn.WillMsg, *sn.Disconnect, *sn.SearchGW:
		default:
			c.unexpected(m)
			return
		}
	}
	switch m := m.(type) {
	case *sn.Connect:
		c.onConnect(m)
	case *sn.WillTopic:
		c.onWillTopic(m)
	case *sn.WillMsg:
		c.onWillMsg(m)
	case *sn.Register:
		c.onRegister(m)
	case *sn.Regack:
		c.onRegack(m)
	case *sn.Publish:
		c.onPublish(m)
	case *sn.Puback:
		c.onPuback(m)
	case *sn.Pubrec:
		c.onPubrec(m)
	case *sn.Pubrel:
		c.onPubrel(m)
	case *sn.Pubcomp:
		c.onPubcomp(m)
	case *sn.Subscribe:
		c.onSubscribe(m)
	case *sn.Unsubscribe:
		c.onUnsubscribe(m)
	case *sn.PingReq:
		c.onPingReq(m)
	case *sn.PingResp:
		// The client is alive; lastSeen is all it changes.
	case *sn.Disconnect:
		c.onDisconnect(m)
	case *sn.WillTopicUpd:
		c.onWillTopicUpd(m)
	case *sn.WillMsgUpd:
		c.onWillMsgUpd(m)
	case *sn.SearchGW:
		c.l.answerSearch(c.key, c.nodeID())
	default:
		c.unexpected(m)
	}
}

func (c *client) unexpected(m sn.Message) {
	c.l.g.stats.unexpected.Add(1)
	if c.l.g.log.Enabled(context.Background(), slog.LevelDebug) {
		c.l.g.log.Debug("unexpected message ignored", "client_id", c.id, "remote", c.key.addr,
			"msg_type", m.Type(), "state", c.state)
	}
}

// send writes m to the client, wrapped for its forwarder if it has one.
func (c *client) send(m sn.Message) bool { return c.l.sendTo(c.key, c.nodeID(), m) }

// lose ends the client abnormally: its will is published.
func (c *client) lose(why string) {
	if c.conn != nil {
		c.keepSession()   // persist.go: a 2.0 client's aliases stay with its session
		_ = c.conn.Lost() // ErrDetached only: the session moved on already
		c.detach()
	}
	c.l.g.log.Debug("client lost", "client_id", c.id, "remote", c.key.addr, "reason", why)
	c.l.g.stats.lost.Add(1)
	c.setState(StateLost)
	c.l.removeClient(c)
}

// takenOver handles the core closing this client's attachment: the same
// client id connected elsewhere, or an administrator kicked it.
func (c *client) takenOver(reason error) {
	c.detach()
	c.sendDisconnect(sn.SessionTakenOver) // sleep2.go: in the client's version
	c.l.g.log.Debug("session taken over", "client_id", c.id, "remote", c.key.addr, "err", reason)
	c.setState(StateDisconnected)
	c.l.removeClient(c)
}

// tolerance is the slack the gateway adds to a keep-alive or sleep period
// before it declares the client lost: 10% above one minute, 50% below, as
// the specification suggests (§6.14).
func tolerance(d time.Duration) time.Duration {
	if d > time.Minute {
		return d + d/10
	}
	return d + d/2
}

func seconds(s uint16) time.Duration { return time.Duration(s) * time.Second }

// keepAliveAt returns the keep-alive deadline: the keep-alive period plus
// tolerance after the last datagram, for a connected active client with a
// keep-alive; 0 otherwise.
func (c *client) keepAliveAt() int64 {
	if c.state != StateActive || c.keepAlive == 0 || c.conn == nil || c.dialogue() != nil {
		return 0
	}
	return c.lastSeen + int64(c.tolerance(seconds(c.keepAlive)))
}

// nextDeadline returns the earliest of the client's deadlines, 0 for none.
func (c *client) nextDeadline() int64 {
	due := c.keepAliveAt()
	if c.timerAt != 0 && (due == 0 || c.timerAt < due) {
		due = c.timerAt
	}
	return due
}

func (c *client) armRetry() {
	c.timerAt = c.l.now() + int64(c.l.g.live().RetryInterval)
	c.l.schedule(c)
}

// timerFired runs when the client's heap entry is due: it handles every
// deadline that has passed, then schedules the client again.
func (c *client) timerFired(now int64) {
	if c.timerAt != 0 && c.timerAt <= now {
		c.timerAt = 0
		if c.state == StateAsleep {
			// Overslept. The core's own sleep deadline publishes the
			// will; the gateway forgets the client, leaving a 2.0
			// client's aliases with its session (persist.go).
			c.keepOverslept()
			c.l.g.log.Debug("client lost", "client_id", c.id, "remote", c.key.addr, "reason", "slept too long")
			c.setState(StateLost)
			c.l.removeClient(c)
			return
		}
		c.retry()
		if c.removed {
			return
		}
	}
	if ka := c.keepAliveAt(); ka != 0 && ka <= now {
		c.lose("keep-alive expired")
		return
	}
	c.l.schedule(c)
}

// refused counts a request the core refused; a refusal for one of the core's
// limits is also a limit hit, logged.
func (c *client) refused(err error) {
	c.l.g.stats.rejected.Add(1)
	if isDenied(err) {
		c.l.g.denied(c.id, c.key.addr, err)
	}
	if isBrokerLimit(err) {
		c.l.g.limitHit(LimitBroker, c.id, c.key.addr, err)
	}
}

// returnCode maps a core error to the MQTT-SN return code for the client:
// the one place where that mapping lives.
func returnCode(err error) sn.ReturnCode {
	switch {
	case err == nil:
		return sn.Accepted
	case errors.Is(err, mqttcore.ErrInflightFull), errors.Is(err, mqttcore.ErrTooManySessions),
		errors.Is(err, mqttcore.ErrQueueFull), errors.Is(err, mqttcore.ErrRetainedFull),
		errors.Is(err, mqttcore.ErrClosed), errors.Is(err, mqttcore.ErrCongestion),
		errors.Is(err, mqttcore.ErrStoreFailed), errors.Is(err, mqttcore.ErrUnavailable):
		return sn.RejectedCongestion
	}
	return sn.RejectedNotSupported
}

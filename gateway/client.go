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
type client struct {
	l     *loop
	key   clientKey
	node  []byte // Wireless Node Id behind a forwarder, or nil
	id    string // client id, once CONNECT arrived
	state State

	removed bool
	conn    *mqttcore.Conn // nil while asleep or during the will dialogue
	att     *attachment    // the FrontEnd of conn

	keepAlive time.Duration
	sleepFor  time.Duration
	lastSeen  int64 // UnixNano of the last datagram
	kaAt      int64 // keep-alive deadline in the timer heap, 0 if none
	retryAt   int64 // retry deadline in the timer heap, 0 if none
	sleepAt   int64 // sleep deadline in the timer heap, 0 if none

	topics   registry
	dialogue *dialogue // the will dialogue in progress, or nil
	out      outFlight // the one gateway-to-client exchange in progress
	regID    uint16    // the last REGISTER MsgId the gateway used
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
	if c.dialogue != nil {
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
		c.send(&sn.GWInfo{GatewayID: c.l.g.cfg.GatewayID})
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
func (c *client) send(m sn.Message) bool { return c.l.sendTo(c.key, c.node, m) }

// setState moves the client to s, logging the transition.
func (c *client) setState(s State) {
	if c.state == s {
		return
	}
	if c.l.g.log.Enabled(context.Background(), slog.LevelDebug) {
		c.l.g.log.Debug("state "+c.state.String()+" -> "+s.String(), "client_id", c.id, "remote", c.key.addr)
	}
	switch {
	case s == StateAsleep:
		c.l.g.stats.asleep.Add(1)
		c.indexAsleep(true)
	case c.state == StateAsleep:
		c.l.g.stats.asleep.Add(-1)
		c.indexAsleep(false)
	}
	c.state = s
}

// lose ends the client abnormally: its will is published.
func (c *client) lose(why string) {
	if c.conn != nil {
		_ = c.conn.Lost() // ErrDetached only: the session moved on already
		c.conn, c.att = nil, nil
	}
	c.l.g.log.Debug("client lost", "client_id", c.id, "remote", c.key.addr, "reason", why)
	c.setState(StateLost)
	c.l.removeClient(c)
}

// takenOver handles the core closing this client's attachment: the same
// client id connected elsewhere, or an administrator kicked it.
func (c *client) takenOver(reason error) {
	c.conn, c.att = nil, nil
	c.send(&c.l.tx.disconnect)
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

func (c *client) scheduleKeepAlive() {
	c.kaAt = 0
	if c.keepAlive == 0 {
		return
	}
	c.kaAt = c.lastSeen + int64(tolerance(c.keepAlive))
	c.l.timers.add(timerEntry{at: c.kaAt, c: c, kind: timerKeepAlive})
}

func (c *client) armRetry() {
	c.retryAt = c.l.now() + int64(c.l.g.cfg.RetryInterval)
	c.l.timers.add(timerEntry{at: c.retryAt, c: c, kind: timerRetry})
}

// timerFired handles a due heap entry; stale entries are ignored.
func (c *client) timerFired(kind uint8, at, now int64) {
	switch kind {
	case timerKeepAlive:
		if c.kaAt != at || c.state != StateActive {
			return
		}
		if due := c.lastSeen + int64(tolerance(c.keepAlive)); due > now {
			c.kaAt = due // heard from since: look again then
			c.l.timers.add(timerEntry{at: due, c: c, kind: timerKeepAlive})
			return
		}
		c.lose("keep-alive expired")
	case timerSleep:
		if c.sleepAt != at || c.state != StateAsleep {
			return
		}
		// The core's own sleep deadline publishes the will; the gateway
		// forgets the client.
		c.l.g.log.Debug("client lost", "client_id", c.id, "remote", c.key.addr, "reason", "slept too long")
		c.setState(StateLost)
		c.l.removeClient(c)
	case timerRetry:
		if c.retryAt != at {
			return
		}
		c.retryAt = 0
		c.retry()
	}
}

// refused counts a request the core refused; a refusal for one of the core's
// limits is also a limit hit, logged.
func (c *client) refused(err error) {
	c.l.g.stats.rejected.Add(1)
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
		errors.Is(err, mqttcore.ErrClosed):
		return sn.RejectedCongestion
	}
	return sn.RejectedNotSupported
}

package snclient

import (
	"context"
	"fmt"
	"time"

	"github.com/gannet-mqtt/gannet/snpacket"
)

// waitSpec says which answers the exchange in progress waits for.
type waitSpec struct {
	armed bool
	types uint32 // bit t set: a message of type t answers
	msgID uint16
	byID  bool // the answer must carry msgID
	// activity: every other message also restarts the retry timer
	// (CheckMessages, MQTT-SN 1.2 §6.14).
	activity bool
	// once: never retransmit; wait as long as the retransmissions would
	// (a 2.0 CONNECT, which the draft forbids retrying).
	once bool
	// name, when set, is the topic name a REGACK or SUBACK assigns an id
	// to. The reader records it before it reads the next datagram, which
	// may already be a PUBLISH with that id.
	name string
}

// typeSleepResp and typeAuth file a 2.0 SLEEPRESP and AUTH, which have no
// 1.2 twins, under MsgTypes that 1.2 reserves, so that waitSpec.types can
// name them.
const (
	typeSleepResp snpacket.MsgType = 0x1E
	typeAuth      snpacket.MsgType = 0x1F
)

// typeBit returns the waitSpec.types bit of message type t.
func typeBit(t snpacket.MsgType) uint32 {
	if t >= 32 {
		return 0
	}
	return 1 << t
}

// reply is the part of an answer an exchange needs: fixed-size values only,
// so nothing aliases the reader's buffer. A 2.0 answer is filed under the
// 1.2 type of the same name (a 2.0 PUBACK as TypePuback), so one waitSpec
// serves both versions; ptype and reason then hold what it said, and rc is
// Accepted exactly when reason is a success.
type reply struct {
	typ     snpacket.MsgType
	rc      snpacket.ReturnCode
	topicID uint16
	msgID   uint16
	qos     snpacket.QoS

	ptype  snpacket.PacketType // the 2.0 packet type, 0 for a 1.2 answer
	reason snpacket.ReasonCode // the 2.0 reason code
	// predefined: topicID is a 2.0 predefined alias, not to be recorded
	// as a session alias.
	predefined bool
	// sessionPresent is a 2.0 CONNACK's Session Present flag.
	sessionPresent bool
}

// arm makes w the answers the reader hands to the caller, dropping any stale
// answer of an earlier exchange.
func (c *Client) arm(w waitSpec) {
	c.mu.Lock()
	w.armed = true
	c.wait = w
	c.drainLocked()
	c.mu.Unlock()
}

// disarm stops the hand-over.
func (c *Client) disarm() {
	c.mu.Lock()
	c.wait = waitSpec{}
	c.drainLocked()
	c.mu.Unlock()
}

func (c *Client) drainLocked() {
	select {
	case <-c.replies:
	default:
	}
}

// offer hands r to the waiting exchange if it is an answer to it (or, for
// CheckMessages, a sign of activity) and reports whether r was the answer.
// A DISCONNECT answers every exchange.
func (c *Client) offer(r reply) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.wait
	if !w.armed {
		return false
	}
	if r.typ == snpacket.TypeDisconnect || w.types&typeBit(r.typ) != 0 && (!w.byID || w.msgID == r.msgID) {
		c.wait = waitSpec{}
		if w.name != "" && r.rc == snpacket.Accepted && r.topicID != 0 && r.topicID != 0xFFFF &&
			(r.typ == snpacket.TypeRegack || r.typ == snpacket.TypeSuback) {
			if r.predefined {
				c.learnPredefinedLocked(w.name, r.topicID)
			} else {
				c.storeTopicLocked(w.name, r.topicID)
			}
		}
		for { // replace a pending activity note: only this goroutine sends
			select {
			case c.replies <- r:
				return true
			default:
				c.drainLocked()
			}
		}
	}
	if w.activity {
		select {
		case c.replies <- r:
		default: // a note is already pending; one is enough
		}
	}
	return false
}

// exchange sends m and waits for an answer matching w, retransmitting m every
// RetryInterval (with *dup set, when dup is not nil) up to MaxRetries times
// (or, with w.once, waiting as long without retransmitting).
// When the retries run out, an active client is lost and the error wraps
// ErrNoResponse. A DISCONNECT from the gateway that w does not wait for ends
// the exchange with ErrGatewayDisconnected.
func (c *Client) exchange(ctx context.Context, op string, m outgoing, dup *bool, w waitSpec) (reply, error) {
	c.arm(w)
	defer c.disarm()
	if err := c.send(op, m); err != nil {
		return reply{}, err
	}
	if c.retry == nil {
		c.retry = time.NewTimer(c.opts.RetryInterval)
	} else {
		c.retry.Reset(c.opts.RetryInterval) // stopped: no stale tick is left in C (Go 1.23 timers)
	}
	t := c.retry
	defer t.Stop()
	for tries := 0; ; {
		select {
		case r := <-c.replies:
			if r.typ == snpacket.TypeDisconnect && w.types&typeBit(snpacket.TypeDisconnect) == 0 {
				err := fmt.Errorf("snclient: %s: waiting for an answer to %v: %w", op, typeName(m), ErrGatewayDisconnected)
				c.connectionEnded(StateDisconnected, err)
				return reply{}, err
			}
			if w.types&typeBit(r.typ) == 0 { // activity: restart T_retry
				t.Reset(c.opts.RetryInterval)
				tries = 0
				continue
			}
			return r, nil
		case <-t.C:
			if tries == c.opts.MaxRetries {
				err := fmt.Errorf("snclient: %s: no answer to %v from %v after %d retransmissions: %w",
					op, typeName(m), c.addr, tries, ErrNoResponse)
				if w.once {
					err = fmt.Errorf("snclient: %s: no answer to %v from %v within %v: %w",
						op, typeName(m), c.addr, time.Duration(tries+1)*c.opts.RetryInterval, ErrNoResponse)
				}
				c.gaveUp(err)
				return reply{}, err
			}
			tries++
			t.Reset(c.opts.RetryInterval)
			if w.once {
				continue
			}
			c.stats.retransmitted.Add(1)
			if dup != nil {
				*dup = true
			}
			if err := c.send(op, m); err != nil {
				return reply{}, err
			}
		case <-ctx.Done():
			return reply{}, fmt.Errorf("snclient: %s: waiting for an answer to %v: %w", op, typeName(m), ctx.Err())
		case <-c.closed:
			return reply{}, fmt.Errorf("snclient: %s: %w", op, ErrClosed)
		}
	}
}

// refused returns a *ReturnCodeError unless rc is Accepted.
func refused(op, topic string, t snpacket.MsgType, rc snpacket.ReturnCode) error {
	if rc == snpacket.Accepted {
		return nil
	}
	return &ReturnCodeError{Op: op, Topic: topic, Msg: t, Code: rc}
}

// refusedReply returns the refusal in answer r of either version, or nil.
func refusedReply(op, topic string, r reply) error {
	if r.ptype != 0 {
		if !r.reason.Failed() {
			return nil
		}
		return &ReasonCodeError{Op: op, Topic: topic, Packet: r.ptype, Code: r.reason}
	}
	return refused(op, topic, r.typ, r.rc)
}

// gaveUp handles an exchange that ran out of retries: an awake client goes
// back to sleep (MQTT-SN 1.2 §6.14), any other connection is lost.
func (c *Client) gaveUp(err error) {
	c.mu.Lock()
	if c.state == StateAwake {
		c.setStateLocked(StateAsleep)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.connectionEnded(StateLost, err)
}

package snclient

import (
	"context"
	"fmt"
	"time"

	"github.com/gannet-mqtt/gannet/snpacket"
)

// Connect sends CONNECT and waits for CONNACK, answering the gateway's
// WILLTOPICREQ and WILLMSGREQ with Options.Will (or the current will after
// UpdateWillTopic/UpdateWillMessage). A refusal is a *ReturnCodeError (for
// example errors.Is(err, ErrCongestion)). Connect works from every state:
// it also wakes a sleeping client for good and replaces a lost connection.
// A clean session (the default) forgets every registered topic id first.
// In MQTT-SN 2.0 the will travels in the CONNECT itself, the CONNECT is not
// retransmitted, and a refusal is a *ReasonCodeError.
func (c *Client) Connect(ctx context.Context) error {
	const op = "connect"
	if err := c.acquire(ctx, op); err != nil {
		return err
	}
	defer c.release()
	c.mu.Lock()
	if c.isClosed {
		c.mu.Unlock()
		return fmt.Errorf("snclient: %s: %w", op, ErrClosed)
	}
	c.stopKeepAliveLocked()
	will := c.will
	if !c.opts.PersistentSession {
		c.clearTopicsLocked()
	}
	c.mu.Unlock()
	if c.v2 {
		return c.connectV2(ctx, will)
	}

	var m snpacket.Message = &snpacket.Connect{
		Will:         will != nil,
		CleanSession: !c.opts.PersistentSession,
		Duration:     uint16(c.opts.KeepAlive / time.Second),
		ClientID:     []byte(c.opts.ClientID),
	}
	w := waitSpec{types: typeBit(snpacket.TypeConnack) | typeBit(snpacket.TypeWillTopicReq) | typeBit(snpacket.TypeWillMsgReq)}
	for {
		r, err := c.exchange(ctx, op, m, nil, w)
		if err != nil {
			return err
		}
		switch r.typ {
		case snpacket.TypeWillTopicReq:
			wt := &snpacket.WillTopic{} // the empty form: no will
			if will != nil {
				wt = &snpacket.WillTopic{QoS: will.QoS, Retain: will.Retain, Topic: []byte(will.Topic)}
			}
			m = wt
		case snpacket.TypeWillMsgReq:
			wm := &snpacket.WillMsg{}
			if will != nil {
				wm.Message = will.Message
			}
			m = wm
		case snpacket.TypeConnack:
			if err := refused(op, "", r.typ, r.rc); err != nil {
				return err
			}
			c.mu.Lock()
			c.setStateLocked(StateActive)
			if !c.isClosed {
				c.startKeepAliveLocked()
			}
			c.mu.Unlock()
			return nil
		}
	}
}

// Disconnect sends DISCONNECT and waits for the gateway's DISCONNECT. The
// client is disconnected afterwards even when the gateway does not answer
// (the error then wraps ErrNoResponse). The gateway keeps the session
// unless the next CONNECT asks for a clean one. In MQTT-SN 2.0 a DISCONNECT
// is never answered: Disconnect returns once it is sent.
func (c *Client) Disconnect(ctx context.Context) error {
	const op = "disconnect"
	if err := c.acquire(ctx, op); err != nil {
		return err
	}
	defer c.release()
	if err := c.checkState(op, StateActive, StateAsleep); err != nil {
		return err
	}
	if c.v2 {
		return c.disconnectV2()
	}
	c.mu.Lock()
	c.stopKeepAliveLocked()
	c.setStateLocked(StateDisconnected)
	c.mu.Unlock()
	_, err := c.exchange(ctx, op, &snpacket.Disconnect{}, nil, waitSpec{types: typeBit(snpacket.TypeDisconnect)})
	return err
}

// Sleep asks the gateway to buffer messages for d (DISCONNECT with
// Duration, MQTT-SN 1.2 §6.14) and waits for its DISCONNECT. d is a whole
// number of seconds, 1 s to 65535 s. The keep-alive stops; the client must
// call CheckMessages or Connect within d or the gateway considers it lost.
// Sleep from asleep changes the sleep duration.
//
// In MQTT-SN 2.0 Sleep sends SLEEPREQ (keeping the session topic aliases)
// and waits for SLEEPRESP; d may be up to 4294967295 s, and a refusal is a
// *ReasonCodeError.
func (c *Client) Sleep(ctx context.Context, d time.Duration) error {
	const op = "sleep"
	if c.v2 {
		return c.sleepV2(ctx, d)
	}
	if d < time.Second || d > 65535*time.Second || d%time.Second != 0 {
		return fmt.Errorf("snclient: %s: duration %v is not 1..65535 whole seconds: %w", op, d, ErrInvalidOption)
	}
	if err := c.acquire(ctx, op); err != nil {
		return err
	}
	defer c.release()
	if err := c.checkState(op, StateActive, StateAsleep); err != nil {
		return err
	}
	c.mu.Lock()
	c.stopKeepAliveLocked()
	c.mu.Unlock()
	m := &snpacket.Disconnect{HasDuration: true, Duration: uint16(d / time.Second)}
	if _, err := c.exchange(ctx, op, m, nil, waitSpec{types: typeBit(snpacket.TypeDisconnect)}); err != nil {
		c.mu.Lock()
		if c.state == StateActive && !c.isClosed {
			c.startKeepAliveLocked() // still connected: ctx ended the wait
		}
		c.mu.Unlock()
		return err
	}
	c.mu.Lock()
	c.setStateLocked(StateAsleep)
	c.mu.Unlock()
	return nil
}

// CheckMessages wakes a sleeping client to collect the messages the gateway
// buffered (MQTT-SN 1.2 §6.14): it sends PINGREQ with the client id; the
// handler receives the buffered messages, which are acknowledged as usual,
// until the gateway's PINGRESP ends the delivery and the client is asleep
// again. Every message from the gateway restarts the retry timer; when the
// gateway stays silent for MaxRetries retransmissions the client goes back
// to sleep and the error wraps ErrNoResponse. In MQTT-SN 2.0 the PINGREQ
// carries a Packet Identifier instead of the client id (the gateway knows
// the client by its address).
func (c *Client) CheckMessages(ctx context.Context) error {
	const op = "check messages"
	if err := c.acquire(ctx, op); err != nil {
		return err
	}
	defer c.release()
	c.mu.Lock()
	switch {
	case c.isClosed:
		c.mu.Unlock()
		return fmt.Errorf("snclient: %s: %w", op, ErrClosed)
	case c.state != StateAsleep:
		s := c.state
		c.mu.Unlock()
		return fmt.Errorf("snclient: %s: client is %v: %w", op, s, ErrNotAsleep)
	}
	c.setStateLocked(StateAwake)
	var ping outgoing = &snpacket.PingReq{ClientID: []byte(c.opts.ClientID)}
	if c.v2 {
		ping = &snpacket.PingReqV2{PacketID: c.nextMsgIDLocked()}
	}
	c.mu.Unlock()
	_, err := c.exchange(ctx, op, ping, nil, waitSpec{types: typeBit(snpacket.TypePingResp), activity: true})
	c.mu.Lock()
	if c.state == StateAwake {
		c.setStateLocked(StateAsleep)
	}
	c.mu.Unlock()
	return err
}

// UpdateWillTopic replaces the will topic, QoS and retain flag stored at the
// gateway (WILLTOPICUPD, answered by WILLTOPICRESP). An empty topic deletes
// the will, topic and message. The new will is also used by later Connects.
func (c *Client) UpdateWillTopic(ctx context.Context, topic string, qos snpacket.QoS, retain bool) error {
	const op = "update will topic"
	if qos < snpacket.QoS0 || qos > snpacket.QoS2 {
		return fmt.Errorf("snclient: %s: will QoS %v outside 0..2: %w", op, qos, ErrInvalidOption)
	}
	m := &snpacket.WillTopicUpd{QoS: qos, Retain: retain, Topic: []byte(topic)}
	if topic == "" {
		m = &snpacket.WillTopicUpd{}
	}
	if err := c.willUpdate(ctx, op, m, snpacket.TypeWillTopicResp); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if topic == "" {
		c.will = nil
		return nil
	}
	w := &Will{Topic: topic, QoS: qos, Retain: retain}
	if c.will != nil {
		w.Message = c.will.Message
	}
	c.will = w
	return nil
}

// UpdateWillMessage replaces the will message stored at the gateway
// (WILLMSGUPD, answered by WILLMSGRESP). The new message is also used by
// later Connects that have a will topic.
func (c *Client) UpdateWillMessage(ctx context.Context, msg []byte) error {
	const op = "update will message"
	msg = append([]byte(nil), msg...)
	if err := c.willUpdate(ctx, op, &snpacket.WillMsgUpd{Message: msg}, snpacket.TypeWillMsgResp); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.will != nil {
		w := *c.will
		w.Message = msg
		c.will = &w
	}
	return nil
}

func (c *Client) willUpdate(ctx context.Context, op string, m snpacket.Message, answer snpacket.MsgType) error {
	if c.v2 {
		return errUnsupportedV2(op) // 2.0 has no will update packets
	}
	if err := c.acquire(ctx, op); err != nil {
		return err
	}
	defer c.release()
	if err := c.checkState(op, StateActive); err != nil {
		return err
	}
	r, err := c.exchange(ctx, op, m, nil, waitSpec{types: typeBit(answer)})
	if err != nil {
		return err
	}
	return refused(op, "", r.typ, r.rc)
}

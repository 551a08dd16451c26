package gateway

import (
	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// The will: the dialogue that follows a CONNECT with the Will flag
// (WILLTOPICREQ, WILLTOPIC, WILLMSGREQ, WILLMSG, then CONNACK; §6.3), its
// retransmission, the will updates of a connected client (§6.4), and the
// deletion of a stored will that a new CONNECT replaces. The will itself is
// kept, and published, by the core session.

// dialogue is a will dialogue in progress; where it is (the dialogue
// dimension of the session state) follows from will.
//
// A dialogue lasts a few round trips after a 1.2 CONNECT and a client has
// at most one, so it waits in the loop's dialogues map (client.inDialogue
// says whether there is one) rather than costing every client a pointer.
type dialogue struct {
	cleanSession bool
	will         *mqttcore.Will // the topic, once WILLTOPIC arrived
	tries        int
}

// dialogue returns the will dialogue in progress, or nil.
func (c *client) dialogue() *dialogue {
	if !c.inDialogue {
		return nil
	}
	return c.l.dialogues[c]
}

// startDialogue begins the will dialogue of a CONNECT with the Will flag.
func (c *client) startDialogue(cleanSession bool) {
	c.setDialogue(&dialogue{cleanSession: cleanSession})
	c.send(&sn.WillTopicReq{})
	c.armRetry()
}

func (c *client) onWillTopic(m *sn.WillTopic) {
	d := c.dialogue()
	switch {
	case d == nil:
		c.unexpected(m) // a late duplicate after CONNACK
	case d.will != nil:
		c.send(&sn.WillMsgReq{}) // a duplicate: the client missed our request
	case len(m.Topic) == 0:
		// The empty WILLTOPIC: no will (and with CleanSession=0 it deletes
		// the stored one). No WILLMSG follows.
		c.connect(d.cleanSession, nil, false)
	default:
		c.setWillTopic(&mqttcore.Will{Topic: string(m.Topic), QoS: mqttcore.QoS(m.QoS), Retain: m.Retain})
		d.tries = 0
		c.send(&sn.WillMsgReq{})
		c.armRetry()
	}
}

func (c *client) onWillMsg(m *sn.WillMsg) {
	d := c.dialogue()
	if d == nil || d.will == nil {
		c.unexpected(m)
		return
	}
	d.will.Payload = clone(m.Message)
	c.connect(d.cleanSession, d.will, false)
}

// retryDialogue asks again for the will topic or message after
// retry_interval, or gives a client that stays silent up as lost.
func (c *client) retryDialogue() {
	d := c.dialogue()
	if d.tries++; d.tries > c.l.g.live().MaxRetries {
		// Active since its CONNECT and now silent: lost. A client that
		// was connected before this CONNECT is still attached to its
		// core session, which must not outlive the gateway's state.
		c.setDialogue(nil)
		c.lose("will dialogue abandoned")
		return
	}
	if d.will == nil {
		c.send(&sn.WillTopicReq{})
	} else {
		c.send(&sn.WillMsgReq{})
	}
	c.armRetry()
}

// dropStoredWill deletes the will stored in the client's core session
// without publishing it. A CONNECT with CleanSession=1 or with the Will
// flag deletes or replaces the stored will data (§6.3, spec notes B.2); the
// core, following MQTT, would publish the old will when an attachment is
// taken over or a session ended by a clean start. A session that is not
// attached here (asleep, or attached at the client's old address) is first
// taken over keeping its will, which publishes nothing.
func (c *client) dropStoredWill() {
	if c.conn == nil {
		if info, ok := c.l.g.broker.Session(c.id); !ok || !info.HasWill {
			return
		}
		if err := c.attach(false, nil, true); err != nil {
			return // the attach that follows reports the refusal
		}
	}
	_ = c.conn.SetWill(nil)
}

// onWillTopicUpd replaces the will topic, keeping the will message; an
// empty WILLTOPICUPD deletes the will (§6.4).
func (c *client) onWillTopicUpd(m *sn.WillTopicUpd) {
	var err error
	if len(m.Topic) == 0 {
		err = c.conn.SetWill(nil)
	} else {
		w := &mqttcore.Will{Topic: string(m.Topic), QoS: mqttcore.QoS(m.QoS), Retain: m.Retain}
		if old := c.conn.Will(); old != nil {
			w.Payload, w.Delay = old.Payload, old.Delay
		}
		err = c.conn.SetWill(w)
	}
	if err != nil {
		c.refused(err)
	}
	c.send(&sn.WillTopicResp{ReturnCode: returnCode(err)})
}

// onWillMsgUpd replaces the will message. Without a will topic there is no
// will to change, and the update is refused.
func (c *client) onWillMsgUpd(m *sn.WillMsgUpd) {
	old := c.conn.Will()
	if old == nil {
		c.l.g.stats.rejected.Add(1)
		c.send(&sn.WillMsgResp{ReturnCode: sn.RejectedNotSupported})
		return
	}
	w := *old
	w.Payload = clone(m.Message)
	err := c.conn.SetWill(&w)
	if err != nil {
		c.refused(err)
	}
	c.send(&sn.WillMsgResp{ReturnCode: returnCode(err)})
}

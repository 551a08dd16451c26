package benchfleet

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gannet-mqtt/gannet/snclient"
	"github.com/gannet-mqtt/gannet/snpacket"
)

// receiver returns a handler that records, for sensor i, every stamped
// message it receives.
func receiver(tr *Tracker, i int) snclient.Handler {
	return func(m snclient.Message) {
		_, seq, sent, err := ParseStamp(m.Payload)
		if err != nil {
			tr.foreign.Add(1)
			return
		}
		tr.DeliverStamp(uint32(i), seq, sent)
	}
}

// fanout runs the fanout scenario: one MQTT publisher, every sensor
// subscribed to its topic.
func (r *run) fanout(ctx context.Context) error {
	cfg := &r.cfg
	tr := NewTracker(cfg.Sensors, &r.lat, nil)
	topic, mqttTopic := cfg.groupTopic()
	qos := snpacket.QoS(cfg.QoS)
	clients := r.connectAll(ctx, false, func(i int) snclient.Handler { return receiver(tr, i) },
		func(ctx context.Context, i int, c *snclient.Client) error {
			_, err := c.Subscribe(ctx, topic, qos)
			return err
		})
	defer r.closeAll(clients)
	if cfg.TopicMode == TopicPredefined {
		r.note(fmt.Sprintf("predefined topic id %d must map to %q on the gateway", cfg.TopicID, mqttTopic))
	}
	receivers := uint64(r.rep.Connect.Connected)
	if receivers == 0 {
		return fmt.Errorf("fanout: no sensor connected and subscribed")
	}
	pub, err := dialMQTT(ctx, cfg.Broker, cfg.ClientPrefix+"pub", nil, r.errs.add)
	if err != nil {
		return err
	}
	defer pub.close()

	if err := r.barrier("connected"); err != nil {
		return err
	}
	cpu0, self0 := r.gatewayCPU(), selfCPU()
	start := time.Now()
	tl := r.newTimeline(start)
	tr.SetTimeline(tl)
	var sent, acked atomic.Uint64
	stop, release := stopAfter(ctx, cfg.Duration)
	defer release()
	total := int64(-1)
	if cfg.Count > 0 {
		total = int64(cfg.Count)
	}
	r.prog.start("sending", total)
	payload := r.fill()
	p := newPacer(cfg.Rate, start, 0, 1)
	for seq := uint64(0); cfg.Count == 0 || seq < uint64(cfg.Count); seq++ {
		if !p.wait(stop) {
			break
		}
		now := time.Now()
		// paho keeps the payload until the write; a fresh stamp per
		// message would race with a QoS 0 write in flight, so copy.
		Stamp(payload, 0, seq, now.UnixNano())
		err := pub.publish(ctx, mqttTopic, byte(cfg.QoS), append([]byte(nil), payload...))
		if err != nil {
			if isStop(err) {
				break
			}
			r.errs.add(err)
			continue
		}
		sent.Add(1)
		if cfg.QoS >= 1 {
			acked.Add(1)
		}
		tl.Sent(now)
		r.prog.add(1)
	}
	end := time.Now()
	r.setCPU(cpu0, r.gatewayCPU(), end.Sub(start))
	r.setBenchCPU(self0, end.Sub(start))
	r.drain(ctx, tr, sent.Load()*receivers)
	r.finish(tr, tl, sent.Load(), acked.Load(), sent.Load()*receivers, start, end)
	return nil
}

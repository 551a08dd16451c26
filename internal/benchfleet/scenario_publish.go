package benchfleet

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gannet-mqtt/gannet/snclient"
	"github.com/gannet-mqtt/gannet/snpacket"
)

// publish runs the publish scenario: every sensor publishes, the MQTT
// subscriber counts what arrives.
func (r *run) publish(ctx context.Context) error {
	cfg := &r.cfg
	tr := NewTracker(cfg.Sensors, &r.lat, nil)
	if cfg.Window > 0 {
		tr.SetWindow(cfg.Window)
		r.note(fmt.Sprintf("closed loop: at most %d messages per sensor in flight end to end", cfg.Window))
	}
	sub, err := dialMQTT(ctx, cfg.Broker, cfg.ClientPrefix+"sub", func(p []byte) { tr.Deliver(p) }, r.errs.add)
	if err != nil {
		return err
	}
	defer sub.close()
	subQoS := byte(max(cfg.QoS, 0))
	if cfg.SubQoS0 {
		subQoS = 0
		r.note("the MQTT subscriber subscribed at QoS 0 (-sub-qos0)")
	}
	if err := sub.subscribe(ctx, cfg.subFilter(), subQoS); err != nil {
		return err
	}

	var clients []*snclient.Client
	if cfg.QoS == -1 {
		clients = make([]*snclient.Client, cfg.Sensors)
		for i := range clients {
			c, err := r.newSensor(i, false, nil)
			if err != nil {
				r.closeAll(clients)
				return err
			}
			clients[i] = c
		}
		r.note("QoS -1: sensors publish without connecting; the gateway must enable [gateway.qos_minus_one]")
	} else {
		// Register up front, so no message's latency includes a REGISTER.
		var after func(ctx context.Context, i int, c *snclient.Client) error
		if cfg.TopicMode == TopicRegister {
			after = func(ctx context.Context, i int, c *snclient.Client) error {
				_, err := c.Register(ctx, cfg.sensorTopic(i).Name)
				return err
			}
		}
		clients = r.connectAll(ctx, false, nil, after)
	}
	defer r.closeAll(clients)
	if cfg.TopicMode == TopicPredefined {
		r.note(fmt.Sprintf("predefined topic id %d must map to a topic matching %q on the gateway", cfg.TopicID, cfg.subFilter()))
	}

	if err := r.barrier("connected"); err != nil {
		return err
	}
	r.sendPhase(ctx, tr, len(clients), func(i int, start time.Time, stop <-chan struct{}, tl *Timeline, sent, acked *atomic.Uint64) {
		if clients[i] != nil {
			r.sensorSend(ctx, i, clients[i], tr, start, stop, tl, sent, acked)
		}
	})
	return nil
}

// sendPhase runs the timed sending phase: send(i, ...) for each of n
// senders at once until Count messages or Duration, then the drain of what
// is still to arrive, and the report's totals and CPU times.
func (r *run) sendPhase(ctx context.Context, tr *Tracker, n int,
	send func(i int, start time.Time, stop <-chan struct{}, tl *Timeline, sent, acked *atomic.Uint64)) {
	cfg := &r.cfg
	cpu0, self0 := r.gatewayCPU(), selfCPU()
	start := time.Now()
	tl := r.newTimeline(start)
	tr.SetTimeline(tl)
	var sent, acked atomic.Uint64
	stop, release := stopAfter(ctx, cfg.Duration)
	defer release()
	total := int64(-1)
	if cfg.Count > 0 {
		total = int64(cfg.Count) * int64(cfg.Sensors)
	}
	r.prog.start("sending", total)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { // exits after Count messages, when stop closes, or on a fatal error
			defer wg.Done()
			send(i, start, stop, tl, &sent, &acked)
		}()
	}
	wg.Wait()
	end := time.Now()
	r.setCPU(cpu0, r.gatewayCPU(), end.Sub(start))
	r.setBenchCPU(self0, end.Sub(start))
	r.drain(ctx, tr, sent.Load())
	r.finish(tr, tl, sent.Load(), acked.Load(), sent.Load(), start, end)
}

// windowTimeout is how long a closed-loop sender waits for one of its
// messages to arrive before it assumes a loss and sends anyway.
const windowTimeout = time.Second

// sensorSend is one sensor's sending loop. Per message it stamps the reused
// payload and publishes it; at QoS -1 and 0 that allocates nothing.
func (r *run) sensorSend(ctx context.Context, i int, c *snclient.Client, tr *Tracker, start time.Time, stop <-chan struct{},
	tl *Timeline, sent, acked *atomic.Uint64) {
	cfg := &r.cfg
	payload := r.fill()
	topic := cfg.sensorTopic(i)
	qos := snpacket.QoS(cfg.QoS)
	p := newPacer(cfg.Rate, start, i, cfg.Sensors)
	var window *time.Timer
	if cfg.Window > 0 {
		window = time.NewTimer(time.Hour)
		window.Stop()
	}
	for seq := uint64(0); cfg.Count == 0 || seq < uint64(cfg.Count); seq++ {
		if !p.wait(stop) {
			return
		}
		if window != nil && !tr.Acquire(uint32(i), window, windowTimeout, stop) {
			return
		}
		now := time.Now()
		Stamp(payload, uint32(i), seq, now.UnixNano())
		err := c.Publish(ctx, topic, qos, false, payload)
		if qos >= snpacket.QoS1 {
			// At QoS 1 and 2 the PUBLISH went out even when no answer came.
			sent.Add(1)
			tl.Sent(now)
			r.prog.add(1)
			if err == nil {
				acked.Add(1)
			}
		} else if err == nil {
			sent.Add(1)
			tl.Sent(now)
			r.prog.add(1)
		}
		if err != nil {
			if isStop(err) {
				return
			}
			r.errs.add(fmt.Errorf("sensor %d: %w", i, err))
			if st := c.State(); qos >= snpacket.QoS0 && st != snclient.StateActive {
				return // the connection ended (lost or disconnected); do not spin
			}
		}
	}
}

package benchfleet

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// mqttPublish runs the mqtt-publish scenario, the ceiling of publish: each
// "sensor" is a paho.golang MQTT 5 client on its own TCP connection
// publishing straight to Config.Broker, with no gateway in the path. At
// QoS 1 and 2 a client waits for the broker's acknowledgement before its
// next message (one in flight, as an MQTT-SN sensor). The MQTT subscriber
// counts what arrives, as in publish.
func (r *run) mqttPublish(ctx context.Context) error {
	cfg := &r.cfg
	tr := NewTracker(cfg.Sensors, &r.lat, nil)
	if cfg.Window > 0 {
		tr.SetWindow(cfg.Window)
		r.note(fmt.Sprintf("closed loop: at most %d messages per client in flight end to end", cfg.Window))
	}
	r.note("mqtt-publish: paho.golang MQTT clients publish straight to the broker (no gateway)")
	sub, err := dialMQTT(ctx, cfg.Broker, cfg.ClientPrefix+"sub", func(p []byte) { tr.Deliver(p) }, r.errs.add)
	if err != nil {
		return err
	}
	defer sub.close()
	subQoS := byte(cfg.QoS)
	if cfg.SubQoS0 {
		subQoS = 0
		r.note("the MQTT subscriber subscribed at QoS 0 (-sub-qos0)")
	}
	if err := sub.subscribe(ctx, cfg.subFilter(), subQoS); err != nil {
		return err
	}

	r.prog.start("connecting", int64(cfg.Sensors))
	pubs := make([]*mqttClient, cfg.Sensors)
	connStart := time.Now()
	var connected atomic.Int64
	var connLat Histogram
	workers(cfg.Sensors, cfg.Concurrency, func(i int) bool {
		t0 := time.Now()
		c, err := dialMQTT(ctx, cfg.Broker, cfg.clientID(i), nil, r.errs.add)
		connLat.Record(time.Since(t0))
		if err != nil {
			r.errs.add(err)
			return ctx.Err() == nil
		}
		pubs[i] = c
		connected.Add(1)
		r.prog.add(1)
		return true
	})
	defer func() {
		var wg sync.WaitGroup
		for _, c := range pubs {
			if c != nil {
				wg.Add(1)
				go func() { // exits when the client has disconnected (bounded by close)
					defer wg.Done()
					c.close()
				}()
			}
		}
		wg.Wait()
	}()
	cr := &ConnectReport{Connected: int(connected.Load()), Failed: cfg.Sensors - int(connected.Load()),
		Seconds: time.Since(connStart).Seconds(), Latency: connLat.Summary()}
	if cr.Seconds > 0 {
		cr.PerSec = float64(cr.Connected) / cr.Seconds
	}
	r.rep.Connect = cr
	if err := r.barrier("connected"); err != nil {
		return err
	}

	r.sendPhase(ctx, tr, len(pubs), func(i int, start time.Time, stop <-chan struct{}, tl *Timeline, sent, acked *atomic.Uint64) {
		if pubs[i] != nil {
			r.mqttSend(ctx, i, pubs[i], tr, start, stop, tl, sent, acked)
		}
	})
	return nil
}

// mqttSend is one MQTT client's sending loop (see sensorSend).
func (r *run) mqttSend(ctx context.Context, i int, c *mqttClient, tr *Tracker, start time.Time, stop <-chan struct{},
	tl *Timeline, sent, acked *atomic.Uint64) {
	cfg := &r.cfg
	topic := cfg.Prefix + "/" + cfg.clientID(i)
	payload := r.fill() // reused: paho is done with it when publish returns
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
		err := c.publish(ctx, topic, byte(cfg.QoS), payload)
		sent.Add(1)
		tl.Sent(now)
		r.prog.add(1)
		if err == nil {
			acked.Add(1)
			continue
		}
		if isStop(err) {
			return
		}
		r.errs.add(fmt.Errorf("mqtt client %d: %w", i, err))
		return // paho's connection is gone or refusing: do not spin
	}
}

package benchfleet

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gannet-mqtt/gannet/snclient"
	"github.com/gannet-mqtt/gannet/snpacket"
)

// connectOnly runs connect-storm and idle: connect every sensor, measure
// the time it took and the gateway's memory, hold them (idle), close.
func (r *run) connectOnly(ctx context.Context) error {
	cfg := &r.cfg
	rss0 := r.gatewayRSS(ctx, false)
	cpu0 := r.gatewayCPU()
	start := time.Now()
	clients := r.connectAll(ctx, false, nil, nil)
	defer r.closeAll(clients)
	cpu1 := r.gatewayCPU()
	if err := r.barrier("connected"); err != nil {
		return err
	}
	if c := r.rep.Connect; c.Seconds > 0 {
		r.setCPU(cpu0, cpu1, time.Duration(c.Seconds*float64(time.Second)))
	} else {
		r.setCPU(cpu0, cpu1, time.Since(start))
	}
	rss1 := r.gatewayRSS(ctx, true)
	r.setRSS(rss0, rss1, r.rep.Connect.Connected)
	r.rep.Latency = r.rep.Connect.Latency
	r.rep.Histogram = nil
	if cfg.Scenario == ScenarioIdle && cfg.Hold > 0 {
		r.prog.start("holding", -1)
		t := time.NewTimer(cfg.Hold)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		alive := 0
		for _, c := range clients {
			if c != nil && c.State() == snclient.StateActive {
				alive++
			}
		}
		r.note(fmt.Sprintf("%d of %d sensors still active after holding %v", alive, r.rep.Connect.Connected, cfg.Hold))
	}
	if r.rep.Connect.Failed > 0 {
		return fmt.Errorf("%s: %d of %d sensors failed to connect", cfg.Scenario, r.rep.Connect.Failed, cfg.Sensors)
	}
	return nil
}

// sleepers runs the sleepers scenario: sensors connect with a persistent
// session, subscribe and sleep; the MQTT publisher sends Queued messages to
// their topic; the gateway's RSS is read; then every sensor wakes and
// collects.
func (r *run) sleepers(ctx context.Context) error {
	cfg := &r.cfg
	tr := NewTracker(cfg.Sensors, &r.lat, nil)
	topic, mqttTopic := cfg.groupTopic()
	qos := snpacket.QoS(cfg.QoS)
	rss0 := r.gatewayRSS(ctx, false)
	clients := r.connectAll(ctx, true, func(i int) snclient.Handler { return receiver(tr, i) },
		func(ctx context.Context, i int, c *snclient.Client) error {
			if _, err := c.Subscribe(ctx, topic, qos); err != nil {
				return err
			}
			return c.Sleep(ctx, cfg.SleepFor)
		})
	defer r.closeAll(clients)
	asleep := r.rep.Connect.Connected
	if err := r.barrier("asleep"); err != nil {
		return err
	}
	if asleep == 0 {
		return fmt.Errorf("sleepers: no sensor connected, subscribed and slept")
	}
	rssAsleep := r.gatewayRSS(ctx, true)

	publish, closePub, err := r.groupPublisher(ctx, topic, mqttTopic)
	if err != nil {
		return err
	}
	defer closePub()
	start := time.Now()
	tl := r.newTimeline(start)
	var sent, acked atomic.Uint64
	r.prog.start("queueing", int64(cfg.Queued))
	payload := r.fill()
	for seq := range uint64(cfg.Queued) {
		now := time.Now()
		Stamp(payload, 0, seq, now.UnixNano())
		if err := publish(payload); err != nil {
			r.errs.add(err)
			if isStop(err) {
				break
			}
			continue
		}
		sent.Add(1)
		acked.Add(1)
		tl.Sent(now)
		r.prog.add(1)
	}
	end := time.Now()
	if err := r.barrier("queued"); err != nil {
		return err
	}
	rss1 := r.gatewayRSS(ctx, true)
	r.setRSS(rss0, rss1, asleep)
	if g := r.rep.Gateway; g != nil {
		g.RSSAsleep = rssAsleep
		r.note(fmt.Sprintf("RSS per sleeping session with %d queued messages: %.0f bytes (asleep and empty: %.0f bytes)",
			cfg.Queued, g.RSSPerSession, (float64(rssAsleep)-float64(rss0))/float64(asleep)))
	}

	// Wake everyone and collect.
	tr.SetTimeline(tl)
	wakeStart := time.Now()
	r.prog.start("waking", int64(asleep))
	workers(len(clients), r.cfg.Concurrency, func(i int) bool {
		c := clients[i]
		if c == nil || ctx.Err() != nil {
			return ctx.Err() == nil
		}
		if err := c.CheckMessages(ctx); err != nil {
			r.errs.add(fmt.Errorf("sensor %d: %w", i, err))
		}
		r.prog.add(1)
		return true
	})
	r.note(fmt.Sprintf("waking all %d sleepers and collecting took %.3f s; latency includes the time asleep", asleep, time.Since(wakeStart).Seconds()))
	want := sent.Load() * uint64(asleep)
	r.drain(ctx, tr, want)
	r.finish(tr, tl, sent.Load(), acked.Load(), want, start, end)
	r.note("sessions are persistent: they stay in the gateway's core after the run; use a fresh --client-prefix or restart the gateway")
	return nil
}

// groupPublisher returns the sleepers' publisher: an MQTT client on
// Config.Broker, or, without a broker, one more MQTT-SN sensor publishing
// through the gateway (so sleepers can run against a gateway that has no
// MQTT listener).
func (r *run) groupPublisher(ctx context.Context, topic snclient.Topic, mqttTopic string) (func([]byte) error, func(), error) {
	cfg := &r.cfg
	if cfg.Broker != "" {
		pub, err := dialMQTT(ctx, cfg.Broker, cfg.ClientPrefix+"pub", nil, r.errs.add)
		if err != nil {
			return nil, nil, err
		}
		return func(p []byte) error {
			// paho may still hold the payload after returning; give it a copy.
			return pub.publish(ctx, mqttTopic, byte(cfg.QoS), append([]byte(nil), p...))
		}, pub.close, nil
	}
	conn, err := r.dialUDP(cfg.Sensors)
	if err != nil {
		return nil, nil, err
	}
	opts := r.clientOptions(cfg.Sensors, false, nil)
	opts.ClientID = cfg.ClientPrefix + "pub"
	c, err := snclient.New(conn, r.gw, opts)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("sleepers publisher: %w", err)
	}
	if err := c.Connect(ctx); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("sleepers publisher: %w", err)
	}
	r.note("sleepers: no -broker, so the messages were published by one more MQTT-SN sensor through the gateway")
	return func(p []byte) error {
			return c.Publish(ctx, topic, snpacket.QoS(cfg.QoS), false, p)
		}, func() {
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = c.Disconnect(dctx)
			cancel()
			c.Close()
		}, nil
}

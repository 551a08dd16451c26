package gateway_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/internal/sntest"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/snclient"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// TestE2EConcurrentQoS1 has 200 sensors publish 20 QoS 1 messages each,
// all at once, and checks that an MQTT client subscribed to their topics
// receives every message, in each sensor's order, exactly once.
//
// QoS 1 is at-least-once: a sensor that does not see its PUBACK within
// T_retry resends the PUBLISH with DUP set, and the gateway must pass the
// resend on (QoS 1 has no duplicate detection), so the subscriber may then
// see that message twice, as a new publication without DUP. On loopback
// nothing is lost and no sensor retransmits, so any duplicate beyond the
// sensors' own retransmissions (snclient Stats().Retransmitted) is a
// gateway or core fault, and so is a missing or reordered message.
func TestE2EConcurrentQoS1(t *testing.T) {
	t.Parallel()
	const clients, each = 200, 20
	ctx := sntest.Context(t)
	// The subscriber's core queue must hold the whole burst: a full queue
	// drops the oldest message, which is the core's documented policy
	// (max_queued) and not what this test is about.
	e := sntest.Start(t, sntest.Options{Core: mqttcore.Config{MaxQueued: 2 * clients * each}})
	app := e.MQTT(t, ctx, "app")
	app.Subscribe(t, ctx, 1, "e2e/load/#")

	sensors := make([]*sntest.Sensor, clients)
	for i := range sensors {
		sensors[i] = e.Sensor(t, ctx, snclient.Options{ClientID: fmt.Sprintf("load-%03d", i),
			RetryInterval: 5 * time.Second, MaxRetries: 4})
	}
	errs := make(chan error, clients)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, s := range sensors {
		wg.Add(1)
		go func() { // exits after its publishes or at the first error
			defer wg.Done()
			if err := s.Connect(ctx); err != nil {
				errs <- fmt.Errorf("sensor %d: Connect: %w", i, err)
				return
			}
			<-start
			topic := snclient.Named(fmt.Sprintf("e2e/load/%d", i))
			for j := range each {
				if err := s.Publish(ctx, topic, sn.QoS1, false, fmt.Appendf(nil, "%d/%d", i, j)); err != nil {
					errs <- fmt.Errorf("sensor %d: Publish %d: %w", i, j, err)
					return
				}
			}
		}()
	}
	began := time.Now()
	close(start)

	got := make(map[[2]int]int, clients*each)
	next := make([]int, clients) // the next sequence number expected from each sensor
	received, distinct := 0, 0
	for distinct < clients*each {
		select {
		case p := <-app.Msgs:
			var i, j int
			if _, err := fmt.Sscanf(string(p.Payload), "%d/%d", &i, &j); err != nil || i < 0 || i >= clients ||
				j < 0 || j >= each || p.Topic != fmt.Sprintf("e2e/load/%d", i) || p.QoS != 1 {
				t.Fatalf("unexpected message (%q, %q, qos %d)", p.Topic, p.Payload, p.QoS)
			}
			received++
			k := [2]int{i, j}
			if got[k]++; got[k] > 1 {
				continue
			}
			distinct++
			if j != next[i] {
				t.Errorf("sensor %d: message %d arrived when %d was next", i, j, next[i])
			}
			next[i] = j + 1
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatalf("after %v: %d of %d messages arrived (%d duplicates): %v\ngateway %+v\ncore %+v",
				time.Since(began), distinct, clients*each, received-distinct, ctx.Err(), e.Gateway.Stats(), e.Broker.Stats())
		}
	}
	elapsed := time.Since(began)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	// Anything still on its way arrives before a fence published now.
	app.Publish(t, ctx, "e2e/load/fence", 1, false, "fence")
	for p := app.Next(t, ctx); p.Topic != "e2e/load/fence"; p = app.Next(t, ctx) {
		received++ // a late duplicate
	}
	var retransmits uint64
	for _, s := range sensors {
		retransmits += s.Stats().Retransmitted
	}
	dups := received - distinct
	if uint64(dups) > retransmits {
		t.Errorf("%d duplicate deliveries, but the sensors retransmitted only %d times", dups, retransmits)
	}
	if n := app.Overflow.Load(); n > 0 {
		t.Errorf("MQTT client dropped %d messages: its buffer was full", n)
	}
	st := e.Gateway.Stats()
	if st.Rejected != 0 || st.Malformed != 0 {
		t.Errorf("gateway Stats() = %+v; want nothing rejected or malformed", st)
	}
	t.Logf("%d sensors x %d QoS 1 messages: %d delivered in %v (%.0f msg/s), %d duplicates, %d sensor retransmissions, gateway loop-full drops %d",
		clients, each, distinct, elapsed.Round(time.Millisecond), float64(distinct)/elapsed.Seconds(), dups, retransmits, st.LimitHits[gateway.LimitLoopQueue])
}

// TestE2EFanOut has an MQTT client publish 20 QoS 1 messages to a topic 100
// sensors subscribe to, and checks that every sensor receives every
// message once and in order. The gateway keeps one message in flight per
// sensor, so this drives 100 interleaved QoS 1 flows through its loops.
func TestE2EFanOut(t *testing.T) {
	t.Parallel()
	const sensors, msgs = 100, 20
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{})
	all := make([]*sntest.Sensor, sensors)
	for i := range all {
		all[i] = e.Connected(t, ctx, snclient.Options{ClientID: fmt.Sprintf("fan-%03d", i)})
		if _, err := all[i].Subscribe(ctx, snclient.Named("e2e/fan"), sn.QoS1); err != nil {
			t.Fatalf("sensor %d: Subscribe = %v", i, err)
		}
	}
	app := e.MQTT(t, ctx, "app")
	began := time.Now()
	for j := range msgs {
		app.Publish(t, ctx, "e2e/fan", 1, false, fmt.Sprint(j))
	}
	for i, s := range all {
		for j := range msgs {
			m := s.Next(t, ctx)
			if m.Topic != "e2e/fan" || string(m.Payload) != fmt.Sprint(j) || m.QoS != sn.QoS1 || m.Dup {
				t.Fatalf("sensor %d: message %d is (%q, %q, qos %v, dup %v); want (e2e/fan, %d, qos 1)",
					i, j, m.Topic, m.Payload, m.QoS, m.Dup, j)
			}
		}
	}
	elapsed := time.Since(began)
	if st := e.Gateway.Stats(); st.Retransmits != 0 {
		t.Errorf("gateway resent %d messages on loopback; want 0", st.Retransmits)
	}
	// Nothing more is on its way: one more message is each sensor's next.
	app.Publish(t, ctx, "e2e/fan", 1, false, "fence")
	for i, s := range all {
		if m := s.Next(t, ctx); string(m.Payload) != "fence" {
			t.Fatalf("sensor %d: received %q after the last message; want the fence", i, m.Payload)
		}
	}
	t.Logf("%d messages to %d sensors: %d QoS 1 deliveries in %v (%.0f/s)",
		msgs, sensors, msgs*sensors, elapsed.Round(time.Millisecond), float64(msgs*sensors)/elapsed.Seconds())
}

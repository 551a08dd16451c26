package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/snclient"
	"github.com/gannet-mqtt/gannet/snpacket"
)

// flowPhase is the length of each publishing phase of the flow-control
// tests with the gannet binary; docs/testing.md shows a longer run.
var flowPhase = flag.Duration("flow-phase", 4*time.Second,
	"TestServeFlowControl*: how long each publishing phase lasts (e.g. 2m for a soak)")

// flowRetry is the sensors' T_retry; the tests' hold_timeout is shorter.
const flowRetry = 7 * time.Second

// flowServe writes a config (MQTT-SN and MQTT on free loopback ports,
// $SYS every second, broker keys from broker) and starts gannet serve.
func flowServe(t *testing.T, broker string) (p *bridgeProc, udp, mqtt string) {
	t.Helper()
	dir := t.TempDir()
	gannet := bridgeBuildGannet(t, dir)
	udp = fmt.Sprintf("127.0.0.1:%d", bridgeFreePort(t, "udp"))
	mqtt = fmt.Sprintf("127.0.0.1:%d", bridgeFreePort(t, "tcp"))
	cfg := fmt.Sprintf(`[log]
level = "warn"

[[listen]]
network = "udp4"
address = %q

[broker]
sys_interval = "1s"
%s

[mqtt]
address = %q
`, udp, broker, mqtt)
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p = bridgeStart(t, gannet, "serve", "-config", path)
	// Serving once the MQTT listener accepts and the gateway answers a
	// SEARCHGW (it opens after the MQTT listener).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	procDial(t, ctx, p, mqtt).Close()
	flowGatewayUp(t, ctx, p, udp)
	return p, udp, mqtt
}

// flowGatewayUp sends SEARCHGW from an unconnected socket (which ignores
// ICMP port unreachable) until the gateway answers.
func flowGatewayUp(t *testing.T, ctx context.Context, p *bridgeProc, udp string) {
	t.Helper()
	to, err := net.ResolveUDPAddr("udp4", udp)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	probe, err := (&snpacket.SearchGW{}).AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	for ctx.Err() == nil {
		if _, err := c.WriteToUDP(probe, to); err != nil {
			t.Fatalf("probe %s: %v", udp, err)
		}
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond)) // one probe's wait; bounded by ctx
		if _, _, err := c.ReadFromUDP(buf); err == nil {
			return
		}
	}
	t.Fatalf("gannet's gateway did not answer SEARCHGW on %s\n%s", udp, p.out)
}

// flowSet is the set of payloads one subscriber received.
type flowSet struct {
	mu   sync.Mutex
	got  map[string]int
	n    atomic.Int64 // distinct
	dups atomic.Int64
}

func newFlowSet() *flowSet { return &flowSet{got: make(map[string]int)} }

func (s *flowSet) add(p string) {
	s.mu.Lock()
	s.got[p]++
	first := s.got[p] == 1
	s.mu.Unlock()
	if first {
		s.n.Add(1)
	} else {
		s.dups.Add(1)
	}
}

func (s *flowSet) has(p string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[p] > 0
}

// flowSubscriber connects a paho client to gannet's MQTT listener (retrying
// while gannet starts) and subscribes to filter at QoS 1. With ackRate > 0
// it acknowledges by hand at about ackRate messages per second, so the
// broker's in-flight window and then the session queue fill.
func flowSubscriber(t *testing.T, ctx context.Context, p *bridgeProc, addr, id, filter string, ackRate int) *flowSet {
	t.Helper()
	set := newFlowSet()
	conn := procDial(t, ctx, p, addr)
	pending := make(chan *paho.Publish, 1<<16)
	cfg := paho.ClientConfig{
		ClientID: id,
		Conn:     conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			set.add(string(pr.Packet.Payload))
			if ackRate > 0 {
				pending <- pr.Packet // at most the broker's in-flight window
			}
			return true, nil
		}},
	}
	if ackRate > 0 {
		cfg.EnableManualAcknowledgment = true
		cfg.SendAcksInterval = time.Millisecond
	}
	c := paho.NewClient(cfg)
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatalf("%s: connect: %v", id, err)
	}
	if ackRate > 0 {
		done := make(chan struct{})
		go func() { // the slow consumer; exits when the client or the test ends
			defer close(done)
			tick := time.NewTicker(time.Second / time.Duration(ackRate))
			defer tick.Stop()
			for {
				select {
				case <-tick.C:
				case <-c.Done():
					return
				case <-ctx.Done():
					return
				}
				select {
				case pb := <-pending:
					if err := c.Ack(pb); err != nil {
						return // the connection ended
					}
				default:
				}
			}
		}()
		t.Cleanup(func() { <-done })
	}
	t.Cleanup(func() { c.Disconnect(&paho.Disconnect{}) })
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}}); err != nil {
		t.Fatalf("%s: subscribe %s: %v", id, filter, err)
	}
	return set
}

// flowDropped reads $SYS/broker/publish/messages/dropped as published after
// the call: the retained value may be older, so it waits for the next one.
func flowDropped(t *testing.T, ctx context.Context, p *bridgeProc, addr string) int {
	t.Helper()
	vals := make(chan string, 4)
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := paho.NewClient(paho.ClientConfig{ClientID: "sys-reader", Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			select {
			case vals <- string(pr.Packet.Payload):
			default:
			}
			return true, nil
		}}})
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: "sys-reader", CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatalf("sys-reader: connect: %v", err)
	}
	defer c.Disconnect(&paho.Disconnect{})
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "$SYS/broker/publish/messages/dropped", QoS: 0}}}); err != nil {
		t.Fatalf("sys-reader: subscribe: %v", err)
	}
	var v string
	for range 2 { // the retained value, then one published after we asked
		select {
		case v = <-vals:
		case <-ctx.Done():
			t.Fatalf("no $SYS/broker/publish/messages/dropped from gannet\n%s", p.out)
		}
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("$SYS/broker/publish/messages/dropped = %q: %v", v, err)
	}
	return n
}

// flowGroup is a group of MQTT-SN sensors publishing QoS 1 open loop: each
// sends its next message as soon as the last one is acknowledged or
// refused.
type flowGroup struct {
	name    string
	sensors []*snclient.Client
	acked   sync.Map // payload -> struct{}
	nAcked  atomic.Int64
	refused sync.Map // payload -> time held before the refusal
	nRefuse atomic.Int64
	seq     atomic.Int64 // across phases, so payloads stay distinct
}

func flowSensors(t *testing.T, ctx context.Context, udp, name string, n int) *flowGroup {
	t.Helper()
	g := &flowGroup{name: name}
	for i := range n {
		g.sensors = append(g.sensors, flowSensor(t, ctx, udp, fmt.Sprintf("%s-%d", name, i), snclient.Options{}))
	}
	return g
}

// flowSensor connects an MQTT-SN client. Its T_retry is flowRetry, longer
// than the hold_timeout of these tests, so a held publish ends in its PUBACK
// or a refusal rather than the sensor giving up.
func flowSensor(t *testing.T, ctx context.Context, udp, id string, opts snclient.Options) *snclient.Client {
	t.Helper()
	opts.ClientID, opts.RetryInterval, opts.MaxRetries = id, flowRetry, 3
	// One socket and one Connect (which retransmits): a CONNECT from an
	// abandoned socket, arriving late, would take the session over.
	c, err := snclient.Dial(ctx, "udp4", udp, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", udp, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("sensor %s: connect: %v", id, err)
	}
	return c
}

// publish runs every sensor of g for d on topic prefix/<sensor> and returns
// how many messages were acknowledged in that time.
func (g *flowGroup) publish(t *testing.T, ctx context.Context, prefix string, d time.Duration, stopOnRefusal bool) int64 {
	t.Helper()
	before := g.nAcked.Load()
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for i, c := range g.sensors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			topic := snclient.Named(fmt.Sprintf("%s/%d", prefix, i))
			for time.Now().Before(end) && ctx.Err() == nil {
				payload := fmt.Sprintf("%s-%d-%d", g.name, i, g.seq.Add(1))
				start := time.Now()
				err := c.Publish(ctx, topic, snpacket.QoS1, false, []byte(payload))
				switch {
				case err == nil:
					g.acked.Store(payload, struct{}{})
					g.nAcked.Add(1)
				case errors.Is(err, snclient.ErrCongestion):
					g.refused.Store(payload, time.Since(start))
					g.nRefuse.Add(1)
					if stopOnRefusal {
						return
					}
				case ctx.Err() != nil:
					return
				default:
					t.Errorf("%s sensor %d: publish %s: %v", g.name, i, payload, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return g.nAcked.Load() - before
}

// flowWaitAll waits until set holds every payload g had acknowledged, and
// reports the first one missing if it never does.
func flowWaitAll(t *testing.T, ctx context.Context, who string, set *flowSet, g *flowGroup) {
	t.Helper()
	missing := func() (n int, first string) {
		g.acked.Range(func(k, _ any) bool {
			if !set.has(k.(string)) {
				if n++; first == "" {
					first = k.(string)
				}
			}
			return true
		})
		return n, first
	}
	for {
		n, first := missing()
		if n == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Errorf("%s never received %d of the %d messages acknowledged to sensor group %s (one: %s)",
				who, n, g.nAcked.Load(), g.name, first)
			return
		case <-time.After(50 * time.Millisecond): // poll the subscriber's set; bounded by ctx
		}
	}
}

// TestServeFlowControlSlowSubscriber runs the gannet binary with the default
// overflow = "backpressure". 100 MQTT-SN sensors publish QoS 1 open loop to
// flow/hot/<n>, which a fast MQTT subscriber and, in the second phase, a
// deliberately slow one (acknowledging about 1,000 msgs/s by hand, so its
// session queue fills) consume; 10 more sensors publish to the unrelated
// flow/cold/<n>. Every message a sensor got a PUBACK for reaches both
// subscribers, the broker drops none, and the cold sensors keep at least
// 30 % of the acknowledged rate they had in the first phase, without the
// slow subscriber.
func TestServeFlowControlSlowSubscriber(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gannet binary; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute+4**flowPhase)
	defer cancel()
	p, udp, mqtt := flowServe(t, `overflow = "backpressure"
hold_timeout = "5s"`)
	fast := flowSubscriber(t, ctx, p, mqtt, "fast", "flow/#", 0)
	hot := flowSensors(t, ctx, udp, "hot", 100)
	cold := flowSensors(t, ctx, udp, "cold", 10)

	phase := func(name string) (hotAcked, coldAcked int64) {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			hotAcked = hot.publish(t, ctx, "flow/hot", *flowPhase, false)
		}()
		coldAcked = cold.publish(t, ctx, "flow/cold", *flowPhase, false)
		wg.Wait()
		t.Logf("%s: %d hot and %d cold messages acknowledged in %v (%.0f and %.0f msgs/s)", name, hotAcked, coldAcked,
			*flowPhase, float64(hotAcked)/flowPhase.Seconds(), float64(coldAcked)/flowPhase.Seconds())
		return hotAcked, coldAcked
	}

	_, cold0 := phase("without the slow subscriber")
	slow := flowSubscriber(t, ctx, p, mqtt, "slow", "flow/hot/#", 1000)
	slowFrom := hot.seq.Load() // the slow subscriber is entitled to what follows
	hot1, cold1 := phase("with the slow subscriber")
	if cold0 == 0 {
		t.Fatalf("the cold sensors got no acknowledgement without the slow subscriber")
	}
	if cold1*10 < cold0*3 {
		t.Errorf("cold sensors: %d acknowledged with the slow subscriber, %d without; want at least 30 %%", cold1, cold0)
	}
	if hot1 == 0 {
		t.Errorf("no hot message acknowledged with the slow subscriber")
	}

	flowWaitAll(t, ctx, "the fast subscriber", fast, hot)
	flowWaitAll(t, ctx, "the fast subscriber", fast, cold)
	// The slow one subscribed between the phases: it is owed every hot
	// message acknowledged in the second.
	slowOwed := &flowGroup{name: "hot (second phase)"}
	hot.acked.Range(func(k, v any) bool {
		var sensor, seq int64
		if _, err := fmt.Sscanf(k.(string), "hot-%d-%d", &sensor, &seq); err == nil && seq > slowFrom {
			slowOwed.acked.Store(k, v)
			slowOwed.nAcked.Add(1)
		}
		return true
	})
	flowWaitAll(t, ctx, "the slow subscriber", slow, slowOwed)
	refusedDelivered := 0
	hot.refused.Range(func(k, _ any) bool {
		if fast.has(k.(string)) {
			refusedDelivered++
		}
		return true
	})
	if refusedDelivered > 0 {
		t.Errorf("%d messages refused with congestion were delivered anyway", refusedDelivered)
	}
	if n := flowDropped(t, ctx, p, mqtt); n != 0 {
		t.Errorf("$SYS/broker/publish/messages/dropped = %d; want 0", n)
	}
	t.Logf("slow subscriber: %d distinct (%d owed), %d duplicates; fast: %d distinct, %d duplicates; %d hot publishes refused with congestion",
		slow.n.Load(), slowOwed.nAcked.Load(), slow.dups.Load(), fast.n.Load(), fast.dups.Load(), hot.nRefuse.Load())
}

// TestServeFlowControlSleepingSubscriber runs the gannet binary with a
// sleeping MQTT-SN subscriber whose queue (max_queued = 100) fills: the
// publishers are held, then refused with "rejected: congestion" after
// hold_timeout, and when the sleeper wakes it gets every message that was
// acknowledged and none that was refused; afterwards publishing works again.
func TestServeFlowControlSleepingSubscriber(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gannet binary; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const maxQueued, hold = 100, time.Second
	p, udp, mqtt := flowServe(t, fmt.Sprintf("max_queued = %d\nhold_timeout = %q", maxQueued, hold.String()))

	got := newFlowSet()
	sleeper := flowSensor(t, ctx, udp, "sleeper", snclient.Options{PersistentSession: true,
		Handler: func(m snclient.Message) { got.add(string(bytes.Clone(m.Payload))) }})
	if _, err := sleeper.Subscribe(ctx, snclient.Named("flow/sleep/#"), snpacket.QoS1); err != nil {
		t.Fatalf("sleeper: %v\n%s", err, p.out)
	}
	if err := sleeper.Sleep(ctx, 5*time.Minute); err != nil {
		t.Fatal(err)
	}

	pubs := flowSensors(t, ctx, udp, "pub", 5)
	// Until each publisher's first refusal; the phase bound is only a
	// safety net (a queue of 100 fills in well under a second).
	pubs.publish(t, ctx, "flow/sleep", time.Minute, true)
	if n := pubs.nRefuse.Load(); n != int64(len(pubs.sensors)) {
		t.Errorf("%d publishes refused; want one per publisher (%d)", n, len(pubs.sensors))
	}
	pubs.refused.Range(func(k, v any) bool {
		if held := v.(time.Duration); held < hold*9/10 {
			t.Errorf("%s refused after %v; want it held for hold_timeout (%v) first", k, held, hold)
		}
		return true
	})
	if n := pubs.nAcked.Load(); n < maxQueued || n > 2*maxQueued {
		t.Errorf("%d publishes acknowledged for a sleeper with max_queued = %d; want %d to %d", n, maxQueued, maxQueued, 2*maxQueued)
	}
	if got.n.Load() != 0 {
		t.Errorf("the sleeper received %d messages while asleep", got.n.Load())
	}

	if err := sleeper.CheckMessages(ctx); err != nil {
		t.Fatalf("CheckMessages = %v", err)
	}
	// PINGRESP follows the whole queue: everything is here already.
	missing := 0
	pubs.acked.Range(func(k, _ any) bool {
		if !got.has(k.(string)) {
			missing++
		}
		return true
	})
	if missing > 0 {
		t.Errorf("%d of %d acknowledged messages did not reach the sleeper", missing, pubs.nAcked.Load())
	}
	pubs.refused.Range(func(k, _ any) bool {
		if got.has(k.(string)) {
			t.Errorf("%s was refused with congestion but delivered", k)
		}
		return true
	})
	if n, want := got.n.Load(), pubs.nAcked.Load(); n != want {
		t.Errorf("the sleeper got %d distinct messages; want the %d acknowledged", n, want)
	}
	// The queue drained: the publishers are acknowledged again.
	if err := pubs.sensors[0].Publish(ctx, snclient.Named("flow/sleep/0"), snpacket.QoS1, false, []byte("after the wake")); err != nil {
		t.Errorf("publish after the sleeper woke = %v; want it acknowledged", err)
	}
	if n := flowDropped(t, ctx, p, mqtt); n != 0 {
		t.Errorf("$SYS/broker/publish/messages/dropped = %d; want 0", n)
	}
	t.Logf("%d acknowledged, %d refused after being held; the sleeper got %d (%d duplicates)",
		pubs.nAcked.Load(), pubs.nRefuse.Load(), got.n.Load(), got.dups.Load())
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	dto "github.com/prometheus/client_model/go"

	"github.com/gannet-mqtt/gannet/internal/outside"
	"github.com/gannet-mqtt/gannet/snclient"
	"github.com/gannet-mqtt/gannet/snpacket"
)

// bridgeProc is a process the test starts, kills and waits for.
type bridgeProc struct {
	cmd  *exec.Cmd
	exit chan struct{}
	out  *bridgeLog
}

type bridgeLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *bridgeLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *bridgeLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func bridgeStart(t *testing.T, name string, args ...string) *bridgeProc {
	t.Helper()
	p := &bridgeProc{cmd: exec.Command(name, args...), exit: make(chan struct{}), out: new(bridgeLog)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { // exits with the process
		p.cmd.Wait()
		close(p.exit)
	}()
	t.Cleanup(p.kill)
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *bridgeProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exit
}

// bridgeServeConfig writes a gannet config to dir: MQTT-SN on a free UDP
// port, the MQTT listener off (its default port may be taken by another
// gannet on the machine), and one bridge "central" to a Mosquitto on a free
// TCP port with its queue in dir (its own file; with ownQueue false, in the
// core's store file, data/gannet.db). extra holds the bridge's other keys
// and its [[bridge.rule]] tables.
func bridgeServeConfig(t *testing.T, dir, extra string, ownQueue bool) (cfgPath, udp string, mport int) {
	t.Helper()
	mport = bridgeFreePort(t, "tcp")
	udp = fmt.Sprintf("127.0.0.1:%d", bridgeFreePort(t, "udp"))
	cfgPath = filepath.Join(dir, "config.toml")
	cfg := fmt.Sprintf(`[[listen]]
network = "udp4"
address = %q

[mqtt]
disabled = true

[[bridge]]
name = "central"
servers = ["mqtt://127.0.0.1:%d"]
%s
`, udp, mport, extra)
	if ownQueue {
		cfg += fmt.Sprintf("[bridge.queue]\npath = %q\n", filepath.Join(dir, "bridge.db"))
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, udp, mport
}

// TestServeBridgeSurvivesSIGKILL runs the gannet binary with a bridge to a
// Mosquitto that is down. Five MQTT-SN sensors publish 1,000 QoS 1
// messages each; gannet is killed with SIGKILL after the first 500 of each
// and restarted, and killed again after the rest. Then Mosquitto comes up
// with a subscriber, gannet starts, is SIGKILLed again in the middle of
// draining, and starts once more: every message a sensor got a PUBACK for
// arrives, in per-sensor order; duplicates are counted.
func TestServeBridgeSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gannet binary; skipped with -short")
	}
	mosquittoBin := outside.Program(t, "mosquitto", "mosquitto")
	dir := t.TempDir()
	gannet := bridgeBuildGannet(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	cfgPath, udp, mport := bridgeServeConfig(t, dir, `client_id = "gannet-edge-1"
session_expiry = "1h"
backoff_min = "20ms"
backoff_max = "200ms"

[[bridge.rule]]
pattern = "site/#"
direction = "out"
qos = 1
remote_prefix = "edge-1/"
`, false) // the queue shares the core's store: one commit for both
	// [http], for /metrics at the end.
	httpAddr := fmt.Sprintf("127.0.0.1:%d", bridgeFreePort(t, "tcp"))
	cfgText, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, fmt.Appendf(cfgText, "\n[http]\nenabled = true\naddress = %q\n", httpAddr), 0o600); err != nil {
		t.Fatal(err)
	}
	serve := func() *bridgeProc { return bridgeStart(t, gannet, "serve", "-config", cfgPath) }

	const sensors, each = 5, 1000
	publish := func(from, to int) {
		var wg sync.WaitGroup
		for s := range sensors {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := bridgeSensor(t, ctx, udp, fmt.Sprintf("sensor-%d", s))
				defer c.Close()
				topic := snclient.Named(fmt.Sprintf("site/s%d", s))
				for i := from; i < to; i++ {
					if err := c.Publish(ctx, topic, snpacket.QoS1, false, fmt.Appendf(nil, "%d %d", s, i)); err != nil {
						t.Errorf("sensor %d message %d: %v", s, i, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}

	p := serve()
	publish(0, each/2)
	p.kill()
	p = serve()
	publish(each/2, each)
	p.kill()

	m := bridgeMosquitto(t, mosquittoBin, dir, mport)
	msgs, _ := bridgeSubscriber(t, ctx, fmt.Sprintf("127.0.0.1:%d", mport), m, "edge-1/#")

	got := newInOrder(sensors, sensors*each)
	take := func(until int, proc *bridgeProc) { got.take(t, ctx, msgs, until, proc) }
	p = serve()
	take(sensors*each/3, p)
	p.kill() // in the middle of the drain
	p = serve()
	take(sensors*each, p)
	dups := got.dups
	t.Logf("%d messages from %d sensors arrived in order across three SIGKILLs; %d duplicates (QoS 1)", got.distinct, sensors, dups)
	// A crash re-sends at most the messages whose removal from the queue
	// was not yet on disk: the store lets at most queue.max_pending (256) such writes run ahead
	// (plus one batch being committed).
	if dups > 600 {
		t.Fatalf("%d duplicates after one SIGKILL during the drain; want at most about 512", dups)
	}
	// The last gannet's /metrics: the bridge is up and its queue, which
	// this process found on disk, is empty and nothing is in flight once
	// the remote acknowledged everything.
	var fams map[string]*dto.MetricFamily
	for {
		fams = scrape(t, "http://"+httpAddr)
		if value(t, fams, "gannet_bridge_up", "bridge", "central") == 1 && value(t, fams, "gannet_bridge_queue_messages", "bridge", "central") == 0 &&
			value(t, fams, "gannet_bridge_inflight_messages", "bridge", "central") == 0 {
			break
		}
		select { // poll an outside process; bounded by ctx
		case <-ctx.Done():
			t.Fatalf("the bridge's queue and in-flight window never showed empty in /metrics\n%s", p.out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, tc := range []struct {
		name   string
		labels []string
		ok     func(float64) bool
		want   string
	}{
		{"gannet_bridge_messages_sent_total", []string{"bridge", "central"}, func(v float64) bool { return v > 0 }, "> 0: it drained the queue it found"},
		{"gannet_bridge_messages_queued_total", []string{"bridge", "central"}, func(v float64) bool { return v == 0 }, "0: no sensor published to this process"},
		{"gannet_bridge_messages_dropped_total", []string{"bridge", "central", "reason", "oldest"}, func(v float64) bool { return v == 0 }, "0"},
		{"gannet_bridge_queue_oldest_age_seconds", []string{"bridge", "central"}, func(v float64) bool { return v == 0 }, "0 (empty)"},
		{"gannet_bridge_inflight_messages", []string{"bridge", "central"}, func(v float64) bool { return v == 0 }, "0"},
		{"gannet_store_commits_total", nil, func(v float64) bool { return v > 0 }, "> 0: the queue shares the core's store"},
	} {
		if got := value(t, fams, tc.name, tc.labels...); !tc.ok(got) {
			t.Errorf("%s%v = %v; want %s", tc.name, tc.labels, got, tc.want)
		}
	}
}

// bridgeBuildGannet builds the gannet binary into dir. It has its own
// time bound: a cold build cache (CI) compiles every dependency.
func bridgeBuildGannet(t *testing.T, dir string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	gannet := filepath.Join(dir, "gannet")
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if out, err := exec.CommandContext(ctx, goBin, "build", "-o", gannet, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return gannet
}

// bridgeMosquitto starts mosquitto on 127.0.0.1:port; extra lines go into
// its configuration.
func bridgeMosquitto(t *testing.T, bin, dir string, port int, extra ...string) *bridgeProc {
	t.Helper()
	mconf := filepath.Join(dir, "mosquitto.conf")
	mc := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n", port)
	for _, e := range extra {
		mc += e + "\n"
	}
	if os.Geteuid() == 0 {
		mc += "user root\n" // else it drops to user mosquitto, which cannot read the test's files
	}
	if err := os.WriteFile(mconf, []byte(mc), 0o600); err != nil {
		t.Fatal(err)
	}
	return bridgeStart(t, bin, "-c", mconf)
}

func bridgeFreePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// bridgeSensor connects an MQTT-SN client, retrying while gannet starts.
func bridgeSensor(t *testing.T, ctx context.Context, addr, id string) *snclient.Client {
	return sensorUp(t, ctx, addr, snclient.Options{ClientID: id, RetryInterval: 200 * time.Millisecond, MaxRetries: 10})
}

// sensorUp dials and connects an MQTT-SN client with opts, on a fresh socket
// for each try, while gannet starts. It reports a failure with t.Errorf and
// returns nil, so it may run on any goroutine.
func sensorUp(t *testing.T, ctx context.Context, addr string, opts snclient.Options) *snclient.Client {
	for {
		c, err := snclient.Dial(ctx, "udp4", addr, opts)
		if err != nil {
			t.Errorf("dial %s: %v", addr, err)
			return nil
		}
		actx, cancel := context.WithTimeout(ctx, time.Second)
		err = c.Connect(actx)
		cancel()
		if err == nil {
			return c
		}
		c.Close()
		if ctx.Err() != nil {
			t.Errorf("sensor %s could not connect: %v", opts.ClientID, err)
			return nil
		}
	}
}

// bridgeSubscriber connects a paho client to Mosquitto (retrying while it
// starts), subscribes to filter at QoS 1 and returns the payloads and the
// client.
func bridgeSubscriber(t *testing.T, ctx context.Context, addr string, m *bridgeProc, filter string) (<-chan string, *paho.Client) {
	t.Helper()
	msgs := make(chan string, 100000)
	conn := procDial(t, ctx, m, addr)
	c := paho.NewClient(paho.ClientConfig{
		ClientID: "central-app",
		Conn:     conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			msgs <- string(pr.Packet.Payload)
			return true, nil
		}},
	})
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: "central-app", CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect(&paho.Disconnect{}) })
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	return msgs, c
}

// TestServeBridgeCommandsReachSensor: a command published on the central
// Mosquitto comes in over the bridge's in rule and reaches an MQTT-SN
// sensor subscribed through the gateway.
func TestServeBridgeCommandsReachSensor(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gannet binary; skipped with -short")
	}
	mosquittoBin := outside.Program(t, "mosquitto", "mosquitto")
	dir := t.TempDir()
	gannet := bridgeBuildGannet(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfgPath, udp, mport := bridgeServeConfig(t, dir, `backoff_min = "20ms"
backoff_max = "200ms"

[[bridge.rule]]
pattern = "cmd/#"
direction = "in"
qos = 1
remote_prefix = "edge-1/"
`, true)
	m := bridgeMosquitto(t, mosquittoBin, dir, mport)
	_, central := bridgeSubscriber(t, ctx, fmt.Sprintf("127.0.0.1:%d", mport), m, "nothing")
	p := bridgeStart(t, gannet, "serve", "-config", cfgPath)

	got := make(chan snclient.Message, 10)
	var sensor *snclient.Client
	for sensor == nil {
		c, err := snclient.Dial(ctx, "udp4", udp, snclient.Options{ClientID: "valve-1", RetryInterval: 200 * time.Millisecond,
			Handler: func(m snclient.Message) {
				m.Payload = bytes.Clone(m.Payload) // it aliases the receive buffer
				got <- m
			}})
		if err != nil {
			t.Fatal(err)
		}
		actx, acancel := context.WithTimeout(ctx, time.Second)
		err = c.Connect(actx)
		acancel()
		if err == nil {
			sensor = c
			break
		}
		c.Close()
		if ctx.Err() != nil {
			t.Fatalf("sensor could not connect: %v\n%s", err, p.out)
		}
	}
	defer sensor.Close()
	if _, err := sensor.Subscribe(ctx, snclient.Named("cmd/valve-1/#"), snpacket.QoS1); err != nil {
		t.Fatal(err)
	}
	// The bridge subscribes on the remote once connected; publish until the
	// command gets through.
	for {
		if _, err := central.Publish(ctx, &paho.Publish{Topic: "edge-1/cmd/valve-1/open", QoS: 1, Payload: []byte("50%")}); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if m.Topic != "cmd/valve-1/open" || string(m.Payload) != "50%" {
				t.Fatalf("sensor got %q %q; want cmd/valve-1/open 50%%", m.Topic, m.Payload)
			}
			return
		case <-time.After(100 * time.Millisecond): // retry until the bridge's remote subscription is in place
		case <-ctx.Done():
			t.Fatalf("the command never reached the sensor\n%s", p.out)
		}
	}
}

// procDial dials addr over TCP, retrying while the process p (gannet or
// Mosquitto) starts; it fails the test if p exits or ctx ends first.
func procDial(t *testing.T, ctx context.Context, p *bridgeProc, addr string) net.Conn {
	t.Helper()
	for {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		switch {
		case err == nil:
			return c
		case ctx.Err() != nil:
			t.Fatalf("nothing accepted on %s: %v\n%s", addr, err, p.out)
		}
		select { // poll an outside process's port; bounded by ctx
		case <-p.exit:
			t.Fatalf("process exited:\n%s", p.out)
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}

// inOrder counts the "SENSOR SEQ" payloads a remote subscriber receives:
// each sensor's must arrive in order, a repeat of one already seen is a
// duplicate (QoS 1 allows them), a gap fails the test.
type inOrder struct {
	next           []int
	total          int
	dups, distinct int
}

func newInOrder(sensors, total int) *inOrder {
	return &inOrder{next: make([]int, sensors), total: total}
}

// take reads msgs until until distinct messages arrived, failing the test
// when ctx ends first (with proc's output).
func (o *inOrder) take(t *testing.T, ctx context.Context, msgs <-chan string, until int, proc *bridgeProc) {
	t.Helper()
	for o.distinct < until {
		var pl string
		select {
		case pl = <-msgs:
		case <-ctx.Done():
			t.Fatalf("%d of %d messages arrived (%d duplicates): %v\ngannet:\n%s", o.distinct, o.total, o.dups, ctx.Err(), proc.out)
		}
		f := strings.Fields(pl)
		s, _ := strconv.Atoi(f[0])
		i, _ := strconv.Atoi(f[1])
		switch {
		case i == o.next[s]:
			o.next[s]++
			o.distinct++
		case i < o.next[s]:
			o.dups++
		default:
			t.Fatalf("sensor %d: message %d arrived before %d (lost or out of order)", s, i, o.next[s])
		}
	}
}

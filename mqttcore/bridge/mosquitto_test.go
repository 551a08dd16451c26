package bridge_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	bolt "go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/internal/outside"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/bridge"
)

// freePort returns a free TCP port on 127.0.0.1.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// mosquitto is a broker process the test controls.
type mosquitto struct {
	t    testing.TB
	bin  string
	conf string
	port int
	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan struct{} // closed when cmd has exited
	log  *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for the process's writes and the
// test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// newMosquitto writes a configuration with a plain listener on a free
// port (plus extra lines) and starts the broker.
func newMosquitto(t testing.TB, extra string) *mosquitto {
	t.Helper()
	m := &mosquitto{t: t, bin: outside.Program(t, "mosquitto", "mosquitto"), port: freePort(t)}
	m.conf = filepath.Join(t.TempDir(), "mosquitto.conf")
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n", m.port)
	if os.Geteuid() == 0 {
		conf += "user root\n" // else it drops to user mosquitto, which cannot read the test's files
	}
	conf += extra
	if err := os.WriteFile(m.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.stop)
	return m
}

func (m *mosquitto) url() string { return fmt.Sprintf("mqtt://127.0.0.1:%d", m.port) }

// start runs mosquitto and waits until its port accepts connections.
func (m *mosquitto) start(ports ...int) {
	m.t.Helper()
	m.mu.Lock()
	m.log = new(syncBuffer)
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		m.mu.Unlock()
		m.t.Fatalf("start mosquitto: %v", err)
	}
	exit, cmd := make(chan struct{}), m.cmd
	m.exit = exit
	go func() { // exits when the process does
		cmd.Wait()
		close(exit)
	}()
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, p := range append([]int{m.port}, ports...) {
		for {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err == nil {
				c.Close()
				break
			}
			if ctx.Err() != nil {
				m.stop()
				m.t.Fatalf("mosquitto did not accept on port %d within 10s: %s", p, m.log)
			}
			select { // poll an outside process's port; bounded by ctx
			case <-ctx.Done():
			case <-exit:
				m.t.Fatalf("mosquitto exited: %s", m.log)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

// stop kills mosquitto (if running) and waits for it.
func (m *mosquitto) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Kill()
	<-m.exit
	m.cmd = nil
}

// signal sends sig to mosquitto (SIGSTOP and SIGCONT pause and resume it).
func (m *mosquitto) signal(sig os.Signal) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		m.cmd.Process.Signal(sig)
	}
}

// newCore returns a broker core closed at cleanup.
func newCore(t testing.TB) *mqttcore.Broker {
	t.Helper()
	b, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// remoteClient is a paho.golang client on the remote broker.
type remoteClient struct {
	c    *paho.Client
	msgs chan *paho.Publish
}

// bufferedConn buffers a test client's reads (paho reads each packet in
// several small reads) and its writes: paho takes the lock around each
// packet it writes in pieces, and the packet goes out in one write when it
// lets go.
type bufferedConn struct {
	net.Conn
	mu     sync.Mutex
	locked bool
	r      *bufio.Reader
	w      *bufio.Writer
}

func newBufferedConn(c net.Conn) *bufferedConn {
	return &bufferedConn{Conn: c, r: bufio.NewReader(c), w: bufio.NewWriter(c)}
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Lock starts a packet.
func (c *bufferedConn) Lock() {
	c.mu.Lock()
	c.locked = true
}

// Unlock writes the packet out.
func (c *bufferedConn) Unlock() {
	c.w.Flush()
	c.locked = false
	c.mu.Unlock()
}

// Write buffers under the lock; a write without it goes straight out.
func (c *bufferedConn) Write(p []byte) (int, error) {
	if c.locked {
		return c.w.Write(p)
	}
	return c.Conn.Write(p)
}

// dialRemote connects a paho client to addr ("127.0.0.1:port").
func dialRemote(t testing.TB, ctx context.Context, addr, id string) *remoteClient {
	t.Helper()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial remote %s: %v", addr, err)
	}
	rc := &remoteClient{msgs: make(chan *paho.Publish, 200000)}
	rc.c = paho.NewClient(paho.ClientConfig{
		ClientID: id,
		Conn:     newBufferedConn(conn),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			rc.msgs <- pr.Packet
			return true, nil
		}},
	})
	if _, err := rc.c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatalf("connect remote client %s: %v", id, err)
	}
	t.Cleanup(func() { rc.c.Disconnect(&paho.Disconnect{}) })
	return rc
}

func (rc *remoteClient) subscribe(t testing.TB, ctx context.Context, filter string, qos byte) {
	t.Helper()
	if _, err := rc.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: qos}}}); err != nil {
		t.Fatalf("subscribe %s: %v", filter, err)
	}
}

func (rc *remoteClient) publish(t testing.TB, ctx context.Context, topic string, qos byte, payload string) {
	t.Helper()
	if _, err := rc.c.Publish(ctx, &paho.Publish{Topic: topic, QoS: qos, Payload: []byte(payload)}); err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
}

// next waits for the next message.
func (rc *remoteClient) next(t testing.TB, ctx context.Context) *paho.Publish {
	t.Helper()
	select {
	case p := <-rc.msgs:
		return p
	case <-ctx.Done():
		t.Fatalf("no message on the remote client: %v", ctx.Err())
		return nil
	}
}

// nextLocal waits for the next message on a core channel subscription.
func nextLocal(t testing.TB, ctx context.Context, ch <-chan *mqttcore.Message) *mqttcore.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-ctx.Done():
		t.Fatalf("no message in the core: %v", ctx.Err())
		return nil
	}
}

// testLogger returns a logger that writes to the test log and to records.
func testLogger(t testing.TB) (*slog.Logger, *logRecords) {
	lr := &logRecords{ch: make(chan string, 1000)}
	h := slog.NewTextHandler(lr, &slog.HandlerOptions{Level: slog.LevelInfo})
	return slog.New(h), lr
}

// logRecords collects log lines.
type logRecords struct {
	mu    sync.Mutex
	lines []string
	ch    chan string
}

func (l *logRecords) Write(p []byte) (int, error) {
	s := strings.TrimSpace(string(p))
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
	select {
	case l.ch <- s:
	default:
	}
	return len(p), nil
}

// waitFor waits for a log line containing all of parts.
func (l *logRecords) waitFor(t testing.TB, ctx context.Context, parts ...string) string {
	t.Helper()
	for {
		select {
		case s := <-l.ch:
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(s, p)
			}
			if ok {
				return s
			}
		case <-ctx.Done():
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("no log line with %q: %v; lines:\n%s", parts, ctx.Err(), strings.Join(l.lines, "\n"))
			return ""
		}
	}
}

func testConfig(t testing.TB, name, server string, rules ...bridge.Rule) bridge.Config {
	return bridge.Config{
		Name:       name,
		Servers:    []string{server},
		BackoffMin: 20 * time.Millisecond,
		BackoffMax: 200 * time.Millisecond,
		Rules:      rules,
		Queue:      bridge.QueueConfig{Path: filepath.Join(t.TempDir(), name+".db")},
	}
}

func newBridge(t testing.TB, cfg bridge.Config, core *mqttcore.Broker, log *slog.Logger) *bridge.Bridge {
	t.Helper()
	b, err := bridge.New(cfg, core, bridge.Options{Logger: log})
	if err != nil {
		t.Fatalf("bridge.New: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBridgeDirectionsAndRemapping(t *testing.T) {
	m := newMosquitto(t, "")
	m.start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	core := newCore(t)
	cfg := testConfig(t, "central", m.url(),
		bridge.Rule{Pattern: "sensors/#", Direction: bridge.Out, QoS: 1, RemotePrefix: "site-7/"},
		bridge.Rule{Pattern: "cmd/#", Direction: bridge.In, QoS: 1, RemotePrefix: "central/"},
		bridge.Rule{Pattern: "chat/#", Direction: bridge.Both, QoS: 2, LocalPrefix: "loc/", RemotePrefix: "rem/"},
	)
	log, _ := testLogger(t)
	b := newBridge(t, cfg, core, log)
	if err := b.AwaitConnection(ctx); err != nil {
		t.Fatal(err)
	}
	remote := dialRemote(t, ctx, fmt.Sprintf("127.0.0.1:%d", m.port), "watcher")
	local := make(chan *mqttcore.Message, 100)
	if _, err := core.Inline("app").SubscribeChan("#", mqttcore.SubOptions{QoS: 2}, local); err != nil {
		t.Fatal(err)
	}
	sensor := core.Inline("sensor-1")

	// The bridge subscribes on the remote after connecting; wait until an
	// inbound message gets through before testing the rest.
	for got := false; !got; {
		remote.publish(t, ctx, "central/cmd/ping", 1, "ping")
		select {
		case m := <-local:
			got = m.Topic == "cmd/ping"
		case <-time.After(100 * time.Millisecond): // retry until the remote subscription is in place
		case <-ctx.Done():
			t.Fatal("inbound rule never delivered")
		}
	}
	// Retried pings may still be on their way: a fence through the same
	// path, in order behind them, drains them.
	remote.publish(t, ctx, "central/cmd/fence", 1, "fence")
	for nextLocal(t, ctx, local).Topic != "cmd/fence" {
	}
	remote.subscribe(t, ctx, "#", 2)

	// out: sensors/# -> site-7/sensors/#, QoS capped at 1.
	if err := sensor.Publish(&mqttcore.Message{Topic: "sensors/t1", Payload: []byte("21.5"), QoS: 2}); err != nil {
		t.Fatal(err)
	}
	nextLocal(t, ctx, local) // the app sees the local message too
	p := remote.next(t, ctx)
	if p.Topic != "site-7/sensors/t1" || string(p.Payload) != "21.5" || p.QoS != 1 {
		t.Fatalf("remote got %q %q QoS %d; want site-7/sensors/t1 21.5 QoS 1", p.Topic, p.Payload, p.QoS)
	}
	// in: central/cmd/# -> cmd/#.
	remote.publish(t, ctx, "central/cmd/valve", 1, "open")
	if p := remote.next(t, ctx); p.Topic != "central/cmd/valve" {
		t.Fatalf("remote watcher got %q; want its own central/cmd/valve", p.Topic)
	}
	if m := nextLocal(t, ctx, local); m.Topic != "cmd/valve" || string(m.Payload) != "open" || m.Origin != bridge.InlineName("central") {
		t.Fatalf("core got %q %q origin %q; want cmd/valve open from %q", m.Topic, m.Payload, m.Origin, bridge.InlineName("central"))
	}
	// both, out: loc/chat/a -> rem/chat/a.
	sensor.Publish(&mqttcore.Message{Topic: "loc/chat/a", Payload: []byte("hi"), QoS: 1})
	nextLocal(t, ctx, local)
	if p := remote.next(t, ctx); p.Topic != "rem/chat/a" || string(p.Payload) != "hi" {
		t.Fatalf("remote got %q %q; want rem/chat/a hi", p.Topic, p.Payload)
	}
	// both, in: rem/chat/b -> loc/chat/b, and not sent back out.
	remote.publish(t, ctx, "rem/chat/b", 2, "yo") // QoS 2 in: PUBREC kept in the session store
	if p := remote.next(t, ctx); p.Topic != "rem/chat/b" {
		t.Fatalf("remote got %q; want rem/chat/b", p.Topic)
	}
	if m := nextLocal(t, ctx, local); m.Topic != "loc/chat/b" || string(m.Payload) != "yo" {
		t.Fatalf("core got %q %q; want loc/chat/b yo", m.Topic, m.Payload)
	}
	// both, out at QoS 2 (the rule's cap): PUBLISH and PUBREL through the
	// session store.
	sensor.Publish(&mqttcore.Message{Topic: "loc/chat/q2", Payload: []byte("once"), QoS: 2})
	nextLocal(t, ctx, local)
	if p := remote.next(t, ctx); p.Topic != "rem/chat/q2" || p.QoS != 2 {
		t.Fatalf("remote got %q QoS %d; want rem/chat/q2 QoS 2", p.Topic, p.QoS)
	}
	// A sentinel through the same path: anything echoed would arrive first.
	sensor.Publish(&mqttcore.Message{Topic: "loc/chat/end", QoS: 1})
	nextLocal(t, ctx, local)
	if p := remote.next(t, ctx); p.Topic != "rem/chat/end" {
		t.Fatalf("remote got %q before the sentinel: the bridge looped a message back", p.Topic)
	}
	// QoS 0 is queued without waiting for the disk, still in order.
	sensor.Publish(&mqttcore.Message{Topic: "sensors/q0", Payload: []byte("fast")})
	if p := remote.next(t, ctx); p.Topic != "site-7/sensors/q0" || p.QoS != 0 {
		t.Fatalf("remote got %q QoS %d; want site-7/sensors/q0 QoS 0", p.Topic, p.QoS)
	}
	// Not matching any rule: not forwarded.
	sensor.Publish(&mqttcore.Message{Topic: "other/x", QoS: 1})
	sensor.Publish(&mqttcore.Message{Topic: "sensors/end", QoS: 1})
	if p := remote.next(t, ctx); p.Topic != "site-7/sensors/end" {
		t.Fatalf("remote got %q; want site-7/sensors/end (other/x matches no rule)", p.Topic)
	}
	st := b.Stats()
	if st.LoopsPrevented != 1 || st.Received < 3 || st.Forwarded != 6 || !st.Connected {
		t.Fatalf("stats = %+v; want LoopsPrevented 1, Received >= 3, Forwarded 6, Connected", st)
	}
}

func TestBridgeSysTopics(t *testing.T) {
	m := newMosquitto(t, "")
	m.start()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	core := newCore(t)
	cfg := testConfig(t, "sys", m.url(), bridge.Rule{Pattern: "a/#", Direction: bridge.Out, QoS: 1})
	cfg.SysInterval = 100 * time.Millisecond
	ch := make(chan *mqttcore.Message, 100)
	if _, err := core.Inline("app").SubscribeChan("$SYS/broker/bridge/sys/messages/queued", mqttcore.SubOptions{}, ch); err != nil {
		t.Fatal(err)
	}
	b := newBridge(t, cfg, core, nil)
	core.Inline("s").Publish(&mqttcore.Message{Topic: "a/1", QoS: 1})
	for {
		m := nextLocal(t, ctx, ch)
		if string(m.Payload) == "1" {
			break
		}
	}
	if got := b.SysTopics(b.Stats())["$SYS/broker/bridge/sys/queue/messages"]; got == "" {
		t.Fatal("SysTopics has no queue/messages")
	}
}

// TestBridgeRefusesNonMQTT5: a broker that answers with an MQTT 3.1.1
// CONNACK (return code 1) or an MQTT 5 CONNACK with reason 0x84 is logged
// as refusing MQTT 5, naming its URL.
func TestBridgeRefusesNonMQTT5(t *testing.T) {
	tests := []struct {
		name    string
		connack []byte
		want    string
	}{
		{"3.1.1 broker", []byte{0x20, 0x02, 0x00, 0x01}, "unacceptable protocol version"},
		{"mqtt5 0x84", []byte{0x20, 0x03, 0x00, 0x84, 0x00}, "0x84"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			defer wg.Wait() // after the listener closes (defers run last-in first-out)
			defer l.Close()
			wg.Add(1)
			go func() { // exits when the listener closes
				defer wg.Done()
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					c.SetDeadline(time.Now().Add(5 * time.Second))
					buf := make([]byte, 512)
					c.Read(buf) // the CONNECT
					c.Write(tc.connack)
					c.Close()
				}
			}()
			url := "mqtt://" + l.Addr().String()
			log, lr := testLogger(t)
			cfg := testConfig(t, "old", url, bridge.Rule{Pattern: "#", Direction: bridge.Out, QoS: 1})
			b := newBridge(t, cfg, newCore(t), log)
			line := lr.waitFor(t, ctx, "refused MQTT 5", url, tc.want)
			t.Logf("logged: %s", line)
			b.Close()
			l.Close()
		})
	}
}

// publishN publishes n QoS 1 messages from each of pubs publishers,
// concurrently, payload "<publisher> <seq>".
func publishN(t testing.TB, core *mqttcore.Broker, pubs, n int, payload int) {
	t.Helper()
	var wg sync.WaitGroup
	pad := strings.Repeat("x", payload)
	for p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := core.Inline(fmt.Sprintf("sensor-%d", p))
			for i := range n {
				m := &mqttcore.Message{Topic: fmt.Sprintf("site/s%d", p), QoS: 1, Payload: fmt.Appendf(nil, "%d %d %s", p, i, pad)}
				if err := in.Publish(m); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// checkArrivals reads messages until want distinct ones arrived and checks
// per-publisher order, starting at message first (or, if first < 0, at
// whichever arrives first); it returns the duplicates seen and the next
// message number expected of each publisher.
func checkArrivals(t testing.TB, ctx context.Context, rc *remoteClient, pubs, want int, first int, early ...*paho.Publish) (dups int, next []int) {
	t.Helper()
	next = make([]int, pubs)
	for i := range next {
		next[i] = first
	}
	distinct := 0
	for distinct < want {
		var p *paho.Publish
		if len(early) > 0 {
			p, early = early[0], early[1:]
		} else {
			select {
			case p = <-rc.msgs:
			case <-ctx.Done():
				t.Fatalf("%d of %d messages arrived (%d duplicates): %v", distinct, want, dups, ctx.Err())
			}
		}
		f := strings.Fields(string(p.Payload))
		pub, _ := strconv.Atoi(f[0])
		seq, _ := strconv.Atoi(f[1])
		if next[pub] < 0 {
			next[pub] = seq
		}
		switch {
		case seq == next[pub]:
			next[pub]++
			distinct++
		case seq < next[pub]:
			dups++ // QoS 1 allows it: re-sent after the restart
		default:
			t.Fatalf("publisher %d: message %d arrived before %d: out of order or lost", pub, seq, next[pub])
		}
	}
	return dups, next
}

// TestBridgeOutageAndRestart: 5,000 QoS 1 messages published while the
// remote broker is down, the bridge and core closed and reopened from the
// same file, then the broker comes back: all arrive, in per-publisher
// order; duplicates are counted.
func TestBridgeOutageAndRestart(t *testing.T) {
	m := newMosquitto(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const pubs, each = 10, 500
	cfg := testConfig(t, "up", m.url(), bridge.Rule{Pattern: "site/#", Direction: bridge.Out, QoS: 1, RemotePrefix: "edge-1/"})
	cfg.SessionExpiry = time.Hour

	core1, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b1, err := bridge.New(cfg, core1, bridge.Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	publishN(t, core1, pubs, each, 32)
	t.Logf("%d messages queued in %v", pubs*each, time.Since(start))
	if st := b1.Stats(); st.Depth != pubs*each || st.Connected {
		t.Fatalf("after publishing with the remote down: Depth %d Connected %v; want %d false", st.Depth, st.Connected, pubs*each)
	}
	// The process stops.
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	core1.Close()

	m.start()
	remote := dialRemote(t, ctx, fmt.Sprintf("127.0.0.1:%d", m.port), "central-app")
	remote.subscribe(t, ctx, "edge-1/#", 1)

	// The process starts again with the same queue file.
	core2 := newCore(t)
	b2 := newBridge(t, cfg, core2, nil)
	if st := b2.Stats(); st.Depth+st.Inflight != pubs*each {
		t.Fatalf("after reopening: Depth %d + Inflight %d; want %d", st.Depth, st.Inflight, pubs*each)
	}
	start = time.Now()
	dups, _ := checkArrivals(t, ctx, remote, pubs, pubs*each, 0)
	t.Logf("%d messages delivered in %v after the restart, %d duplicates", pubs*each, time.Since(start), dups)
}

// TestBridgeQueueBound: with a small max_bytes and the remote down, the
// queue and its file stay bounded, the drop counters account for every
// message, and the newest messages are the ones delivered.
func TestBridgeQueueBound(t *testing.T) {
	m := newMosquitto(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const maxBytes = 32 << 10
	const pubs, each = 8, 250
	cfg := testConfig(t, "small", m.url(), bridge.Rule{Pattern: "site/#", Direction: bridge.Out, QoS: 1})
	cfg.Queue.MaxBytes = maxBytes
	cfg.Queue.CheckpointBytes = 64 << 10 // several checkpoints while the messages come
	core := newCore(t)
	log, lr := testLogger(t)
	cfg.SysInterval = 100 * time.Millisecond
	b := newBridge(t, cfg, core, log)
	publishN(t, core, pubs, each, 200)
	st := b.Stats()
	if st.Bytes > maxBytes || st.Forwarded != pubs*each || int(st.DroppedOldest)+st.Depth != pubs*each || st.DroppedQoS0 != 0 {
		t.Fatalf("stats = %+v; want Bytes <= %d, Forwarded %d, DroppedOldest + Depth = %d", st, maxBytes, pubs*each, pubs*each)
	}
	lr.waitFor(t, ctx, "bridge queue dropped messages", fmt.Sprintf("dropped_total=%d", st.Dropped))
	if du := bridge.QueueDiskBytes(t, cfg.Queue.Path); du > 1<<20 {
		t.Fatalf("queue file and log take %d bytes on disk with max_bytes %d", du, maxBytes)
	}
	t.Logf("kept %d messages (%d bytes), dropped %d, file and log %d bytes on disk", st.Depth, st.Bytes, st.Dropped, bridge.QueueDiskBytes(t, cfg.Queue.Path))

	// Stop, bring the remote back with a subscriber, start again: exactly
	// the survivors arrive, each publisher's newest, in order.
	b.Close()
	m.start()
	remote := dialRemote(t, ctx, fmt.Sprintf("127.0.0.1:%d", m.port), "central-app")
	remote.subscribe(t, ctx, "site/#", 1)
	newBridge(t, cfg, newCore(t), nil)
	dups, next := checkArrivals(t, ctx, remote, pubs, st.Depth, -1)
	if dups != 0 {
		t.Fatalf("%d duplicates after a clean stop", dups)
	}
	// Dropping the oldest keeps a suffix of the queue, so each publisher
	// with survivors has a gap-free run (checked above) ending at its last.
	for pub, n := range next {
		if n != -1 && n != each {
			t.Fatalf("publisher %d: last message delivered %d; want %d (the newest survive)", pub, n-1, each-1)
		}
	}
	select {
	case p := <-remote.msgs:
		t.Fatalf("unexpected extra message %q", p.Payload)
	default:
	}
}

// TestBridgeRestartWhileDraining queues 2,000 messages during an outage,
// lets the remote come back, stops the bridge after 500 have arrived
// (messages queued and in flight) and reopens it from the same file: with
// a persistent remote session the in-flight messages are sent again with
// DUP set, without one they go back to the head of the queue; all arrive in
// per-publisher order.
func TestBridgeRestartWhileDraining(t *testing.T) {
	for _, expiry := range []time.Duration{time.Hour, 0} {
		t.Run(fmt.Sprintf("session_expiry=%v", expiry), func(t *testing.T) {
			m := newMosquitto(t, "")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			const pubs, each = 8, 250
			cfg := testConfig(t, "drain", m.url(), bridge.Rule{Pattern: "site/#", Direction: bridge.Out, QoS: 1})
			cfg.SessionExpiry = expiry
			// Queue during the outage with a first bridge, then stop it: the
			// remote subscriber must exist before any bridge can reach
			// Mosquitto, or the head of a publisher's stream goes to no one.
			core0, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			b0, err := bridge.New(cfg, core0, bridge.Options{})
			if err != nil {
				t.Fatal(err)
			}
			publishN(t, core0, pubs, each, 16)
			if err := b0.Close(); err != nil {
				t.Fatal(err)
			}
			core0.Close()

			m.start()
			remote := dialRemote(t, ctx, fmt.Sprintf("127.0.0.1:%d", m.port), "central-app")
			remote.subscribe(t, ctx, "site/#", 1)
			core1, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			b1, err := bridge.New(cfg, core1, bridge.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var early []*paho.Publish
			for len(early) < 500 {
				early = append(early, remote.next(t, ctx))
			}
			if err := b1.Close(); err != nil {
				t.Fatal(err)
			}
			st1 := b1.Stats()
			core1.Close()

			core2 := newCore(t)
			b2 := newBridge(t, cfg, core2, nil)
			st2 := b2.Stats()
			dups, _ := checkArrivals(t, ctx, remote, pubs, pubs*each, 0, early...)
			t.Logf("at stop: %d sent, %d queued; reopened with %d queued, %d in flight (%d requeued); %d duplicates",
				st1.Sent, st1.Depth, st2.Depth, st2.Inflight, st1.Requeued, dups)
			if st2.Depth+st2.Inflight == 0 {
				t.Log("the bridge had drained everything before it stopped: nothing was in flight")
			}
		})
	}
}

// syncBackend is the simplest bridge.Backend: each write is its own
// transaction, committed before Update returns.
type syncBackend struct{ db *bolt.DB }

func (b syncBackend) Update(apply func(*bolt.Tx) error, done func(error)) {
	err := b.db.Update(apply)
	if done != nil {
		done(err)
	}
}

func (b syncBackend) View(fn func(*bolt.Tx) error) error { return b.db.View(fn) }

// TestBridgeSharedBackend: with Options.Backend the queue lives in the
// given file, under "bridge/<name>", and messages get through in order.
func TestBridgeSharedBackend(t *testing.T) {
	m := newMosquitto(t, "")
	m.start()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "shared.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	remote := dialRemote(t, ctx, fmt.Sprintf("127.0.0.1:%d", m.port), "central-app")
	remote.subscribe(t, ctx, "site/#", 1)
	core := newCore(t)
	cfg := testConfig(t, "shared", m.url(), bridge.Rule{Pattern: "site/#", Direction: bridge.Out, QoS: 1})
	b, err := bridge.New(cfg, core, bridge.Options{Backend: syncBackend{db}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	publishN(t, core, 2, 100, 8)
	if dups, _ := checkArrivals(t, ctx, remote, 2, 200, 0); dups != 0 {
		t.Fatalf("%d duplicates without a restart", dups)
	}
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("bridge/shared")) == nil {
			return fmt.Errorf("no bucket bridge/shared in the shared file")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cfg.Queue.Path); !os.IsNotExist(err) {
		t.Fatalf("queue.path %s exists (%v); with a Backend it is not used", cfg.Queue.Path, err)
	}
}

// TestQueuePathOrSharedStore: without queue.path the queue must live in a
// shared store (Options.Backend); with neither, New says what is missing.
func TestQueuePathOrSharedStore(t *testing.T) {
	cfg := testConfig(t, "noqueue", "mqtt://127.0.0.1:1", bridge.Rule{Pattern: "a/#", Direction: bridge.Out, QoS: 1})
	cfg.Queue.Path = ""
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate() = %v; want an empty queue.path accepted (the core's store can hold the queue)", err)
	}
	if b, err := bridge.New(cfg, newCore(t), bridge.Options{}); err == nil || !strings.Contains(err.Error(), "queue.path") {
		if b != nil {
			b.Close()
		}
		t.Fatalf("New without queue.path or a Backend = %v; want an error naming queue.path", err)
	}
}

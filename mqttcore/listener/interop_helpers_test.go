package listener_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/internal/outside"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/listener"
)

// testTimeout bounds every interop test.
const testTimeout = 20 * time.Second

// testCtx returns a context that ends after testTimeout or at cleanup.
func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// testServer is a broker core with a listener in front of it.
type testServer struct {
	broker *mqttcore.Broker
	srv    *listener.Server
	addr   string // plain TCP host:port ("" when not listening)
}

// startServer starts a broker (with $SYS off) and a listener on free
// loopback ports. cfg.Address "" means 127.0.0.1:0. Both are closed at
// cleanup, the listener first.
func startServer(t testing.TB, cfg listener.Config, bcfg mqttcore.Config) *testServer {
	t.Helper()
	bcfg.SysDisabled = true
	b, err := mqttcore.New(bcfg, mqttcore.Options{})
	if err != nil {
		t.Fatalf("mqttcore.New(%+v) = %v", bcfg, err)
	}
	t.Cleanup(func() { b.Close() })
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	srv, err := listener.NewServer(b, cfg, nil, nil)
	if err != nil {
		t.Fatalf("NewServer = %v", err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatalf("Listen = %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Server.Close = %v", err)
		}
		// Close waited for every connection's goroutines.
		if n := srv.Stats().ConnectionsCurrent; n != 0 {
			t.Errorf("after Server.Close, %d connections are still open", n)
		}
	})
	ts := &testServer{broker: b, srv: srv}
	if a := srv.Addr("tcp"); a != nil {
		ts.addr = a.String()
	}
	return ts
}

// hostPort splits ts.addr for command-line clients.
func (ts *testServer) hostPort(t testing.TB) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(ts.addr)
	if err != nil {
		t.Fatalf("SplitHostPort(%q) = %v", ts.addr, err)
	}
	return h, p
}

// waitFor polls cond until it holds or ctx ends. It is for state the
// broker exposes only by polling (a session going offline); the poll is
// bounded by ctx, never by a fixed sleep.
func waitFor(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// sessionState reports clientID's session state, or false if none.
func (ts *testServer) sessionState(id string) (mqttcore.State, bool) {
	info, ok := ts.broker.Session(id)
	return info.State, ok
}

// pahoClient is a paho.golang MQTT 5 client with its received PUBLISHes on
// a channel.
type pahoClient struct {
	*paho.Client
	conn        net.Conn
	msgs        chan *paho.Publish
	disconnects chan *paho.Disconnect
}

// dialPaho connects a paho client over TCP to addr with cp. It returns the
// CONNACK and the error from Connect (a refused CONNECT gives both). The
// connection is closed at cleanup.
func dialPaho(t testing.TB, ctx context.Context, addr string, cp *paho.Connect) (*pahoClient, *paho.Connack, error) {
	t.Helper()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return connectPaho(t, ctx, conn, cp)
}

// connectPaho runs an MQTT 5 session with paho over conn; mods adjust the
// client configuration before the client is made.
func connectPaho(t testing.TB, ctx context.Context, conn net.Conn, cp *paho.Connect, mods ...func(*paho.ClientConfig)) (*pahoClient, *paho.Connack, error) {
	t.Helper()
	pc := &pahoClient{
		conn:        conn,
		msgs:        make(chan *paho.Publish, 1024),
		disconnects: make(chan *paho.Disconnect, 1),
	}
	cfg := paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) {
				select {
				case pc.msgs <- pr.Packet:
				default:
					t.Errorf("client %s: more than %d messages unread", cp.ClientID, cap(pc.msgs))
				}
				return true, nil
			},
		},
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case pc.disconnects <- d:
			default:
			}
		},
	}
	for _, m := range mods {
		m(&cfg)
	}
	pc.Client = paho.NewClient(cfg)
	t.Cleanup(func() { _ = conn.Close() })
	ca, err := pc.Connect(ctx, cp)
	return pc, ca, err
}

// mustPaho connects a paho client and fails the test if it is refused.
func mustPaho(t testing.TB, ctx context.Context, addr string, cp *paho.Connect) *pahoClient {
	t.Helper()
	pc, ca, err := dialPaho(t, ctx, addr, cp)
	if err != nil {
		t.Fatalf("paho Connect(%q) = %+v, %v", cp.ClientID, ca, err)
	}
	return pc
}

// subscribe subscribes and checks every SUBACK reason code.
func (pc *pahoClient) subscribe(t testing.TB, ctx context.Context, qos byte, want byte, filters ...string) {
	t.Helper()
	s := &paho.Subscribe{}
	for _, f := range filters {
		s.Subscriptions = append(s.Subscriptions, paho.SubscribeOptions{Topic: f, QoS: qos})
	}
	sa, err := pc.Subscribe(ctx, s)
	if err != nil && want < 0x80 {
		t.Fatalf("Subscribe(%q) = %v", filters, err)
	}
	if sa == nil {
		t.Fatalf("Subscribe(%q): no SUBACK (err %v)", filters, err)
	}
	for i, rc := range sa.Reasons {
		if rc != want {
			t.Errorf("Subscribe(%q): SUBACK code %d = 0x%02x; want 0x%02x", filters, i, rc, want)
		}
	}
}

// publish publishes and fails the test on error.
func (pc *pahoClient) publish(t testing.TB, ctx context.Context, topic, payload string, qos byte, retain bool) *paho.PublishResponse {
	t.Helper()
	pr, err := pc.Publish(ctx, &paho.Publish{Topic: topic, Payload: []byte(payload), QoS: qos, Retain: retain})
	if err != nil {
		t.Fatalf("Publish(%q, qos %d) = %+v, %v", topic, qos, pr, err)
	}
	return pr
}

// recv returns the next message received by pc or fails the test.
func (pc *pahoClient) recv(t testing.TB, ctx context.Context) *paho.Publish {
	t.Helper()
	select {
	case m := <-pc.msgs:
		return m
	case <-ctx.Done():
		t.Fatalf("waiting for a message: %v", ctx.Err())
		return nil
	}
}

// expectMsg receives one message and checks topic, payload and QoS.
func (pc *pahoClient) expectMsg(t testing.TB, ctx context.Context, topic, payload string, qos byte) *paho.Publish {
	t.Helper()
	m := pc.recv(t, ctx)
	if m.Topic != topic || string(m.Payload) != payload || m.QoS != qos {
		t.Fatalf("received (%q, %q, qos %d); want (%q, %q, qos %d)", m.Topic, m.Payload, m.QoS, topic, payload, qos)
	}
	return m
}

// quiet checks that no message is waiting, after a round trip to the
// server: a PINGREQ-like SUBSCRIBE to an unused filter makes sure anything
// the server sent before it has been read.
func (pc *pahoClient) quiet(t testing.TB, ctx context.Context) {
	t.Helper()
	if _, err := pc.Unsubscribe(ctx, &paho.Unsubscribe{Topics: []string{"gannet-test/never"}}); err != nil {
		t.Fatalf("Unsubscribe (round trip) = %v", err)
	}
	select {
	case m := <-pc.msgs:
		t.Fatalf("unexpected message (%q, %q)", m.Topic, m.Payload)
	default:
	}
}

// mosqSub is a running mosquitto_sub started with -d and a "MSG ..."
// output format, so debug lines and messages can be told apart.
type mosqSub struct {
	cmd      *exec.Cmd
	msgs     chan string   // "topic qos retain payload"
	subacked chan string   // the "Subscribed (mid: n): codes" line
	done     chan struct{} // closed when output ends
	mu       sync.Mutex
	log      []string // every output line, for failure messages
	waitErr  error
}

// startMosqSub starts mosquitto_sub against ts with args (topics, -V,
// -q, -C, ...) and waits until it has its SUBACK. It is killed at cleanup.
func startMosqSub(t testing.TB, ctx context.Context, ts *testServer, args ...string) *mosqSub {
	t.Helper()
	ms := runMosqSub(t, ctx, ts, args...)
	select {
	case line := <-ms.subacked:
		_ = line
	case <-ms.done:
		t.Fatalf("mosquitto_sub %q ended before SUBACK: %v\n%s", args, ms.err(), ms.output())
	case <-ctx.Done():
		t.Fatalf("mosquitto_sub %q: no SUBACK: %v\n%s", args, ctx.Err(), ms.output())
	}
	return ms
}

// runMosqSub starts mosquitto_sub without waiting for anything.
func runMosqSub(t testing.TB, ctx context.Context, ts *testServer, args ...string) *mosqSub {
	t.Helper()
	bin := outside.Program(t, "mosquitto_sub", "mosquitto-clients")
	// mosquitto_sub's stdout is a pipe here, which stdio buffers fully:
	// stdbuf makes it line-buffered so lines arrive as they are printed.
	stdbuf := outside.Program(t, "stdbuf", "coreutils")
	host, port := ts.hostPort(t)
	full := append([]string{"-oL", bin, "-h", host, "-p", port, "-d", "-F", "MSG %t %q %r %p"}, args...)
	cmd := exec.CommandContext(ctx, stdbuf, full...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("mosquitto_sub stdout: %v", err)
	}
	cmd.Stderr = cmd.Stdout
	ms := &mosqSub{cmd: cmd, msgs: make(chan string, 1024), subacked: make(chan string, 1), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto_sub: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-ms.done
	})
	go func() { // exits at the end of the output, when the process ends
		defer close(ms.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			ms.mu.Lock()
			ms.log = append(ms.log, line)
			ms.mu.Unlock()
			switch {
			case strings.HasPrefix(line, "MSG "):
				ms.msgs <- strings.TrimPrefix(line, "MSG ")
			case strings.HasPrefix(line, "Subscribed "):
				select {
				case ms.subacked <- line:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
		werr := cmd.Wait()
		ms.mu.Lock()
		ms.waitErr = werr
		ms.mu.Unlock()
	}()
	return ms
}

// output returns everything mosquitto_sub printed so far.
func (ms *mosqSub) output() string {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return strings.Join(ms.log, "\n")
}

// err returns the process's exit error once output has ended.
func (ms *mosqSub) err() error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.waitErr
}

// expect receives the next message line and compares it with want
// ("topic qos retain payload").
func (ms *mosqSub) expect(t testing.TB, ctx context.Context, want string) {
	t.Helper()
	select {
	case got := <-ms.msgs:
		if got != want {
			t.Fatalf("mosquitto_sub received %q; want %q\n%s", got, want, ms.output())
		}
	case <-ctx.Done():
		t.Fatalf("mosquitto_sub: waiting for %q: %v\n%s", want, ctx.Err(), ms.output())
	}
}

// wait waits for mosquitto_sub to exit and returns its exit error.
func (ms *mosqSub) wait(t testing.TB, ctx context.Context) error {
	t.Helper()
	select {
	case <-ms.done:
		return ms.err()
	case <-ctx.Done():
		t.Fatalf("mosquitto_sub did not exit: %v\n%s", ctx.Err(), ms.output())
		return nil
	}
}

// mosqPub runs mosquitto_pub against ts to completion and returns its
// combined output.
func mosqPub(t testing.TB, ctx context.Context, ts *testServer, args ...string) (string, error) {
	t.Helper()
	bin := outside.Program(t, "mosquitto_pub", "mosquitto-clients")
	host, port := ts.hostPort(t)
	cmd := exec.CommandContext(ctx, bin, append([]string{"-h", host, "-p", port}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("mosquitto_pub %q: %w", args, err)
	}
	return string(out), nil
}

// mustMosqPub runs mosquitto_pub and fails the test if it fails.
func mustMosqPub(t testing.TB, ctx context.Context, ts *testServer, args ...string) {
	t.Helper()
	if out, err := mosqPub(t, ctx, ts, args...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// isExitErr reports whether err is a process exit with a non-zero status.
func isExitErr(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee)
}

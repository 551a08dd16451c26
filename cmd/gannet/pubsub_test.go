package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/auth"
)

// startGateway runs a core and a gateway on a loopback UDP port and returns
// the core and the gateway's address.
func startGateway(t *testing.T, cfg gateway.Config) (*mqttcore.Broker, string) {
	t.Helper()
	return startGatewayWith(t, cfg, gateway.Options{})
}

// startGatewayWith is startGateway with the gateway's options.
func startGatewayWith(t *testing.T, cfg gateway.Config, opts gateway.Options) (*mqttcore.Broker, string) {
	t.Helper()
	b, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, b, opts)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Serve(conn) }()
	t.Cleanup(func() {
		g.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		b.Close()
	})
	return b, conn.LocalAddr().String()
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not synchronising on time
	}
}

func TestPubSubCommands(t *testing.T) {
	b, addr := startGateway(t, gateway.Config{
		Predefined: []gateway.PredefinedTopic{{ID: 7, Topic: "sensors/alarm"}},
		QoSMinus1:  gateway.QoSMinus1Config{Enabled: true},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var out, errOut syncBuffer
	subDone := make(chan int, 1)
	go func() {
		subDone <- run(ctx, []string{"sub", "-gateway", addr, "-id", "sub1", "-t", "sensors/#", "-q", "1", "-V", "-C", "4",
			"-predefined", "7=sensors/alarm"}, nil, &out, &errOut)
	}()
	waitFor(t, "the subscription", func() bool {
		info, ok := b.Session("sub1")
		return ok && info.Subscriptions == 1
	})

	pubs := [][]string{
		{"pub", "-gateway", addr, "-t", "sensors/a/temp", "-m", "21.5", "-q", "1"},
		{"pub", "-gateway", addr, "-t", "sensors/b", "-m", "two", "-q", "2", "-r"},
		{"pub", "-gateway", addr, "-p", "7", "-m", "fire", "-q", "-1"},
	}
	// Each pub is its own client on its own socket, and nothing orders one
	// client's datagrams against the next one's (the QoS -1 pub returns as
	// soon as its datagram is sent, and the next client's datagrams may
	// reach another gateway loop first): wait for each message to reach
	// the subscriber before sending the next, so that the order checked
	// below is the order sent.
	printed := func(lines int) {
		t.Helper()
		waitFor(t, fmt.Sprintf("line %d of gannet sub", lines), func() bool { return strings.Count(out.String(), "\n") >= lines })
	}
	for i, args := range pubs {
		var perr bytes.Buffer
		if rc := run(ctx, args, nil, &bytes.Buffer{}, &perr); rc != 0 {
			t.Fatalf("gannet %s = %d; stderr %s", strings.Join(args, " "), rc, perr.String())
		}
		printed(i + 1)
	}
	// Lines from standard input, QoS 0.
	var perr bytes.Buffer
	args := []string{"pub", "-gateway", addr, "-t", "sensors/c", "-l", "-q", "0"}
	if rc := run(ctx, args, strings.NewReader("line\n"), &bytes.Buffer{}, &perr); rc != 0 {
		t.Fatalf("gannet %s = %d; stderr %s", strings.Join(args, " "), rc, perr.String())
	}

	select {
	case rc := <-subDone:
		if rc != 0 {
			t.Fatalf("gannet sub = %d; stderr %s", rc, errOut.String())
		}
	case <-ctx.Done():
		t.Fatalf("gannet sub did not finish; output so far %q", out.String())
	}
	want := "sensors/a/temp 21.5\nsensors/b two\nsensors/alarm fire\nsensors/c line\n"
	if got := out.String(); got != want {
		t.Errorf("sub printed %q; want %q", got, want)
	}
	if info, ok := b.Session("sub1"); ok && info.State != mqttcore.StateDisconnected {
		t.Errorf("sub1 left its session %v; want disconnected", info.State)
	}
}

// TestPubSubProtocol20 runs gannet sub and pub in MQTT-SN 2.0
// (-protocol 2.0), authenticated with -username/-password against a
// password file, and checks that a wrong password is refused.
func TestPubSubProtocol20(t *testing.T) {
	hash, err := auth.HashPassword([]byte("pw"), auth.Bcrypt)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := auth.ParsePasswords(strings.NewReader("alice:"+hash+"\n"), "passwd")
	if err != nil {
		t.Fatal(err)
	}
	b, addr := startGatewayWith(t, gateway.Config{}, gateway.Options{Authenticator: auth.NewFrom(pw, nil, true)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var out, errOut syncBuffer
	subDone := make(chan int, 1)
	go func() {
		subDone <- run(ctx, []string{"sub", "-protocol", "2.0", "-gateway", addr, "-id", "sub2", "-t", "v2/#", "-q", "1",
			"-V", "-C", "1", "-username", "alice", "-password", "pw"}, nil, &out, &errOut)
	}()
	waitFor(t, "the subscription", func() bool {
		info, ok := b.Session("sub2")
		return ok && info.Subscriptions == 1
	})
	var perr bytes.Buffer
	bad := []string{"pub", "-protocol", "2", "-gateway", addr, "-t", "v2/x", "-m", "no", "-q", "1", "-u", "alice", "-P", "wrong"}
	if rc := run(ctx, bad, nil, &bytes.Buffer{}, &perr); rc == 0 || !strings.Contains(perr.String(), "bad user name or password") {
		t.Errorf("gannet %s = %d, stderr %q; want a refusal 0x86", strings.Join(bad, " "), rc, perr.String())
	}
	good := []string{"pub", "-protocol", "2.0", "-gateway", addr, "-t", "v2/x", "-m", "yes", "-q", "1", "-u", "alice", "-P", "pw"}
	if rc := run(ctx, good, nil, &bytes.Buffer{}, &perr); rc != 0 {
		t.Fatalf("gannet %s = %d; stderr %s", strings.Join(good, " "), rc, perr.String())
	}
	select {
	case rc := <-subDone:
		if rc != 0 {
			t.Fatalf("gannet sub = %d; stderr %s", rc, errOut.String())
		}
	case <-ctx.Done():
		t.Fatalf("gannet sub did not finish; output so far %q", out.String())
	}
	if got := out.String(); got != "v2/x yes\n" {
		t.Errorf("sub printed %q; want %q", got, "v2/x yes\n")
	}
}

// TestUsageErrors runs the CLI's usage errors: each exits 2 and prints
// what is wrong and the command's usage line (they used to exit 2 in
// silence).
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in stderr, besides the usage line
	}{
		{[]string{"pub", "-m", "x"}, "give exactly one of -topic (-t), -topic-id (-p) and -short-topic (-s)"},
		{[]string{"pub", "-t", "a", "-s", "ab", "-m", "x"}, "give exactly one of -topic"},
		{[]string{"pub", "-t", "a", "-p", "1", "-m", "x"}, "give exactly one of -topic"},
		{[]string{"pub", "-t", "a"}, "give exactly one of -message (-m), -lines (-l) and -null (-n)"},
		{[]string{"pub", "-t", "a", "-m", "x", "-l"}, "give exactly one of -message"},
		{[]string{"pub", "-t", "a", "-m", "x", "-q", "3"}, "-qos 3: QoS is -1, 0, 1 or 2"},
		{[]string{"pub", "-topic", "a", "-message", "x", "-qos", "-2"}, "-qos -2: QoS is -1, 0, 1 or 2"},
		{[]string{"pub", "-s", "abc", "-m", "x"}, `-short-topic "abc": a short topic name has two characters`},
		{[]string{"pub", "-t", "a", "-m", "x", "-c", "0"}, "-count 0: must be at least 1"},
		{[]string{"pub", "-t", "a", "-m", "x", "-predefined", "1"}, `-predefined "1": want id=topic`},
		{[]string{"pub", "-t", "a", "-m", "x", "extra"}, `unexpected argument "extra"`},
		{[]string{"sub"}, "give exactly one of -topic (-t), -topic-id (-p) and -short-topic (-s)"},
		{[]string{"sub", "-t", "a", "-q", "-1"}, "-qos -1: a subscription is QoS 0, 1 or 2"},
		{[]string{"sub", "-p", "70000"}, "-topic-id 70000: a topic id is 1 to 65534"},
		{[]string{"sub", "-t", "a", "-C", "-1"}, "-count -1: must not be negative"},
		{[]string{"pub", "-colour"}, "flag provided but not defined: -colour"},
		{[]string{"pub", "-t", "a", "-m", "x", "-protocol", "3"}, `MQTT-SN version "3": want 1.2 or 2.0`},
		{[]string{"pub", "-t", "a", "-m", "x", "-username", "u"}, "-username: authentication needs -protocol 2.0"},
		{[]string{"serve", "stray"}, `unexpected argument "stray"`},
		{[]string{"check-config", "-c", "a", "b"}, `unexpected argument "b"`},
		{[]string{"bench", "publish", "-topic-id", "70000"}, "-topic-id 70000: want 1 to 65534"},
		{[]string{"bench", "publish", "-qos", "3"}, "qos = 3"},
	} {
		var stderr bytes.Buffer
		rc := run(context.Background(), tc.args, nil, &bytes.Buffer{}, &stderr)
		usageLine := "usage: " + synopsis(tc.args[0])
		if strings.HasPrefix(tc.want, "flag provided") {
			usageLine = "usage: " + synopsis(tc.args[0]) + "\n\nflags:" // the flag package prints the flags
		}
		if rc != 2 || !strings.Contains(stderr.String(), tc.want) || !strings.Contains(stderr.String(), usageLine) {
			t.Errorf("gannet %s = %d, stderr %q; want 2, %q and %q", strings.Join(tc.args, " "), rc, stderr.String(), tc.want, usageLine)
		}
	}
}

// TestHelp checks "gannet help CMD": the command's usage line and its
// flags on stdout, each flag listed once with its old spellings beside it,
// internal flags hidden.
func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		want, not []string
	}{
		{[]string{"help", "serve"}, []string{"usage: gannet serve [-config FILE]", "-config file   (or -c)"}, []string{"usage: gannet COMMAND"}},
		{[]string{"help", "pub"}, []string{"usage: gannet pub", "-topic name   (or -t)", "-count times   (or -c)", "-qos int   (or -q)"}, []string{"\n  -t "}},
		{[]string{"help", "sub"}, []string{"-count messages   (or -C)", "-print-topic   (or -V)"}, nil},
		{[]string{"help", "bench"}, []string{"connect-storm"}, nil},
		{[]string{"help", "bench", "idle"}, []string{"usage: gannet bench idle", "-hold"}, []string{"-child", "-window", "-queued"}},
		{[]string{"help", "bench", "publish"}, []string{"-window", "-procs"}, []string{"-child", "-hold"}},
		{[]string{"help", "check-config"}, []string{"usage: gannet check-config"}, nil},
		{[]string{"help"}, []string{"usage: gannet COMMAND"}, nil},
	} {
		var stdout, stderr bytes.Buffer
		rc := run(context.Background(), tc.args, nil, &stdout, &stderr)
		if rc != 0 {
			t.Errorf("gannet %s = %d; stderr %s", strings.Join(tc.args, " "), rc, stderr.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(stdout.String(), w) {
				t.Errorf("gannet %s printed %q; want %q in it", strings.Join(tc.args, " "), stdout.String(), w)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(stdout.String(), n) {
				t.Errorf("gannet %s printed %q; want no %q in it", strings.Join(tc.args, " "), stdout.String(), n)
			}
		}
	}
	var stdout bytes.Buffer
	if rc := run(context.Background(), []string{"help", "frobnicate"}, nil, &stdout, &stdout); rc != 2 {
		t.Errorf("gannet help frobnicate = %d; want 2", rc)
	}
}

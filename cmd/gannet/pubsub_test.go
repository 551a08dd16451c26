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
)

// startGateway runs a core and a gateway on a loopback UDP port and returns
// the core and the gateway's address.
func startGateway(t *testing.T, cfg gateway.Config) (*mqttcore.Broker, string) {
	t.Helper()
	b, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, b, gateway.Options{})
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

func TestPubSubUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"pub", "-m", "x"},                                // no topic
		{"pub", "-t", "a", "-s", "ab", "-m", "x"},         // two topics
		{"pub", "-t", "a"},                                // no message
		{"pub", "-t", "a", "-m", "x", "-q", "3"},          // bad QoS
		{"pub", "-s", "abc", "-m", "x"},                   // long short name
		{"pub", "-t", "a", "-m", "x", "-c", "0"},          // bad count
		{"sub", "-t", "a", "-q", "-1"},                    // QoS -1 subscription
		{"sub", "-p", "70000"},                            // id out of range
		{"pub", "-t", "a", "-m", "x", "-predefined", "1"}, // bad table
	} {
		var stderr bytes.Buffer
		if rc := run(context.Background(), args, nil, &bytes.Buffer{}, &stderr); rc != 2 {
			t.Errorf("gannet %s = %d; want 2 (usage); stderr %s", strings.Join(args, " "), rc, stderr.String())
		}
	}
}

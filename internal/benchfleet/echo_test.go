package benchfleet

import (
	"context"
	"strings"
	"testing"
	"time"
)

// startEcho starts an echo server on a free loopback port.
func startEcho(t *testing.T) *EchoServer {
	t.Helper()
	s, err := NewEchoServer("127.0.0.1:0", 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("echo server Close = %v", err)
		}
	})
	return s
}

func TestEchoScenario(t *testing.T) {
	cases := []struct {
		name   string
		window int
		rate   float64
	}{
		{"closed loop", 4, 0},
		{"open loop paced", 0, 2000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startEcho(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cfg := Config{
				Scenario: ScenarioEcho, Gateway: s.Addr().String(), Sensors: 3, Count: 50, Rate: tc.rate,
				Window: tc.window, PayloadSize: 100, TopicMode: TopicRegister, Drain: 5 * time.Second,
			}
			rep, err := Run(ctx, cfg, nil)
			if err != nil {
				t.Fatalf("Run = %v", err)
			}
			if rep.Sent != 150 || rep.Delivered != 150 || rep.Lost != 0 || rep.Duplicated != 0 {
				t.Errorf("sent %d, delivered %d, lost %d, duplicated %d; want 150, 150, 0, 0 (errors: %v)",
					rep.Sent, rep.Delivered, rep.Lost, rep.Duplicated, rep.FirstErrors)
			}
			if rep.Latency.Count != 150 || rep.Latency.P50Ms <= 0 || rep.Latency.MaxMs < rep.Latency.P99Ms {
				t.Errorf("latency %+v; want 150 samples, p50 > 0, max >= p99", rep.Latency)
			}
			if s.Echoed() != 150 {
				t.Errorf("server echoed %d; want 150", s.Echoed())
			}
			if !strings.Contains(strings.Join(rep.Notes, " "), "loopback twice") {
				t.Errorf("notes %q do not say the datagrams cross the loopback twice", rep.Notes)
			}
		})
	}
}

func TestEchoUnreachableIsLoss(t *testing.T) {
	s := startEcho(t)
	addr := s.Addr().String()
	if err := s.Close(); err != nil { // nothing listens there any more
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := Config{Scenario: ScenarioEcho, Gateway: addr, Sensors: 1, Count: 5, Rate: 1000,
		PayloadSize: HeaderLen, TopicMode: TopicRegister, Drain: 100 * time.Millisecond}
	rep, err := Run(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	if rep.Delivered != 0 || rep.Lost != rep.Sent {
		t.Errorf("delivered %d, lost %d of %d sent; want all lost", rep.Delivered, rep.Lost, rep.Sent)
	}
}

// TestEchoWindowedDrainsAtStop checks that a duration-bounded closed-loop
// run collects the datagrams in flight when it stops, so they do not count
// as lost.
func TestEchoWindowedDrainsAtStop(t *testing.T) {
	s := startEcho(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := Config{Scenario: ScenarioEcho, Gateway: s.Addr().String(), Sensors: 2, Window: 8,
		Duration: 200 * time.Millisecond, PayloadSize: HeaderLen, TopicMode: TopicRegister}
	rep, err := Run(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	if rep.Sent == 0 || rep.Lost != 0 || rep.Delivered != rep.Sent {
		t.Errorf("sent %d, delivered %d, lost %d; want everything sent to come back", rep.Sent, rep.Delivered, rep.Lost)
	}
}

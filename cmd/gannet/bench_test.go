package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/internal/benchfleet"
	"github.com/gannet-mqtt/gannet/internal/sntest"
)

// runBenchJSON runs "gannet bench" with args plus -json and no progress bar
// and decodes its report.
func runBenchJSON(t *testing.T, ctx context.Context, args ...string) (*benchfleet.Report, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append(args, "-json", "-progress=false")
	err := bench(ctx, args, &stdout, &stderr)
	if stdout.Len() == 0 {
		t.Fatalf("gannet bench %s printed no report; err %v; stderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var rep benchfleet.Report
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
		t.Fatalf("gannet bench %s: report is not JSON: %v\n%s", strings.Join(args, " "), jerr, stdout.String())
	}
	return &rep, err
}

func TestBenchFlagValidation(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no scenario", nil, "usage: gannet bench"},
		{"unknown scenario", []string{"flood"}, "scenario \"flood\""},
		{"unknown flag", []string{"publish", "-colour"}, "flag provided but not defined"},
		{"bad qos", []string{"publish", "-qos", "3"}, "qos = 3"},
		{"qos -1 with register", []string{"publish", "-qos", "-1"}, "qos -1 needs"},
		{"tiny payload", []string{"publish", "-payload", "8"}, "payload = 8"},
		{"bad bind", []string{"publish", "-bind", "127.0.0.1,nowhere"}, "-bind"},
		{"bad topic id", []string{"publish", "-topic-id", "70000"}, "-topic-id 70000"},
		{"plot not svg", []string{"publish", "-plot", "out.png"}, "-plot"},
		{"no duration", []string{"publish", "-duration", "0"}, "duration or a count"},
		{"stray argument", []string{"idle", "extra"}, "unexpected argument"},
		{"echo-server readers", []string{"echo-server", "-readers", "0"}, "-readers 0"},
		{"bad protocol", []string{"publish", "-protocol", "3.0"}, "want 1.2 or 2.0"},
		{"2.0 short topic", []string{"publish", "-protocol", "2.0", "-topic-mode", "short"}, "no short topic names"},
		{"cpuprofile with procs", []string{"publish", "-sensors", "4", "-procs", "2", "-cpuprofile", "x.prof"}, "-cpuprofile"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if rc := run(context.Background(), append([]string{"bench"}, tc.args...), nil, &stdout, &stderr); rc != 2 {
				t.Errorf("gannet bench %q = %d; want 2 (usage)", tc.args, rc)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("bench(%q) stderr = %q; want it to mention %q", tc.args, stderr.String(), tc.want)
			}
		})
	}
}

func TestBenchHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"bench", "-h"}, nil, &stdout, &stderr); code != 0 {
		t.Errorf("gannet bench -h exited %d; want 0", code)
	}
	if !strings.Contains(stdout.String(), "connect-storm") {
		t.Errorf("gannet bench -h printed %q; want the scenario list", stdout.String())
	}
}

// TestBenchEchoWithPlot runs the raw UDP echo mode against the in-process
// echo server and writes the plot.
func TestBenchEchoWithPlot(t *testing.T) {
	s, err := benchfleet.NewEchoServer("127.0.0.1:0", 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := sntest.Context(t)
	plot := filepath.Join(t.TempDir(), "echo.svg")
	prof := filepath.Join(t.TempDir(), "bench.prof")
	rep, err := runBenchJSON(t, ctx, "echo", "-gateway", s.Addr().String(), "-sensors", "2", "-window", "2",
		"-count", "100", "-duration", "0", "-plot", plot, "-cpuprofile", prof)
	if err != nil {
		t.Fatalf("bench echo = %v", err)
	}
	if rep.Sent != 200 || rep.Delivered != 200 || rep.Lost != 0 {
		t.Errorf("echo: sent %d, delivered %d, lost %d; want 200, 200, 0", rep.Sent, rep.Delivered, rep.Lost)
	}
	svg, err := os.ReadFile(plot)
	if err != nil || !bytes.Contains(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("<polyline")) {
		t.Errorf("plot file: %v, %d octets; want an SVG with lines", err, len(svg))
	}
	// A pprof profile is gzip-compressed protobuf.
	if p, err := os.ReadFile(prof); err != nil || len(p) < 2 || p[0] != 0x1f || p[1] != 0x8b {
		t.Errorf("-cpuprofile file: %v, %d octets; want a gzip-compressed profile", err, len(p))
	}
}

// TestBenchEndToEnd runs each scenario against an in-process Gannet (core,
// MQTT listener, gateway on loopback UDP): the sensors speak MQTT-SN to the
// gateway and the bench's paho client speaks MQTT to the listener, so every
// message crosses the whole path. A lossless loopback run at QoS 1 and 2
// must deliver everything exactly once.
func TestBenchEndToEnd(t *testing.T) {
	gwcfg := gateway.Config{
		Predefined: []gateway.PredefinedTopic{
			{ID: 1, Topic: "bench/{client_id}"},
			{ID: 2, Topic: "bench/all"},
		},
		QoSMinus1: gateway.QoSMinus1Config{Enabled: true, AllowFrom: []string{"127.0.0.0/8"}},
	}
	cases := []struct {
		name      string
		args      []string
		delivered uint64 // exact unique deliveries
		acked     uint64
		connected int
	}{
		{"publish qos0 register", []string{"publish", "-sensors", "4", "-qos", "0", "-count", "25", "-rate", "500"}, 100, 0, 4},
		{"publish qos1 register", []string{"publish", "-sensors", "4", "-qos", "1", "-count", "25"}, 100, 100, 4},
		{"publish qos0 closed loop", []string{"publish", "-sensors", "4", "-qos", "0", "-count", "50", "-window", "2"}, 200, 0, 4},
		{"publish qos2 short", []string{"publish", "-sensors", "3", "-qos", "2", "-count", "10", "-topic-mode", "short"}, 30, 30, 3},
		{"publish qos1 predefined", []string{"publish", "-sensors", "3", "-qos", "1", "-count", "10", "-topic-mode", "predefined", "-topic-id", "1"}, 30, 30, 3},
		{"publish qos-1 short", []string{"publish", "-sensors", "2", "-qos", "-1", "-count", "20", "-rate", "500", "-topic-mode", "short"}, 40, 0, 0},
		{"fanout qos1", []string{"fanout", "-sensors", "5", "-qos", "1", "-count", "10"}, 50, 10, 5},
		{"fanout qos0 predefined", []string{"fanout", "-sensors", "3", "-qos", "0", "-count", "10", "-rate", "200", "-topic-mode", "predefined", "-topic-id", "2", "-sub-filter", "bench/all"}, 30, 0, 3},
		{"sleepers", []string{"sleepers", "-sensors", "5", "-qos", "1", "-queued", "3", "-sleep", "60s", "-settle", "0s"}, 15, 3, 5},
		{"sleepers without broker", []string{"sleepers", "-sensors", "4", "-qos", "1", "-queued", "2", "-sleep", "60s", "-settle", "0s", "-broker", ""}, 8, 2, 4},
		{"connect-storm", []string{"connect-storm", "-sensors", "50"}, 0, 0, 50},
		{"publish qos1 register 2.0", []string{"publish", "-protocol", "2.0", "-sensors", "4", "-qos", "1", "-count", "25"}, 100, 100, 4},
		{"publish qos2 predefined 2.0", []string{"publish", "-protocol", "2.0", "-sensors", "3", "-qos", "2", "-count", "10", "-topic-mode", "predefined", "-topic-id", "1"}, 30, 30, 3},
		{"mqtt-publish qos1", []string{"mqtt-publish", "-sensors", "3", "-qos", "1", "-count", "10"}, 30, 30, 3},
		{"sleepers 2.0", []string{"sleepers", "-protocol", "2.0", "-sensors", "4", "-qos", "1", "-queued", "3", "-sleep", "60s", "-settle", "0s"}, 12, 3, 4},
		{"idle", []string{"idle", "-sensors", "20", "-concurrency", "5", "-settle", "0s", "-gateway-pid", "self"}, 0, 0, 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := sntest.Start(t, sntest.Options{Gateway: gwcfg})
			ctx := sntest.Context(t)
			// The case's own flags come last, so they override these.
			args := []string{tc.args[0], "-gateway", e.UDPAddr, "-broker", e.MQTTAddr, "-duration", "0", "-drain", "10s", "-retry", "2s"}
			args = append(args, tc.args[1:]...)
			for i, a := range args {
				if a == "self" {
					args[i] = strconvItoa(os.Getpid())
				}
			}
			rep, err := runBenchJSON(t, ctx, args...)
			if err != nil {
				t.Fatalf("bench %s = %v (errors %v)", strings.Join(args, " "), err, rep.FirstErrors)
			}
			if rep.Errors != 0 {
				t.Errorf("%d errors: %v", rep.Errors, rep.FirstErrors)
			}
			if tc.connected > 0 && (rep.Connect == nil || rep.Connect.Connected != tc.connected || rep.Connect.Failed != 0) {
				t.Errorf("connect report %+v; want %d connected, 0 failed", rep.Connect, tc.connected)
			}
			if rep.Delivered != tc.delivered || rep.Lost != 0 || rep.Duplicated != 0 || rep.Expected != tc.delivered {
				t.Errorf("delivered %d of %d expected, lost %d, duplicated %d; want %d delivered, none lost or duplicated",
					rep.Delivered, rep.Expected, rep.Lost, rep.Duplicated, tc.delivered)
			}
			if rep.Acknowledged != tc.acked {
				t.Errorf("acknowledged %d; want %d", rep.Acknowledged, tc.acked)
			}
			if tc.delivered > 0 && (rep.Latency.Count != tc.delivered || rep.Latency.P50Ms <= 0 || len(rep.Timeline) == 0) {
				t.Errorf("latency %+v with %d timeline slots; want %d samples and a timeline", rep.Latency, len(rep.Timeline), tc.delivered)
			}
			want := map[bool]string{false: "1.2", true: "2.0"}[slices.Contains(tc.args, "2.0")]
			if tc.args[0] == "mqtt-publish" {
				want = "" // MQTT clients, no MQTT-SN sensors
			}
			if rep.Protocol != want {
				t.Errorf("report protocol %q; want %q", rep.Protocol, want)
			}
			if g := rep.Gateway; tc.args[0] == "idle" && (g == nil || g.RSSBefore == 0 || g.RSSAfter == 0) {
				t.Errorf("idle with -gateway-pid: gateway report %+v; want RSS readings", g)
			}
		})
	}
}

// strconvItoa avoids importing strconv for one call in a table.
func strconvItoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// TestBenchRunEndsWithContext checks a run bounded by duration stops on
// time and reports what it sent. The rate is bounded: flat out, the MQTT
// subscriber falls behind and the core's per-session queue limit
// (max_queued) drops messages by design.
func TestBenchRunEndsWithContext(t *testing.T) {
	e := sntest.Start(t, sntest.Options{})
	ctx := sntest.Context(t)
	start := time.Now()
	rep, err := runBenchJSON(t, ctx, "publish", "-gateway", e.UDPAddr, "-broker", e.MQTTAddr,
		"-sensors", "2", "-qos", "1", "-rate", "500", "-duration", "300ms", "-drain", "5s")
	if err != nil {
		t.Fatalf("bench publish = %v", err)
	}
	if rep.BenchCPUPercent <= 0 {
		t.Errorf("bench CPU = %v %%; want the bench's own CPU use measured", rep.BenchCPUPercent)
	}
	if el := time.Since(start); el > 15*time.Second {
		t.Errorf("a 300ms run took %v", el)
	}
	if rep.Sent == 0 || rep.Delivered != rep.Acknowledged || rep.Lost != 0 {
		t.Errorf("sent %d, acked %d, delivered %d, lost %d; want some sent, every acked one delivered, none lost",
			rep.Sent, rep.Acknowledged, rep.Delivered, rep.Lost)
	}
}

// benchChildEnv, when set in the environment, makes the test binary act as
// the gannet executable, so -procs runs can start it as their children.
const benchChildEnv = "GANNET_TEST_AS_GANNET"

func TestMain(m *testing.M) {
	if os.Getenv(benchChildEnv) == "1" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
		cancel()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestBenchProcs runs connect-storm and sleepers as three child processes
// (the test binary standing in for gannet) and checks the merged report,
// including the gateway memory the parent reads at the barriers (the
// gateway runs in this process).
func TestBenchProcs(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		args      []string
		delivered uint64
	}{
		{"connect-storm", []string{"connect-storm", "-sensors", "30"}, 0},
		{"sleepers", []string{"sleepers", "-sensors", "9", "-qos", "1", "-queued", "2", "-sleep", "60s"}, 18},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := sntest.Start(t, sntest.Options{})
			ctx := sntest.Context(t)
			args := append(tc.args, "-gateway", e.UDPAddr, "-broker", e.MQTTAddr, "-retry", "2s", "-settle", "0s",
				"-gateway-pid", strconvItoa(os.Getpid()), "-json", "-progress=false", "-procs", "3")
			var stderr bytes.Buffer
			cfg, out, err := parseBenchFlags(args[0], args[1:], &stderr)
			if err != nil {
				t.Fatalf("parseBenchFlags(%q) = %v\n%s", args, err, stderr.String())
			}
			var stdout bytes.Buffer
			env := append(os.Environ(), benchChildEnv+"=1")
			if err := runBenchProcsWith(ctx, exe, env, args, cfg, out, &stdout, &stderr); err != nil {
				t.Fatalf("-procs 3 run = %v\nstderr:\n%s", err, stderr.String())
			}
			var rep benchfleet.Report
			if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
				t.Fatalf("merged report is not JSON: %v\n%s", err, stdout.String())
			}
			if rep.Connect == nil || rep.Connect.Connected != cfg.Sensors || rep.Connect.Failed != 0 || rep.Connect.Seconds <= 0 {
				t.Errorf("merged connect %+v; want all %d connected over a positive time", rep.Connect, cfg.Sensors)
			}
			if rep.Delivered != tc.delivered || rep.Lost != 0 || rep.Duplicated != 0 {
				t.Errorf("delivered %d, lost %d, duplicated %d; want %d, 0, 0", rep.Delivered, rep.Lost, rep.Duplicated, tc.delivered)
			}
			if g := rep.Gateway; g == nil || g.RSSBefore == 0 || g.RSSAfter == 0 {
				t.Errorf("gateway report %+v; want RSS read at the barriers", g)
			}
		})
	}
}

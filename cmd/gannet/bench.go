package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/gannet-mqtt/gannet/internal/benchfleet"
)

const benchUsage = `usage: gannet bench SCENARIO [flags]
       gannet bench echo-server [-listen ADDR] [-readers N]

scenarios:
  publish        sensors publish; an MQTT subscriber on -broker counts deliveries
  fanout         one MQTT publisher; every sensor subscribes and counts deliveries
  connect-storm  sensors connect at once: time until every CONNACK
  sleepers       sensors subscribe and sleep; -queued messages each are queued; they wake and collect
  idle           sensors connect and stay idle (memory per session with -gateway-pid)
  echo           raw UDP: sensors send to an echo server (gannet bench echo-server) at -gateway
  mqtt-publish   the ceiling of publish: MQTT clients publish straight to -broker, no gateway

Run "gannet bench SCENARIO -h" for the flags.
`

// bench runs "gannet bench": a simulated MQTT-SN sensor fleet against a
// gateway, or the trivial UDP echo server of the physical-limit measurement.
func bench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fmt.Fprint(stdout, benchUsage)
			return flag.ErrHelp
		}
		fmt.Fprint(stderr, benchUsage)
		return errUsage
	}
	if args[0] == "echo-server" {
		return benchEchoServer(ctx, args[1:], stdout, stderr)
	}
	cfg, out, err := parseBenchFlags(args[0], args[1:], stderr)
	if err != nil {
		return err
	}
	switch {
	case out.child:
		return runBenchChild(ctx, cfg, os.Stdin, stdout)
	case out.procs > 1:
		return runBenchProcs(ctx, args, cfg, out, stdout, stderr)
	}
	return runBench(ctx, cfg, out, stdout, stderr)
}

// benchOutput is where and how the report goes.
type benchOutput struct {
	json     bool
	plot     string
	progress bool
	procs    int  // processes to spread the fleet over
	child    bool // this process is one of a -procs parent's children
	// cpuprofile: where to write a CPU profile of this process (profile.go)
	cpuprofile string
	settle     time.Duration
	pid        int // the gateway's pid, read by the parent
}

// parseBenchFlags turns a scenario's flags into a validated configuration.
func parseBenchFlags(scenario string, args []string, stderr io.Writer) (benchfleet.Config, benchOutput, error) {
	fs := flagSet("bench "+scenario, stderr)
	cfg := benchfleet.Config{Scenario: scenario}
	var out benchOutput
	fs.StringVar(&cfg.Gateway, "gateway", "127.0.0.1:1884", "MQTT-SN gateway (or echo server) UDP `ip:port`")
	fs.StringVar(&cfg.Broker, "broker", "127.0.0.1:1883", "MQTT broker TCP `host:port` for the benchmark's own MQTT client")
	fs.IntVar(&cfg.Sensors, "sensors", 1, "simulated sensors (one UDP socket and client id each)")
	fs.Var((*versionFlag)(&cfg.Version), "protocol", "the sensors' MQTT-SN `version`: 1.2 or 2.0")
	fs.Float64Var(&cfg.Rate, "rate", 0, "messages per second per sensor (fanout: of the publisher); 0 is flat out")
	fs.IntVar(&cfg.QoS, "qos", 0, "QoS: -1 (publish only), 0, 1 or 2")
	fs.BoolVar(&cfg.SubQoS0, "sub-qos0", false, "publish: the MQTT subscriber subscribes at QoS 0 (default: at -qos)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "length of the sending phase (0: until -count)")
	fs.IntVar(&cfg.Count, "count", 0, "messages per sensor (fanout: in total); 0: until -duration")
	fs.IntVar(&cfg.PayloadSize, "payload", 64, fmt.Sprintf("payload size in octets (at least %d, the stamp)", benchfleet.HeaderLen))
	fs.StringVar(&cfg.TopicMode, "topic-mode", benchfleet.TopicRegister, "topic ids: register, predefined or short")
	topicID := fs.Uint("topic-id", 1, "predefined topic `id` (-topic-mode predefined)")
	fs.StringVar(&cfg.ShortTopic, "short-topic", "bn", "two-character short topic `name` (-topic-mode short)")
	fs.StringVar(&cfg.Prefix, "prefix", "bench", "topic prefix: sensors publish to PREFIX/CLIENT_ID; fanout and sleepers use PREFIX/all")
	fs.StringVar(&cfg.SubFilter, "sub-filter", "", "MQTT subscription filter (default PREFIX/# or the short topic); with -topic-mode predefined in fanout/sleepers, the topic the id maps to")
	fs.StringVar(&cfg.ClientPrefix, "client-prefix", "", "client id prefix, at most 16 characters (default: gb + 4 random hex digits + -)")
	bind := fs.String("bind", "", "comma-separated local `addresses` to spread the sensors' sockets over (about 28,000 sockets each)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 0, "sensors connecting (or waking) at once; 0: all")
	fs.DurationVar(&cfg.KeepAlive, "keepalive", 60*time.Second, "sensors' keep-alive period (whole seconds)")
	fs.DurationVar(&cfg.RetryInterval, "retry", 0, "sensors' T_retry (0: snclient's default, 10s)")
	fs.IntVar(&cfg.MaxRetries, "retries", 0, "sensors' N_retry (0: snclient's default, 3)")
	fs.DurationVar(&cfg.Drain, "drain", 5*time.Second, "how long to wait for outstanding deliveries after sending")
	fs.IntVar(&cfg.Window, "window", 0, "publish, echo: messages in flight per sensor end to end (closed loop); 0 sends open loop")
	fs.IntVar(&cfg.Queued, "queued", 10, "sleepers: messages queued for each sleeping sensor")
	fs.DurationVar(&cfg.SleepFor, "sleep", 10*time.Minute, "sleepers: sleep duration the sensors ask for")
	fs.DurationVar(&cfg.Hold, "hold", 0, "idle: how long to keep the sensors connected after measuring")
	fs.DurationVar(&cfg.Settle, "settle", 2*time.Second, "wait before reading the gateway's RSS once sessions exist")
	fs.IntVar(&cfg.GatewayPID, "gateway-pid", 0, "gateway process `pid`: read its RSS (VmRSS) and CPU time from /proc")
	fs.BoolVar(&cfg.Disconnect, "disconnect", true, "end sensors with DISCONNECT (false: just close the sockets)")
	fs.BoolVar(&out.json, "json", false, "print the report as JSON")
	fs.StringVar(&out.plot, "plot", "", "write the latency distribution and throughput over time to `FILE.svg`")
	fs.BoolVar(&out.progress, "progress", true, "show a progress bar on stderr")
	fs.IntVar(&out.procs, "procs", 1, "spread the sensors over this many bench processes (each has its own open-files limit); connect-storm, idle, sleepers, publish")
	fs.StringVar(&out.cpuprofile, "cpuprofile", "", cpuProfileUsage)
	fs.BoolVar(&out.child, "child", false, "internal: run as one process of a -procs run, synchronising over stdin/stdout")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: gannet bench %s [flags]\n\nflags:\n", scenario)
		printFlags(fs.Output(), fs, func(f *flag.Flag) bool { return benchFlagApplies(f, scenario) })
	}
	if err := parse(fs, args); err != nil {
		return cfg, out, err
	}
	if *topicID > 0xFFFF {
		return cfg, out, fmt.Errorf("-topic-id %d: want 1 to 65534: %w", *topicID, errUsage)
	}
	cfg.TopicID = uint16(*topicID)
	if *bind != "" {
		for _, s := range strings.Split(*bind, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(s))
			if err != nil {
				return cfg, out, fmt.Errorf("-bind %q: %w: %w", s, err, errUsage)
			}
			cfg.Bind = append(cfg.Bind, a)
		}
	}
	if cfg.ClientPrefix == "" {
		var b [2]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
		cfg.ClientPrefix = "gb" + hex.EncodeToString(b[:]) + "-"
	}
	if out.plot != "" && !strings.HasSuffix(out.plot, ".svg") {
		return cfg, out, fmt.Errorf("-plot %q: want a file name ending in .svg: %w", out.plot, errUsage)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, out, fmt.Errorf("%w: %w", err, errUsage)
	}
	if out.procs < 1 || out.procs > cfg.Sensors {
		return cfg, out, fmt.Errorf("-procs %d: want 1 to -sensors (%d): %w", out.procs, cfg.Sensors, errUsage)
	}
	if out.procs > 1 && out.cpuprofile != "" {
		return cfg, out, fmt.Errorf("-cpuprofile profiles one process: not with -procs %d: %w", out.procs, errUsage)
	}
	if out.procs > 1 && (cfg.Scenario == benchfleet.ScenarioFanout || cfg.Scenario == benchfleet.ScenarioEcho || cfg.Scenario == benchfleet.ScenarioMQTTPublish) {
		return cfg, out, fmt.Errorf("-procs is not supported for %s: %w", cfg.Scenario, errUsage)
	}
	out.settle, out.pid = cfg.Settle, cfg.GatewayPID
	return cfg, out, nil
}

// benchFlagScenarios names the scenarios a flag matters to, for the flags
// that do not matter to all of them; "gannet bench SCENARIO -h" lists only
// the flags of that scenario.
var benchFlagScenarios = map[string][]string{
	"protocol":    {benchfleet.ScenarioPublish, benchfleet.ScenarioFanout, benchfleet.ScenarioConnectStorm, benchfleet.ScenarioSleepers, benchfleet.ScenarioIdle},
	"window":      {benchfleet.ScenarioPublish, benchfleet.ScenarioEcho, benchfleet.ScenarioMQTTPublish},
	"queued":      {benchfleet.ScenarioSleepers},
	"sleep":       {benchfleet.ScenarioSleepers},
	"hold":        {benchfleet.ScenarioIdle},
	"procs":       {benchfleet.ScenarioConnectStorm, benchfleet.ScenarioIdle, benchfleet.ScenarioSleepers, benchfleet.ScenarioPublish},
	"broker":      {benchfleet.ScenarioPublish, benchfleet.ScenarioFanout, benchfleet.ScenarioSleepers, benchfleet.ScenarioMQTTPublish},
	"sub-filter":  {benchfleet.ScenarioPublish, benchfleet.ScenarioFanout, benchfleet.ScenarioSleepers, benchfleet.ScenarioMQTTPublish},
	"rate":        {benchfleet.ScenarioPublish, benchfleet.ScenarioFanout, benchfleet.ScenarioEcho, benchfleet.ScenarioMQTTPublish},
	"drain":       {benchfleet.ScenarioPublish, benchfleet.ScenarioFanout, benchfleet.ScenarioSleepers, benchfleet.ScenarioEcho, benchfleet.ScenarioMQTTPublish},
	"topic-mode":  {benchfleet.ScenarioPublish, benchfleet.ScenarioFanout, benchfleet.ScenarioSleepers},
	"topic-id":    {benchfleet.ScenarioPublish, benchfleet.ScenarioFanout, benchfleet.ScenarioSleepers},
	"short-topic": {benchfleet.ScenarioPublish, benchfleet.ScenarioFanout, benchfleet.ScenarioSleepers},
}

// benchFlagApplies reports whether "gannet bench SCENARIO -h" lists f.
func benchFlagApplies(f *flag.Flag, scenario string) bool {
	if strings.HasPrefix(f.Usage, "internal:") {
		return false
	}
	only, ok := benchFlagScenarios[f.Name]
	if !ok {
		return true
	}
	for _, s := range only {
		if s == scenario {
			return true
		}
	}
	return false
}

// runBench runs one scenario with a progress bar and prints its report.
func runBench(ctx context.Context, cfg benchfleet.Config, out benchOutput, stdout, stderr io.Writer) error {
	stopProfile, err := startCPUProfile(out.cpuprofile)
	if err != nil {
		return err
	}
	defer func() {
		if err := stopProfile(); err != nil {
			fmt.Fprintln(stderr, "gannet:", err)
		}
	}()
	var prog benchfleet.Progress
	stopBar := func() {}
	if out.progress {
		stopBar = showProgress(&prog, stderr)
	}
	rep, err := benchfleet.Run(ctx, cfg, &prog)
	stopBar()
	if rep == nil {
		return err
	}
	return printReport(rep, err, out, stdout)
}

// printReport writes the plot and prints rep; runErr is the run's own error,
// returned first.
func printReport(rep *benchfleet.Report, runErr error, out benchOutput, stdout io.Writer) error {
	err := runErr
	if out.plot != "" {
		if perr := writePlot(out.plot, rep); perr != nil && err == nil {
			err = perr
		}
	}
	var werr error
	if out.json {
		werr = rep.WriteJSON(stdout)
	} else {
		werr = rep.WriteText(stdout)
	}
	if err == nil {
		err = werr
	}
	return err
}

func writePlot(path string, rep *benchfleet.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: plot: %w", err)
	}
	if err := rep.WriteSVG(f); err != nil {
		f.Close()
		return fmt.Errorf("bench: plot %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("bench: plot %s: %w", path, err)
	}
	return nil
}

// showProgress draws a progress bar per phase of the run on w until the
// returned function is called.
func showProgress(prog *benchfleet.Progress, w io.Writer) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // exits when stop closes done
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		var bar *progressbar.ProgressBar
		phase := ""
		var (
			began time.Time
			n0    int64 // steps done when this drawer first saw the phase
		)
		update := func() {
			name, n, total := prog.Phase()
			if name == "" {
				return
			}
			if name != phase || bar == nil {
				if bar != nil {
					_ = bar.Exit()
					fmt.Fprintln(w)
				}
				phase, began, n0 = name, time.Now(), n
				bar = progressbar.NewOptions64(total,
					progressbar.OptionSetWriter(w),
					progressbar.OptionSetDescription(fmt.Sprintf("%-10s", name)),
					progressbar.OptionShowCount(),
					progressbar.OptionSetWidth(30),
					progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionSetElapsedTime(true),
				)
			}
			bar.Describe(fmt.Sprintf("%-10s %s", name, progressRate(n-n0, time.Since(began))))
			_ = bar.Set64(n)
		}
		for {
			select {
			case <-t.C:
				update()
			case <-done:
				update()
				if bar != nil {
					_ = bar.Exit()
					fmt.Fprintln(w)
				}
				return
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// progressRate is the mean rate of n steps over elapsed, both counted from
// when the drawer first saw the phase; blank for the first second, too
// short to measure. (progressbar's own rate counted steps done before the
// bar existed against the bar's age, and showed 1,338,133 msg/s.)
func progressRate(n int64, elapsed time.Duration) string {
	if elapsed < time.Second || n <= 0 {
		return "          "
	}
	return fmt.Sprintf("%8.0f/s", float64(n)/elapsed.Seconds())
}

// benchEchoServer runs the trivial UDP echo server until ctx ends.
func benchEchoServer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flagSet("bench echo-server", stderr)
	listen := fs.String("listen", "127.0.0.1:1885", "UDP `ip:port` to echo on")
	readers := fs.Int("readers", 1, "goroutines reading and echoing on the one socket")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *readers < 1 {
		return fmt.Errorf("-readers %d: want at least 1: %w", *readers, errUsage)
	}
	s, err := benchfleet.NewEchoServer(*listen, *readers)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "echoing on %v (pid %d)\n", s.Addr(), os.Getpid())
	<-ctx.Done()
	err = s.Close()
	fmt.Fprintf(stdout, "echoed %d datagrams, %d failed\n", s.Echoed(), s.Failed())
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gannet-mqtt/gannet/internal/benchfleet"
	"github.com/gannet-mqtt/gannet/internal/procstat"
)

// A -procs run spreads the fleet over several child processes of "gannet
// bench", because one process may not open more than RLIMIT_NOFILE sockets
// and an unprivileged process cannot raise its hard limit. The children
// synchronise with the parent over their standard streams: at each of the
// run's barriers (see benchfleet.Config.Barrier) a child prints
// "barrier NAME" and waits for a line on stdin; the parent waits until every
// child reached the barrier, reads the gateway's memory and CPU where it
// matters, and lets them all go on. At the end each child prints its JSON
// report and the parent merges them.

const barrierPrefix = "barrier "

// runBenchChild runs this process's share of a -procs run.
func runBenchChild(ctx context.Context, cfg benchfleet.Config, stdin io.Reader, stdout io.Writer) error {
	in := bufio.NewReader(stdin)
	cfg.Barrier = func(name string) error {
		if _, err := fmt.Fprintf(stdout, "%s%s\n", barrierPrefix, name); err != nil {
			return err
		}
		if _, err := in.ReadString('\n'); err != nil {
			return fmt.Errorf("waiting for the parent: %w", err)
		}
		return nil
	}
	rep, err := benchfleet.Run(ctx, cfg, nil)
	if rep == nil {
		return err
	}
	if werr := rep.WriteJSON(stdout); werr != nil && err == nil {
		err = werr
	}
	return err
}

// benchChild is one child process as the parent sees it.
type benchChild struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	barriers chan string // barrier names, closed at EOF
	report   bytes.Buffer
}

// runBenchProcs runs the scenario as out.procs child processes of this
// executable and merges their reports.
func runBenchProcs(ctx context.Context, args []string, cfg benchfleet.Config, out benchOutput,
	stdout, stderr io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench -procs: find own executable: %w", err)
	}
	return runBenchProcsWith(ctx, exe, nil, args, cfg, out, stdout, stderr)
}

// runBenchProcsWith runs the children as exe with the environment env (nil:
// this process's).
func runBenchProcsWith(ctx context.Context, exe string, env []string, args []string, cfg benchfleet.Config,
	out benchOutput, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if _, isFile := stderr.(*os.File); !isFile {
		// exec copies each child's stderr on a goroutine of its own.
		stderr = &lockedWriter{w: stderr}
	}
	var children []*benchChild
	var readers sync.WaitGroup
	defer func() {
		for _, c := range children {
			c.stdin.Close()
		}
		readers.Wait()
	}()
	for i := range out.procs {
		share := cfg.Sensors / out.procs
		if i < cfg.Sensors%out.procs {
			share++
		}
		childArgs := append(append([]string{"bench"}, args...),
			"-child", "-json", "-progress=false", "-procs", "1", "-gateway-pid", "0",
			"-sensors", strconv.Itoa(share),
			"-client-prefix", fmt.Sprintf("%sp%d-", cfg.ClientPrefix, i))
		if cfg.Scenario == benchfleet.ScenarioSleepers {
			// Each child's publisher reaches its own sleepers only.
			childArgs = append(childArgs, "-prefix", fmt.Sprintf("%s/p%d", cfg.Prefix, i))
		}
		cmd := exec.CommandContext(ctx, exe, childArgs...)
		cmd.Stderr = stderr
		cmd.Env = env
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return fmt.Errorf("bench -procs: child %d: %w", i, err)
		}
		pipe, err := cmd.StdoutPipe()
		if err != nil {
			return fmt.Errorf("bench -procs: child %d: %w", i, err)
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("bench -procs: start child %d: %w", i, err)
		}
		c := &benchChild{cmd: cmd, stdin: stdin, barriers: make(chan string, 1)}
		children = append(children, c)
		readers.Add(1)
		go func() { // exits at the child's EOF
			defer readers.Done()
			defer close(c.barriers)
			sc := bufio.NewScanner(pipe)
			sc.Buffer(make([]byte, 64*1024), 16<<20)
			for sc.Scan() {
				line := sc.Text()
				if name, ok := strings.CutPrefix(line, barrierPrefix); ok {
					c.barriers <- name
					continue
				}
				c.report.WriteString(line)
				c.report.WriteByte('\n')
			}
		}()
	}

	g := &benchfleet.GatewayReport{PID: out.pid}
	var cpuStart time.Duration
	var startAt time.Time
	settle := func() {
		if out.settle > 0 {
			t := time.NewTimer(out.settle)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
	}
	// Barriers until every child has finished.
	for {
		name, open := "", 0
		for i, c := range children {
			n, ok := <-c.barriers
			if !ok {
				continue
			}
			open++
			if name != "" && n != name {
				return fmt.Errorf("bench -procs: child %d at barrier %q, others at %q", i, n, name)
			}
			name = n
		}
		if open == 0 {
			break
		}
		if open != len(children) {
			return fmt.Errorf("bench -procs: %d of %d children ended before barrier %q", len(children)-open, len(children), name)
		}
		if out.pid > 0 {
			switch name {
			case "start":
				g.RSSBefore, _ = procstat.ReadRSS(out.pid)
				if cpu, err := procstat.ReadCPU(out.pid); err == nil {
					cpuStart, startAt = cpu, time.Now()
				}
			case "connected", "queued":
				if cpu, err := procstat.ReadCPU(out.pid); err == nil && !startAt.IsZero() && !g.CPUMeasured {
					g.CPUSeconds = (cpu - cpuStart).Seconds()
					g.CPUMeasured = true
				}
				settle()
				g.RSSAfter, _ = procstat.ReadRSS(out.pid)
			case "asleep":
				settle()
				g.RSSAsleep, _ = procstat.ReadRSS(out.pid)
			}
		}
		for _, c := range children {
			if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
				return fmt.Errorf("bench -procs: release barrier %q: %w", name, err)
			}
		}
	}
	readers.Wait()
	var reps []*benchfleet.Report
	var errs []error
	for i, c := range children {
		werr := c.cmd.Wait()
		var rep benchfleet.Report
		if err := json.Unmarshal(c.report.Bytes(), &rep); err != nil {
			errs = append(errs, fmt.Errorf("bench -procs: child %d (%v): no report: %w", i, werr, err))
			continue
		}
		if werr != nil {
			errs = append(errs, fmt.Errorf("bench -procs: child %d: %w", i, werr))
		}
		reps = append(reps, &rep)
	}
	if len(reps) == 0 {
		return errors.Join(errs...)
	}
	merged, err := benchfleet.Merge(reps)
	if err != nil {
		return err
	}
	if out.pid > 0 {
		if c := merged.Connect; c != nil && c.Seconds > 0 {
			g.CPUPercent = 100 * g.CPUSeconds / c.Seconds
		}
		sessions := merged.Sensors
		if c := merged.Connect; c != nil {
			sessions = c.Connected
		}
		if sessions > 0 && g.RSSBefore > 0 && g.RSSAfter > 0 { // 0: not measured
			g.RSSPerSession = (float64(g.RSSAfter) - float64(g.RSSBefore)) / float64(sessions)
		}
		merged.Gateway = g
		merged.Notes = append(merged.Notes, "gateway RSS and CPU read by the parent at the children's barriers; CPU is over the connect phase")
	}
	return printReport(merged, errors.Join(errs...), out, stdout)
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

package bridge_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/bridge"
)

// crashWindow is max_inflight in TestBridgeCrashMidFlight, and Mosquitto's
// max_inflight_messages (the Receive Maximum it advertises).
const crashWindow = 1000

// crashConfig is the bridge configuration shared by the test and its
// helper process.
func crashConfig(server, path string) bridge.Config {
	return bridge.Config{
		Name:          "crash",
		Servers:       []string{server},
		BackoffMin:    20 * time.Millisecond,
		BackoffMax:    200 * time.Millisecond,
		SessionExpiry: time.Hour,
		MaxInflight:   crashWindow,
		Rules:         []bridge.Rule{{Pattern: "site/#", Direction: bridge.Out, QoS: 1}},
		Queue:         bridge.QueueConfig{Path: path},
	}
}

// TestBridgeCrashMidFlight: a backlog of QoS 1 messages (each
// acknowledged to its publisher, so each must arrive) drains from a
// separate process with 1,000 messages in flight to Mosquitto (Mosquitto
// is stopped with SIGSTOP so the acknowledgements stop coming back), which
// is then SIGKILLed: at once, or once it reported the hand-over of its
// 1,000 messages in flight on disk. A bridge reopened from the same file delivers every
// message, in per-publisher order, with at most max_inflight duplicates.
func TestBridgeCrashMidFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a backlog of 10,000 messages twice; skipped with -short")
	}
	t.Run("at once", func(t *testing.T) { testCrashMidFlight(t, false) })
	t.Run("hand-over committed", func(t *testing.T) { testCrashMidFlight(t, true) })
}

func testCrashMidFlight(t *testing.T, committed bool) {
	m := newMosquitto(t, fmt.Sprintf("max_inflight_messages %d\n", crashWindow))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	const pubs, each = 10, 1000
	path := t.TempDir() + "/crash.db"
	cfg := crashConfig(m.url(), path)

	// The backlog, queued while Mosquitto is down.
	core0, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b0, err := bridge.New(cfg, core0, bridge.Options{})
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, core0, pubs, each, 32)
	if err := b0.Close(); err != nil {
		t.Fatal(err)
	}
	core0.Close()

	m.start()
	remote := dialRemote(t, ctx, fmt.Sprintf("127.0.0.1:%d", m.port), "central-app")
	remote.subscribe(t, ctx, "site/#", 1)

	// The draining process.
	child := exec.Command(os.Args[0], "-test.run=^TestBridgeCrashHelper$", "-test.v=false")
	child.Env = append(os.Environ(), "GANNET_BRIDGE_CRASH_HELPER="+m.url()+" "+path)
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	// The helper's last report: in flight, writes pending.
	inflight := make(chan [2]int, 1)
	go func() { // exits when the child's stdout closes
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "inflight "); ok {
				var n [2]int
				f := strings.Fields(v)
				n[0], _ = strconv.Atoi(f[0])
				n[1], _ = strconv.Atoi(f[2])
				select {
				case <-inflight:
				default:
				}
				inflight <- n
			}
		}
		child.Wait()
		close(exited)
	}()
	defer func() {
		child.Process.Kill()
		<-exited
	}()

	var early []*paho.Publish
	for len(early) < 200 {
		early = append(early, remote.next(t, ctx))
	}
	m.signal(syscall.SIGSTOP)
	stopped := true
	defer func() {
		if stopped {
			m.signal(syscall.SIGCONT)
		}
	}()
	for n := [2]int{}; n[0] < crashWindow || committed && n[1] > 0; {
		select {
		case n = <-inflight:
		case <-exited:
			t.Fatal("the bridge process exited before it was killed")
		case <-ctx.Done():
			t.Fatalf("in flight %d, writes pending %d; never %d in flight (and none pending: %v)", n[0], n[1], crashWindow, committed)
		}
	}
	child.Process.Signal(syscall.SIGKILL)
	<-exited
	m.signal(syscall.SIGCONT)
	stopped = false

	b := newBridge(t, crashConfig(m.url(), path), newCore(t), nil)
	st := b.Stats()
	dups, _ := checkArrivals(t, ctx, remote, pubs, pubs*each, 0, early...)
	t.Logf("killed with %d in flight; reopened with %d queued, %d in flight; %d duplicates", crashWindow, st.Depth, st.Inflight, dups)
	// The helper reported its 1,000 in flight with nothing pending; it may
	// have handled a few acknowledgements Mosquitto sent before it stopped
	// after that report, so not all 1,000 need still be in flight on disk.
	if committed && st.Inflight == 0 {
		t.Fatalf("reopened with nothing in flight; want the messages whose hand-over was committed (sent again with DUP)")
	}
	if dups > crashWindow {
		t.Fatalf("%d duplicates; the documented bound is max_inflight = %d", dups, crashWindow)
	}
}

// TestBridgeCrashHelper is the process TestBridgeCrashMidFlight kills: a
// bridge draining the queue file, printing its in-flight count and its
// writes not yet committed every millisecond. It exits by itself after a
// minute.
func TestBridgeCrashHelper(t *testing.T) {
	env := os.Getenv("GANNET_BRIDGE_CRASH_HELPER")
	if env == "" {
		t.Skip("the helper process of TestBridgeCrashMidFlight")
	}
	server, path, _ := strings.Cut(env, " ")
	core := newCore(t)
	b, err := bridge.New(crashConfig(server, path), core, bridge.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	end := time.After(time.Minute)
	w := bufio.NewWriter(os.Stdout)
	for {
		select {
		case <-tick.C:
		case <-end:
			return
		}
		st := b.Stats()
		fmt.Fprintf(w, "inflight %d pending %d\n", st.Inflight, st.PendingWrites)
		w.Flush()
	}
}

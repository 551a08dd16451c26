package bridge_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/internal/mqttsub"
	"github.com/gannet-mqtt/gannet/internal/procstat"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
	"github.com/gannet-mqtt/gannet/mqttcore/bridge"
	"github.com/gannet-mqtt/gannet/mqttcore/listener"
)

func benchPacket(b *testing.B, topic string, payload int) []byte {
	p := packets.NewControlPacket(packets.PUBLISH).Content.(*packets.Publish)
	p.Topic, p.QoS, p.Payload = topic, 1, make([]byte, payload)
	var buf bytes.Buffer
	if _, err := p.WriteTo(&buf); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// benchStore opens a queue for a benchmark: in its own file (store=own,
// queue.path) or in the core's store (store=core, the default of gannet
// serve with [store] type = "bolt"), whose stats are returned too.
func benchStore(b *testing.B, kind, path string) (*bridge.Store, *boltstore.Store) {
	if kind == "own" {
		s, err := bridge.OpenStore(path, bridge.StoreOptions{MaxBytes: 1 << 40})
		if err != nil {
			b.Fatal(err)
		}
		return s, nil
	}
	core, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	s, err := bridge.OpenSharedStore(core, "bridge/bench", bridge.StoreOptions{MaxBytes: 1 << 40})
	if err != nil {
		core.Close()
		b.Fatal(err)
	}
	return s, core
}

// BenchmarkQueueAppend measures Append (a durable, fsync'd append) with
// 1 and with 64 concurrent publishers; with many, group commit shares
// each fsync among them (see the writes/commit metric). store=own is a
// queue.path file of its own, store=core the queue in the core's store:
// both write a log record per group.
func BenchmarkQueueAppend(b *testing.B) {
	for _, kind := range []string{"own", "core"} {
		for _, pubs := range []int{1, 64} {
			b.Run(fmt.Sprintf("store=%s/publishers=%d", kind, pubs), func(b *testing.B) {
				s, core := benchStore(b, kind, filepath.Join(b.TempDir(), "q.db"))
				defer func() {
					s.Close()
					if core != nil {
						core.Close()
					}
				}()
				pkt := benchPacket(b, "site-7/sensors/temperature", 64)
				var c0 boltstore.Stats
				if core != nil {
					c0 = core.Stats()
				}
				b.ReportAllocs()
				b.ResetTimer()
				var next atomic.Int64
				var wg sync.WaitGroup
				for range pubs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for next.Add(1) <= int64(b.N) {
							if err := s.Append(pkt); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
				if core != nil {
					c := core.Stats()
					b.ReportMetric(float64(c.Calls-c0.Calls)/float64(max(c.Batches-c0.Batches, 1)), "writes/commit")
					return
				}
				st := s.Stats()
				b.ReportMetric(float64(st.CommittedOps)/float64(max(st.Commits, 1)), "writes/commit")
			})
		}
	}
}

// BenchmarkDrain100k measures how fast a bridge drains 100,000 queued QoS 1
// messages (64-byte payloads) to a real Mosquitto after an outage, until a
// QoS 1 subscriber on that Mosquitto has all of them: with Mosquitto's
// default max_inflight_messages (20, its Receive Maximum and the window
// towards the subscriber) and with 1,000. cpu-us/msg is this process's CPU
// time (the bridge and the test's subscriber, not Mosquitto) per message.
// The subscriber is a counter (dialCounter) that costs little of that CPU.
// mosquitto-cpu-us/msg is Mosquitto's CPU time per message: on a machine
// where the two share the cores, what it leaves the bridge.
//
// window is the bridge's max_inflight: the default (256) and 1,000.
func BenchmarkDrain100k(b *testing.B) {
	for _, kind := range []string{"own", "core"} {
		for _, c := range []struct{ remote, window int }{{20, 0}, {1000, 0}, {1000, 1000}} {
			name := fmt.Sprintf("store=%s/remote_inflight=%d", kind, c.remote)
			if c.window > 0 {
				name += fmt.Sprintf("/window=%d", c.window)
			}
			b.Run(name, func(b *testing.B) {
				m := newMosquitto(b, fmt.Sprintf("max_inflight_messages %d\n", c.remote))
				m.start()
				benchDrain(b, kind, m, c.window)
			})
		}
		// The same drain to Gannet's own broker core and MQTT listener, in
		// this process, instead of Mosquitto: what the bridge does when
		// the remote is not the bottleneck (its CPU is in cpu-us/msg).
		b.Run(fmt.Sprintf("store=%s/remote=gannet/window=1000", kind), func(b *testing.B) {
			benchDrain(b, kind, startGannetRemote(b), 1000)
		})
	}
}

// drainRemote is the broker a drain benchmark sends to.
type drainRemote interface {
	url() string
	hostPort() string
	// cpu is the CPU time it has used, if it runs in a process of its
	// own; 0 if it runs in this one.
	cpu() time.Duration
}

func (m *mosquitto) hostPort() string { return fmt.Sprintf("127.0.0.1:%d", m.port) }

// gannetRemote is Gannet's broker core and MQTT listener serving in this
// process.
type gannetRemote struct{ addr string }

func (g gannetRemote) url() string      { return "mqtt://" + g.addr }
func (g gannetRemote) hostPort() string { return g.addr }
func (gannetRemote) cpu() time.Duration { return 0 }

// startGannetRemote serves a broker core without a store on a loopback
// port, with Mosquitto's windows in the Mosquitto variants (1,000 in
// flight, room for the whole backlog queued), until the benchmark ends.
func startGannetRemote(b *testing.B) gannetRemote {
	b.Helper()
	broker, err := mqttcore.New(mqttcore.Config{SysDisabled: true, MaxInflight: 1000, MaxQueued: 200_000}, mqttcore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := listener.NewServer(broker, listener.Config{Address: "127.0.0.1:0"}, nil, slog.New(slog.DiscardHandler)) // Serve takes its own listener below
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }() // returns when Close closes ln
	b.Cleanup(func() {
		srv.Close()
		<-done
		broker.Close()
	})
	return gannetRemote{addr: ln.Addr().String()}
}

func benchDrain(b *testing.B, kind string, m drainRemote, window int) {
	const n = 100_000
	pkt := benchPacket(b, "edge/sensors/t", 64)
	b.ReportAllocs()
	var total, cpu, mcpu, commitTime time.Duration
	var commits, writes uint64
	for i := range b.N {
		b.StopTimer()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		path := filepath.Join(b.TempDir(), fmt.Sprintf("q%d.db", i))
		s, core := benchStore(b, kind, path)
		var wg sync.WaitGroup
		var next atomic.Int64
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= n {
					if err := s.Append(pkt); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		s.Close()
		sub := dialCounter(b, ctx, m.hostPort(), fmt.Sprintf("sub-%d", i), "edge/#", n, 64)
		cfg := testConfig(b, "bench", m.url(), bridge.Rule{Pattern: "edge/#", Direction: bridge.Out, QoS: 1})
		cfg.Queue.Path = path
		cfg.Queue.MaxBytes = 1 << 40
		cfg.MaxInflight = window
		var opts bridge.Options
		var c0 boltstore.Stats
		if core != nil {
			opts.Backend = core
			c0 = core.Stats()
		}
		b.StartTimer()
		start, cpu0, mcpu0 := time.Now(), processCPU(), m.cpu()
		br, err := bridge.New(cfg, newCore(b), opts)
		if err != nil {
			b.Fatal(err)
		}
		sub.wait(b, ctx)
		total += time.Since(start)
		cpu += processCPU() - cpu0
		mcpu += m.cpu() - mcpu0
		b.StopTimer()
		if core != nil {
			c := core.Stats()
			commits, writes, commitTime = commits+c.Batches-c0.Batches, writes+c.Calls-c0.Calls, commitTime+c.BatchTime-c0.BatchTime
		} else {
			c, w, t := commitStats(br)
			commits, writes, commitTime = commits+c, writes+w, commitTime+t
		}
		br.Close()
		if core != nil {
			core.Close()
		}
		cancel()
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n*b.N), "cpu-us/msg")
	if _, ok := m.(*mosquitto); ok {
		b.ReportMetric(float64(mcpu.Microseconds())/float64(n*b.N), "mosquitto-cpu-us/msg")
	}
	if commits > 0 {
		b.ReportMetric(float64(commitTime.Microseconds())/1e3/float64(commits), "ms/commit")
		b.ReportMetric(float64(writes)/float64(commits), "writes/commit")
	}
}

// processCPU returns this process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpu returns the CPU time Mosquitto has used so far (at /proc's 10 ms
// resolution), 0 where there is none.
func (m *mosquitto) cpu() time.Duration {
	m.mu.Lock()
	cmd := m.cmd
	m.mu.Unlock()
	if cmd == nil {
		return 0
	}
	d, _ := procstat.ReadCPU(cmd.Process.Pid)
	return d
}

// commitStats returns a bridge's commits, the writes in them and their
// total time.
func commitStats(br *bridge.Bridge) (commits, writes uint64, t time.Duration) {
	st := br.Stats()
	return st.Commits, st.CommittedOps, st.CommitTime
}

// counter is a benchmark's subscriber on Mosquitto: a paho client on
// internal/mqttsub's connection, which takes QoS 1 PUBLISHes out of
// paho's path and coalesces their PUBACKs. A plain paho subscriber with
// one PUBACK write per message took most of this process's CPU during a
// drain, on the same two cores as the bridge it measured.
type counter struct {
	c    *paho.Client
	conn *mqttsub.Conn
	got  atomic.Int64
	bad  atomic.Int64 // payloads of the wrong size
	want int64
	done chan struct{} // closed when want messages have arrived
}

// dialCounter subscribes at QoS 1 to filter on the broker at addr and
// counts the PUBLISHes that arrive, each of which must carry size octets.
func dialCounter(b *testing.B, ctx context.Context, addr, id, filter string, want, size int) *counter {
	b.Helper()
	tcp, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		b.Fatalf("dial remote %s: %v", addr, err)
	}
	c := &counter{want: int64(want), done: make(chan struct{})}
	c.conn = mqttsub.NewConn(tcp, func(payload []byte) {
		if len(payload) != size {
			c.bad.Add(1)
		}
		if c.got.Add(1) == c.want {
			close(c.done)
		}
	})
	c.c = paho.NewClient(paho.ClientConfig{Conn: c.conn})
	if _, err := c.c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 60}); err != nil {
		c.conn.Close()
		b.Fatalf("connect counter %s: %v", id, err)
	}
	b.Cleanup(func() {
		_ = c.c.Disconnect(&paho.Disconnect{})
		c.conn.Close()
	})
	sa, err := c.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
	if err != nil || len(sa.Reasons) != 1 || sa.Reasons[0] != 1 {
		b.Fatalf("subscribe %s at QoS 1: %v (reasons %v)", filter, err, sa)
	}
	return c
}

// wait returns when every message has arrived, each the size expected,
// and fails the benchmark when ctx ends first.
func (c *counter) wait(b *testing.B, ctx context.Context) {
	b.Helper()
	select {
	case <-c.done:
	case <-ctx.Done():
		b.Fatalf("subscriber got %d of %d messages: %v", c.got.Load(), c.want, ctx.Err())
	}
	if n := c.bad.Load(); n > 0 {
		b.Fatalf("subscriber got %d messages of the wrong size", n)
	}
}

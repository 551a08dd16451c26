package bridge_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"

	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
	"github.com/gannet-mqtt/gannet/mqttcore/bridge"
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
// queue.path file of its own (a bbolt transaction per group), store=core
// the queue in the core's store (a log record per group).
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
				benchDrain(b, kind, fmt.Sprintf("max_inflight_messages %d\n", c.remote), c.window)
			})
		}
	}
}

func benchDrain(b *testing.B, kind, mosquittoConf string, window int) {
	const n = 100_000
	m := newMosquitto(b, mosquittoConf)
	m.start()
	pkt := benchPacket(b, "edge/sensors/t", 64)
	b.ReportAllocs()
	var total, cpu, commitTime time.Duration
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
		remote := dialRemote(b, ctx, fmt.Sprintf("127.0.0.1:%d", m.port), fmt.Sprintf("sub-%d", i))
		remote.subscribe(b, ctx, "edge/#", 1)
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
		start, cpu0 := time.Now(), processCPU()
		br, err := bridge.New(cfg, newCore(b), opts)
		if err != nil {
			b.Fatal(err)
		}
		for got := 0; got < n; got++ {
			remote.next(b, ctx)
		}
		total += time.Since(start)
		cpu += processCPU() - cpu0
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

// commitStats returns a bridge's commits, the writes in them and their
// total time.
func commitStats(br *bridge.Bridge) (commits, writes uint64, t time.Duration) {
	st := br.Stats()
	return st.Commits, st.CommittedOps, st.CommitTime
}

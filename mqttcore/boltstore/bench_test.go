package boltstore_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// sleeper is the record of a typical sleeping sensor: one subscription,
// a will, deadlines.
func sleeper(id uint64) *mqttcore.SessionRecord {
	return &mqttcore.SessionRecord{
		ID: id, ClientID: fmt.Sprintf("sensor-%06d", id), State: mqttcore.StateAsleep,
		Expiry: 24 * time.Hour, SleepAt: ts(int64(id)), ExpireAt: ts(int64(id) + 86400),
		Subscriptions: []mqttcore.SubscriptionRecord{{Filter: fmt.Sprintf("sensors/%d/cmd/#", id), Options: mqttcore.SubOptions{QoS: 1}}},
	}
}

// frontEnd is 60 bytes of front-end state: a few topic registrations.
var frontEnd = []byte("\x01\x04\x00\x01sensors/x/temp\x00\x02sensors/x/hum\x00\x03sensors/x/bat\x00\x04sensors/rs")

// buildSessions writes n sleeping sessions (each with queued messages
// queued to it) to a new store at path.
func buildSessions(tb testing.TB, path string, n, queued int) {
	if len(frontEnd) != 60 {
		tb.Fatalf("front-end state of %d bytes; want 60", len(frontEnd))
	}
	s, err := boltstore.Open(path, boltstore.Options{Sync: boltstore.SyncNever})
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	var seq uint64
	const batch = 1000
	for first := 1; first <= n; first += batch {
		ops := make([]mqttcore.Op, 0, batch*(2+queued))
		for id := uint64(first); id < uint64(first+batch) && id <= uint64(n); id++ {
			ops = append(ops, sessionOp(sleeper(id)), mqttcore.Op{Kind: mqttcore.OpFrontEnd, SessionID: id, FrontEnd: frontEnd})
			for range queued {
				seq++
				ops = append(ops, entryOp(id, mqttcore.QueuedRecord{Seq: seq, QoS: 1,
					Message: &mqttcore.Message{Topic: fmt.Sprintf("sensors/%d/cmd/set", id), Payload: []byte(`{"interval":60}`), QoS: 1, Origin: "app"}}))
			}
		}
		mustCommit(tb, s, ops...)
	}
}

// BenchmarkLoad measures a restart: Open (with its file check) and Load
// of 10,000 and 100,000 stored sleeping sessions, with no queued message
// and with one each. It reports the pages in use and the disk blocks per
// session.
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		for _, queued := range []int{0, 1} {
			path := filepath.Join(b.TempDir(), "core.db")
			buildSessions(b, path, n, queued)
			b.Run(fmt.Sprintf("sessions=%d/queued=%d", n, queued), func(b *testing.B) {
				var used int64
				cpu0 := cpuTime(b)
				for b.Loop() {
					s, err := boltstore.Open(path, boltstore.Options{})
					if err != nil {
						b.Fatal(err)
					}
					got := 0
					if _, err := s.Load(func(r *mqttcore.SessionRecord) error {
						got++
						if len(r.Queue) != queued {
							return fmt.Errorf("session %d: %d queued; want %d", r.ID, len(r.Queue), queued)
						}
						return nil
					}, func(*mqttcore.Message) error { return nil }); err != nil {
						b.Fatal(err)
					}
					if got != n {
						b.Fatalf("loaded %d sessions; want %d", got, n)
					}
					used = s.Stats().UsedBytes
					s.Close()
				}
				b.ReportMetric(float64((cpuTime(b)-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
				var st syscall.Stat_t
				if err := syscall.Stat(path, &st); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(used)/float64(n), "used-B/session")
				b.ReportMetric(float64(st.Blocks*512)/float64(n), "disk-B/session")
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "sessions/s")
			})
		}
	}
}

// cpuTime is the CPU time (user and system) the process has used: on a
// shared machine it says more about a restart's cost than wall time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCommit measures group commit under SyncAlways: c committers
// each commit a typical publish (one OpEntry with a new message; with
// qos2, also the session header rewritten with the inbound QoS 2 id) and
// wait for its done, as a publisher waits for its PUBACK. It reports
// commits per fdatasync of the log (the bbolt file is written behind it,
// at checkpoints).
func BenchmarkCommit(b *testing.B) {
	for _, kind := range []string{"entry", "entry+qos2-header"} {
		for _, c := range []int{1, 16, 100} {
			b.Run(fmt.Sprintf("%s/committers=%d", kind, c), func(b *testing.B) {
				benchCommit(b, c, kind != "entry", boltstore.Options{})
			})
		}
	}
	for _, c := range []int{16, 100} {
		b.Run(fmt.Sprintf("entry/committers=%d/maxdelay=1ms", c), func(b *testing.B) {
			benchCommit(b, c, false, boltstore.Options{MaxDelay: time.Millisecond})
		})
	}
	b.Run("entry/committers=100/sync=never", func(b *testing.B) {
		benchCommit(b, 100, false, boltstore.Options{Sync: boltstore.SyncNever})
	})
}

func benchCommit(b *testing.B, committers int, qos2 bool, o boltstore.Options) {
	s, _ := tempStore(b, o)
	var ops []mqttcore.Op
	for id := 1; id <= committers; id++ {
		ops = append(ops, sessionOp(sleeper(uint64(id))))
	}
	mustCommit(b, s, ops...)
	before := s.Stats()
	var seq atomic.Uint64
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, committers)
	b.ResetTimer()
	for g := range committers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sid := uint64(g + 1)
			hdr := sleeper(sid)
			done := make(chan error, 1)
			cb := func(err error) { done <- err }
			for next.Add(1) <= int64(b.N) {
				n := seq.Add(1)
				m := &mqttcore.Message{Topic: "sensors/7/temp", Payload: []byte("21.5"), QoS: 1, Origin: "sensor-000007"}
				ops := []mqttcore.Op{entryOp(sid, mqttcore.QueuedRecord{Seq: n, Message: m, QoS: 1})}
				if qos2 {
					h := *hdr
					h.InboundQoS2 = []uint16{uint16(n)}
					ops = append(ops, sessionOp(&h))
				}
				s.Commit(ops, cb)
				if err := <-done; err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	select {
	case err := <-errc:
		b.Fatal(err)
	default:
	}
	st := s.Stats()
	if syncs := st.LogSyncs - before.LogSyncs; syncs > 0 {
		b.ReportMetric(float64(st.Calls-before.Calls)/float64(syncs), "commits/sync")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
	b.ReportMetric(float64(st.QueueWaits), "queue-waits")
	if os.Getenv("BOLTSTORE_BENCH_STATS") != "" {
		b.Logf("%+v", st)
	}
}

// BenchmarkReplay measures a restart after a crash with a full log: Open
// (which applies the log to the bbolt file) and Load, when the last
// checkpoint is the default CheckpointBytes (8 MiB) of records behind:
// 100 persistent sessions, each with queued messages of 64-byte payloads
// that only the log holds.
func BenchmarkReplay(b *testing.B) {
	const sessions = 100
	o := boltstore.Options{Sync: boltstore.SyncNever, CheckpointBytes: 1 << 30, CheckpointInterval: time.Hour}
	src := filepath.Join(b.TempDir(), "core.db")
	s, err := boltstore.Open(src, o)
	if err != nil {
		b.Fatal(err)
	}
	for id := uint64(1); id <= sessions; id++ {
		mustCommit(b, s, sessionOp(sleeper(id)))
	}
	if err := s.Checkpoint(); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 64)
	var seq uint64
	for s.Stats().LogBytes < boltstore.DefaultCheckpointBytes {
		ops := make([]mqttcore.Op, 0, sessions)
		for id := uint64(1); id <= sessions; id++ {
			seq++
			ops = append(ops, entryOp(id, mqttcore.QueuedRecord{Seq: seq, QoS: 1,
				Message: &mqttcore.Message{Topic: fmt.Sprintf("sensors/%d/cmd", id), Payload: payload, QoS: 1}}))
		}
		mustCommit(b, s, ops...)
	}
	logged := s.Stats().LogBytes
	if err := boltstore.Crash(s); err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuTime(b)
	for b.Loop() {
		b.StopTimer()
		dst := filepath.Join(b.TempDir(), "core.db")
		for _, suffix := range []string{"", ".wal.0", ".wal.1"} {
			data, err := os.ReadFile(src + suffix)
			if err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(dst+suffix, data, 0o600); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		s, err := boltstore.Open(dst, boltstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		if _, err := s.Load(func(r *mqttcore.SessionRecord) error { n += len(r.Queue); return nil },
			func(*mqttcore.Message) error { return nil }); err != nil {
			b.Fatal(err)
		}
		if n != int(seq) {
			b.Fatalf("loaded %d queued messages; want %d", n, seq)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64((cpuTime(b)-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(logged)/(1<<20), "log-MiB")
	b.ReportMetric(float64(seq), "messages")
}

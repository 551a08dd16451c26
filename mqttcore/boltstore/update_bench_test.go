package boltstore_test

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// BenchmarkUpdate measures Update calls as the bridge's queue makes them
// in a shared store: c writers each put one 100-byte value in a bucket of
// their own and wait for its done. Update calls go to the bbolt file (two
// fdatasyncs per transaction), after whatever the log holds.
func BenchmarkUpdate(b *testing.B) {
	for _, c := range []int{1, 100} {
		b.Run(fmt.Sprintf("writers=%d", c), func(b *testing.B) {
			s, _ := tempStore(b, boltstore.Options{})
			bucket := []byte("bridge.bench")
			errc := make(chan error, 1)
			s.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucketIfNotExists(bucket); return err }, func(err error) { errc <- err })
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
			val := make([]byte, 100)
			var next, seq atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range c {
				wg.Add(1)
				go func() {
					defer wg.Done()
					done := make(chan error, 1)
					for next.Add(1) <= int64(b.N) {
						k := binary.BigEndian.AppendUint64(nil, uint64(seq.Add(1)))
						s.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucket).Put(k, val) }, func(err error) { done <- err })
						if err := <-done; err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
		})
	}
}

package boltstore_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// benchFE is a front-end for the benchmark: Notify wakes a drainer, Acked
// completes a publisher's wait.
type benchFE struct {
	notify chan struct{}
	acks   chan mqttcore.Ack
}

func (f *benchFE) Notify() {
	select {
	case f.notify <- struct{}{}:
	default:
	}
}
func (f *benchFE) Close(error)          {}
func (f *benchFE) Acked(a mqttcore.Ack) { f.acks <- a }

// BenchmarkCoreQoS1Publish measures QoS 1 publishing through the broker
// core as the gateway and the listener drive it: publishers, each with one
// message in flight (an MQTT-SN sensor's rule), publish to topics a
// persistent session subscribes to, and that session acknowledges every
// delivery. With the bbolt journal every PUBACK waits for the commit that
// makes the message durable (fsync on); with memory nothing waits. ns/op is
// per message; msgs/s is reported.
//
//	go test -run '^$' -bench CoreQoS1Publish -benchtime 20000x ./mqttcore/boltstore/
func BenchmarkCoreQoS1Publish(b *testing.B) {
	for _, store := range []string{"memory", "bolt", "bolt-delay-1ms", "bolt-sync-never"} {
		for _, pubs := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/publishers=%d", store, pubs), func(b *testing.B) {
				benchCorePublish(b, store, pubs)
			})
		}
	}
}

func benchCorePublish(b *testing.B, store string, pubs int) {
	var j mqttcore.Journal
	var st *boltstore.Store
	if store != "memory" {
		opts := boltstore.Options{}
		switch store {
		case "bolt-sync-never":
			opts.Sync = boltstore.SyncNever
		case "bolt-delay-1ms":
			opts.MaxDelay = time.Millisecond
		}
		var err error
		if st, err = boltstore.Open(filepath.Join(b.TempDir(), "core.db"), opts); err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		j = st
	}
	br, err := mqttcore.New(mqttcore.Config{SysDisabled: true, MaxQueued: 100_000, MaxInflight: 1000}, mqttcore.Options{Journal: j})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()

	subFE := &benchFE{notify: make(chan struct{}, 1), acks: make(chan mqttcore.Ack, 16)}
	sub, _, err := br.Attach(subFE, mqttcore.ConnectOptions{ClientID: "app", SessionExpiry: mqttcore.NeverExpire})
	if err != nil {
		b.Fatal(err)
	}
	if err := sub.Subscribe("bench/#", mqttcore.SubOptions{QoS: 1}); err != nil {
		b.Fatal(err)
	}
	total := b.N
	done := make(chan struct{})
	go func() { // the subscriber: exits after total deliveries
		defer close(done)
		n := 0
		for n < total {
			d, ok := sub.Next()
			if !ok {
				<-subFE.notify
				continue
			}
			if err := sub.Ack(d.PacketID); err != nil {
				b.Error(err)
				return
			}
			n++
		}
	}()

	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for p := range pubs {
		n := total / pubs
		if p < total%pubs {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			fe := &benchFE{notify: make(chan struct{}, 1), acks: make(chan mqttcore.Ack, 1)}
			c, _, err := br.Attach(fe, mqttcore.ConnectOptions{ClientID: fmt.Sprintf("sensor-%d", p), SessionExpiry: mqttcore.NeverExpire})
			if err != nil {
				b.Error(err)
				return
			}
			topic := fmt.Sprintf("bench/%d", p)
			payload := []byte("21.5")
			for i := range n {
				st, err := c.Publish(&mqttcore.Message{Topic: topic, Payload: payload, QoS: 1}, uint16(i%65535+1), 0)
				if err != nil {
					b.Error(err)
					return
				}
				if st == mqttcore.PublishPending {
					if a := <-fe.acks; a.Err != nil {
						b.Error(a.Err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	<-done
	b.StopTimer()
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "msgs/s")
	if st != nil {
		if s := st.Stats(); s.Batches > 0 {
			b.ReportMetric(float64(total)/float64(s.Batches), "msgs/tx")
			b.ReportMetric(float64(s.BatchTime.Microseconds())/float64(s.Batches), "µs/tx")
			if s.LogSyncs > 0 {
				b.ReportMetric(float64(total)/float64(s.LogSyncs), "msgs/sync")
			}
		}
	}
}

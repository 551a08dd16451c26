package gateway_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/internal/lossy"
	"github.com/gannet-mqtt/gannet/internal/memlink"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/snclient"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// TestQoSOverLossyLink sends 2,000 QoS 1 and 2,000 QoS 2 messages from one
// sensor through the gateway and the core to another sensor, over links
// that lose 20% of datagrams, duplicate 5% and reorder 10%, in both
// directions (every sender's writes are impaired: sensors' and the
// gateway's). QoS 1 must deliver every message at least once, QoS 2
// exactly once. It runs in a synctest bubble: retries pass in fake time.
func TestQoSOverLossyLink(t *testing.T) {
	const count = 2000
	impair := func(seed uint64) lossy.Config {
		return lossy.Config{Loss: 0.2, Duplicate: 0.05, Reorder: 0.1, Delay: 5 * time.Millisecond, Jitter: 10 * time.Millisecond, Seed: seed}
	}
	for _, qos := range []sn.QoS{1, 2} {
		t.Run(fmt.Sprintf("QoS %d", qos), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b, err := mqttcore.New(mqttcore.Config{SysDisabled: true, MaxQueued: 2 * count}, mqttcore.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				// Nretry 30 at Tretry 200ms: an exchange fails only if 31
				// tries in a row lose a datagram (0.36^31).
				g, err := gateway.New(gateway.Config{Loops: 2, RetryInterval: 200 * time.Millisecond, MaxRetries: 30}, b, gateway.Options{})
				if err != nil {
					t.Fatal(err)
				}
				n := memlink.New()
				inner, _ := n.Listen("10.0.0.1:1884")
				gwLink := lossy.Wrap(inner, impair(1))
				served := make(chan error, 1)
				go func() { served <- g.Serve(gwLink) }()
				defer func() {
					g.Close()
					if err := <-served; err != nil {
						t.Errorf("Serve = %v", err)
					}
				}()
				gw := inner.LocalAddr()

				sensor := func(addr string, seed uint64, id string, h snclient.Handler) *snclient.Client {
					l, err := n.Listen(addr)
					if err != nil {
						t.Fatal(err)
					}
					c, err := snclient.New(lossy.Wrap(l, impair(seed)), gw, snclient.Options{
						ClientID: id, KeepAlive: 65535 * time.Second,
						RetryInterval: 200 * time.Millisecond, MaxRetries: 30, Handler: h,
					})
					if err != nil {
						t.Fatal(err)
					}
					return c
				}
				var mu sync.Mutex
				seen := make(map[int]int, count)
				done := make(chan struct{})
				sub := sensor("10.0.0.3:5000", 3, "subscriber", func(m snclient.Message) {
					i, err := strconv.Atoi(string(m.Payload))
					if err != nil {
						t.Errorf("unexpected payload %q", m.Payload)
						return
					}
					mu.Lock()
					seen[i]++
					if len(seen) == count && seen[i] == 1 {
						close(done)
					}
					mu.Unlock()
				})
				defer sub.Close()
				pub := sensor("10.0.0.2:5000", 2, "publisher", nil)
				defer pub.Close()

				ctx, cancel := context.WithTimeout(context.Background(), 24*time.Hour) // fake time
				defer cancel()
				for _, c := range []*snclient.Client{sub, pub} {
					if err := c.Connect(ctx); err != nil {
						t.Fatalf("%s: CONNECT over the lossy link: %v", c.ClientID(), err)
					}
				}
				if _, err := sub.Subscribe(ctx, snclient.Named("lossy/#"), qos); err != nil {
					t.Fatalf("SUBSCRIBE: %v", err)
				}
				for i := range count {
					if err := pub.Publish(ctx, snclient.Named("lossy/data"), qos, false, []byte(strconv.Itoa(i))); err != nil {
						t.Fatalf("PUBLISH %d at QoS %d: %v", i, qos, err)
					}
				}
				select {
				case <-done:
				case <-ctx.Done():
				}
				// Let late duplicates arrive before counting them.
				time.Sleep(time.Minute) // fake time
				synctest.Wait()

				mu.Lock()
				defer mu.Unlock()
				missing, dups := 0, 0
				for i := range count {
					switch c := seen[i]; {
					case c == 0:
						missing++
					case c > 1:
						dups += c - 1
					}
				}
				if missing > 0 {
					t.Errorf("QoS %d: %d of %d messages never arrived", qos, missing, count)
				}
				if qos == 2 && dups > 0 {
					t.Errorf("QoS 2: %d duplicate deliveries; want exactly once", dups)
				}
				gs, ls := g.Stats(), gwLink.Stats()
				t.Logf("QoS %d: %d delivered (%d duplicates); gateway retransmits %d; gateway link dropped %d, duplicated %d, reordered %d of %d; publisher retransmitted %d",
					qos, count-missing, dups, gs.Retransmits, ls.Dropped, ls.Duplicated, ls.Reordered, ls.Written, pub.Stats().Retransmitted)
				if ls.Dropped == 0 || ls.Duplicated == 0 || ls.Reordered == 0 {
					t.Errorf("the link was not impaired: %+v", ls)
				}
			})
		})
	}
}

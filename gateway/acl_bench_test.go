//go:build unix

package gateway_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/auth"
	"github.com/gannet-mqtt/gannet/radio"
	"github.com/gannet-mqtt/gannet/snclient"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// benchACL returns a 1,000-line ACL for sensors sensor-000 ... sensor-099
// and the subscriber "app": 98 pattern lines, and per sensor a user line
// and eight topic lines (its data topic among them), as a site with a few
// rules per device would write it.
func benchACL(sensors int) string {
	var b strings.Builder
	lines := 0
	for i := range 98 {
		fmt.Fprintf(&b, "pattern write area%d/%%c/#\n", i)
		lines++
	}
	b.WriteString("user app\ntopic read sensors/#\n")
	lines += 2
	for i := range sensors {
		id := fmt.Sprintf("sensor-%03d", i)
		fmt.Fprintf(&b, "user %s\n", id)
		for _, r := range []string{
			"read cmd/%s/#", "write status/%s", "write alarms/%s/+", "read config/%s",
			"write sensors/%s/battery", "write sensors/%s/rssi", "write sensors/%s/data", "read time/%s",
		} {
			fmt.Fprintf(&b, "topic "+r+"\n", id)
		}
		lines += 9
	}
	for ; lines < 1000; lines++ {
		fmt.Fprintf(&b, "pattern read pad%d/%%c\n", lines)
	}
	return b.String()
}

// appFE is an MQTT-like subscriber session: on Notify it drains the
// session's deliveries and acknowledges them, as the MQTT listener does, so
// the per-delivery read check of the ACL is on the measured path.
type appFE struct {
	wake chan struct{}
}

func (f *appFE) Notify() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *appFE) Close(error) {}

func (f *appFE) Acked(mqttcore.Ack) {}

// BenchmarkACLPublish100Sensors measures QoS 1 publish throughput from 100
// sensors (snclient over loopback UDP, one message in flight each) through
// the gateway and the core to one subscriber session, with no ACL and with
// a 1,000-line ACL (publish checked per message, read checked per
// delivery). msgs/s and cpu-µs/msg are the figures in
// docs/performance.md.
func BenchmarkACLPublish100Sensors(b *testing.B) {
	const sensors = 100
	for _, tc := range []struct {
		name  string
		acl   string
		radio bool // serve a radio.UDPLink (recvmmsg, and sendmmsg: a BatchLink), not a net.UDPConn
	}{{"acl=none", "", false}, {"acl=1000-lines", benchACL(sensors), false}, {"acl=none/radio", "", true}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			var az mqttcore.Authorizer
			if tc.acl != "" {
				acl, err := auth.ParseACL(strings.NewReader(tc.acl), "bench")
				if err != nil {
					b.Fatal(err)
				}
				az = acl
			}
			// The subscriber's queue holds every message: a drop would be
			// the subscriber's lag, not the ACL's cost.
			core, err := mqttcore.New(mqttcore.Config{SysDisabled: true, MaxQueued: 1 << 20}, mqttcore.Options{Authorizer: az})
			if err != nil {
				b.Fatal(err)
			}
			g, err := gateway.New(gateway.Config{}, core, gateway.Options{})
			if err != nil {
				b.Fatal(err)
			}
			var udp gateway.Link
			if tc.radio {
				udp, err = radio.ListenUDP(radio.ListenerConfig{Network: "udp4", Address: "127.0.0.1:0"})
			} else {
				udp, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			}
			if err != nil {
				b.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- g.Serve(udp) }() // ends when the gateway closes udp
			b.Cleanup(func() { g.Close(); <-served; core.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()

			// The subscriber session.
			fe := &appFE{wake: make(chan struct{}, 1)}
			app, _, err := core.Attach(fe, mqttcore.ConnectOptions{ClientID: "app", Username: "app", CleanStart: true})
			if err != nil {
				b.Fatal(err)
			}
			if err := app.Subscribe("sensors/#", mqttcore.SubOptions{QoS: mqttcore.AtLeastOnce}); err != nil {
				b.Fatal(err)
			}
			var delivered atomic.Int64
			stop := make(chan struct{})
			drained := make(chan struct{})
			go func() { // drains deliveries until stop closes
				defer close(drained)
				for {
					select {
					case <-fe.wake:
					case <-stop:
						return
					}
					for {
						d, ok := app.Next()
						if !ok {
							break
						}
						if d.QoS > 0 {
							_ = app.Ack(d.PacketID)
						}
						delivered.Add(1)
					}
				}
			}()
			defer func() { close(stop); <-drained }()

			clients := make([]*snclient.Client, sensors)
			for i := range clients {
				id := fmt.Sprintf("sensor-%03d", i)
				c, err := snclient.Dial(ctx, "udp4", udp.LocalAddr().String(), snclient.Options{ClientID: id, KeepAlive: 10 * time.Minute})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				if err := c.Connect(ctx); err != nil {
					b.Fatal(err)
				}
				if _, err := c.Register(ctx, "sensors/"+id+"/data"); err != nil {
					b.Fatal(err)
				}
				clients[i] = c
			}
			payload := make([]byte, 32)
			var next atomic.Int64
			n := int64(b.N)
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime(b)
			var wg sync.WaitGroup
			for i, c := range clients {
				wg.Add(1)
				go func() { // publishes until b.N messages are taken
					defer wg.Done()
					t := snclient.Named(fmt.Sprintf("sensors/sensor-%03d/data", i))
					for next.Add(1) <= n {
						if err := c.Publish(ctx, t, sn.QoS1, false, payload); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			for delivered.Load() < n && ctx.Err() == nil { // deliveries trail the last PUBACKs
				select {
				case <-time.After(time.Millisecond): // poll a counter; bounded by ctx
				case <-ctx.Done():
				}
			}
			el, cpu := time.Since(start), cpuTime(b)-cpu0
			b.StopTimer()
			if got := delivered.Load(); got != n {
				b.Fatalf("%d of %d messages delivered (core: %+v)", got, n, core.Stats())
			}
			b.ReportMetric(float64(n)/el.Seconds(), "msgs/s")
			// CPU time per message, sensors' included: on a shared machine
			// wall-clock throughput swings with the neighbours' load, the
			// CPU a message costs much less.
			b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/msg")
		})
	}
}

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/radio"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// BenchmarkGatewayUDPIngest measures datagrams/s through the gateway's
// read-decode-dispatch loop on a radio UDP link, with batching off
// (batch=1) and on: QoS -1 PUBLISHes (short topic, 40-octet payload) from
// loopback, each decoded, handed to its loop and published into the core
// (no subscribers). A sender queues bursts of 512 with sendmmsg; the
// benchmark waits for the gateway to count each burst before the next, so
// nothing is dropped and the time is the gateway's.
func BenchmarkGatewayUDPIngest(b *testing.B) {
	for _, batch := range []int{1, 32} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			broker, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer broker.Close()
			gw, err := gateway.New(gateway.Config{Loops: 1, QoSMinus1: gateway.QoSMinus1Config{Enabled: true}}, broker, gateway.Options{Logger: log})
			if err != nil {
				b.Fatal(err)
			}
			links, err := openLinks([]radio.ListenerConfig{{Network: "udp4", Address: "127.0.0.1:0", BatchSize: batch, ReadBuffer: 4 << 20}}, log)
			if err != nil {
				b.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- gw.Serve(links[0]) }()
			defer func() { gw.Close(); <-served }()

			frame, _ := (&sn.Publish{QoS: sn.QoSMinus1, TopicIDType: sn.TopicIDShort, TopicID: 'a'<<8 | 'b', Data: make([]byte, 40)}).AppendBinary(nil)
			s, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			pc := ipv4.NewPacketConn(s)
			ms := make([]ipv4.Message, 64)
			for i := range ms {
				ms[i] = ipv4.Message{Buffers: [][]byte{frame}, Addr: links[0].LocalAddr()}
			}
			const burst = 512
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			base := gw.Stats().QoSMinus1
			for sent := 0; sent < b.N; {
				n := min(burst, b.N-sent)
				for k := n; k > 0; {
					w, err := pc.WriteBatch(ms[:min(k, len(ms))], 0)
					if err != nil {
						b.Fatal(err)
					}
					k -= w
				}
				sent += n
				deadline := time.Now().Add(30 * time.Second)
				for gw.Stats().QoSMinus1-base < uint64(sent) {
					if time.Now().After(deadline) {
						st := gw.Stats()
						b.Fatalf("gateway counted %d of %d QoS -1 publishes (stats %+v)", st.QoSMinus1-base, sent, st)
					}
					time.Sleep(20 * time.Microsecond) // waiting for the gateway to count a burst
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "datagrams/s")
		})
	}
}

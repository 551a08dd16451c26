package gateway_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/internal/memlink"
	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// fuzzFrames splits a fuzz input into datagrams: each is one length octet
// and that many octets; the length octet's top bit picks which of two
// senders sends it.
func fuzzFrames(data []byte) (frames [][]byte, from []int) {
	for len(data) > 0 {
		n, who := int(data[0]&0x7f), int(data[0]>>7)
		data = data[1:]
		n = min(n, len(data))
		frames, from = append(frames, data[:n]), append(from, who)
		data = data[n:]
	}
	return frames, from
}

// fuzzInput joins messages into a fuzz input, all from sender 0.
func fuzzInput(msgs ...sn.Message) []byte {
	var out []byte
	for _, m := range msgs {
		b, err := m.AppendBinary(nil)
		if err != nil || len(b) > 0x7f {
			panic("bad seed")
		}
		out = append(out, byte(len(b)))
		out = append(out, b...)
	}
	return out
}

// fuzzInput2 is fuzzInput for 2.0 packets.
func fuzzInput2(msgs ...sn.MessageV2) []byte {
	var out []byte
	for _, m := range msgs {
		b, err := m.AppendBinary(nil)
		if err != nil || len(b) > 0x7f {
			panic("bad seed")
		}
		out = append(out, byte(len(b)))
		out = append(out, b...)
	}
	return out
}

// FuzzGatewayDatagrams feeds sequences of arbitrary datagrams from two
// senders to a gateway and a real core, in fake time. The oracle: nothing
// panics, the counters stay consistent, and afterwards a fresh sensor can
// still connect, subscribe, publish to itself and receive, so no input
// leaves the gateway broken for others.
func FuzzGatewayDatagrams(f *testing.F) {
	connect := &sn.Connect{CleanSession: true, Duration: 30, ClientID: []byte("fz")}
	f.Add(fuzzInput(connect))
	f.Add(fuzzInput(connect, &sn.Register{MsgID: 1, TopicName: []byte("a/b")},
		&sn.Publish{QoS: sn.QoS1, TopicID: 1, MsgID: 2, Data: []byte("x")}))
	f.Add(fuzzInput(connect, &sn.Subscribe{QoS: sn.QoS2, MsgID: 1, TopicName: []byte("a/#")},
		&sn.Publish{QoS: sn.QoS2, TopicIDType: sn.TopicIDShort, TopicID: 0x6162, MsgID: 2, Data: []byte("y")},
		&sn.Pubrel{MsgID: 2}))
	f.Add(fuzzInput(&sn.Connect{Will: true, Duration: 30, ClientID: []byte("fz")},
		&sn.WillTopic{QoS: sn.QoS1, Topic: []byte("w")}, &sn.WillMsg{Message: []byte("bye")},
		&sn.Disconnect{HasDuration: true, Duration: 10}, &sn.PingReq{ClientID: []byte("fz")}))
	f.Add(fuzzInput(&sn.Encapsulated{NodeID: []byte{1, 2}, Inner: connect}, &sn.SearchGW{},
		&sn.Publish{QoS: sn.QoSMinus1, TopicIDType: sn.TopicIDPredefined, TopicID: 1, Data: []byte("z")}))
	f.Add([]byte{0x83, 0x03, 0x01, 0x00, 0x02, 0x00})
	// MQTT-SN 2.0 (v2.go), and a 1.2 sensor beside it.
	connect2 := &sn.ConnectV2{CleanStart: true, PacketID: 1, KeepAlive: 30, ClientID: []byte("fz2"),
		AllowAddressChange: true, HasSessionExpiry: true, SessionExpiry: 60, HasDefaultAwake: true, DefaultAwakeMessages: 1}
	f.Add(fuzzInput2(connect2, &sn.RegisterV2{PacketID: 2, TopicName: []byte("a/b")},
		&sn.PublishV2{QoS: sn.QoS1, PacketID: 3, TopicType: sn.TopicTypeSession, TopicAlias: 1, Data: []byte("x")},
		&sn.SubscribeV2{QoS: sn.QoS2, NoLocal: true, PacketID: 4, TopicType: sn.TopicTypeName, TopicFilter: []byte("a/#")},
		&sn.PublishV2{QoS: sn.QoS2, PacketID: 5, TopicType: sn.TopicTypeName, TopicName: []byte("a/c"), Data: []byte("y")},
		&sn.PubrelV2{PacketID: 5}, &sn.SleepReq{PacketID: 6, SleepDuration: 5}, &sn.PingReqV2{PacketID: 7}))
	f.Add(append(fuzzInput2(connect2, &sn.Pubwos{TopicType: sn.TopicTypePredefined, TopicAlias: 1, Data: []byte("w")},
		&sn.Auth{PacketID: 2, ReasonCode: sn.ReAuthenticate, Method: []byte("PLAIN"), Data: []byte("\x00u\x00p")},
		&sn.DisconnectV2{HasSessionExpiry: true, SessionExpiry: 10, HasReasonCode: true, ReasonCode: sn.DisconnectWithWill}),
		fuzzInput(connect)...))
	f.Add(fuzzInput2(connect2, &sn.SearchGWV2{}, &sn.UnsubscribeV2{PacketID: 2, TopicType: sn.TopicTypeName, TopicFilter: []byte("a")},
		&sn.ConnEncapsulation{ClientID: []byte("fz2"), Inner: &sn.PingReqV2{PacketID: 3}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		frames, from := fuzzFrames(data)
		synctest.Test(t, func(t *testing.T) {
			b, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			cfg := gateway.Config{
				Loops: 2, MaxTopicsPerClient: 4, RetryInterval: time.Second,
				Predefined: []gateway.PredefinedTopic{{ID: 1, Topic: "p/{client_id}"}},
				QoSMinus1:  gateway.QoSMinus1Config{Enabled: true},
			}
			g, err := gateway.New(cfg, b, gateway.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			nw := memlink.New()
			link, err := nw.Listen("10.0.0.1:1884")
			if err != nil {
				t.Fatal(err)
			}
			go g.Serve(link) // returns when g.Close closes the link
			var senders [2]*memlink.Link
			for i := range senders {
				if senders[i], err = nw.Listen([]string{"10.0.0.2:1", "10.0.0.3:1"}[i]); err != nil {
					t.Fatal(err)
				}
			}
			for i, fr := range frames {
				senders[from[i]].WriteToUDPAddrPort(fr, link.AddrPort())
				synctest.Wait()
			}
			time.Sleep(time.Hour) // every retry, keep-alive and sleep deadline passes
			st := g.Stats()
			if st.Clients < 0 || st.Asleep < 0 || st.Asleep > st.Clients {
				t.Fatalf("inconsistent counters: Clients %d, Asleep %d", st.Clients, st.Asleep)
			}

			// A fresh sensor is served normally.
			h := &harness{t: t, b: b, g: g, net: nw, gw: link.AddrPort()}
			s := h.sensor("10.0.0.9:9")
			s.connect("fresh", true, 60)
			ack := s.subscribe("fresh/t", sn.QoS1, 1)
			s.send(&sn.Publish{QoS: sn.QoS1, TopicID: ack.TopicID, MsgID: 2, Data: []byte("ok")})
			for got := 0; got < 2; {
				switch m := s.recv().(type) {
				case *sn.Puback:
					got++
				case *sn.Publish:
					if string(m.Data) != "ok" {
						t.Fatalf("fresh sensor got %q", m.Data)
					}
					s.send(&sn.Puback{TopicID: m.TopicID, MsgID: m.MsgID})
					got++
				default:
					t.Fatalf("fresh sensor got %#v", m)
				}
			}
		})
	})
}

package gateway_test

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/internal/memlink"
	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestMemoryAsleepSensors measures what a sleeping sensor costs the whole
// process, gateway and core together: 50,000 sensors each connect from
// their own address, subscribe to their own command topic and sleep. The
// budget is DEVELOPERS.md's, for 1.2 and 2.0 sensors alike: under 1 KiB
// each, and no goroutine. With GANNET_HEAPPROFILE=file (and
// -memprofilerate=1) it writes the heap profile of the sleeping sensors to
// file.1.2 and file.2.0, to see where the bytes go:
//
//	GANNET_HEAPPROFILE=/tmp/asleep go test -run TestMemoryAsleepSensors -memprofilerate=1 ./gateway/
//	go tool pprof -sample_index=inuse_space -ignore=memlink -top -lines /tmp/asleep.2.0
func TestMemoryAsleepSensors(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("50,000 sensors, measured without -race and -short")
	}
	t.Run("1.2", func(t *testing.T) { testMemoryAsleepSensors(t, sn.Version12) })
	t.Run("2.0", func(t *testing.T) { testMemoryAsleepSensors(t, sn.Version20) })
}

// testMemoryAsleepSensors is TestMemoryAsleepSensors with sensors speaking
// version v (2.0: CONNECT with a Session Expiry, as 1.2's CleanSession=0
// keeps the session; SUBSCRIBE; SLEEPREQ).
func testMemoryAsleepSensors(t *testing.T, v sn.Version) {
	const n = 50_000
	b, err := mqttcore.New(mqttcore.Config{SysDisabled: true}, mqttcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	g, err := gateway.New(gateway.Config{Loops: 2}, b, gateway.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	nw := memlink.New()
	link, err := nw.Listen("10.0.0.1:1884")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(link)                    // returns when g.Close closes the link
	sensors := make([]*memlink.Link, n) // made before measuring: they are the test's, not the gateway's
	for i := range sensors {
		if sensors[i], err = nw.Listen(fmt.Sprintf("10.%d.%d.%d:5000", 1+i/65536, (i/256)%256, i%256)); err != nil {
			t.Fatal(err)
		}
	}
	goroutines := runtime.NumGoroutine()
	before := liveHeap()
	buf := make([]byte, 64)
	frame := make([]byte, 0, 64)
	for i, s := range sensors {
		id := fmt.Sprintf("sensor-%06d", i)
		var frames []interface{ AppendBinary([]byte) ([]byte, error) }
		if v == sn.Version20 {
			frames = append(frames,
				&sn.ConnectV2{PacketID: 1, KeepAlive: 60, HasSessionExpiry: true, SessionExpiry: 7 * 24 * 3600, ClientID: []byte(id)},
				&sn.SubscribeV2{QoS: sn.QoS1, PacketID: 2, TopicType: sn.TopicTypeName, TopicFilter: []byte("cmd/" + id)},
				&sn.SleepReq{RetainTopicAliases: true, PacketID: 3, SleepDuration: 3600})
		} else {
			frames = append(frames,
				&sn.Connect{Duration: 60, ClientID: []byte(id)},
				&sn.Subscribe{QoS: sn.QoS1, MsgID: 1, TopicName: []byte("cmd/" + id)},
				&sn.Disconnect{HasDuration: true, Duration: 3600})
		}
		for _, m := range frames {
			frame, _ = m.AppendBinary(frame[:0])
			if _, err := s.WriteToUDPAddrPort(frame, link.AddrPort()); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.ReadFromUDPAddrPort(buf); err != nil { // the answer: the step is done
				t.Fatal(err)
			}
		}
	}
	after := liveHeap()
	if f := os.Getenv("GANNET_HEAPPROFILE"); f != "" {
		w, err := os.Create(f + "." + v.String())
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(w); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if st := g.Stats(); st.Asleep != n {
		t.Fatalf("Asleep = %d; want %d", st.Asleep, n)
	}
	per := float64(after-before) / n
	t.Logf("%d asleep %v sensors, one subscription each: %.0f bytes each (live heap, gateway and core)", n, v, per)
	// DEVELOPERS.md's budget, for both versions: under 1 KiB. A 2.0
	// sensor carries its 2.0 state besides (v2conn, 32 bytes), which the
	// 1.2 sensor's slack must hold.
	const budget = 1024.0
	if per >= budget {
		t.Errorf("an asleep %v sensor costs %.0f bytes; the budget is under %.0f", v, per, budget)
	}
	if d := runtime.NumGoroutine() - goroutines; d > 0 {
		t.Errorf("%d more goroutines with %d sensors asleep; want none", d, n)
	}
}

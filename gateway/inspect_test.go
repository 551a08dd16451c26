package gateway_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/internal/sntest"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/snclient"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// TestSensorsPages connects sensors over real UDP, puts one to sleep, and
// reads them back through the read API: pages in client id order, search,
// the state filter, counts, and a sensor's detail with its registrations.
func TestSensorsPages(t *testing.T) {
	e := sntest.Start(t, sntest.Options{Gateway: gateway.Config{Loops: 3}})
	ctx := sntest.Context(t)
	const n = 7
	sensors := make([]*sntest.Sensor, n)
	for i := range n {
		sensors[i] = e.Connected(t, ctx, snclient.Options{ClientID: fmt.Sprintf("dev%02d", i), KeepAlive: time.Minute})
	}
	if _, err := sensors[3].Register(ctx, "plant/dev03/temp"); err != nil {
		t.Fatal(err)
	}
	if err := sensors[5].Sleep(ctx, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	e.WaitSession(t, ctx, "dev05", mqttcore.StateAsleep)

	page, err := e.Gateway.Sensors(ctx, gateway.SensorQuery{Offset: 2, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if page.Matching != n || len(page.Sensors) != 3 {
		t.Fatalf("Sensors(offset 2, limit 3) = %d of %d; want 3 of %d", len(page.Sensors), page.Matching, n)
	}
	for i, s := range page.Sensors {
		if want := fmt.Sprintf("dev%02d", i+2); s.ClientID != want {
			t.Errorf("page[%d] = %q; want %q", i, s.ClientID, want)
		}
		if s.Address != sensors[i+2].LocalAddr || s.KeepAlive != time.Minute || s.LastSeen.IsZero() {
			t.Errorf("page[%d] = %+v; want address %s, keep-alive 1m, a last-seen time", i, s, sensors[i+2].LocalAddr)
		}
	}
	if c := page.Counts; c.Active != n-1 || c.Asleep != 1 || c.Awake != 0 || c.Registrations != 1 {
		t.Errorf("Counts = %+v; want %d active, 1 asleep, 1 registration", c, n-1)
	}
	counts, err := e.Gateway.Counts(ctx)
	if err != nil || counts != page.Counts {
		t.Errorf("Counts() = %+v, %v; want %+v", counts, err, page.Counts)
	}
	// Stats keeps the same numbers as clients change, for a scrape that
	// must not walk every client.
	if err := sensors[3].Publish(ctx, snclient.Named("plant/dev03/temp"), sn.QoS1, false, []byte("21")); err != nil {
		t.Fatal(err)
	}
	st := e.Gateway.Stats()
	if st.Active != int64(counts.Active) || st.Asleep != int64(counts.Asleep) || st.Awake != int64(counts.Awake) ||
		st.Registrations != int64(counts.Registrations) || st.Forwarded != int64(counts.Forwarded) || st.Forwarders != int64(counts.Forwarders) {
		t.Errorf("Stats() = %+v; want the gauges of Counts() %+v", st, counts)
	}
	if st.PublishesIn != [4]uint64{0, 0, 1, 0} {
		t.Errorf("Stats().PublishesIn = %v; want one QoS 1 PUBLISH", st.PublishesIn)
	}

	asleep, err := e.Gateway.Sensors(ctx, gateway.SensorQuery{State: "asleep"})
	if err != nil || asleep.Matching != 1 || asleep.Sensors[0].ClientID != "dev05" || asleep.Sensors[0].SleepDuration != 10*time.Minute {
		t.Errorf("Sensors(state asleep) = %+v, %v; want dev05 asleep for 10m", asleep, err)
	}
	found, err := e.Gateway.Sensors(ctx, gateway.SensorQuery{Search: "DEV0" + "6"})
	if err != nil || found.Matching != 1 || found.Sensors[0].ClientID != "dev06" {
		t.Errorf("Sensors(search DEV06) = %+v, %v; want dev06 alone", found, err)
	}
	if _, err := e.Gateway.Sensors(ctx, gateway.SensorQuery{State: "lost"}); err == nil {
		t.Error("Sensors(state lost) = nil error; want one (lost clients have no gateway state)")
	}

	d, ok, err := e.Gateway.Sensor(ctx, "dev03")
	if err != nil || !ok {
		t.Fatalf("Sensor(dev03) = %v, %v", ok, err)
	}
	if len(d.Topics) != 1 || d.Topics[0].Name != "plant/dev03/temp" || d.Registrations != 1 || d.Session == nil || d.State != "active" {
		t.Errorf("Sensor(dev03) = %+v; want one registration, a session, active", d)
	}
	if _, ok, err := e.Gateway.Sensor(ctx, "nobody"); ok || err != nil {
		t.Errorf("Sensor(nobody) = %v, %v; want not found", ok, err)
	}
}

// TestSensorsConcurrentWithTraffic reads the sensors while sensors publish
// and after the gateway closes; under -race this checks the read API does
// not touch a loop's state from outside.
func TestSensorsConcurrentWithTraffic(t *testing.T) {
	e := sntest.Start(t, sntest.Options{})
	ctx := sntest.Context(t)
	var wg sync.WaitGroup
	for i := range 4 {
		s := e.Connected(t, ctx, snclient.Options{ClientID: fmt.Sprintf("pub%d", i)})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if err := s.Publish(ctx, snclient.Named("t/x"), sn.QoS1, false, []byte("x")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 20 {
		if _, err := e.Gateway.Sensors(ctx, gateway.SensorQuery{}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	e.Close()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := e.Gateway.Sensors(cctx, gateway.SensorQuery{}); err == nil {
		t.Error("Sensors after Close = nil error; want one")
	}
}

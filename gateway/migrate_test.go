package gateway_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

func TestWakeFromNewAddressRefusedByDefault(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		sleepingSensor(t, h)
		nu := h.sensor("10.0.0.9:7000")
		nu.send(&sn.PingReq{ClientID: []byte("dev1")})
		nu.expect(&sn.Disconnect{})
		coreState(t, h, "dev1", mqttcore.StateAsleep)
	})
}

func TestWakeFromNewAddress(t *testing.T) {
	// One loop moves the client within the loop; several loops move it
	// between them for most of the new addresses.
	for _, loops := range []int{1, 4} {
		for port := 7000; port < 7004; port++ {
			t.Run(fmt.Sprintf("loops=%d/port=%d", loops, port), func(t *testing.T) {
				cfg := gateway.Config{Loops: loops, AddressMigration: []string{"dev*"}}
				run(t, cfg, func(t *testing.T, h *harness) {
					s, subID := sleepingSensor(t, h)
					h.publish("cmd/dev1", "queued", mqttcore.AtLeastOnce, false)

					nu := h.sensor(fmt.Sprintf("10.0.0.9:%d", port))
					nu.send(&sn.PingReq{ClientID: []byte("dev1")})
					p := nu.recv().(*sn.Publish)
					// The subscription's topic id moved with the client.
					if string(p.Data) != "queued" || p.TopicID != subID {
						t.Fatalf("PUBLISH = %+v; want queued on topic id %d", p, subID)
					}
					nu.send(&sn.Puback{TopicID: p.TopicID, MsgID: p.MsgID})
					nu.expect(&sn.PingResp{})
					coreState(t, h, "dev1", mqttcore.StateAsleep)
					st := h.g.Stats()
					if st.Migrated != 1 || st.Clients != 1 || st.Asleep != 1 {
						t.Errorf("Migrated, Clients, Asleep = %d, %d, %d; want 1, 1, 1", st.Migrated, st.Clients, st.Asleep)
					}
					// The old address is forgotten.
					s.send(&sn.PingReq{})
					s.expect(&sn.Disconnect{})
					// The sleep deadline moved too: oversleeping still loses it.
					will := h.app("will/#")
					time.Sleep(661 * time.Second)
					will.expect("will/dev1", "gone")
				})
			})
		}
	}
}

func TestWakeFromNewAddressOnlyListedClients(t *testing.T) {
	run(t, gateway.Config{AddressMigration: []string{"other"}}, func(t *testing.T, h *harness) {
		sleepingSensor(t, h)
		nu := h.sensor("10.0.0.9:7000")
		nu.send(&sn.PingReq{ClientID: []byte("dev1")})
		nu.expect(&sn.Disconnect{})
		if st := h.g.Stats(); st.Migrated != 0 {
			t.Errorf("Migrated = %d; want 0", st.Migrated)
		}
	})
}

func TestAddressMigrationValidate(t *testing.T) {
	for _, p := range []string{"", "a*b", "**"} {
		if err := (gateway.Config{AddressMigration: []string{p}}).Validate(); err == nil {
			t.Errorf("Validate(address_migration = [%q]) = nil; want an error", p)
		}
	}
	if err := (gateway.Config{AddressMigration: []string{"*", "dev-*", "x"}}).Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

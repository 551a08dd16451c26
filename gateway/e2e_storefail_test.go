package gateway_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/gannet-mqtt/gannet/internal/sntest"
	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
	"github.com/gannet-mqtt/gannet/snclient"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// diskFullJournal is a real store whose commits fail, while full is set, the
// way a commit on a full disk does: nothing of the batch is written and done
// gets an error wrapping ErrStoreFailed and ENOSPC.
type diskFullJournal struct {
	*boltstore.Store
	full    atomic.Bool
	refused atomic.Int64
}

func (j *diskFullJournal) Commit(ops []mqttcore.Op, done func(error)) {
	if j.full.Load() {
		j.refused.Add(1)
		done(fmt.Errorf("test store: write: %w: %w", mqttcore.ErrStoreFailed, syscall.ENOSPC))
		return
	}
	j.Store.Commit(ops, done)
}

// TestE2EStoreFullRefusesAcks: while the store cannot commit, a sensor's
// QoS 1 PUBLISH gets PUBACK "rejected: congestion" and an MQTT 5 client's
// gets reason 0x97, never a PUBACK that promises what was not written.
// When space returns the same clients publish again without reconnecting,
// and after a restart on the store the sleeping subscriber gets exactly the
// messages that were acknowledged.
func TestE2EStoreFullRefusesAcks(t *testing.T) {
	t.Parallel()
	ctx := sntest.Context(t)
	path := filepath.Join(t.TempDir(), "gannet.db")
	st, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatalf("boltstore.Open = %v", err)
	}
	t.Cleanup(func() { st.Close() })
	j := &diskFullJournal{Store: st}
	e := sntest.Start(t, sntest.Options{Journal: j})

	// A persistent subscriber asleep: every QoS 1 message to it is queued
	// durably before its publisher is acknowledged.
	sleeper := e.Connected(t, ctx, snclient.Options{ClientID: "sleeper", PersistentSession: true})
	if _, err := sleeper.Subscribe(ctx, snclient.Named("data/#"), sn.QoS1); err != nil {
		t.Fatalf("Subscribe = %v", err)
	}
	if err := sleeper.Sleep(ctx, time.Hour); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
	e.WaitSession(t, ctx, "sleeper", mqttcore.StateAsleep)

	sensor := e.Connected(t, ctx, snclient.Options{ClientID: "sensor"})
	app := e.MQTT(t, ctx, "app")
	pubApp := func(payload string) byte {
		t.Helper()
		pr, err := app.Client.Publish(ctx, &paho.Publish{Topic: "data/app", QoS: 1, Payload: []byte(payload)})
		if pr != nil {
			return pr.ReasonCode
		}
		if err != nil {
			t.Fatalf("paho Publish(%q) = %v", payload, err)
		}
		return 0
	}
	pubSensor := func(payload string) error {
		return sensor.Publish(ctx, snclient.Named("data/sensor"), sn.QoS1, false, []byte(payload))
	}

	if err := pubSensor("s1"); err != nil {
		t.Fatalf("sensor Publish before the disk filled = %v", err)
	}
	if rc := pubApp("a1"); rc != 0 {
		t.Fatalf("MQTT PUBACK before the disk filled: reason 0x%02x; want 0", rc)
	}

	j.full.Store(true)
	if err := pubSensor("s2"); !errors.Is(err, snclient.ErrCongestion) {
		t.Errorf("sensor Publish on a full disk = %v; want PUBACK rejected: congestion", err)
	}
	if rc := pubApp("a2"); rc != 0x97 {
		t.Errorf("MQTT PUBACK on a full disk: reason 0x%02x; want 0x97 (quota exceeded)", rc)
	}
	if j.refused.Load() == 0 {
		t.Fatal("no commit reached the full store")
	}

	j.full.Store(false) // space returns
	if err := pubSensor("s3"); err != nil {
		t.Fatalf("sensor Publish after space returned = %v", err)
	}
	if rc := pubApp("a3"); rc != 0 {
		t.Fatalf("MQTT PUBACK after space returned: reason 0x%02x; want 0", rc)
	}

	// Restart on the same store: the acknowledged messages are there, the
	// refused ones are not.
	e.Close()
	if err := st.Close(); err != nil {
		t.Fatalf("store Close = %v", err)
	}
	st2, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatalf("boltstore.Open after the restart = %v", err)
	}
	t.Cleanup(func() { st2.Close() })
	e2 := sntest.Start(t, sntest.Options{Journal: st2, UDPAddr: e.UDPAddr})
	sntest.WaitFor(t, ctx, "the gateway to restore the sleeper", func() bool { return e2.Gateway.Stats().Asleep == 1 })
	if err := sleeper.CheckMessages(ctx); err != nil {
		t.Fatalf("CheckMessages after the restart = %v", err)
	}
	got := map[string]bool{}
	for len(sleeper.Msgs) > 0 {
		m := <-sleeper.Msgs
		got[string(m.Payload)] = true
	}
	for _, want := range []string{"s1", "a1", "s3", "a3"} {
		if !got[want] {
			t.Errorf("acknowledged message %q was not delivered after the restart (got %v)", want, got)
		}
	}
	for _, refused := range []string{"s2", "a2"} {
		if got[refused] {
			t.Errorf("refused message %q was delivered: a refusal must mean not stored", refused)
		}
	}
}

package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session/state"

	"github.com/gannet-mqtt/gannet/snclient"
)

// storeKills is how many times TestServeStoreSurvivesSIGKILL kills gannet
// under load; docs/testing.md describes the long run (-store-kills 20).
var storeKills = flag.Int("store-kills", 2, "SIGKILLs of gannet under load in TestServeStoreSurvivesSIGKILL")

// storeServeConfig writes a config with MQTT-SN and MQTT on free loopback
// ports and the default [store] (a bbolt file under dir/data).
func storeServeConfig(t *testing.T, dir string) (cfgPath, udp, mqttAddr string) {
	t.Helper()
	udp = fmt.Sprintf("127.0.0.1:%d", bridgeFreePort(t, "udp"))
	mqttAddr = fmt.Sprintf("127.0.0.1:%d", bridgeFreePort(t, "tcp"))
	cfgPath = filepath.Join(dir, "config.toml")
	cfg := fmt.Sprintf(`[[listen]]
network = "udp4"
address = %q

[broker]
sys_disabled = true

[mqtt]
address = %q
`, udp, mqttAddr)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, udp, mqttAddr
}

// storeApp is an MQTT 5 client with a persistent session whose client-side
// session state (QoS 2 ids received) outlives its connections, as a real
// application's does; it records every payload delivered to it.
type storeApp struct {
	id      string
	addr    string
	session *state.State
	mu      sync.Mutex
	got     map[string]int // payload -> deliveries
	client  *paho.Client
}

func newStoreApp(id, addr string) *storeApp {
	return &storeApp{id: id, addr: addr, session: state.NewInMemory(), got: map[string]int{}}
}

// connect (re)connects with clean start false, retrying while gannet
// starts; it reports whether the broker had the session.
func (a *storeApp) connect(t *testing.T, ctx context.Context) bool {
	t.Helper()
	for {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", a.addr)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("%s: dial %s: %v", a.id, a.addr, err)
			}
			select { // poll an outside process's port; bounded by ctx
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
			}
			continue
		}
		c := paho.NewClient(paho.ClientConfig{
			ClientID: a.id,
			Conn:     conn,
			Session:  a.session,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
				a.mu.Lock()
				a.got[string(pr.Packet.Payload)]++
				a.mu.Unlock()
				return true, nil
			}},
		})
		expiry := uint32(3600)
		ca, err := c.Connect(ctx, &paho.Connect{ClientID: a.id, CleanStart: false, KeepAlive: 30,
			Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry}})
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("%s: connect: %v", a.id, err)
			}
			continue
		}
		a.client = c
		return ca.SessionPresent
	}
}

// count returns how often payload was delivered.
func (a *storeApp) count(payload string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.got[payload]
}

// TestServeStoreSurvivesSIGKILL runs the gannet binary on its default bbolt
// store and kills it with SIGKILL while MQTT-SN sensors publish QoS 1 and 2
// and an MQTT client publishes commands to a sleeping sensor; it restarts
// gannet on the same file each time. In the end every message whose
// publisher got a PUBACK (QoS 1) or PUBREC (QoS 2) has reached the MQTT
// application subscribed with a persistent session, QoS 2 ones exactly
// once; the sleeping sensor, which never reconnected, wakes and gets every
// acknowledged command; the retained message and the application's
// subscription are still there.
func TestServeStoreSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gannet binary; skipped with -short")
	}
	dir := t.TempDir()
	gannet := bridgeBuildGannet(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cfgPath, udp, mqttAddr := storeServeConfig(t, dir)
	serve := func() *bridgeProc { return bridgeStart(t, gannet, "serve", "-config", cfgPath) }
	p := serve()

	app := newStoreApp("app", mqttAddr)
	app.connect(t, ctx)
	if _, err := app.client.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "up/#", QoS: 2}}}); err != nil {
		t.Fatalf("app subscribe: %v", err)
	}
	ctl := newStoreApp("ctl", mqttAddr)
	ctl.connect(t, ctx)
	if _, err := ctl.client.Publish(ctx, &paho.Publish{Topic: "cfg/site", QoS: 1, Retain: true, Payload: []byte("v1")}); err != nil {
		t.Fatalf("retained publish: %v", err)
	}

	var gotMu sync.Mutex
	got := map[string]bool{} // what the sleeper received
	sleeper := sensorUp(t, ctx, udp, snclient.Options{ClientID: "sleeper", PersistentSession: true,
		RetryInterval: 200 * time.Millisecond, MaxRetries: 10,
		Handler: func(m snclient.Message) {
			gotMu.Lock()
			got[string(m.Payload)] = true
			gotMu.Unlock()
		}})
	if sleeper == nil {
		t.FailNow()
	}
	defer sleeper.Close()
	if _, err := sleeper.Subscribe(ctx, snclient.Named("cmd/sleeper"), snclient.QoS1); err != nil {
		t.Fatalf("sleeper subscribe: %v", err)
	}
	if err := sleeper.Sleep(ctx, 10*time.Minute); err != nil {
		t.Fatalf("sleeper sleep: %v", err)
	}

	// Load: sensors publish QoS 1 and 2, ctl publishes commands, until
	// told to stop; each records what was acknowledged.
	const sensors = 4
	var (
		mu     sync.Mutex
		acked  = map[string]snclient.QoS{} // payload -> QoS, acknowledged to its publisher
		cmds   []string                    // commands acknowledged to ctl
		stopCh = make(chan struct{})
		wg     sync.WaitGroup
	)
	for s := range sensors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			opts := snclient.Options{ClientID: fmt.Sprintf("sensor-%d", s), PersistentSession: true, RetryInterval: 300 * time.Millisecond, MaxRetries: 3}
			var c *snclient.Client
			for i := 0; ; i++ {
				select {
				case <-stopCh:
					if c != nil {
						c.Close()
					}
					return
				default:
				}
				if c == nil {
					var err error
					if c, err = snclient.Dial(ctx, "udp4", udp, opts); err != nil {
						t.Errorf("dial: %v", err)
						return
					}
					cctx, cancel := context.WithTimeout(ctx, time.Second)
					err = c.Connect(cctx)
					cancel()
					if err != nil {
						c.Close()
						c = nil
						continue
					}
				}
				qos := snclient.QoS1
				if i%2 == 1 {
					qos = snclient.QoS2
				}
				payload := fmt.Sprintf("s%d-%d-q%d", s, i, qos)
				if err := c.Publish(ctx, snclient.Named(fmt.Sprintf("up/s%d", s)), qos, false, []byte(payload)); err != nil {
					c.Close() // gannet is down or restarting: connect again
					c = nil
					continue
				}
				mu.Lock()
				acked[payload] = qos
				mu.Unlock()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stopCh:
				return
			default:
			}
			payload := "cmd-" + strconv.Itoa(i)
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := ctl.client.Publish(pctx, &paho.Publish{Topic: "cmd/sleeper", QoS: 1, Payload: []byte(payload)})
			cancel()
			if err != nil {
				ctl.connect(t, ctx) // gannet restarted: the same session
				continue
			}
			mu.Lock()
			cmds = append(cmds, payload)
			mu.Unlock()
			if i%10 == 9 {
				select { // a few commands a second: the sleeper's queue must not fill
				case <-time.After(50 * time.Millisecond):
				case <-stopCh:
					return
				}
			}
		}
	}()
	ackedSoFar := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	for k := range *storeKills {
		// Let some load through, then kill gannet mid-flight.
		base := ackedSoFar()
		for ackedSoFar() < base+200+rand.IntN(400) {
			select {
			case <-ctx.Done():
				t.Fatalf("kill %d: load stalled at %d acknowledged\n%s", k, ackedSoFar(), p.out)
			case <-time.After(5 * time.Millisecond): // poll a counter; bounded by ctx
			}
		}
		p.kill()
		p = serve()
		if !app.connect(t, ctx) {
			t.Fatalf("kill %d: the app's persistent session was gone after the restart\n%s", k, p.out)
		}
	}
	base := ackedSoFar()
	for ackedSoFar() < base+100 {
		select {
		case <-ctx.Done():
			t.Fatalf("load stalled after the last restart\n%s", p.out)
		case <-time.After(5 * time.Millisecond):
		}
	}
	close(stopCh)
	wg.Wait()

	// Every acknowledged message reaches the app; QoS 2 exactly once.
	mu.Lock()
	defer mu.Unlock()
	missing, dup2 := 0, 0
	deadline := time.Now().Add(30 * time.Second)
	for payload, qos := range acked {
		for app.count(payload) == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond) // poll what the app received; bounded by the deadline
		}
		switch n := app.count(payload); {
		case n == 0:
			missing++
		case n > 1 && qos == snclient.QoS2:
			dup2++
		}
	}
	if missing > 0 || dup2 > 0 {
		t.Fatalf("%d of %d acknowledged messages never reached the app, %d QoS 2 messages arrived twice\n%s", missing, len(acked), dup2, p.out)
	}
	// The sleeper wakes after all this and gets every acknowledged command.
	if err := sleeper.CheckMessages(ctx); err != nil {
		t.Fatalf("sleeper wake after %d restarts: %v\n%s", *storeKills, err, p.out)
	}
	gotMu.Lock()
	defer gotMu.Unlock()
	var lost []string
	for _, c := range cmds {
		if !got[c] {
			lost = append(lost, c)
		}
	}
	if len(lost) > 0 {
		t.Fatalf("the sleeper lost %d of %d acknowledged commands: %s", len(lost), len(cmds), strings.Join(lost[:min(len(lost), 10)], " "))
	}
	// The retained message survived.
	fresh := newStoreApp("late", mqttAddr)
	fresh.connect(t, ctx)
	if _, err := fresh.client.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "cfg/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	for fresh.count("v1") == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("the retained message did not survive the restarts")
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Logf("%d kills: %d sensor messages and %d commands acknowledged, all delivered; no QoS 2 duplicate", *storeKills, len(acked), len(cmds))
}

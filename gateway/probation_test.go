package gateway_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/mqttcore"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// TestProbationEvictsOldestUnverified: a CONNECT beyond max_unverified
// evicts the oldest client that has sent nothing since its CONNACK, and its
// session (created by that CONNECT, persistent or not) leaves the core; a
// client that answered is never evicted.
func TestProbationEvictsOldestUnverified(t *testing.T) {
	run(t, gateway.Config{Loops: 1, MaxUnverified: 2}, func(t *testing.T, h *harness) {
		est := h.sensor("10.0.0.9:5000")
		est.connect("est", false, 600)
		est.register("est/t", 1) // verified
		if st := h.g.Stats(); st.Unverified != 0 || st.Clients != 1 {
			t.Fatalf("Unverified, Clients = %d, %d after a verified client; want 0, 1", st.Unverified, st.Clients)
		}
		s1, s2, s3 := h.sensor("10.1.0.1:1"), h.sensor("10.1.0.2:1"), h.sensor("10.1.0.3:1")
		s1.connect("s1", false, 60)
		s1.connect("s1", false, 60) // a second CONNECT verifies nothing, and keeps the session its own
		s2.connect("s2", true, 60)
		s3.connect("s3", false, 60) // evicts s1, the oldest
		if _, ok := h.b.Session("s1"); ok {
			t.Errorf("evicted s1's session is still in the core")
		}
		coreState(t, h, "s2", mqttcore.StateActive)
		coreState(t, h, "s3", mqttcore.StateActive)
		st := h.g.Stats()
		if st.Unverified != 2 || st.Clients != 3 || st.LimitHits[gateway.LimitUnverified] != 1 {
			t.Errorf("Unverified, Clients, LimitHits[max_unverified] = %d, %d, %d; want 2, 3, 1",
				st.Unverified, st.Clients, st.LimitHits[gateway.LimitUnverified])
		}
		s1.send(&sn.PingReq{})
		s1.expect(&sn.Disconnect{}) // the gateway no longer knows it
		est.send(&sn.PingReq{})
		est.expect(&sn.PingResp{})

		// s3 answers: verified, and its session now outlives it.
		s3.send(&sn.PingReq{})
		s3.expect(&sn.PingResp{})
		s3.send(&sn.Disconnect{})
		s3.expect(&sn.Disconnect{})
		synctest.Wait()
		coreState(t, h, "s3", mqttcore.StateDisconnected)
		// s2 stays silent: its keep-alive lapses and its session goes.
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if _, ok := h.b.Session("s2"); ok {
			t.Errorf("s2's session outlived its lapsed keep-alive")
		}
		if st := h.g.Stats(); st.Unverified != 0 || st.Clients != 1 {
			t.Errorf("Unverified, Clients = %d, %d at the end; want 0, 1", st.Unverified, st.Clients)
		}
	})
}

// TestProbationKeepsKnownSession: a stranger who CONNECTs with the client
// id of a known persistent session and is evicted (or lapses) does not end
// that session: it existed before the stranger came.
func TestProbationKeepsKnownSession(t *testing.T) {
	run(t, gateway.Config{Loops: 1, MaxUnverified: 1}, func(t *testing.T, h *harness) {
		real := h.sensor("10.0.0.9:5000")
		real.connect("dev1", false, 60)
		real.subscribe("cmd/dev1", sn.QoS1, 1)
		real.send(&sn.Disconnect{})
		real.expect(&sn.Disconnect{})
		synctest.Wait()
		stranger := h.sensor("10.1.0.1:1")
		stranger.connect("dev1", false, 60)
		h.sensor("10.1.0.2:1").connect("other", true, 60) // evicts the stranger
		info, ok := h.b.Session("dev1")
		if !ok || info.Subscriptions != 1 {
			t.Fatalf("known session after its impostor was evicted = %+v, %v; want it with its subscription", info, ok)
		}
		if h.g.Stats().LimitHits[gateway.LimitUnverified] != 1 {
			t.Errorf("LimitHits[max_unverified] = %d; want 1", h.g.Stats().LimitHits[gateway.LimitUnverified])
		}
	})
}

// TestSessionExpiryDefault: a persistent sensor's session is kept for the
// default expiry, a week, and then goes.
func TestSessionExpiryDefault(t *testing.T) {
	run(t, gateway.Config{}, func(t *testing.T, h *harness) {
		s := h.sensor("10.0.0.2:5000")
		s.connect("dev1", false, 60)
		s.send(&sn.Disconnect{})
		s.expect(&sn.Disconnect{})
		synctest.Wait()
		time.Sleep(gateway.DefaultSessionExpiry - time.Minute)
		synctest.Wait()
		coreState(t, h, "dev1", mqttcore.StateDisconnected)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if _, ok := h.b.Session("dev1"); ok {
			t.Errorf("session outlived the default session_expiry of %v", gateway.DefaultSessionExpiry)
		}
	})
}

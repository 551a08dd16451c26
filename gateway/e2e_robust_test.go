package gateway_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/gateway"
	"github.com/gannet-mqtt/gannet/internal/sntest"
	"github.com/gannet-mqtt/gannet/snclient"
	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// e2eEncode encodes m or fails the test.
func e2eEncode(t *testing.T, m sn.Message) []byte {
	t.Helper()
	b, err := m.AppendBinary(nil)
	if err != nil {
		t.Fatalf("encode %v: %v", m.Type(), err)
	}
	return b
}

// TestE2EMalformedFlood sends 10,000 random and malformed datagrams from
// several sockets (random bytes, truncated valid frames, wrong Length
// octets, oversized datagrams, unknown message types, and valid frames
// from senders the gateway does not know), then checks that the gateway
// counted them, answered the strangers with DISCONNECT, still serves a
// fresh sensor end to end, and leaves no goroutine behind when closed.
// It is not parallel, so that the goroutine check sees only its gateway.
func TestE2EMalformedFlood(t *testing.T) {
	const total = 10_000
	ctx := sntest.Context(t)
	e := sntest.Start(t, sntest.Options{})
	maxSize := e.Gateway.Config().MaxMessageSize

	// Frames a connected client might send; the flood truncates and
	// corrupts them, and the stranger sends them whole.
	valid := []sn.Message{
		&sn.Connect{Will: true, CleanSession: true, Duration: 30, ClientID: []byte("flood")},
		&sn.Register{MsgID: 1, TopicName: []byte("e2e/flood/topic")},
		&sn.Regack{TopicID: 1, MsgID: 1},
		&sn.Publish{QoS: sn.QoS1, TopicID: 1, MsgID: 2, Data: []byte("flood payload")},
		&sn.Publish{QoS: sn.QoS0, TopicIDType: sn.TopicIDShort, TopicID: 0x6162, Data: []byte("x")},
		&sn.Publish{QoS: sn.QoS2, TopicIDType: sn.TopicIDPredefined, TopicID: 9, MsgID: 3},
		&sn.Puback{TopicID: 1, MsgID: 2},
		&sn.Pubrec{MsgID: 3},
		&sn.Pubrel{MsgID: 3},
		&sn.Pubcomp{MsgID: 3},
		&sn.Subscribe{QoS: sn.QoS1, MsgID: 4, TopicName: []byte("e2e/#")},
		&sn.Unsubscribe{MsgID: 5, TopicName: []byte("e2e/#")},
		&sn.PingReq{ClientID: []byte("flood")},
		&sn.Disconnect{HasDuration: true, Duration: 60},
		&sn.WillTopic{QoS: sn.QoS1, Topic: []byte("e2e/will")},
		&sn.WillMsg{Message: []byte("bye")},
		&sn.WillTopicUpd{Topic: []byte("e2e/will2")},
		&sn.WillMsgUpd{Message: []byte("bye2")},
	}
	frames := make([][]byte, len(valid))
	for i, m := range valid {
		frames[i] = e2eEncode(t, m)
	}
	strangerFrames := frames[1:] // all but CONNECT: each is answered with DISCONNECT
	qosMinus1 := e2eEncode(t, &sn.Publish{QoS: sn.QoSMinus1, TopicIDType: sn.TopicIDShort, TopicID: 0x6162, Data: []byte("-1")})

	dial := func() *net.UDPConn {
		t.Helper()
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(e.UDPAddr)))
		if err != nil {
			t.Fatalf("dial %s: %v", e.UDPAddr, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	flooders := []*net.UDPConn{dial(), dial(), dial(), dial()}
	stranger := dial()
	var disconnects atomic.Int64
	readerDone := make(chan struct{})
	go func() { // exits when the stranger's socket is closed below
		defer close(readerDone)
		buf := make([]byte, 2048)
		for {
			n, err := stranger.Read(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			if m, err := sn.Decode(buf[:n]); err == nil && m.Type() == sn.TypeDisconnect {
				disconnects.Add(1)
			}
		}
	}()

	// A sensor connected before the flood keeps receiving during it: bad
	// input must not cost another client its data.
	app := e.MQTT(t, ctx, "app")
	app.Subscribe(t, ctx, 1, "e2e/fresh")
	victim := e.Connected(t, ctx, snclient.Options{ClientID: "victim"})
	if _, err := victim.Subscribe(ctx, snclient.Named("e2e/victim"), sn.QoS1); err != nil {
		t.Fatalf("victim Subscribe = %v", err)
	}
	victimSent := 0
	base := e.Gateway.Stats().Received // the victim's datagrams so far

	rng := rand.New(rand.NewPCG(4, 2026))
	randomBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		return b
	}
	var (
		wantMalformed, oversized, strangerSent, qosM1Sent int
		kinds                                             [6]int
	)
	const burst = 32 // datagrams in flight at once: well within a default socket buffer
	for sent := 0; sent < total; {
		for k := 0; k < burst && sent < total; k, sent = k+1, sent+1 {
			var d []byte
			conn := flooders[rng.IntN(len(flooders))]
			kind := rng.IntN(len(kinds))
			kinds[kind]++
			mustFail := true
			switch kind {
			case 0: // random bytes, any length up to 64 (empty included)
				d = randomBytes(rng.IntN(65))
				mustFail = false
			case 1: // a valid frame cut short
				f := frames[rng.IntN(len(frames))]
				d = append([]byte(nil), f[:rng.IntN(len(f))]...)
			case 2: // a wrong Length octet
				f := frames[rng.IntN(len(frames))]
				d = append([]byte(nil), f...)
				d[0] = byte(len(f) + 1 + rng.IntN(200))
			case 3: // larger than max_message_size
				d = randomBytes(maxSize + 1 + rng.IntN(100))
			case 4: // an unknown message type (0x1E..0xFD are reserved)
				d = append([]byte{0, byte(0x1E + rng.IntN(0xFE-0x1E))}, randomBytes(rng.IntN(20))...)
				d[0] = byte(len(d))
			case 5: // a valid frame from a sender the gateway does not know
				conn = stranger
				mustFail = false
				if rng.IntN(8) == 0 {
					d = qosMinus1
					qosM1Sent++
				} else {
					d = strangerFrames[rng.IntN(len(strangerFrames))]
					strangerSent++
				}
			}
			switch _, err := sn.Decode(d); {
			case kind == 3:
				oversized++
			case err != nil && conn == stranger:
				wantMalformed++ // the stranger's frames are all 1.2
			case err != nil && decodesV2(d):
				// The gateway takes what the 1.2 codec refuses from a new
				// sender for 2.0 if it can (v2.go): not malformed.
			case err != nil:
				wantMalformed++
			case mustFail:
				t.Fatalf("kind %d datagram %x decodes; the test's corruption is wrong", kind, d)
			}
			if _, err := conn.Write(d); err != nil {
				t.Fatalf("write datagram %d: %v", sent, err)
			}
		}
		if sent%(10*burst) == 0 {
			app.Publish(t, ctx, "e2e/victim", 1, false, fmt.Sprint(victimSent))
			victimSent++
		}
		sntest.WaitFor(t, ctx, "the gateway to read the burst", func() bool {
			return e.Gateway.Stats().Received >= base+uint64(sent)
		})
	}
	sntest.WaitFor(t, ctx, "DISCONNECT for every stranger frame", func() bool {
		return disconnects.Load() >= int64(strangerSent)
	})
	t.Logf("sent %d datagrams: %d random, %d truncated, %d bad length, %d oversized, %d unknown type, %d stranger (+%d QoS -1); %d must be malformed",
		total, kinds[0], kinds[1], kinds[2], kinds[3], kinds[4], strangerSent, qosM1Sent, wantMalformed)

	// A fresh sensor still connects, subscribes, publishes and receives,
	// and an MQTT client sees its message.
	for i := range victimSent {
		if m := victim.Next(t, ctx); m.Topic != "e2e/victim" || string(m.Payload) != fmt.Sprint(i) {
			t.Fatalf("victim's message %d is (%q, %q); want (e2e/victim, %d)", i, m.Topic, m.Payload, i)
		}
	}
	victim.NoMessage(t)
	s := e.Connected(t, ctx, snclient.Options{ClientID: "fresh"})
	if _, err := s.Subscribe(ctx, snclient.Named("e2e/fresh"), sn.QoS1); err != nil {
		t.Fatalf("fresh sensor Subscribe = %v", err)
	}
	if err := s.Publish(ctx, snclient.Named("e2e/fresh"), sn.QoS1, false, []byte("still here")); err != nil {
		t.Fatalf("fresh sensor Publish = %v", err)
	}
	if m := s.Next(t, ctx); m.Topic != "e2e/fresh" || string(m.Payload) != "still here" {
		t.Errorf("fresh sensor received (%q, %q); want (e2e/fresh, still here)", m.Topic, m.Payload)
	}
	app.Expect(t, ctx, "e2e/fresh", "still here", 1, false)

	st := e.Gateway.Stats()
	loopFull := st.LimitHits[gateway.LimitLoopQueue]
	if got := st.LimitHits[gateway.LimitMessageSizeIn]; got != uint64(oversized) {
		t.Errorf("oversized datagrams counted %d; want %d", got, oversized)
	}
	if st.Malformed > uint64(wantMalformed) || st.Malformed+loopFull < uint64(wantMalformed) {
		t.Errorf("malformed datagrams counted %d (%d dropped on a full loop queue); want %d", st.Malformed, loopFull, wantMalformed)
	}
	if st.UnknownClient < uint64(strangerSent) {
		t.Errorf("datagrams from unknown senders counted %d; want at least %d", st.UnknownClient, strangerSent)
	}
	if st.Received < total {
		t.Errorf("datagrams received %d; want at least %d", st.Received, total)
	}
	if st.QoSMinus1 != 0 {
		t.Errorf("QoS -1 publishes accepted %d; want 0 (disabled by default)", st.QoSMinus1)
	}
	t.Logf("gateway stats: %+v", st)

	// Closing stops every gateway goroutine.
	s.Close()
	stranger.Close()
	<-readerDone
	e.Close()
	// Close waited for the gateway's goroutines: none may be left. A
	// goroutine whose deferred wg.Done let Close return may not have
	// returned yet, so it is given a moment to finish; one that is still
	// there after 10 s leaked.
	left := gatewayGoroutines()
	for deadline := time.Now().Add(10 * time.Second); len(left) > 0 && time.Now().Before(deadline); left = gatewayGoroutines() {
		runtime.Gosched()
		time.Sleep(time.Millisecond) // polling for the exit, bounded by deadline
	}
	for _, g := range left {
		t.Errorf("gateway goroutine left after Close:\n%s", g)
	}
}

// gatewayGoroutines returns the stacks of the goroutines running code of
// package gateway.
func gatewayGoroutines() []string {
	buf := make([]byte, 1<<20)
	var gs []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "gannet/gateway.") {
			gs = append(gs, g)
		}
	}
	return gs
}

// decodesV2 reports whether the 2.0 codec accepts d. (A 2.0 CONNECT refused
// for its protocol version is malformed: the gateway counts it so.)
func decodesV2(d []byte) bool {
	_, err := sn.DecodeV2(d)
	return err == nil
}

package snclient_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gannet-mqtt/gannet/snclient"
	"github.com/gannet-mqtt/gannet/snpacket"
)

func TestKeepAlive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lost := make(chan error, 1)
		opts := baseOptions()
		opts.ConnectionLost = func(err error) { lost <- err }
		c, g := connected(t, opts)
		start := time.Now()

		// One PINGREQ per period, answered.
		for i := 1; i <= 3; i++ {
			if got, want := g.recvRaw(), []byte{0x02, 0x16}; !bytes.Equal(got, want) {
				t.Fatalf("PINGREQ = %x; want %x", got, want)
			}
			if d, want := time.Since(start), time.Duration(i)*keepAlive; d != want {
				t.Fatalf("PINGREQ %d at %v; want %v", i, d, want)
			}
			advance(time.Second) // the gateway answers after 1 s
			g.send(&snpacket.PingResp{})
		}

		// The gateway may ping the client too.
		g.send(&snpacket.PingReq{})
		expect[*snpacket.PingResp](g)

		// A lost PINGRESP: PINGREQ again after T_retry; answered, the
		// next one comes a period after the first of the round.
		expect[*snpacket.PingReq](g)
		round := time.Now()
		expect[*snpacket.PingReq](g)
		if d := time.Since(round); d != tRetry {
			t.Fatalf("PINGREQ retransmitted after %v; want %v", d, tRetry)
		}
		g.send(&snpacket.PingResp{})
		expect[*snpacket.PingReq](g)
		if d := time.Since(round); d != keepAlive {
			t.Fatalf("next PINGREQ %v after the round began; want %v", d, keepAlive)
		}

		// No answer at all: N_retry retransmissions, then lost.
		round = time.Now()
		for range nRetry {
			expect[*snpacket.PingReq](g)
		}
		if err := <-lost; !errors.Is(err, snclient.ErrNoResponse) {
			t.Fatalf("ConnectionLost(%v); want ErrNoResponse", err)
		}
		if d, want := time.Since(round), time.Duration(nRetry+1)*tRetry; d != want {
			t.Fatalf("lost %v after the first PINGREQ; want %v", d, want)
		}
		if s := c.State(); s != snclient.StateLost {
			t.Fatalf("State() = %v; want lost", s)
		}
		// A lost client does not answer the gateway's PINGREQ or ping.
		g.send(&snpacket.PingReq{})
		g.quiet(10 * keepAlive)
		if err := c.Publish(context.Background(), snclient.Short("ab"), 0, false, nil); !errors.Is(err, snclient.ErrNotConnected) {
			t.Fatalf("Publish when lost = %v; want ErrNotConnected", err)
		}

		// Connect again: active, keep-alive running.
		connect(t, c, g)
		expect[*snpacket.PingReq](g)
	})
}

func TestSleepAndWake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := make(inbox, 8)
		opts := baseOptions()
		opts.Handler = in.handler
		c, g := connected(t, opts)

		if err := c.CheckMessages(context.Background()); !errors.Is(err, snclient.ErrNotAsleep) {
			t.Fatalf("CheckMessages while active = %v; want ErrNotAsleep", err)
		}
		if err := c.Sleep(context.Background(), 1500*time.Millisecond); !errors.Is(err, snclient.ErrInvalidOption) {
			t.Fatalf("Sleep(1.5s) = %v; want ErrInvalidOption", err)
		}

		done := async(func() error { return c.Sleep(context.Background(), 10*time.Minute) })
		// The spec's vector 14.
		if got, want := g.recvRaw(), []byte{0x04, 0x18, 0x02, 0x58}; !bytes.Equal(got, want) {
			t.Fatalf("DISCONNECT = %x; want %x", got, want)
		}
		g.send(&snpacket.Disconnect{})
		if err := wait(t, done); err != nil {
			t.Fatalf("Sleep() = %v", err)
		}
		if s := c.State(); s != snclient.StateAsleep {
			t.Fatalf("State() = %v; want asleep", s)
		}
		g.quiet(10 * keepAlive) // no keep-alive while asleep

		// Wake: PINGREQ with the client id (vector 13), then the buffered
		// messages, then PINGRESP.
		done = async(func() error { return c.CheckMessages(context.Background()) })
		if got, want := g.recvRaw(), []byte{0x06, 0x16, 'd', 'e', 'v', '1'}; !bytes.Equal(got, want) {
			t.Fatalf("PINGREQ = %x; want %x", got, want)
		}
		if s := c.State(); s != snclient.StateAwake {
			t.Fatalf("State() = %v; want awake", s)
		}
		g.send(&snpacket.Register{TopicID: 3, MsgID: 1, TopicName: []byte("x/y")})
		expect[*snpacket.Regack](g)
		// Each message restarts T_retry: a slow gateway (just under T_retry
		// between messages) causes no retransmitted PINGREQ.
		advance(tRetry - time.Millisecond)
		g.send(&snpacket.Publish{QoS: 1, TopicID: 3, MsgID: 2, Data: []byte("m1")})
		expect[*snpacket.Puback](g)
		advance(tRetry - time.Millisecond)
		g.send(&snpacket.Publish{QoS: 0, TopicIDType: snpacket.TopicIDShort, TopicID: 0x6162, Data: []byte("m2")})
		advance(tRetry - time.Millisecond)
		g.send(&snpacket.Publish{QoS: 2, TopicID: 3, MsgID: 3, Data: []byte("m3")})
		expect[*snpacket.Pubrec](g)
		advance(tRetry - time.Millisecond)
		g.send(&snpacket.Pubrel{MsgID: 3})
		expect[*snpacket.Pubcomp](g)
		g.send(&snpacket.PingResp{})
		if err := wait(t, done); err != nil {
			t.Fatalf("CheckMessages() = %v", err)
		}
		for _, want := range []string{"x/y:m1", "ab:m2", "x/y:m3"} {
			if m := in.next(t); m.Topic+":"+string(m.Payload) != want {
				t.Fatalf("handler got %s:%s; want %s", m.Topic, m.Payload, want)
			}
		}
		if s := c.State(); s != snclient.StateAsleep {
			t.Fatalf("State() = %v; want asleep again", s)
		}
		g.quiet(10 * keepAlive)

		// Nothing buffered, first PINGRESP lost: PINGREQ again.
		done = async(func() error { return c.CheckMessages(context.Background()) })
		expect[*snpacket.PingReq](g)
		start := time.Now()
		if m := expect[*snpacket.PingReq](g); string(m.ClientID) != "dev1" {
			t.Fatalf("retransmitted PINGREQ %+v; want client id dev1", m)
		}
		if d := time.Since(start); d != tRetry {
			t.Fatalf("PINGREQ retransmitted after %v; want %v", d, tRetry)
		}
		g.send(&snpacket.PingResp{})
		if err := wait(t, done); err != nil {
			t.Fatalf("CheckMessages() = %v", err)
		}

		// A silent gateway: back to sleep after N_retry, with an error.
		done = async(func() error { return c.CheckMessages(context.Background()) })
		for range nRetry + 1 {
			expect[*snpacket.PingReq](g)
		}
		if err := wait(t, done); !errors.Is(err, snclient.ErrNoResponse) {
			t.Fatalf("CheckMessages() = %v; want ErrNoResponse", err)
		}
		if s := c.State(); s != snclient.StateAsleep {
			t.Fatalf("State() = %v; want asleep", s)
		}

		// Connect from sleep: active again, keep-alive running.
		connect(t, c, g)
		if s := c.State(); s != snclient.StateActive {
			t.Fatalf("State() = %v; want active", s)
		}
		start = time.Now()
		expect[*snpacket.PingReq](g)
		if d := time.Since(start); d != keepAlive {
			t.Fatalf("first PINGREQ after %v; want %v", d, keepAlive)
		}
	})
}

// Sleep and Disconnect end in the right state when the gateway is silent.
func TestSleepNoAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g := connected(t, baseOptions())
		done := async(func() error { return c.Sleep(context.Background(), time.Minute) })
		for range nRetry + 1 {
			if m := expect[*snpacket.Disconnect](g); !m.HasDuration || m.Duration != 60 {
				t.Fatalf("DISCONNECT %+v; want duration 60", m)
			}
		}
		if err := wait(t, done); !errors.Is(err, snclient.ErrNoResponse) {
			t.Fatalf("Sleep() = %v; want ErrNoResponse", err)
		}
		if s := c.State(); s != snclient.StateLost {
			t.Fatalf("State() = %v; want lost", s)
		}
	})
}

// The transitions out of the sleeping states not covered above.
func TestSleepTransitions(t *testing.T) {
	tests := []struct {
		name    string
		run     func(t *testing.T, c *snclient.Client, g *fakeGW) error
		wantErr error
		lost    bool // ConnectionLost is called
	}{
		{
			name: "asleep -> disconnected by Disconnect",
			run: func(t *testing.T, c *snclient.Client, g *fakeGW) error {
				done := async(func() error { return c.Disconnect(context.Background()) })
				if m := expect[*snpacket.Disconnect](g); m.HasDuration {
					t.Fatalf("DISCONNECT %+v; want no duration", m)
				}
				g.send(&snpacket.Disconnect{})
				return wait(t, done)
			},
		},
		{
			name: "awake -> disconnected by the gateway",
			run: func(t *testing.T, c *snclient.Client, g *fakeGW) error {
				done := async(func() error { return c.CheckMessages(context.Background()) })
				expect[*snpacket.PingReq](g)
				g.send(&snpacket.Disconnect{})
				return wait(t, done)
			},
			wantErr: snclient.ErrGatewayDisconnected,
			lost:    true,
		},
		{
			name: "asleep -> disconnected by the gateway",
			run: func(t *testing.T, c *snclient.Client, g *fakeGW) error {
				g.send(&snpacket.Disconnect{})
				synctest.Wait()
				return nil
			},
			lost: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lost := make(chan error, 1)
				opts := baseOptions()
				opts.ConnectionLost = func(err error) { lost <- err }
				c, g := connected(t, opts)
				done := async(func() error { return c.Sleep(context.Background(), time.Hour) })
				expect[*snpacket.Disconnect](g)
				g.send(&snpacket.Disconnect{})
				if err := wait(t, done); err != nil {
					t.Fatal(err)
				}
				if err := tt.run(t, c, g); !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
					t.Fatalf("got %v; want %v", err, tt.wantErr)
				}
				if s := c.State(); s != snclient.StateDisconnected {
					t.Fatalf("State() = %v; want disconnected", s)
				}
				synctest.Wait()
				select {
				case err := <-lost:
					if !tt.lost || !errors.Is(err, snclient.ErrGatewayDisconnected) {
						t.Fatalf("ConnectionLost(%v); want lost=%v with ErrGatewayDisconnected", err, tt.lost)
					}
				default:
					if tt.lost {
						t.Fatal("ConnectionLost not called")
					}
				}
			})
		})
	}
}

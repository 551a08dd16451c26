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

func TestRegister(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g := connected(t, baseOptions())
		done := async(func() error {
			id, err := c.Register(context.Background(), "a/b")
			if err == nil && id != 7 {
				t.Errorf("Register() = %d; want 7", id)
			}
			return err
		})
		// The spec's vector 5: REGISTER from a client, TopicId 0, MsgId 1.
		if got, want := g.recvRaw(), []byte{0x09, 0x0A, 0x00, 0x00, 0x00, 0x01, 'a', '/', 'b'}; !bytes.Equal(got, want) {
			t.Fatalf("REGISTER = %x; want %x", got, want)
		}
		g.send(&snpacket.Regack{TopicID: 7, MsgID: 1})
		if err := wait(t, done); err != nil {
			t.Fatalf("Register() = %v", err)
		}
		// Cached: no second REGISTER.
		if id, err := c.Register(context.Background(), "a/b"); err != nil || id != 7 {
			t.Fatalf("second Register() = %d, %v; want 7 from the cache", id, err)
		}
		if id, ok := c.TopicID("a/b"); !ok || id != 7 {
			t.Fatalf("TopicID(a/b) = %d, %v; want 7", id, ok)
		}
		g.quiet(time.Second)

		// A REGACK with another MsgId is not the answer.
		done = async(func() error { _, err := c.Register(context.Background(), "c"); return err })
		m := expect[*snpacket.Register](g)
		g.send(&snpacket.Regack{TopicID: 9, MsgID: m.MsgID + 100})
		g.send(&snpacket.Regack{MsgID: m.MsgID, ReturnCode: snpacket.RejectedCongestion})
		if err := wait(t, done); !errors.Is(err, snclient.ErrCongestion) {
			t.Fatalf("Register(c) = %v; want ErrCongestion", err)
		}
		if _, ok := c.TopicID("c"); ok {
			t.Fatal("TopicID(c) known after a refused REGISTER")
		}

		for _, name := range []string{"", "a/+", "a/#"} {
			if _, err := c.Register(context.Background(), name); !errors.Is(err, snclient.ErrInvalidTopic) {
				t.Errorf("Register(%q) = %v; want ErrInvalidTopic", name, err)
			}
		}
	})
}

func TestPublishQoSMinus1(t *testing.T) {
	tests := []struct {
		name    string
		topic   snclient.Topic
		retain  bool
		want    []byte
		wantErr error
	}{
		// The spec's vector 9.
		{"short", snclient.Short("ab"), false, []byte{0x08, 0x0C, 0x62, 'a', 'b', 0x00, 0x00, 0x01}, nil},
		{"predefined retain", snclient.Predefined(5), true, []byte{0x08, 0x0C, 0x71, 0x00, 0x05, 0x00, 0x00, 0x01}, nil},
		{"predefined by name", snclient.Named("temp"), false, []byte{0x08, 0x0C, 0x61, 0x00, 0x09, 0x00, 0x00, 0x01}, nil},
		{"normal", snclient.Named("a/b"), false, nil, snclient.ErrInvalidTopic},
		{"short too long", snclient.Short("abc"), false, nil, snclient.ErrInvalidTopic},
		{"reserved predefined", snclient.Predefined(0), false, nil, snclient.ErrInvalidTopic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts := baseOptions()
				opts.PredefinedTopics = map[uint16]string{9: "temp"}
				c, g := newClient(t, opts) // never connected
				err := c.Publish(context.Background(), tt.topic, snpacket.QoSMinus1, tt.retain, []byte{0x01})
				if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
					t.Fatalf("Publish() = %v; want %v", err, tt.wantErr)
				}
				if tt.want == nil {
					g.quiet(time.Second)
					return
				}
				if got := g.recvRaw(); !bytes.Equal(got, tt.want) {
					t.Fatalf("PUBLISH = %x; want %x", got, tt.want)
				}
				g.quiet(time.Minute) // fire and forget
			})
		})
	}
}

func TestPublishQoS0(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := baseOptions()
		opts.PredefinedTopics = map[uint16]string{5: "pre"}
		c, g := newClient(t, opts)
		if err := c.Publish(context.Background(), snclient.Named("a/b"), 0, false, []byte("x")); !errors.Is(err, snclient.ErrNotConnected) {
			t.Fatalf("Publish before Connect = %v; want ErrNotConnected", err)
		}
		connect(t, c, g)

		// First use of a name registers it.
		done := async(func() error { return c.Publish(context.Background(), snclient.Named("a/b"), 0, false, []byte("hi")) })
		reg := expect[*snpacket.Register](g)
		if string(reg.TopicName) != "a/b" {
			t.Fatalf("REGISTER %q; want a/b", reg.TopicName)
		}
		g.send(&snpacket.Regack{TopicID: 1, MsgID: reg.MsgID})
		if got, want := g.recvRaw(), []byte{0x09, 0x0C, 0x00, 0x00, 0x01, 0x00, 0x00, 'h', 'i'}; !bytes.Equal(got, want) {
			t.Fatalf("PUBLISH = %x; want %x", got, want)
		}
		if err := wait(t, done); err != nil {
			t.Fatalf("Publish() = %v", err)
		}

		// Later uses do not; nothing waits for an answer.
		tests := []struct {
			topic  snclient.Topic
			retain bool
			want   []byte
		}{
			{snclient.Named("a/b"), false, []byte{0x08, 0x0C, 0x00, 0x00, 0x01, 0x00, 0x00, 0x2A}},
			{snclient.Named("pre"), true, []byte{0x08, 0x0C, 0x11, 0x00, 0x05, 0x00, 0x00, 0x2A}}, // vector 10
			{snclient.Predefined(5), false, []byte{0x08, 0x0C, 0x01, 0x00, 0x05, 0x00, 0x00, 0x2A}},
			{snclient.Short("zz"), false, []byte{0x08, 0x0C, 0x02, 'z', 'z', 0x00, 0x00, 0x2A}},
		}
		for _, tt := range tests {
			if err := c.Publish(context.Background(), tt.topic, 0, tt.retain, []byte{0x2A}); err != nil {
				t.Fatalf("Publish(%v) = %v", tt.topic, err)
			}
			if got := g.recvRaw(); !bytes.Equal(got, tt.want) {
				t.Fatalf("PUBLISH %v = %x; want %x", tt.topic, got, tt.want)
			}
		}

		// Too large for MaxMessageSize.
		big := make([]byte, snclient.DefaultMaxMessageSize)
		if err := c.Publish(context.Background(), snclient.Short("ab"), 0, false, big); !errors.Is(err, snclient.ErrTooLarge) {
			t.Fatalf("Publish(%d octets) = %v; want ErrTooLarge", len(big), err)
		}
		if err := c.Publish(context.Background(), snclient.Named("a/#"), 0, false, nil); !errors.Is(err, snclient.ErrInvalidTopic) {
			t.Fatalf("Publish(a/#) = %v; want ErrInvalidTopic", err)
		}

		// A PUBACK "invalid topic id" answering a QoS 0 publish makes the
		// client forget the id: the next publish registers again.
		g.send(&snpacket.Puback{TopicID: 1, ReturnCode: snpacket.RejectedInvalidTopicID})
		for { // wait until the reader has processed it
			if _, ok := c.TopicID("a/b"); !ok {
				break
			}
			synctest.Wait()
		}
		done = async(func() error { return c.Publish(context.Background(), snclient.Named("a/b"), 0, false, nil) })
		reg = expect[*snpacket.Register](g)
		g.send(&snpacket.Regack{TopicID: 2, MsgID: reg.MsgID})
		if p := expect[*snpacket.Publish](g); p.TopicID != 2 {
			t.Fatalf("PUBLISH topic id %d; want 2", p.TopicID)
		}
		if err := wait(t, done); err != nil {
			t.Fatal(err)
		}
	})
}

func TestPublishQoS1(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g := connected(t, baseOptions())
		done := async(func() error { return c.Publish(context.Background(), snclient.Predefined(1), 1, false, []byte("hi")) })
		first := g.recvRaw()
		if want := []byte{0x09, 0x0C, 0x21, 0x00, 0x01, 0x00, 0x01, 'h', 'i'}; !bytes.Equal(first, want) {
			t.Fatalf("PUBLISH = %x; want %x", first, want)
		}
		// The PUBACK is lost: the same PUBLISH comes again with DUP set.
		start := time.Now()
		again := g.recvRaw()
		if d := time.Since(start); d != tRetry {
			t.Fatalf("retransmitted after %v; want %v", d, tRetry)
		}
		if want := []byte{0x09, 0x0C, 0xA1, 0x00, 0x01, 0x00, 0x01, 'h', 'i'}; !bytes.Equal(again, want) {
			t.Fatalf("retransmitted PUBLISH = %x; want %x (DUP set)", again, want)
		}
		g.send(&snpacket.Puback{TopicID: 1, MsgID: 0x0001})
		if err := wait(t, done); err != nil {
			t.Fatalf("Publish() = %v", err)
		}
		g.quiet(tRetry * 2)
		// CONNECT, PUBLISH twice; CONNACK, PUBACK.
		if got, want := c.Stats(), (snclient.Stats{Sent: 3, Received: 2, Retransmitted: 1}); got != want {
			t.Fatalf("Stats() = %+v; want %+v", got, want)
		}
	})
}

func TestPublishGivesUp(t *testing.T) {
	for _, qos := range []snpacket.QoS{1, 2} {
		t.Run("QoS "+qos.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lost := make(chan error, 1)
				opts := baseOptions()
				opts.ConnectionLost = func(err error) { lost <- err }
				c, g := connected(t, opts)
				done := async(func() error { return c.Publish(context.Background(), snclient.Short("ab"), qos, false, nil) })
				for i := range nRetry + 1 {
					p, raw := expectRaw[*snpacket.Publish](g)
					if p.Dup != (i > 0) || (raw[2]&0x80 != 0) != (i > 0) {
						t.Fatalf("PUBLISH %d = %x; want DUP only on retransmissions", i, raw)
					}
				}
				if err := wait(t, done); !errors.Is(err, snclient.ErrNoResponse) {
					t.Fatalf("Publish() = %v; want ErrNoResponse", err)
				}
				if err := <-lost; !errors.Is(err, snclient.ErrNoResponse) {
					t.Fatalf("ConnectionLost(%v); want ErrNoResponse", err)
				}
				if s := c.State(); s != snclient.StateLost {
					t.Fatalf("State() = %v; want lost", s)
				}
				g.quiet(10 * keepAlive) // no keep-alive once lost
			})
		})
	}
}

func TestPublishQoS2(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g := connected(t, baseOptions())
		done := async(func() error { return c.Publish(context.Background(), snclient.Short("ab"), 2, true, []byte("x")) })
		if got, want := g.recvRaw(), []byte{0x08, 0x0C, 0x52, 'a', 'b', 0x00, 0x01, 'x'}; !bytes.Equal(got, want) {
			t.Fatalf("PUBLISH = %x; want %x", got, want)
		}
		// PUBREC lost: PUBLISH again with DUP.
		if got, want := g.recvRaw(), []byte{0x08, 0x0C, 0xD2, 'a', 'b', 0x00, 0x01, 'x'}; !bytes.Equal(got, want) {
			t.Fatalf("retransmitted PUBLISH = %x; want %x", got, want)
		}
		g.send(&snpacket.Pubrec{MsgID: 1})
		if got, want := g.recvRaw(), []byte{0x04, 0x10, 0x00, 0x01}; !bytes.Equal(got, want) {
			t.Fatalf("PUBREL = %x; want %x", got, want)
		}
		// PUBCOMP lost: PUBREL again.
		start := time.Now()
		if got, want := g.recvRaw(), []byte{0x04, 0x10, 0x00, 0x01}; !bytes.Equal(got, want) {
			t.Fatalf("retransmitted PUBREL = %x; want %x", got, want)
		}
		if d := time.Since(start); d != tRetry {
			t.Fatalf("PUBREL retransmitted after %v; want %v", d, tRetry)
		}
		g.send(&snpacket.Pubcomp{MsgID: 2}) // not ours
		g.send(&snpacket.Pubcomp{MsgID: 1})
		if err := wait(t, done); err != nil {
			t.Fatalf("Publish() = %v", err)
		}
		g.quiet(2 * tRetry)
	})
}

func TestPublishInvalidTopicID(t *testing.T) {
	t.Run("normal id is registered again", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, g := connected(t, baseOptions())
			done := async(func() error { return c.Publish(context.Background(), snclient.Named("a/b"), 1, false, []byte("v")) })
			reg := expect[*snpacket.Register](g)
			g.send(&snpacket.Regack{TopicID: 3, MsgID: reg.MsgID})
			p := expect[*snpacket.Publish](g)
			g.send(&snpacket.Puback{TopicID: 3, MsgID: p.MsgID, ReturnCode: snpacket.RejectedInvalidTopicID})
			reg = expect[*snpacket.Register](g)
			if string(reg.TopicName) != "a/b" {
				t.Fatalf("REGISTER %q; want a/b", reg.TopicName)
			}
			g.send(&snpacket.Regack{TopicID: 4, MsgID: reg.MsgID})
			p = expect[*snpacket.Publish](g)
			if p.TopicID != 4 || p.Dup || string(p.Data) != "v" {
				t.Fatalf("retried PUBLISH %+v; want topic id 4, no DUP", p)
			}
			g.send(&snpacket.Puback{TopicID: 4, MsgID: p.MsgID})
			if err := wait(t, done); err != nil {
				t.Fatalf("Publish() = %v", err)
			}
		})
	})
	t.Run("second refusal is an error", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c, g := connected(t, baseOptions())
			done := async(func() error { return c.Publish(context.Background(), snclient.Named("a/b"), 2, false, nil) })
			for range 2 {
				reg := expect[*snpacket.Register](g)
				g.send(&snpacket.Regack{TopicID: 3, MsgID: reg.MsgID})
				p := expect[*snpacket.Publish](g)
				g.send(&snpacket.Puback{TopicID: 3, MsgID: p.MsgID, ReturnCode: snpacket.RejectedInvalidTopicID})
			}
			if err := wait(t, done); !errors.Is(err, snclient.ErrInvalidTopicID) {
				t.Fatalf("Publish() = %v; want ErrInvalidTopicID", err)
			}
			g.quiet(5 * tRetry)
		})
	})
	for _, tt := range []struct {
		name    string
		topic   snclient.Topic
		rc      snpacket.ReturnCode
		wantErr error
	}{
		{"predefined", snclient.Predefined(5), snpacket.RejectedInvalidTopicID, snclient.ErrInvalidTopicID},
		{"short", snclient.Short("ab"), snpacket.RejectedInvalidTopicID, snclient.ErrInvalidTopicID},
		{"congestion", snclient.Short("ab"), snpacket.RejectedCongestion, snclient.ErrCongestion},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, g := connected(t, baseOptions())
				done := async(func() error { return c.Publish(context.Background(), tt.topic, 1, false, nil) })
				p := expect[*snpacket.Publish](g)
				g.send(&snpacket.Puback{TopicID: p.TopicID, MsgID: p.MsgID, ReturnCode: tt.rc})
				err := wait(t, done)
				var rce *snclient.ReturnCodeError
				if !errors.Is(err, tt.wantErr) || !errors.As(err, &rce) || rce.Code != tt.rc {
					t.Fatalf("Publish() = %v; want a *ReturnCodeError %v", err, tt.rc)
				}
				g.quiet(5 * tRetry) // no retry, no REGISTER
			})
		})
	}
}

// Only one QoS 1/2 PUBLISH is outstanding: a second caller waits until the
// first is acknowledged.
func TestPublishOneOutstanding(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g := connected(t, baseOptions())
		first := async(func() error { return c.Publish(context.Background(), snclient.Short("aa"), 1, false, nil) })
		p1 := expect[*snpacket.Publish](g)
		synctest.Wait()
		second := async(func() error { return c.Publish(context.Background(), snclient.Short("bb"), 1, false, nil) })
		synctest.Wait()
		select {
		case b := <-g.conn.in:
			t.Fatalf("second PUBLISH %x sent while the first is outstanding", b)
		default:
		}
		g.send(&snpacket.Puback{TopicID: p1.TopicID, MsgID: p1.MsgID})
		if err := wait(t, first); err != nil {
			t.Fatal(err)
		}
		p2 := expect[*snpacket.Publish](g)
		if p2.Dup || p2.MsgID == p1.MsgID {
			t.Fatalf("second PUBLISH %+v; want a fresh MsgId, no DUP", p2)
		}
		g.send(&snpacket.Puback{TopicID: p2.TopicID, MsgID: p2.MsgID})
		if err := wait(t, second); err != nil {
			t.Fatal(err)
		}

		// A waiting caller gives up with its context.
		third := async(func() error { return c.Publish(context.Background(), snclient.Short("cc"), 1, false, nil) })
		expect[*snpacket.Publish](g)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := c.Publish(ctx, snclient.Short("dd"), 2, false, nil); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("queued Publish() = %v; want DeadlineExceeded", err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err := wait(t, third); !errors.Is(err, snclient.ErrClosed) {
			t.Fatalf("Publish() during Close = %v; want ErrClosed", err)
		}
	})
}

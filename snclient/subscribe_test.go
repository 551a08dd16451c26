package snclient_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/gannet-mqtt/gannet/snclient"
	"github.com/gannet-mqtt/gannet/snpacket"
)

func TestSubscribe(t *testing.T) {
	tests := []struct {
		name   string
		topic  snclient.Topic
		qos    snpacket.QoS
		want   []byte // SUBSCRIBE, MsgId 1
		suback snpacket.Suback
		// the gateway's PUBLISH after the SUBACK, and the name it must
		// be delivered under
		pubType  snpacket.TopicIDType
		pubID    uint16
		wantName string
	}{
		{
			name: "name", topic: snclient.Named("s/1"), qos: 1,
			want:    []byte{0x08, 0x12, 0x20, 0x00, 0x01, 's', '/', '1'},
			suback:  snpacket.Suback{QoS: 1, TopicID: 0x11},
			pubType: snpacket.TopicIDNormal, pubID: 0x11, wantName: "s/1",
		},
		{
			name: "predefined", topic: snclient.Predefined(5), qos: 2,
			want:    []byte{0x07, 0x12, 0x41, 0x00, 0x01, 0x00, 0x05},
			suback:  snpacket.Suback{QoS: 1, TopicID: 5},
			pubType: snpacket.TopicIDPredefined, pubID: 5, wantName: "pre/five",
		},
		{
			name: "short", topic: snclient.Short("ab"), qos: 0,
			want:    []byte{0x07, 0x12, 0x02, 0x00, 0x01, 'a', 'b'},
			suback:  snpacket.Suback{QoS: 0},
			pubType: snpacket.TopicIDShort, pubID: 0x6162, wantName: "ab",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				in := make(inbox, 4)
				opts := baseOptions()
				opts.Handler = in.handler
				opts.PredefinedTopics = map[uint16]string{5: "pre/five"}
				c, g := connected(t, opts)
				var got snclient.Subscription
				done := async(func() (err error) {
					got, err = c.Subscribe(context.Background(), tt.topic, tt.qos)
					return err
				})
				if b := g.recvRaw(); !bytes.Equal(b, tt.want) {
					t.Fatalf("SUBSCRIBE = %x; want %x", b, tt.want)
				}
				// SUBACK lost: SUBSCRIBE again with DUP.
				if b := g.recvRaw(); b[2]&0x80 == 0 || !bytes.Equal(b[3:], tt.want[3:]) {
					t.Fatalf("retransmitted SUBSCRIBE = %x; want %x with DUP", b, tt.want)
				}
				sa := tt.suback
				sa.MsgID = 1
				g.send(&sa)
				// The PUBLISH right behind the SUBACK must already resolve.
				g.send(&snpacket.Publish{QoS: 0, TopicIDType: tt.pubType, TopicID: tt.pubID, Data: []byte("v")})
				if err := wait(t, done); err != nil {
					t.Fatalf("Subscribe() = %v", err)
				}
				if got.QoS != tt.suback.QoS || got.TopicID != tt.suback.TopicID {
					t.Fatalf("Subscribe() = %+v; want QoS %v, topic id %d", got, tt.suback.QoS, tt.suback.TopicID)
				}
				m := in.next(t)
				if m.Topic != tt.wantName || string(m.Payload) != "v" || m.TopicIDType != tt.pubType || m.TopicID != tt.pubID {
					t.Fatalf("handler got %+v; want topic %q payload v", m, tt.wantName)
				}
				g.quiet(5 * tRetry) // QoS 0: no answer
			})
		})
	}
}

func TestSubscribeRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g := connected(t, baseOptions())
		done := async(func() error {
			_, err := c.Subscribe(context.Background(), snclient.Named("x"), 1)
			return err
		})
		s := expect[*snpacket.Subscribe](g)
		g.send(&snpacket.Suback{MsgID: s.MsgID, ReturnCode: snpacket.RejectedCongestion})
		if err := wait(t, done); !errors.Is(err, snclient.ErrCongestion) {
			t.Fatalf("Subscribe() = %v; want ErrCongestion", err)
		}
		if _, err := c.Subscribe(context.Background(), snclient.Short("x"), 1); !errors.Is(err, snclient.ErrInvalidTopic) {
			t.Fatalf("Subscribe(short x) = %v; want ErrInvalidTopic", err)
		}
		if _, err := c.Subscribe(context.Background(), snclient.Named("x"), 3); !errors.Is(err, snclient.ErrInvalidOption) {
			t.Fatalf("Subscribe QoS 3 = %v; want ErrInvalidOption", err)
		}
	})
}

// A wildcard subscription: SUBACK carries topic id 0, the gateway REGISTERs
// each concrete topic before it publishes on it.
func TestSubscribeWildcardWithGatewayRegister(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := make(inbox, 4)
		opts := baseOptions()
		opts.Handler = in.handler
		c, g := connected(t, opts)
		done := async(func() error {
			s, err := c.Subscribe(context.Background(), snclient.Named("s/#"), 1)
			if err == nil && (s.TopicID != 0 || s.QoS != 1) {
				t.Errorf("Subscribe() = %+v; want QoS 1, topic id 0", s)
			}
			return err
		})
		// The spec's vector 11 and 12.
		if got, want := g.recvRaw(), []byte{0x08, 0x12, 0x20, 0x00, 0x01, 's', '/', '#'}; !bytes.Equal(got, want) {
			t.Fatalf("SUBSCRIBE = %x; want %x", got, want)
		}
		g.send(&snpacket.Suback{QoS: 1, MsgID: 1})
		if err := wait(t, done); err != nil {
			t.Fatalf("Subscribe() = %v", err)
		}

		g.send(&snpacket.Register{TopicID: 0x21, MsgID: 0x300, TopicName: []byte("s/temp")})
		if got, want := g.recvRaw(), []byte{0x07, 0x0B, 0x00, 0x21, 0x03, 0x00, 0x00}; !bytes.Equal(got, want) {
			t.Fatalf("REGACK = %x; want %x", got, want)
		}
		g.send(&snpacket.Publish{QoS: 1, TopicID: 0x21, MsgID: 0x301, Data: []byte("21.5")})
		m := in.next(t)
		if m.Topic != "s/temp" || string(m.Payload) != "21.5" || m.QoS != 1 {
			t.Fatalf("handler got %+v; want s/temp 21.5 QoS 1", m)
		}
		if got, want := g.recvRaw(), []byte{0x07, 0x0D, 0x00, 0x21, 0x03, 0x01, 0x00}; !bytes.Equal(got, want) {
			t.Fatalf("PUBACK = %x; want %x", got, want)
		}
		// The gateway-assigned id can be used for publishing too.
		if id, ok := c.TopicID("s/temp"); !ok || id != 0x21 {
			t.Fatalf("TopicID(s/temp) = %d, %v; want 0x21", id, ok)
		}
	})
}

func TestRegisterFilter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := make(inbox, 4)
		opts := baseOptions()
		opts.Handler = in.handler
		opts.RegisterFilter = func(id uint16, topic string) snpacket.ReturnCode {
			if topic == "no" {
				return snpacket.RejectedNotSupported
			}
			return snpacket.Accepted
		}
		_, g := connected(t, opts)
		g.send(&snpacket.Register{TopicID: 4, MsgID: 9, TopicName: []byte("no")})
		if r := expect[*snpacket.Regack](g); r.TopicID != 4 || r.MsgID != 9 || r.ReturnCode != snpacket.RejectedNotSupported {
			t.Fatalf("REGACK %+v; want topic 4, MsgId 9, not supported", r)
		}
		// The refused id stays unknown.
		g.send(&snpacket.Publish{QoS: 1, TopicID: 4, MsgID: 10})
		if p := expect[*snpacket.Puback](g); p.ReturnCode != snpacket.RejectedInvalidTopicID {
			t.Fatalf("PUBACK %+v; want invalid topic id", p)
		}
		g.send(&snpacket.Register{TopicID: 5, MsgID: 11, TopicName: []byte("yes")})
		if r := expect[*snpacket.Regack](g); r.ReturnCode != snpacket.Accepted {
			t.Fatalf("REGACK %+v; want accepted", r)
		}
		select {
		case m := <-in:
			t.Fatalf("handler got %+v; want nothing", m)
		default:
		}
	})
}

func TestReceiveUnknownTopicID(t *testing.T) {
	for _, tt := range []struct {
		name string
		typ  snpacket.TopicIDType
		qos  snpacket.QoS
	}{
		{"normal QoS 0", snpacket.TopicIDNormal, 0},
		{"normal QoS 1", snpacket.TopicIDNormal, 1},
		{"normal QoS 2", snpacket.TopicIDNormal, 2},
		{"predefined not configured", snpacket.TopicIDPredefined, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				in := make(inbox, 4)
				opts := baseOptions()
				opts.Handler = in.handler
				_, g := connected(t, opts)
				g.send(&snpacket.Publish{QoS: tt.qos, TopicIDType: tt.typ, TopicID: 0x0055, MsgID: 3})
				// The spec's vector 8.
				if got, want := g.recvRaw(), []byte{0x07, 0x0D, 0x00, 0x55, 0x00, 0x03, 0x02}; !bytes.Equal(got, want) {
					t.Fatalf("PUBACK = %x; want %x", got, want)
				}
				synctest.Wait()
				if len(in) != 0 {
					t.Fatalf("handler got %+v; want nothing", <-in)
				}
			})
		})
	}
}

func TestReceiveQoS1(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := make(inbox, 4)
		opts := baseOptions()
		opts.Handler = in.handler
		_, g := connected(t, opts)
		g.send(&snpacket.Publish{QoS: 1, TopicIDType: snpacket.TopicIDShort, TopicID: 0x6162, MsgID: 7, Retain: true, Data: []byte("a")})
		if m := in.next(t); m.Topic != "ab" || !m.Retain || m.Dup || m.QoS != 1 {
			t.Fatalf("handler got %+v", m)
		}
		if p := expect[*snpacket.Puback](g); p.MsgID != 7 || p.TopicID != 0x6162 || p.ReturnCode != snpacket.Accepted {
			t.Fatalf("PUBACK %+v; want MsgId 7 accepted", p)
		}
		// A duplicate (our PUBACK lost) is delivered again: at least once.
		g.send(&snpacket.Publish{QoS: 1, Dup: true, TopicIDType: snpacket.TopicIDShort, TopicID: 0x6162, MsgID: 7, Data: []byte("a")})
		if m := in.next(t); !m.Dup {
			t.Fatalf("handler got %+v; want the duplicate", m)
		}
		expect[*snpacket.Puback](g)
	})
}

func TestReceiveQoS2ExactlyOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := make(inbox, 4)
		opts := baseOptions()
		opts.Handler = in.handler
		_, g := connected(t, opts)
		pub := &snpacket.Publish{QoS: 2, TopicIDType: snpacket.TopicIDShort, TopicID: 0x6162, MsgID: 0x42, Data: []byte("once")}
		g.send(pub)
		if m := in.next(t); m.Topic != "ab" || string(m.Payload) != "once" || m.QoS != 2 {
			t.Fatalf("handler got %+v", m)
		}
		if got, want := g.recvRaw(), []byte{0x04, 0x0F, 0x00, 0x42}; !bytes.Equal(got, want) {
			t.Fatalf("PUBREC = %x; want %x", got, want)
		}
		// The PUBREC was lost: the gateway retransmits with DUP (twice).
		dup := *pub
		dup.Dup = true
		for range 2 {
			g.send(&dup)
			if got, want := g.recvRaw(), []byte{0x04, 0x0F, 0x00, 0x42}; !bytes.Equal(got, want) {
				t.Fatalf("PUBREC for the duplicate = %x; want %x", got, want)
			}
		}
		g.send(&snpacket.Pubrel{MsgID: 0x42})
		if got, want := g.recvRaw(), []byte{0x04, 0x0E, 0x00, 0x42}; !bytes.Equal(got, want) {
			t.Fatalf("PUBCOMP = %x; want %x", got, want)
		}
		// A retransmitted PUBREL (PUBCOMP lost) is answered again.
		g.send(&snpacket.Pubrel{MsgID: 0x42})
		expect[*snpacket.Pubcomp](g)
		synctest.Wait()
		if len(in) != 0 {
			t.Fatalf("handler got a second delivery %+v", <-in)
		}
		// After PUBREL the MsgId is free: a new message with it is new.
		g.send(&snpacket.Publish{QoS: 2, TopicIDType: snpacket.TopicIDShort, TopicID: 0x6162, MsgID: 0x42, Data: []byte("again")})
		if m := in.next(t); string(m.Payload) != "again" {
			t.Fatalf("handler got %+v; want again", m)
		}
		expect[*snpacket.Pubrec](g)
	})
}

func TestUnsubscribe(t *testing.T) {
	tests := []struct {
		topic snclient.Topic
		want  []byte
	}{
		{snclient.Named("s/#"), []byte{0x08, 0x14, 0x00, 0x00, 0x01, 's', '/', '#'}},
		{snclient.Predefined(5), []byte{0x07, 0x14, 0x01, 0x00, 0x01, 0x00, 0x05}},
		{snclient.Short("ab"), []byte{0x07, 0x14, 0x02, 0x00, 0x01, 'a', 'b'}},
	}
	for _, tt := range tests {
		t.Run(tt.topic.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, g := connected(t, baseOptions())
				done := async(func() error { return c.Unsubscribe(context.Background(), tt.topic) })
				if got := g.recvRaw(); !bytes.Equal(got, tt.want) {
					t.Fatalf("UNSUBSCRIBE = %x; want %x", got, tt.want)
				}
				g.send(&snpacket.Unsuback{MsgID: 1})
				if err := wait(t, done); err != nil {
					t.Fatalf("Unsubscribe() = %v", err)
				}
			})
		})
	}
}

// Publishing at QoS 0 from the handler is allowed: it does not wait.
func TestHandlerMayPublishQoS0(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c *snclient.Client
		opts := baseOptions()
		opts.Handler = func(m snclient.Message) {
			if err := c.Publish(context.Background(), snclient.Short("re"), 0, false, m.Payload); err != nil {
				t.Errorf("Publish from handler: %v", err)
			}
		}
		var g *fakeGW
		c, g = connected(t, opts)
		g.send(&snpacket.Publish{QoS: 1, TopicIDType: snpacket.TopicIDShort, TopicID: 0x6162, MsgID: 1, Data: []byte("echo")})
		if p := expect[*snpacket.Publish](g); string(p.Data) != "echo" {
			t.Fatalf("echoed PUBLISH %+v", p)
		}
		expect[*snpacket.Puback](g)
	})
}

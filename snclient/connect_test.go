package snclient_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gannet-mqtt/gannet/snclient"
	"github.com/gannet-mqtt/gannet/snpacket"
)

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    snclient.Options
		wantErr string // a field name in the error; "" for valid
	}{
		{"zero value", snclient.Options{}, ""},
		{"full", snclient.Options{ClientID: "dev1", KeepAlive: time.Minute, RetryInterval: time.Second, MaxRetries: 5,
			MaxMessageSize: 256, Will: &snclient.Will{Topic: "w", QoS: 2}, PredefinedTopics: map[uint16]string{1: "a"}}, ""},
		{"client id too long", snclient.Options{ClientID: strings.Repeat("x", 24)}, "ClientID"},
		{"negative keep-alive", snclient.Options{KeepAlive: -time.Second}, "KeepAlive"},
		{"keep-alive too long", snclient.Options{KeepAlive: 65536 * time.Second}, "KeepAlive"},
		{"fractional keep-alive", snclient.Options{KeepAlive: 1500 * time.Millisecond}, "KeepAlive"},
		{"negative retry interval", snclient.Options{RetryInterval: -1}, "RetryInterval"},
		{"negative retries", snclient.Options{MaxRetries: -1}, "MaxRetries"},
		{"tiny message size", snclient.Options{MaxMessageSize: 8}, "MaxMessageSize"},
		{"huge message size", snclient.Options{MaxMessageSize: 70000}, "MaxMessageSize"},
		{"will without topic", snclient.Options{Will: &snclient.Will{}}, "Will.Topic"},
		{"will QoS -1", snclient.Options{Will: &snclient.Will{Topic: "w", QoS: -1}}, "Will.QoS"},
		{"predefined id 0", snclient.Options{PredefinedTopics: map[uint16]string{0: "a"}}, "PredefinedTopics"},
		{"predefined id 0xffff", snclient.Options{PredefinedTopics: map[uint16]string{0xFFFF: "a"}}, "PredefinedTopics"},
		{"predefined empty name", snclient.Options{PredefinedTopics: map[uint16]string{3: ""}}, "PredefinedTopics"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v; want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) ||
				!errors.Is(err, snclient.ErrInvalidOption)):
				t.Fatalf("Validate() = %v; want an ErrInvalidOption naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestNewRejectsInvalidOptions(t *testing.T) {
	cc, _ := newPipe()
	if _, err := snclient.New(cc, pipeAddr("gateway"), snclient.Options{MaxRetries: -1}); !errors.Is(err, snclient.ErrInvalidOption) {
		t.Fatalf("New with MaxRetries -1 = %v; want ErrInvalidOption", err)
	}
}

func TestConnect(t *testing.T) {
	tests := []struct {
		name      string
		opts      func(*snclient.Options)
		wantFrame []byte // the CONNECT datagram
		will      bool   // gateway runs the will dialogue
		wantTopic []byte // WILLTOPIC datagram
		wantMsg   []byte // WILLMSG datagram
	}{
		{
			name:      "clean session, no will",
			opts:      func(o *snclient.Options) {},
			wantFrame: []byte{0x0A, 0x04, 0x04, 0x01, 0x00, 0x1E, 'd', 'e', 'v', '1'},
		},
		{
			name:      "persistent session, keep-alive 60s",
			opts:      func(o *snclient.Options) { o.PersistentSession = true; o.KeepAlive = time.Minute },
			wantFrame: []byte{0x0A, 0x04, 0x00, 0x01, 0x00, 0x3C, 'd', 'e', 'v', '1'},
		},
		{
			name: "with will",
			opts: func(o *snclient.Options) {
				o.Will = &snclient.Will{Topic: "will/t", Message: []byte("bye"), QoS: 1, Retain: true}
			},
			wantFrame: []byte{0x0A, 0x04, 0x0C, 0x01, 0x00, 0x1E, 'd', 'e', 'v', '1'},
			will:      true,
			wantTopic: []byte{0x09, 0x07, 0x30, 'w', 'i', 'l', 'l', '/', 't'},
			wantMsg:   []byte{0x05, 0x09, 'b', 'y', 'e'},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts := baseOptions()
				tt.opts(&opts)
				c, g := newClient(t, opts)
				done := async(func() error { return c.Connect(context.Background()) })
				if got := g.recvRaw(); !bytes.Equal(got, tt.wantFrame) {
					t.Fatalf("CONNECT = %x; want %x", got, tt.wantFrame)
				}
				if tt.will {
					g.send(&snpacket.WillTopicReq{})
					if got := g.recvRaw(); !bytes.Equal(got, tt.wantTopic) {
						t.Fatalf("WILLTOPIC = %x; want %x", got, tt.wantTopic)
					}
					g.send(&snpacket.WillMsgReq{})
					if got := g.recvRaw(); !bytes.Equal(got, tt.wantMsg) {
						t.Fatalf("WILLMSG = %x; want %x", got, tt.wantMsg)
					}
				}
				g.send(&snpacket.Connack{ReturnCode: snpacket.Accepted})
				if err := wait(t, done); err != nil {
					t.Fatalf("Connect() = %v", err)
				}
				if s := c.State(); s != snclient.StateActive {
					t.Fatalf("State() = %v; want active", s)
				}
			})
		})
	}
}

// A lost WILLTOPICREQ answer is recovered by retransmitting WILLTOPIC; a
// gateway asking for a will the client does not have gets the empty form.
func TestConnectWillDialogueRetransmitAndEmptyWill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g := newClient(t, baseOptions())
		done := async(func() error { return c.Connect(context.Background()) })
		expect[*snpacket.Connect](g)
		g.send(&snpacket.WillTopicReq{})
		if got, want := g.recvRaw(), []byte{0x02, 0x07}; !bytes.Equal(got, want) {
			t.Fatalf("WILLTOPIC without a will = %x; want %x", got, want)
		}
		start := time.Now()
		if got, want := g.recvRaw(), []byte{0x02, 0x07}; !bytes.Equal(got, want) { // lost: sent again
			t.Fatalf("retransmitted WILLTOPIC = %x; want %x", got, want)
		}
		if d := time.Since(start); d != tRetry {
			t.Fatalf("WILLTOPIC retransmitted after %v; want %v", d, tRetry)
		}
		g.send(&snpacket.WillMsgReq{})
		expect[*snpacket.WillMsg](g)
		g.send(&snpacket.Connack{})
		if err := wait(t, done); err != nil {
			t.Fatalf("Connect() = %v", err)
		}
	})
}

func TestConnectRefused(t *testing.T) {
	tests := []struct {
		rc      snpacket.ReturnCode
		wantErr error
	}{
		{snpacket.RejectedCongestion, snclient.ErrCongestion},
		{snpacket.RejectedNotSupported, snclient.ErrNotSupported},
		{snpacket.RejectedInvalidTopicID, snclient.ErrInvalidTopicID},
	}
	for _, tt := range tests {
		t.Run(tt.rc.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, g := newClient(t, baseOptions())
				done := async(func() error { return c.Connect(context.Background()) })
				expect[*snpacket.Connect](g)
				g.send(&snpacket.Connack{ReturnCode: tt.rc})
				err := wait(t, done)
				var rce *snclient.ReturnCodeError
				if !errors.Is(err, tt.wantErr) || !errors.As(err, &rce) || rce.Code != tt.rc || rce.Msg != snpacket.TypeConnack {
					t.Fatalf("Connect() = %v; want a *ReturnCodeError with %v", err, tt.rc)
				}
				if s := c.State(); s != snclient.StateDisconnected {
					t.Fatalf("State() = %v; want disconnected", s)
				}
			})
		})
	}
}

func TestConnectNoAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g := newClient(t, baseOptions())
		start := time.Now()
		done := async(func() error { return c.Connect(context.Background()) })
		for i := range nRetry + 1 {
			expect[*snpacket.Connect](g)
			if d, want := time.Since(start), time.Duration(i)*tRetry; d != want {
				t.Fatalf("CONNECT %d sent at %v; want %v", i, d, want)
			}
		}
		if err := wait(t, done); !errors.Is(err, snclient.ErrNoResponse) {
			t.Fatalf("Connect() = %v; want ErrNoResponse", err)
		}
		if d, want := time.Since(start), time.Duration(nRetry+1)*tRetry; d != want {
			t.Fatalf("gave up after %v; want %v", d, want)
		}
		g.quiet(time.Minute)
	})
}

func TestConnectContextCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g := newClient(t, baseOptions())
		ctx, cancel := context.WithCancel(context.Background())
		done := async(func() error { return c.Connect(ctx) })
		expect[*snpacket.Connect](g)
		cancel()
		if err := wait(t, done); !errors.Is(err, context.Canceled) {
			t.Fatalf("Connect() = %v; want context.Canceled", err)
		}
	})
}

func TestWillUpdate(t *testing.T) {
	tests := []struct {
		name    string
		call    func(*snclient.Client) error
		want    []byte
		answer  snpacket.Message
		wantErr error
	}{
		{
			name: "topic",
			call: func(c *snclient.Client) error {
				return c.UpdateWillTopic(context.Background(), "will/t", snpacket.QoS1, true)
			},
			want:   []byte{0x09, 0x1A, 0x30, 'w', 'i', 'l', 'l', '/', 't'},
			answer: &snpacket.WillTopicResp{ReturnCode: snpacket.Accepted},
		},
		{
			name:   "delete",
			call:   func(c *snclient.Client) error { return c.UpdateWillTopic(context.Background(), "", 0, false) },
			want:   []byte{0x02, 0x1A},
			answer: &snpacket.WillTopicResp{ReturnCode: snpacket.Accepted},
		},
		{
			name:   "message",
			call:   func(c *snclient.Client) error { return c.UpdateWillMessage(context.Background(), []byte("gone")) },
			want:   []byte{0x06, 0x1C, 'g', 'o', 'n', 'e'},
			answer: &snpacket.WillMsgResp{ReturnCode: snpacket.Accepted},
		},
		{
			name: "topic refused",
			call: func(c *snclient.Client) error {
				return c.UpdateWillTopic(context.Background(), "w", snpacket.QoS0, false)
			},
			want:    []byte{0x04, 0x1A, 0x00, 'w'},
			answer:  &snpacket.WillTopicResp{ReturnCode: snpacket.RejectedNotSupported},
			wantErr: snclient.ErrNotSupported,
		},
		{
			name:    "message congestion",
			call:    func(c *snclient.Client) error { return c.UpdateWillMessage(context.Background(), nil) },
			want:    []byte{0x02, 0x1C},
			answer:  &snpacket.WillMsgResp{ReturnCode: snpacket.RejectedCongestion},
			wantErr: snclient.ErrCongestion,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, g := connected(t, baseOptions())
				done := async(func() error { return tt.call(c) })
				if got := g.recvRaw(); !bytes.Equal(got, tt.want) {
					t.Fatalf("update = %x; want %x", got, tt.want)
				}
				// The first answer is lost: the update is retransmitted.
				if got := g.recvRaw(); !bytes.Equal(got, tt.want) {
					t.Fatalf("retransmitted update = %x; want %x", got, tt.want)
				}
				g.send(tt.answer)
				if err := wait(t, done); !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
					t.Fatalf("update = %v; want %v", err, tt.wantErr)
				}
			})
		})
	}
}

// After UpdateWillTopic and UpdateWillMessage, a new Connect offers the
// updated will.
func TestWillUpdateUsedByNextConnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g := connected(t, baseOptions())
		done := async(func() error { return c.UpdateWillTopic(context.Background(), "a/w", snpacket.QoS2, false) })
		expect[*snpacket.WillTopicUpd](g)
		g.send(&snpacket.WillTopicResp{})
		if err := wait(t, done); err != nil {
			t.Fatal(err)
		}
		done = async(func() error { return c.UpdateWillMessage(context.Background(), []byte("x")) })
		expect[*snpacket.WillMsgUpd](g)
		g.send(&snpacket.WillMsgResp{})
		if err := wait(t, done); err != nil {
			t.Fatal(err)
		}
		done = async(func() error { return c.Connect(context.Background()) })
		if m := expect[*snpacket.Connect](g); !m.Will {
			t.Fatalf("CONNECT %+v; want the Will flag", m)
		}
		g.send(&snpacket.WillTopicReq{})
		if m := expect[*snpacket.WillTopic](g); string(m.Topic) != "a/w" || m.QoS != snpacket.QoS2 || m.Retain {
			t.Fatalf("WILLTOPIC %+v; want a/w QoS 2", m)
		}
		g.send(&snpacket.WillMsgReq{})
		if m := expect[*snpacket.WillMsg](g); string(m.Message) != "x" {
			t.Fatalf("WILLMSG %q; want x", m.Message)
		}
		g.send(&snpacket.Connack{})
		if err := wait(t, done); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDisconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, g := connected(t, baseOptions())
		done := async(func() error { return c.Disconnect(context.Background()) })
		if got, want := g.recvRaw(), []byte{0x02, 0x18}; !bytes.Equal(got, want) {
			t.Fatalf("DISCONNECT = %x; want %x", got, want)
		}
		g.send(&snpacket.Disconnect{})
		if err := wait(t, done); err != nil {
			t.Fatalf("Disconnect() = %v", err)
		}
		if s := c.State(); s != snclient.StateDisconnected {
			t.Fatalf("State() = %v; want disconnected", s)
		}
		g.quiet(10 * keepAlive) // no keep-alive after disconnecting
		if err := c.Publish(context.Background(), snclient.Short("ab"), 0, false, nil); !errors.Is(err, snclient.ErrNotConnected) {
			t.Fatalf("Publish after Disconnect = %v; want ErrNotConnected", err)
		}
	})
}

func TestGatewayDisconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lost := make(chan error, 1)
		opts := baseOptions()
		opts.ConnectionLost = func(err error) { lost <- err }
		c, g := connected(t, opts)
		done := async(func() error {
			return c.Publish(context.Background(), snclient.Short("ab"), 1, false, []byte("x"))
		})
		expect[*snpacket.Publish](g)
		g.send(&snpacket.Disconnect{})
		if err := wait(t, done); !errors.Is(err, snclient.ErrGatewayDisconnected) {
			t.Fatalf("Publish() = %v; want ErrGatewayDisconnected", err)
		}
		if err := <-lost; !errors.Is(err, snclient.ErrGatewayDisconnected) {
			t.Fatalf("ConnectionLost(%v); want ErrGatewayDisconnected", err)
		}
		if s := c.State(); s != snclient.StateDisconnected {
			t.Fatalf("State() = %v; want disconnected", s)
		}
		g.quiet(10 * keepAlive)
	})
}

// With a Logger, state transitions are logged at Debug as "from -> to".
func TestLoggerTransitions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuffer
		opts := baseOptions()
		opts.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c, g := connected(t, opts)
		done := async(func() error { return c.Sleep(context.Background(), time.Minute) })
		expect[*snpacket.Disconnect](g)
		g.send(&snpacket.Disconnect{})
		if err := wait(t, done); err != nil {
			t.Fatal(err)
		}
		g.send(&snpacket.Connack{})                                   // a stray answer: ignored
		g.conn.WriteTo([]byte{0x05, 0x0D, 0x00, 0x01}, g.conn.remote) // Length 5, 4 octets
		synctest.Wait()
		out := buf.String()
		for _, want := range []string{`state="disconnected -> active"`, `state="active -> asleep"`, "undecodable datagram"} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %s:\n%s", want, out)
			}
		}
		if got := c.Stats().Dropped; got != 1 {
			t.Errorf("Stats().Dropped = %d; want 1", got)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestStateString(t *testing.T) {
	for s, want := range map[snclient.State]string{
		snclient.StateDisconnected: "disconnected",
		snclient.StateActive:       "active",
		snclient.StateAsleep:       "asleep",
		snclient.StateAwake:        "awake",
		snclient.StateLost:         "lost",
		snclient.State(9):          "state(9)",
	} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q; want %q", uint8(s), got, want)
		}
	}
}

package framing_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/gannet-mqtt/gannet/mqttcore/listener/internal/framing"
)

// unhex decodes a hex string with spaces, failing the test on bad input.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// newReader returns a Reader over b with cfg, failing the test on error.
func newReader(t testing.TB, b []byte, cfg framing.Limits) *framing.Reader {
	t.Helper()
	r, err := framing.NewReader(bytes.NewReader(b), cfg)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	return r
}

// Golden packets, shared with the fuzz corpus seeds.
const (
	goldenConnect311 = "10 0f 0004 4d515454 04 02 003c 0003 616263"
	goldenConnect5   = "10 21 0004 4d515454 05 c2 003c 05 11 00000e10 0003 616263 0004 75736572 0004 70617373"
	goldenPublish311 = "32 09 0003 612f62 0007 6869"
	goldenPublish5   = "30 0a 0003 612f62 02 0101 6869"
	goldenSubscr311  = "82 0c 000a 0003 612f2b 01 0001 23 00"
	goldenSubscr5    = "82 0b 000a 02 0b05 0003 612f2b 1d"
)

func TestGoldenRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		version byte
		wire    string
		check   func(t *testing.T, pk packets.Packet)
	}{
		{"connect 3.1.1", 0, goldenConnect311, func(t *testing.T, pk packets.Packet) {
			c := pk.Connect
			if pk.ProtocolVersion != 4 || c.ClientIdentifier != "abc" || !c.Clean || c.Keepalive != 60 || c.UsernameFlag {
				t.Errorf("got version %d connect %+v", pk.ProtocolVersion, c)
			}
		}},
		{"connect 5", 0, goldenConnect5, func(t *testing.T, pk packets.Packet) {
			c := pk.Connect
			if pk.ProtocolVersion != 5 || c.ClientIdentifier != "abc" || string(c.Username) != "user" || string(c.Password) != "pass" ||
				!pk.Properties.SessionExpiryIntervalFlag || pk.Properties.SessionExpiryInterval != 3600 {
				t.Errorf("got version %d connect %+v properties %+v", pk.ProtocolVersion, c, pk.Properties)
			}
		}},
		{"publish 3.1.1 qos 1", 4, goldenPublish311, func(t *testing.T, pk packets.Packet) {
			if pk.TopicName != "a/b" || pk.FixedHeader.Qos != 1 || pk.PacketID != 7 || string(pk.Payload) != "hi" {
				t.Errorf("got %+v", pk)
			}
		}},
		{"publish 5 qos 0", 5, goldenPublish5, func(t *testing.T, pk packets.Packet) {
			if pk.TopicName != "a/b" || pk.FixedHeader.Qos != 0 || string(pk.Payload) != "hi" ||
				!pk.Properties.PayloadFormatFlag || pk.Properties.PayloadFormat != 1 {
				t.Errorf("got %+v", pk)
			}
		}},
		{"subscribe 3.1.1", 4, goldenSubscr311, func(t *testing.T, pk packets.Packet) {
			if pk.PacketID != 10 || len(pk.Filters) != 2 || pk.Filters[0].Filter != "a/+" || pk.Filters[0].Qos != 1 ||
				pk.Filters[1].Filter != "#" || pk.Filters[1].Qos != 0 {
				t.Errorf("got %+v", pk)
			}
		}},
		{"subscribe 5", 5, goldenSubscr5, func(t *testing.T, pk packets.Packet) {
			if len(pk.Filters) != 1 {
				t.Fatalf("got %d filters, want 1", len(pk.Filters))
			}
			f := pk.Filters[0]
			if f.Filter != "a/+" || f.Qos != 1 || !f.NoLocal || !f.RetainAsPublished || f.RetainHandling != 1 || f.Identifier != 5 {
				t.Errorf("got filter %+v", f)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wire := unhex(t, tt.wire)
			pk, err := newReader(t, wire, framing.Limits{}).ReadPacket(tt.version)
			if err != nil {
				t.Fatalf("ReadPacket(%x) = %v", wire, err)
			}
			tt.check(t, pk)
			var buf bytes.Buffer
			if err := framing.Encode(&buf, &pk); err != nil {
				t.Fatalf("Encode(%+v) = %v", pk, err)
			}
			if !bytes.Equal(buf.Bytes(), wire) {
				t.Errorf("Encode(ReadPacket(%x)) = %x; want the input", wire, buf.Bytes())
			}
		})
	}
}

// closeWant describes the packet CloseResponse should return.
type closeWant struct {
	send    bool
	typ     byte
	version byte
	code    byte
}

var (
	closeNothing                = closeWant{}
	closeConnack311Unacceptable = closeWant{true, packets.Connack, 4, 0x01}
)

func connack5(code byte) closeWant    { return closeWant{true, packets.Connack, 5, code} }
func disconnect5(code byte) closeWant { return closeWant{true, packets.Disconnect, 5, code} }

// refuseCases are malformed or refused packets with the error, reason code
// and close response each must produce.
var refuseCases = []struct {
	name    string
	version byte
	max     int
	wire    string
	want    error
	reason  framing.ReasonCode
	close   closeWant
}{
	{"remaining length of 5 bytes", 5, 0, "30 ff ff ff ff 01", framing.ErrMalformed, 0x81, disconnect5(0x81)},
	{"remaining length not minimal", 5, 0, "30 80 00", framing.ErrMalformed, 0x81, disconnect5(0x81)},
	{"remaining length truncated", 5, 0, "30 ff", framing.ErrMalformed, 0x81, disconnect5(0x81)},
	{"body truncated", 5, 0, "30 0a 0003 612f", framing.ErrMalformed, 0x81, disconnect5(0x81)},
	{"oversized publish", 5, 64, "30 41" + strings.Repeat("00", 65), framing.ErrPacketTooLarge, 0x95, disconnect5(0x95)},
	{"oversized publish 3.1.1", 4, 64, "30 41" + strings.Repeat("00", 65), framing.ErrPacketTooLarge, 0x95, closeNothing},
	{"forged maximum length", 5, 0, "30 ff ff ff 7f", framing.ErrPacketTooLarge, 0x95, disconnect5(0x95)},
	{"oversized connect 5", 0, 64, "10 41 0004 4d515454 05" + strings.Repeat("00", 58), framing.ErrPacketTooLarge, 0x95, connack5(0x95)},
	{"oversized connect 3.1.1", 0, 64, "10 41 0004 4d515454 04" + strings.Repeat("00", 58), framing.ErrPacketTooLarge, 0x95, closeNothing},
	{"wrong protocol name", 0, 0, "10 0f 0004 4d515458 04 02 003c 0003 616263", framing.ErrProtocolName, 0x82, closeNothing},
	{"http request", 0, 0, "47 45 54 20 2f", framing.ErrProtocol, 0x82, closeNothing},
	{"MQIsdp level 4", 0, 0, "10 11 0006 4d5149736470 04 02 003c 0003 616263", framing.ErrUnsupportedVersion, 0x84, closeConnack311Unacceptable},
	{"MQTT level 3", 0, 0, "10 0f 0004 4d515454 03 02 003c 0003 616263", framing.ErrUnsupportedVersion, 0x84, closeConnack311Unacceptable},
	{"connect 3.1 reserved flag", 0, 0, "10 11 0006 4d5149736470 03 03 003c 0003 616263", framing.ErrMalformed, 0x81, closeNothing},
	{"auth in 3.1", 3, 0, "f0 00", framing.ErrMalformed, 0x81, closeNothing},
	{"protocol level 6", 0, 0, "10 0f 0004 4d515454 06 02 003c 0003 616263", framing.ErrUnsupportedVersion, 0x84, closeConnack311Unacceptable},
	{"connect name truncated", 0, 0, "10 03 0004 4d", framing.ErrMalformed, 0x81, closeNothing},
	{"connect 5 properties overrun", 0, 0, "10 11 0004 4d515454 05 02 003c 09 11 00000e10 0000", framing.ErrMalformed, 0x81, connack5(0x81)},
	{"connect 5 duplicate property", 0, 0, "10 16 0004 4d515454 05 02 003c 0a 11 00000e10 11 00000e10 0000", framing.ErrProtocol, 0x82, connack5(0x82)},
	{"connect reserved flag", 0, 0, "10 0f 0004 4d515454 04 03 003c 0003 616263", framing.ErrMalformed, 0x81, closeNothing},
	{"connect 5 reserved flag", 0, 0, "10 10 0004 4d515454 05 03 003c 00 0003 616263", framing.ErrMalformed, 0x81, connack5(0x81)},
	{"connect will qos without will", 0, 0, "10 0f 0004 4d515454 04 0a 003c 0003 616263", framing.ErrMalformed, 0x81, closeNothing},
	{"connect 3.1.1 password without user", 0, 0, "10 15 0004 4d515454 04 42 003c 0003 616263 0004 70617373", framing.ErrProtocol, 0x82, closeNothing},
	{"connect client id truncated", 0, 0, "10 0e 0004 4d515454 04 02 003c 0003 6162", framing.ErrMalformed, 0x81, closeNothing},
	{"connect 5 client id truncated", 0, 0, "10 0f 0004 4d515454 05 02 003c 00 0003 6162", framing.ErrMalformed, 0x81, connack5(0x81)},
	{"connect 5 truncated before level", 0, 0, "10 0f 0004 4d515454", framing.ErrMalformed, 0x81, closeNothing},
	{"connect bad utf-8 client id", 0, 0, "10 0f 0004 4d515454 04 02 003c 0003 61ff63", framing.ErrMalformed, 0x81, closeNothing},
	{"first packet not connect", 0, 0, goldenPublish311, framing.ErrProtocol, 0x82, closeNothing},
	{"reserved packet type", 5, 0, "00 00", framing.ErrMalformed, 0x81, disconnect5(0x81)},
	{"auth in 3.1.1", 4, 0, "f0 00", framing.ErrMalformed, 0x81, closeNothing},
	{"publish qos 3", 5, 0, "36 07 0003 612f62 0001", framing.ErrMalformed, 0x81, disconnect5(0x81)},
	{"publish dup at qos 0", 5, 0, "38 06 0003 612f62 00", framing.ErrProtocol, 0x82, disconnect5(0x82)},
	{"publish qos 1 packet id 0", 4, 0, "32 07 0003 612f62 0000", framing.ErrProtocol, 0x82, closeNothing},
	{"publish wildcard topic", 5, 0, "30 06 0003 612f23 00", framing.ErrProtocol, 0x82, disconnect5(0x82)},
	{"publish empty topic 3.1.1", 4, 0, "30 02 0000", framing.ErrProtocol, 0x82, closeNothing},
	{"publish topic length overruns", 4, 0, "30 03 0009 61", framing.ErrMalformed, 0x81, closeNothing},
	{"publish 5 topic alias 0", 5, 0, "30 09 0003 612f62 03 230000", framing.ErrProtocol, 0x82, disconnect5(0x82)},
	{"publish 5 payload format 2", 5, 0, "30 08 0003 612f62 02 0102", framing.ErrProtocol, 0x82, disconnect5(0x82)},
	{"publish 5 unknown property", 5, 0, "30 08 0003 612f62 02 0701", framing.ErrMalformed, 0x81, disconnect5(0x81)},
	{"publish 5 property not for publish", 5, 0, "30 0b 0003 612f62 05 1100000001", framing.ErrMalformed, 0x81, disconnect5(0x81)},
	{"publish 5 response topic wildcard", 5, 0, "30 0c 0003 612f62 06 080003612f23", framing.ErrProtocol, 0x82, disconnect5(0x82)},
	{"subscribe bad flags", 4, 0, "80 06 000a 0001 23 00", framing.ErrMalformed, 0x81, closeNothing},
	{"subscribe no filters", 4, 0, "82 02 000a", framing.ErrProtocol, 0x82, closeNothing},
	{"subscribe packet id 0", 4, 0, "82 06 0000 0001 23 00", framing.ErrProtocol, 0x82, closeNothing},
	{"subscribe 3.1.1 qos 3", 4, 0, "82 06 000a 0001 23 03", framing.ErrMalformed, 0x81, closeNothing},
	{"subscribe 3.1.1 missing qos", 4, 0, "82 05 000a 0001 23", framing.ErrMalformed, 0x81, closeNothing},
	{"subscribe 5 missing options (mochi panic)", 5, 0, "82 06 000a 00 0001 23", framing.ErrMalformed, 0x81, disconnect5(0x81)},
	{"subscribe 5 reserved option bits", 5, 0, "82 07 000a 00 0001 23 c0", framing.ErrMalformed, 0x81, disconnect5(0x81)},
	{"subscribe 5 retain handling 3", 5, 0, "82 07 000a 00 0001 23 30", framing.ErrProtocol, 0x82, disconnect5(0x82)},
	{"subscribe 5 subscription identifier 0", 5, 0, "82 09 000a 02 0b00 0001 23 00", framing.ErrProtocol, 0x82, disconnect5(0x82)},
	{"subscribe 5 two subscription identifiers", 5, 0, "82 0b 000a 04 0b01 0b02 0001 23 00", framing.ErrProtocol, 0x82, disconnect5(0x82)},
	{"unsubscribe no filters", 5, 0, "a2 03 000a 00", framing.ErrProtocol, 0x82, disconnect5(0x82)},
	{"pingreq with body", 5, 0, "c0 01 00", framing.ErrMalformed, 0x81, disconnect5(0x81)},
	{"puback 3.1.1 with 3 bytes", 4, 0, "40 03 0001 00", framing.ErrMalformed, 0x81, closeNothing},
	{"puback 5 trailing bytes", 5, 0, "40 05 0001 00 00 ff", framing.ErrMalformed, 0x81, disconnect5(0x81)},
	{"puback packet id 0", 5, 0, "40 02 0000", framing.ErrProtocol, 0x82, disconnect5(0x82)},
	{"pubrel bad flags", 4, 0, "60 02 0001", framing.ErrMalformed, 0x81, closeNothing},
	{"disconnect 3.1.1 with body", 4, 0, "e0 01 00", framing.ErrMalformed, 0x81, closeNothing},
	{"disconnect 5 property length overruns", 5, 0, "e0 02 00 05", framing.ErrMalformed, 0x81, disconnect5(0x81)},
}

func TestReadPacketRefuses(t *testing.T) {
	for _, tt := range refuseCases {
		t.Run(tt.name, func(t *testing.T) {
			wire := unhex(t, tt.wire)
			r := newReader(t, wire, framing.Limits{MaxPacketSize: tt.max})
			pk, err := r.ReadPacket(tt.version)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ReadPacket(%x) = type %d, %v; want %v", wire, pk.FixedHeader.Type, err, tt.want)
			}
			if errors.Is(err, framing.ErrDecoderPanic) {
				t.Errorf("ReadPacket(%x) reached mochi's decoder and it panicked: %v; want a guard before it", wire, err)
			}
			if reason, ok := framing.Reason(err); !ok || reason != tt.reason {
				t.Errorf("Reason(%v) = %v, %v; want %v", err, reason, ok, tt.reason)
			}
			got, send := framing.CloseResponse(err, tt.version)
			if send != tt.close.send {
				t.Fatalf("CloseResponse(%v, %d) send = %v; want %v", err, tt.version, send, tt.close.send)
			}
			if send && (got.FixedHeader.Type != tt.close.typ || got.ProtocolVersion != tt.close.version || got.ReasonCode != tt.close.code) {
				t.Errorf("CloseResponse(%v, %d) = type %d v%d code 0x%02x; want type %d v%d code 0x%02x", err, tt.version,
					got.FixedHeader.Type, got.ProtocolVersion, got.ReasonCode, tt.close.typ, tt.close.version, tt.close.code)
			}
			if send {
				var buf bytes.Buffer
				if err := framing.Encode(&buf, &got); err != nil {
					t.Errorf("Encode(close response) = %v", err)
				}
			}
			if _, again := r.ReadPacket(tt.version); !errors.Is(again, tt.want) {
				t.Errorf("second ReadPacket = %v; want the sticky error %v", again, err)
			}
		})
	}
}

func TestCloseResponseWire(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		version byte
		want    string
	}{
		{"connack 3.1.1 unacceptable version", &framing.Error{Type: packets.Connect, Version: 6, Reason: 0x84, Err: framing.ErrUnsupportedVersion}, 0, "20 02 00 01"},
		{"connack 5 malformed", &framing.Error{Type: packets.Connect, Version: 5, Reason: 0x81, Err: framing.ErrMalformed}, 0, "20 03 00 81 00"},
		{"disconnect 5 too large", &framing.Error{Type: packets.Publish, Version: 5, Reason: 0x95, Err: framing.ErrPacketTooLarge}, 5, "e0 02 95 00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pk, ok := framing.CloseResponse(tt.err, tt.version)
			if !ok {
				t.Fatalf("CloseResponse(%v, %d) sends nothing", tt.err, tt.version)
			}
			var buf bytes.Buffer
			if err := framing.Encode(&buf, &pk); err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tt.want); !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("wire = %x; want %x", buf.Bytes(), want)
			}
		})
	}
	for _, err := range []error{io.EOF, io.ErrClosedPipe, nil} {
		if _, ok := framing.CloseResponse(err, 5); ok {
			t.Errorf("CloseResponse(%v, 5) sends a packet; want nothing", err)
		}
	}
}

func TestReadPacketStream(t *testing.T) {
	stream := append(unhex(t, goldenConnect5), unhex(t, goldenPublish5+" c0 00 e0 00")...)
	r := newReader(t, stream, framing.Limits{})
	var types []byte
	version := byte(0)
	for {
		pk, err := r.ReadPacket(version)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("ReadPacket after %v = %v", types, err)
		}
		version = pk.ProtocolVersion
		types = append(types, pk.FixedHeader.Type)
	}
	want := []byte{packets.Connect, packets.Publish, packets.Pingreq, packets.Disconnect}
	if !bytes.Equal(types, want) {
		t.Errorf("types = %v; want %v", types, want)
	}
}

// TestReadMQTT31 reads an MQTT 3.1 ("MQIsdp", level 3) session: CONNECT
// with a will and credentials, then packets read with version 3.
func TestReadMQTT31(t *testing.T) {
	const (
		connect31 = "10 26 0006 4d5149736470 03 ce 003c 0003 616263 0003 772f74 0002 6279 0004 75736572 0004 70617373" // will qos 1, user, password
		subscr31  = "82 08 000a 0003 612f2b 01"
	)
	r := newReader(t, unhex(t, connect31+goldenPublish311+subscr31+"e0 00"), framing.Limits{})
	pk, err := r.ReadPacket(0)
	if err != nil {
		t.Fatalf("ReadPacket(CONNECT 3.1) = %v", err)
	}
	c := pk.Connect
	if pk.ProtocolVersion != 3 || string(c.ProtocolName) != "MQIsdp" || c.ClientIdentifier != "abc" || !c.Clean ||
		!c.WillFlag || c.WillQos != 1 || c.WillTopic != "w/t" || string(c.WillPayload) != "by" ||
		string(c.Username) != "user" || string(c.Password) != "pass" || c.Keepalive != 60 {
		t.Fatalf("CONNECT 3.1 = version %d %+v", pk.ProtocolVersion, c)
	}
	// MQTT 3.1 has no rule against a password without a user name.
	if _, err := newReader(t, unhex(t, "10 17 0006 4d5149736470 03 42 003c 0003 616263 0004 70617373"), framing.Limits{}).ReadPacket(0); err != nil {
		t.Errorf("ReadPacket(CONNECT 3.1 with a password and no user name) = %v; want it read", err)
	}
	for _, want := range []byte{packets.Publish, packets.Subscribe, packets.Disconnect} {
		pk, err := r.ReadPacket(3)
		if err != nil || pk.FixedHeader.Type != want || pk.ProtocolVersion != 3 {
			t.Fatalf("ReadPacket(3) = type %d version %d, %v; want type %d version 3", pk.FixedHeader.Type, pk.ProtocolVersion, err, want)
		}
		if want == packets.Subscribe && (len(pk.Filters) != 1 || pk.Filters[0].Filter != "a/+" || pk.Filters[0].Qos != 1) {
			t.Errorf("SUBSCRIBE 3.1 filters = %+v", pk.Filters)
		}
	}
}

// TestPacketOwnsItsBuffer checks that a packet's strings survive the next
// read: mochi's strings alias the body buffer.
func TestPacketOwnsItsBuffer(t *testing.T) {
	r := newReader(t, unhex(t, goldenPublish311+" 32 09 0003 782f79 0008 6f6b"), framing.Limits{})
	first, err := r.ReadPacket(4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadPacket(4); err != nil {
		t.Fatal(err)
	}
	if first.TopicName != "a/b" || string(first.Payload) != "hi" {
		t.Errorf("first packet changed after the second read: topic %q payload %q", first.TopicName, first.Payload)
	}
}

// TestForgedLengthDoesNotAllocate sends a header declaring a body just under
// the maximum packet size and no body: the Reader must not allocate the
// declared size up front.
func TestForgedLengthDoesNotAllocate(t *testing.T) {
	const max = 64 << 20
	wire := unhex(t, "30 f9 ff ff 1f 0003") // remaining 67,108,857: 5 + that = 64 MiB - 2
	r := newReader(t, wire, framing.Limits{MaxPacketSize: max})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := r.ReadPacket(4)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("ReadPacket = %v; want unexpected EOF", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("ReadPacket of a forged %d-byte length allocated %d bytes; want under 1 MiB", max, got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		max int
		ok  bool
	}{
		{0, true}, {64, true}, {framing.ProtocolMaxPacketSize, true},
		{-1, false}, {63, false}, {framing.ProtocolMaxPacketSize + 1, false},
	}
	for _, tt := range tests {
		err := framing.Limits{MaxPacketSize: tt.max}.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("Config{MaxPacketSize: %d}.Validate() = %v; want ok=%v", tt.max, err, tt.ok)
		}
		if _, err := framing.NewReader(bytes.NewReader(nil), framing.Limits{MaxPacketSize: tt.max}); (err == nil) != tt.ok {
			t.Errorf("NewReader(MaxPacketSize %d) = %v; want ok=%v", tt.max, err, tt.ok)
		}
	}
}

func TestReadPacketBadVersionArgument(t *testing.T) {
	_, err := newReader(t, unhex(t, "c0 00"), framing.Limits{}).ReadPacket(2)
	if err == nil {
		t.Fatal("ReadPacket(2) = nil error; want one")
	}
}

// TestTruncation cuts every valid seed packet short in two ways: the stream
// ends early (the header still declares the full length), and the header is
// rewritten to declare the shorter body. Neither may panic or reach a codec
// panic; the first must fail as malformed with io.ErrUnexpectedEOF (io.EOF
// for an empty stream); the second must succeed or fail with a reason code.
func TestTruncation(t *testing.T) {
	for _, s := range fuzzSeeds {
		wire := unhex(t, s.wire)
		if int(wire[1])+2 != len(wire) {
			continue // a stream of several packets
		}
		hdr := 2 // every seed has a one-byte Remaining Length
		for n := 0; n < len(wire); n++ {
			_, err := newReader(t, wire[:n], framing.Limits{}).ReadPacket(s.version)
			switch {
			case n == 0 && err != io.EOF:
				t.Errorf("ReadPacket(empty) = %v; want io.EOF", err)
			case n > 0 && !(errors.Is(err, framing.ErrMalformed) && errors.Is(err, io.ErrUnexpectedEOF)):
				t.Errorf("ReadPacket(%x, first %d bytes of %x) = %v; want malformed, unexpected EOF", wire[:n], n, wire, err)
			}
			if n < hdr {
				continue
			}
			short := append([]byte{wire[0], byte(n - hdr)}, wire[hdr:n]...)
			_, err = newReader(t, short, framing.Limits{}).ReadPacket(s.version)
			if errors.Is(err, framing.ErrDecoderPanic) {
				t.Errorf("ReadPacket(%x): codec panic %v", short, err)
			}
			if _, ok := framing.Reason(err); err != nil && !ok {
				t.Errorf("ReadPacket(%x) = %v; want success or a reason code", short, err)
			}
		}
	}
}

// TestLargeBody reads a body larger than the up-front allocation, complete
// and cut short.
func TestLargeBody(t *testing.T) {
	const payload = 200 << 10
	body := append([]byte{0, 3, 'a', '/', 'b'}, bytes.Repeat([]byte{'x'}, payload)...)
	n := len(body)
	wire := append([]byte{0x30, byte(n&0x7f | 0x80), byte(n>>7&0x7f | 0x80), byte(n >> 14)}, body...)
	pk, err := newReader(t, wire, framing.Limits{}).ReadPacket(4)
	if err != nil || len(pk.Payload) != payload || pk.TopicName != "a/b" {
		t.Fatalf("ReadPacket(%d-byte publish) = topic %q, %d payload bytes, %v; want a/b, %d, nil", len(wire), pk.TopicName, len(pk.Payload), err, payload)
	}
	_, err = newReader(t, wire[:len(wire)-1], framing.Limits{}).ReadPacket(4)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, framing.ErrMalformed) {
		t.Errorf("ReadPacket(publish missing its last byte) = %v; want malformed, unexpected EOF", err)
	}
	_, err = newReader(t, wire, framing.Limits{MaxPacketSize: len(wire) - 1}).ReadPacket(4)
	if !errors.Is(err, framing.ErrPacketTooLarge) {
		t.Errorf("ReadPacket(%d bytes, maximum %d) = %v; want ErrPacketTooLarge", len(wire), len(wire)-1, err)
	}
}

// TestReasonCodeOnlyPackets checks MQTT 5 packets that end with their reason
// code, which mochi's decoder mishandles on its own.
func TestReasonCodeOnlyPackets(t *testing.T) {
	tests := []struct {
		wire string
		typ  byte
		code byte
	}{
		{"e0 00", packets.Disconnect, 0x00},
		{"e0 01 04", packets.Disconnect, 0x04},
		{"e0 02 8e 00", packets.Disconnect, 0x8e},
		{"f0 00", packets.Auth, 0x00},
		{"f0 01 18", packets.Auth, 0x18},
		{"40 03 0001 10", packets.Puback, 0x10},
	}
	for _, tt := range tests {
		wire := unhex(t, tt.wire)
		pk, err := newReader(t, wire, framing.Limits{}).ReadPacket(5)
		if err != nil || pk.FixedHeader.Type != tt.typ || pk.ReasonCode != tt.code {
			t.Errorf("ReadPacket(%x) = type %d reason 0x%02x, %v; want type %d reason 0x%02x", wire, pk.FixedHeader.Type, pk.ReasonCode, err, tt.typ, tt.code)
		}
	}
}

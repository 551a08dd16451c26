package framing_test

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/gannet-mqtt/gannet/mqttcore/listener/internal/framing"
)

func TestWriterRoundTrip(t *testing.T) {
	var stream bytes.Buffer
	w := framing.NewWriter(&stream)
	out := []packets.Packet{
		{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ProtocolVersion: 5, ReasonCode: 0x00,
			Properties: packets.Properties{TopicAliasMaximum: 10, ReceiveMaximum: 20}},
		{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Retain: true}, ProtocolVersion: 5, PacketID: 9,
			TopicName: "a/b", Payload: []byte("payload"), Mods: packets.Mods{AllowResponseInfo: true},
			Properties: packets.Properties{ResponseTopic: "r/t", CorrelationData: []byte("cd")}},
		{FixedHeader: packets.FixedHeader{Type: packets.Puback}, ProtocolVersion: 5, PacketID: 9, ReasonCode: 0x10},
		{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, ProtocolVersion: 5, PacketID: 3},
		{FixedHeader: packets.FixedHeader{Type: packets.Suback}, ProtocolVersion: 5, PacketID: 4, ReasonCodes: []byte{1, 0x87}},
		{FixedHeader: packets.FixedHeader{Type: packets.Pingresp}, ProtocolVersion: 5},
		{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}, ProtocolVersion: 5, ReasonCode: 0x8e},
	}
	for i := range out {
		if err := w.WritePacket(&out[i]); err != nil {
			t.Fatalf("WritePacket(%d) = %v", out[i].FixedHeader.Type, err)
		}
	}
	r, err := framing.NewReader(&stream, framing.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range out {
		got, err := r.ReadPacket(5)
		if err != nil {
			t.Fatalf("ReadPacket after writing type %d = %v", want.FixedHeader.Type, err)
		}
		if got.FixedHeader.Type != want.FixedHeader.Type || got.PacketID != want.PacketID || got.ReasonCode != want.ReasonCode ||
			got.TopicName != want.TopicName || !bytes.Equal(got.Payload, want.Payload) || !bytes.Equal(got.ReasonCodes, want.ReasonCodes) ||
			got.Properties.ResponseTopic != want.Properties.ResponseTopic || got.Properties.TopicAliasMaximum != want.Properties.TopicAliasMaximum {
			t.Errorf("read back %+v; want %+v", got, want)
		}
	}
	if _, err := r.ReadPacket(5); err != io.EOF {
		t.Errorf("ReadPacket at the end = %v; want io.EOF", err)
	}
}

func TestWriterPeerMaximum(t *testing.T) {
	var stream bytes.Buffer
	w := framing.NewWriter(&stream)
	if err := w.SetMaxPacketSize(10); err != nil {
		t.Fatal(err)
	}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, ProtocolVersion: 4, TopicName: "a/b", Payload: []byte("123456")}
	if err := w.WritePacket(&pk); !errors.Is(err, framing.ErrPacketTooLarge) {
		t.Errorf("WritePacket(13-byte packet, peer maximum 10) = %v; want ErrPacketTooLarge", err)
	}
	if stream.Len() != 0 {
		t.Errorf("WritePacket wrote %x after refusing; want nothing", stream.Bytes())
	}
	pk.Payload = pk.Payload[:3]
	if err := w.WritePacket(&pk); err != nil || stream.Len() != 10 {
		t.Errorf("WritePacket(10-byte packet) = %v, wrote %d bytes; want nil, 10", err, stream.Len())
	}
	if err := w.SetMaxPacketSize(-1); err == nil {
		t.Error("SetMaxPacketSize(-1) = nil; want an error")
	}
}

func TestEncodeRefuses(t *testing.T) {
	tests := []struct {
		name string
		pk   packets.Packet
	}{
		{"reserved type", packets.Packet{}},
		{"publish qos 3", packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 3}, TopicName: "a", PacketID: 1}},
		{"publish qos 1 without packet id", packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: "a"}},
		{"subscribe without packet id", packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe}, Filters: packets.Subscriptions{{Filter: "a"}}}},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		buf.WriteString("keep")
		if err := framing.Encode(&buf, &tt.pk); err == nil {
			t.Errorf("%s: Encode = nil error; want one", tt.name)
		}
		if buf.String() != "keep" {
			t.Errorf("%s: Encode left %q in the buffer; want it unchanged", tt.name, buf.Bytes())
		}
	}
}

func BenchmarkReadPublish311(b *testing.B) {
	benchmarkRead(b, 4, unhex(b, goldenPublish311))
}

func BenchmarkReadPublish5(b *testing.B) {
	benchmarkRead(b, 5, unhex(b, goldenPublish5))
}

// TestReadAckAllocs: short acknowledgements and DISCONNECTs, read for
// every QoS 1/2 delivery, are read without allocating; their fields are
// right and stay right when the next packet reuses the scratch buffer.
func TestReadAckAllocs(t *testing.T) {
	tests := []struct {
		name    string
		version byte
		wire    string
		typ     byte
		pid     uint16
		code    byte
		allocs  float64
	}{
		{"puback 3.1.1", 4, "40 02 0102", packets.Puback, 0x0102, 0, 0},
		{"pubrec 5 with reason", 5, "50 03 0203 10", packets.Pubrec, 0x0203, 0x10, 0},
		// mochi's property decoder allocates once even for an empty list.
		{"pubrel 5 reason and empty props", 5, "62 04 0304 92 00", packets.Pubrel, 0x0304, 0x92, 1},
		{"pubcomp 3.1.1", 4, "70 02 0405", packets.Pubcomp, 0x0405, 0, 0},
		{"disconnect 5 with will", 5, "e0 01 04", packets.Disconnect, 0, 0x04, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wire := unhex(t, tt.wire)
			r, err := framing.NewReader(&repeatReader{b: wire}, framing.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			first, err := r.ReadPacket(tt.version)
			if err != nil {
				t.Fatalf("ReadPacket(%x) = %v", wire, err)
			}
			if a := testing.AllocsPerRun(100, func() {
				if _, err := r.ReadPacket(tt.version); err != nil {
					t.Fatal(err)
				}
			}); a != tt.allocs {
				t.Errorf("ReadPacket(%x): %.1f allocs; want %.0f", wire, a, tt.allocs)
			}
			if first.FixedHeader.Type != tt.typ || first.PacketID != tt.pid || first.ReasonCode != tt.code {
				t.Errorf("ReadPacket(%x) = type %d id %#x reason %#x after further reads; want %d %#x %#x",
					wire, first.FixedHeader.Type, first.PacketID, first.ReasonCode, tt.typ, tt.pid, tt.code)
			}
		})
	}
}

func BenchmarkReadPuback311(b *testing.B) {
	benchmarkRead(b, 4, unhex(b, "40 02 0001"))
}

func BenchmarkReadPuback5(b *testing.B) {
	benchmarkRead(b, 5, unhex(b, "40 03 0001 10"))
}

func BenchmarkReadPingreq(b *testing.B) {
	benchmarkRead(b, 4, unhex(b, "c0 00"))
}

// benchmarkRead reads the same packet over and over from one Reader.
func benchmarkRead(b *testing.B, version byte, wire []byte) {
	src := &repeatReader{b: wire}
	r, err := framing.NewReader(src, framing.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.ReadPacket(version); err != nil {
			b.Fatal(err)
		}
	}
}

// repeatReader returns b over and over.
type repeatReader struct {
	b   []byte
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.off:])
		n += c
		r.off = (r.off + c) % len(r.b)
	}
	return n, nil
}

func BenchmarkWritePublish311(b *testing.B) {
	w := framing.NewWriter(io.Discard)
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, ProtocolVersion: 4,
		PacketID: 7, TopicName: "sensors/kitchen/temp", Payload: []byte("21.5")}
	b.ReportAllocs()
	for b.Loop() {
		if err := w.WritePacket(&pk); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWritePuback5(b *testing.B) {
	w := framing.NewWriter(io.Discard)
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, ProtocolVersion: 5, PacketID: 7}
	b.ReportAllocs()
	for b.Loop() {
		if err := w.WritePacket(&pk); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWritePublish5(b *testing.B) {
	w := framing.NewWriter(io.Discard)
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, ProtocolVersion: 5,
		PacketID: 7, TopicName: "sensors/kitchen/temp", Payload: make([]byte, 64)}
	b.ReportAllocs()
	for b.Loop() {
		if err := w.WritePacket(&pk); err != nil {
			b.Fatal(err)
		}
	}
}

// Encode writes every PUBLISH exactly as mochi's PublishEncode does, with
// and without properties (each field of Properties set on its own), at
// every version, QoS and flag, with one- to three-octet remaining lengths.
func TestEncodePublishMatchesMochi(t *testing.T) {
	props := []packets.Properties{{}}
	pt := reflect.TypeOf(packets.Properties{})
	for i := range pt.NumField() {
		var p packets.Properties
		f := reflect.ValueOf(&p).Elem().Field(i)
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Uint8, reflect.Uint16, reflect.Uint32:
			f.SetUint(1)
		case reflect.String:
			f.SetString("r/t")
		case reflect.Slice:
			switch f.Type().Elem().Kind() {
			case reflect.Uint8:
				f.SetBytes([]byte{1, 2})
			case reflect.Int:
				f.Set(reflect.ValueOf([]int{3}))
			default:
				f.Set(reflect.ValueOf([]packets.UserProperty{{Key: "k", Val: "v"}}))
			}
		default:
			t.Fatalf("Properties.%s is a %v: teach this test to set it", pt.Field(i).Name, f.Kind())
		}
		props = append(props, p)
	}
	for _, v := range []byte{3, 4, 5} {
		for q := byte(0); q <= 2; q++ {
			for _, flags := range [][2]bool{{false, false}, {true, true}} {
				for _, size := range []int{0, 64, 200, 20000} {
					for pi, p := range props {
						if v != 5 && pi > 0 {
							break
						}
						pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: q, Dup: flags[0], Retain: flags[1]},
							ProtocolVersion: v, TopicName: "bench/gb01-7", Payload: bytes.Repeat([]byte{0xA5}, size), Properties: p,
							Mods: packets.Mods{AllowResponseInfo: true}}
						if q > 0 {
							pk.PacketID = 0x1234
						}
						want := pk
						var wb, gb bytes.Buffer
						if err := want.PublishEncode(&wb); err != nil {
							t.Fatal(err)
						}
						if err := framing.Encode(&gb, &pk); err != nil {
							t.Fatalf("Encode(v%d qos %d props %d) = %v", v, q, pi, err)
						}
						if !bytes.Equal(gb.Bytes(), wb.Bytes()) || pk.FixedHeader.Remaining != want.FixedHeader.Remaining {
							t.Fatalf("Encode(v%d qos %d dup/retain %v, %d octets, properties %+v) = %x (remaining %d); mochi %x (%d)",
								v, q, flags, size, p, gb.Bytes(), pk.FixedHeader.Remaining, wb.Bytes(), want.FixedHeader.Remaining)
						}
					}
				}
			}
		}
	}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, ProtocolVersion: 5, TopicName: "t"}
	if err := framing.Encode(new(bytes.Buffer), &pk); !errors.Is(err, packets.ErrProtocolViolationNoPacketID) {
		t.Errorf("Encode(QoS 1 PUBLISH without packet id) = %v; want ErrProtocolViolationNoPacketID", err)
	}
}

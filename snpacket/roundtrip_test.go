package snpacket_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"

	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// gen draws random field values for message types. Byte fields are nil when
// empty, as Decode returns them.
type gen struct{ r *rand.Rand }

func (g gen) u8() uint8   { return uint8(g.r.Uint32()) }
func (g gen) u16() uint16 { return uint16(g.r.Uint32()) }
func (g gen) bool() bool  { return g.r.IntN(2) == 1 }

// bytes returns min to max random octets; max above 253 exercises the
// three-octet Length form.
func (g gen) bytes(min, max int) []byte {
	n := min + g.r.IntN(max-min+1)
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = g.u8()
	}
	return b
}

func (g gen) qos() sn.QoS            { return sn.QoS(g.r.IntN(3)) }
func (g gen) rc() sn.ReturnCode      { return sn.ReturnCode(g.u8()) }
func (g gen) idType() sn.TopicIDType { return sn.TopicIDType(g.r.IntN(3)) }

// message returns a random valid message of type t.
func (g gen) message(t sn.MsgType) sn.Message {
	switch t {
	case sn.TypeAdvertise:
		return &sn.Advertise{GatewayID: g.u8(), Duration: g.u16()}
	case sn.TypeSearchGW:
		return &sn.SearchGW{Radius: g.u8()}
	case sn.TypeGWInfo:
		return &sn.GWInfo{GatewayID: g.u8(), GatewayAddr: g.bytes(0, 20)}
	case sn.TypeConnect:
		return &sn.Connect{Will: g.bool(), CleanSession: g.bool(), Duration: g.u16(), ClientID: g.bytes(1, 300)}
	case sn.TypeConnack:
		return &sn.Connack{ReturnCode: g.rc()}
	case sn.TypeWillTopicReq:
		return &sn.WillTopicReq{}
	case sn.TypeWillTopic:
		if g.r.IntN(4) == 0 {
			return &sn.WillTopic{}
		}
		return &sn.WillTopic{QoS: g.qos(), Retain: g.bool(), Topic: g.bytes(1, 300)}
	case sn.TypeWillMsgReq:
		return &sn.WillMsgReq{}
	case sn.TypeWillMsg:
		return &sn.WillMsg{Message: g.bytes(0, 300)}
	case sn.TypeRegister:
		return &sn.Register{TopicID: g.u16(), MsgID: g.u16(), TopicName: g.bytes(1, 300)}
	case sn.TypeRegack:
		return &sn.Regack{TopicID: g.u16(), MsgID: g.u16(), ReturnCode: g.rc()}
	case sn.TypePublish:
		m := &sn.Publish{Dup: g.bool(), QoS: g.qos(), Retain: g.bool(), TopicIDType: g.idType(),
			TopicID: g.u16(), MsgID: g.u16(), Data: g.bytes(0, 600)}
		if g.r.IntN(4) == 0 {
			m.QoS, m.TopicIDType = sn.QoSMinus1, sn.TopicIDType(1+g.r.IntN(2))
		}
		return m
	case sn.TypePuback:
		return &sn.Puback{TopicID: g.u16(), MsgID: g.u16(), ReturnCode: g.rc()}
	case sn.TypePubcomp:
		return &sn.Pubcomp{MsgID: g.u16()}
	case sn.TypePubrec:
		return &sn.Pubrec{MsgID: g.u16()}
	case sn.TypePubrel:
		return &sn.Pubrel{MsgID: g.u16()}
	case sn.TypeSubscribe:
		m := &sn.Subscribe{Dup: g.bool(), QoS: g.qos(), TopicIDType: g.idType(), MsgID: g.u16()}
		if m.TopicIDType == sn.TopicIDNormal {
			m.TopicName = g.bytes(1, 300)
		} else {
			m.TopicID = g.u16()
		}
		return m
	case sn.TypeSuback:
		return &sn.Suback{QoS: g.qos(), TopicID: g.u16(), MsgID: g.u16(), ReturnCode: g.rc()}
	case sn.TypeUnsubscribe:
		m := &sn.Unsubscribe{TopicIDType: g.idType(), MsgID: g.u16()}
		if m.TopicIDType == sn.TopicIDNormal {
			m.TopicName = g.bytes(1, 300)
		} else {
			m.TopicID = g.u16()
		}
		return m
	case sn.TypeUnsuback:
		return &sn.Unsuback{MsgID: g.u16()}
	case sn.TypePingReq:
		return &sn.PingReq{ClientID: g.bytes(0, 30)}
	case sn.TypePingResp:
		return &sn.PingResp{}
	case sn.TypeDisconnect:
		if g.bool() {
			return &sn.Disconnect{HasDuration: true, Duration: g.u16()}
		}
		return &sn.Disconnect{}
	case sn.TypeWillTopicUpd:
		if g.r.IntN(4) == 0 {
			return &sn.WillTopicUpd{}
		}
		return &sn.WillTopicUpd{QoS: g.qos(), Retain: g.bool(), Topic: g.bytes(1, 300)}
	case sn.TypeWillTopicResp:
		return &sn.WillTopicResp{ReturnCode: g.rc()}
	case sn.TypeWillMsgUpd:
		return &sn.WillMsgUpd{Message: g.bytes(0, 300)}
	case sn.TypeWillMsgResp:
		return &sn.WillMsgResp{ReturnCode: g.rc()}
	case sn.TypeEncapsulated:
		var inner sn.Message
		for inner == nil {
			if it := sn.MsgType(g.r.IntN(0x1E)); it.Known() {
				inner = g.message(it)
			}
		}
		return &sn.Encapsulated{Radius: uint8(g.r.IntN(4)), NodeID: g.bytes(0, sn.MaxNodeIDLen), Inner: inner}
	}
	return nil
}

// TestRoundTripRandom encodes random valid messages of every type, checks
// Len, and decodes them back to equal values with both decode paths.
func TestRoundTripRandom(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(1, 2))}
	var d sn.Decoder
	for v := 0; v < 256; v++ {
		mt := sn.MsgType(v)
		if !mt.Known() {
			continue
		}
		for range 300 {
			m := g.message(mt)
			enc, err := m.AppendBinary(nil)
			if err != nil {
				t.Fatalf("%v: AppendBinary(%#v) = %v", mt, m, err)
			}
			if len(enc) != m.Len() {
				t.Fatalf("%v: len(AppendBinary) = %d; Len() = %d", mt, len(enc), m.Len())
			}
			got, err := sn.Decode(enc)
			if err != nil || !reflect.DeepEqual(got, m) {
				t.Fatalf("%v: Decode(%x) = %#v, %v; want %#v", mt, enc, got, err, m)
			}
			got, err = d.Decode(enc)
			if err != nil || !reflect.DeepEqual(got, m) {
				t.Fatalf("%v: Decoder.Decode(%x) = %#v, %v; want %#v", mt, enc, got, err, m)
			}
		}
	}
}

// FuzzDecode feeds arbitrary datagrams to the decoder. Its oracle: a rejected
// datagram yields a sentinel *Error; an accepted one re-encodes to Len()
// octets that decode to an equal message, and the Decoder agrees with Decode.
func FuzzDecode(f *testing.F) {
	for _, tc := range goldenFrames() {
		f.Add(tc.frame)
	}
	var d sn.Decoder
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := sn.Decode(b)
		dm, derr := d.Decode(b)
		if (err == nil) != (derr == nil) || err == nil && !reflect.DeepEqual(m, dm) {
			t.Fatalf("Decode(%x) = %#v, %v; Decoder.Decode = %#v, %v", b, m, err, dm, derr)
		}
		if err != nil {
			if m != nil || !isSentinel(err) {
				t.Fatalf("Decode(%x) = %v, %v; want nil and a sentinel *Error", b, m, err)
			}
			return
		}
		enc, err := m.AppendBinary(nil)
		if err != nil {
			t.Fatalf("Decode(%x) = %#v, but AppendBinary fails: %v", b, m, err)
		}
		if len(enc) != m.Len() {
			t.Fatalf("Decode(%x): len(AppendBinary) = %d; Len() = %d", b, len(enc), m.Len())
		}
		if len(enc) > len(b) {
			t.Fatalf("Decode(%x): canonical form %x is longer than the input", b, enc)
		}
		m2, err := sn.Decode(enc)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("Decode(%x) = %#v; re-encoded %x decodes to %#v, %v", b, m, enc, m2, err)
		}
		if enc2, _ := m2.AppendBinary(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %x then %x", enc, enc2)
		}
		if c := m.Clone(); !reflect.DeepEqual(c, m) {
			t.Fatalf("Clone(%#v) = %#v", m, c)
		}
	})
}

// TestZeroAllocs enforces that the hot-path messages decode (with a
// Decoder) and encode (into a buffer with room) without allocating.
func TestZeroAllocs(t *testing.T) {
	frames := map[string][]byte{
		"PUBLISH":  unhex("09 0C 20 00 01 00 02 68 69"),
		"PUBACK":   unhex("07 0D 00 55 00 03 02"),
		"REGACK":   unhex("07 0B 00 01 00 01 00"),
		"PINGREQ":  unhex("06 16 64 65 76 31"),
		"PINGRESP": unhex("02 17"),
		// A forwarder's traffic is on the per-datagram path too.
		"ENCAPSULATED PUBLISH": unhex("05 FE 01 00 2A 09 0C 20 00 01 00 02 68 69"),
	}
	for name, frame := range frames {
		var d sn.Decoder
		var m sn.Message
		var err error
		if n := testing.AllocsPerRun(100, func() { m, err = d.Decode(frame) }); n != 0 || err != nil {
			t.Errorf("%s: Decoder.Decode allocates %v times per run (err %v); want 0", name, n, err)
		}
		buf := make([]byte, 0, 64)
		if n := testing.AllocsPerRun(100, func() { buf, err = m.AppendBinary(buf[:0]) }); n != 0 || err != nil {
			t.Errorf("%s: AppendBinary allocates %v times per run (err %v); want 0", name, n, err)
		}
		if !bytes.Equal(buf, frame) {
			t.Errorf("%s: AppendBinary = %x; want %x", name, buf, frame)
		}
	}
}

func TestDecoderReuse(t *testing.T) {
	// A Decoder reuses its values: the second PUBLISH overwrites the first,
	// which is what the documentation promises and why Clone exists.
	var d sn.Decoder
	m1, _ := d.Decode(unhex("09 0C 20 00 01 00 02 68 69"))
	kept := m1.Clone()
	m2, _ := d.Decode(unhex("08 0C 11 00 05 00 00 2A"))
	if m1 != m2 {
		t.Errorf("Decoder returned a new value for the same type; want the reused one")
	}
	if p := kept.(*sn.Publish); p.MsgID != 2 || string(p.Data) != "hi" {
		t.Errorf("clone changed by a later decode: %#v", p)
	}
	// A failed decode returns nil, not a half-filled value.
	if m, err := d.Decode(unhex("08 0C 23 00 01 00 02 01")); m != nil || !errors.Is(err, sn.ErrInvalidTopicIDType) {
		t.Errorf("Decode(bad) = %v, %v", m, err)
	}
}

var (
	sinkMsg sn.Message
	sinkBuf []byte
)

func BenchmarkDecodePublish(b *testing.B) {
	// A QoS 1 PUBLISH of a typical sensor reading, 16 octets.
	frame, err := (&sn.Publish{QoS: sn.QoS1, TopicID: 1, MsgID: 2, Data: []byte("21.5 degC")}).AppendBinary(nil)
	if err != nil {
		b.Fatal(err)
	}
	var d sn.Decoder
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		m, err := d.Decode(frame)
		if err != nil {
			b.Fatal(err)
		}
		sinkMsg = m
	}
}

func BenchmarkAppendPublish(b *testing.B) {
	m := &sn.Publish{QoS: sn.QoS1, TopicID: 1, MsgID: 2, Data: []byte("21.5 degC")}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	b.SetBytes(int64(m.Len()))
	for b.Loop() {
		var err error
		buf, err = m.AppendBinary(buf[:0])
		if err != nil {
			b.Fatal(err)
		}
	}
	sinkBuf = buf
}

func BenchmarkDecodeEncapsulatedPublish(b *testing.B) {
	frame := unhex("05 FE 01 00 2A 09 0C 20 00 01 00 02 68 69")
	var d sn.Decoder
	b.ReportAllocs()
	for b.Loop() {
		m, err := d.Decode(frame)
		if err != nil {
			b.Fatal(err)
		}
		sinkMsg = m
	}
}

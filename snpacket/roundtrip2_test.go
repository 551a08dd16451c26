package snpacket_test

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"testing"

	sn "github.com/gannet-mqtt/gannet/snpacket"
)

func (g gen) u32() uint32              { return g.r.Uint32() }
func (g gen) reason() sn.ReasonCode    { return sn.ReasonCode(g.u8()) }
func (g gen) topicType() sn.TopicType  { return []sn.TopicType{0, 1, 3}[g.r.IntN(3)] }
func (g gen) aliasType() sn.TopicType  { return sn.TopicType(g.r.IntN(2)) }
func (g gen) nonZero16() uint16        { return uint16(1 + g.r.IntN(0xFFFF)) }
func (g gen) optReason() sn.ReasonCode { return []sn.ReasonCode{0, g.reason()}[g.r.IntN(2)] }

// bytesOf returns n random octets, nil for 0.
func (g gen) bytesOf(n int) []byte { return g.bytes(n, n) }

// messageV2 returns a random valid 2.0 packet of type t.
func (g gen) messageV2(t sn.PacketType) sn.MessageV2 {
	switch t {
	case sn.PacketConnect:
		m := &sn.ConnectV2{CleanStart: g.bool(), AllowAddressChange: g.bool(), AllowServerValues: g.bool(),
			PacketID: g.u16(), KeepAlive: g.nonZero16(), ClientID: g.bytes(0, 300)}
		if g.bool() {
			m.MaxPacketSize = uint16(10 + g.r.IntN(0xFFFF-10))
		}
		if g.bool() {
			m.HasDefaultAwake, m.DefaultAwakeMessages = true, g.u8()
		}
		if g.bool() {
			m.HasSessionExpiry, m.SessionExpiry = true, g.u32()
		}
		if g.bool() {
			m.Will, m.WillQoS, m.WillRetain, m.WillTopicType = true, g.qos(), g.bool(), g.topicType()
			if m.WillTopicType == sn.TopicTypeName {
				m.WillTopic = g.bytes(1, 100)
			} else {
				m.WillTopicAlias = g.u16()
			}
			m.WillPayload = g.bytes(0, 100)
		}
		if g.bool() {
			m.Auth, m.AuthMethod, m.AuthData = true, g.bytes(0, 20), g.bytes(0, 40)
		}
		return m
	case sn.PacketConnack:
		m := &sn.ConnackV2{SessionPresent: g.bool(), PacketID: g.u16(), ReasonCode: g.reason(), AssignedClientID: g.bytes(0, 40)}
		if g.bool() {
			m.HasSessionExpiry, m.SessionExpiry = true, g.u32()
		}
		if g.bool() {
			m.HasServerKeepAlive, m.ServerKeepAlive = true, g.u16()
		}
		if g.bool() {
			m.Auth, m.AuthMethod, m.AuthData = true, g.bytes(0, 20), g.bytes(0, 40)
		}
		return m
	case sn.PacketAuth:
		return &sn.Auth{PacketID: g.u16(), ReasonCode: g.reason(), Method: g.bytes(0, 20), Data: g.bytes(0, 300)}
	case sn.PacketPublish:
		m := &sn.PublishV2{Dup: g.bool(), QoS: g.qos(), Retain: g.bool(), TopicType: g.topicType(), Data: g.bytes(0, 600)}
		if m.QoS > sn.QoS0 {
			m.PacketID = g.u16()
		}
		if m.TopicType == sn.TopicTypeName {
			m.TopicName = g.bytes(1, 300)
		} else {
			m.TopicAlias = g.u16()
		}
		return m
	case sn.PacketPubwos:
		m := &sn.Pubwos{Retain: g.bool(), TopicType: []sn.TopicType{1, 3}[g.r.IntN(2)], Data: g.bytes(0, 300)}
		if m.TopicType == sn.TopicTypeName {
			m.TopicName = g.bytes(1, 100)
		} else {
			m.TopicAlias = g.u16()
		}
		return m
	case sn.PacketPuback:
		return &sn.PubackV2{PacketID: g.u16(), ReasonCode: g.optReason()}
	case sn.PacketPubrec:
		return &sn.PubrecV2{PacketID: g.u16(), ReasonCode: g.optReason()}
	case sn.PacketPubrel:
		return &sn.PubrelV2{PacketID: g.u16(), ReasonCode: g.optReason()}
	case sn.PacketPubcomp:
		return &sn.PubcompV2{PacketID: g.u16(), ReasonCode: g.optReason()}
	case sn.PacketUnsuback:
		return &sn.UnsubackV2{PacketID: g.u16(), ReasonCode: g.optReason()}
	case sn.PacketSubscribe:
		m := &sn.SubscribeV2{NoLocal: g.bool(), QoS: g.qos(), RetainAsPublished: g.bool(),
			RetainHandling: sn.RetainHandling(g.r.IntN(3)), TopicType: g.topicType(), PacketID: g.u16()}
		if m.TopicType == sn.TopicTypeName {
			m.TopicFilter = g.bytes(1, 300)
		} else {
			m.TopicAlias = g.u16()
		}
		return m
	case sn.PacketUnsubscribe:
		m := &sn.UnsubscribeV2{TopicType: g.topicType(), PacketID: g.u16()}
		if m.TopicType == sn.TopicTypeName {
			m.TopicFilter = g.bytes(1, 300)
		} else {
			m.TopicAlias = g.u16()
		}
		return m
	case sn.PacketSuback:
		m := &sn.SubackV2{TopicType: g.aliasType(), PacketID: g.u16(), ReasonCode: g.reason()}
		if g.bool() {
			m.HasTopicAlias, m.TopicAlias = true, g.u16()
		}
		return m
	case sn.PacketRegack:
		m := &sn.RegackV2{TopicType: g.aliasType(), PacketID: g.u16(), ReasonCode: g.optReason()}
		if g.bool() {
			m.HasTopicAlias, m.TopicAlias = true, g.u16()
		}
		return m
	case sn.PacketRegister:
		m := &sn.RegisterV2{PacketID: g.u16(), TopicName: g.bytes(1, 300)}
		if g.bool() {
			m.HasTopicAlias, m.TopicAlias = true, g.u16()
		}
		return m
	case sn.PacketPingReq:
		return &sn.PingReqV2{PacketID: g.u16()}
	case sn.PacketPingResp:
		if g.bool() {
			return &sn.PingRespV2{PacketID: g.u16(), HasRemaining: true, Remaining: g.u8()}
		}
		return &sn.PingRespV2{PacketID: g.u16()}
	case sn.PacketDisconnect:
		if g.r.IntN(5) == 0 {
			return &sn.DisconnectV2{Short: true}
		}
		m := &sn.DisconnectV2{ReasonString: g.bytes(0, 40)}
		if g.bool() {
			m.HasPacketID, m.PacketID = true, g.u16()
		}
		if g.bool() {
			m.HasSessionExpiry, m.SessionExpiry = true, g.u32()
		}
		if g.bool() {
			m.HasReasonCode, m.ReasonCode = true, g.reason()
		}
		return m
	case sn.PacketSleepReq:
		return &sn.SleepReq{RetainTopicAliases: g.bool(), PacketID: g.u16(), SleepDuration: 1 + g.u32()%0xFFFFFFFE}
	case sn.PacketSleepResp:
		m := &sn.SleepResp{PacketID: g.u16(), ReasonCode: g.optReason()}
		if g.bool() {
			m.HasSleepDuration, m.SleepDuration = true, 1+g.u32()%0xFFFFFFFE
		}
		return m
	case sn.PacketWakeup:
		return &sn.Wakeup{}
	case sn.PacketAdvertise:
		return &sn.AdvertiseV2{GatewayID: g.u8(), Duration: g.u16()}
	case sn.PacketSearchGW:
		return &sn.SearchGWV2{Info: g.bytes(0, 10)}
	case sn.PacketGWInfo:
		return &sn.GWInfoV2{GatewayID: g.u8(), GatewayAddr: g.bytes(0, 20)}
	case sn.PacketForwarder, sn.PacketForwarderPaho:
		m := &sn.ForwarderEncapsulation{Paho: t == sn.PacketForwarderPaho, Inner: g.innerV2(true)}
		if m.Paho {
			m.Addr = g.bytes(0, 300) // past 253 the envelope needs the long Length form
		} else {
			m.Addr = g.bytes(0, 255)
		}
		return m
	case sn.PacketConnEncapsulation:
		return &sn.ConnEncapsulation{Paho: g.bool(), ClientID: g.bytes(1, 300), Inner: g.innerV2(false)}
	case sn.PacketProtection:
		m := &sn.ProtectionEncapsulation{TagLength: uint8(g.r.IntN(16)), Scheme: g.u8(),
			CryptoMaterial: g.bytesOf([]int{0, 2, 4, 12}[g.r.IntN(4)]), Counter: g.bytesOf([]int{0, 2, 4}[g.r.IntN(3)]),
			Protected: g.bytes(2, 100)}
		for i := range m.SenderID {
			m.SenderID[i] = g.u8()
		}
		for i := range m.Random {
			m.Random[i] = g.u8()
		}
		return m
	}
	return nil
}

// innerV2 returns a random packet an envelope may carry: for a forwarder
// anything but a forwarder, for a Connection Encapsulation no envelope.
func (g gen) innerV2(forwarder bool) sn.MessageV2 {
	for {
		pt := sn.PacketType(g.r.IntN(256))
		switch {
		case !pt.Known(), pt == sn.PacketForwarder, pt == sn.PacketForwarderPaho:
		case !forwarder && pt >= sn.PacketForwarder:
		default:
			return g.messageV2(pt)
		}
	}
}

// TestRoundTripRandomV2 encodes random valid packets of every 2.0 type,
// checks Len, and decodes them back to equal values with both decode paths.
func TestRoundTripRandomV2(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(3, 4))}
	var d sn.DecoderV2
	for v := 0; v < 256; v++ {
		pt := sn.PacketType(v)
		if !pt.Known() {
			continue
		}
		for range 300 {
			m := g.messageV2(pt)
			enc, err := m.AppendBinary(nil)
			if err != nil {
				t.Fatalf("%v: AppendBinary(%#v) = %v", pt, m, err)
			}
			if len(enc) != m.Len() {
				t.Fatalf("%v: len(AppendBinary) = %d; Len() = %d", pt, len(enc), m.Len())
			}
			got, err := sn.DecodeV2(enc)
			if err != nil || !reflect.DeepEqual(got, m) {
				t.Fatalf("%v: DecodeV2(%x) = %#v, %v; want %#v", pt, enc, got, err, m)
			}
			got, err = d.Decode(enc)
			if err != nil || !reflect.DeepEqual(got, m) {
				t.Fatalf("%v: DecoderV2.Decode(%x) = %#v, %v; want %#v", pt, enc, got, err, m)
			}
		}
	}
}

// FuzzDecodeV2 feeds arbitrary datagrams to the 2.0 decoder, seeded with
// every 2.0 golden frame (so every packet type). Its oracle: a rejected
// datagram yields a 2.0 sentinel *Error; an accepted one re-encodes to
// Len() octets that decode to an equal packet, stably, and the DecoderV2
// agrees with DecodeV2. The canonical form is at most three octets longer
// than the input: SUBACK always writes the Reason Code the input may omit,
// and inside an envelope of 255 octets that one octet moves the envelope to
// the three-octet Length form. DetectVersion must not panic on any input.
// Crashers and interesting inputs are kept in testdata/fuzz/FuzzDecodeV2.
func FuzzDecodeV2(f *testing.F) {
	for _, tc := range goldenFramesV2() {
		f.Add(tc.frame)
	}
	var d sn.DecoderV2
	f.Fuzz(func(t *testing.T, b []byte) {
		v := sn.DetectVersion(b)
		if v != sn.VersionUnknown && v != sn.Version12 && v != sn.Version20 {
			t.Fatalf("DetectVersion(%x) = %v", b, v)
		}
		m, err := sn.DecodeV2(b)
		dm, derr := d.Decode(b)
		if (err == nil) != (derr == nil) || err == nil && !reflect.DeepEqual(m, dm) {
			t.Fatalf("DecodeV2(%x) = %#v, %v; DecoderV2.Decode = %#v, %v", b, m, err, dm, derr)
		}
		if err != nil {
			var perr *sn.Error
			if m != nil || !isSentinel(err) || !asError(err, &perr) || perr.Version != sn.Version20 {
				t.Fatalf("DecodeV2(%x) = %v, %v; want nil and a 2.0 sentinel *Error", b, m, err)
			}
			return
		}
		enc, err := m.AppendBinary(nil)
		if err != nil {
			t.Fatalf("DecodeV2(%x) = %#v, but AppendBinary fails: %v", b, m, err)
		}
		if len(enc) != m.Len() {
			t.Fatalf("DecodeV2(%x): len(AppendBinary) = %d; Len() = %d", b, len(enc), m.Len())
		}
		if len(enc) > len(b)+3 {
			t.Fatalf("DecodeV2(%x): canonical form %x is longer than the input", b, enc)
		}
		m2, err := sn.DecodeV2(enc)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("DecodeV2(%x) = %#v; re-encoded %x decodes to %#v, %v", b, m, enc, m2, err)
		}
		if enc2, _ := m2.AppendBinary(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %x then %x", enc, enc2)
		}
		if c := m.Clone(); !reflect.DeepEqual(c, m) {
			t.Fatalf("Clone(%#v) = %#v", m, c)
		}
	})
}

// TestZeroAllocsV2 enforces that the hot-path 2.0 packets decode (with a
// DecoderV2) and encode (into a buffer with room) without allocating.
func TestZeroAllocsV2(t *testing.T) {
	frames := map[string][]byte{
		"PUBLISH alias":                    unhex("09 03 20 00 02 00 01 68 69"),
		"PUBLISH topic name":               unhex("0A 03 03 00 03 61 2F 62 68 69"),
		"PUBWOS":                           unhex("09 12 13 00 03 61 2F 62 78"),
		"PUBACK":                           unhex("04 04 00 02"),
		"PUBACK reason":                    unhex("05 04 00 02 F0"),
		"REGACK":                           unhex("07 11 04 00 05 00 01"),
		"PINGREQ":                          unhex("04 0C 00 07"),
		"PINGRESP":                         unhex("05 0D 00 07 FF"),
		"FORWARDER PUBLISH":                unhex("0E FC 02 AB CD 09 03 20 00 02 00 01 68 69"),
		"CONNECTION-ENCAPSULATION PINGREQ": unhex("0C FE 00 04 64 65 76 31 04 0C 00 07"),
		"Paho FORWARDER PUBLISH":           unhex("04 FD AB CD 09 03 20 00 02 00 01 68 69"),
		"Paho CONNECTION-ENCAPSULATION":    unhex("06 FE 64 65 76 31 04 0C 00 07"),
	}
	for name, frame := range frames {
		var d sn.DecoderV2
		var m sn.MessageV2
		var err error
		d.Decode(frame) // the first decode of a type may allocate its value
		if n := testing.AllocsPerRun(100, func() { m, err = d.Decode(frame) }); n != 0 || err != nil {
			t.Errorf("%s: DecoderV2.Decode allocates %v times per run (err %v); want 0", name, n, err)
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

func TestDecoderV2Reuse(t *testing.T) {
	var d sn.DecoderV2
	m1, _ := d.Decode(unhex("09 03 20 00 02 00 01 68 69"))
	kept := m1.Clone()
	m2, _ := d.Decode(unhex("08 03 D1 12 34 00 05 2A"))
	if m1 != m2 {
		t.Errorf("DecoderV2 returned a new value for the same type; want the reused one")
	}
	if p := kept.(*sn.PublishV2); p.PacketID != 2 || string(p.Data) != "hi" {
		t.Errorf("clone changed by a later decode: %#v", p)
	}
	if m, err := d.Decode(unhex("05 03 0B 00 01")); m != nil || err == nil {
		t.Errorf("Decode(bad) = %v, %v; want nil and an error", m, err)
	}
}

var sinkMsgV2 sn.MessageV2

// benchPublishV2 is a QoS 1 PUBLISH of a typical sensor reading by session
// alias, the 2.0 twin of BenchmarkDecodePublish's frame (15 octets).
var benchPublishV2 = &sn.PublishV2{QoS: sn.QoS1, PacketID: 2, TopicAlias: 1, Data: []byte("21.5 degC")}

func BenchmarkDecodePublishV2(b *testing.B) {
	frame, err := benchPublishV2.AppendBinary(nil)
	if err != nil {
		b.Fatal(err)
	}
	var d sn.DecoderV2
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		m, err := d.Decode(frame)
		if err != nil {
			b.Fatal(err)
		}
		sinkMsgV2 = m
	}
}

func BenchmarkAppendPublishV2(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	b.SetBytes(int64(benchPublishV2.Len()))
	for b.Loop() {
		var err error
		buf, err = benchPublishV2.AppendBinary(buf[:0])
		if err != nil {
			b.Fatal(err)
		}
	}
	sinkBuf = buf
}

// BenchmarkDecodePublishV2TopicName decodes a QoS 0 PUBLISH that carries
// its full topic name, which 2.0 allows instead of REGISTER.
func BenchmarkDecodePublishV2TopicName(b *testing.B) {
	frame, err := (&sn.PublishV2{TopicType: sn.TopicTypeName, TopicName: []byte("site/3/temp"), Data: []byte("21.5 degC")}).AppendBinary(nil)
	if err != nil {
		b.Fatal(err)
	}
	var d sn.DecoderV2
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		m, err := d.Decode(frame)
		if err != nil {
			b.Fatal(err)
		}
		sinkMsgV2 = m
	}
}

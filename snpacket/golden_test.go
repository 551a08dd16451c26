package snpacket_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// unhex turns "05 00 01" into bytes; it panics on a typo in a test table.
func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// longPublish is spec vector 15: a QoS 0 PUBLISH with 300 payload octets,
// 309 octets in all, so it needs the three-octet Length form.
func longPublish() (frame []byte, m *sn.Publish) {
	payload := bytes.Repeat([]byte{0xA5}, 300)
	frame = append(unhex("01 01 35 0C 00 00 01 00 00"), payload...)
	return frame, &sn.Publish{TopicID: 1, Data: payload}
}

type goldenCase struct {
	name  string
	frame []byte
	want  sn.Message
}

// goldenFrames holds the spec's MQTT-SN 1.2 test vectors (Part D, 1-16; the
// 2.0 vectors 17-20 belong to the 2.0 codec) and at least one frame per
// message type. Each must decode to want and re-encode to the same bytes.
func goldenFrames() []goldenCase {
	long, longMsg := longPublish()
	return []goldenCase{
		{"D1 ADVERTISE", unhex("05 00 01 03 84"), &sn.Advertise{GatewayID: 1, Duration: 900}},
		{"D2 CONNECT", unhex("0A 04 04 01 00 3C 64 65 76 31"), &sn.Connect{CleanSession: true, Duration: 60, ClientID: []byte("dev1")}},
		{"D2 CONNECT will", unhex("0A 04 0C 01 00 3C 64 65 76 31"), &sn.Connect{Will: true, CleanSession: true, Duration: 60, ClientID: []byte("dev1")}},
		{"D3 WILLTOPIC", unhex("09 07 30 77 69 6C 6C 2F 74"), &sn.WillTopic{QoS: sn.QoS1, Retain: true, Topic: []byte("will/t")}},
		{"D3 WILLTOPIC empty", unhex("02 07"), &sn.WillTopic{}},
		{"D4 CONNACK", unhex("03 05 00"), &sn.Connack{ReturnCode: sn.Accepted}},
		{"D5 REGISTER", unhex("09 0A 00 00 00 01 61 2F 62"), &sn.Register{MsgID: 1, TopicName: []byte("a/b")}},
		{"D6 REGACK", unhex("07 0B 00 01 00 01 00"), &sn.Regack{TopicID: 1, MsgID: 1}},
		{"D7 PUBLISH QoS 1", unhex("09 0C 20 00 01 00 02 68 69"), &sn.Publish{QoS: sn.QoS1, TopicID: 1, MsgID: 2, Data: []byte("hi")}},
		{"D8 PUBACK invalid topic", unhex("07 0D 00 55 00 03 02"), &sn.Puback{TopicID: 0x55, MsgID: 3, ReturnCode: sn.RejectedInvalidTopicID}},
		{"D9 PUBLISH QoS -1 short", unhex("08 0C 62 61 62 00 00 01"), &sn.Publish{QoS: sn.QoSMinus1, TopicIDType: sn.TopicIDShort, TopicID: 0x6162, Data: []byte{1}}},
		{"D10 PUBLISH retain predefined", unhex("08 0C 11 00 05 00 00 2A"), &sn.Publish{Retain: true, TopicIDType: sn.TopicIDPredefined, TopicID: 5, Data: []byte{0x2A}}},
		{"D11 SUBSCRIBE wildcard", unhex("08 12 20 00 03 73 2F 23"), &sn.Subscribe{QoS: sn.QoS1, MsgID: 3, TopicName: []byte("s/#")}},
		{"D12 SUBACK", unhex("08 13 20 00 00 00 03 00"), &sn.Suback{QoS: sn.QoS1, MsgID: 3}},
		{"D13 PINGREQ client id", unhex("06 16 64 65 76 31"), &sn.PingReq{ClientID: []byte("dev1")}},
		{"D14 DISCONNECT sleep", unhex("04 18 02 58"), &sn.Disconnect{HasDuration: true, Duration: 600}},
		{"D14 DISCONNECT", unhex("02 18"), &sn.Disconnect{}},
		{"D15 PUBLISH long form", long, longMsg},
		{"D16 ENCAPSULATED PINGRESP", unhex("05 FE 00 AB CD 02 17"), &sn.Encapsulated{NodeID: []byte{0xAB, 0xCD}, Inner: &sn.PingResp{}}},

		{"SEARCHGW", unhex("03 01 02"), &sn.SearchGW{Radius: 2}},
		{"GWINFO from gateway", unhex("03 02 07"), &sn.GWInfo{GatewayID: 7}},
		{"GWINFO from client", unhex("07 02 07 C0 A8 00 01"), &sn.GWInfo{GatewayID: 7, GatewayAddr: []byte{192, 168, 0, 1}}},
		{"CONNACK congestion", unhex("03 05 01"), &sn.Connack{ReturnCode: sn.RejectedCongestion}},
		{"WILLTOPICREQ", unhex("02 06"), &sn.WillTopicReq{}},
		{"WILLMSGREQ", unhex("02 08"), &sn.WillMsgReq{}},
		{"WILLMSG", unhex("05 09 62 79 65"), &sn.WillMsg{Message: []byte("bye")}},
		{"WILLMSG empty", unhex("02 09"), &sn.WillMsg{}},
		{"REGISTER from gateway", unhex("0B 0A 00 2A 12 34 61 2F 62 2F 63"), &sn.Register{TopicID: 42, MsgID: 0x1234, TopicName: []byte("a/b/c")}},
		{"PUBLISH QoS 2 dup", unhex("08 0C C0 00 07 12 34 00"), &sn.Publish{Dup: true, QoS: sn.QoS2, TopicID: 7, MsgID: 0x1234, Data: []byte{0}}},
		{"PUBLISH QoS 0 empty payload", unhex("07 0C 00 00 07 00 00"), &sn.Publish{TopicID: 7}},
		{"PUBACK accepted", unhex("07 0D 00 07 12 34 00"), &sn.Puback{TopicID: 7, MsgID: 0x1234}},
		{"PUBCOMP", unhex("04 0E 00 02"), &sn.Pubcomp{MsgID: 2}},
		{"PUBREC", unhex("04 0F 00 02"), &sn.Pubrec{MsgID: 2}},
		{"PUBREL", unhex("04 10 00 02"), &sn.Pubrel{MsgID: 2}},
		{"SUBSCRIBE predefined", unhex("07 12 41 00 04 00 05"), &sn.Subscribe{QoS: sn.QoS2, TopicIDType: sn.TopicIDPredefined, MsgID: 4, TopicID: 5}},
		{"SUBSCRIBE short dup", unhex("07 12 82 00 05 61 62"), &sn.Subscribe{Dup: true, TopicIDType: sn.TopicIDShort, MsgID: 5, TopicID: 0x6162}},
		{"SUBACK rejected", unhex("08 13 00 00 00 00 09 01"), &sn.Suback{MsgID: 9, ReturnCode: sn.RejectedCongestion}},
		{"UNSUBSCRIBE name", unhex("08 14 00 00 04 73 2F 23"), &sn.Unsubscribe{MsgID: 4, TopicName: []byte("s/#")}},
		{"UNSUBSCRIBE predefined", unhex("07 14 01 00 05 00 07"), &sn.Unsubscribe{TopicIDType: sn.TopicIDPredefined, MsgID: 5, TopicID: 7}},
		{"UNSUBSCRIBE short", unhex("07 14 02 00 06 61 62"), &sn.Unsubscribe{TopicIDType: sn.TopicIDShort, MsgID: 6, TopicID: 0x6162}},
		{"UNSUBACK", unhex("04 15 00 04"), &sn.Unsuback{MsgID: 4}},
		{"PINGREQ", unhex("02 16"), &sn.PingReq{}},
		{"PINGRESP", unhex("02 17"), &sn.PingResp{}},
		{"WILLTOPICUPD", unhex("06 1A 50 61 2F 62"), &sn.WillTopicUpd{QoS: sn.QoS2, Retain: true, Topic: []byte("a/b")}},
		{"WILLTOPICUPD empty", unhex("02 1A"), &sn.WillTopicUpd{}},
		{"WILLTOPICRESP", unhex("03 1B 00"), &sn.WillTopicResp{}},
		{"WILLMSGUPD", unhex("04 1C 6F 6B"), &sn.WillMsgUpd{Message: []byte("ok")}},
		{"WILLMSGRESP", unhex("03 1D 03"), &sn.WillMsgResp{ReturnCode: sn.RejectedNotSupported}},
		{"ENCAPSULATED PUBLISH radius 1", unhex("05 FE 01 00 2A 09 0C 20 00 01 00 02 68 69"),
			&sn.Encapsulated{Radius: 1, NodeID: []byte{0, 0x2A}, Inner: &sn.Publish{QoS: sn.QoS1, TopicID: 1, MsgID: 2, Data: []byte("hi")}}},
		{"ENCAPSULATED long inner", append(unhex("04 FE 00 01"), long...), &sn.Encapsulated{NodeID: []byte{1}, Inner: longMsg}},
	}
}

// decoders runs f with the package-level Decode and with a reused Decoder,
// so every table checks both paths.
func decoders(t *testing.T, f func(t *testing.T, decode func([]byte) (sn.Message, error))) {
	t.Run("Decode", func(t *testing.T) { f(t, sn.Decode) })
	var d sn.Decoder
	t.Run("Decoder", func(t *testing.T) { f(t, d.Decode) })
}

func TestGolden(t *testing.T) {
	decoders(t, func(t *testing.T, decode func([]byte) (sn.Message, error)) {
		for _, tc := range goldenFrames() {
			got, err := decode(tc.frame)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s: Decode(%x) = %#v, %v; want %#v", tc.name, tc.frame, got, err, tc.want)
				continue
			}
			if got.Type() != tc.want.Type() {
				t.Errorf("%s: Type() = %v; want %v", tc.name, got.Type(), tc.want.Type())
			}
			enc, err := got.AppendBinary(nil)
			if err != nil || !bytes.Equal(enc, tc.frame) {
				t.Errorf("%s: AppendBinary = %x, %v; want %x", tc.name, enc, err, tc.frame)
			}
		}
	})
}

// TestGoldenCoversEveryType fails when a message type has no golden frame.
func TestGoldenCoversEveryType(t *testing.T) {
	seen := map[sn.MsgType]bool{}
	for _, tc := range goldenFrames() {
		seen[tc.want.Type()] = true
	}
	for v := 0; v < 256; v++ {
		if mt := sn.MsgType(v); mt.Known() && !seen[mt] {
			t.Errorf("no golden frame for %v", mt)
		}
	}
}

// TestNonCanonical decodes frames that a peer may send but that we never
// produce: the three-octet Length on a short message, and flag bits the
// message does not use. They decode to the canonical value and re-encode in
// canonical form.
func TestNonCanonical(t *testing.T) {
	tests := []struct {
		name      string
		frame     string
		canonical string
	}{
		{"long-form DISCONNECT", "01 00 04 18", "02 18"},
		{"long-form PUBACK", "01 00 09 0D 00 55 00 03 02", "07 0D 00 55 00 03 02"},
		{"long-form PINGREQ with id", "01 00 08 16 64 65 76 31", "06 16 64 65 76 31"},
		{"long-form ENCAPSULATED envelope", "01 00 07 FE 00 AB CD 02 17", "05 FE 00 AB CD 02 17"},
		{"long-form inner message", "05 FE 00 AB CD 01 00 04 17", "05 FE 00 AB CD 02 17"},
		{"CONNECT unused flags", "0A 04 F4 01 00 3C 64 65 76 31", "0A 04 04 01 00 3C 64 65 76 31"},
		{"WILLTOPIC unused flags", "09 07 BF 77 69 6C 6C 2F 74", "09 07 30 77 69 6C 6C 2F 74"},
		{"SUBACK unused flags", "08 13 BF 00 00 00 03 00", "08 13 20 00 00 00 03 00"},
		{"UNSUBSCRIBE dup and QoS bits", "07 14 E1 00 05 00 07", "07 14 01 00 05 00 07"},
		{"ENCAPSULATED reserved Ctrl bits", "05 FE FD AB CD 02 17", "05 FE 01 AB CD 02 17"},
	}
	decoders(t, func(t *testing.T, decode func([]byte) (sn.Message, error)) {
		for _, tc := range tests {
			frame, canon := unhex(tc.frame), unhex(tc.canonical)
			got, err := decode(frame)
			if err != nil {
				t.Errorf("%s: Decode(%x) = %v, %v; want a message", tc.name, frame, got, err)
				continue
			}
			want, err := sn.Decode(canon)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("%s: Decode(%x) = %#v; want %#v (%v)", tc.name, frame, got, want, err)
			}
			if enc, err := got.AppendBinary(nil); err != nil || !bytes.Equal(enc, canon) {
				t.Errorf("%s: AppendBinary = %x, %v; want %x", tc.name, enc, err, canon)
			}
		}
	})
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		want  error
	}{
		{"empty datagram", "", sn.ErrShortBuffer},
		{"one octet", "02", sn.ErrShortBuffer},
		{"spec: long-form marker truncated", "01 05", sn.ErrShortBuffer},
		{"long-form marker, no type", "01 00 04", sn.ErrShortBuffer},
		{"spec: Length 5, datagram 4", "05 0D 00 01", sn.ErrLengthMismatch},
		{"Length shorter than datagram", "02 18 00", sn.ErrLengthMismatch},
		{"long-form Length mismatch", "01 00 05 18", sn.ErrLengthMismatch},
		{"Length 0", "00 18", sn.ErrInvalidLength},
		{"long-form Length 3", "01 00 03 18", sn.ErrInvalidLength},
		{"reserved type 0x03", "02 03", sn.ErrUnknownType},
		{"reserved type 0x11", "02 11", sn.ErrUnknownType},
		{"reserved type 0x19", "02 19", sn.ErrUnknownType},
		{"reserved type 0x1E", "02 1E", sn.ErrUnknownType},
		{"reserved type 0xFF", "02 FF", sn.ErrUnknownType},
		{"ADVERTISE short", "04 00 01 03", sn.ErrShortBuffer},
		{"ADVERTISE long", "06 00 01 03 84 00", sn.ErrTrailingBytes},
		{"SEARCHGW no radius", "02 01", sn.ErrShortBuffer},
		{"GWINFO no id", "02 02", sn.ErrShortBuffer},
		{"CONNECT no client id", "06 04 04 01 00 3C", sn.ErrEmptyField},
		{"CONNECT short", "05 04 04 01 00", sn.ErrShortBuffer},
		{"CONNECT ProtocolId 2", "0A 04 04 02 00 3C 64 65 76 31", sn.ErrUnsupportedProtocol},
		{"CONNACK long", "04 05 00 00", sn.ErrTrailingBytes},
		{"CONNACK short", "02 05", sn.ErrShortBuffer},
		{"WILLTOPICREQ long", "03 06 00", sn.ErrTrailingBytes},
		{"WILLTOPIC flags only", "03 07 30", sn.ErrEmptyField},
		{"WILLTOPIC QoS -1", "06 07 60 61 2F 62", sn.ErrInvalidQoS},
		{"WILLTOPICUPD QoS -1", "06 1A 70 61 2F 62", sn.ErrInvalidQoS},
		{"REGISTER no name", "06 0A 00 00 00 01", sn.ErrEmptyField},
		{"REGISTER short", "05 0A 00 00 00", sn.ErrShortBuffer},
		{"REGACK short", "06 0B 00 01 00 01", sn.ErrShortBuffer},
		{"PUBLISH short", "06 0C 20 00 01 00", sn.ErrShortBuffer},
		{"spec: PUBLISH QoS -1 normal topic id", "08 0C 60 00 01 00 00 01", sn.ErrInvalidTopicIDType},
		{"PUBLISH reserved topic id type", "08 0C 23 00 01 00 02 01", sn.ErrInvalidTopicIDType},
		{"PUBACK long", "08 0D 00 55 00 03 02 00", sn.ErrTrailingBytes},
		{"PUBREL short", "03 10 00", sn.ErrShortBuffer},
		{"PUBCOMP long", "05 0E 00 02 00", sn.ErrTrailingBytes},
		{"SUBSCRIBE short", "04 12 20 00", sn.ErrShortBuffer},
		{"SUBSCRIBE empty name", "05 12 20 00 03", sn.ErrEmptyField},
		{"SUBSCRIBE QoS -1", "08 12 60 00 03 73 2F 23", sn.ErrInvalidQoS},
		{"SUBSCRIBE reserved topic id type", "07 12 23 00 03 00 01", sn.ErrInvalidTopicIDType},
		{"SUBSCRIBE predefined id short", "06 12 21 00 03 00", sn.ErrShortBuffer},
		{"SUBSCRIBE predefined id long", "08 12 21 00 03 00 01 02", sn.ErrTrailingBytes},
		{"SUBACK QoS -1", "08 13 60 00 00 00 03 00", sn.ErrInvalidQoS},
		{"SUBACK short", "07 13 20 00 00 00 03", sn.ErrShortBuffer},
		{"UNSUBSCRIBE empty name", "05 14 00 00 03", sn.ErrEmptyField},
		{"UNSUBSCRIBE reserved topic id type", "07 14 03 00 03 00 01", sn.ErrInvalidTopicIDType},
		{"UNSUBACK long", "05 15 00 04 00", sn.ErrTrailingBytes},
		{"PINGRESP long", "03 17 00", sn.ErrTrailingBytes},
		{"DISCONNECT half duration", "03 18 02", sn.ErrShortBuffer},
		{"DISCONNECT long", "05 18 02 58 00", sn.ErrTrailingBytes},
		{"WILLTOPICRESP long", "04 1B 00 00", sn.ErrTrailingBytes},
		{"WILLMSGRESP short", "02 1D", sn.ErrShortBuffer},
		{"ENCAPSULATED envelope too short", "02 FE 02 17", sn.ErrInvalidLength},
		{"ENCAPSULATED envelope past datagram", "09 FE 00 AB", sn.ErrLengthMismatch},
		{"ENCAPSULATED no inner message", "05 FE 00 AB CD", sn.ErrShortBuffer},
		{"ENCAPSULATED nested", "03 FE 00 05 FE 00 AB CD 02 17", sn.ErrNestedEncapsulation},
		{"ENCAPSULATED inner Length mismatch", "05 FE 00 AB CD 03 17", sn.ErrLengthMismatch},
		{"ENCAPSULATED inner malformed", "03 FE 00 08 0C 60 00 01 00 00 01", sn.ErrInvalidTopicIDType},
		{"ENCAPSULATED inner reserved type", "03 FE 00 02 03", sn.ErrUnknownType},
		{"ENCAPSULATED node id too long", "01 01 02 FE 00" + strings.Repeat(" 00", 253) + " 02 17", sn.ErrTooLong},
	}
	decoders(t, func(t *testing.T, decode func([]byte) (sn.Message, error)) {
		for _, tc := range tests {
			frame := unhex(tc.frame)
			m, err := decode(frame)
			if !errors.Is(err, tc.want) || m != nil {
				t.Errorf("%s: Decode(%x) = %v, %v; want nil, %v", tc.name, frame, m, err, tc.want)
				continue
			}
			var perr *sn.Error
			if !errors.As(err, &perr) || perr.Op != "decode" {
				t.Errorf("%s: Decode(%x) error %v is not a decode *snpacket.Error", tc.name, frame, err)
			}
		}
	})
}

// TestTruncation decodes every proper prefix of every golden frame; each
// must fail cleanly with a sentinel error.
func TestTruncation(t *testing.T) {
	decoders(t, func(t *testing.T, decode func([]byte) (sn.Message, error)) {
		for _, tc := range goldenFrames() {
			for n := range len(tc.frame) {
				prefix := tc.frame[:n:n] // cap n: reading past it would panic
				if m, err := decode(prefix); err == nil || !isSentinel(err) {
					t.Errorf("%s: Decode(%x) = %v, %v; want a sentinel error", tc.name, prefix, m, err)
				}
			}
		}
	})
}

var sentinels = []error{
	sn.ErrShortBuffer, sn.ErrLengthMismatch, sn.ErrInvalidLength, sn.ErrTrailingBytes,
	sn.ErrUnknownType, sn.ErrInvalidQoS, sn.ErrInvalidTopicIDType, sn.ErrUnsupportedProtocol,
	sn.ErrEmptyField, sn.ErrNestedEncapsulation, sn.ErrTooLong, sn.ErrInvalidField, sn.ErrReservedBits,
}

func isSentinel(err error) bool {
	var perr *sn.Error
	if !errors.As(err, &perr) {
		return false
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func TestLen(t *testing.T) {
	for _, tc := range goldenFrames() {
		enc, err := tc.want.AppendBinary(nil)
		if err != nil || len(enc) != tc.want.Len() {
			t.Errorf("%s: len(AppendBinary(nil)) = %d (%v); Len() = %d", tc.name, len(enc), err, tc.want.Len())
		}
	}
}

// TestAppendKeepsPrefix checks that AppendBinary appends after what the
// buffer already holds.
func TestAppendKeepsPrefix(t *testing.T) {
	for _, tc := range goldenFrames() {
		enc, err := tc.want.AppendBinary([]byte("xyz"))
		if err != nil || !bytes.Equal(enc, append([]byte("xyz"), tc.frame...)) {
			t.Errorf("%s: AppendBinary(xyz) = %x, %v; want xyz+%x", tc.name, enc, err, tc.frame)
		}
	}
}

// TestClone checks that a clone survives the reuse of the datagram buffer.
func TestClone(t *testing.T) {
	for _, tc := range goldenFrames() {
		frame := append([]byte(nil), tc.frame...)
		m, err := sn.Decode(frame)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		c := m.Clone()
		for i := range frame {
			frame[i] = 0xEE
		}
		if !reflect.DeepEqual(c, tc.want) {
			t.Errorf("%s: Clone after overwriting the datagram = %#v; want %#v", tc.name, c, tc.want)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		m    sn.Message
		want error
	}{
		{"CONNECT without client id", &sn.Connect{}, sn.ErrEmptyField},
		{"REGISTER without name", &sn.Register{MsgID: 1}, sn.ErrEmptyField},
		{"PUBLISH QoS 3", &sn.Publish{QoS: 3}, sn.ErrInvalidQoS},
		{"PUBLISH QoS -2", &sn.Publish{QoS: -2}, sn.ErrInvalidQoS},
		{"PUBLISH QoS -1 normal id", &sn.Publish{QoS: sn.QoSMinus1, TopicID: 1}, sn.ErrInvalidTopicIDType},
		{"PUBLISH reserved id type", &sn.Publish{TopicIDType: 3}, sn.ErrInvalidTopicIDType},
		{"PUBLISH too long", &sn.Publish{Data: make([]byte, sn.MaxLen)}, sn.ErrTooLong},
		{"SUBSCRIBE QoS -1", &sn.Subscribe{QoS: sn.QoSMinus1, TopicName: []byte("a")}, sn.ErrInvalidQoS},
		{"SUBSCRIBE without name", &sn.Subscribe{}, sn.ErrEmptyField},
		{"SUBSCRIBE reserved id type", &sn.Subscribe{TopicIDType: 3}, sn.ErrInvalidTopicIDType},
		{"UNSUBSCRIBE without name", &sn.Unsubscribe{}, sn.ErrEmptyField},
		{"SUBACK QoS -1", &sn.Suback{QoS: sn.QoSMinus1}, sn.ErrInvalidQoS},
		{"WILLTOPIC QoS -1", &sn.WillTopic{QoS: sn.QoSMinus1, Topic: []byte("a")}, sn.ErrInvalidQoS},
		{"WILLTOPICUPD QoS 3", &sn.WillTopicUpd{QoS: 3, Topic: []byte("a")}, sn.ErrInvalidQoS},
		{"ENCAPSULATED no inner", &sn.Encapsulated{}, sn.ErrEmptyField},
		{"ENCAPSULATED nested", &sn.Encapsulated{Inner: &sn.Encapsulated{Inner: &sn.PingResp{}}}, sn.ErrNestedEncapsulation},
		{"ENCAPSULATED radius 4", &sn.Encapsulated{Radius: 4, Inner: &sn.PingResp{}}, sn.ErrInvalidField},
		{"ENCAPSULATED node id too long", &sn.Encapsulated{NodeID: make([]byte, sn.MaxNodeIDLen+1), Inner: &sn.PingResp{}}, sn.ErrTooLong},
		{"ENCAPSULATED bad inner", &sn.Encapsulated{Inner: &sn.Publish{QoS: 3}}, sn.ErrInvalidQoS},
	}
	for _, tc := range tests {
		out, err := tc.m.AppendBinary([]byte("keep"))
		var perr *sn.Error
		if !errors.Is(err, tc.want) || !errors.As(err, &perr) || perr.Op != "encode" {
			t.Errorf("%s: AppendBinary err = %v; want an encode error wrapping %v", tc.name, err, tc.want)
		}
		if string(out) != "keep" {
			t.Errorf("%s: AppendBinary on error returned %q; want the input unchanged", tc.name, out)
		}
	}
}

// TestLengthForms checks where encoding switches from the one-octet to the
// three-octet Length form: a whole message of 255 octets still fits in one.
func TestLengthForms(t *testing.T) {
	for _, tc := range []struct {
		payload int
		total   int
		prefix  string
	}{
		{248, 255, "FF 0C"},           // 2 + 5 + 248 = 255
		{249, 258, "01 01 02 0C"},     // 256 does not fit: 4 + 5 + 249
		{65526, 65535, "01 FF FF 0C"}, // the largest message
	} {
		m := &sn.Publish{TopicID: 1, Data: make([]byte, tc.payload)}
		enc, err := m.AppendBinary(nil)
		if err != nil || len(enc) != tc.total || m.Len() != tc.total || !bytes.HasPrefix(enc, unhex(tc.prefix)) {
			t.Errorf("payload %d: AppendBinary = %x... (%d octets), %v; Len %d; want %d octets starting %s",
				tc.payload, enc[:min(len(enc), 4)], len(enc), err, m.Len(), tc.total, tc.prefix)
			continue
		}
		if got, err := sn.Decode(enc); err != nil || !reflect.DeepEqual(got, m) {
			t.Errorf("payload %d: round trip = %v", tc.payload, err)
		}
	}
}

func TestErrorText(t *testing.T) {
	for _, tc := range []struct{ frame, want string }{
		{"08 0C 60 00 01 00 00 01", "snpacket: decode PUBLISH: field Flags: invalid topic id type"},
		{"05 0D 00 01", "snpacket: decode: field Length: length field does not match datagram size"},
		{"02 1E", "snpacket: decode MsgType(0x1e): field MsgType: unknown message type"},
		{"08 0D 00 55 00 03 02 00", "snpacket: decode PUBACK: trailing bytes after message"},
		{"03 FE 00 08 0C 60 00 01 00 00 01", "snpacket: decode ENCAPSULATED: field Inner PUBLISH Flags: invalid topic id type"},
	} {
		if _, err := sn.Decode(unhex(tc.frame)); err == nil || err.Error() != tc.want {
			t.Errorf("Decode(%s) error = %q; want %q", tc.frame, err, tc.want)
		}
	}
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{sn.TypePublish.String(), "PUBLISH"},
		{sn.TypeEncapsulated.String(), "ENCAPSULATED"},
		{sn.MsgType(0x03).String(), "MsgType(0x3)"},
		{sn.QoSMinus1.String(), "-1"},
		{sn.TopicIDShort.String(), "short"},
		{sn.TopicIDType(3).String(), "reserved(3)"},
		{sn.RejectedInvalidTopicID.String(), "rejected: invalid topic id"},
		{sn.ReturnCode(0x7F).String(), "reserved(0x7f)"},
	} {
		if tc.got != tc.want {
			t.Errorf("String() = %q; want %q", tc.got, tc.want)
		}
	}
}

func TestShortTopic(t *testing.T) {
	id, ok := sn.ShortTopicID("ab")
	if !ok || id != 0x6162 || sn.ShortTopicName(id) != [2]byte{'a', 'b'} {
		t.Errorf("ShortTopicID(ab) = %#x, %v; ShortTopicName = %q", id, ok, sn.ShortTopicName(id))
	}
	for _, bad := range []string{"", "a", "abc"} {
		if _, ok := sn.ShortTopicID(bad); ok {
			t.Errorf("ShortTopicID(%q) ok; want not ok", bad)
		}
	}
}

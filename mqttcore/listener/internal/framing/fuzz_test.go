package framing_test

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"runtime"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/gannet-mqtt/gannet/mqttcore/listener/internal/framing"
)

// fuzzSeeds are one valid packet per type and version plus edge cases;
// the malformed cases of TestReadPacketRefuses are added too.
var fuzzSeeds = []struct {
	version byte
	wire    string
}{
	{0, goldenConnect311},
	{0, goldenConnect5},
	{0, "10 2b 0004 4d515454 05 ae 003c 00 0003 616263 0b 18 0000000a 08 0003 722f74 0003 772f74 0002 6279 0004 75736572"}, // will, will properties, username
	{0, "10 11 0006 4d5149736470 03 02 003c 0003 616263"},                                                                  // MQTT 3.1
	{3, goldenPublish311},
	{4, goldenPublish311},
	{5, goldenPublish5},
	{5, "3d 22 0003 612f62 0001 18 02 00000e10 03 0004 74657874 09 0002 6364 26 0001 6b 0001 76 6869"}, // dup qos2 retain, props
	{4, goldenSubscr311},
	{5, goldenSubscr5},
	{4, "20 02 01 00"},
	{5, "20 0d 00 00 0a 21 000a 24 01 27 00001000"},
	{4, "40 02 0001"},
	{5, "40 03 0001 10"},
	{5, "50 08 0001 80 04 1f 0001 78"},
	{5, "62 02 0001"},
	{5, "70 04 0001 92 00"},
	{4, "90 04 000a 00 80"},
	{5, "90 05 000a 00 01 8f"},
	{4, "a2 05 000a 0001 23"},
	{5, "a2 06 000a 00 0001 23"},
	{4, "b0 02 000a"},
	{5, "b0 05 000a 00 00 11"},
	{4, "c0 00"},
	{5, "d0 00"},
	{4, "e0 00"},
	{5, "e0 01 04"},
	{5, "e0 07 00 05 11 0000003c"},
	{5, "f0 0a 18 08 15 0005 7363 72616d"},
	{5, "f0 00"},
	{5, "f0 01 18"},
	{0, goldenConnect5 + goldenPublish5 + goldenSubscr5 + "c0 00 e0 01 04"},
	{0, goldenConnect311 + goldenPublish311 + goldenSubscr311 + "62 02 0001 e0 00"},
}

// normalize clears what a re-encoding may legitimately change: the
// Remaining Length (mochi's decoder ignores trailing bytes in some packets)
// and the difference between an empty and an absent byte field.
func normalize(pk *packets.Packet) {
	pk.FixedHeader.Remaining = 0
	pk.Mods = packets.Mods{}
	for _, b := range []*[]byte{&pk.Payload, &pk.ReasonCodes, &pk.Connect.Username, &pk.Connect.Password, &pk.Connect.WillPayload,
		&pk.Connect.ProtocolName, &pk.Properties.CorrelationData, &pk.Properties.AuthenticationData,
		&pk.Connect.WillProperties.CorrelationData, &pk.Connect.WillProperties.AuthenticationData} {
		if len(*b) == 0 {
			*b = nil
		}
	}
	for _, p := range []*packets.Properties{&pk.Properties, &pk.Connect.WillProperties} {
		if len(p.User) == 0 {
			p.User = nil
		}
		if len(p.SubscriptionIdentifier) == 0 {
			p.SubscriptionIdentifier = nil
		}
	}
	if len(pk.Filters) == 0 {
		pk.Filters = nil
	}
}

// declaredSize returns the packet size the fixed header of b declares, and
// false if b has no complete, valid (shortest-form) fixed header.
func declaredSize(b []byte) (int, bool) {
	v, shift := 0, 0
	for i := 1; i < len(b) && i <= 4; i++ {
		v |= int(b[i]&0x7f) << shift
		if b[i]&0x80 == 0 {
			return 1 + i + v, i == 1 || b[i] != 0 // a longer than necessary encoding is malformed
		}
		shift += 7
	}
	return 0, false
}

func FuzzReadPacket(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s.version, unhex(f, s.wire))
	}
	for _, s := range refuseCases {
		f.Add(s.version, unhex(f, s.wire))
	}
	const max = framing.DefaultMaxPacketSize
	f.Fuzz(func(t *testing.T, version byte, data []byte) {
		switch version {
		case 0, 3, 4, 5:
		default:
			version = [3]byte{0, 4, 5}[version%3]
		}
		r, err := framing.NewReader(bytes.NewReader(data), framing.Limits{MaxPacketSize: max})
		if err != nil {
			t.Fatal(err)
		}
		// Read up to 8 packets from the stream, as a connection would:
		// a successful CONNECT sets the version for the next ones.
		for i := range 8 {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			pk, err := r.ReadPacket(version)
			runtime.ReadMemStats(&after)

			// Allocation is bounded by what was sent, never by what was declared.
			if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(128<<10+256*len(data)); got > limit {
				t.Fatalf("ReadPacket(%x) allocated %d bytes; want at most %d", data, got, limit)
			}
			if size, ok := declaredSize(data); i == 0 && ok && size > max && !errors.Is(err, framing.ErrPacketTooLarge) {
				t.Fatalf("ReadPacket(%x) of %d declared bytes = %v; want ErrPacketTooLarge", data, size, err)
			}
			if errors.Is(err, framing.ErrDecoderPanic) {
				t.Fatalf("ReadPacket(%x): mochi's decoder panicked: %v", data, err)
			}
			if err != nil {
				if _, ok := framing.Reason(err); !ok && err != io.EOF {
					t.Fatalf("ReadPacket(%x) = %v; want io.EOF or an error with a reason code", data, err)
				}
				framing.CloseResponse(err, version)
				return
			}
			roundTrip(t, data, version, pk)
			if version == 0 {
				version = pk.ProtocolVersion
			}
		}
	})
}

// roundTrip checks that pk, read from data with version, re-encodes to
// something that decodes to the same packet.
func roundTrip(t *testing.T, data []byte, version byte, pk packets.Packet) {
	t.Helper()
	enc := pk
	enc.Mods.AllowResponseInfo = true
	var buf bytes.Buffer
	if err := framing.Encode(&buf, &enc); err != nil {
		t.Fatalf("Encode(packet read from %x) = %v", data, err)
	}
	r, _ := framing.NewReader(bytes.NewReader(buf.Bytes()), framing.Limits{})
	again, err := r.ReadPacket(version)
	if err != nil {
		t.Fatalf("ReadPacket(Encode(packet read from %x) = %x) = %v", data, buf.Bytes(), err)
	}
	normalize(&pk)
	normalize(&again)
	if !reflect.DeepEqual(pk, again) {
		t.Fatalf("round trip of a packet from %x via %x:\n got %+v\nwant %+v", data, buf.Bytes(), again, pk)
	}
}

// TestFuzzSeedsAreValid keeps the valid seeds valid, so the fuzz target's
// round trip starts from every packet type.
func TestFuzzSeedsAreValid(t *testing.T) {
	for _, s := range fuzzSeeds {
		wire := unhex(t, s.wire)
		r, _ := framing.NewReader(bytes.NewReader(wire), framing.Limits{})
		for version, n := s.version, 0; ; n++ {
			pk, err := r.ReadPacket(version)
			if err == io.EOF && n > 0 {
				break
			}
			if err != nil {
				t.Errorf("ReadPacket(%x) with version %d, packet %d = %v; want a packet", wire, version, n, err)
				break
			}
			if version == 0 {
				version = pk.ProtocolVersion
			}
		}
	}
}

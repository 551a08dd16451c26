package boltstore

import (
	"reflect"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

func sampleRecords() (*mqttcore.SessionRecord, *mqttcore.Message, *mqttcore.QueuedRecord) {
	p := &mqttcore.Properties{PayloadFormat: 1, MessageExpiry: time.Minute, ContentType: "ct", ResponseTopic: "rt",
		CorrelationData: []byte{9}, User: []mqttcore.UserProperty{{Key: "a", Value: "b"}}}
	r := &mqttcore.SessionRecord{ClientID: "c", Username: "u", State: mqttcore.StateLost, Expiry: time.Hour,
		SleepAt: time.Unix(5, 6), WillAt: time.Unix(7, 8), ExpireAt: time.Unix(9, 10),
		Will:          &mqttcore.Will{Topic: "w", Payload: []byte("p"), QoS: 2, Retain: true, Props: p, Delay: time.Second},
		Subscriptions: []mqttcore.SubscriptionRecord{{Filter: "a/+", Options: mqttcore.SubOptions{QoS: 1, NoLocal: true, RetainHandling: 1, SubscriptionID: 7}}},
		InboundQoS2:   []uint16{3, 4000}}
	m := &mqttcore.Message{Topic: "t", Payload: []byte("x"), QoS: 1, Retain: true, Origin: "o", Props: p}
	q := &mqttcore.QueuedRecord{Message: m, QoS: 2, PacketID: 77, Released: true, Inflight: true, Retain: true}
	return r, m, q
}

// TestRecordGolden pins the encoding of version 1 records: a change to
// these bytes is a format change and needs a new FormatVersion.
func TestRecordGolden(t *testing.T) {
	_, _, q := sampleRecords()
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"entry", appendEntry(nil, q), "\x01\x0f\x02\x00\x4d"},
		{"message", appendMessage(nil, &mqttcore.Message{Topic: "t", Payload: []byte("x"), QoS: 1, Origin: "o"}, time.Unix(0, 1)),
			"\x01\x01\x02\x01t\x01o\x01x"},
		{"session", appendSession(nil, &mqttcore.SessionRecord{ClientID: "c", State: mqttcore.StateAsleep,
			Subscriptions: []mqttcore.SubscriptionRecord{{Filter: "f", Options: mqttcore.SubOptions{QoS: 1}}}}),
			"\x01\x00\x01\x01c\x00\x00\x00\x00\x01\x01f\x01\x00"},
		// The optional user and subscription identifiers: flags 0x08 and
		// 0x10, the user after the client id, an identifier after each
		// options byte. Records without them keep the encoding above.
		{"session with user and subscription id", appendSession(nil, &mqttcore.SessionRecord{ClientID: "c", Username: "u", State: mqttcore.StateAsleep,
			Subscriptions: []mqttcore.SubscriptionRecord{{Filter: "f", Options: mqttcore.SubOptions{QoS: 1, SubscriptionID: 300}}}}),
			"\x01\x18\x01\x01c\x01u\x00\x00\x00\x00\x01\x01f\x01\xac\x02\x00"},
	} {
		if string(tc.got) != tc.want {
			t.Errorf("%s encodes as %q; want %q", tc.name, tc.got, tc.want)
		}
	}
}

// TestRecordTruncation: every proper prefix of a valid record fails to
// decode, cleanly.
func TestRecordTruncation(t *testing.T) {
	r, m, q := sampleRecords()
	recs := map[string][]byte{
		"session": appendSession(nil, r),
		"message": appendMessage(nil, m, time.Unix(100, 0)),
		"entry":   appendEntry(nil, q),
	}
	for name, b := range recs {
		if err := decodeAny(name, b); err != nil {
			t.Fatalf("decode %s %x = %v", name, b, err)
		}
		for i := range len(b) {
			if err := decodeAny(name, b[:i]); err == nil {
				t.Errorf("decode %s %x (%d of %d bytes) = nil; want an error", name, b[:i], i, len(b))
			}
		}
	}
}

func decodeAny(kind string, b []byte) error {
	switch kind {
	case "session":
		return decodeSession(b, &mqttcore.SessionRecord{})
	case "message":
		_, _, err := decodeMessage(b)
		return err
	default:
		_, err := decodeEntry(b, &mqttcore.QueuedRecord{})
		return err
	}
}

// FuzzDecodeRecord decodes arbitrary bytes as each record kind; what
// decodes must encode and decode again to the same value.
func FuzzDecodeRecord(f *testing.F) {
	r, m, q := sampleRecords()
	f.Add(uint8(0), appendSession(nil, r))
	f.Add(uint8(0), appendSession(nil, &mqttcore.SessionRecord{ClientID: "x"}))
	f.Add(uint8(1), appendMessage(nil, m, time.Unix(100, 0)))
	f.Add(uint8(1), appendMessage(nil, &mqttcore.Message{Topic: "t"}, time.Time{}))
	f.Add(uint8(2), appendEntry(nil, q))
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		switch kind % 3 {
		case 0:
			var r1, r2 mqttcore.SessionRecord
			if decodeSession(b, &r1) != nil {
				return
			}
			enc := appendSession(nil, &r1)
			if err := decodeSession(enc, &r2); err != nil || !reflect.DeepEqual(r1, r2) {
				t.Fatalf("session %x: decode, encode %x, decode = %+v, %v; want %+v", b, enc, r2, err, r1)
			}
		case 1:
			m1, e1, err := decodeMessage(b)
			if err != nil {
				return
			}
			enc := appendMessage(nil, m1, e1)
			m2, e2, err := decodeMessage(enc)
			if err != nil || !reflect.DeepEqual(m1, m2) || !e1.Equal(e2) {
				t.Fatalf("message %x: decode, encode %x, decode = %+v %v, %v; want %+v %v", b, enc, m2, e2, err, m1, e1)
			}
		case 2:
			var q1, q2 mqttcore.QueuedRecord
			has1, err := decodeEntry(b, &q1)
			if err != nil {
				return
			}
			if has1 {
				q1.Message = &mqttcore.Message{}
			}
			enc := appendEntry(nil, &q1)
			has2, err := decodeEntry(enc, &q2)
			q2.Message = q1.Message
			if err != nil || has1 != has2 || !reflect.DeepEqual(q1, q2) {
				t.Fatalf("entry %x: decode, encode %x, decode = %+v, %v; want %+v", b, enc, q2, err, q1)
			}
		}
	})
}

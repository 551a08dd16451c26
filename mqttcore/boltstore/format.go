package boltstore

import (
	"encoding/binary"
	"errors"
	"math"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// The on-disk format, version 2. Every bucket the core uses is named
// "core.*"; other users of the file must not create or touch those.
//
//	core.meta      "magic" -> "gannet core journal"; "version" -> uint32 BE;
//	               "seq" -> the highest message seq ever written, uint64 BE
//	               (so seqs are not reused after their messages went);
//	               "logid" -> uint64 BE, the id the write-ahead log's
//	               segments carry (wal.go); "log" -> uint64 BE, the index of
//	               the last log record the file holds
//	core.sessions  session id (uint64 BE) -> session header record
//	core.entries   session id, seq (2 x uint64 BE) -> entry record
//	core.messages  seq (uint64 BE) -> message record, written once and
//	               shared by every entry with that seq (reference counts
//	               are rebuilt in memory when the file is opened)
//	core.frontend  session id (uint64 BE) -> the front-end's opaque bytes
//	core.retained  topic -> message record
//
// Version 2 added the write-ahead log and the "logid" and "log" keys; the
// buckets and records are those of version 1, which is read and upgraded
// in place when opened (a version 1 file has no log). The version was
// raised so that a gannet that knows no log refuses a file whose latest
// changes may be in one.
//
// Records start with a version byte (1). Integers are unsigned varints
// (uvarint) or zigzag varints for signed values; times are unix
// nanoseconds, 0 for none; strings and byte slices are a uvarint length
// followed by the bytes.
const (
	// FormatVersion is the version of the on-disk format this package
	// writes. A file with a higher version is refused with ErrNewerFormat.
	FormatVersion = 2

	recordVersion = 1
	magic         = "gannet core journal"
)

// Bucket names reserved for the core.
var (
	bucketMeta     = []byte("core.meta")
	bucketSessions = []byte("core.sessions")
	bucketEntries  = []byte("core.entries")
	bucketMessages = []byte("core.messages")
	bucketFrontEnd = []byte("core.frontend")
	bucketRetained = []byte("core.retained")

	coreBuckets = [][]byte{bucketMeta, bucketSessions, bucketEntries, bucketMessages, bucketFrontEnd, bucketRetained}

	keyMagic   = []byte("magic")
	keyVersion = []byte("version")
	keySeq     = []byte("seq")
	keyLogID   = []byte("logid")
	keyLog     = []byte("log")
)

// ReservedPrefix is the prefix of the bucket names the core uses. Update
// callers must keep to buckets of their own.
const ReservedPrefix = "core."

// seqFill is the FillPercent of buckets whose keys mostly grow (sequence
// numbers, session ids): pages split near full instead of half full.
const seqFill = 0.9

// errRecord reports a record that does not decode.
var errRecord = errors.New("malformed record")

// Entry record flags.
const (
	entRetain = 1 << iota
	entReleased
	entInflight
	entHasMessage
)

// Message record flags (beside the QoS in the low two bits).
const (
	msgRetain   = 1 << 2
	msgHasProps = 1 << 3
)

// Session header flags.
const (
	sesHasWill = 1 << iota
	sesWillRetain
	sesWillProps
	sesHasUser   // the username follows the client id
	sesHasSubIDs // each subscription's options byte is followed by its identifier
)

// u64 returns v as 8 big-endian bytes appended to b.
func appendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// entryKey is the key of session sid's entry seq.
func appendEntryKey(b []byte, sid, seq uint64) []byte {
	return appendU64(appendU64(b, sid), seq)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// nanos converts t (zero: none) to unix nanoseconds (0: none).
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos converts unix nanoseconds (0: none) to a time.
func fromNanos(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func appendProps(b []byte, p *mqttcore.Properties) []byte {
	b = append(b, p.PayloadFormat)
	b = binary.AppendVarint(b, int64(p.MessageExpiry))
	b = appendString(b, p.ContentType)
	b = appendString(b, p.ResponseTopic)
	b = appendBytes(b, p.CorrelationData)
	b = binary.AppendUvarint(b, uint64(len(p.User)))
	for _, u := range p.User {
		b = appendString(b, u.Key)
		b = appendString(b, u.Value)
	}
	return b
}

// appendMessage encodes a message record: the message, with expires its
// absolute expiry.
func appendMessage(b []byte, m *mqttcore.Message, expires time.Time) []byte {
	flags := byte(m.QoS & 3)
	if m.Retain {
		flags |= msgRetain
	}
	if m.Props != nil {
		flags |= msgHasProps
	}
	b = append(b, recordVersion, flags)
	b = binary.AppendVarint(b, nanos(expires))
	b = appendString(b, m.Topic)
	b = appendString(b, m.Origin)
	b = appendBytes(b, m.Payload)
	if m.Props != nil {
		b = appendProps(b, m.Props)
	}
	return b
}

// appendEntry encodes an entry record.
func appendEntry(b []byte, e *mqttcore.QueuedRecord) []byte {
	var flags byte
	if e.Retain {
		flags |= entRetain
	}
	if e.Released {
		flags |= entReleased
	}
	if e.Inflight {
		flags |= entInflight
	}
	if e.Message != nil {
		flags |= entHasMessage
	}
	b = append(b, recordVersion, flags, byte(e.QoS))
	return binary.BigEndian.AppendUint16(b, e.PacketID)
}

// entryHasMessage reports whether an encoded entry refers to its message.
func entryHasMessage(v []byte) bool { return len(v) >= 2 && v[1]&entHasMessage != 0 }

// subOptions packs subscription options into one byte.
func subOptions(o mqttcore.SubOptions) byte {
	b := byte(o.QoS&3) | byte(o.RetainHandling&3)<<2
	if o.NoLocal {
		b |= 1 << 4
	}
	if o.RetainAsPublished {
		b |= 1 << 5
	}
	return b
}

func unpackSubOptions(b byte) mqttcore.SubOptions {
	return mqttcore.SubOptions{
		QoS:               mqttcore.QoS(b & 3),
		RetainHandling:    mqttcore.RetainHandling(b >> 2 & 3),
		NoLocal:           b&(1<<4) != 0,
		RetainAsPublished: b&(1<<5) != 0,
	}
}

// appendSession encodes a session header record: everything in r but ID,
// Queue, Inflight and FrontEnd.
func appendSession(b []byte, r *mqttcore.SessionRecord) []byte {
	var flags byte
	w := r.Will
	if w != nil {
		flags |= sesHasWill
		if w.Retain {
			flags |= sesWillRetain
		}
		if w.Props != nil {
			flags |= sesWillProps
		}
	}
	if r.Username != "" {
		flags |= sesHasUser
	}
	for _, s := range r.Subscriptions {
		if s.Options.SubscriptionID != 0 {
			flags |= sesHasSubIDs
			break
		}
	}
	b = append(b, recordVersion, flags, byte(r.State))
	b = appendString(b, r.ClientID)
	if flags&sesHasUser != 0 {
		b = appendString(b, r.Username)
	}
	b = binary.AppendVarint(b, int64(r.Expiry))
	b = binary.AppendVarint(b, nanos(r.SleepAt))
	b = binary.AppendVarint(b, nanos(r.WillAt))
	b = binary.AppendVarint(b, nanos(r.ExpireAt))
	if w != nil {
		b = appendString(b, w.Topic)
		b = appendBytes(b, w.Payload)
		b = append(b, byte(w.QoS))
		b = binary.AppendVarint(b, int64(w.Delay))
		if w.Props != nil {
			b = appendProps(b, w.Props)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(r.Subscriptions)))
	for _, s := range r.Subscriptions {
		b = appendString(b, s.Filter)
		b = append(b, subOptions(s.Options))
		if flags&sesHasSubIDs != 0 {
			b = binary.AppendUvarint(b, uint64(s.Options.SubscriptionID))
		}
	}
	b = binary.AppendUvarint(b, uint64(len(r.InboundQoS2)))
	for _, id := range r.InboundQoS2 {
		b = binary.AppendUvarint(b, uint64(id))
	}
	return b
}

// reader decodes a record; the first error sticks and later reads return
// zero values.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) byte() byte {
	if r.bad || len(r.b) < 1 {
		r.bad = true
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.bad {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) u16() uint16 {
	if r.bad || len(r.b) < 2 {
		r.bad = true
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

// raw returns the next length-prefixed field, aliasing the input.
func (r *reader) raw() []byte {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *reader) string() string { return string(r.raw()) }

// bytes returns a copy of the next length-prefixed field, nil when empty.
func (r *reader) bytes() []byte {
	s := r.raw()
	if len(s) == 0 {
		return nil
	}
	return append([]byte(nil), s...)
}

// count reads a list length, refusing one that cannot fit in what is left
// (each element takes at least min bytes).
func (r *reader) count(min int) int {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)/min) {
		r.bad = true
		return 0
	}
	return int(n)
}

func (r *reader) version() {
	if v := r.byte(); v != recordVersion {
		r.bad = true
	}
}

// done reports errRecord unless the whole record decoded.
func (r *reader) done() error {
	if r.bad || len(r.b) != 0 {
		return errRecord
	}
	return nil
}

func (r *reader) props() *mqttcore.Properties {
	p := &mqttcore.Properties{PayloadFormat: r.byte()}
	p.MessageExpiry = time.Duration(r.varint())
	p.ContentType = r.string()
	p.ResponseTopic = r.string()
	p.CorrelationData = r.bytes()
	if n := r.count(2); n > 0 {
		p.User = make([]mqttcore.UserProperty, n)
		for i := range p.User {
			p.User[i].Key = r.string()
			p.User[i].Value = r.string()
		}
	}
	return p
}

// decodeMessage decodes a message record; it returns the message and its
// absolute expiry.
func decodeMessage(v []byte) (*mqttcore.Message, time.Time, error) {
	r := reader{b: v}
	r.version()
	flags := r.byte()
	expires := r.varint()
	m := &mqttcore.Message{QoS: mqttcore.QoS(flags & 3), Retain: flags&msgRetain != 0}
	m.Topic = r.string()
	m.Origin = r.string()
	m.Payload = r.bytes()
	if flags&msgHasProps != 0 {
		m.Props = r.props()
	}
	if err := r.done(); err != nil {
		return nil, time.Time{}, err
	}
	return m, fromNanos(expires), nil
}

// decodeEntry decodes an entry record into q (all but Seq, Message and
// Expires) and reports whether it refers to its message.
func decodeEntry(v []byte, q *mqttcore.QueuedRecord) (hasMessage bool, err error) {
	r := reader{b: v}
	r.version()
	flags := r.byte()
	q.QoS = mqttcore.QoS(r.byte())
	q.PacketID = r.u16()
	q.Retain = flags&entRetain != 0
	q.Released = flags&entReleased != 0
	q.Inflight = flags&entInflight != 0
	return flags&entHasMessage != 0, r.done()
}

// decodeSession decodes a session header record into s.
func decodeSession(v []byte, s *mqttcore.SessionRecord) error {
	r := reader{b: v}
	r.version()
	flags := r.byte()
	s.State = mqttcore.State(r.byte())
	s.ClientID = r.string()
	if flags&sesHasUser != 0 {
		s.Username = r.string()
	}
	s.Expiry = time.Duration(r.varint())
	s.SleepAt = fromNanos(r.varint())
	s.WillAt = fromNanos(r.varint())
	s.ExpireAt = fromNanos(r.varint())
	if flags&sesHasWill != 0 {
		w := &mqttcore.Will{Retain: flags&sesWillRetain != 0}
		w.Topic = r.string()
		w.Payload = r.bytes()
		w.QoS = mqttcore.QoS(r.byte())
		w.Delay = time.Duration(r.varint())
		if flags&sesWillProps != 0 {
			w.Props = r.props()
		}
		s.Will = w
	}
	if n := r.count(2); n > 0 {
		s.Subscriptions = make([]mqttcore.SubscriptionRecord, n)
		for i := range s.Subscriptions {
			s.Subscriptions[i].Filter = r.string()
			s.Subscriptions[i].Options = unpackSubOptions(r.byte())
			if flags&sesHasSubIDs != 0 {
				id := r.uvarint()
				if id > math.MaxUint32 {
					r.bad = true
				}
				s.Subscriptions[i].Options.SubscriptionID = uint32(id)
			}
		}
	}
	if n := r.count(1); n > 0 {
		s.InboundQoS2 = make([]uint16, n)
		for i := range s.InboundQoS2 {
			id := r.uvarint()
			if id > math.MaxUint16 {
				r.bad = true
			}
			s.InboundQoS2[i] = uint16(id)
		}
	}
	return r.done()
}

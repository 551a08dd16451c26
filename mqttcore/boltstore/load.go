package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// loadChunk is how many sessions (or retained messages) Load decodes in
// one read transaction before it hands them to the callbacks: the
// callbacks run outside any transaction, and memory holds one chunk of
// records at a time.
const loadChunk = 1024

// Load implements mqttcore.Journal: it calls session for every stored
// session, in session id order, with its queued entries (Queue) and sent
// ones (Inflight), each sorted by Seq, and its front-end state; then
// retained for every retained message. Entries of one message share one
// *Message. A retained message whose expiry has passed is skipped (and
// deleted); the others come with Props.MessageExpiry set to what is left
// of their lifetime. Entries and front-end state of a session that has no
// header are skipped and deleted, and counted in Stats.LoadSkipped. It
// returns the highest message sequence number ever written, even when its
// message has gone since, so that sequence numbers are never reused.
//
// Load must be called before the first Commit; it applies the log to the
// file first (Checkpoint), which fails, on a full disk, if anything was
// committed since Open. A record that does not
// decode fails it with an error wrapping ErrCorrupt; an error from a
// callback stops it and is returned wrapped.
func (s *Store) Load(session func(*mqttcore.SessionRecord) error, retained func(*mqttcore.Message) error) (uint64, error) {
	// Open applied the log; whatever was committed since (by a caller
	// that did not keep to the rule above) is applied now.
	if err := s.Checkpoint(); err != nil {
		return 0, fmt.Errorf("boltstore: load %s: %w", s.path, err)
	}
	l := loader{s: s, msgs: make(map[uint64]*mqttcore.Message), maxSeq: s.seqHigh.Load()}
	if err := l.view(func(tx *bbolt.Tx) error {
		if k, _ := tx.Bucket(bucketMessages).Cursor().Last(); len(k) == 8 {
			l.maxSeq = max(l.maxSeq, binary.BigEndian.Uint64(k))
		}
		return nil
	}); err != nil {
		return 0, err
	}
	var from uint64
	for {
		recs, next, last, err := l.sessions(from)
		if err != nil {
			return 0, err
		}
		for _, r := range recs {
			if err := session(r); err != nil {
				return 0, fmt.Errorf("boltstore: load %s: session %d (%q): %w", s.path, r.ID, r.ClientID, err)
			}
		}
		if last {
			break
		}
		from = next
	}
	var after []byte
	for {
		msgs, more, err := l.retained(after)
		if err != nil {
			return 0, err
		}
		for _, m := range msgs {
			if err := retained(m); err != nil {
				return 0, fmt.Errorf("boltstore: load %s: retained %q: %w", s.path, m.Topic, err)
			}
		}
		if !more {
			break
		}
		after = []byte(msgs[len(msgs)-1].Topic)
	}
	if err := l.cleanUp(); err != nil {
		return 0, err
	}
	return l.maxSeq, nil
}

// loader is one Load's state.
type loader struct {
	s       *Store
	maxSeq  uint64
	msgs    map[uint64]*mqttcore.Message // each message once, by seq
	exp     map[uint64]time.Time
	orphans []uint64 // session ids with entries or front-end state but no header
	expired []string // retained topics whose expiry has passed
}

// view runs fn in a read transaction, turning a panic in bbolt (a damaged
// page) into an error.
func (l *loader) view(fn func(*bbolt.Tx) error) error {
	err := protectView(l.s.db, fn, func(err error) error { return l.corrupt(err.Error()) })
	if err != nil && !errors.Is(err, ErrCorrupt) {
		err = fmt.Errorf("boltstore: load %s: %w", l.s.path, err)
	}
	return err
}

func (l *loader) corrupt(detail string) error {
	return fmt.Errorf("boltstore: load %s: %w (%s): %s", l.s.path, ErrCorrupt, detail, adviceCorrupt)
}

// sessions decodes up to loadChunk sessions with ids from from on, with
// their entries and front-end state. next is the id to continue from;
// last reports that no session is left after these.
func (l *loader) sessions(from uint64) (recs []*mqttcore.SessionRecord, next uint64, last bool, err error) {
	err = l.view(func(tx *bbolt.Tx) error {
		var fk [8]byte
		start := appendU64(fk[:0], from)
		sc := tx.Bucket(bucketSessions).Cursor()
		k, v := sc.Seek(start)
		for ; k != nil && len(recs) < loadChunk; k, v = sc.Next() {
			if len(k) != 8 {
				return l.corrupt(fmt.Sprintf("session key %x", k))
			}
			r := &mqttcore.SessionRecord{ID: binary.BigEndian.Uint64(k)}
			if err := decodeSession(v, r); err != nil {
				return l.corrupt(fmt.Sprintf("session %d: %v", r.ID, err))
			}
			recs = append(recs, r)
		}
		// This chunk covers ids [from, end): end is the next session's,
		// or past every id when none is left.
		last = k == nil
		var end uint64
		if !last {
			if len(k) != 8 {
				return l.corrupt(fmt.Sprintf("session key %x", k))
			}
			end = binary.BigEndian.Uint64(k)
			next = end
		}
		inChunk := func(sid uint64) bool { return last || sid < end }
		if err := l.entries(tx, start, recs, inChunk); err != nil {
			return err
		}
		return l.frontEnds(tx, start, recs, inChunk)
	})
	return recs, next, last, err
}

// entries fills in the Queue and Inflight of recs from the entries of
// session ids from start on while inChunk holds.
func (l *loader) entries(tx *bbolt.Tx, start []byte, recs []*mqttcore.SessionRecord, inChunk func(uint64) bool) error {
	msgs := tx.Bucket(bucketMessages)
	c := tx.Bucket(bucketEntries).Cursor()
	i := 0
	for k, v := c.Seek(start); k != nil; k, v = c.Next() {
		if len(k) != 16 {
			return l.corrupt(fmt.Sprintf("entry key %x", k))
		}
		sid, seq := binary.BigEndian.Uint64(k), seqOfKey(k)
		if !inChunk(sid) {
			return nil
		}
		l.maxSeq = max(l.maxSeq, seq)
		for i < len(recs) && recs[i].ID < sid {
			i++
		}
		if i == len(recs) || recs[i].ID != sid {
			l.orphan(sid)
			continue
		}
		q := mqttcore.QueuedRecord{Seq: seq}
		has, err := decodeEntry(v, &q)
		if err != nil {
			return l.corrupt(fmt.Sprintf("entry %d of session %d: %v", seq, sid, err))
		}
		if has {
			m, err := l.message(msgs, seq)
			if err != nil {
				return err
			}
			if m == nil {
				l.s.stats.loadSkipped.Add(1)
				continue
			}
			q.Message, q.Expires = m, l.exp[seq]
		}
		r := recs[i]
		if q.Inflight {
			r.Inflight = append(r.Inflight, q)
		} else {
			r.Queue = append(r.Queue, q)
		}
	}
	return nil
}

// message returns the message seq, decoding it the first time; nil when
// it is missing.
func (l *loader) message(b *bbolt.Bucket, seq uint64) (*mqttcore.Message, error) {
	if m, ok := l.msgs[seq]; ok {
		return m, nil
	}
	var kb [8]byte
	v := b.Get(appendU64(kb[:0], seq))
	if v == nil {
		return nil, nil
	}
	m, exp, err := decodeMessage(v)
	if err != nil {
		return nil, l.corrupt(fmt.Sprintf("message %d: %v", seq, err))
	}
	l.msgs[seq] = m
	if !exp.IsZero() {
		if l.exp == nil {
			l.exp = make(map[uint64]time.Time)
		}
		l.exp[seq] = exp
	}
	return m, nil
}

// frontEnds fills in the FrontEnd of recs.
func (l *loader) frontEnds(tx *bbolt.Tx, start []byte, recs []*mqttcore.SessionRecord, inChunk func(uint64) bool) error {
	c := tx.Bucket(bucketFrontEnd).Cursor()
	i := 0
	for k, v := c.Seek(start); k != nil; k, v = c.Next() {
		if len(k) != 8 {
			return l.corrupt(fmt.Sprintf("front-end key %x", k))
		}
		sid := binary.BigEndian.Uint64(k)
		if !inChunk(sid) {
			return nil
		}
		for i < len(recs) && recs[i].ID < sid {
			i++
		}
		if i == len(recs) || recs[i].ID != sid {
			l.orphan(sid)
			continue
		}
		recs[i].FrontEnd = append([]byte(nil), v...)
	}
	return nil
}

func (l *loader) orphan(sid uint64) {
	l.s.stats.loadSkipped.Add(1)
	if n := len(l.orphans); n == 0 || l.orphans[n-1] != sid {
		l.orphans = append(l.orphans, sid)
	}
}

// retained decodes up to loadChunk retained messages with topics after
// after (from the first when nil); more reports that some may be left.
func (l *loader) retained(after []byte) (msgs []*mqttcore.Message, more bool, err error) {
	now := l.s.opts.Now()
	err = l.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketRetained).Cursor()
		var k, v []byte
		if after == nil {
			k, v = c.First()
		} else if k, v = c.Seek(after); k != nil && string(k) == string(after) {
			k, v = c.Next()
		}
		for ; k != nil; k, v = c.Next() {
			if len(msgs) == loadChunk {
				more = true
				return nil
			}
			m, exp, err := decodeMessage(v)
			if err != nil {
				return l.corrupt(fmt.Sprintf("retained %q: %v", k, err))
			}
			if !exp.IsZero() {
				left := exp.Sub(now)
				if left <= 0 {
					l.expired = append(l.expired, string(k))
					l.s.stats.loadSkipped.Add(1)
					continue
				}
				if m.Props != nil {
					m.Props.MessageExpiry = left
				}
			}
			m.Topic = string(k)
			msgs = append(msgs, m)
		}
		return nil
	})
	if len(msgs) == 0 {
		more = false
	}
	return msgs, more, err
}

// cleanUp deletes what Load skipped (orphaned entries and front-end state,
// expired retained messages) and waits for the commit.
func (l *loader) cleanUp() error {
	if len(l.orphans) == 0 && len(l.expired) == 0 {
		return nil
	}
	ops := make([]mqttcore.Op, 0, len(l.orphans)+len(l.expired))
	for _, sid := range l.orphans {
		ops = append(ops, mqttcore.Op{Kind: mqttcore.OpEndSession, SessionID: sid})
	}
	for _, t := range l.expired {
		ops = append(ops, mqttcore.Op{Kind: mqttcore.OpUnretain, Topic: t})
	}
	done := make(chan error, 1)
	l.s.Commit(ops, func(err error) { done <- err })
	if err := <-done; err != nil {
		return fmt.Errorf("boltstore: load %s: delete %d orphaned sessions and %d expired retained messages: %w",
			l.s.path, len(l.orphans), len(l.expired), err)
	}
	return nil
}

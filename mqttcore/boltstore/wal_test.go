package boltstore_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// noCheckpoint keeps every change in the log until Close: no checkpoint
// by size or time during a test.
var noCheckpoint = boltstore.Options{CheckpointBytes: 1 << 30, CheckpointInterval: time.Hour}

// logRec is a record found in a segment file by the test's own reading
// of the documented format.
type logRec struct {
	off, end int64 // the record's first byte and the end of its payload
	index    uint64
}

// segmentRecords reads the records of the current lap of the segment file
// at path, as docs/durability.md describes them.
func segmentRecords(t *testing.T, path string) (data []byte, recs []logRec) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 32 || string(data[:16]) != "gannet core log\n" || binary.BigEndian.Uint32(data[16:]) != boltstore.LogVersion {
		t.Fatalf("%s: header %q; want magic and version %d", path, data[:min(len(data), 32)], boltstore.LogVersion)
	}
	off := int64(32)
	for off+24 <= int64(len(data)) {
		n := int64(binary.BigEndian.Uint32(data[off+4:]))
		idx := binary.BigEndian.Uint64(data[off+8:])
		if idx == 0 || (len(recs) > 0 && idx != recs[len(recs)-1].index+1) {
			break
		}
		recs = append(recs, logRec{off: off, end: off + 24 + n, index: idx})
		off = (off + 24 + n + 7) &^ 7
	}
	return data, recs
}

// commitSessions commits n calls, each creating session i with one queued
// message.
func commitSessions(t *testing.T, s *boltstore.Store, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		mustCommit(t, s, sessionOp(&mqttcore.SessionRecord{ID: uint64(i), ClientID: fmt.Sprintf("c%d", i), Expiry: time.Hour}),
			entryOp(uint64(i), mqttcore.QueuedRecord{Seq: uint64(i), QoS: 1,
				Message: &mqttcore.Message{Topic: "t", Payload: []byte(fmt.Sprintf("payload %d", i)), QoS: 1}}))
	}
}

// boltSessions counts the sessions in the bbolt file alone, read directly.
func boltSessions(t *testing.T, path string) int {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket([]byte("core.sessions")).Stats().KeyN
		return nil
	})
	return n
}

// wantSessions checks that Load gives sessions 1..n, each with its message.
func wantSessions(t *testing.T, s *boltstore.Store, n int) loaded {
	t.Helper()
	got := load(t, s)
	if len(got.sessions) != n {
		t.Fatalf("Load: %d sessions; want %d", len(got.sessions), n)
	}
	for i := 1; i <= n; i++ {
		r := got.sessions[uint64(i)]
		if r == nil || len(r.Queue) != 1 || string(r.Queue[0].Message.Payload) != fmt.Sprintf("payload %d", i) {
			t.Fatalf("Load: session %d = %+v; want its one queued message", i, r)
		}
	}
	return got
}

// TestLogReplayAfterCrash: acknowledged commits that reached only the log
// (the process died before any checkpoint) are in the store after a
// restart.
func TestLogReplayAfterCrash(t *testing.T) {
	s, path := tempStore(t, noCheckpoint)
	commitSessions(t, s, 1, 20)
	mustCommit(t, s, mqttcore.Op{Kind: mqttcore.OpRetain, Message: &mqttcore.Message{Topic: "r", Payload: []byte("kept"), Retain: true}})
	if err := boltstore.Crash(s); err != nil {
		t.Fatalf("Crash = %v", err)
	}
	if n := boltSessions(t, path); n != 0 {
		t.Fatalf("the bbolt file holds %d sessions before the replay; want 0 (all in the log)", n)
	}
	s = open(t, path, noCheckpoint)
	if st := s.Stats(); st.Replayed != 21 {
		t.Errorf("Stats.Replayed = %d; want 21", st.Replayed)
	}
	got := wantSessions(t, s, 20)
	if m := got.retained["r"]; m == nil || string(m.Payload) != "kept" {
		t.Errorf("retained r = %+v; want kept", m)
	}
	if got.maxSeq != 20 {
		t.Errorf("maxSeq = %d; want 20", got.maxSeq)
	}
	// The replay went into the bbolt file: it holds them without the log.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := boltSessions(t, path); n != 20 {
		t.Errorf("the bbolt file holds %d sessions after the replay; want 20", n)
	}
}

// copyStore copies the store file and its log segments from src to dst.
func copyStore(t *testing.T, src, dst string) {
	t.Helper()
	for _, suffix := range []string{"", ".wal.0", ".wal.1"} {
		b, err := os.ReadFile(src + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLogReplayIdempotent: replaying is safe to repeat. A crash right
// after a replay (the same log beside a file that already holds it)
// replays nothing and loads the same state; so does opening the crashed
// files twice from the same copy.
func TestLogReplayIdempotent(t *testing.T) {
	s, path := tempStore(t, noCheckpoint)
	commitSessions(t, s, 1, 10)
	// Changes that replace and delete earlier ones, all in the log.
	mustCommit(t, s, dropOp(3, 3), mqttcore.Op{Kind: mqttcore.OpEndSession, SessionID: 4})
	mustCommit(t, s, entryOp(3, mqttcore.QueuedRecord{Seq: 3, QoS: 1, Message: &mqttcore.Message{Topic: "t", Payload: []byte("payload 3"), QoS: 1}}))
	if err := boltstore.Crash(s); err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(t.TempDir(), "crashed.db")
	copyStore(t, path, crashed)

	check := func(s *boltstore.Store) loaded {
		got := load(t, s)
		if len(got.sessions) != 9 || got.sessions[4] != nil || len(got.sessions[3].Queue) != 1 {
			t.Fatalf("Load: sessions %v, session 3 %+v; want 9 sessions without 4, session 3 with its message back", got.order, got.sessions[3])
		}
		return got
	}
	s = open(t, path, noCheckpoint)
	first := check(s)
	if err := boltstore.Crash(s); err != nil {
		t.Fatal(err)
	}
	// Put the crashed log back beside the replayed file.
	putLogBack(t, crashed, path)
	s = open(t, path, noCheckpoint)
	if st := s.Stats(); st.Replayed != 0 {
		t.Errorf("second open: Stats.Replayed = %d; want 0 (the file holds the log already)", st.Replayed)
	}
	if second := check(s); !reflect.DeepEqual(first.sessions, second.sessions) {
		t.Errorf("second open loads %+v; want %+v", second.sessions, first.sessions)
	}
	for range 2 {
		dir := t.TempDir()
		p := filepath.Join(dir, "again.db")
		copyStore(t, crashed, p)
		s := open(t, p, noCheckpoint)
		if again := check(s); !reflect.DeepEqual(first.sessions, again.sessions) {
			t.Errorf("replay of a copy loads %+v; want %+v", again.sessions, first.sessions)
		}
	}
}

// TestLogTornTail: a power cut in the middle of the last record's write
// leaves part of it on disk. That record was never acknowledged: it is
// dropped, everything before it is replayed, and the store works on.
func TestLogTornTail(t *testing.T) {
	for _, tear := range []struct {
		name string
		do   func(data []byte, r logRec) []byte
	}{
		{"zeros", func(data []byte, r logRec) []byte {
			clear(data[r.off+(r.end-r.off)/2 : r.end]) // the second half never reached the disk
			return data
		}},
		{"cut", func(data []byte, r logRec) []byte { return data[:r.off+30] }},
		{"header", func(data []byte, r logRec) []byte {
			copy(data[r.off:], []byte{0xde, 0xad}) // a sector of the header from elsewhere
			return data
		}},
	} {
		t.Run(tear.name, func(t *testing.T) {
			s, path := tempStore(t, noCheckpoint)
			commitSessions(t, s, 1, 10)
			if err := boltstore.Crash(s); err != nil {
				t.Fatal(err)
			}
			seg := path + ".wal.0"
			data, recs := segmentRecords(t, seg)
			if len(recs) != 10 {
				t.Fatalf("%s: %d records; want 10", seg, len(recs))
			}
			if err := os.WriteFile(seg, tear.do(data, recs[9]), 0o600); err != nil {
				t.Fatal(err)
			}
			s = open(t, path, noCheckpoint)
			if st := s.Stats(); st.Replayed != 9 {
				t.Errorf("Stats.Replayed = %d; want 9", st.Replayed)
			}
			wantSessions(t, s, 9)
			commitSessions(t, s, 10, 1)
			s = reopen(t, s, noCheckpoint)
			wantSessions(t, s, 10)
		})
	}
}

// TestLogCorruptMiddle: a record that does not read back but is followed
// by later records is damage, not a torn write: Open refuses with an error
// that names the log and says what to do, and does not start empty.
func TestLogCorruptMiddle(t *testing.T) {
	for _, where := range []string{"payload", "length"} {
		t.Run(where, func(t *testing.T) {
			s, path := tempStore(t, noCheckpoint)
			commitSessions(t, s, 1, 10)
			if err := boltstore.Crash(s); err != nil {
				t.Fatal(err)
			}
			seg := path + ".wal.0"
			data, recs := segmentRecords(t, seg)
			r := recs[4]
			switch where {
			case "payload":
				data[r.end-3] ^= 0x40
			case "length":
				data[r.off+7] ^= 0x01
			}
			if err := os.WriteFile(seg, data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := boltstore.Open(path, noCheckpoint)
			if !errors.Is(err, boltstore.ErrCorrupt) || !errors.Is(err, boltstore.ErrLogCorrupt) {
				t.Fatalf("Open with a damaged record = %v; want ErrCorrupt and ErrLogCorrupt", err)
			}
			if msg := err.Error(); !strings.Contains(msg, seg) || !strings.Contains(msg, "move the .wal.* files aside") {
				t.Errorf("Open error %q: want it to name %s and say what to do", msg, seg)
			}
		})
	}
}

// TestLogOtherStore: a log beside a store file it does not belong to (a
// restored backup with the current log left in place, or a new store
// where an old one's log remains) is refused, not replayed into it.
func TestLogOtherStore(t *testing.T) {
	s, path := tempStore(t, noCheckpoint)
	commitSessions(t, s, 1, 3)
	if err := boltstore.Crash(s); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	_, err := boltstore.Open(path, noCheckpoint)
	if !errors.Is(err, boltstore.ErrLogCorrupt) || !strings.Contains(err.Error(), "belongs to another store") {
		t.Fatalf("Open of a new file beside an old log = %v; want ErrLogCorrupt naming the mismatch", err)
	}
}

// TestLogNewerVersion: a log segment of a newer format is refused.
func TestLogNewerVersion(t *testing.T) {
	s, path := tempStore(t, noCheckpoint)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	seg := path + ".wal.1"
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint32(data[16:], boltstore.LogVersion+1)
	if err := os.WriteFile(seg, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = boltstore.Open(path, noCheckpoint)
	if !errors.Is(err, boltstore.ErrNewerFormat) || !strings.Contains(err.Error(), seg) {
		t.Fatalf("Open with a version %d log = %v; want ErrNewerFormat naming %s", boltstore.LogVersion+1, err, seg)
	}
}

// TestOpenVersion1: a file written before the log existed (format version
// 1, no log files) opens, loads, and is upgraded to version 2.
func TestOpenVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range []string{"core.meta", "core.sessions", "core.entries", "core.messages", "core.frontend", "core.retained"} {
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		m := tx.Bucket([]byte("core.meta"))
		m.Put([]byte("magic"), []byte("gannet core journal"))
		m.Put([]byte("version"), binary.BigEndian.AppendUint32(nil, 1))
		// A session header as version 1 wrote it (format_test.go's golden
		// encoding of a minimal session: version, flags, state, client id
		// "v1", expiry 1 h, no deadlines, will, subscriptions or ids).
		rec := []byte{1, 0, 0, 2, 'v', '1'}
		rec = binary.AppendVarint(rec, int64(time.Hour))
		rec = append(rec, 0, 0, 0, 0, 0)
		return tx.Bucket([]byte("core.sessions")).Put(binary.BigEndian.AppendUint64(nil, 7), rec)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, path, boltstore.Options{})
	got := load(t, s)
	if r := got.sessions[7]; r == nil || r.ClientID != "v1" || r.Expiry != time.Hour {
		t.Fatalf("Load of a version 1 file = %+v; want session 7 (v1, 1h)", got.sessions)
	}
	commitSessions(t, s, 1, 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket([]byte("core.meta")).Get([]byte("version")); binary.BigEndian.Uint32(v) != boltstore.FormatVersion {
			t.Errorf("version after open = %x; want %d", v, boltstore.FormatVersion)
		}
		return nil
	})
}

// TestLogBoundedUnderChurn: sessions come and go with queued messages far
// past the checkpoint size; the log's segments are reused after each
// checkpoint, so their size stays bounded, and everything live survives.
func TestLogBoundedUnderChurn(t *testing.T) {
	const ckpt = 64 << 10
	o := boltstore.Options{Sync: boltstore.SyncNever, CheckpointBytes: ckpt, CheckpointInterval: time.Hour}
	s, path := tempStore(t, o)
	payload := bytes.Repeat([]byte("p"), 1000)
	var seq uint64
	const rounds, sessions = 40, 50
	for round := range rounds {
		base := uint64(round * sessions)
		for i := uint64(1); i <= sessions; i++ {
			seq++
			mustCommit(t, s, sessionOp(&mqttcore.SessionRecord{ID: base + i, ClientID: "c", Expiry: time.Hour}),
				entryOp(base+i, mqttcore.QueuedRecord{Seq: seq, QoS: 1, Message: &mqttcore.Message{Topic: "t", Payload: payload, QoS: 1}}))
		}
		if round == rounds-1 {
			break // the last round's sessions stay
		}
		for i := uint64(1); i <= sessions; i++ {
			mustCommit(t, s, mqttcore.Op{Kind: mqttcore.OpEndSession, SessionID: base + i})
		}
	}
	st := s.Stats()
	if st.LogBytes < 10*2*ckpt {
		t.Fatalf("wrote %d bytes of log; want well past the checkpoint size (the test is too small)", st.LogBytes)
	}
	if st.Checkpoints < 5 {
		t.Errorf("Stats.Checkpoints = %d; want several", st.Checkpoints)
	}
	var total int64
	for _, seg := range s.LogPaths() {
		fi, err := os.Stat(seg)
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
	}
	// A segment holds a checkpoint's worth of payload, plus at most as
	// much again while the other one's checkpoint runs, plus record
	// headers, and grows 64 KiB at a time: 3 x 64 KiB + 64 KiB each.
	if bound := int64(2 * (3*ckpt + 64<<10)); total > bound {
		t.Errorf("log segments hold %d bytes after %d bytes were logged; want at most %d", total, st.LogBytes, bound)
	}
	t.Logf("logged %d bytes in %d checkpoints; segments %d bytes", st.LogBytes, st.Checkpoints, total)
	if err := boltstore.Crash(s); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, o)
	got := load(t, s)
	if len(got.sessions) != sessions {
		t.Fatalf("Load after a crash: %d sessions; want the last round's %d", len(got.sessions), sessions)
	}
	if n := messageCount(t, s); n != sessions {
		t.Errorf("%d messages stored; want %d (those of ended sessions deleted)", n, sessions)
	}
}

// TestCheckpointCoalescing: a checkpoint leaves out the ops that later
// ops of the same checkpoint replace. Random sequences of ops over a few
// keys, applied in one checkpoint, must leave what applying each op in a
// checkpoint of its own leaves.
func TestCheckpointCoalescing(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	msg := func(seq uint64) *mqttcore.Message {
		return &mqttcore.Message{Topic: "t", Payload: []byte(fmt.Sprintf("m%d", seq)), QoS: 1}
	}
	randomOp := func() mqttcore.Op {
		sid, seq := uint64(1+rng.IntN(3)), uint64(1+rng.IntN(4))
		switch rng.IntN(8) {
		case 0:
			return sessionOp(&mqttcore.SessionRecord{ID: sid, ClientID: fmt.Sprintf("c%d-%d", sid, rng.IntN(100)), Expiry: time.Hour})
		case 1:
			return mqttcore.Op{Kind: mqttcore.OpEndSession, SessionID: sid}
		case 2, 3:
			return entryOp(sid, mqttcore.QueuedRecord{Seq: seq, QoS: 1, Message: msg(seq), Inflight: rng.IntN(2) == 0, PacketID: uint16(rng.IntN(9))})
		case 4:
			return entryOp(sid, mqttcore.QueuedRecord{Seq: seq, QoS: 2, Released: true, Inflight: true, PacketID: 7})
		case 5:
			return dropOp(sid, seq)
		case 6:
			if rng.IntN(2) == 0 {
				return mqttcore.Op{Kind: mqttcore.OpFrontEnd, SessionID: sid}
			}
			return mqttcore.Op{Kind: mqttcore.OpFrontEnd, SessionID: sid, FrontEnd: []byte{byte(rng.IntN(256))}}
		}
		topic := []string{"r/a", "r/b"}[rng.IntN(2)]
		if rng.IntN(2) == 0 {
			return mqttcore.Op{Kind: mqttcore.OpUnretain, Topic: topic}
		}
		return mqttcore.Op{Kind: mqttcore.OpRetain, Message: &mqttcore.Message{Topic: topic, Payload: []byte{byte(rng.IntN(256))}, Retain: true}}
	}
	o := boltstore.Options{Sync: boltstore.SyncNever, CheckpointBytes: 1 << 30, CheckpointInterval: time.Hour}
	for round := range 30 {
		ops := make([]mqttcore.Op, 40)
		for i := range ops {
			ops[i] = randomOp()
		}
		one, _ := tempStore(t, o)
		each, _ := tempStore(t, o)
		for i := range ops {
			mustCommit(t, one, ops[i])
			mustCommit(t, each, ops[i])
			if err := each.Checkpoint(); err != nil {
				t.Fatal(err)
			}
		}
		got, want := load(t, one), load(t, each)
		if !reflect.DeepEqual(got.sessions, want.sessions) || !reflect.DeepEqual(got.retained, want.retained) {
			t.Fatalf("round %d: one checkpoint loads %+v %+v;\nop by op loads %+v %+v", round, got.sessions, got.retained, want.sessions, want.retained)
		}
		if g, w := messageCount(t, one), messageCount(t, each); g != w {
			t.Fatalf("round %d: one checkpoint stores %d messages; op by op %d", round, g, w)
		}
	}
}

// TestUpdateBetweenLoggedCommits: an Update call between logged commits
// applies the log before it, in order, and a crash after the last commit
// loses none of them.
func TestUpdateBetweenLoggedCommits(t *testing.T) {
	s, path := tempStore(t, noCheckpoint)
	commitSessions(t, s, 1, 3)
	bucket := []byte("bridge.queue")
	errc := make(chan error, 1)
	s.Update(func(tx *bbolt.Tx) error {
		// The logged sessions are in the file by now, under this
		// transaction.
		n := 0
		c := tx.Bucket([]byte("core.sessions")).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			n++
		}
		if n != 3 {
			return fmt.Errorf("%d sessions in the file inside Update; want the 3 logged before it", n)
		}
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	}, func(err error) { errc <- err })
	if err := <-errc; err != nil {
		t.Fatalf("Update = %v", err)
	}
	commitSessions(t, s, 4, 2)
	if err := boltstore.Crash(s); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, noCheckpoint)
	if st := s.Stats(); st.Replayed != 2 {
		t.Errorf("Stats.Replayed = %d; want 2 (the commits after the Update)", st.Replayed)
	}
	wantSessions(t, s, 5)
	var v []byte
	s.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(bucket); b != nil {
			v = append(v, b.Get([]byte("k"))...)
		}
		return nil
	})
	if string(v) != "v" {
		t.Errorf("the Update's key after a crash = %q; want v", v)
	}
}

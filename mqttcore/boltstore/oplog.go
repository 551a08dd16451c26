package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"go.etcd.io/bbolt"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// A log record's payload is a sequence of ops, each encoded as its kind
// byte followed by fields that depend on the kind. Values are the bbolt
// records of format.go, so that applying a logged op to the file is a Put
// of bytes already encoded:
//
//	session      sid, session header record
//	end-session  sid
//	entry        sid, seq, entry record, message: 0 none, 1 a message
//	             record follows, 2 the message of the last entry op of this
//	             record with the same seq (a message fanned out to several
//	             sessions is logged once per record)
//	drop-entry   sid, seq
//	front-end    sid, 0 (delete) or 1 followed by the bytes
//	retain       topic, message record
//	unretain     topic
//	keyed-put, keyed-delete: see keyed.go
//
// sid and seq are uvarints; records and byte strings a uvarint length and
// the bytes.
const (
	entryNoMessage = iota
	entryMessage
	entrySameMessage
)

// rawOp is one decoded op; its byte slices alias the payload it was
// decoded from.
//
// A checkpoint copies the ops that survive coalescing into a slice to sort
// them, so the struct is kept small: the retained ops' topic and the keyed
// ops' kvkey share key.
type rawOp struct {
	kind     mqttcore.OpKind
	del      bool // front-end: delete
	sid, seq uint64
	val      []byte // session, entry or front-end record; retained message record
	msg      []byte // the message record of an entry op, nil for none
	// key is the topic of a retain or unretain op, and the kvkey of a
	// keyed op: its encoded bucket path and key (keyed.go).
	key []byte
}

// opEncoder encodes ops into log payloads.
type opEncoder struct {
	now     func() time.Time
	lastSeq uint64 // seq of the last entry op with a message in this record
}

// reset starts a new record.
func (e *opEncoder) reset() { e.lastSeq = 0 }

// appendOps appends the encoding of ops to b. On an op that cannot be
// applied to the file (a session op without its record, a retained topic
// bbolt refuses as a key, an unknown kind) it returns b unchanged and the
// error, so that only the call holding it fails.
func (e *opEncoder) appendOps(b []byte, ops []mqttcore.Op) ([]byte, error) {
	start, last := len(b), e.lastSeq
	for i := range ops {
		var err error
		if b, err = e.appendOp(b, &ops[i]); err != nil {
			op := &ops[i]
			e.lastSeq = last
			return b[:start], fmt.Errorf("op %d of %d (%v, session %d): %w", i+1, len(ops), op.Kind, op.SessionID, err)
		}
	}
	return b, nil
}

func checkTopic(topic string) error {
	switch {
	case topic == "":
		return errors.New("retained message without a topic")
	case len(topic) > bbolt.MaxKeySize:
		return fmt.Errorf("topic of %d bytes: longer than the store's limit of %d", len(topic), bbolt.MaxKeySize)
	}
	return nil
}

func (e *opEncoder) appendOp(b []byte, op *mqttcore.Op) ([]byte, error) {
	b = append(b, byte(op.Kind))
	switch op.Kind {
	case mqttcore.OpSession:
		if op.Session == nil {
			return b, errors.New("no session record")
		}
		b = binary.AppendUvarint(b, op.SessionID)
		n := len(b)
		b = appendSession(append(b, 0, 0, 0, 0, 0), op.Session)
		return putLen(b, n), nil
	case mqttcore.OpEndSession:
		return binary.AppendUvarint(b, op.SessionID), nil
	case mqttcore.OpEntry:
		q := &op.Entry
		b = binary.AppendUvarint(b, op.SessionID)
		b = binary.AppendUvarint(b, q.Seq)
		n := len(b)
		b = putLen(appendEntry(append(b, 0, 0, 0, 0, 0), q), n)
		switch {
		case q.Message == nil:
			return append(b, entryNoMessage), nil
		case q.Seq == e.lastSeq && e.lastSeq != 0:
			return append(b, entrySameMessage), nil
		}
		e.lastSeq = q.Seq
		b = append(b, entryMessage)
		n = len(b)
		return putLen(appendMessage(append(b, 0, 0, 0, 0, 0), q.Message, q.Expires), n), nil
	case mqttcore.OpDropEntry:
		seq := op.Seq
		if seq == 0 {
			seq = op.Entry.Seq
		}
		b = binary.AppendUvarint(b, op.SessionID)
		return binary.AppendUvarint(b, seq), nil
	case mqttcore.OpFrontEnd:
		b = binary.AppendUvarint(b, op.SessionID)
		if op.FrontEnd == nil {
			return append(b, 0), nil
		}
		return appendBytes(append(b, 1), op.FrontEnd), nil
	case mqttcore.OpRetain:
		m := op.Message
		if m == nil {
			return b, errors.New("no retained message")
		}
		if err := checkTopic(m.Topic); err != nil {
			return b, err
		}
		var expires time.Time
		if m.Props != nil && m.Props.MessageExpiry > 0 {
			// The core's absolute expiry is not visible here; the
			// log write follows its acceptance by at most one group.
			expires = e.now().Add(m.Props.MessageExpiry)
		}
		b = appendString(b, m.Topic)
		n := len(b)
		return putLen(appendMessage(append(b, 0, 0, 0, 0, 0), m, expires), n), nil
	case mqttcore.OpUnretain:
		if err := checkTopic(op.Topic); err != nil {
			return b, fmt.Errorf("unretain: %w", err)
		}
		return appendString(b, op.Topic), nil
	}
	return b, fmt.Errorf("unknown op kind %d", op.Kind)
}

// putLen turns the 5 bytes reserved at b[at:] into the uvarint length of
// what follows them, moving it back when the length takes fewer bytes.
func putLen(b []byte, at int) []byte {
	n := len(b) - at - 5
	var l [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(l[:], uint64(n))
	copy(b[at:], l[:k])
	if k < 5 {
		copy(b[at+k:], b[at+5:])
		b = b[:len(b)-(5-k)]
	}
	return b
}

// decodeOps decodes one record's payload of ops into *op, calling f with
// each. op is the caller's scratch (f gets its address, so a variable of
// decodeOps' own would be an allocation per record, and a checkpoint
// decodes every logged record twice); f must not keep it.
func decodeOps(p []byte, op *rawOp, f func(*rawOp) error) error {
	r := reader{b: p}
	var lastSeq uint64
	var lastMsg []byte
	for len(r.b) > 0 && !r.bad {
		*op = rawOp{kind: mqttcore.OpKind(r.byte())}
		switch op.kind {
		case mqttcore.OpSession:
			op.sid = r.uvarint()
			op.val = r.raw()
		case mqttcore.OpEndSession:
			op.sid = r.uvarint()
		case mqttcore.OpEntry:
			op.sid = r.uvarint()
			op.seq = r.uvarint()
			op.val = r.raw()
			switch r.byte() {
			case entryNoMessage:
			case entryMessage:
				op.msg = r.raw()
				lastSeq, lastMsg = op.seq, op.msg
			case entrySameMessage:
				if lastMsg == nil || lastSeq != op.seq {
					return fmt.Errorf("%w: entry %d of session %d refers to a message not in its record", errRecord, op.seq, op.sid)
				}
				op.msg = lastMsg
			default:
				r.bad = true
			}
			if !r.bad && (op.msg != nil) != entryHasMessage(op.val) {
				return fmt.Errorf("%w: entry %d of session %d: message flag and record disagree", errRecord, op.seq, op.sid)
			}
		case mqttcore.OpDropEntry:
			op.sid = r.uvarint()
			op.seq = r.uvarint()
		case mqttcore.OpFrontEnd:
			op.sid = r.uvarint()
			switch r.byte() {
			case 0:
				op.del = true
			case 1:
				op.val = r.raw()
			default:
				r.bad = true
			}
		case mqttcore.OpRetain:
			op.key = r.raw()
			op.val = r.raw()
		case mqttcore.OpUnretain:
			op.key = r.raw()
		case opKeyedPut, opKeyedDelete:
			decodeKeyed(&r, op)
		default:
			return fmt.Errorf("%w: op kind %d", errRecord, op.kind)
		}
		if r.bad {
			return fmt.Errorf("%w: %s op", errRecord, opName(op.kind))
		}
		if (op.kind == mqttcore.OpRetain || op.kind == mqttcore.OpUnretain) && (len(op.key) == 0 || len(op.key) > bbolt.MaxKeySize) {
			return fmt.Errorf("%w: %v op with a topic of %d bytes", errRecord, op.kind, len(op.key))
		}
		if err := f(op); err != nil {
			return err
		}
	}
	if r.bad {
		return errRecord
	}
	return nil
}

// coalescer finds the ops of a checkpoint that a later op of the same
// checkpoint makes unnecessary, so that, for example, a message queued and
// delivered between two checkpoints never reaches the bbolt file. A first
// pass notes, for each key, the number of the last op that writes it; the
// second applies an op only if it is that last one.
//
// Skipping is exact because every op replaces or deletes its key, and a
// message record follows from the references counted when the surviving
// ops are applied: a skipped entry put is never counted, and a later
// delete of it finds nothing. An end-session is never skipped (it also
// deletes entries and front-end state that ops between it and a later
// header may not touch); it claims the header's key, so a header written
// before it is skipped.
//
// The string keys of retained and keyed alias the records being applied
// (noteKey): those do not change until the checkpoint is over, and the
// maps are cleared before the next one notes anything, so a key is never
// looked up after its bytes may have been reused.
type coalescer struct {
	entries  map[[2]uint64]int32
	sessions map[uint64]int32
	fronts   map[uint64]int32
	retained map[string]int32
	keyed    map[string]int32
	ends     int // end-session ops noted: never skipped
}

// Op classes: which bucket an op writes.
const (
	classSession = iota + 1
	classFrontEnd
	classRetained
	classEntry
	classKeyed
)

func opClass(k mqttcore.OpKind) int {
	switch k {
	case mqttcore.OpSession, mqttcore.OpEndSession:
		return classSession
	case mqttcore.OpFrontEnd:
		return classFrontEnd
	case mqttcore.OpRetain, mqttcore.OpUnretain:
		return classRetained
	case opKeyedPut, opKeyedDelete:
		return classKeyed
	}
	return classEntry
}

// reset empties c for a checkpoint. Maps that held more than maxKeys keys
// are dropped, not kept for the next checkpoint.
func (c *coalescer) reset(maxKeys int) {
	c.ends = 0
	if c.entries == nil || len(c.entries) > maxKeys || len(c.keyed) > maxKeys {
		// First use, or a huge checkpoint passed: do not keep its maps.
		*c = coalescer{entries: make(map[[2]uint64]int32), sessions: make(map[uint64]int32),
			fronts: make(map[uint64]int32), retained: make(map[string]int32), keyed: make(map[string]int32)}
		return
	}
	clear(c.entries)
	clear(c.sessions)
	clear(c.fronts)
	clear(c.retained)
	clear(c.keyed)
}

// note records op, the i-th of the checkpoint.
func (c *coalescer) note(op *rawOp, i int32) {
	switch op.kind {
	case mqttcore.OpEndSession:
		c.ends++
		c.sessions[op.sid] = i
	case mqttcore.OpSession:
		c.sessions[op.sid] = i
	case mqttcore.OpEntry, mqttcore.OpDropEntry:
		c.entries[[2]uint64{op.sid, op.seq}] = i
	case mqttcore.OpFrontEnd:
		c.fronts[op.sid] = i
	case mqttcore.OpRetain, mqttcore.OpUnretain:
		c.retained[noteKey(op.key)] = i
	case opKeyedPut, opKeyedDelete:
		c.keyed[noteKey(op.key)] = i
	}
}

// survivors is how many of the ops noted keep returns true for: the last
// op of each key, and every end-session.
func (c *coalescer) survivors() int {
	return len(c.entries) + len(c.sessions) + len(c.fronts) + len(c.retained) + len(c.keyed) + c.ends
}

// keep reports whether op, the i-th, must be applied.
func (c *coalescer) keep(op *rawOp, i int32) bool {
	switch op.kind {
	case mqttcore.OpSession:
		return c.sessions[op.sid] == i
	case mqttcore.OpEntry, mqttcore.OpDropEntry:
		return c.entries[[2]uint64{op.sid, op.seq}] == i
	case mqttcore.OpFrontEnd:
		return c.fronts[op.sid] == i
	case mqttcore.OpRetain, mqttcore.OpUnretain:
		return c.retained[string(op.key)] == i
	case opKeyedPut, opKeyedDelete:
		return c.keyed[string(op.key)] == i
	}
	return true
}

// noteKey returns b as a string without copying it, for a map key that
// lives no longer than b's bytes stay unchanged (the coalescer's, the
// overlay's: see there). A copy per logged key was most of the garbage a
// checkpoint made.
func noteKey(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// opName names an op kind of the log, the keyed ones included.
func opName(k mqttcore.OpKind) string {
	switch k {
	case opKeyedPut:
		return "keyed-put"
	case opKeyedDelete:
		return "keyed-delete"
	}
	return k.String()
}

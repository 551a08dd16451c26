package mqttcore_test

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// memJournal is a Journal kept in memory: it applies ops to maps the way a
// disk journal applies them to its file, so a test can restart a broker on
// it. Commits run on its own goroutine, in order, as a real journal's do.
// gate, when set, holds every commit until the test lets it pass.
type memJournal struct {
	mu       sync.Mutex
	sessions map[uint64]*mqttcore.SessionRecord
	entries  map[uint64]map[uint64]mqttcore.QueuedRecord
	fe       map[uint64][]byte
	retained map[string]*mqttcore.Message
	maxSeq   uint64
	commits  int
	failNext error // the next commit holding an OpEntry fails with this, changing nothing

	in   chan memCommit
	gate chan struct{} // nil: commit at once; else one receive per commit
	done chan struct{}
}

type memCommit struct {
	ops  []mqttcore.Op
	done func(error)
}

func newMemJournal(t testing.TB) *memJournal {
	j := &memJournal{
		sessions: map[uint64]*mqttcore.SessionRecord{},
		entries:  map[uint64]map[uint64]mqttcore.QueuedRecord{},
		fe:       map[uint64][]byte{},
		retained: map[string]*mqttcore.Message{},
	}
	j.start()
	t.Cleanup(j.stop)
	return j
}

// start runs the committer (again, after stop: a restart).
func (j *memJournal) start() {
	j.in = make(chan memCommit, 1024)
	j.done = make(chan struct{})
	go func() { // exits when stop closes j.in
		defer close(j.done)
		for c := range j.in {
			if g := j.gateCh(); g != nil {
				<-g
			}
			c.done(j.apply(c.ops))
		}
	}()
}

// stop ends the committer after the commits already handed to it.
func (j *memJournal) stop() {
	if j.in == nil {
		return
	}
	close(j.in)
	<-j.done
	j.in = nil
}

func (j *memJournal) gateCh() chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.gate
}

func (j *memJournal) Commit(ops []mqttcore.Op, done func(error)) {
	j.in <- memCommit{ops, done}
}

func (j *memJournal) apply(ops []mqttcore.Op) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.commits++
	if err := j.failNext; err != nil && slices.ContainsFunc(ops, func(op mqttcore.Op) bool { return op.Kind == mqttcore.OpEntry }) {
		// Only a commit with a message in it: the timer loop's flush of
		// lazy ops must not take the failure meant for a publish.
		j.failNext = nil
		return err
	}
	for _, op := range ops {
		switch op.Kind {
		case mqttcore.OpSession:
			r := *op.Session
			j.sessions[op.SessionID] = &r
		case mqttcore.OpEndSession:
			delete(j.sessions, op.SessionID)
			delete(j.entries, op.SessionID)
			delete(j.fe, op.SessionID)
		case mqttcore.OpEntry:
			if j.entries[op.SessionID] == nil {
				j.entries[op.SessionID] = map[uint64]mqttcore.QueuedRecord{}
			}
			j.entries[op.SessionID][op.Entry.Seq] = op.Entry
			j.maxSeq = max(j.maxSeq, op.Entry.Seq)
		case mqttcore.OpDropEntry:
			delete(j.entries[op.SessionID], op.Seq)
		case mqttcore.OpFrontEnd:
			j.fe[op.SessionID] = op.FrontEnd
		case mqttcore.OpRetain:
			j.retained[op.Message.Topic] = op.Message
		case mqttcore.OpUnretain:
			delete(j.retained, op.Topic)
		default:
			return errors.New("memJournal: unknown op " + op.Kind.String())
		}
	}
	return nil
}

func (j *memJournal) Load(session func(*mqttcore.SessionRecord) error, retained func(*mqttcore.Message) error) (uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	ids := make([]uint64, 0, len(j.sessions))
	for id := range j.sessions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	msgs := map[uint64]*mqttcore.Message{} // one copy per message, as a disk store rebuilds it
	for _, id := range ids {
		r := *j.sessions[id]
		var seqs []uint64
		for seq := range j.entries[id] {
			seqs = append(seqs, seq)
		}
		slices.Sort(seqs)
		for _, seq := range seqs {
			e := j.entries[id][seq]
			m := msgs[seq]
			if m == nil {
				c := *e.Message
				m = &mqttcore.Message{Topic: c.Topic, Payload: c.Payload, QoS: c.QoS, Retain: c.Retain, Origin: c.Origin, Props: c.Props}
				m.SetExpiresAt(e.Expires)
				msgs[seq] = m
			}
			e.Message = m
			if e.Inflight {
				r.Inflight = append(r.Inflight, e)
			} else {
				r.Queue = append(r.Queue, e)
			}
		}
		r.FrontEnd = j.fe[id]
		if err := session(&r); err != nil {
			return 0, err
		}
	}
	for _, m := range j.retained {
		c := &mqttcore.Message{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retain: m.Retain, Origin: m.Origin, Props: m.Props}
		if err := retained(c); err != nil {
			return 0, err
		}
	}
	return j.maxSeq, nil
}

// sessionCount returns how many sessions the journal holds.
func (j *memJournal) sessionCount() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.sessions)
}

// entryCount returns how many entries the journal holds for all sessions.
func (j *memJournal) entryCount() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := 0
	for _, es := range j.entries {
		n += len(es)
	}
	return n
}

// hold makes commits wait until release.
func (j *memJournal) hold() {
	j.mu.Lock()
	j.gate = make(chan struct{})
	j.mu.Unlock()
}

// release lets held and later commits through.
func (j *memJournal) release() {
	j.mu.Lock()
	g := j.gate
	j.gate = nil
	j.mu.Unlock()
	if g != nil {
		close(g)
	}
}

// sync waits until every commit handed to the journal so far has been
// applied.
func (j *memJournal) sync(t testing.TB) {
	t.Helper()
	ch := make(chan error, 1)
	j.Commit(nil, func(err error) { ch <- err })
	<-ch
}

// newJournalled starts a broker on j with $SYS off.
func newJournalled(t testing.TB, cfg mqttcore.Config, j *memJournal) *mqttcore.Broker {
	t.Helper()
	cfg.SysDisabled = true
	b, err := mqttcore.New(cfg, mqttcore.Options{Journal: j})
	if err != nil {
		t.Fatalf("New with journal = %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

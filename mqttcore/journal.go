package mqttcore

// Journal is the broker's durable store: the core records every change to a
// persistent session (session expiry above zero) and to the retained set as
// an Op, and the journal commits them in the order they were recorded. An
// acknowledgement that is a promise (PUBACK, PUBREC, SUBACK, PUBCOMP) is sent
// only after the commit that holds its ops has landed.
//
// Without a journal (Options.Journal nil, the default) the broker keeps
// everything in memory and never waits: nothing survives the process.
//
// A journal groups concurrent Commit calls into one disk transaction (group
// commit). The core calls Commit with none of its locks held, from many
// goroutines; the journal must apply batches in call order (a later
// Commit's ops are never durable before an earlier one's) and call done
// exactly once per Commit, after the ops are durable or have failed. done
// runs on the journal's goroutine and must not block or call Commit.
type Journal interface {
	// Load calls session for every stored session (with its queue and
	// in-flight entries, oldest first, and its front-end state) and
	// retained for every retained message, before the broker runs. Messages
	// referred to by several records are one *Message. It returns the
	// highest message sequence number stored (see Op.Seq), so new ones
	// continue above it.
	Load(session func(*SessionRecord) error, retained func(*Message) error) (maxSeq uint64, err error)
	// Commit makes ops durable, in order after every earlier Commit, and
	// then calls done (with nil, or the error that made the batch fail:
	// for example a full disk, wrapped so errors.Is(err, ErrStoreFailed)
	// holds). The journal owns ops until done is called; the core does not
	// reuse the slice before that.
	Commit(ops []Op, done func(error))
}

// OpKind names one kind of durable change.
type OpKind uint8

// Durable changes.
const (
	// OpSession writes the session's header (Session: everything but the
	// Queue, Inflight and FrontEnd fields), replacing the previous one.
	// The first OpSession for an id creates the session.
	OpSession OpKind = iota + 1
	// OpEndSession deletes the session SessionID with its entries and
	// front-end state.
	OpEndSession
	// OpEntry writes one queued or in-flight entry of SessionID: Entry,
	// keyed by Entry.Seq (a message's Seq is the same in every session
	// that holds it; a store writes each message once and counts its
	// references). It replaces an entry with the same Seq (a queued entry
	// going in flight, a PUBREC arriving).
	OpEntry
	// OpDropEntry deletes the entry Seq of SessionID (delivered,
	// acknowledged, expired or dropped).
	OpDropEntry
	// OpFrontEnd replaces the front-end's opaque state of SessionID
	// (FrontEnd; nil deletes it).
	OpFrontEnd
	// OpRetain sets Message as the retained message of its topic.
	OpRetain
	// OpUnretain deletes the retained message of Topic.
	OpUnretain
)

// String returns the op kind's name.
func (k OpKind) String() string {
	switch k {
	case OpSession:
		return "session"
	case OpEndSession:
		return "end-session"
	case OpEntry:
		return "entry"
	case OpDropEntry:
		return "drop-entry"
	case OpFrontEnd:
		return "front-end"
	case OpRetain:
		return "retain"
	case OpUnretain:
		return "unretain"
	}
	return "op(" + itoa(int64(k)) + ")"
}

// Op is one durable change. Which fields are set depends on Kind.
type Op struct {
	Kind OpKind
	// SessionID is the session's stable id (SessionRecord.ID).
	SessionID uint64
	// Session is the header for OpSession.
	Session *SessionRecord
	// Entry is the entry for OpEntry; Seq alone for OpDropEntry.
	Entry QueuedRecord
	// Seq is the message sequence number for OpDropEntry.
	Seq uint64
	// FrontEnd is the state for OpFrontEnd.
	FrontEnd []byte
	// Message is the retained message for OpRetain.
	Message *Message
	// Topic is the topic for OpUnretain.
	Topic string
}

// AckKind says which acknowledgement a front-end owes its client when the
// core reports it ready through FrontEnd.Acked.
type AckKind uint8

// Acknowledgements the core may defer.
const (
	// AckPublish: PUBACK for a QoS 1 publish, PUBREC for QoS 2.
	AckPublish AckKind = iota + 1
	// AckRelease: PUBCOMP for a PUBREL.
	AckRelease
	// AckReceived: PUBREL after the client's PUBREC of an outbound QoS 2
	// message.
	AckReceived
	// AckSubscribe: SUBACK (or UNSUBACK) for a subscription change.
	AckSubscribe
	// AckConnect: CONNACK for a transparent session whose remote session
	// was being connected (upstream.go); Err carries the remote refusal.
	AckConnect
)

// String returns the kind's name.
func (k AckKind) String() string {
	switch k {
	case AckPublish:
		return "publish"
	case AckRelease:
		return "release"
	case AckReceived:
		return "received"
	case AckSubscribe:
		return "subscribe"
	case AckConnect:
		return "connect"
	}
	return "ack(" + itoa(int64(k)) + ")"
}

// Ack is a deferred acknowledgement: the front-end sends it (or, with Err
// set, the protocol's refusal) when the core passes it to FrontEnd.Acked.
type Ack struct {
	Kind AckKind
	// PacketID is the id the front-end gave: the client's packet id (MQTT)
	// or message id (MQTT-SN).
	PacketID uint16
	// Tag is the front-end's own value, passed through unchanged (the
	// MQTT-SN gateway keeps the topic id of a PUBACK here).
	Tag uint32
	// Err is nil when the acknowledgement may be sent. Otherwise the
	// message was not accepted: ErrCongestion when flow control held it
	// longer than Config.HoldTimeout, or an error wrapping ErrStoreFailed.
	Err error
}

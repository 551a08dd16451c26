package snclient

import (
	"fmt"
	"strings"

	"github.com/gannet-mqtt/gannet/snpacket"
)

// Topic names a topic in one of the three ways MQTT-SN 1.2 allows. Build one
// with [Named], [Short] or [Predefined]; it is a small value, cheap to pass.
type Topic struct {
	// Kind is how the topic travels: a name (registered to a topic id for
	// PUBLISH, sent in full in SUBSCRIBE), a predefined id or a short name.
	Kind snpacket.TopicIDType
	// Name is the topic name for TopicIDNormal and the two octets for
	// TopicIDShort.
	Name string
	// ID is the predefined topic id for TopicIDPredefined.
	ID uint16
}

// Named returns a topic given by its full name. Publishing to it registers
// the name on first use (unless Options.PredefinedTopics has it); subscribing
// may use the wildcards + and #.
func Named(name string) Topic { return Topic{Kind: snpacket.TopicIDNormal, Name: name} }

// Short returns a short topic: a name of exactly two octets, carried in the
// topic id field without registration.
func Short(name string) Topic { return Topic{Kind: snpacket.TopicIDShort, Name: name} }

// Predefined returns a topic given by a predefined topic id that client and
// gateway both know from configuration.
func Predefined(id uint16) Topic { return Topic{Kind: snpacket.TopicIDPredefined, ID: id} }

// String returns the name, "short:ab" or "predefined:5".
func (t Topic) String() string {
	switch t.Kind {
	case snpacket.TopicIDShort:
		return "short:" + t.Name
	case snpacket.TopicIDPredefined:
		return fmt.Sprintf("predefined:%d", t.ID)
	}
	return t.Name
}

// check reports why t cannot be used; publish forbids wildcards.
func (t Topic) check(publish bool) error {
	var why string
	switch t.Kind {
	case snpacket.TopicIDNormal:
		switch {
		case t.Name == "":
			why = "empty topic name"
		case publish && strings.ContainsAny(t.Name, "+#"):
			why = "wildcard in a topic name to publish to"
		}
	case snpacket.TopicIDShort:
		if len(t.Name) != 2 {
			why = fmt.Sprintf("short topic name %q is not two octets", t.Name)
		}
	case snpacket.TopicIDPredefined:
		if t.ID == 0 || t.ID == 0xFFFF {
			why = fmt.Sprintf("reserved predefined topic id 0x%04x", t.ID)
		}
	default:
		why = fmt.Sprintf("topic kind %v", t.Kind)
	}
	if why == "" {
		return nil
	}
	return fmt.Errorf("%s: %w", why, ErrInvalidTopic)
}

// isWildcard reports whether a topic filter contains a wildcard.
func isWildcard(name string) bool { return strings.ContainsAny(name, "+#") }

// Message is an application message from the gateway, as passed to a
// [Handler].
type Message struct {
	// Topic is the topic name: resolved from the id the gateway used (via
	// SUBACK, a gateway REGISTER, a client REGISTER or
	// Options.PredefinedTopics), or the two octets of a short topic name.
	Topic string
	// TopicIDType and TopicID are the topic as it travelled.
	TopicIDType snpacket.TopicIDType
	TopicID     uint16
	// QoS is the QoS of the delivery, 0 to 2.
	QoS snpacket.QoS
	// Retain is the PUBLISH retain flag.
	Retain bool
	// Dup is the PUBLISH DUP flag. A QoS 2 duplicate is never delivered; a
	// QoS 1 duplicate is (at least once).
	Dup bool
	// Payload aliases the client's receive buffer: it is valid only until
	// the handler returns. Copy it to keep it.
	Payload []byte
}

// Handler receives the application messages of one client. It is called on
// the client's reader goroutine, one message at a time, in arrival order; a
// QoS 1 or 2 message is acknowledged after the handler returns.
//
// A callback rather than a channel, because the reader is the only goroutine
// a client may own (gannet bench runs thousands of clients), because a
// callback needs no buffer and no policy for a full one (a slow handler slows
// the reader, and the gateway's retransmissions and the socket buffer absorb
// the rest), and because a caller who wants a channel can send to one from
// the handler.
//
// The handler must not block for long and must not call the client's
// blocking methods (they wait for answers that only the reader can deliver)
// or Close. Publishing at QoS 0 or -1 to a known topic does not wait and is
// allowed.
type Handler func(m Message)

// Package snclient is a small MQTT-SN 1.2 client: it connects to one gateway
// over a datagram link, registers topics, publishes at QoS -1, 0, 1 and 2,
// subscribes, keeps the connection alive, sleeps and wakes. It serves
// `gannet pub`, `gannet sub`, `gannet bench` and the gateway's end-to-end
// tests.
//
// # MQTT-SN 2.0
//
// With Options.Version set to snpacket.Version20 the client speaks the 2.0
// draft (CSD01) instead: CONNECT with the will inline (never retransmitted,
// as the draft asks), PUBLISH at QoS 0, 1 and 2 by session alias or full
// topic name, PUBWOS for QoS -1, REGISTER, SUBSCRIBE, UNSUBSCRIBE, PINGREQ
// with a Packet Identifier, SLEEPREQ/SLEEPRESP (Sleep) and the wake-up
// PINGREQ (CheckMessages), and a DISCONNECT that is not answered. Refusals
// are *ReasonCodeError; SubscribeWith sets MQTT 5's subscription options.
// Options.Auth authenticates the CONNECT in one step (PlainAuth for SASL
// PLAIN). Not yet in 2.0: multi-step AUTH, Connection Encapsulation, and
// SearchGateway (1.2 SEARCHGW only). A WAKEUP from the gateway while asleep
// makes the client collect its messages at once (CheckMessages on a
// goroutine of its own, which Close waits for). The will updates do not exist in 2.0
// (errors.ErrUnsupported). See docs/mqttsn-2.md.
//
// # What it owns
//
// A [Client] owns the net.PacketConn it is given (Close closes it), one
// receive buffer, a small set of reusable send buffers, an snpacket.Decoder,
// the per-session topic tables (name -> id for publishing, id -> name for
// delivery), the ids of incoming QoS 2 messages between PUBREC and PUBREL,
// and the keep-alive timer.
//
// # Goroutines
//
// Each Client runs exactly one goroutine of its own: the reader, started by
// [New] and [Dial]. It reads datagrams from the gateway, decodes them, hands
// acknowledgements to the call waiting for them, answers the gateway's
// REGISTER, PUBLISH, PUBREL and PINGREQ, and calls [Options.Handler] for
// every application message. It exits when Close closes the link; Close waits
// for it. The keep-alive timer runs its callback through time.AfterFunc, so
// it borrows a runtime goroutine only while it fires; Close waits for a
// running callback too. Every blocking method (Connect, Register, Publish at
// QoS 1 and 2, Subscribe, Sleep, CheckMessages, ...) runs its retransmission
// loop on the caller's goroutine and takes a context.
//
// MQTT-SN allows one outstanding request per client (one REGISTER, one QoS
// 1/2 PUBLISH, one SUBSCRIBE or UNSUBSCRIBE), so request/response methods are
// serialised: a second caller waits, bounded by its context, until the first
// exchange ends. Publishing at QoS 0 and -1 to a known topic takes no turn; it
// encodes into a reused buffer and writes, without allocating.
//
// # Locking
//
// One mutex guards the client's state. It is never held while writing to the
// network or while calling the handler or another callback.
//
// # Timers
//
// All timers come from package time (time.NewTimer, time.AfterFunc), so tests
// drive them with testing/synctest and never sleep.
//
// # Imports
//
// snclient imports only the standard library and snpacket. It must not
// import gateway, mqttcore or radio: the gateway is tested with this client,
// so the client must not share its code. It never logs unless
// [Options.Logger] is set.
package snclient

package snclient

import "github.com/gannet-mqtt/gannet/snpacket"

// Version is the MQTT-SN protocol version a Client speaks
// (Options.Version): snpacket's type under this package's name, so that
// callers of the client need not import the codec.
type Version = snpacket.Version

// The protocol versions a Client speaks. The zero value of Options.Version
// means Version12.
const (
	Version12 = snpacket.Version12
	Version20 = snpacket.Version20
)

// RetainHandling says when a new MQTT-SN 2.0 subscription receives retained
// messages (SubscribeOptions.RetainHandling): snpacket's type under this
// package's name.
type RetainHandling = snpacket.RetainHandling

// The retain handling values.
const (
	RetainSend      = snpacket.RetainSend
	RetainSendIfNew = snpacket.RetainSendIfNew
	RetainDoNotSend = snpacket.RetainDoNotSend
)

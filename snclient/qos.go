package snclient

import "github.com/gannet-mqtt/gannet/snpacket"

// QoS is an MQTT-SN quality of service level, as Publish, Subscribe and Will
// take it. It is snpacket's type under this package's name, so that callers
// of the client need not import the codec (DEVELOPERS.md: cmd imports
// snclient, never snpacket).
type QoS = snpacket.QoS

// The QoS levels. QoSMinus1 publishes without a connection (predefined or
// short topics only).
const (
	QoSMinus1 = snpacket.QoSMinus1
	QoS0      = snpacket.QoS0
	QoS1      = snpacket.QoS1
	QoS2      = snpacket.QoS2
)

// MaxMessageLen is the largest MQTT-SN message, header included: no payload
// a client sends can be longer.
const MaxMessageLen = snpacket.MaxLen

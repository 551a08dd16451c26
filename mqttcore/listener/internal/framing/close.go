package framing

import (
	"errors"

	"github.com/mochi-mqtt/server/v2/packets"
)

// connackUnacceptableVersion is the MQTT 3.1.1 CONNACK return code 0x01,
// "unacceptable protocol version" [MQTT-3.1.2-2].
const connackUnacceptableVersion = 0x01

// CloseResponse returns the packet the server sends before it closes a
// connection because ReadPacket returned err, and false if it should close
// without sending anything.
//
// version is the protocol version negotiated on the connection, or 0 if no
// CONNECT has been accepted yet. The rules:
//
//   - err carries no reason code (io.EOF, a network error): nothing.
//   - Before a CONNECT is accepted, only a failed CONNECT is answered:
//     an unsupported protocol level gets the MQTT 3.1.1 CONNACK with return
//     code 0x01, which clients of every version before 5 understand
//     [MQTT-3.1.2-2]; any other failure of an MQTT 5 CONNECT gets a CONNACK
//     with the reason code (0x81, 0x82 or 0x95) [MQTT-4.13.1-1]; an MQTT
//     3.1 or 3.1.1 CONNECT that fails otherwise, a wrong protocol name and a first
//     packet that is not a CONNECT get nothing [MQTT-3.1.4-1].
//   - After an MQTT 5 CONNECT was accepted: a DISCONNECT with the reason
//     code [MQTT-4.13.1-1].
//   - After an MQTT 3.1 or 3.1.1 CONNECT was accepted: nothing; they have no
//     server DISCONNECT.
func CloseResponse(err error, version byte) (packets.Packet, bool) {
	var e *Error
	if !errors.As(err, &e) || e.Reason == 0 {
		return packets.Packet{}, false
	}
	switch version {
	case 0:
		if e.Type != packets.Connect || errors.Is(e, ErrProtocolName) {
			return packets.Packet{}, false
		}
		if e.Reason == ReasonUnsupportedProtocolVersion {
			return packets.Packet{
				FixedHeader:     packets.FixedHeader{Type: packets.Connack},
				ProtocolVersion: 4,
				ReasonCode:      connackUnacceptableVersion,
			}, true
		}
		if e.Version != 5 {
			return packets.Packet{}, false
		}
		return packets.Packet{
			FixedHeader:     packets.FixedHeader{Type: packets.Connack},
			ProtocolVersion: 5,
			ReasonCode:      byte(e.Reason),
		}, true
	case 5:
		return packets.Packet{
			FixedHeader:     packets.FixedHeader{Type: packets.Disconnect},
			ProtocolVersion: 5,
			ReasonCode:      byte(e.Reason),
		}, true
	default:
		return packets.Packet{}, false
	}
}

package snpacket

import "strconv"

// MsgType is the MQTT-SN 1.2 message type octet.
type MsgType uint8

// The MQTT-SN 1.2 message types. Values not listed are reserved.
const (
	TypeAdvertise     MsgType = 0x00
	TypeSearchGW      MsgType = 0x01
	TypeGWInfo        MsgType = 0x02
	TypeConnect       MsgType = 0x04
	TypeConnack       MsgType = 0x05
	TypeWillTopicReq  MsgType = 0x06
	TypeWillTopic     MsgType = 0x07
	TypeWillMsgReq    MsgType = 0x08
	TypeWillMsg       MsgType = 0x09
	TypeRegister      MsgType = 0x0A
	TypeRegack        MsgType = 0x0B
	TypePublish       MsgType = 0x0C
	TypePuback        MsgType = 0x0D
	TypePubcomp       MsgType = 0x0E
	TypePubrec        MsgType = 0x0F
	TypePubrel        MsgType = 0x10
	TypeSubscribe     MsgType = 0x12
	TypeSuback        MsgType = 0x13
	TypeUnsubscribe   MsgType = 0x14
	TypeUnsuback      MsgType = 0x15
	TypePingReq       MsgType = 0x16
	TypePingResp      MsgType = 0x17
	TypeDisconnect    MsgType = 0x18
	TypeWillTopicUpd  MsgType = 0x1A
	TypeWillTopicResp MsgType = 0x1B
	TypeWillMsgUpd    MsgType = 0x1C
	TypeWillMsgResp   MsgType = 0x1D
	TypeEncapsulated  MsgType = 0xFE
)

var msgTypeNames = [...]string{
	TypeAdvertise:     "ADVERTISE",
	TypeSearchGW:      "SEARCHGW",
	TypeGWInfo:        "GWINFO",
	TypeConnect:       "CONNECT",
	TypeConnack:       "CONNACK",
	TypeWillTopicReq:  "WILLTOPICREQ",
	TypeWillTopic:     "WILLTOPIC",
	TypeWillMsgReq:    "WILLMSGREQ",
	TypeWillMsg:       "WILLMSG",
	TypeRegister:      "REGISTER",
	TypeRegack:        "REGACK",
	TypePublish:       "PUBLISH",
	TypePuback:        "PUBACK",
	TypePubcomp:       "PUBCOMP",
	TypePubrec:        "PUBREC",
	TypePubrel:        "PUBREL",
	TypeSubscribe:     "SUBSCRIBE",
	TypeSuback:        "SUBACK",
	TypeUnsubscribe:   "UNSUBSCRIBE",
	TypeUnsuback:      "UNSUBACK",
	TypePingReq:       "PINGREQ",
	TypePingResp:      "PINGRESP",
	TypeDisconnect:    "DISCONNECT",
	TypeWillTopicUpd:  "WILLTOPICUPD",
	TypeWillTopicResp: "WILLTOPICRESP",
	TypeWillMsgUpd:    "WILLMSGUPD",
	TypeWillMsgResp:   "WILLMSGRESP",
}

// Known reports whether t is a message type MQTT-SN 1.2 defines.
func (t MsgType) Known() bool {
	if t == TypeEncapsulated {
		return true
	}
	return int(t) < len(msgTypeNames) && msgTypeNames[t] != ""
}

// String returns the specification's name of t, such as "PUBLISH", or
// "MsgType(0x1e)" for a reserved value.
func (t MsgType) String() string {
	if t == TypeEncapsulated {
		return "ENCAPSULATED"
	}
	if int(t) < len(msgTypeNames) && msgTypeNames[t] != "" {
		return msgTypeNames[t]
	}
	return "MsgType(0x" + strconv.FormatUint(uint64(t), 16) + ")"
}

package gateway_test

import (
	"reflect"
	"time"

	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// The scripted sensor in MQTT-SN 2.0: it sends 2.0 packets and decodes what
// comes back with the 2.0 codec.

func (s *sensor) send2(m sn.MessageV2) {
	s.h.t.Helper()
	b, err := m.AppendBinary(nil)
	if err != nil {
		s.h.t.Fatalf("encode %v: %v", m.Type(), err)
	}
	s.sendRaw(b)
}

// recv2 returns the next 2.0 packet from the gateway, failing the test if
// none arrives within a minute of (fake) time.
func (s *sensor) recv2() sn.MessageV2 {
	s.h.t.Helper()
	m, err := s.tryRecv2(time.Minute)
	if err != nil {
		s.h.t.Fatalf("%v: waiting for a 2.0 packet from the gateway: %v", s.link.AddrPort(), err)
	}
	return m
}

func (s *sensor) tryRecv2(wait time.Duration) (sn.MessageV2, error) {
	buf := make([]byte, 70000)
	s.link.SetReadDeadline(time.Now().Add(wait))
	n, _, err := s.link.ReadFromUDPAddrPort(buf)
	if err != nil {
		return nil, err
	}
	m, err := sn.DecodeV2(buf[:n])
	if err != nil {
		s.h.t.Fatalf("gateway sent a frame %x the 2.0 codec refuses: %v", buf[:n], err)
	}
	return m.Clone(), nil
}

// expect2 receives the next 2.0 packet and compares it with want.
func (s *sensor) expect2(want sn.MessageV2) sn.MessageV2 {
	s.h.t.Helper()
	got := s.recv2()
	if !reflect.DeepEqual(got, want) {
		s.h.t.Fatalf("got %T %+v; want %T %+v", got, got, want, want)
	}
	return got
}

// connect2 runs a 2.0 CONNECT/CONNACK for id with Packet Identifier 1 and
// returns the CONNACK.
func (s *sensor) connect2(m *sn.ConnectV2) *sn.ConnackV2 {
	s.h.t.Helper()
	if m.PacketID == 0 {
		m.PacketID = 1
	}
	if m.KeepAlive == 0 {
		m.KeepAlive = 60
	}
	s.send2(m)
	got := s.recv2()
	ack, ok := got.(*sn.ConnackV2)
	if !ok || ack.PacketID != m.PacketID || ack.ReasonCode != sn.Success {
		s.h.t.Fatalf("CONNECT %q: got %#v; want CONNACK success", m.ClientID, got)
	}
	return ack
}

// register2 registers topic and returns its session alias.
func (s *sensor) register2(topic string, id uint16) uint16 {
	s.h.t.Helper()
	s.send2(&sn.RegisterV2{PacketID: id, TopicName: []byte(topic)})
	ack, ok := s.recv2().(*sn.RegackV2)
	if !ok || ack.PacketID != id || ack.ReasonCode != sn.Success || !ack.HasTopicAlias || ack.TopicType != sn.TopicTypeSession {
		s.h.t.Fatalf("REGISTER %q: got %#v", topic, ack)
	}
	return ack.TopicAlias
}

// subscribe2 subscribes to filter with options and returns the SUBACK.
func (s *sensor) subscribe2(m *sn.SubscribeV2) *sn.SubackV2 {
	s.h.t.Helper()
	s.send2(m)
	ack, ok := s.recv2().(*sn.SubackV2)
	if !ok || ack.PacketID != m.PacketID || ack.ReasonCode != sn.ReasonCode(m.QoS) {
		s.h.t.Fatalf("SUBSCRIBE %q: got %#v", m.TopicFilter, ack)
	}
	return ack
}

// fakeAuth is a gateway.Authenticator with one user.
type fakeAuth struct{ user, password string }

func (a fakeAuth) Authenticate(user string, password []byte) error {
	if user == a.user && string(password) == a.password {
		return nil
	}
	return errBadPassword
}

var errBadPassword = errorString("bad user name or password")

type errorString string

func (e errorString) Error() string { return string(e) }

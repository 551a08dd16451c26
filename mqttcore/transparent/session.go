package transparent

import (
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session/state"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// countingSession is paho's in-memory session state, counting the QoS 1/2
// PUBLISHes read from the connection. paho's reader hands every packet
// with a packet id to the session in the order it read them, so the count
// when an UNSUBACK passes is the number of messages the remote sent
// before it (link.barrier).
type countingSession struct {
	*state.State
	pubs     atomic.Int64
	atUnsack atomic.Int64
}

func newCountingSession() *countingSession {
	return &countingSession{State: state.NewInMemory()}
}

// PacketReceived implements session.SessionManager.
func (s *countingSession) PacketReceived(p *packets.ControlPacket, ch chan<- *packets.Publish) error {
	switch p.Type {
	case packets.PUBLISH:
		if pb, ok := p.Content.(*packets.Publish); ok && pb.QoS > 0 && !(pb.QoS == 2 && pb.Duplicate) {
			s.pubs.Add(1)
		}
	case packets.UNSUBACK:
		s.atUnsack.Store(s.pubs.Load())
	}
	return s.State.PacketReceived(p, ch)
}

// beforeUnsuback is the number of QoS 1/2 PUBLISHes read before the last
// UNSUBACK.
func (s *countingSession) beforeUnsuback() int64 { return s.atUnsack.Load() }

// pahoProps converts core message properties to paho's.
func pahoProps(p *mqttcore.Properties) *paho.PublishProperties {
	if p == nil {
		return nil
	}
	pp := &paho.PublishProperties{ContentType: p.ContentType, ResponseTopic: p.ResponseTopic, CorrelationData: p.CorrelationData}
	if p.PayloadFormat != 0 {
		f := p.PayloadFormat
		pp.PayloadFormat = &f
	}
	if p.MessageExpiry > 0 {
		e := uint32(min((p.MessageExpiry+time.Second-1)/time.Second, 0xFFFFFFFF))
		pp.MessageExpiry = &e
	}
	for _, u := range p.User {
		pp.User = append(pp.User, paho.UserProperty{Key: u.Key, Value: u.Value})
	}
	return pp
}

// coreProps converts paho's message properties to the core's (nil when
// there are none).
func coreProps(p *paho.PublishProperties) *mqttcore.Properties {
	if p == nil {
		return nil
	}
	cp := &mqttcore.Properties{ContentType: p.ContentType, ResponseTopic: p.ResponseTopic, CorrelationData: p.CorrelationData}
	if p.PayloadFormat != nil {
		cp.PayloadFormat = *p.PayloadFormat
	}
	if p.MessageExpiry != nil {
		cp.MessageExpiry = time.Duration(*p.MessageExpiry) * time.Second
	}
	for _, u := range p.User {
		cp.User = append(cp.User, mqttcore.UserProperty{Key: u.Key, Value: u.Value})
	}
	if cp.PayloadFormat == 0 && cp.MessageExpiry == 0 && cp.ContentType == "" && cp.ResponseTopic == "" &&
		cp.CorrelationData == nil && cp.User == nil {
		return nil
	}
	return cp
}

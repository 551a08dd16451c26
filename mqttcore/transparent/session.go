package transparent

import (
	"sync/atomic"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho/session/state"
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

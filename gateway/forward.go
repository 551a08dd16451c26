package gateway

import sn "github.com/gannet-mqtt/gannet/snpacket"

// Forwarders (MQTT-SN 1.2 §5.5): a forwarder relays the datagrams of
// clients on a radio the gateway cannot reach, each wrapped in an
// Encapsulated message that names the client by its Wireless Node Id. The
// gateway keeps such a client under its forwarder's address plus the node
// id (client.fwd, client.node; the forwarded map of linkClients) and wraps
// everything it sends the client for the forwarder. Everything else about
// a forwarded client is the same as for a direct one. A node id may be
// empty: fwd, not a non-empty node, is what marks a forwarded client, and a
// nil node id (direct) is kept apart from an empty one everywhere.

// unwrapForwarded returns the client's message and node id from m: for an
// Encapsulated message the inner message and its node id (aliasing the
// datagram; never nil, also when empty), otherwise m itself and nil.
func unwrapForwarded(m sn.Message) (node []byte, inner sn.Message) {
	if e, ok := m.(*sn.Encapsulated); ok {
		if e.NodeID == nil {
			return []byte{}, e.Inner // the codec decodes an empty node id as nil
		}
		return e.NodeID, e.Inner
	}
	return nil, m
}

// wrapForwarded returns m as it goes on the wire to a client with node id
// node: itself for a direct client (node nil), otherwise wrapped in the
// loop's Encapsulated scratch value, valid until the next call.
func (l *loop) wrapForwarded(node []byte, m sn.Message) sn.Message {
	if node == nil {
		return m
	}
	l.tx.encap = sn.Encapsulated{NodeID: node, Inner: m}
	return &l.tx.encap
}

// nodeID returns the client's Wireless Node Id for an Encapsulated message,
// in the loop's scratch buffer (valid until the next call), or nil for a
// direct client.
func (c *client) nodeID() []byte {
	if !c.fwd {
		return nil
	}
	c.l.nodeBuf = append(c.l.nodeBuf[:0], c.node...)
	if c.l.nodeBuf == nil {
		// An empty node id appended to a loop's still-nil buffer is nil,
		// which would send the client's answers unwrapped, as to a direct
		// client. An empty, non-nil slice costs no allocation.
		c.l.nodeBuf = []byte{}
	}
	return c.l.nodeBuf
}

// ownNodeID returns a copy of the client's node id that the caller owns, or
// nil for a direct client.
func (c *client) ownNodeID() []byte {
	if !c.fwd {
		return nil
	}
	return append([]byte{}, c.node...)
}

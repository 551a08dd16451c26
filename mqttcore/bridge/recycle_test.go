package bridge

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// checkConn is the outbox's connection in TestRecycledBuffersKeepMessages:
// it decodes every PUBLISH written, checks it is the next message in
// order, and acknowledges it at once (as the bridge's reader takes a
// remote's PUBACKs).
type checkConn struct {
	o    *outbox
	mu   sync.Mutex
	next uint64 // the number the next PUBLISH must carry
	want uint64
	bad  error
	all  chan struct{}
	once sync.Once
}

// closeAll tells the test the run is over (all sent, or one was wrong).
func (c *checkConn) closeAll() { c.once.Do(func() { close(c.all) }) }

func (c *checkConn) Write(p []byte) (int, error) {
	n := len(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(p) > 0 && c.bad == nil {
		l, vbi := 0, 1
		for shift := 0; vbi < len(p) && vbi < 5; shift += 7 {
			l |= int(p[vbi]&0x7f) << shift
			vbi++
			if p[vbi-1]&0x80 == 0 {
				break
			}
		}
		if vbi+l > len(p) {
			c.bad = fmt.Errorf("after %d messages, a packet of %d bytes in a write of %d left: %x", c.next, vbi+l, len(p), p[:min(len(p), 32)])
			break
		}
		pkt := p[:vbi+l]
		p = p[vbi+l:]
		if pkt[0]>>4 != packets.PUBLISH {
			continue
		}
		if vbi+2 > len(pkt) {
			c.bad = fmt.Errorf("after %d messages, a malformed PUBLISH %x", c.next, pkt)
			break
		}
		tl := int(pkt[vbi])<<8 | int(pkt[vbi+1])
		if vbi+2+tl+3 > len(pkt) {
			c.bad = fmt.Errorf("after %d messages, a malformed PUBLISH %x", c.next, pkt)
			break
		}
		topic := string(pkt[vbi+2 : vbi+2+tl])
		at := vbi + 2 + tl
		id := uint16(pkt[at])<<8 | uint16(pkt[at+1])
		payload := pkt[at+3:] // past the packet id and the empty properties
		if len(payload) < 8 {
			c.bad = fmt.Errorf("after %d messages, a PUBLISH with a payload of %d bytes", c.next, len(payload))
			break
		}
		if c.next < c.want {
			if wt := fmt.Sprintf("t/%d", c.next%7); topic != wt || len(payload) != 8+int(c.next%50) || binary.BigEndian.Uint64(payload) != c.next {
				c.bad = fmt.Errorf("PUBLISH %d: topic %q, %d bytes of payload, number %d; want %q, %d bytes, number %d",
					c.next, topic, len(payload), binary.BigEndian.Uint64(payload), wt, 8+c.next%50, c.next)
			}
			for _, b := range payload[8:] {
				if b != byte(c.next) && c.bad == nil {
					c.bad = fmt.Errorf("PUBLISH %d: payload %x; want its filler bytes all %02x", c.next, payload, byte(c.next))
				}
			}
			c.next++
		}
		if c.bad != nil || c.next == c.want {
			c.closeAll()
		}
		c.o.end(id, 0)
	}
	return n, nil
}

// TestRecycledBuffersKeepMessages: messages queued through the core's
// callback path (appendHeld: buffers from the queue's pool, given back
// after their commit) and sent by the outbox (records from the same pool,
// given back once their removal commits) reach the connection intact and
// in order, with checkpoints running all the while (a small
// CheckpointBytes: the overlay's keys and values point into log records
// that the checkpoints free and reuse). A buffer given back before its
// commit shows here as a damaged message; a record given back before its
// hand-over is logged, under the race detector (CI runs it).
func TestRecycledBuffersKeepMessages(t *testing.T) {
	core, err := boltstore.Open(filepath.Join(t.TempDir(), "core.db"), boltstore.Options{Sync: boltstore.SyncNever, CheckpointBytes: 64 << 10, CheckpointInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer core.Close()
	st, err := OpenSharedStore(core, "bridge/recycle", StoreOptions{MaxBytes: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	o, err := newOutbox(st, 100)
	if err != nil {
		t.Fatal(err)
	}
	o.start()
	defer o.close()
	const n = 20_000
	conn := &checkConn{o: o, want: n, all: make(chan struct{})}
	ca := receiveMax(100)
	ca.SessionPresent = true
	if err := o.ConAckReceived(conn, &packets.Connect{}, ca); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 0, 64)
	for i := range uint64(n) {
		payload = binary.BigEndian.AppendUint64(payload[:0], i)
		for range i % 50 {
			payload = append(payload, byte(i))
		}
		data, err := encodeQueuedTo(&st.bufs, fmt.Sprintf("t/%d", i%7), 1, false, payload, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.appendHeld(data, true, mqttcore.Hold{}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-conn.all:
	case <-time.After(60 * time.Second):
		conn.mu.Lock()
		defer conn.mu.Unlock()
		t.Fatalf("%d of %d messages sent within 60s", conn.next, n)
	}
	conn.mu.Lock()
	defer conn.mu.Unlock()
	if conn.bad != nil {
		t.Fatal(conn.bad)
	}
	if conn.next != n {
		t.Fatalf("%d of %d messages sent", conn.next, n)
	}
	if cs := core.Stats(); cs.Checkpoints < 2 {
		t.Fatalf("%d checkpoints; want several while the messages went through", cs.Checkpoints)
	}
}

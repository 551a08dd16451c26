package bridge

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"testing/iotest"

	"github.com/eclipse/paho.golang/packets"
)

// readerConn is a net.Conn that reads from r.
type readerConn struct {
	net.Conn
	r io.Reader
}

func (c readerConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestBufConnTakesPubacks: PUBACKs (with and without a reason code and
// properties) go to onPuback, in order; every other packet reaches paho's
// reader intact, in order, however the stream is cut into reads.
func TestBufConnTakesPubacks(t *testing.T) {
	var stream bytes.Buffer
	write := func(cp *packets.ControlPacket) {
		if _, err := cp.WriteTo(&stream); err != nil {
			t.Fatal(err)
		}
	}
	connack := packets.NewControlPacket(packets.CONNACK)
	connack.Content.(*packets.Connack).SessionPresent = true
	write(connack)
	puback := func(id uint16, rc byte, reason string) {
		cp := packets.NewControlPacket(packets.PUBACK)
		pa := cp.Content.(*packets.Puback)
		pa.PacketID, pa.ReasonCode = id, rc
		if reason != "" {
			pa.Properties = &packets.Properties{ReasonString: reason}
		}
		write(cp)
	}
	puback(1, 0, "")
	puback(2, 0x87, "")
	pub := packets.NewControlPacket(packets.PUBLISH)
	p := pub.Content.(*packets.Publish)
	p.Topic, p.QoS, p.PacketID, p.Payload = "cmd/x", 1, 9, bytes.Repeat([]byte{'y'}, 40000) // beyond the read buffer
	write(pub)
	puback(3, 0x10, "no matching subscribers")
	write(packets.NewControlPacket(packets.PINGRESP))
	puback(65535, 0, "")
	raw := stream.Bytes()

	readers := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"halves":   iotest.HalfReader,
	}
	for name, wrap := range readers {
		t.Run(name, func(t *testing.T) {
			type ack struct {
				id uint16
				rc byte
			}
			var acks []ack
			c := newBufConn(readerConn{r: wrap(bytes.NewReader(raw))}, func(id uint16, rc byte) { acks = append(acks, ack{id, rc}) })
			var types []byte
			for {
				cp, err := packets.ReadPacket(c)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("paho's reader: %v after %v", err, types)
				}
				types = append(types, cp.Type)
				if cp.Type == packets.PUBLISH {
					if got := cp.Content.(*packets.Publish); got.Topic != "cmd/x" || got.PacketID != 9 || len(got.Payload) != 40000 {
						t.Fatalf("PUBLISH came through as %q id %d with %d bytes", got.Topic, got.PacketID, len(got.Payload))
					}
				}
			}
			if want := []byte{packets.CONNACK, packets.PUBLISH, packets.PINGRESP}; !bytes.Equal(types, want) {
				t.Fatalf("paho read packet types %v; want %v", types, want)
			}
			want := []ack{{1, 0}, {2, 0x87}, {3, 0x10}, {65535, 0}}
			if len(acks) != len(want) {
				t.Fatalf("onPuback got %v; want %v", acks, want)
			}
			for i := range want {
				if acks[i] != want[i] {
					t.Fatalf("onPuback got %v; want %v", acks, want)
				}
			}
		})
	}
}

package gateway

import (
	"testing"
	"unsafe"

	sn "github.com/gannet-mqtt/gannet/snpacket"
)

// TestClientSize keeps the gateway's share of a sleeping sensor small: the
// budget for a whole sleeping session is 1 KiB, and the core takes most.
// 224 bytes is a size class: one field more costs every client 16 bytes.
func TestClientSize(t *testing.T) {
	const budget = 224
	if n := unsafe.Sizeof(client{}); n > budget {
		t.Errorf("sizeof(client) = %d bytes; budget %d", n, budget)
	} else {
		t.Logf("sizeof(client) = %d bytes", n)
	}
}

// TestV2ConnSize keeps what a 2.0 client has beyond a 1.2 client in the
// 32-byte size class (v2.go): it is part of every sleeping 2.0 sensor.
func TestV2ConnSize(t *testing.T) {
	const budget = 32
	if n := unsafe.Sizeof(v2conn{}); n > budget {
		t.Errorf("sizeof(v2conn) = %d bytes; budget %d", n, budget)
	}
}

// TestV2ConnRare: the rare part of a 2.0 client's state exists only while
// it holds something.
func TestV2ConnRare(t *testing.T) {
	var v v2conn
	v.setUser("")
	if v.rare != nil || v.user() != "" {
		t.Fatalf("after setUser(\"\"): rare = %+v; want nil", v.rare)
	}
	v.setUser("alice")
	if v.user() != "alice" {
		t.Fatalf("user() = %q; want alice", v.user())
	}
	if ack := v.takeConnack(); ack != nil {
		t.Fatalf("takeConnack() with none waiting = %v; want nil", ack)
	}
	v.setUser("")
	if v.rare != nil {
		t.Fatalf("after clearing the user: rare = %+v; want nil", v.rare)
	}
	want := &sn.ConnackV2{PacketID: 7}
	v.setConnack(want)
	if ack := v.takeConnack(); ack != want || v.rare != nil {
		t.Fatalf("takeConnack() = %v, rare %+v after; want %v, nil", ack, v.rare, want)
	}
}

package boltstore_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/boltstore"
)

// The broker records a sleeping sensor's session and a message queued for
// it; after a restart, Load hands both back.
func Example() {
	dir, err := os.MkdirTemp("", "gannet-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "data", "core.db") // the directory is created

	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	msg := &mqttcore.Message{Topic: "sensors/7/cmd", Payload: []byte("on"), QoS: 1}
	done := make(chan error, 1)
	s.Commit([]mqttcore.Op{
		{Kind: mqttcore.OpSession, SessionID: 7, Session: &mqttcore.SessionRecord{ClientID: "sensor-7", State: mqttcore.StateAsleep}},
		{Kind: mqttcore.OpEntry, SessionID: 7, Entry: mqttcore.QueuedRecord{Seq: 1, Message: msg, QoS: 1}},
	}, func(err error) { done <- err }) // done runs once the ops are on disk
	fmt.Println("committed:", <-done)
	s.Close()

	s, err = boltstore.Open(path, boltstore.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	maxSeq, err := s.Load(func(r *mqttcore.SessionRecord) error {
		fmt.Printf("session %d %s %v, %d queued: %s\n", r.ID, r.ClientID, r.State, len(r.Queue), r.Queue[0].Message.Payload)
		return nil
	}, func(*mqttcore.Message) error { return nil })
	fmt.Println("max seq:", maxSeq, err)
	// Output:
	// committed: <nil>
	// session 7 sensor-7 asleep, 1 queued: on
	// max seq: 1 <nil>
}

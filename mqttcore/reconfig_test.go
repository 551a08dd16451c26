package mqttcore_test

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

// TestSetConfig lowers limits under live sessions: what exists stays, what
// comes next follows the new limits, and an invalid config changes nothing.
func TestSetConfig(t *testing.T) {
	b := newBroker(t, mqttcore.Config{MaxSessions: 3, MaxQueued: 10, Overflow: mqttcore.OverflowDropOldest})
	c, _ := attach(t, b, persistent("a"))
	attach(t, b, persistent("b"))
	subscribe(t, c, "t", mqttcore.SubOptions{QoS: 1})
	in := b.Inline("p")
	for i := range 5 {
		publish(t, in, "t", fmt.Sprint(i), 1, false)
	}

	kept, err := b.SetConfig(mqttcore.Config{MaxSessions: 2, MaxQueued: 3, Overflow: mqttcore.OverflowDropOldest, MaxPayloadSize: 4, SysInterval: time.Minute, SysDisabled: b.Config().SysDisabled})
	if err != nil {
		t.Fatalf("SetConfig = %v", err)
	}
	if want := []string{"sys_interval"}; !slices.Equal(kept, want) {
		t.Errorf("SetConfig kept %v; want %v", kept, want)
	}
	if got := b.Config(); got.MaxQueued != 3 || got.MaxSessions != 2 || got.SysInterval != mqttcore.DefaultSysInterval {
		t.Errorf("Config() = %+v; want max_queued 3, max_sessions 2, sys_interval unchanged", got)
	}
	// max_sessions: both sessions stay (a resume works), a new one is refused.
	if _, _, err := b.Attach(&fakeFE{}, persistent("b")); err != nil {
		t.Errorf("resume at the lowered max_sessions = %v", err)
	}
	if _, _, err := b.Attach(&fakeFE{}, persistent("c")); !isErr(err, mqttcore.ErrTooManySessions) {
		t.Errorf("new session beyond the lowered max_sessions = %v; want ErrTooManySessions", err)
	}
	// max_payload_size
	if err := in.Publish(&mqttcore.Message{Topic: "t", Payload: []byte("12345")}); !isErr(err, mqttcore.ErrPayloadTooLarge) {
		t.Errorf("publish over the lowered max_payload_size = %v; want ErrPayloadTooLarge", err)
	}
	// max_queued: the five queued messages stay; the next one drops the
	// oldest (drop-oldest), not the queue down to three.
	publish(t, in, "t", "5", 1, false)
	var got []string
	for _, d := range drain(c) {
		got = append(got, string(d.Message.Payload))
	}
	if want := []string{"1", "2", "3", "4", "5"}; !slices.Equal(got, want) {
		t.Errorf("queue after lowering max_queued to 3 and one more message = %v; want %v", got, want)
	}

	before := b.Config()
	if _, err := b.SetConfig(mqttcore.Config{MaxQueued: -1}); !isErr(err, mqttcore.ErrInvalidConfig) {
		t.Errorf("SetConfig(max_queued -1) = %v; want ErrInvalidConfig", err)
	}
	if after := b.Config(); after != before {
		t.Errorf("Config() after a refused SetConfig = %+v; want %+v", after, before)
	}
}

// TestConfigChanges checks that every field of Config is compared, under
// its config.toml name.
func TestConfigChanges(t *testing.T) {
	typ := reflect.TypeOf(mqttcore.Config{})
	for i := range typ.NumField() {
		f := typ.Field(i)
		var c mqttcore.Config
		v := reflect.ValueOf(&c).Elem().Field(i)
		switch v.Kind() {
		case reflect.Int, reflect.Int64:
			v.SetInt(7 << 20) // above every default, so that no other default moves
		case reflect.Bool:
			v.SetBool(true)
		case reflect.String:
			v.SetString(string(mqttcore.OverflowDropOldest))
		default:
			t.Fatalf("field %s: kind %v not covered by this test", f.Name, v.Kind())
		}
		if f.Type == reflect.TypeOf(time.Duration(0)) {
			v.SetInt(int64(time.Hour))
		}
		got := mqttcore.ConfigChanges(mqttcore.Config{}, c)
		if want := []string{f.Tag.Get("toml")}; !slices.Equal(got, want) {
			t.Errorf("ConfigChanges(zero, %s set) = %v; want %v", f.Name, got, want)
		}
	}
	if got := mqttcore.ConfigChanges(mqttcore.Config{}, mqttcore.Config{MaxQueued: mqttcore.DefaultMaxQueued}); len(got) != 0 {
		t.Errorf("ConfigChanges(zero, the default spelled out) = %v; want none", got)
	}
}

// TestSetConfigKeepsInboundWindow: a lowered max_inflight does not refuse
// the inbound QoS 2 an attachment was allowed (the MQTT 5 Receive Maximum
// its CONNACK announced); a new attachment gets the new bound.
func TestSetConfigKeepsInboundWindow(t *testing.T) {
	b := newBroker(t, mqttcore.Config{MaxInflight: 3})
	c, _ := attach(t, b, persistent("a"))
	if got := c.InboundWindow(); got != 3 {
		t.Fatalf("InboundWindow() = %d; want 3", got)
	}
	if _, err := b.SetConfig(mqttcore.Config{MaxInflight: 1, SysDisabled: b.Config().SysDisabled}); err != nil {
		t.Fatalf("SetConfig = %v", err)
	}
	for pid := uint16(1); pid <= 3; pid++ {
		if _, err := c.Publish(&mqttcore.Message{Topic: "t", QoS: 2}, pid, 0); err != nil {
			t.Fatalf("QoS 2 #%d of the window of 3 told at attach, after max_inflight lowered to 1: %v", pid, err)
		}
	}
	if _, err := c.Publish(&mqttcore.Message{Topic: "t", QoS: 2}, 4, 0); !isErr(err, mqttcore.ErrInflightFull) {
		t.Errorf("fourth unreleased QoS 2 = %v; want ErrInflightFull", err)
	}
	c2, _ := attach(t, b, persistent("b"))
	if got := c2.InboundWindow(); got != 1 {
		t.Errorf("InboundWindow() of an attachment after SetConfig = %d; want 1", got)
	}
}

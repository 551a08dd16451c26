package mqttcore_test

import (
	"slices"
	"testing"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

func TestRetainedSetReplaceDelete(t *testing.T) {
	b := newBroker(t, mqttcore.Config{})
	in := b.Inline("p")
	publish(t, in, "r/a", "1", 1, true)
	publish(t, in, "r/a", "2", 1, true) // replaces
	publish(t, in, "r/b", "3", 0, true)
	publish(t, in, "r/c", "4", 0, true)
	publish(t, in, "r/c", "", 0, true) // deletes
	if got := b.Stats().Retained; got != 2 {
		t.Errorf("Stats().Retained = %d; want 2", got)
	}
	c, _ := attach(t, b, persistent("s"))
	subscribe(t, c, "r/+", mqttcore.SubOptions{QoS: 1})
	ds := drain(c)
	got := map[string]string{}
	for _, d := range ds {
		if !d.Retain {
			t.Errorf("retained %q delivered on subscribe without RETAIN", d.Message.Topic)
		}
		got[d.Message.Topic] = string(d.Message.Payload)
	}
	want := map[string]string{"r/a": "2", "r/b": "3"}
	if len(got) != len(want) || got["r/a"] != "2" || got["r/b"] != "3" {
		t.Errorf("retained on subscribe = %v; want %v", got, want)
	}
	for _, d := range ds {
		if d.Message.Topic == "r/b" && d.QoS != 0 {
			t.Errorf("r/b delivered at QoS %d; want min(0, 1) = 0", d.QoS)
		}
	}
}

func TestRetainHandling(t *testing.T) {
	tests := []struct {
		name     string
		rh       mqttcore.RetainHandling
		filter   string
		first    int // retained delivered on first subscribe
		resub    int // on the same subscribe again
		isShared bool
	}{
		{"send always", mqttcore.SendRetained, "r/#", 1, 1, false},
		{"send if new", mqttcore.SendRetainedIfNew, "r/#", 1, 0, false},
		{"never", mqttcore.NoRetained, "r/#", 0, 0, false},
		{"exact filter", mqttcore.SendRetained, "r/x", 1, 1, false},
		{"shared never", mqttcore.SendRetained, "$share/g/r/#", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBroker(t, mqttcore.Config{})
			publish(t, b.Inline("p"), "r/x", "v", 0, true)
			c, _ := attach(t, b, persistent("s"))
			opts := mqttcore.SubOptions{RetainHandling: tt.rh}
			subscribe(t, c, tt.filter, opts)
			if n := len(drain(c)); n != tt.first {
				t.Errorf("first subscribe delivered %d; want %d", n, tt.first)
			}
			subscribe(t, c, tt.filter, opts)
			if n := len(drain(c)); n != tt.resub {
				t.Errorf("repeated subscribe delivered %d; want %d", n, tt.resub)
			}
		})
	}
}

func TestRetainAsPublished(t *testing.T) {
	tests := []struct {
		rap        bool
		pubRetain  bool
		wantRetain bool
	}{
		{false, true, false},
		{true, true, true},
		{true, false, false},
		{false, false, false},
	}
	for _, tt := range tests {
		b := newBroker(t, mqttcore.Config{})
		c, _ := attach(t, b, persistent("s"))
		subscribe(t, c, "t", mqttcore.SubOptions{RetainAsPublished: tt.rap})
		publish(t, b.Inline("p"), "t", "v", 0, tt.pubRetain)
		ds := drain(c)
		if len(ds) != 1 || ds[0].Retain != tt.wantRetain {
			t.Errorf("rap=%v retain=%v: deliveries %+v; want one with Retain=%v", tt.rap, tt.pubRetain, ds, tt.wantRetain)
		}
	}
}

func TestNoLocal(t *testing.T) {
	b := newBroker(t, mqttcore.Config{})
	c, _ := attach(t, b, persistent("me"))
	subscribe(t, c, "t/#", mqttcore.SubOptions{NoLocal: true})
	other, _ := attach(t, b, persistent("other"))
	subscribe(t, other, "t/#", mqttcore.SubOptions{NoLocal: true})
	if _, err := c.Publish(&mqttcore.Message{Topic: "t/1", Payload: []byte("x")}, 0, 0); err != nil {
		t.Fatal(err)
	}
	if got := topics(drain(c)); len(got) != 0 {
		t.Errorf("no-local subscriber got its own message: %q", got)
	}
	if got := topics(drain(other)); !slices.Equal(got, []string{"t/1"}) {
		t.Errorf("other subscriber got %q; want [t/1]", got)
	}
	// An overlapping subscription without no-local still delivers.
	subscribe(t, c, "t/+", mqttcore.SubOptions{})
	if _, err := c.Publish(&mqttcore.Message{Topic: "t/2"}, 0, 0); err != nil {
		t.Fatal(err)
	}
	if got := topics(drain(c)); !slices.Equal(got, []string{"t/2"}) {
		t.Errorf("with a local subscription too, got %q; want [t/2]", got)
	}
	// Inline: loop prevention by origin name.
	in := b.Inline("bridge")
	var got []string
	if _, err := in.Subscribe("t/#", mqttcore.SubOptions{NoLocal: true}, func(m *mqttcore.Message) { got = append(got, m.Topic) }); err != nil {
		t.Fatal(err)
	}
	publish(t, in, "t/3", "x", 0, false)
	publish(t, b.Inline("elsewhere"), "t/4", "x", 0, false)
	if !slices.Equal(got, []string{"t/4"}) {
		t.Errorf("inline no-local got %q; want [t/4]", got)
	}
}

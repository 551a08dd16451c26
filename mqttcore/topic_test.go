package mqttcore_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/gannet-mqtt/gannet/mqttcore"
)

func TestValidTopic(t *testing.T) {
	tests := []struct {
		topic string
		ok    bool
	}{
		{"a", true},
		{"a/b/c", true},
		{"/", true},
		{"a//b", true},
		{"$SYS/broker", true},
		{"", false},
		{"a/+", false},
		{"a/#", false},
		{"a\x00b", false},
		{"\xff", false},
		{strings.Repeat("a", 65536), false},
		{strings.Repeat("a/", 3) + "a", true}, // 4 levels, limit 4
		{strings.Repeat("a/", 4) + "a", false},
	}
	for _, tt := range tests {
		err := mqttcore.ValidTopic(tt.topic, 4)
		if (err == nil) != tt.ok {
			t.Errorf("ValidTopic(%.20q) = %v; want ok %v", tt.topic, err, tt.ok)
		}
		if err != nil && !isErr(err, mqttcore.ErrInvalidTopic) {
			t.Errorf("ValidTopic(%.20q) = %v; want ErrInvalidTopic", tt.topic, err)
		}
	}
}

func TestValidFilter(t *testing.T) {
	tests := []struct {
		filter string
		ok     bool
	}{
		{"a/b", true},
		{"+", true},
		{"#", true},
		{"a/+/c", true},
		{"a/#", true},
		{"+/+/#", true},
		{"$share/g/a/+", true},
		{"$share/g/#", true},
		{"", false},
		{"a/b#", false},
		{"a/#/c", false},
		{"a+/b", false},
		{"a/+b", false},
		{"$share/g", false},
		{"$share//a", false},
		{"$share/g/", false},
		{"$share/g+/a", false},
		{"a\x00", false},
	}
	for _, tt := range tests {
		err := mqttcore.ValidFilter(tt.filter, 0)
		if (err == nil) != tt.ok {
			t.Errorf("ValidFilter(%q) = %v; want ok %v", tt.filter, err, tt.ok)
		}
		if err != nil && !isErr(err, mqttcore.ErrInvalidFilter) {
			t.Errorf("ValidFilter(%q) = %v; want ErrInvalidFilter", tt.filter, err)
		}
	}
}

func TestMatchFilter(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+", "a", false},
		{"a/+", "a/", true},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"a/#", "ab", false},
		{"#", "a/b", true},
		{"+/+", "/a", true},
		{"+", "/a", false},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"$SYS/+", "$SYS/x", true},
		{"a/b/c", "a/b", false},
		{"a/b", "a/b/c", false},
	}
	for _, tt := range tests {
		if got := mqttcore.MatchFilter(tt.filter, tt.topic); got != tt.want {
			t.Errorf("MatchFilter(%q, %q) = %v; want %v", tt.filter, tt.topic, got, tt.want)
		}
	}
}

// TestTreeMatch checks the subscription tree against MatchFilter for every
// pair, through real sessions: a session subscribed to one filter must get a
// message exactly when the filter matches.
func TestTreeMatch(t *testing.T) {
	filters := []string{"a/b", "a/+", "a/#", "#", "+/+", "+", "+/b/#", "$SYS/#", "$SYS/+", "/+", "a/b/c", "a//b", "+/+/+"}
	topicsList := []string{"a", "a/b", "a/b/c", "a/c", "/a", "$SYS/x", "$SYS", "b", "a//b", "x/b/y"}
	b := newBroker(t, mqttcore.Config{})
	conns := make([]*mqttcore.Conn, len(filters))
	for i, f := range filters {
		c, _ := attach(t, b, persistent("c"+f))
		subscribe(t, c, f, mqttcore.SubOptions{})
		conns[i] = c
	}
	in := b.Inline("test")
	for _, topic := range topicsList {
		publish(t, in, topic, "x", 0, false)
		for i, f := range filters {
			got := topics(drain(conns[i]))
			want := []string(nil)
			if mqttcore.MatchFilter(f, topic) {
				want = []string{topic}
			}
			if !slices.Equal(got, want) {
				t.Errorf("filter %q, topic %q: delivered %q; want %q", f, topic, got, want)
			}
		}
	}
}

func TestOverlapDeliveredOnceAtMaxQoS(t *testing.T) {
	b := newBroker(t, mqttcore.Config{})
	c, _ := attach(t, b, persistent("c"))
	subscribe(t, c, "a/+", mqttcore.SubOptions{QoS: 0})
	subscribe(t, c, "a/#", mqttcore.SubOptions{QoS: 2})
	subscribe(t, c, "#", mqttcore.SubOptions{QoS: 1})
	publish(t, b.Inline("p"), "a/b", "x", 2, false)
	ds := drain(c)
	if len(ds) != 1 || ds[0].QoS != 2 {
		t.Fatalf("deliveries = %+v; want one at QoS 2", ds)
	}
}

func TestSharedSubscriptions(t *testing.T) {
	b := newBroker(t, mqttcore.Config{})
	var conns []*mqttcore.Conn
	for _, id := range []string{"m1", "m2", "m3"} {
		c, _ := attach(t, b, persistent(id))
		subscribe(t, c, "$share/g/s/+", mqttcore.SubOptions{QoS: 1})
		conns = append(conns, c)
	}
	other, _ := attach(t, b, persistent("other"))
	subscribe(t, other, "$share/h/s/#", mqttcore.SubOptions{})
	in := b.Inline("p")
	for i := 0; i < 6; i++ {
		publish(t, in, "s/x", "x", 1, false)
	}
	for i, c := range conns {
		if n := len(drain(c)); n != 2 {
			t.Errorf("member %d got %d of 6; want 2 (round robin)", i, n)
		}
	}
	if n := len(drain(other)); n != 6 {
		t.Errorf("group h's only member got %d; want 6", n)
	}
	// Offline members are skipped while an online one exists.
	if err := conns[0].Sleep(0); err != nil {
		t.Fatal(err)
	}
	if err := conns[1].Sleep(0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		publish(t, in, "s/x", "x", 1, false)
	}
	if n := len(drain(conns[2])); n != 4 {
		t.Errorf("only online member got %d of 4; want 4", n)
	}
	// The $ rule applies to the filter inside $share.
	c4, _ := attach(t, b, persistent("m4"))
	subscribe(t, c4, "$share/z/#", mqttcore.SubOptions{})
	publish(t, in, "$SYS/x", "x", 0, false)
	if n := len(drain(c4)); n != 0 {
		t.Errorf("$share/z/# got %d $SYS messages; want 0", n)
	}
}

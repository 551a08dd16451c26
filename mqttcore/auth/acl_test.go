package auth_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gannet-mqtt/gannet/mqttcore"
	"github.com/gannet-mqtt/gannet/mqttcore/auth"
)

// testACL exercises every rule kind.
const testACL = `# anonymous clients
topic read public/#
topic write public/anon/in

user alice
topic readwrite home/alice/#
topic read sensors/+/temp
topic write cmd/lights

user bob
topic read sensors/kitchen/+

client node-red
topic read $SYS/broker/#
topic write actuators/+/set

pattern write devices/%c/status
pattern read devices/%c/cmd/#
pattern readwrite users/%u/inbox
pattern read shared/%u/%c
pattern write fleet/dev-%c-%u/x
`

// testACLs returns testACL as written and padded with ten unrelated rules
// in every section, so that every section is indexed by first level: both
// must decide alike.
func testACLs(t testing.TB) map[string]*auth.ACL {
	t.Helper()
	var padded strings.Builder
	pad := func() {
		for i := range 10 {
			fmt.Fprintf(&padded, "topic readwrite zz%d/+/#\npattern readwrite pad/%%c/%d\n", i, i)
		}
	}
	pad()
	for _, line := range strings.Split(testACL, "\n") {
		padded.WriteString(line + "\n")
		if strings.HasPrefix(line, "user ") || strings.HasPrefix(line, "client ") {
			pad()
		}
	}
	acls := map[string]*auth.ACL{"plain": parseTestACL(t)}
	acl, err := auth.ParseACL(strings.NewReader(padded.String()), "padded.conf")
	if err != nil {
		t.Fatalf("ParseACL(padded) = %v", err)
	}
	acls["indexed"] = acl
	return acls
}

func parseTestACL(t testing.TB) *auth.ACL {
	t.Helper()
	acl, err := auth.ParseACL(strings.NewReader(testACL), "acl.conf")
	if err != nil {
		t.Fatalf("ParseACL = %v", err)
	}
	return acl
}

func TestACLPublish(t *testing.T) {
	for name, acl := range testACLs(t) {
		t.Run(name, func(t *testing.T) { testACLPublish(t, acl) })
	}
}

func testACLPublish(t *testing.T, acl *auth.ACL) {
	tests := []struct {
		name             string
		user, client, tp string
		want             bool
	}{
		{"anonymous write rule", "", "c1", "public/anon/in", true},
		{"anonymous read-only rule", "", "c1", "public/news", false},
		{"anonymous rules not for users", "bob", "c1", "public/anon/in", false},
		{"user readwrite #", "alice", "c1", "home/alice/lamp/on", true},
		{"user readwrite # parent", "alice", "c1", "home/alice", true},
		{"user readwrite other home", "alice", "c1", "home/bob/lamp", false},
		{"user read-only rule", "alice", "c1", "sensors/kitchen/temp", false},
		{"user write exact", "alice", "c1", "cmd/lights", true},
		{"user write exact, longer topic", "alice", "c1", "cmd/lights/x", false},
		{"other user's rule", "bob", "c1", "cmd/lights", false},
		{"unknown user", "carol", "c1", "cmd/lights", false},
		{"client rule +", "", "node-red", "actuators/valve/set", true},
		{"client rule + needs one level", "", "node-red", "actuators/set", false},
		{"client rule with username", "alice", "node-red", "actuators/valve/set", true},
		{"pattern %c", "", "s1", "devices/s1/status", true},
		{"pattern %c other client", "", "s1", "devices/s2/status", false},
		{"pattern %c read only", "", "s1", "devices/s1/cmd/reboot", false},
		{"pattern %u", "alice", "c1", "users/alice/inbox", true},
		{"pattern %u other user", "alice", "c1", "users/bob/inbox", false},
		{"pattern %u anonymous", "", "c1", "users//inbox", false},
		{"pattern %c with / in client id", "", "s1/x", "devices/s1/x/status", false},
		{"pattern %c with + in client id", "", "+", "devices/+/status", false},
		{"pattern %c with # in client id", "", "#", "devices/#/status", false},
		{"pattern %c with $ client id", "", "$SYS", "devices/$SYS/status", false},
		{"pattern within a level", "bob", "s1", "fleet/dev-s1-bob/x", true},
		{"pattern within a level, other client", "bob", "s2", "fleet/dev-s1-bob/x", false},
		{"pattern within a level, no user", "", "s1", "fleet/dev-s1-/x", false},
		{"pattern within a level, prefix only", "bob", "s1", "fleet/dev-s1-bobby/x", false},
		{"default deny", "alice", "c1", "elsewhere", false},
	}
	for _, tt := range tests {
		if got := acl.CanPublish(tt.user, tt.client, tt.tp); got != tt.want {
			t.Errorf("%s: CanPublish(%q, %q, %q) = %v; want %v", tt.name, tt.user, tt.client, tt.tp, got, tt.want)
		}
		if got := acl.Allow(tt.user, tt.client, mqttcore.ActionPublish, tt.tp); got != tt.want {
			t.Errorf("%s: Allow(%q, %q, publish, %q) = %v; want %v", tt.name, tt.user, tt.client, tt.tp, got, tt.want)
		}
	}
}

func TestACLSubscribe(t *testing.T) {
	for name, acl := range testACLs(t) {
		t.Run(name, func(t *testing.T) { testACLSubscribe(t, acl) })
	}
}

func testACLSubscribe(t *testing.T, acl *auth.ACL) {
	tests := []struct {
		name                 string
		user, client, filter string
		want                 bool
	}{
		{"anonymous exact under #", "", "c1", "public/news", true},
		{"anonymous same filter", "", "c1", "public/#", true},
		{"anonymous + under #", "", "c1", "public/+/x", true},
		{"anonymous parent of #", "", "c1", "public", true},
		{"anonymous wider filter", "", "c1", "#", false},
		{"anonymous write-only rule", "", "c1", "public/anon/in", true}, // covered by read public/#
		{"user + rule, exact", "alice", "c1", "sensors/kitchen/temp", true},
		{"user + rule, same +", "alice", "c1", "sensors/+/temp", true},
		{"user + rule, # not covered", "alice", "c1", "sensors/#", false},
		{"user + rule, # at + level", "alice", "c1", "sensors/#/temp", false},
		{"user + rule, deeper", "alice", "c1", "sensors/kitchen/temp/x", false},
		{"user + rule, shorter", "alice", "c1", "sensors/kitchen", false},
		{"user write-only rule", "alice", "c1", "cmd/lights", false},
		{"user readwrite #", "alice", "c1", "home/alice/+/on", true},
		{"bob trailing +", "bob", "c1", "sensors/kitchen/+", true},
		{"bob trailing + vs #", "bob", "c1", "sensors/kitchen/#", false},
		{"client $SYS", "", "node-red", "$SYS/broker/clients/connected", true},
		{"$ topic needs a literal rule", "alice", "c1", "$SYS/broker/uptime", false},
		{"pattern %c #", "", "s1", "devices/s1/cmd/+", true},
		{"pattern %c + in filter", "", "s1", "devices/+/cmd/reboot", false},
		{"pattern %u and %c", "alice", "c7", "shared/alice/c7", true},
		{"pattern %u and %c swapped", "alice", "c7", "shared/c7/alice", false},
		{"pattern %u + username", "+", "c7", "shared/+/c7", false},
		{"shared subscription", "bob", "c1", "$share/g1/sensors/kitchen/temp", true},
		{"shared subscription not covered", "bob", "c1", "$share/g1/sensors/#", false},
		{"shared subscription malformed", "bob", "c1", "$share/g1", false},
		{"shared subscription empty group", "bob", "c1", "$share//sensors/kitchen/temp", false},
		{"default deny", "carol", "c1", "anything", false},
	}
	for _, tt := range tests {
		if got := acl.CanSubscribe(tt.user, tt.client, tt.filter); got != tt.want {
			t.Errorf("%s: CanSubscribe(%q, %q, %q) = %v; want %v", tt.name, tt.user, tt.client, tt.filter, got, tt.want)
		}
		if got := acl.Allow(tt.user, tt.client, mqttcore.ActionSubscribe, tt.filter); got != tt.want {
			t.Errorf("%s: Allow(%q, %q, subscribe, %q) = %v; want %v", tt.name, tt.user, tt.client, tt.filter, got, tt.want)
		}
	}
}

// TestACLRead checks CanRead (and Allow(ActionRead)): a rule with read
// access matching the topic name, for each delivered message.
func TestACLRead(t *testing.T) {
	for name, acl := range testACLs(t) {
		for _, tt := range []struct {
			user, client, topic string
			want                bool
		}{
			{"", "c1", "public/news", true},
			{"", "c1", "public", true},
			{"", "c1", "private/news", false},
			{"alice", "c1", "sensors/kitchen/temp", true},
			{"alice", "c1", "sensors/kitchen/humidity", false},
			{"alice", "c1", "cmd/lights", false}, // write only
			{"bob", "c1", "sensors/kitchen/temp", true},
			{"", "node-red", "$SYS/broker/uptime", true},
			{"alice", "c1", "$SYS/broker/uptime", false},
			{"", "s1", "devices/s1/cmd/reboot", true},
			{"", "s1", "devices/s2/cmd/reboot", false},
			{"", "s1", "devices/s1/status", false}, // write only
		} {
			if got := acl.CanRead(tt.user, tt.client, tt.topic); got != tt.want {
				t.Errorf("%s: CanRead(%q, %q, %q) = %v; want %v", name, tt.user, tt.client, tt.topic, got, tt.want)
			}
			if got := acl.Allow(tt.user, tt.client, mqttcore.ActionRead, tt.topic); got != tt.want {
				t.Errorf("%s: Allow(%q, %q, read, %q) = %v; want %v", name, tt.user, tt.client, tt.topic, got, tt.want)
			}
		}
		if acl.Allow("alice", "c1", mqttcore.Action(0), "home/alice/x") {
			t.Errorf("%s: Allow with an unknown action = true; want false", name)
		}
	}
}

// TestACLHashRuleAndDollar checks the $-topic rule for a catch-all rule.
func TestACLHashRuleAndDollar(t *testing.T) {
	acl, err := auth.ParseACL(strings.NewReader("pattern #\n"), "all")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		s       string
		pub     bool
		sub     bool
		comment string
	}{
		{"a/b", true, true, "everything"},
		{"#", false, true, "the filter # is covered by the rule #"},
		{"$SYS/x", false, false, "a rule starting with # does not reach $ topics"},
		{"$SYS/#", false, false, "nor $ filters"},
	} {
		if tt.s[len(tt.s)-1] != '#' {
			if got := acl.CanPublish("u", "c", tt.s); got != tt.pub {
				t.Errorf("CanPublish(%q) = %v; want %v (%s)", tt.s, got, tt.pub, tt.comment)
			}
		}
		if got := acl.CanSubscribe("u", "c", tt.s); got != tt.sub {
			t.Errorf("CanSubscribe(%q) = %v; want %v (%s)", tt.s, got, tt.sub, tt.comment)
		}
	}
}

func TestParseACLRefuses(t *testing.T) {
	tests := []struct {
		name, line, want string
	}{
		{"unknown directive", "topics read a", "unknown directive"},
		{"deny", "topic deny a/b", "deny rules are not supported"},
		{"user without name", "user", "without a name"},
		{"client without name", "client   ", "without a name"},
		{"missing filter", "topic", "missing topic filter"},
		{"# not last", "topic read a/#/b", "'#' must be the last level"},
		{"partial +", "topic read a/b+", "whole level"},
		{"partial #", "topic read a#", "whole level"},
		{"%u in topic line", "topic read users/%u", "only in pattern lines"},
		{"partial %c in topic line", "topic read users/%c-x", "only in pattern lines"},
		{"NUL", "topic read a\x00b", "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := auth.ParseACL(strings.NewReader("# acl\n\n"+tt.line+"\n"), "acl.conf")
			if err == nil {
				t.Fatalf("ParseACL(%q) = nil error; want one", tt.line)
			}
			if msg := err.Error(); !strings.Contains(msg, "acl.conf line 3") || !strings.Contains(msg, tt.want) {
				t.Errorf("ParseACL(%q) error %q; want it to name acl.conf line 3 and say %q", tt.line, msg, tt.want)
			}
		})
	}
}

// TestACLDefaultAccessAndRepeatedSection checks that access defaults to
// readwrite, a filter may contain spaces, and a section named twice keeps
// the rules of both.
func TestACLDefaultAccessAndRepeatedSection(t *testing.T) {
	acl, err := auth.ParseACL(strings.NewReader("user u\ntopic a/b c\nuser v\ntopic x\nuser u\ntopic write d\n"), "f")
	if err != nil {
		t.Fatal(err)
	}
	if !acl.CanPublish("u", "c", "a/b c") || !acl.CanSubscribe("u", "c", "a/b c") {
		t.Error("topic without access keyword: want readwrite on a filter with a space")
	}
	if !acl.CanPublish("u", "c", "d") || acl.CanSubscribe("u", "c", "d") {
		t.Error("second user u section: want write-only d")
	}
	if acl.CanPublish("u", "c", "x") {
		t.Error("user u got user v's rule")
	}
}

func TestACLDoesNotAllocate(t *testing.T) {
	acl := testACLs(t)["indexed"]
	checks := []struct {
		name string
		f    func() bool
	}{
		{"CanPublish user", func() bool { return acl.CanPublish("alice", "c1", "home/alice/lamp/on") }},
		{"CanPublish pattern", func() bool { return acl.CanPublish("", "s1", "devices/s1/status") }},
		{"CanPublish denied", func() bool { return !acl.CanPublish("carol", "c9", "a/b/c/d/e") }},
		{"CanSubscribe user", func() bool { return acl.CanSubscribe("alice", "c1", "sensors/+/temp") }},
		{"CanSubscribe shared", func() bool { return acl.CanSubscribe("bob", "c1", "$share/g/sensors/kitchen/temp") }},
		{"CanRead", func() bool { return acl.CanRead("alice", "c1", "sensors/kitchen/temp") }},
		{"Allow template", func() bool { return acl.Allow("bob", "s1", mqttcore.ActionPublish, "fleet/dev-s1-bob/x") }},
	}
	for _, c := range checks {
		if !c.f() {
			t.Errorf("%s: unexpected result", c.name)
		}
		if n := testing.AllocsPerRun(100, func() { c.f() }); n != 0 {
			t.Errorf("%s allocates %v times per call; want 0", c.name, n)
		}
	}
}

func BenchmarkCanPublish(b *testing.B) {
	acl := parseTestACL(b)
	b.ReportAllocs()
	for b.Loop() {
		if !acl.CanPublish("alice", "c1", "home/alice/lamp/on") {
			b.Fatal("denied")
		}
	}
}

func BenchmarkCanPublishPattern(b *testing.B) {
	acl := parseTestACL(b)
	b.ReportAllocs()
	for b.Loop() {
		if !acl.CanPublish("alice", "s1", "devices/s1/status") {
			b.Fatal("denied")
		}
	}
}

func BenchmarkCanSubscribe(b *testing.B) {
	acl := parseTestACL(b)
	b.ReportAllocs()
	for b.Loop() {
		if !acl.CanSubscribe("alice", "c1", "sensors/+/temp") {
			b.Fatal("denied")
		}
	}
}

// fleetACL returns a 1,000-line ACL: 98 pattern lines, a subscriber "app"
// that reads sensors/#, and for each of 100 sensors a user line and eight
// topic lines (the same file as the gateway's BenchmarkACLPublish100Sensors).
func fleetACL(tb testing.TB) *auth.ACL {
	tb.Helper()
	var b strings.Builder
	lines := 0
	for i := range 98 {
		fmt.Fprintf(&b, "pattern write area%d/%%c/#\n", i)
		lines++
	}
	b.WriteString("user app\ntopic read sensors/#\n")
	lines += 2
	for i := range 100 {
		id := fmt.Sprintf("sensor-%03d", i)
		fmt.Fprintf(&b, "user %s\n", id)
		for _, r := range []string{
			"read cmd/%s/#", "write status/%s", "write alarms/%s/+", "read config/%s",
			"write sensors/%s/battery", "write sensors/%s/rssi", "write sensors/%s/data", "read time/%s",
		} {
			fmt.Fprintf(&b, "topic "+r+"\n", id)
		}
		lines += 9
	}
	for ; lines < 1000; lines++ {
		fmt.Fprintf(&b, "pattern read pad%d/%%c\n", lines)
	}
	if n := strings.Count(b.String(), "\n"); n != 1000 {
		tb.Fatalf("fleet ACL has %d lines; want 1000", n)
	}
	acl, err := auth.ParseACL(strings.NewReader(b.String()), "fleet")
	if err != nil {
		tb.Fatal(err)
	}
	return acl
}

// BenchmarkACL1000LinesPerMessage is what a 1,000-line ACL adds to one
// message from one of 100 sensors to one subscriber: the publish check
// and the read check of the delivery.
func BenchmarkACL1000LinesPerMessage(b *testing.B) {
	acl := fleetACL(b)
	var users, topics [100]string
	for i := range users {
		users[i] = fmt.Sprintf("sensor-%03d", i)
		topics[i] = "sensors/" + users[i] + "/data"
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		u, tp := users[i%100], topics[i%100]
		if !acl.Allow(u, u, mqttcore.ActionPublish, tp) || !acl.Allow("app", "app", mqttcore.ActionRead, tp) {
			b.Fatal("denied")
		}
		i++
	}
}

package auth_test

import (
	"strings"
	"testing"

	"github.com/gannet-mqtt/gannet/mqttcore/auth"
)

// refMatch is a plain reference implementation of MQTT topic matching,
// including the $-topic rule [MQTT-4.7.2-1].
func refMatch(filter, topic string) bool {
	f, t := strings.Split(filter, "/"), strings.Split(topic, "/")
	if strings.HasPrefix(topic, "$") && (f[0] == "+" || f[0] == "#") {
		return false
	}
	for i, fl := range f {
		if fl == "#" {
			return true
		}
		if i >= len(t) || (fl != "+" && fl != t[i]) {
			return false
		}
	}
	return len(f) == len(t)
}

// validFilter reports whether f is a valid MQTT topic filter.
func validFilter(f string) bool {
	if f == "" {
		return false
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if (l == "#" && i != len(levels)-1) || (l != "#" && l != "+" && strings.ContainsAny(l, "+#")) {
			return false
		}
	}
	return true
}

// FuzzACLSubscribe checks the ACL against the reference matcher: publish
// permission is exactly "the rule matches the topic"; a subscription allowed
// by the covering rule never matches a topic the rule does not (soundness);
// and for a filter without wildcards, subscribe permission is exactly "the
// rule matches it".
func FuzzACLSubscribe(f *testing.F) {
	seeds := [][3]string{
		{"sensors/+/temp", "sensors/#", "sensors/a/temp"},
		{"sensors/+/temp", "sensors/+/temp", "sensors/x/temp"},
		{"a/#", "a", "a"},
		{"a/#", "a/+/#", "a/b"},
		{"#", "$SYS/#", "$SYS/x"},
		{"$SYS/#", "$SYS/+", "$SYS/x"},
		{"+/+", "+/#", "a"},
		{"devices/%c/#", "devices/c1/+", "devices/c1/x"},
		{"users/%u/+", "users/+/x", "users/u1/x"},
		{"d/x%c%u-%%c/#", "d/xc1u1-%c1/+", "d/xc1u1-%c1/a"},
		{"+", "", "/"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, rule, filter, topic string) {
		if rule == "" || strings.ContainsAny(rule, "\r\n") || strings.TrimSpace(rule) != rule || strings.HasPrefix(filter, "$share/") {
			return
		}
		acl, err := auth.ParseACL(strings.NewReader("pattern readwrite "+rule+"\n"), "fuzz")
		if err != nil {
			return
		}
		subst := strings.NewReplacer("%u", "u1", "%c", "c1").Replace(rule)
		if topic != "" && !strings.ContainsAny(topic, "+#") {
			if got, want := acl.CanPublish("u1", "c1", topic), refMatch(subst, topic); got != want {
				t.Fatalf("rule %q: CanPublish(%q) = %v; reference says %v", rule, topic, got, want)
			}
		}
		if !validFilter(filter) {
			return
		}
		allowed := acl.CanSubscribe("u1", "c1", filter)
		if allowed && topic != "" && !strings.ContainsAny(topic, "+#") && refMatch(filter, topic) && !refMatch(subst, topic) {
			t.Fatalf("rule %q allows subscribing to %q, which matches %q, which the rule does not match", rule, filter, topic)
		}
		if !strings.ContainsAny(filter, "+#") && allowed != refMatch(subst, filter) {
			t.Fatalf("rule %q: CanSubscribe(%q) = %v; the rule matching it says %v", rule, filter, allowed, !allowed)
		}
	})
}

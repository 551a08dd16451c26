package mqttcore

import (
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// TestNodeSize keeps a topic-tree node in the 80-byte size class: every
// sleeping sensor's own topic is one node, and the sensor's whole budget is
// 1 KiB (DEVELOPERS.md). The wildcard children, share groups and child map
// live behind node.rare.
func TestNodeSize(t *testing.T) {
	const budget = 80
	if n := unsafe.Sizeof(node{}); n > budget {
		t.Errorf("sizeof(node) = %d bytes; budget %d", n, budget)
	}
}

// TestNodeRareLifecycle: a node gets its rare part with its first wildcard
// child, share group or child map, and loses it (and the tree its nodes)
// when the last of them goes, so a sensor's node that once had a wildcard
// sibling filter costs no more than one that never had.
func TestNodeRareLifecycle(t *testing.T) {
	tr := &tree{}
	sub := func(f string) *subscription { return &subscription{inl: &inlineSub{name: "x"}, filter: f} }
	own := sub("s/1/cmd")
	tr.insert(own, "s/1/cmd", "")
	s := tr.root.child("s")
	if s == nil || s.rare != nil {
		t.Fatalf("after an exact filter: node s = %+v; want one without rare", s)
	}

	cases := []struct {
		name   string
		filter string
		group  string
		has    func(r *nodeRare) bool
	}{
		{"plus", "s/+/cmd", "", func(r *nodeRare) bool { return r.plus != nil }},
		{"hash", "s/#", "", func(r *nodeRare) bool { return r.hash != nil }},
	}
	for _, c := range cases {
		w := sub(c.filter)
		tr.insert(w, c.filter, c.group)
		if s.rare == nil || !c.has(s.rare) {
			t.Fatalf("%s: after inserting %q node s.rare = %+v; want it set", c.name, c.filter, s.rare)
		}
		if got := tr.match("s/1/cmd", nil); len(got) != 2 {
			t.Errorf("%s: match(s/1/cmd) = %d hits; want 2", c.name, len(got))
		}
		tr.remove(w)
		if s.rare != nil {
			t.Errorf("%s: after removing %q node s.rare = %+v; want nil", c.name, c.filter, s.rare)
		}
	}

	// A share group on the sensor's own node.
	own2 := sub("$share/g/s/1/cmd")
	tr.insert(own2, "s/1/cmd", "g")
	n1 := s.child("1").child("cmd")
	if n1.rare == nil || len(n1.rare.groups) != 1 {
		t.Fatalf("after a shared subscription: node cmd rare = %+v; want one group", n1.rare)
	}
	if got := tr.match("s/1/cmd", nil); len(got) != 2 {
		t.Errorf("with a share group: match(s/1/cmd) = %d hits; want 2", len(got))
	}
	tr.remove(own2)
	if n1.rare != nil {
		t.Errorf("after removing the shared subscription: node cmd rare = %+v; want nil", n1.rare)
	}

	// Enough siblings for a child map, then all removed again: back to
	// the slice, and no rare part.
	var many []*subscription
	for i := range 2 * maxKidSlice {
		f := "s/" + strconv.Itoa(100+i) + "/cmd"
		m := sub(f)
		tr.insert(m, f, "")
		many = append(many, m)
	}
	if s.rare == nil || s.rare.kidMap == nil || s.kids != nil {
		t.Fatalf("with %d children: node s kids = %d, rare = %+v; want a child map", 2*maxKidSlice+1, len(s.kids), s.rare)
	}
	if got := tr.match("s/107/cmd", nil); len(got) != 1 {
		t.Errorf("with a child map: match(s/107/cmd) = %d hits; want 1", len(got))
	}
	for _, m := range many {
		tr.remove(m)
	}
	if s.rare != nil {
		t.Errorf("after removing the siblings: node s.rare = %+v; want nil", s.rare)
	}
	if got := tr.match("s/1/cmd", nil); len(got) != 1 || got[0].sub != own {
		t.Errorf("at the end: match(s/1/cmd) = %v; want only the sensor's own subscription", got)
	}
	tr.remove(own)
	if !tr.root.empty() || tr.n != 0 {
		t.Errorf("after removing everything: root = %+v, n = %d; want an empty tree", tr.root, tr.n)
	}
}

// TestNodeNameShared: a node that a short filter creates names itself by a
// substring of the subscription's filter (no copy per level); for a filter
// longer than maxAliasedFilter it keeps a copy, so a node that outlives its
// subscription never keeps a long filter alive.
func TestNodeNameShared(t *testing.T) {
	within := func(s, in string) bool {
		p, b := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(in)))
		return p >= b && p < b+uintptr(len(in))
	}
	tr := &tree{}
	short := &subscription{inl: &inlineSub{name: "x"}, filter: "$share/g/cmd/sensor-000001"}
	tr.insert(short, "cmd/sensor-000001", "g")
	n := short.node
	if n.name != "sensor-000001" || !within(n.name, short.filter) || !within(n.parent.name, short.filter) {
		t.Errorf("short filter: node names %q, %q do not share the subscription's filter", n.parent.name, n.name)
	}
	long := "cmd/" + strings.Repeat("x", maxAliasedFilter)
	ls := &subscription{inl: &inlineSub{name: "x"}, filter: strings.Clone(long)}
	tr.insert(ls, long, "")
	if within(ls.node.name, ls.filter) || ls.node.name != long[4:] {
		t.Errorf("long filter: node name shares the subscription's filter; want a copy")
	}
	if got := tr.match("cmd/sensor-000001", nil); len(got) != 1 || got[0].sub != short {
		t.Errorf("match(cmd/sensor-000001) = %v; want the shared subscription", got)
	}
}

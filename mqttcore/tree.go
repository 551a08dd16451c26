package mqttcore

import (
	"strings"
	"sync"
	"sync/atomic"
)

// maxKidSlice is how many children a node keeps in a slice before it
// switches to a map: most nodes (a sensor's own topic) have one child.
const maxKidSlice = 8

// tree indexes subscriptions by filter level. mu guards every node, every
// subscription's mutable fields and every subscriber's list of subscriptions.
type tree struct {
	mu   sync.RWMutex
	root node
	n    int // subscriptions in the tree
}

// node is one filter level. It is 80 bytes (a size class of its own):
// a sleeping sensor's own topic is one node, so its size is part of every
// sensor's memory budget. What most nodes never have (wildcard children,
// share groups, a child map) is behind rare.
type node struct {
	parent *node
	name   string
	kids   []*node         // exact-level children while few
	subs   []*subscription // non-shared subscriptions ending here
	rare   *nodeRare       // nil while all its fields are zero
}

// nodeRare holds a node's seldom-used fields. A node's rare is set when one
// of them is first needed and cleared again when all are zero (prune).
type nodeRare struct {
	kidMap map[string]*node // exact-level children once more than maxKidSlice (kids is then nil), until maxKidSlice/2
	plus   *node            // "+" child
	hash   *node            // "#" child
	groups []*shareGroup    // shared subscriptions ending here
}

// more returns n.rare, creating it.
func (n *node) more() *nodeRare {
	if n.rare == nil {
		n.rare = &nodeRare{}
	}
	return n.rare
}

// prune drops n.rare when it holds nothing.
func (n *node) prune() {
	if r := n.rare; r != nil && r.plus == nil && r.hash == nil && len(r.groups) == 0 && len(r.kidMap) == 0 {
		n.rare = nil
	}
}

// shareGroup is one $share group on one filter.
type shareGroup struct {
	name string
	subs []*subscription
	next atomic.Uint32 // round-robin cursor, advanced under the read lock
}

// child returns the exact-level child called name, or nil.
func (n *node) child(name string) *node {
	if r := n.rare; r != nil && r.kidMap != nil {
		return r.kidMap[name]
	}
	for _, k := range n.kids {
		if k.name == name {
			return k
		}
	}
	return nil
}

// maxAliasedFilter is the longest subscription filter whose levels a new
// node names by a substring of the subscription's own copy instead of a
// copy of its own. A node may outlive the subscription that made it and
// then keeps that whole filter alive; up to this length that costs less
// than a node, and it saves a sleeping sensor the copy of its own level.
const maxAliasedFilter = 128

// childFor returns the child for a filter level, creating it; owned says
// level may be kept as it is (it is part of a subscription's filter of at
// most maxAliasedFilter octets), else a new child gets a copy.
func (n *node) childFor(level string, owned bool) *node {
	switch level {
	case "+":
		r := n.more()
		if r.plus == nil {
			r.plus = &node{parent: n, name: "+"} // a constant: keeps no caller's filter alive
		}
		return r.plus
	case "#":
		r := n.more()
		if r.hash == nil {
			r.hash = &node{parent: n, name: "#"} // a constant: keeps no caller's filter alive
		}
		return r.hash
	}
	if k := n.child(level); k != nil {
		return k
	}
	if !owned {
		level = strings.Clone(level)
	}
	k := &node{parent: n, name: level}
	if r := n.rare; r != nil && r.kidMap != nil {
		r.kidMap[k.name] = k
		return k
	}
	if len(n.kids) < maxKidSlice {
		n.kids = append(n.kids, k)
		return k
	}
	r := n.more()
	r.kidMap = make(map[string]*node, 2*maxKidSlice)
	for _, c := range n.kids {
		r.kidMap[c.name] = c
	}
	n.kids = nil
	r.kidMap[k.name] = k
	return k
}

// empty reports whether n holds nothing and can be pruned.
func (n *node) empty() bool {
	return len(n.subs) == 0 && len(n.kids) == 0 && n.rare == nil
}

// removeChild unlinks the empty child k.
func (n *node) removeChild(k *node) {
	r := n.rare
	switch {
	case r != nil && r.plus == k:
		r.plus = nil
		n.prune()
	case r != nil && r.hash == k:
		r.hash = nil
		n.prune()
	case r != nil && r.kidMap != nil:
		delete(r.kidMap, k.name)
		if len(r.kidMap) <= maxKidSlice/2 {
			// Back to the slice, with room to grow before the map is
			// needed again (no switching back and forth at the limit).
			n.kids = make([]*node, 0, len(r.kidMap))
			for _, c := range r.kidMap {
				n.kids = append(n.kids, c)
			}
			if len(n.kids) == 0 {
				n.kids = nil
			}
			r.kidMap = nil
			n.prune()
		}
	default:
		for i, c := range n.kids {
			if c == k {
				last := len(n.kids) - 1
				n.kids[i] = n.kids[last]
				n.kids[last] = nil
				n.kids = n.kids[:last]
				if len(n.kids) == 0 {
					n.kids = nil
				}
				break
			}
		}
	}
}

// insert adds sub for the (non-shared part of the) filter; group is "" for
// a plain subscription. The caller holds mu for writing.
func (t *tree) insert(sub *subscription, filter, group string) {
	owned := false
	if len(sub.filter) <= maxAliasedFilter && strings.HasSuffix(sub.filter, filter) {
		// The levels are those of sub.filter (after any $share/group/):
		// new nodes may name themselves by its substrings.
		filter, owned = sub.filter[len(sub.filter)-len(filter):], true
	}
	n := &t.root
	for {
		level, rest, more := cut(filter)
		n = n.childFor(level, owned)
		if !more {
			break
		}
		filter = rest
	}
	sub.node = n
	if group == "" {
		sub.idx = int32(len(n.subs))
		n.subs = append(n.subs, sub)
	} else {
		r := n.more()
		var g *shareGroup
		for _, x := range r.groups {
			if x.name == group {
				g = x
				break
			}
		}
		if g == nil {
			g = &shareGroup{name: strings.Clone(group)}
			r.groups = append(r.groups, g)
		}
		sub.group = g
		sub.idx = int32(len(g.subs))
		g.subs = append(g.subs, sub)
	}
	t.n++
}

// remove takes sub out of the tree and prunes empty nodes. The caller holds
// mu for writing.
func (t *tree) remove(sub *subscription) {
	n := sub.node
	if n == nil {
		return
	}
	if g := sub.group; g != nil {
		g.subs = swapDelete(g.subs, int(sub.idx))
		if r := n.rare; len(g.subs) == 0 && r != nil {
			for i, x := range r.groups {
				if x == g {
					r.groups = append(r.groups[:i], r.groups[i+1:]...)
					break
				}
			}
			if len(r.groups) == 0 {
				r.groups = nil
				n.prune()
			}
		}
	} else {
		n.subs = swapDelete(n.subs, int(sub.idx))
	}
	sub.node, sub.group = nil, nil
	t.n--
	for n != &t.root && n.empty() {
		p := n.parent
		p.removeChild(n)
		n = p
	}
}

// swapDelete removes s[i] by moving the last element into its place and
// fixing that element's index.
func swapDelete(s []*subscription, i int) []*subscription {
	last := len(s) - 1
	if i != last {
		s[i] = s[last]
		s[i].idx = int32(i)
	}
	s[last] = nil
	s = s[:last]
	if len(s) == 0 {
		return nil
	}
	return s
}

// match appends to out every subscription matching topic: all non-shared
// ones, and for each share group one member (round robin, preferring
// online members). The caller holds mu for reading. It does not allocate
// beyond growing out.
func (t *tree) match(topic string, out []hit) []hit {
	dollar := topic != "" && topic[0] == '$'
	return t.root.match(topic, 0, !dollar, out)
}

// match walks n with topic[start:] left to match (start == len(topic)+1
// once every level is consumed). wild is false at the root of a $ topic.
func (n *node) match(topic string, start int, wild bool, out []hit) []hit {
	r := n.rare
	if start > len(topic) {
		out = n.collect(out)
		if r != nil && r.hash != nil {
			// "a/#" also matches "a".
			out = r.hash.collect(out)
		}
		return out
	}
	end := strings.IndexByte(topic[start:], '/')
	if end < 0 {
		end = len(topic)
	} else {
		end += start
	}
	if wild && r != nil && r.hash != nil {
		out = r.hash.collect(out)
	}
	if k := n.child(topic[start:end]); k != nil {
		out = k.match(topic, end+1, true, out)
	}
	if wild && r != nil && r.plus != nil {
		out = r.plus.match(topic, end+1, true, out)
	}
	return out
}

// collect appends n's subscriptions and one member of each share group.
func (n *node) collect(out []hit) []hit {
	for _, s := range n.subs {
		out = append(out, hit{sub: s, opts: s.opts})
	}
	if n.rare == nil {
		return out
	}
	for _, g := range n.rare.groups {
		if s := g.pick(); s != nil {
			out = append(out, hit{sub: s, opts: s.opts, shared: true})
		}
	}
	return out
}

// pick chooses the group member for one message: the next online member in
// round-robin order, or the next member if none is online.
func (g *shareGroup) pick() *subscription {
	n := len(g.subs)
	if n == 0 {
		return nil
	}
	start := int(g.next.Add(1)-1) % n
	for i := 0; i < n; i++ {
		if s := g.subs[(start+i)%n]; s.online() {
			return s
		}
	}
	return g.subs[start]
}

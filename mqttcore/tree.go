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

// node is one filter level.
type node struct {
	parent *node
	name   string
	kids   []*node          // exact-level children while few
	kidMap map[string]*node // exact-level children once many
	plus   *node            // "+" child
	hash   *node            // "#" child
	subs   []*subscription  // non-shared subscriptions ending here
	groups []*shareGroup    // shared subscriptions ending here
}

// shareGroup is one $share group on one filter.
type shareGroup struct {
	name string
	subs []*subscription
	next atomic.Uint32 // round-robin cursor, advanced under the read lock
}

// child returns the exact-level child called name, or nil.
func (n *node) child(name string) *node {
	if n.kidMap != nil {
		return n.kidMap[name]
	}
	for _, k := range n.kids {
		if k.name == name {
			return k
		}
	}
	return nil
}

// childFor returns the child for a filter level, creating it.
func (n *node) childFor(level string) *node {
	switch level {
	case "+":
		if n.plus == nil {
			n.plus = &node{parent: n, name: level}
		}
		return n.plus
	case "#":
		if n.hash == nil {
			n.hash = &node{parent: n, name: level}
		}
		return n.hash
	}
	if k := n.child(level); k != nil {
		return k
	}
	k := &node{parent: n, name: strings.Clone(level)}
	if n.kidMap != nil {
		n.kidMap[k.name] = k
		return k
	}
	if len(n.kids) < maxKidSlice {
		n.kids = append(n.kids, k)
		return k
	}
	n.kidMap = make(map[string]*node, 2*maxKidSlice)
	for _, c := range n.kids {
		n.kidMap[c.name] = c
	}
	n.kids = nil
	n.kidMap[k.name] = k
	return k
}

// empty reports whether n holds nothing and can be pruned.
func (n *node) empty() bool {
	return len(n.subs) == 0 && len(n.groups) == 0 && n.plus == nil && n.hash == nil &&
		len(n.kids) == 0 && len(n.kidMap) == 0
}

// removeChild unlinks the empty child k.
func (n *node) removeChild(k *node) {
	switch {
	case n.plus == k:
		n.plus = nil
	case n.hash == k:
		n.hash = nil
	case n.kidMap != nil:
		delete(n.kidMap, k.name)
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
	n := &t.root
	for {
		level, rest, more := cut(filter)
		n = n.childFor(level)
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
		var g *shareGroup
		for _, x := range n.groups {
			if x.name == group {
				g = x
				break
			}
		}
		if g == nil {
			g = &shareGroup{name: strings.Clone(group)}
			n.groups = append(n.groups, g)
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
		if len(g.subs) == 0 {
			for i, x := range n.groups {
				if x == g {
					n.groups = append(n.groups[:i], n.groups[i+1:]...)
					break
				}
			}
			if len(n.groups) == 0 {
				n.groups = nil
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
	if start > len(topic) {
		out = n.collect(out)
		if n.hash != nil {
			// "a/#" also matches "a".
			out = n.hash.collect(out)
		}
		return out
	}
	end := strings.IndexByte(topic[start:], '/')
	if end < 0 {
		end = len(topic)
	} else {
		end += start
	}
	if wild && n.hash != nil {
		out = n.hash.collect(out)
	}
	if k := n.child(topic[start:end]); k != nil {
		out = k.match(topic, end+1, true, out)
	}
	if wild && n.plus != nil {
		out = n.plus.match(topic, end+1, true, out)
	}
	return out
}

// collect appends n's subscriptions and one member of each share group.
func (n *node) collect(out []hit) []hit {
	for _, s := range n.subs {
		out = append(out, hit{sub: s, opts: s.opts})
	}
	for _, g := range n.groups {
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

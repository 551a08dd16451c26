package listener

import (
	"fmt"
	"testing"
)

func TestAliasTable(t *testing.T) {
	var tab aliasTable
	if a, known := tab.lookup("x"); a != 0 || known {
		t.Fatalf("lookup with aliases off = %d, %v; want 0, false", a, known)
	}
	tab.init(2)
	steps := []struct {
		topic string
		alias uint16
		known bool
	}{
		{"a", 1, false}, {"a", 1, true}, {"b", 2, false}, {"b", 2, true}, {"a", 1, true},
		{"c", 1, false}, // table full: alias 1 (assigned first) is reassigned
		{"a", 2, false}, // then alias 2
		{"c", 1, true}, {"a", 2, true}, {"b", 1, false},
	}
	for i, s := range steps {
		if a, known := tab.lookup(s.topic); a != s.alias || known != s.known {
			t.Fatalf("step %d: lookup(%q) = %d, %v; want %d, %v", i, s.topic, a, known, s.alias, s.known)
		}
	}
	if len(tab.byName) != 2 {
		t.Errorf("table holds %d topics; want at most 2", len(tab.byName))
	}
	// An assignment whose PUBLISH was not sent is forgotten: the next
	// lookup assigns again and sends the topic.
	a, _ := tab.lookup("d")
	tab.forget("d", a)
	if a2, known := tab.lookup("d"); known {
		t.Errorf("lookup after forget = %d, known; want a fresh assignment", a2)
	}
}

// TestAliasTableLookupAllocs: the hot path (a known topic) allocates nothing.
func TestAliasTableLookupAllocs(t *testing.T) {
	var tab aliasTable
	tab.init(16)
	topics := make([]string, 16)
	for i := range topics {
		topics[i] = fmt.Sprintf("sensors/%d/temp", i)
		tab.lookup(topics[i])
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		if _, known := tab.lookup(topics[i%len(topics)]); !known {
			t.Fatal("known topic not found")
		}
		i++
	})
	if allocs != 0 {
		t.Errorf("lookup of a known topic: %v allocations; want 0", allocs)
	}
}

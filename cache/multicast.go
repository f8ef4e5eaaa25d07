package cache

import (
	"net/netip"

	"github.com/gaissmai/bart"
)

// mcTable is the immutable multicast shard of one instance-ID and family: a
// trie of G-prefixes whose nodes hold a trie of S-prefixes. It is rebuilt as
// a whole by the writer when a batch changes any multicast entry of the
// shard (multicast entries are few compared with unicast ones).
type mcTable struct {
	groups *bart.Fast[*groupNode]
}

// groupNode holds the entries of one G-prefix.
type groupNode struct {
	src    *table     // (S,G) entries by S-prefix; nil if none
	star   slot       // (*,G) entry of this G-prefix or of the nearest covering one
	parent *groupNode // nearest covering G-prefix that has (S,G) entries
	own    slot       // (*,G) entry of exactly this G-prefix
}

func (m *mcTable) lookup(src, group netip.Addr) (slot, bool) {
	if m.groups == nil {
		return slot{}, false
	}
	g, ok := m.groups.Lookup(group)
	if !ok {
		return slot{}, false
	}
	for n := g; n != nil; n = n.parent {
		if n.src != nil {
			if v, ok := n.src.Lookup(src); ok {
				return v, true
			}
		}
	}
	return g.star, g.star.e != nil
}

func (m *mcTable) walk(fn func(*Entry) bool) bool {
	if m.groups == nil {
		return true
	}
	for _, n := range m.groups.All() {
		if n.own.e != nil && !fn(n.own.e) {
			return false
		}
		if n.src != nil {
			for _, v := range n.src.All() {
				if !fn(v.e) {
					return false
				}
			}
		}
	}
	return true
}

// buildMC builds a fresh multicast shard from the writer's list.
func buildMC(all map[Key]*Entry) *mcTable {
	if len(all) == 0 {
		return &mcTable{}
	}
	nodes := make(map[netip.Prefix]*groupNode)
	for k, e := range all {
		n := nodes[k.Group]
		if n == nil {
			n = &groupNode{}
			nodes[k.Group] = n
		}
		if !k.Prefix.IsValid() {
			n.own = slotOf(e)
			continue
		}
		if n.src == nil {
			n.src = new(table)
		}
		n.src.Insert(k.Prefix, slotOf(e))
	}
	g := new(bart.Fast[*groupNode])
	for p, n := range nodes {
		g.Insert(p, n)
	}
	for p, n := range nodes {
		n.star = n.own
		for sp, sn := range g.Supernets(p) {
			if sp == p {
				continue
			}
			if n.parent == nil && sn.src != nil {
				n.parent = sn
			}
			if n.star.e == nil && sn.own.e != nil {
				n.star = sn.own
			}
		}
	}
	return &mcTable{groups: g}
}

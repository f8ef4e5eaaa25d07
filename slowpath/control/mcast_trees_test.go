package control

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/wire"
)

// TestMcastTreesMapServer: a Map-Server that is no node of a tree describes
// it from its merged RLE: McastTrees lists it (role map-server) with the
// tree's nodes and joins, and McastTree gives the same view for its key.
func TestMcastTreesMapServer(t *testing.T) {
	ms := newEngine(t, Config{
		MapServer: &MapServerConfig{Sites: []SiteConfig{mcSite()}},
		Multicast: &MulticastConfig{Key: mcKey},
	}, nil)
	if got := ms.McastTrees(); len(got) != 0 {
		t.Fatalf("trees before any registration: %+v", got)
	}
	regs := []struct {
		level uint8
		rloc  string
	}{{0, "192.0.2.10"}, {1, "192.0.2.20"}, {128, "192.0.2.31"}, {128, "192.0.2.32"}}
	for i, r := range regs {
		inject(t, ms, netip.MustParseAddrPort(r.rloc+":4342"), sgRegister(t, r.level, r.rloc, wire.XTRID{byte(i + 1)}))
	}
	trees := ms.McastTrees()
	if len(trees) != 1 {
		t.Fatalf("trees %+v, want one", trees)
	}
	tr := trees[0]
	if tr.Role != "map-server" || tr.Source != srcEID || tr.Group != grpEID || len(tr.Merged) != len(regs) {
		t.Fatalf("tree %+v", tr)
	}
	a := netip.MustParseAddr
	itr := netip.IPv4Unspecified()
	wantEdges := []replicate.TreeEdge{{Parent: itr, Child: a("192.0.2.10")}, {Parent: a("192.0.2.10"), Child: a("192.0.2.20")},
		{Parent: a("192.0.2.20"), Child: a("192.0.2.31")}, {Parent: a("192.0.2.20"), Child: a("192.0.2.32")}}
	if !slices.Equal(tr.Graph.Edges, wantEdges) || len(tr.Graph.Nodes) != 5 {
		t.Errorf("graph %+v, want the chain ITR -> level 0 -> level 1 -> both ETRs", tr.Graph)
	}
	one, ok := ms.McastTree(0, srcEID, grpEID)
	if !ok || one.Tree != tr.Tree || !slices.Equal(one.Graph.Edges, tr.Graph.Edges) {
		t.Errorf("McastTree %+v (ok %v), want the listed tree", one, ok)
	}
	if _, ok := ms.McastTree(0, srcEID, netip.MustParsePrefix("239.9.9.9/32")); ok {
		t.Error("a tree for a group nobody registered")
	}
}

package router

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/internal/render"
)

// TestALTPicture: the router with what it announces, its neighbours
// (dashed when the session is down), and under each neighbour the routes
// the ALT table sends there; local routes stay in the router's box.
func TestALTPicture(t *testing.T) {
	v := ALTView{
		Neighbors: []ALTNeighborView{
			{Remote: netip.MustParseAddr("192.0.2.201"), Peer: netip.MustParseAddr("10.255.0.1"), ASN: 65001, State: "established"},
			{Remote: netip.MustParseAddr("192.0.2.202"), Peer: netip.MustParseAddr("10.255.0.5"), ASN: 65002, State: "active"},
		},
		Table: []ALTRouteView{
			{Prefix: netip.MustParsePrefix("10.0.0.0/14"), Peer: "10.255.0.1", ASPath: []uint32{65001}, Aggregate: true},
			{Prefix: netip.MustParsePrefix("10.8.0.0/16"), Peer: "10.255.0.1", ASPath: []uint32{65001, 65010}},
			{Prefix: netip.MustParsePrefix("10.1.0.0/24"), Peer: "local", Local: true},
		},
		Announced: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/24")},
	}
	g := ALTPicture(v)
	want := []string{"n/10.255.0.1 -> p/10.0.0.0/14", "n/10.255.0.1 -> p/10.8.0.0/16", "self -> n/10.255.0.1", "self -> n/10.255.0.5"}
	if got := edgesOf(g); !slices.Equal(got, want) {
		t.Errorf("edges %q, want %q", got, want)
	}
	class := map[string]string{}
	label := map[string]string{}
	for _, n := range g.Nodes {
		class[n.ID], label[n.ID] = n.Class, n.Label
	}
	if class["n/10.255.0.5"] != render.ClassFailed || class["n/10.255.0.1"] != render.ClassInner {
		t.Errorf("classes %v", class)
	}
	if !strings.Contains(label["self"], "announces 10.1.0.0/24") || !strings.Contains(label["p/10.8.0.0/16"], "AS path 65001 65010") ||
		!strings.Contains(label["p/10.0.0.0/14"], "aggregate") || g.Title != "ALT: 2 neighbours, 2 routes" {
		t.Errorf("labels %v, title %q", label, g.Title)
	}

	// The same prefix in two instance-IDs: two boxes, named by
	// instance-ID; the announcements of instance-ID 7 in the router's box.
	v.Table = []ALTRouteView{
		{IID: 5, Prefix: netip.MustParsePrefix("10.2.0.0/24"), Peer: "10.255.0.1", ASPath: []uint32{65001}},
		{IID: 7, Prefix: netip.MustParsePrefix("10.2.0.0/24"), Peer: "10.255.0.5", ASPath: []uint32{65002}},
	}
	v.AnnouncedIIDs = []ALTAnnouncedView{{IID: 7, Prefix: netip.MustParsePrefix("10.7.0.0/16")}}
	g = ALTPicture(v)
	want = []string{"n/10.255.0.1 -> p/[5]10.2.0.0/24", "n/10.255.0.5 -> p/[7]10.2.0.0/24", "self -> n/10.255.0.1", "self -> n/10.255.0.5"}
	if got := edgesOf(g); !slices.Equal(got, want) {
		t.Errorf("edges %q, want %q", got, want)
	}
	if !strings.Contains(g.Nodes[0].Label, "announces [7]10.7.0.0/16") {
		t.Errorf("router's box %q", g.Nodes[0].Label)
	}
}

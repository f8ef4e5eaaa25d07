package router

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/internal/render"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/ddt"
)

// edgesOf lists g's edges as "from -> to".
func edgesOf(g render.Graph) []string {
	var out []string
	for _, e := range g.Edges {
		out = append(out, e.From+" -> "+e.To)
	}
	slices.Sort(out)
	return out
}

// TestDDTDelegationsPicture: the node, one box per delegation, one box per
// target even when two delegations name it, classes by delegation type.
func TestDDTDelegationsPicture(t *testing.T) {
	ms := netip.MustParseAddr("192.0.2.31")
	l := DDTInfo{
		Authoritative: []slowpath.EIDPrefix{{IID: 0, Prefix: netip.MustParsePrefix("10.0.0.0/8")}},
		Delegations: []ddt.Delegation{
			{IID: 0, Prefix: netip.MustParsePrefix("10.1.0.0/16"), Type: "node", Referral: "NODE-REFERRAL", Incomplete: true,
				Targets: []slowpath.DDTTarget{{Addr: netip.MustParseAddr("192.0.2.21")}, {Addr: netip.MustParseAddr("192.0.2.22")}}},
			{IID: 0, Prefix: netip.MustParsePrefix("10.2.0.0/16"), Type: "map-server", Referral: "MS-REFERRAL", Targets: []slowpath.DDTTarget{{Addr: ms}}},
			{IID: 0, Prefix: netip.MustParsePrefix("10.3.0.0/16"), Type: "map-server", Referral: "MS-REFERRAL", Targets: []slowpath.DDTTarget{{Addr: ms}}},
		},
	}
	g := DDTDelegationsPicture(l)
	want := []string{
		"d/0/10.1.0.0/16 -> DDT node/192.0.2.21", "d/0/10.1.0.0/16 -> DDT node/192.0.2.22",
		"d/0/10.2.0.0/16 -> Map-Server/192.0.2.31", "d/0/10.3.0.0/16 -> Map-Server/192.0.2.31",
		"self -> d/0/10.1.0.0/16", "self -> d/0/10.2.0.0/16", "self -> d/0/10.3.0.0/16",
	}
	if got := edgesOf(g); !slices.Equal(got, want) {
		t.Errorf("edges:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(g.Nodes) != 7 || g.Self != "self" || !strings.Contains(g.Nodes[0].Label, "iid 0 10.0.0.0/8") {
		t.Errorf("nodes: %+v", g.Nodes)
	}
	class := map[string]string{}
	for _, n := range g.Nodes {
		class[n.ID] = n.Class
		if n.ID == "d/0/10.1.0.0/16" && !strings.Contains(n.Label, "NODE-REFERRAL\nincomplete") {
			t.Errorf("delegation label %q", n.Label)
		}
	}
	if class["DDT node/192.0.2.21"] != render.ClassInner || class["Map-Server/192.0.2.31"] != render.ClassLeaf {
		t.Errorf("classes: %v", class)
	}
}

// TestDDTReferralsPicture: every cached referral hangs under the most
// specific cached referral of its instance-ID that covers it, or under the
// roots; negative referrals are drawn failed (dashed); an entry whose EID
// is no prefix is left out.
func TestDDTReferralsPicture(t *testing.T) {
	l := DDTResolverInfo{Roots: []string{"192.0.2.10:4342"}, Cached: 7, Referrals: []DDTReferralInfo{
		{IID: 0, EID: "10.1.1.0/24", Type: "MS-ACK", Targets: []string{"192.0.2.31"}},
		{IID: 0, EID: "10.1.0.0/16", Type: "MS-REFERRAL", Targets: []string{"192.0.2.31"}},
		{IID: 0, EID: "10.0.0.0/8", Type: "NODE-REFERRAL", Targets: []string{"192.0.2.21", "192.0.2.22"}},
		{IID: 0, EID: "10.64.0.0/10", Type: "DELEGATION-HOLE"},
		{IID: 7, EID: "10.1.0.0/16", Type: "MS-NOT-REGISTERED"},
		{IID: 0, EID: "172.16.0.0/12", Type: "NOT-AUTHORITATIVE"},
		{IID: 0, EID: "bogus", Type: "MS-ACK"},
	}}
	g := DDTReferralsPicture(l)
	want := []string{
		"r/0/10.0.0.0/8/NODE-REFERRAL -> r/0/10.1.0.0/16/MS-REFERRAL",
		"r/0/10.0.0.0/8/NODE-REFERRAL -> r/0/10.64.0.0/10/DELEGATION-HOLE",
		"r/0/10.1.0.0/16/MS-REFERRAL -> r/0/10.1.1.0/24/MS-ACK",
		"roots -> r/0/10.0.0.0/8/NODE-REFERRAL",
		"roots -> r/0/172.16.0.0/12/NOT-AUTHORITATIVE",
		"roots -> r/7/10.1.0.0/16/MS-NOT-REGISTERED",
		"self -> roots",
	}
	if got := edgesOf(g); !slices.Equal(got, want) {
		t.Errorf("edges:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	rank, class := map[string]int{}, map[string]string{}
	for _, n := range g.Nodes {
		rank[n.ID], class[n.ID] = n.Rank, n.Class
	}
	if rank["r/0/10.1.1.0/24/MS-ACK"] != 4 || rank["r/0/10.0.0.0/8/NODE-REFERRAL"] != 2 {
		t.Errorf("ranks: %v", rank)
	}
	if class["r/0/10.64.0.0/10/DELEGATION-HOLE"] != render.ClassFailed || class["r/0/10.1.1.0/24/MS-ACK"] != render.ClassLeaf ||
		class["r/0/10.0.0.0/8/NODE-REFERRAL"] != render.ClassInner {
		t.Errorf("classes: %v", class)
	}
	if !strings.Contains(g.Title, "7 cached (6 drawn)") {
		t.Errorf("title %q", g.Title)
	}
}

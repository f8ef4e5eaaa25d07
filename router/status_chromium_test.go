package router

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/rloc-router/rloc/internal/render"
	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/slowpath"
)

// TestStatusPageChromiumMappingSystem: headless Chromium loads the status
// page of a router with mapping-system roles, in process on loopback: a
// DDT node with a delegation (10.1.0.0/16 to a Map-Server) that is also a
// DDT Map-Resolver under a root DDT node (another router), with an
// MS-REFERRAL in its referral cache. The DOM Chromium renders shows the
// mapping-system section with the two pictures, every node and edge of
// the delegations and of the referral tree the API reports, and no
// others; the page's script ran. A screenshot is kept in the test's
// artifact directory (go test -artifacts).
func TestStatusPageChromiumMappingSystem(t *testing.T) {
	testkit.Tool(t, "chromium")
	root := ddtRouterConfig(t)
	root.Name = "ddt-root"
	root.DDT.Delegations[0].Targets[0].Addr = netip.MustParseAddr("127.0.0.9") // loopback: nothing listens
	node, err := Start(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Stop)
	r, err := Start(Config{
		Name:    "ddt-node-mr",
		Roles:   Roles{DDTNode: true, MapResolver: true},
		Control: ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		MapResolver: MapResolverOptions{DDTRoots: []netip.AddrPort{node.Engine().Addr()},
			DDT: slowpath.DDTResolverConfig{RetransmitInterval: time.Minute}}, // pending for the test's life
		DDT: slowpath.DDTNodeConfig{
			Authoritative: []slowpath.EIDPrefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}},
			Delegations: []slowpath.DDTDelegation{
				{EIDPrefix: slowpath.EIDPrefix{Prefix: netip.MustParsePrefix("10.2.0.0/16")}, Type: slowpath.DDTMapServer,
					Targets: []slowpath.DDTTarget{{Addr: netip.MustParseAddr("192.0.2.31"), Priority: 1}}},
				{EIDPrefix: slowpath.EIDPrefix{Prefix: netip.MustParsePrefix("10.3.0.0/16")}, Type: slowpath.DDTNode,
					Targets: []slowpath.DDTTarget{{Addr: netip.MustParseAddr("192.0.2.41"), Priority: 1}}},
			},
		},
		Mgmt:   MgmtOptions{Socket: filepath.Join(t.TempDir(), "mgmt.sock")},
		Status: StatusOptions{Listen: "127.0.0.1:0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	resolveThrough(t, r, "10.1.2.3", 5)
	testkit.WaitFor(t, "the MS-REFERRAL cached", func() error {
		if l, _ := r.DDTReferrals(); l.Cached != 1 {
			return fmt.Errorf("%d referrals cached", l.Cached)
		}
		return nil
	})

	shot := filepath.Join(t.ArtifactDir(), "status-mapping-system.png")
	dom := chromium(t, "--dump-dom", "--screenshot="+shot, "--window-size=1280,1600", "--hide-scrollbars", "http://"+r.StatusAddr()+"/")
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Errorf("no screenshot: %v", err)
	}
	ids, doc := domByID(t, dom)
	if doc == nil || attr(doc, "data-live") != "1" {
		t.Errorf("the page's script did not run in Chromium (CSP?)")
	}
	if n := ids["roles"]; n == nil || strings.TrimSpace(text(n)) != "Map-ResolverDDT node" {
		t.Errorf("#roles: %v", n)
	}
	sec := ids["mapping-system"]
	if sec == nil {
		t.Fatalf("no mapping-system section in the DOM:\n%s", dom)
	}
	// Per picture (an <svg> each): its title, node ids and edges.
	type picture struct {
		title        string
		nodes, edges []string
	}
	var got []picture
	for svg := range sec.Descendants() {
		if svg.Type != html.ElementNode || svg.Data != "svg" {
			continue
		}
		var p picture
		for n := range svg.Descendants() {
			if n.Type != html.ElementNode {
				continue
			}
			switch cls := attr(n, "class"); {
			case n.Data == "title" && p.title == "":
				p.title = text(n)
			case n.Data == "g" && strings.HasPrefix(cls, "node "):
				p.nodes = append(p.nodes, attr(n, "data-id"))
			case n.Data == "g" && cls == "edge":
				p.edges = append(p.edges, attr(n, "data-from")+"->"+attr(n, "data-to"))
			}
		}
		slices.Sort(p.nodes)
		slices.Sort(p.edges)
		got = append(got, p)
	}
	dl, _ := r.DDTDelegations()
	rl, _ := r.DDTReferrals()
	var want []picture
	for _, g := range []render.Graph{DDTDelegationsPicture(dl), DDTReferralsPicture(rl)} {
		p := picture{title: g.Title}
		for _, n := range g.Nodes {
			p.nodes = append(p.nodes, n.ID)
		}
		for _, e := range g.Edges {
			p.edges = append(p.edges, e.From+"->"+e.To)
		}
		slices.Sort(p.nodes)
		slices.Sort(p.edges)
		want = append(want, p)
	}
	if len(got) != len(want) {
		t.Fatalf("%d pictures in the section, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].title != want[i].title || !slices.Equal(got[i].nodes, want[i].nodes) || !slices.Equal(got[i].edges, want[i].edges) {
			t.Errorf("picture %d in the DOM: %+v\nwant %+v", i, got[i], want[i])
		}
	}
	// What the API says is drawn: the two delegations under this node, and
	// the referral learned from the root under the roots.
	for _, w := range []string{"d/0/10.2.0.0/16", "d/0/10.3.0.0/16", "Map-Server/192.0.2.31", "r/0/10.1.0.0/16/MS-REFERRAL"} {
		if !slices.ContainsFunc(got, func(p picture) bool { return slices.Contains(p.nodes, w) }) {
			t.Errorf("no node %q in the DOM's pictures %+v", w, got)
		}
	}
	if len(got) == 2 && !slices.Contains(got[1].edges, "roots->r/0/10.1.0.0/16/MS-REFERRAL") {
		t.Errorf("the referral is not drawn under the roots: %q", got[1].edges)
	}
}

package router

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/rloc-router/rloc/internal/render"
)

// Pictures of the DDT mapping system (docs/ddt.md): what a DDT node
// delegates, and the tree a DDT Map-Resolver has learned from its
// referrals. Both are drawn by internal/render (rlocctl ddt … -o dot|svg,
// the status page).

// ddtPictureMax bounds the boxes of one picture; the title says how many
// were left out.
const ddtPictureMax = 120

// DDTDelegationsPicture draws a DDT node: the node itself (with its
// authoritative prefixes), one box per delegation (its XEID-prefix and
// referral type), and the child DDT nodes and Map-Servers each delegation
// refers to, labelled with priority and weight. A target named by several
// delegations is one box.
func DDTDelegationsPicture(l DDTInfo) render.Graph {
	self := "self"
	label := []string{"DDT node (this router)"}
	for i, a := range l.Authoritative {
		if i == 3 {
			label = append(label, fmt.Sprintf("… %d more", len(l.Authoritative)-i))
			break
		}
		label = append(label, fmt.Sprintf("iid %d %s", a.IID, a.Prefix))
	}
	g := render.Graph{Self: self, Nodes: []render.Node{{ID: self, Label: strings.Join(label, "\n"), Rank: 0, Class: render.ClassRoot}}}
	targets := map[string]bool{}
	shown := 0
	for _, d := range l.Delegations {
		if len(g.Nodes)+1+len(d.Targets) > ddtPictureMax {
			break
		}
		shown++
		id := fmt.Sprintf("d/%d/%s", d.IID, d.Prefix)
		dl := fmt.Sprintf("iid %d %s\n%s", d.IID, d.Prefix, d.Referral)
		if d.Incomplete {
			dl += "\nincomplete"
		}
		g.Nodes = append(g.Nodes, render.Node{ID: id, Label: dl, Rank: 1})
		g.Edges = append(g.Edges, render.Edge{From: self, To: id})
		kind, class := "Map-Server", render.ClassLeaf
		if d.Type == "node" {
			kind, class = "DDT node", render.ClassInner
		}
		for _, t := range d.Targets {
			tid := kind + "/" + t.Addr.String()
			if !targets[tid] {
				targets[tid] = true
				g.Nodes = append(g.Nodes, render.Node{ID: tid, Label: kind + "\n" + t.Addr.String(), Rank: 2, Class: class})
			}
			g.Edges = append(g.Edges, render.Edge{From: id, To: tid})
		}
	}
	g.Title = fmt.Sprintf("DDT node: %d delegations", len(l.Delegations))
	if shown < len(l.Delegations) {
		g.Title += fmt.Sprintf(" (%d drawn)", shown)
	}
	return g
}

// DDTReferralsPicture draws the delegation tree a DDT Map-Resolver has
// learned: the resolver, its roots, then every cached referral under the
// most specific cached referral of the same instance-ID that covers it
// (the roots when none does) — the node that referred the resolver there.
// NODE-REFERRALs are drawn as DDT nodes, MS-REFERRALs and MS-ACKs as
// Map-Servers, negative referrals (holes, not registered, not
// authoritative) dashed.
func DDTReferralsPicture(l DDTResolverInfo) render.Graph {
	const self, roots = "self", "roots"
	g := render.Graph{Self: self, Nodes: []render.Node{
		{ID: self, Label: "DDT Map-Resolver (this router)", Rank: 0},
		{ID: roots, Label: "DDT roots\n" + strings.Join(l.Roots, "\n"), Rank: 1, Class: render.ClassRoot},
	}, Edges: []render.Edge{{From: self, To: roots}}}
	type entry struct {
		DDTReferralInfo
		p    netip.Prefix
		id   string
		rank int
	}
	var es []*entry
	for _, r := range l.Referrals {
		p, err := netip.ParsePrefix(r.EID)
		if err != nil {
			continue
		}
		es = append(es, &entry{DDTReferralInfo: r, p: p.Masked(), id: "r/" + strconv.FormatUint(uint64(r.IID), 10) + "/" + r.EID + "/" + r.Type})
	}
	// Least specific first: a parent is placed before its children.
	slices.SortStableFunc(es, func(a, b *entry) int {
		return cmp.Or(cmp.Compare(a.IID, b.IID), cmp.Compare(a.p.Bits(), b.p.Bits()), a.p.Addr().Compare(b.p.Addr()))
	})
	drawn := 0
	for i, e := range es {
		if len(g.Nodes) >= ddtPictureMax {
			break
		}
		// es is sorted by prefix length: the first cover found going
		// back is the most specific one.
		parent, rank := roots, 2
		for j := i - 1; j >= 0; j-- {
			if q := es[j]; q.rank > 0 && q.IID == e.IID && q.p.Bits() < e.p.Bits() && q.p.Contains(e.p.Addr()) {
				parent, rank = q.id, q.rank+1
				break
			}
		}
		e.rank = rank
		drawn++
		label := fmt.Sprintf("iid %d %s\n%s", e.IID, e.EID, e.Type)
		if len(e.Targets) > 0 {
			label += "\n" + strings.Join(e.Targets, "\n")
		}
		var class string
		switch e.Type {
		case "NODE-REFERRAL":
			class = render.ClassInner
		case "MS-REFERRAL", "MS-ACK":
			class = render.ClassLeaf
		default:
			class = render.ClassFailed
		}
		g.Nodes = append(g.Nodes, render.Node{ID: e.id, Label: label, Rank: rank, Class: class})
		g.Edges = append(g.Edges, render.Edge{From: parent, To: e.id})
	}
	g.Title = fmt.Sprintf("DDT referrals learned: %d cached", l.Cached)
	if drawn < l.Cached {
		g.Title += fmt.Sprintf(" (%d drawn)", drawn)
	}
	return g
}

package router

import (
	"fmt"
	"strings"

	"github.com/rloc-router/rloc/internal/render"
)

// MSXPicture draws this mapping system's interconnect (docs/interconnect.md):
// the router, one box per agreement (its mode, the primitives the peer may
// use, the space shared, the copy held and the subscriptions), and the
// peer's Map-Servers/Map-Resolvers. A peer that has never sent an
// authenticated message is drawn dashed.
func MSXPicture(ags []MSXAgreementInfo) render.Graph {
	const self = "self"
	g := render.Graph{Self: self, Title: fmt.Sprintf("interconnect: %d agreements", len(ags)),
		Nodes: []render.Node{{ID: self, Label: "mapping system (this router)", Class: render.ClassRoot}}}
	for _, a := range ags {
		id := "a/" + a.Name
		l := []string{"agreement " + a.Name, "mode " + a.Mode, "peer may: " + strings.Join(a.Allow, ", ")}
		if shared := append(append([]string{}, a.Filters...), iidList(a.InstanceIDs)...); len(shared) > 0 {
			l = append(l, "shares "+strings.Join(shared, " "))
		}
		if a.Mode == "copy" {
			state := "incomplete"
			if a.Complete {
				state = "complete"
			}
			if a.Pulling {
				state += ", pulling"
			}
			l = append(l, fmt.Sprintf("copy: %d mappings (%s)", a.Copy, state))
		}
		if a.Subscription != 0 || a.SubscribedBy > 0 {
			l = append(l, fmt.Sprintf("subscribed: ours %t, theirs %d", a.Subscription != 0, a.SubscribedBy))
		}
		g.Nodes = append(g.Nodes, render.Node{ID: id, Label: strings.Join(l, "\n"), Rank: 1, Class: render.ClassInner})
		g.Edges = append(g.Edges, render.Edge{From: self, To: id})
		class := render.ClassLeaf
		if a.LastHeard == nil {
			class = render.ClassFailed
		}
		for _, p := range a.Peers {
			pid := "p/" + a.Name + "/" + p
			g.Nodes = append(g.Nodes, render.Node{ID: pid, Label: "peer " + p, Rank: 2, Class: class})
			g.Edges = append(g.Edges, render.Edge{From: id, To: pid})
		}
	}
	return g
}

// iidList names whole instance-IDs as "[iid]*".
func iidList(iids []uint32) []string {
	out := make([]string, len(iids))
	for i, iid := range iids {
		out[i] = fmt.Sprintf("[%d]*", iid)
	}
	return out
}

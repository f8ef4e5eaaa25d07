package router

import (
	"fmt"
	"strings"

	"github.com/rloc-router/rloc/internal/render"
)

// ALTPicture draws an ALT router's view of the ALT (docs/alt.md): the
// router with the prefixes it announces, each neighbour with its AS and BGP
// session state (dashed when the session is not established), and under
// each neighbour the EID prefixes the ALT table sends there, with their AS
// paths. At most ddtPictureMax boxes; the title says how many routes were
// left out.
func ALTPicture(v ALTView) render.Graph {
	const self = "self"
	label := []string{"ALT router (this router)"}
	announced := make([]string, 0, len(v.Announced)+len(v.AnnouncedIIDs))
	for _, p := range v.Announced {
		announced = append(announced, p.String())
	}
	for _, p := range v.AnnouncedIIDs {
		announced = append(announced, p.Name())
	}
	for i, p := range announced {
		if i == 4 {
			label = append(label, fmt.Sprintf("… %d more announced", len(announced)-i))
			break
		}
		label = append(label, "announces "+p)
	}
	g := render.Graph{Self: self, Nodes: []render.Node{{ID: self, Label: strings.Join(label, "\n"), Class: render.ClassRoot}}}
	nb := map[string]string{} // neighbour's tunnel address → its box
	for _, n := range v.Neighbors {
		id := "n/" + n.Peer.String()
		class := render.ClassInner
		if n.State != "established" {
			class = render.ClassFailed
		}
		g.Nodes = append(g.Nodes, render.Node{ID: id, Rank: 1, Class: class,
			Label: fmt.Sprintf("ALT neighbour %s\nvia %s\nAS %d, %s", n.Peer, n.Remote, n.ASN, n.State)})
		g.Edges = append(g.Edges, render.Edge{From: self, To: id})
		nb[n.Peer.String()] = id
	}
	drawn := 0
	for _, r := range v.Table {
		parent, ok := nb[r.Peer]
		if r.Local || !ok {
			continue // this router's own prefixes are in its box
		}
		if len(g.Nodes) >= ddtPictureMax {
			break
		}
		drawn++
		path := make([]string, len(r.ASPath))
		for i, a := range r.ASPath {
			path[i] = fmt.Sprint(a)
		}
		l := r.Name() + "\nAS path " + strings.Join(path, " ")
		if r.Aggregate {
			l += "\naggregate"
		}
		id := "p/" + r.Name()
		g.Nodes = append(g.Nodes, render.Node{ID: id, Label: l, Rank: 2, Class: render.ClassLeaf})
		g.Edges = append(g.Edges, render.Edge{From: parent, To: id})
	}
	routes := 0
	for _, r := range v.Table {
		if !r.Local {
			routes++
		}
	}
	g.Title = fmt.Sprintf("ALT: %d neighbours, %d routes", len(v.Neighbors), routes)
	if drawn < routes {
		g.Title += fmt.Sprintf(" (%d drawn)", drawn)
	}
	return g
}

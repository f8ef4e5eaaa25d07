package router

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/rloc-router/rloc/internal/render"
	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/slowpath/control"
)

// Replication trees as graphs, for pictures: GET /v1/mcast/trees lists
// every tree the router knows (McastTreeView with Graph), rlocctl draws
// them with `mcast tree -o dot|svg`, the status page inline as SVG.

// TreeGraphView is a replication tree as nodes and edges.
type TreeGraphView struct {
	Nodes []TreeNodeView `json:"nodes"`
	Edges []TreeEdgeView `json:"edges"`
}

// TreeNodeView is one node of a tree.
type TreeNodeView struct {
	Addr string `json:"addr"`
	// Level is the node's RLE level: -1 for the ITR, 0..127 for an RTR,
	// 128 for a receivers' ETR.
	Level int `json:"level"`
	// Role is "itr", "rtr" or "etr", or "failed" for an RTR this router
	// found dead (no longer joined in the tree).
	Role string `json:"role"`
}

// TreeEdgeView is one join: Parent replicates to Child.
type TreeEdgeView struct {
	Parent string `json:"parent"`
	Child  string `json:"child"`
}

// nodeRole names a node of level l.
func nodeRole(l int) string {
	switch {
	case l < 0:
		return "itr"
	case l >= replicate.ETRLevel:
		return "etr"
	}
	return "rtr"
}

// graphView converts the tree's graph and adds the RTRs in failed (with
// their level in merged) as unjoined nodes.
func graphView(g replicate.TreeGraph, failed []string, merged []replicate.Entry) TreeGraphView {
	v := TreeGraphView{Nodes: []TreeNodeView{}, Edges: []TreeEdgeView{}}
	for _, n := range g.Nodes {
		v.Nodes = append(v.Nodes, TreeNodeView{Addr: n.Addr.String(), Level: n.Level, Role: nodeRole(n.Level)})
	}
	for _, a := range failed {
		if slices.ContainsFunc(v.Nodes, func(n TreeNodeView) bool { return n.Addr == a }) {
			continue
		}
		level := 0
		for _, e := range merged {
			if e.Addr.String() == a {
				level = int(e.Level)
			}
		}
		v.Nodes = append(v.Nodes, TreeNodeView{Addr: a, Level: level, Role: "failed"})
	}
	for _, e := range g.Edges {
		v.Edges = append(v.Edges, TreeEdgeView{Parent: e.Parent.String(), Child: e.Child.String()})
	}
	return v
}

// treeView is the API's view of a tree the engine describes.
func (r *Router) treeView(t control.McastTreeInfo) McastTreeView {
	v := McastTreeView{IID: t.IID, Source: t.Source.String(), Group: t.Group.String(), Role: t.Role, Level: t.Level,
		Parent: addrOrEmpty(t.Parent), Joining: addrOrEmpty(t.Joining), Leaving: addrOrEmpty(t.Leaving),
		Upstream: addrStrings(t.Upstream), Failed: addrStrings(t.Failed), Children: addrStrings(t.Children),
		Merged: t.Merged, Tree: t.Tree, Text: t.String()}
	v.Graph = graphView(t.Graph, v.Failed, t.Merged)
	switch t.Role {
	case "rtr", "etr":
		v.Self = addrOrEmpty(r.cfg.mcastRLOC())
	case "itr":
		for _, n := range t.Graph.Nodes {
			if n.Level < 0 {
				v.Self = n.Addr.String()
			}
		}
	}
	return v
}

// McastTrees returns the view of every replication tree the router knows:
// those it is a node of and, on a Map-Server, those it holds an RLE for.
func (r *Router) McastTrees() []McastTreeView {
	out := []McastTreeView{}
	if r.engine == nil {
		return out
	}
	for _, t := range r.engine.McastTrees() {
		out = append(out, r.treeView(t))
	}
	return out
}

func (r *Router) apiMcastTrees(w http.ResponseWriter, _ *http.Request) { writeJSON(w, r.McastTrees()) }

// SG formats the tree's name, "(S, G)" with * for any source.
func (v *McastTreeView) SG() string {
	src := v.Source
	if p, err := hostPrefix(src); err != nil || p.Bits() == 0 {
		src = "*"
	}
	return "(" + src + ", " + v.Group + ")"
}

// Picture is the tree as a graph to draw (package render): one row per
// level, the ITR on top, this router's node marked.
func (v *McastTreeView) Picture() render.Graph {
	g := render.Graph{Title: fmt.Sprintf("%s iid %d, as %s sees it", v.SG(), v.IID, cmp.Or(v.Role, "this router"))}
	var levels []int
	for _, n := range v.Graph.Nodes {
		if !slices.Contains(levels, n.Level) {
			levels = append(levels, n.Level)
		}
	}
	slices.Sort(levels)
	for _, n := range v.Graph.Nodes {
		rn := render.Node{ID: n.Addr, Rank: slices.Index(levels, n.Level)}
		switch n.Role {
		case "itr":
			rn.Class, rn.Label = render.ClassRoot, "ITR\n"+n.Addr
			if n.Addr == "0.0.0.0" || n.Addr == "::" {
				rn.Label = "ITR\n(the source's)"
			}
		case "rtr":
			rn.Class, rn.Label = render.ClassInner, "RTR level "+strconv.Itoa(n.Level)+"\n"+n.Addr
		case "etr":
			rn.Class, rn.Label = render.ClassLeaf, "ETR\n"+n.Addr
		default:
			rn.Class, rn.Label = render.ClassFailed, "RTR level "+strconv.Itoa(n.Level)+"\n"+n.Addr+"\nfailed"
		}
		g.Nodes = append(g.Nodes, rn)
	}
	for _, e := range v.Graph.Edges {
		g.Edges = append(g.Edges, render.Edge{From: e.Parent, To: e.Child})
	}
	if slices.ContainsFunc(v.Graph.Nodes, func(n TreeNodeView) bool { return n.Addr == v.Self }) {
		g.Self = v.Self
	}
	return g
}

// Pictures is Picture of every tree.
func Pictures(vs []McastTreeView) []render.Graph {
	gs := make([]render.Graph, len(vs))
	for i := range vs {
		gs[i] = vs[i].Picture()
	}
	return gs
}

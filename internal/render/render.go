// Package render draws small directed graphs in layers — multicast
// replication trees, for `rlocctl mcast tree -o dot|svg` and rlocd's status
// page — as Graphviz dot text and as SVG. The SVG is laid out here (rows by
// rank, each row ordered by its parents' positions), so neither rlocctl nor
// rlocd needs Graphviz at run time; the dot text is for operators who want
// Graphviz's own layout or another output format (dot -Tpng).
package render

import (
	"cmp"
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strings"
)

// Node is one box of a Graph.
type Node struct {
	// ID names the node in edges; unique within its graph.
	ID string
	// Label is the text in the box, lines separated by "\n".
	Label string
	// Rank is the node's row: lower ranks are drawn higher, parents above
	// children.
	Rank int
	// Class styles the node: one of the Class constants, or "" (plain).
	Class string
}

// Node classes: the colour of a node in both outputs.
const (
	ClassRoot   = "root"   // where traffic enters (an ITR)
	ClassInner  = "inner"  // a replicator (an RTR)
	ClassLeaf   = "leaf"   // a receiver (an ETR)
	ClassFailed = "failed" // a node found dead, drawn dashed
)

// Edge is an arrow from From to To.
type Edge struct {
	From, To string
}

// Graph is one picture: a title, nodes and edges. Edges to nodes the graph
// does not have are drawn in neither output.
type Graph struct {
	Title string
	Nodes []Node
	Edges []Edge
	// Self, when set, is the ID of the node that is the router drawing the
	// picture; it gets a heavier border.
	Self string
}

// style is a class's fill colour and border.
type style struct{ fill, stroke, dash string }

var styles = map[string]style{
	ClassRoot:   {"#cfe2ff", "#084298", ""},
	ClassInner:  {"#d1e7dd", "#0f5132", ""},
	ClassLeaf:   {"#fff3cd", "#664d03", ""},
	ClassFailed: {"#f8d7da", "#842029", "4 3"},
	"":          {"#f8f9fa", "#495057", ""},
}

func styleOf(class string) style {
	if s, ok := styles[class]; ok {
		return s
	}
	return styles[""]
}

// has reports whether g has a node id.
func (g *Graph) has(id string) bool {
	return slices.ContainsFunc(g.Nodes, func(n Node) bool { return n.ID == id })
}

// dotString quotes s as a dot string (the ID form "...": backslash and
// quote escaped, a newline as the \n escape Graphviz centres).
func dotString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", "")
	return `"` + r.Replace(s) + `"`
}

// Dot writes gs as one Graphviz digraph named name: one cluster per graph
// when there are several, nodes of a rank on one row ({rank=same}).
func Dot(w io.Writer, name string, gs []Graph) error {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n", dotString(name))
	b.WriteString("  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=11];\n")
	b.WriteString("  edge [color=\"#495057\", arrowsize=0.7];\n")
	for i := range gs {
		g := &gs[i]
		ind, prefix := "  ", ""
		if len(gs) > 1 {
			ind, prefix = "    ", fmt.Sprintf("g%d/", i)
			fmt.Fprintf(&b, "  subgraph %s {\n", dotString(fmt.Sprintf("cluster_%d", i)))
		}
		if g.Title != "" {
			fmt.Fprintf(&b, "%slabel=%s;\n%slabelloc=t;\n", ind, dotString(g.Title), ind)
		}
		for _, n := range g.Nodes {
			s := styleOf(n.Class)
			extra := ""
			if s.dash != "" {
				extra = `, style="rounded,filled,dashed"`
			}
			if n.ID == g.Self && g.Self != "" {
				extra += ", penwidth=2.5"
			}
			fmt.Fprintf(&b, "%s%s [label=%s, fillcolor=%s, color=%s%s];\n", ind, dotString(prefix+n.ID),
				dotString(n.Label), dotString(s.fill), dotString(s.stroke), extra)
		}
		for _, row := range rows(g) {
			if len(row) < 2 {
				continue
			}
			b.WriteString(ind + "{ rank=same;")
			for _, n := range row {
				b.WriteString(" " + dotString(prefix+n.ID) + ";")
			}
			b.WriteString(" }\n")
		}
		for _, e := range g.Edges {
			if g.has(e.From) && g.has(e.To) {
				fmt.Fprintf(&b, "%s%s -> %s;\n", ind, dotString(prefix+e.From), dotString(prefix+e.To))
			}
		}
		if len(gs) > 1 {
			b.WriteString("  }\n")
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// rows groups g's nodes by rank, lowest first, in input order.
func rows(g *Graph) [][]Node {
	byRank := map[int][]Node{}
	for _, n := range g.Nodes {
		byRank[n.Rank] = append(byRank[n.Rank], n)
	}
	ranks := make([]int, 0, len(byRank))
	for r := range byRank {
		ranks = append(ranks, r)
	}
	slices.Sort(ranks)
	out := make([][]Node, len(ranks))
	for i, r := range ranks {
		out[i] = byRank[r]
	}
	return out
}

// Layout sizes, in SVG user units (pixels).
const (
	charWidth  = 7.2 // monospace 12px
	lineHeight = 15
	padX       = 10
	padY       = 7
	gapX       = 20 // between boxes of a row
	gapY       = 48 // between rows
	margin     = 16
	titleH     = 26
)

// box is a placed node.
type box struct {
	n          Node
	x, y, w, h float64
}

func (b *box) cx() float64 { return b.x + b.w/2 }

// layout places g's nodes: rows by rank; the first row in input order,
// each later one by the mean position of each node's parents (nodes
// without a parent drawn after those with one), rows centred on the
// widest. It returns the boxes by ID, in drawing order, and the size.
func layout(g *Graph, top float64) (map[string]*box, []*box, float64, float64) {
	parents := map[string][]string{}
	for _, e := range g.Edges {
		if g.has(e.From) && g.has(e.To) {
			parents[e.To] = append(parents[e.To], e.From)
		}
	}
	pos := map[string]float64{} // position index of placed nodes
	byID := map[string]*box{}
	var all []*box
	var placed [][]*box
	width, y := 0.0, top
	for _, row := range rows(g) {
		key := func(n Node) float64 {
			var sum float64
			var k int
			for _, p := range parents[n.ID] {
				if v, ok := pos[p]; ok {
					sum, k = sum+v, k+1
				}
			}
			if k == 0 {
				return 1e9
			}
			return sum / float64(k)
		}
		row = slices.Clone(row)
		slices.SortStableFunc(row, func(a, b Node) int { return cmp.Compare(key(a), key(b)) })
		var bs []*box
		x, h := 0.0, 0.0
		for i, n := range row {
			lines := strings.Split(n.Label, "\n")
			longest := 0
			for _, l := range lines {
				longest = max(longest, len([]rune(l)))
			}
			b := &box{n: n, x: x, y: y, w: float64(longest)*charWidth + 2*padX, h: float64(len(lines))*lineHeight + 2*padY}
			x += b.w + gapX
			h = max(h, b.h)
			pos[n.ID] = float64(i)
			bs = append(bs, b)
		}
		width = max(width, x-gapX)
		placed = append(placed, bs)
		y += h + gapY
	}
	for _, bs := range placed {
		if len(bs) == 0 {
			continue
		}
		last := bs[len(bs)-1]
		shift := (width - (last.x + last.w)) / 2
		for _, b := range bs {
			b.x += shift
			byID[b.n.ID] = b
			all = append(all, b)
		}
	}
	// Bottom-up, move each parent over the middle of its children, keeping
	// the row's order and spacing; then put the leftmost box at the margin.
	children := map[string][]*box{}
	for _, e := range g.Edges {
		if p, c := byID[e.From], byID[e.To]; p != nil && c != nil && c.y > p.y {
			children[e.From] = append(children[e.From], c)
		}
	}
	for i := len(placed) - 2; i >= 0; i-- {
		right := math.Inf(-1)
		for _, b := range placed[i] {
			if kids := children[b.n.ID]; len(kids) > 0 {
				var sum float64
				for _, k := range kids {
					sum += k.cx()
				}
				b.x = sum/float64(len(kids)) - b.w/2
			}
			b.x = max(b.x, right+gapX)
			right = b.x + b.w
		}
	}
	left, right := math.Inf(1), math.Inf(-1)
	for _, b := range all {
		left, right = min(left, b.x), max(right, b.x+b.w)
	}
	for _, b := range all {
		b.x += margin - left
	}
	width = right - left
	if len(all) == 0 {
		return byID, all, 2 * margin, 0
	}
	return byID, all, width + 2*margin, y - gapY - top
}

// esc escapes s for XML text and attribute values.
func esc(s string) string { return html.EscapeString(s) }

// SVG writes gs as one SVG element (no XML declaration, so that it can be
// inlined in HTML), the graphs stacked with their titles above them. Each
// node is a <g class="node CLASS" data-id="ID">, each edge a
// <g class="edge" data-from="ID" data-to="ID">; every text is escaped.
func SVG(w io.Writer, title string, gs []Graph) error {
	var body strings.Builder
	width, y := 200.0, float64(margin)
	for i := range gs {
		g := &gs[i]
		fmt.Fprintf(&body, "<g class=\"graph\" data-index=\"%d\">\n", i)
		if g.Title != "" {
			fmt.Fprintf(&body, "<text class=\"title\" x=\"%d\" y=\"%.1f\" font-weight=\"bold\">%s</text>\n", margin, y+14, esc(g.Title))
			y += titleH
			width = max(width, float64(len([]rune(g.Title)))*charWidth+2*margin)
		}
		byID, boxes, gw, gh := layout(g, y)
		width = max(width, gw)
		for _, e := range g.Edges {
			from, to := byID[e.From], byID[e.To]
			if from == nil || to == nil {
				continue
			}
			x1, y1, x2, y2 := from.cx(), from.y+from.h, to.cx(), to.y
			fmt.Fprintf(&body, "<g class=\"edge\" data-from=\"%s\" data-to=\"%s\">", esc(e.From), esc(e.To))
			fmt.Fprintf(&body, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#495057\" stroke-width=\"1.2\"/>", x1, y1, x2, y2)
			body.WriteString(arrowHead(x1, y1, x2, y2))
			body.WriteString("</g>\n")
		}
		for _, b := range boxes {
			s := styleOf(b.n.Class)
			sw := "1.2"
			if g.Self != "" && b.n.ID == g.Self {
				sw = "3"
			}
			fmt.Fprintf(&body, "<g class=\"node %s\" data-id=\"%s\">", esc(cmp.Or(b.n.Class, "plain")), esc(b.n.ID))
			fmt.Fprintf(&body, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" rx=\"6\" fill=\"%s\" stroke=\"%s\" stroke-width=\"%s\"",
				b.x, b.y, b.w, b.h, s.fill, s.stroke, sw)
			if s.dash != "" {
				fmt.Fprintf(&body, " stroke-dasharray=\"%s\"", s.dash)
			}
			body.WriteString("/>")
			for j, l := range strings.Split(b.n.Label, "\n") {
				fmt.Fprintf(&body, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>", b.cx(), b.y+padY+float64(j+1)*lineHeight-3, esc(l))
			}
			body.WriteString("</g>\n")
		}
		body.WriteString("</g>\n")
		y += gh + 2*margin
	}
	height := y
	_, err := fmt.Fprintf(w, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "+
		"font-family=\"monospace\" font-size=\"12\" role=\"img\">\n<title>%s</title>\n%s</svg>\n",
		width, height, width, height, esc(title), body.String())
	return err
}

// arrowHead is a small filled triangle at (x2,y2) pointing along the line.
func arrowHead(x1, y1, x2, y2 float64) string {
	dx, dy := x2-x1, y2-y1
	l := math.Hypot(dx, dy)
	if l == 0 {
		return ""
	}
	ux, uy := dx/l, dy/l
	const size, half = 8.0, 3.5
	bx, by := x2-ux*size, y2-uy*size
	return fmt.Sprintf("<polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\" fill=\"#495057\"/>",
		x2, y2, bx-uy*half, by+ux*half, bx+uy*half, by-ux*half)
}

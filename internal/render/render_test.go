package render

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
)

// hostile is a label with everything dot, XML and HTML treat specially.
const hostile = `<script>alert("x")</script> & \ 'q'`

// testGraphs are two trees: a root, two inner nodes, three leaves, a failed
// node, and a node whose ID and label are hostile.
func testGraphs() []Graph {
	return []Graph{{
		Title: "(10.1.1.1/32, 232.1.1.1/32) iid 0",
		Self:  "203.0.113.1",
		Nodes: []Node{
			{ID: "0.0.0.0", Label: "ITR", Rank: 0, Class: ClassRoot},
			{ID: "203.0.113.1", Label: "RTR level 0\n203.0.113.1", Rank: 1, Class: ClassInner},
			{ID: "203.0.113.2", Label: "RTR level 0\n203.0.113.2", Rank: 1, Class: ClassInner},
			{ID: "203.0.113.9", Label: "RTR level 0\n203.0.113.9 (failed)", Rank: 1, Class: ClassFailed},
			{ID: "198.51.100.1", Label: "ETR\n198.51.100.1", Rank: 2, Class: ClassLeaf},
			{ID: "198.51.100.2", Label: "ETR\n198.51.100.2", Rank: 2, Class: ClassLeaf},
			{ID: hostile, Label: hostile, Rank: 2, Class: ClassLeaf},
		},
		Edges: []Edge{{"0.0.0.0", "203.0.113.1"}, {"0.0.0.0", "203.0.113.2"}, {"203.0.113.1", "198.51.100.1"},
			{"203.0.113.2", "198.51.100.2"}, {"203.0.113.2", hostile}},
	}, {
		Title: `(*, 239.1.1.1/32) iid 7 "second"`,
		Nodes: []Node{{ID: "0.0.0.0", Label: "ITR", Class: ClassRoot}, {ID: "192.0.2.5", Label: "ETR\n192.0.2.5", Rank: 1, Class: ClassLeaf}},
		Edges: []Edge{{"0.0.0.0", "192.0.2.5"}, {"0.0.0.0", "not-a-node"}},
	}}
}

// TestDotParses: Graphviz reads the dot text (one graph, and several as
// clusters) and draws every node and edge; hostile labels do not break it.
func TestDotParses(t *testing.T) {
	dot := testkit.Tool(t, "dot")
	for _, gs := range [][]Graph{testGraphs()[:1], testGraphs()} {
		var b bytes.Buffer
		if err := Dot(&b, `trees "all"`, gs); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, dot, "-Tsvg")
		cmd.Stdin = bytes.NewReader(b.Bytes())
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		cancel()
		if err != nil || stderr.Len() > 0 {
			t.Fatalf("dot -Tsvg: %v %s\ninput:\n%s", err, stderr.Bytes(), b.Bytes())
		}
		// Graphviz titles each node <g class="node"><title>ID</title> and
		// each edge <title>FROM&#45;&gt;TO</title>.
		svg := parseSVG(t, out)
		nodes, edges := 0, 0
		for _, g := range svg.groups {
			switch g.Class {
			case "node":
				nodes++
			case "edge":
				edges++
			}
		}
		wantNodes, wantEdges := 0, 0
		for _, g := range gs {
			wantNodes += len(g.Nodes)
			for _, e := range g.Edges {
				if g.has(e.From) && g.has(e.To) {
					wantEdges++
				}
			}
		}
		if nodes != wantNodes || edges != wantEdges {
			t.Errorf("%d graphs: Graphviz drew %d nodes and %d edges, want %d and %d", len(gs), nodes, edges, wantNodes, wantEdges)
		}
		if !slices.ContainsFunc(svg.texts, func(s string) bool { return s == hostile }) {
			t.Errorf("the hostile label did not come through as text: %q", svg.texts)
		}
	}
}

// svgDoc is what the tests read back from an SVG document.
type svgDoc struct {
	root   string
	title  string
	groups []xg
	texts  []string
}

// xg is an SVG <g> with the attributes the tests look at.
type xg struct {
	Class, ID, From, To string
	Texts               []string
}

// parseSVG decodes b as XML (failing the test on any error) and collects
// its <g> groups and texts.
func parseSVG(t *testing.T, b []byte) svgDoc {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	d.Entity = xml.HTMLEntity
	var doc svgDoc
	var stack []*xg
	var inText, inTitle bool
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, b)
		}
		switch x := tok.(type) {
		case xml.StartElement:
			depth++
			if doc.root == "" {
				doc.root = x.Name.Space + " " + x.Name.Local
			}
			switch x.Name.Local {
			case "g":
				g := &xg{}
				for _, a := range x.Attr {
					switch a.Name.Local {
					case "class":
						g.Class = a.Value
					case "data-id":
						g.ID = a.Value
					case "data-from":
						g.From = a.Value
					case "data-to":
						g.To = a.Value
					}
				}
				stack = append(stack, g)
			case "text":
				inText = true
			case "title":
				inTitle = depth == 2
			}
		case xml.EndElement:
			depth--
			switch x.Name.Local {
			case "g":
				doc.groups = append(doc.groups, *stack[len(stack)-1])
				stack = stack[:len(stack)-1]
			case "text":
				inText = false
			case "title":
				inTitle = false
			}
		case xml.CharData:
			if inTitle {
				doc.title += string(x)
			}
			if inText {
				doc.texts = append(doc.texts, string(x))
				if len(stack) > 0 {
					stack[len(stack)-1].Texts = append(stack[len(stack)-1].Texts, string(x))
				}
			}
		}
	}
	return doc
}

// TestSVGWellFormed: the SVG is well-formed XML in the SVG namespace with
// every node (its class and every label line) and every edge between
// existing nodes, hostile text escaped and read back unchanged.
func TestSVGWellFormed(t *testing.T) {
	gs := testGraphs()
	var b bytes.Buffer
	if err := SVG(&b, "trees <all>", gs); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<script") {
		t.Fatalf("unescaped markup in the SVG:\n%s", b.String())
	}
	doc := parseSVG(t, b.Bytes())
	if doc.root != "http://www.w3.org/2000/svg svg" || doc.title != "trees <all>" {
		t.Errorf("root %q title %q", doc.root, doc.title)
	}
	type edge struct{ from, to string }
	var gotNodes []Node
	var gotEdges []edge
	for _, g := range doc.groups {
		cls := strings.Fields(g.Class)
		switch {
		case len(cls) == 2 && cls[0] == "node":
			gotNodes = append(gotNodes, Node{ID: g.ID, Label: strings.Join(g.Texts, "\n"), Class: cls[1]})
		case g.Class == "edge":
			gotEdges = append(gotEdges, edge{g.From, g.To})
		}
	}
	var wantNodes []Node
	var wantEdges []edge
	for _, g := range gs {
		for _, n := range g.Nodes {
			wantNodes = append(wantNodes, Node{ID: n.ID, Label: n.Label, Class: n.Class})
		}
		for _, e := range g.Edges {
			if g.has(e.From) && g.has(e.To) {
				wantEdges = append(wantEdges, edge{e.From, e.To})
			}
		}
	}
	byID := func(a, b Node) int { return strings.Compare(a.ID+a.Label, b.ID+b.Label) }
	slices.SortFunc(gotNodes, byID)
	slices.SortFunc(wantNodes, byID)
	if !slices.Equal(gotNodes, wantNodes) {
		t.Errorf("nodes\n got %+v\nwant %+v", gotNodes, wantNodes)
	}
	cmpEdge := func(a, b edge) int { return strings.Compare(a.from+" "+a.to, b.from+" "+b.to) }
	slices.SortFunc(gotEdges, cmpEdge)
	slices.SortFunc(wantEdges, cmpEdge)
	if !slices.Equal(gotEdges, wantEdges) {
		t.Errorf("edges\n got %q\nwant %q", gotEdges, wantEdges)
	}
}

// TestLayout: every row is below the one of the rank before, boxes of a
// row do not overlap, children sit under their parents (the row ordered by
// the parents' positions, each parent centred over its children) and the
// picture's size holds every box.
func TestLayout(t *testing.T) {
	g := testGraphs()[0]
	// Shuffle the leaves so that only the barycentre ordering puts
	// 198.51.100.2's and the hostile leaf's parent order right.
	g.Nodes[4], g.Nodes[6] = g.Nodes[6], g.Nodes[4]
	byID, boxes, w, h := layout(&g, 0)
	if len(boxes) != len(g.Nodes) {
		t.Fatalf("%d boxes for %d nodes", len(boxes), len(g.Nodes))
	}
	for _, a := range boxes {
		if a.x < 0 || a.y < 0 || a.x+a.w > w || a.y+a.h > h {
			t.Errorf("%q at (%v,%v %vx%v) outside %vx%v", a.n.ID, a.x, a.y, a.w, a.h, w, h)
		}
		for _, b := range boxes {
			if a != b && a.n.Rank == b.n.Rank && a.x < b.x+b.w && b.x < a.x+a.w {
				t.Errorf("%q and %q overlap", a.n.ID, b.n.ID)
			}
			if a.n.Rank < b.n.Rank && a.y+a.h >= b.y {
				t.Errorf("%q (rank %d) not above %q (rank %d)", a.n.ID, a.n.Rank, b.n.ID, b.n.Rank)
			}
		}
	}
	// Leaves in the order of their parents: 203.0.113.1's child first.
	if !(byID["198.51.100.1"].x < byID["198.51.100.2"].x && byID["198.51.100.1"].x < byID[hostile].x) {
		t.Errorf("leaves not ordered by their parents: %v %v %v", byID["198.51.100.1"].x, byID["198.51.100.2"].x, byID[hostile].x)
	}
	// Parents centred over their children.
	for parent, kids := range map[string][]string{"0.0.0.0": {"203.0.113.1", "203.0.113.2"}, "203.0.113.2": {"198.51.100.2", hostile}} {
		var mid float64
		for _, k := range kids {
			mid += byID[k].cx() / float64(len(kids))
		}
		if d := byID[parent].cx() - mid; d > 0.01 || d < -0.01 {
			t.Errorf("%s is %v off the middle of its children", parent, d)
		}
	}
	if _, boxes, w, h := layout(&Graph{}, 0); len(boxes) != 0 || h != 0 || w <= 0 {
		t.Errorf("empty graph: %d boxes, %vx%v", len(boxes), w, h)
	}
}

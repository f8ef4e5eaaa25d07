package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/router"
)

// pictureTrees are the trees the picture tests' API serves: an ITR's view
// of a two-level tree with a failed RTR, and a Map-Server's (*,G).
var pictureTrees = []router.McastTreeView{{
	IID: 0, Source: "10.1.1.1/32", Group: "232.1.1.1/32", Role: "itr", Level: -1, Self: "192.0.2.1",
	Text: "(10.1.1.1/32, 232.1.1.1/32) iid 0: itr\n",
	Graph: router.TreeGraphView{
		Nodes: []router.TreeNodeView{{Addr: "192.0.2.1", Level: -1, Role: "itr"}, {Addr: "203.0.113.1", Level: 0, Role: "rtr"},
			{Addr: "203.0.113.9", Level: 0, Role: "failed"}, {Addr: "203.0.114.1", Level: 1, Role: "rtr"},
			{Addr: "198.51.100.1", Level: 128, Role: "etr"}, {Addr: "198.51.100.2", Level: 128, Role: "etr"}},
		Edges: []router.TreeEdgeView{{Parent: "192.0.2.1", Child: "203.0.113.1"}, {Parent: "203.0.113.1", Child: "203.0.114.1"},
			{Parent: "203.0.114.1", Child: "198.51.100.1"}, {Parent: "203.0.114.1", Child: "198.51.100.2"}},
	},
}, {
	IID: 7, Source: "0.0.0.0/0", Group: "239.1.1.1/32", Role: "map-server", Level: -1,
	Text: "(*, 239.1.1.1/32) iid 7: map-server\n",
	Graph: router.TreeGraphView{
		Nodes: []router.TreeNodeView{{Addr: "0.0.0.0", Level: -1, Role: "itr"}, {Addr: "192.0.2.7", Level: 128, Role: "etr"}},
		Edges: []router.TreeEdgeView{{Parent: "0.0.0.0", Child: "192.0.2.7"}},
	},
}}

// startTreeAPI serves /v1/mcast/trees and /v1/mcast/tree (the query's
// group picks the tree) from pictureTrees on a Unix socket.
func startTreeAPI(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "trees.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/mcast/trees", func(w http.ResponseWriter, _ *http.Request) { json.NewEncoder(w).Encode(pictureTrees) })
	mux.HandleFunc("GET /v1/mcast/tree", func(w http.ResponseWriter, r *http.Request) {
		for _, v := range pictureTrees {
			if v.Group == r.URL.Query().Get("group") {
				json.NewEncoder(w).Encode(v)
				return
			}
		}
		http.Error(w, "no multicast state for that (S,G)", http.StatusNotFound)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// svgContent reads an SVG document: it fails the test unless b is
// well-formed XML, and returns the data-id of every node group and
// "FROM->TO" of every edge group.
func svgContent(t *testing.T, b []byte) (nodes, edges []string) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, b)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "g" {
			at := map[string]string{}
			for _, a := range se.Attr {
				at[a.Name.Local] = a.Value
			}
			switch {
			case strings.HasPrefix(at["class"], "node "):
				nodes = append(nodes, at["data-id"])
			case at["class"] == "edge":
				edges = append(edges, at["data-from"]+"->"+at["data-to"])
			}
		}
	}
	return nodes, edges
}

// want lists the node addresses and edges of trees.
func want(trees []router.McastTreeView) (nodes, edges []string) {
	for _, v := range trees {
		for _, n := range v.Graph.Nodes {
			nodes = append(nodes, n.Addr)
		}
		for _, e := range v.Graph.Edges {
			edges = append(edges, e.Parent+"->"+e.Child)
		}
	}
	return nodes, edges
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestMcastTreeSVG: `mcast tree -o svg` draws every tree the router knows,
// `mcast tree S G -o svg` one: well-formed XML with every node and edge of
// the API's graphs, this router's node and the failed RTR styled.
func TestMcastTreeSVG(t *testing.T) {
	sock := startTreeAPI(t)
	out := mustCtl(t, sock, "mcast", "tree", "-o", "svg")
	if !strings.HasPrefix(out, "<?xml") {
		t.Errorf("no XML declaration: %.60q", out)
	}
	nodes, edges := svgContent(t, []byte(out))
	wn, we := want(pictureTrees)
	if !sameSet(nodes, wn) || !sameSet(edges, we) {
		t.Errorf("all trees: nodes %q edges %q, want %q and %q", nodes, edges, wn, we)
	}
	if !strings.Contains(out, `<g class="node failed" data-id="203.0.113.9">`) || !strings.Contains(out, `stroke-width="3"`) {
		t.Errorf("the failed RTR or this router's node is not marked:\n%s", out)
	}
	out = mustCtl(t, sock, "mcast", "tree", "--iid", "7", "*", "239.1.1.1/32", "-o", "svg")
	nodes, edges = svgContent(t, []byte(out))
	wn, we = want(pictureTrees[1:])
	if !sameSet(nodes, wn) || !sameSet(edges, we) {
		t.Errorf("one tree: nodes %q edges %q, want %q and %q", nodes, edges, wn, we)
	}
	if !strings.Contains(out, "(*, 239.1.1.1/32) iid 7, as map-server sees it") {
		t.Errorf("no title naming the tree:\n%s", out)
	}
}

// TestMcastTreeDot: `mcast tree -o dot` is Graphviz input that dot reads
// and draws with every node and edge.
func TestMcastTreeDot(t *testing.T) {
	dot := testkit.Tool(t, "dot")
	sock := startTreeAPI(t)
	for _, args := range [][]string{{"mcast", "tree", "-o", "dot"}, {"mcast", "tree", "10.1.1.1", "232.1.1.1/32", "-o", "dot"}} {
		out := mustCtl(t, sock, args...)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, dot, "-Tsvg")
		cmd.Stdin = strings.NewReader(out)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		svg, err := cmd.Output()
		cancel()
		if err != nil || stderr.Len() > 0 {
			t.Fatalf("rlocctl %s | dot -Tsvg: %v %s\n%s", strings.Join(args, " "), err, stderr.Bytes(), out)
		}
		trees := pictureTrees
		if len(args) > 4 {
			trees = trees[:1]
		}
		wn, we := want(trees)
		if n, e := strings.Count(string(svg), `class="node"`), strings.Count(string(svg), `class="edge"`); n != len(wn) || e != len(we) {
			t.Errorf("rlocctl %s: Graphviz drew %d nodes and %d edges, want %d and %d", strings.Join(args, " "), n, e, len(wn), len(we))
		}
	}
}

// TestPictureFormats: dot and svg are formats of the picture commands
// (mcast tree, ddt delegations, ddt referrals, alt, msx agreements) only; -o
// completes with them there.
func TestPictureFormats(t *testing.T) {
	sock := startTreeAPI(t)
	if _, err := ctl(t, sock, "stats", "-o", "svg"); err == nil || !strings.Contains(err.Error(), "want -o table, -o json or -o yaml") {
		t.Errorf("stats -o svg: %v", err)
	}
	for _, args := range [][]string{{"mcast", "tree"}, {"ddt", "delegations"}, {"ddt", "referrals"}, {"alt"}, {"msx", "agreements"}} {
		if _, err := ctl(t, sock, append(args, "-o", "png")...); err == nil || !strings.Contains(err.Error(), "want -o table, json, yaml or dot, svg") {
			t.Errorf("%s -o png: %v", strings.Join(args, " "), err)
		}
	}
	if out := mustCtl(t, sock, "mcast", "tree"); !strings.Contains(out, "(10.1.1.1/32, 232.1.1.1/32) iid 0: itr\n\n(*, 239.1.1.1/32) iid 7: map-server\n") {
		t.Errorf("mcast tree as text:\n%s", out)
	}
	var got []router.McastTreeView
	if err := json.Unmarshal([]byte(mustCtl(t, sock, "mcast", "tree", "-o", "json")), &got); err != nil || len(got) != 2 || len(got[0].Graph.Edges) != 4 {
		t.Errorf("mcast tree -o json: %v %+v", err, got)
	}
	out := mustCtl(t, sock, "__complete", "mcast", "tree", "-o", "")
	if !strings.HasPrefix(out, "table\njson\nyaml\ndot\nsvg\n") {
		t.Errorf("completion of -o: %q", out)
	}
}

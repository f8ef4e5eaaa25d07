package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/rloc-router/rloc/internal/testkit"
)

// altStatusListen is where mr's status page listens in TestALT's lab (in
// mr's own namespace).
const altStatusListen = "127.0.0.1:8480"

// statusPageEdges has headless Chromium load node's status page inside
// node's namespace (a running lab) and returns the edges ("from -> to")
// of every picture in the page's mapping-system section as Chromium
// rendered it, and whether the page's script ran. A screenshot is kept in
// the test's artifact directory (go test -artifacts).
func (n *network) statusPageEdges(t *testing.T, node, listen, shot string) (edges map[string]bool, live bool) {
	t.Helper()
	bin := testkit.Tool(t, "chromium")
	args := []string{bin, "--headless", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
		"--disable-extensions", "--no-sandbox", "--user-data-dir=" + t.TempDir(), "--dump-dom",
		"--screenshot=" + filepath.Join(t.ArtifactDir(), shot), "--window-size=1280,1600", "--hide-scrollbars", "http://" + listen + "/"}
	c, err := n.lab.Command(node, args...)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Start(); err != nil {
		t.Fatalf("chromium in %s: %v", node, err)
	}
	kill := time.AfterFunc(60*time.Second, func() { c.Process.Kill() }) // bounded
	err = c.Wait()
	kill.Stop()
	if err != nil {
		t.Fatalf("chromium in %s: %v\n%s", node, err, stderr.Bytes())
	}
	out := stdout.Bytes()
	doc, err := html.Parse(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("chromium's DOM does not parse: %v", err)
	}
	attr := func(n *html.Node, k string) string {
		for _, a := range n.Attr {
			if a.Key == k {
				return a.Val
			}
		}
		return ""
	}
	edges = map[string]bool{}
	for e := range doc.Descendants() {
		if e.Type != html.ElementNode {
			continue
		}
		if e.Data == "html" && attr(e, "data-live") == "1" {
			live = true
		}
		if e.Data != "div" || attr(e, "id") != "mapping-system" {
			continue
		}
		for g := range e.Descendants() {
			if g.Type == html.ElementNode && g.Data == "g" && attr(g, "class") == "edge" {
				edges[attr(g, "data-from")+" -> "+attr(g, "data-to")] = true
			}
		}
	}
	if fi, err := os.Stat(filepath.Join(t.ArtifactDir(), shot)); err != nil || fi.Size() == 0 {
		t.Errorf("no screenshot of %s's status page: %v", node, err)
	}
	if len(edges) == 0 {
		t.Errorf("%s's status page has no mapping-system picture:\n%s", node, strings.TrimSpace(string(out)))
	}
	return edges, live
}

package router

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/rloc-router/rloc/fastpath"
	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// hostileName is a router and site name that would run script if a page
// printed it unescaped.
const hostileName = `rt<script>document.title="owned"</script><img src=x onerror=alert(1)>"'&`

// TestStatusListenValidation: the status page is off without a listen
// address, and on loopback unless status.remote says otherwise.
func TestStatusListenValidation(t *testing.T) {
	for _, tc := range []struct {
		listen string
		remote bool
		want   string // "" valid, else part of the error
	}{
		{"", false, ""},
		{"127.0.0.1:8080", false, ""},
		{"[::1]:0", false, ""},
		{"localhost:9000", false, ""},
		{"0.0.0.0:8080", false, "status.listen: \"0.0.0.0:8080\" is not a loopback address"},
		{":8080", false, "set status.remote: true"},
		{"192.0.2.1:8080", false, "not a loopback address"},
		{"0.0.0.0:8080", true, ""},
		{"127.0.0.1", false, "status.listen: \"127.0.0.1\" is not host:port"},
		{"127.0.0.1:http", false, "bad port"},
	} {
		c := Config{Status: StatusOptions{Listen: tc.listen, Remote: tc.remote}}
		err := c.validateStatus()
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("listen %q remote %v: %v, want %q", tc.listen, tc.remote, err, tc.want)
		}
	}
}

// startStatusMS starts a multicast Map-Server whose name and site name are
// hostileName, with its status page on loopback, and registers with it:
// 10.1.0.0/24 (unicast) and an (S,G) tree of a level-0 RTR, a level-1 RTR
// and two receivers' ETRs. It returns the router once the Map-Server
// holds the whole tree.
func startStatusMS(t *testing.T) *Router {
	t.Helper()
	site := testSite()
	site.Name = hostileName
	site.Prefixes = append(site.Prefixes, slowpath.SitePrefix{EIDPrefix: slowpath.EIDPrefix{Prefix: netip.MustParsePrefix("224.0.0.0/4")},
		AcceptMoreSpecifics: true})
	r, err := Start(Config{
		Name:      hostileName,
		Roles:     Roles{MapServer: true, MapResolver: true},
		Control:   ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Sites:     []slowpath.SiteConfig{site},
		Multicast: MulticastOptions{Enabled: true, Key: slowpath.AuthKey{KeyID: 2, Alg: wire.AuthHMACSHA256128, Secret: "mc-domain-secret"}},
		Mgmt:      MgmtOptions{Socket: filepath.Join(t.TempDir(), "mgmt.sock")},
		Status:    StatusOptions{Listen: "127.0.0.1:0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	c := udpLocal(t)
	register(t, r, c, testSecret, false, 1)
	src, grp := netip.MustParsePrefix("10.1.0.5/32"), netip.MustParsePrefix("232.1.1.1/32")
	for i, e := range []struct {
		level uint8
		rloc  string
	}{{0, "192.0.2.10"}, {1, "192.0.2.20"}, {128, "192.0.2.31"}, {128, "192.0.2.32"}} {
		reg := wire.MapRegister{Merge: true, Nonce: wire.Nonce{8, byte(i)}, Auth: wire.NewAuth(1, wire.AuthHMACSHA256128, false),
			XTRIDPresent: true, XTRID: wire.XTRID{byte(i + 1)}, SiteID: 1,
			Records: []wire.Record{slowpath.SGRecord(slowpath.NewSGKey(0, src, grp), 3,
				[]wire.RLENode{{Level: e.level, Address: wire.IPAddress(netip.MustParseAddr(e.rloc))}})}}
		b, err := reg.AppendSigned(nil, []byte(testSecret))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteToUDPAddrPort(b, r.Engine().Addr()); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitFor(t, "the Map-Server's tree of all four registrations", func() error {
		ts := r.McastTrees()
		if len(ts) != 1 || len(ts[0].Graph.Edges) != 4 || len(r.Registrations()) != 1 {
			return fmt.Errorf("trees %+v, %d registrations", ts, len(r.Registrations()))
		}
		return nil
	})
	return r
}

func getStatus(t *testing.T, r *Router, path string) (*http.Response, []byte) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + r.StatusAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestStatusPageEscapes: every text the page shows is escaped (a router
// and a site named with markup show as text, never as markup), the page
// carries no secret, it is read-only (GET only), and its CSP allows
// nothing but its own style and script.
func TestStatusPageEscapes(t *testing.T) {
	r := startStatusMS(t)
	resp, b := getStatus(t, r, "/")
	page := string(b)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	if n := strings.Count(page, "<script"); n != 1 {
		t.Errorf("%d <script elements, want only the page's own:\n%s", n, page)
	}
	for _, bad := range []string{"<img", `document.title="owned"`} {
		if strings.Contains(page, bad) {
			t.Errorf("unescaped %q in the page", bad)
		}
	}
	if !strings.Contains(page, "rt&lt;script&gt;document.title=&#34;owned&#34;&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&#34;&#39;&amp;") {
		t.Errorf("the hostile name is not shown escaped:\n%s", page)
	}
	for _, secret := range []string{testSecret, "mc-domain-secret"} {
		if strings.Contains(page, secret) {
			t.Errorf("the page shows the key %q", secret)
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.HasPrefix(csp, "default-src 'none'; style-src 'sha256-") || !strings.Contains(csp, "script-src 'sha256-") ||
		!strings.Contains(page, "<script>"+statusScript+"</script>") || !strings.Contains(page, "<style>"+statusStyle+"</style>") {
		t.Errorf("CSP %q does not match the page's own style and script", csp)
	}
	req, _ := http.NewRequest("POST", "http://"+r.StatusAddr()+"/", strings.NewReader("x"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %v %v", resp.Status, err)
	}
	if resp, _ := getStatus(t, r, "/v1/map-cache"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the management API is reachable on the status listener: %s", resp.Status)
	}
}

// TestStatusEvents: /events sends one server-sent event per router event,
// its kind only; at most statusStreams are open at once.
func TestStatusEvents(t *testing.T) {
	r := startStatusMS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+r.StatusAddr()+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	testkit.WaitFor(t, "the status page's event subscription", func() error {
		if !r.events.active() {
			return fmt.Errorf("no subscriber")
		}
		return nil
	})
	register(t, r, udpLocal(t), testSecret, false, 9)
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: "+string(EventRegistrationAccepted)+"\n" {
		t.Errorf("event %q, %v", line, err)
	}
	for i := 1; i < statusStreams; i++ {
		resp, err := http.DefaultClient.Do(req.Clone(ctx))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %v %v", i+1, resp, err)
		}
		defer resp.Body.Close()
	}
	resp, err = http.DefaultClient.Do(req.Clone(ctx))
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("stream %d: %v %v", statusStreams+1, resp, err)
	}
	resp.Body.Close()
}

// domByID parses an HTML document and returns its elements by id and the
// root element.
func domByID(t *testing.T, b []byte) (map[string]*html.Node, *html.Node) {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]*html.Node{}
	var root *html.Node
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		if n.Data == "html" {
			root = n
		}
		if id := attr(n, "id"); id != "" {
			ids[id] = n
		}
	}
	return ids, root
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}

// counterRows returns the rows (name → value) of the counter table titled
// title under n.
func counterRows(n *html.Node, title string) map[string]string {
	for t := range n.Descendants() {
		if t.Type != html.ElementNode || t.Data != "table" {
			continue
		}
		rows := map[string]string{}
		found := false
		for tr := range t.Descendants() {
			if tr.Type != html.ElementNode || tr.Data != "tr" {
				continue
			}
			var cells []string
			for c := tr.FirstChild; c != nil; c = c.NextSibling {
				if c.Type == html.ElementNode && (c.Data == "td" || c.Data == "th") {
					cells = append(cells, text(c))
				}
			}
			switch {
			case len(cells) == 1 && cells[0] == title:
				found = true
			case len(cells) == 2:
				rows[cells[0]] = cells[1]
			}
		}
		if found {
			return rows
		}
	}
	return nil
}

// chromium runs headless Chromium with args (the URL last) and returns its
// standard output.
func chromium(t *testing.T, args ...string) []byte {
	t.Helper()
	bin := testkit.Tool(t, "chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := []string{"--headless", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
		"--user-data-dir=" + t.TempDir()}
	if os.Geteuid() == 0 {
		base = append(base, "--no-sandbox") // Chromium refuses to run as root with its sandbox
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// TestStatusPageChromium: headless Chromium loads the status page of a
// running Map-Server (on loopback) and the DOM it renders shows the roles,
// the map-cache and registration summary, the registrations with the
// hostile site name as text, the replication tree as SVG with every node
// and edge the API reports, and the counters; the page's script ran (the
// CSP let it). A screenshot is kept in the test's artifact directory
// (go test -artifacts).
func TestStatusPageChromium(t *testing.T) {
	testkit.Tool(t, "chromium")
	r := startStatusMS(t)
	url := "http://" + r.StatusAddr() + "/"
	shot := filepath.Join(t.ArtifactDir(), "status.png")
	dom := chromium(t, "--dump-dom", "--screenshot="+shot, "--window-size=1280,1600", "--hide-scrollbars", url)
	if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
		t.Errorf("no screenshot: %v", err)
	}
	ids, root := domByID(t, dom)
	if root == nil || attr(root, "data-live") != "1" {
		t.Errorf("the page's script did not run in Chromium (CSP?)")
	}
	for id, want := range map[string]string{
		"name":                  "rlocd " + hostileName,
		"roles":                 "Map-ServerMap-Resolver",
		"map-cache-summary":     "0 entries: 0 negative, 0 static, 0 multicast",
		"registrations-summary": fmt.Sprintf("%d registrations", len(r.Registrations())),
	} {
		if n := ids[id]; n == nil || strings.TrimSpace(text(n)) != want {
			t.Errorf("#%s: %q, want %q", id, func() string {
				if n == nil {
					return "(missing)"
				}
				return text(n)
			}(), want)
		}
	}
	var scripts, imgs int
	for n := range root.Descendants() {
		if n.Type == html.ElementNode && n.Data == "script" {
			scripts++
		}
		if n.Type == html.ElementNode && n.Data == "img" {
			imgs++
		}
	}
	if scripts != 1 || imgs != 0 {
		t.Errorf("the DOM has %d scripts and %d images: the hostile name became markup", scripts, imgs)
	}
	regs := ids["registrations"]
	if regs == nil {
		t.Fatal("no registrations table")
	}
	rt := text(regs)
	for _, g := range r.Registrations() {
		if !strings.Contains(rt, g.Site+"0"+g.EID) {
			t.Errorf("registration %s %s not in the table %q", g.Site, g.EID, rt)
		}
	}
	trees := ids["trees"]
	if trees == nil {
		t.Fatal("no trees")
	}
	var nodes, edges []string
	for n := range trees.Descendants() {
		if n.Type == html.ElementNode && n.Data == "g" {
			switch cls := attr(n, "class"); {
			case strings.HasPrefix(cls, "node "):
				nodes = append(nodes, attr(n, "data-id"))
			case cls == "edge":
				edges = append(edges, attr(n, "data-from")+"->"+attr(n, "data-to"))
			}
		}
	}
	var wantNodes, wantEdges []string
	for _, v := range r.McastTrees() {
		for _, n := range v.Graph.Nodes {
			wantNodes = append(wantNodes, n.Addr)
		}
		for _, e := range v.Graph.Edges {
			wantEdges = append(wantEdges, e.Parent+"->"+e.Child)
		}
	}
	slices.Sort(nodes)
	slices.Sort(wantNodes)
	slices.Sort(edges)
	slices.Sort(wantEdges)
	if !slices.Equal(nodes, wantNodes) || !slices.Equal(edges, wantEdges) || len(wantEdges) != 4 {
		t.Errorf("tree in the DOM: nodes %q edges %q, want %q and %q", nodes, edges, wantNodes, wantEdges)
	}
	counters := ids["counters"]
	if counters == nil {
		t.Fatal("no counters")
	}
	var reg slowpath.MsgStats
	for _, m := range r.Stats().Messages {
		if m.Type == "map-register" {
			reg = m.MsgStats
		}
	}
	if got := counterRows(counters, "messages map-register")["received"]; reg.Received < 5 || got != fmt.Sprint(reg.Received) {
		t.Errorf("map-register received: page %q, API %d", got, reg.Received)
	}
	if got := counterRows(counters, "control plane")["registrations_accepted"]; got != fmt.Sprint(r.Stats().Control["registrations_accepted"]) {
		t.Errorf("registrations-accepted: page %q, API %d", got, r.Stats().Control["registrations_accepted"])
	}
}

// TestStatusMapCacheBounded: the page lists at most statusRows map-cache
// entries, sorted, and says how many more there are.
func TestStatusMapCacheBounded(t *testing.T) {
	r := startStatusMS(t)
	var ms []fastpath.StaticMapping
	for i := range statusRows + 3 {
		ms = append(ms, fastpath.StaticMapping{IID: uint32(i % 2), Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), 32),
			RLOCs: []fastpath.StaticRLOC{{Addr: netip.MustParseAddr("192.0.2.9"), Priority: 1, Weight: 100}}})
	}
	if err := fastpath.InstallStatic(r.Cache(), ms); err != nil {
		t.Fatal(err)
	}
	_, b := getStatus(t, r, "/")
	ids, _ := domByID(t, b)
	table := ids["map-cache"]
	if table == nil {
		t.Fatal("no map-cache table")
	}
	var keys []string
	for tr := range table.Descendants() {
		if tr.Type == html.ElementNode && tr.Data == "tr" {
			if td := tr.FirstChild; td != nil && td.Data == "td" {
				keys = append(keys, text(td)+" "+text(td.NextSibling))
			}
		}
	}
	if len(keys) != statusRows {
		t.Errorf("%d rows, want %d", len(keys), statusRows)
	}
	if !strings.Contains(string(b), "3 more: rlocctl map-cache lists them all.") {
		t.Error("no note of the 3 entries not shown")
	}
	if !slices.IsSortedFunc(keys, func(a, b string) int {
		ia, ea, _ := strings.Cut(a, " ")
		ib, eb, _ := strings.Cut(b, " ")
		if ia != ib {
			return strings.Compare(ia, ib)
		}
		return strings.Compare(ea, eb)
	}) {
		t.Errorf("rows not sorted by instance and EID: %q", keys)
	}
}

// TestStatusMappingSystem: a DDT node that is also a DDT Map-Resolver
// draws its delegations and the referral tree it has learned on the status
// page; a router with neither role has no mapping-system section.
func TestStatusMappingSystem(t *testing.T) {
	r, err := Start(Config{
		Name:        "ddt-status",
		Roles:       Roles{DDTNode: true, MapResolver: true},
		Control:     ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		MapResolver: MapResolverOptions{DDTRoots: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.9:4342")}},
		DDT: slowpath.DDTNodeConfig{
			Authoritative: []slowpath.EIDPrefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}},
			Delegations: []slowpath.DDTDelegation{{EIDPrefix: slowpath.EIDPrefix{Prefix: netip.MustParsePrefix("10.2.0.0/16")},
				Type: slowpath.DDTMapServer, Targets: []slowpath.DDTTarget{{Addr: netip.MustParseAddr("192.0.2.31"), Priority: 1}}}},
		},
		Mgmt:   MgmtOptions{Socket: filepath.Join(t.TempDir(), "mgmt.sock")},
		Status: StatusOptions{Listen: "127.0.0.1:0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	_, b := getStatus(t, r, "/")
	ids, _ := domByID(t, b)
	sec := ids["mapping-system"]
	if sec == nil {
		t.Fatalf("no mapping-system section:\n%s", b)
	}
	var drawn []string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "g" && strings.HasPrefix(attr(n, "class"), "node ") {
			drawn = append(drawn, attr(n, "data-id"))
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(sec)
	want := []string{"self", "d/0/10.2.0.0/16", "Map-Server/192.0.2.31", "self", "roots"}
	if !slices.Equal(drawn, want) {
		t.Errorf("mapping-system pictures draw %q, want %q", drawn, want)
	}
	ms := startStatusMS(t)
	if ids, _ := domByID(t, func() []byte { _, b := getStatus(t, ms, "/"); return b }()); ids["mapping-system"] != nil {
		t.Error("a Map-Server without DDT shows a mapping-system section")
	}
}

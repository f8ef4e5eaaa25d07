package e2e

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/internal/testkit/tsharktest"
	"github.com/rloc-router/rloc/lab"
	"github.com/rloc-router/rloc/router"
)

// altTunnel is one ALT tunnel of configs/lab/alt.yaml: its two nodes, the
// /31 of inner addresses (a gets the even one).
type altTunnel struct {
	a, b  string
	inner string // the even address of the /31: 10.255.0.N
}

var (
	altUnderlay = map[string]string{"mr": "192.0.2.100", "ms1": "192.0.2.101", "ms2": "192.0.2.102", "ms3": "192.0.2.103",
		"up": "192.0.2.200", "r1": "192.0.2.201", "r2": "192.0.2.202"}
	altASN = map[string]uint32{"up": 65000, "r1": 65001, "r2": 65002, "ms1": 65101, "ms2": 65102, "ms3": 65103, "mr": 65200}
	// altTunnels are the ALT's tunnels (picture: configs/lab/alt.yaml).
	altTunnels = []altTunnel{{"ms1", "r1", "10.255.0.0"}, {"ms2", "r1", "10.255.0.2"}, {"ms3", "r2", "10.255.0.4"},
		{"r1", "up", "10.255.0.6"}, {"r2", "up", "10.255.0.8"}, {"mr", "r2", "10.255.0.10"},
		{"ms2", "r2", "10.255.0.12"}, {"mr", "r1", "10.255.0.14"}}
)

// altPlan is an ALT: the underlay address and AS of its nodes and its
// tunnels.
type altPlan struct {
	underlay map[string]string
	asn      map[string]uint32
	tunnels  []altTunnel
}

// altSection writes node's alt section in configs/lab/alt.yaml's ALT.
func altSection(node string, extra string) string {
	return altPlan{altUnderlay, altASN, altTunnels}.section(node, extra)
}

// section writes node's alt section: its tunnels and BGP neighbours. The
// router ID is 10.0.0.N, N the last byte of node's underlay address.
func (p altPlan) section(node string, extra string) string {
	var b strings.Builder
	u := netip.MustParseAddr(p.underlay[node])
	rid := netip.AddrFrom4([4]byte{10, 0, 0, u.As4()[3]})
	fmt.Fprintf(&b, "alt:\n  asn: %d\n  router_id: %v\n  underlay: %v\n  hold_time: 3s\n  connect_retry: 1s\n  sync_interval: 200ms\n%s  neighbors:\n",
		p.asn[node], rid, u, extra)
	for _, t := range p.tunnels {
		even := netip.MustParseAddr(t.inner)
		odd := even.Next()
		var peer string
		var mine, theirs netip.Addr
		switch node {
		case t.a:
			peer, mine, theirs = t.b, even, odd
		case t.b:
			peer, mine, theirs = t.a, odd, even
		default:
			continue
		}
		fmt.Fprintf(&b, "    - {remote: %s, inner: %v/31, peer: %v, asn: %d}\n", p.underlay[peer], mine, theirs, p.asn[peer])
	}
	return b.String()
}

// altMSYAML is Map-Server msN serving site (its number) and announcing it
// into the ALT while registered. Site 4 also has its IPv4 prefix in
// instance-ID altIID (RD 0:7 on the ALT).
func altMSYAML(node, site string) string {
	extra := ""
	if site == "4" {
		extra = fmt.Sprintf(", {iid: %d, eid: 10.4.0.0/24}", altIID)
	}
	return fmt.Sprintf(`name: %s
roles: [map-server, alt]
sites:
  - name: site%s
    keys: [{id: 1, secret: key-%s}]
    prefixes: [{eid: 10.%s.0.0/24}, {eid: "2001:db8:%s::/64"}%s]
map_server: {registration_timeout: 4s}
`, node, site, site, site, site, extra) + altSection(node, "  announce_registered: true\n")
}

// altIID is the non-zero instance-ID of the ALT lab: site 4 registers
// 10.4.0.0/24 in it too.
const altIID = 7

// altXTRYAML is site's xTR registering with its Map-Server and resolving
// through the ALT's Map-Resolver.
func altXTRYAML(site, ms string) string {
	r := "192.0.2." + site
	extraDB := ""
	if site == "4" {
		extraDB = fmt.Sprintf("  - {iid: %d, eid: 10.4.0.0/24, rlocs: [{addr: %s}]}\n", altIID, r)
	}
	return fmt.Sprintf(`name: xtr%s
roles: [itr, etr]
rlocs: [%s]
interfaces: [{name: site0, side: site}, {name: core0, side: core}]
database:
  - {eid: 10.%s.0.0/24, rlocs: [{addr: %s}]}
  - {eid: "2001:db8:%s::/64", rlocs: [{addr: %s}]}
%smap_servers: [{addr: %s, key: {id: 1, secret: key-%s}}]
map_resolvers: [192.0.2.100]
etr: {register_interval: 1s, deregister_on_stop: true}
itr: {retransmit_interval: 300ms}
hold: {hold_time: 3s}
`, site, r, site, r, site, r, extraDB, altUnderlay[ms], site)
}

// altView reads node's GET /v1/alt.
func (n *network) altView(node string) router.ALTView {
	n.t.Helper()
	var v router.ALTView
	if err := n.get(node, "/v1/alt", &v); err != nil {
		n.t.Fatalf("%s /v1/alt: %v", node, err)
	}
	return v
}

// lig runs lig in node for eid through the Map-Resolver and returns its
// output.
func (n *network) lig(node, eid, src string, extra ...string) (string, error) {
	args := append([]string{buildTool(n.t, "lig"), eid, "--mr", "192.0.2.100", "--source", src, "--count", "3", "--timeout", "2s"}, extra...)
	c, err := n.lab.Command(node, args...)
	if err != nil {
		return "", err
	}
	out, err := c.CombinedOutput()
	return string(out), err
}

// ligRTT runs lig in node for eid through the resolver mr and returns the
// RTT it printed.
func (n *network) ligRTT(node, eid, src, mr string) (time.Duration, error) {
	c, err := n.lab.Command(node, buildTool(n.t, "lig"), eid, "--mr", mr, "--source", src, "--count", "3", "--timeout", "2s")
	if err != nil {
		return 0, err
	}
	out, err := c.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, out)
	}
	_, rest, ok := strings.Cut(string(out), "with rtt ")
	if !ok {
		return 0, fmt.Errorf("no rtt in %s", out)
	}
	var secs float64
	if _, err := fmt.Sscanf(rest, "%f", &secs); err != nil {
		return 0, err
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// TestALT runs the LISP+ALT lab with real daemons: the BGP sessions over
// the user-space GRE tunnels come up, the Map-Servers announce their
// registered sites (r1 aggregates them upward), the ITRs resolve through
// the Map-Resolver, which sends the Map-Requests into the ALT where they
// travel hop by hop (captured as GRE carrying LISP), pings cross the sites
// without loss, and a site that deregisters is withdrawn from the ALT and
// gets negative replies.
func TestALT(t *testing.T) {
	n := newLabNetwork(t, "../configs/lab/alt.yaml", "alt")
	buildTool(t, "lig") // now, so that the first n.lig does not wait for the build
	n.start("up", "name: up\nroles: [alt]\n"+altSection("up", ""))
	n.start("r1", "name: r1\nroles: [alt]\n"+altSection("r1", "  aggregates: [10.0.0.0/14]\n  summary_only: true\n"))
	n.start("r2", "name: r2\nroles: [alt]\n"+altSection("r2", ""))
	n.start("mr", "name: mr\nroles: [map-resolver, alt]\nstatus: {listen: \""+altStatusListen+"\"}\n"+altSection("mr", ""))
	n.start("ms1", altMSYAML("ms1", "1"))
	n.start("ms2", altMSYAML("ms2", "2"))
	n.start("ms3", altMSYAML("ms3", "4"))
	n.start("xtr1", altXTRYAML("1", "ms1"))
	n.start("xtr2", altXTRYAML("2", "ms2"))
	n.start("xtr4", altXTRYAML("4", "ms3"))

	// route finds p ("[iid]prefix" for a non-zero instance-ID) in v.
	route := func(v router.ALTView, p string) *router.ALTRouteView {
		for i := range v.Table {
			if v.Table[i].Name() == p {
				return &v.Table[i]
			}
		}
		return nil
	}
	t.Run("sessions and announcements", func(t *testing.T) {
		// BGP converges on its own time: wait for the whole expected
		// state, and name what was last missing.
		var last string
		check := func() string {
			for node := range altUnderlay {
				for _, nb := range n.altView(node).Neighbors {
					if nb.State != "established" {
						return fmt.Sprintf("%s: neighbour %v is %s", node, nb.Peer, nb.State)
					}
				}
			}
			v := n.altView("mr")
			for _, want := range []struct {
				node, prefix, peer string
				path               []uint32
				agg                bool
			}{
				// r1 announces its aggregate only (summary_only): site 1
				// is reached through it.
				{"mr", "10.0.0.0/14", "10.255.0.15", []uint32{65001}, true},
				{"mr", "10.2.0.0/24", "10.255.0.11", []uint32{65002, 65102}, false},
				{"mr", "10.4.0.0/24", "10.255.0.11", []uint32{65002, 65103}, false},
				// IPv6 EIDs travel the same sessions.
				{"mr", "2001:db8:4::/64", "10.255.0.11", []uint32{65002, 65103}, false},
				// The same prefix in instance-ID 7 (RD 0:7) is a route
				// of its own.
				{"mr", "[7]10.4.0.0/24", "10.255.0.11", []uint32{65002, 65103}, false},
				{"mr", "10.1.0.0/24", "", nil, false},
				{"r1", "10.1.0.0/24", "10.255.0.0", []uint32{65101}, false},
			} {
				if want.node != "mr" {
					v = n.altView(want.node)
				}
				r := route(v, want.prefix)
				if want.peer == "" {
					if r != nil {
						return fmt.Sprintf("%s has %s, which r1 keeps under its aggregate: %+v", want.node, want.prefix, r)
					}
					continue
				}
				if r == nil || r.Peer != want.peer || !slices.Equal(r.ASPath, want.path) || r.Aggregate != want.agg {
					return fmt.Sprintf("%s's route to %s: %+v", want.node, want.prefix, r)
				}
			}
			// The aggregate travels up and down again: r2 has it in two
			// hops (through up, or through mr).
			if r := route(n.altView("r2"), "10.0.0.0/14"); r == nil || len(r.ASPath) != 2 || r.ASPath[1] != 65001 || !r.Aggregate {
				return fmt.Sprintf("r2's route to r1's aggregate: %+v", r)
			}
			return ""
		}
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if last = check(); last == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the ALT did not converge in 30 s: %s", last)
			}
		}
		// The picture of mr's view (rlocctl alt -o svg, the status page)
		// has its neighbours and the routes behind each.
		g := router.ALTPicture(n.altView("mr"))
		edges := map[string]bool{}
		for _, e := range g.Edges {
			edges[e.From+" -> "+e.To] = true
		}
		for _, e := range []string{"self -> n/10.255.0.15", "self -> n/10.255.0.11", "n/10.255.0.15 -> p/10.0.0.0/14",
			"n/10.255.0.11 -> p/10.2.0.0/24", "n/10.255.0.11 -> p/2001:db8:4::/64"} {
			if !edges[e] {
				t.Errorf("mr's ALT picture lacks %s: %v", e, edges)
			}
		}
		// The same picture on mr's status page, as headless Chromium
		// renders it inside mr's namespace (issue 18: the mapping-system
		// topology in a real browser against a running lab).
		page, live := n.statusPageEdges(t, "mr", altStatusListen, "status-alt-mr.png")
		if !live {
			t.Errorf("mr's status page script did not run in Chromium (CSP?)")
		}
		for e := range edges {
			if !page[e] {
				t.Errorf("mr's status page in Chromium lacks the ALT picture's edge %s: %v", e, page)
			}
		}
		// The ALT table lives in rloc: no EID prefix in any kernel table of
		// an ALT node (data traffic never follows an ALT route).
		for node := range altUnderlay {
			c, err := n.lab.Command(node, "ip", "-o", "route", "show", "table", "all")
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: ip route: %v %s", node, err, out)
			}
			for _, eid := range []string{"10.0.0.0/14", "10.1.0.0", "10.2.0.0", "10.4.0.0", "2001:db8:"} {
				if strings.Contains(string(out), eid) {
					t.Fatalf("%s's kernel has a route for %s:\n%s", node, eid, out)
				}
			}
		}
		if v := n.altView("ms2"); !slices.Contains(v.Announced, netip.MustParsePrefix("10.2.0.0/24")) {
			t.Fatalf("ms2 announces %v", v.Announced)
		}
	})

	t.Run("resolution through the ALT", func(t *testing.T) {
		tool, err := lab.CaptureTool()
		testkit.Require(t, "a capture tool", err)
		tsharktest.Require(t)
		// Site 4 is behind r2 only: mr -> r2 -> ms3 (-> xtr4, which answers).
		file := filepath.Join(n.dir, "alt-r2.pcap")
		capt, err := n.lab.Capture("r2", "core0", "ip proto 47", file)
		if err != nil {
			t.Fatalf("capture with %s: %v", tool, err)
		}
		out, err := n.lig("xtr1", "10.4.0.10", "192.0.2.1")
		if err != nil || !strings.Contains(out, "Mapping entry for EID [0]10.4.0.0/24") || !strings.Contains(out, "192.0.2.4") {
			t.Fatalf("lig 10.4.0.10: %v\n%s", err, out)
		}
		t.Logf("resolved through the ALT:\n%s", out)
		// The same EID in instance-ID 7: the Map-Request (its EID in an
		// instance-ID LCAF) goes by the ALT routes of instance-ID 7, the
		// same way, and xtr4 answers with its mapping of instance-ID 7.
		out7, err := n.lig("xtr1", "10.4.0.10", "192.0.2.1", "--iid", fmt.Sprint(altIID))
		if err != nil || !strings.Contains(out7, fmt.Sprintf("Mapping entry for EID [%d]10.4.0.0/24", altIID)) || !strings.Contains(out7, "192.0.2.4") {
			t.Fatalf("lig --iid %d 10.4.0.10: %v\n%s", altIID, err, out7)
		}
		t.Logf("resolved through the ALT in instance-ID %d:\n%s", altIID, out7)
		out6, err := n.lig("xtr1", "2001:db8:4::10", "192.0.2.1")
		if err != nil || !strings.Contains(out6, "Mapping entry for EID [0]2001:db8:4::/64") || !strings.Contains(out6, "192.0.2.4") {
			t.Fatalf("lig 2001:db8:4::10 (an IPv6 Map-Request on the ALT): %v\n%s", err, out6)
		}
		if err := capt.Stop(); err != nil {
			t.Fatal(err)
		}
		var path []string
		for _, l := range tsharktest.DecodeFile(t, file) {
			if ty := tsharktest.Fields(l, "lisp.type"); len(ty) != 1 || ty[0] != "1" || tsharktest.Fields(l, "gre.proto") == nil {
				continue
			}
			ip := tsharktest.Fields(l, "ip.dst") // outer, then an IPv4 inner
			inner := ip[1:]
			if len(inner) == 0 {
				inner = tsharktest.Fields(l, "ipv6.dst")
			}
			if len(inner) != 1 || (inner[0] != "10.4.0.10" && inner[0] != "2001:db8:4::10") {
				t.Fatalf("Map-Request in GRE to %v, inner %v", ip, inner)
			}
			path = append(path, tsharktest.Fields(l, "ip.src")[0]+">"+ip[0]+" "+inner[0])
		}
		// Into r2 from mr, out of r2 to ms3, the IPv4 and the IPv6 request.
		for _, hop := range []string{"192.0.2.100>192.0.2.202", "192.0.2.202>192.0.2.103"} {
			if !slices.Contains(path, hop+" 10.4.0.10") || !slices.Contains(path, hop+" 2001:db8:4::10") {
				t.Fatalf("Map-Requests in GRE on r2's link (outer src>dst inner dst): %v", path)
			}
		}
		t.Logf("the Map-Request's path on r2's wire (tshark): %v", path)
		// Nothing on the tunnels was malformed or unexpected.
		for node := range altUnderlay {
			if v := n.altView(node); len(v.GREDropped) != 0 || v.Stats.NotMapRequest != 0 {
				t.Fatalf("%s dropped GRE %v, stats %+v", node, v.GREDropped, v.Stats)
			}
		}
		for node, want := range map[string]string{"mr": "sent", "r2": "forwarded", "ms3": "delivered"} {
			st := n.altView(node).Stats
			got := map[string]uint64{"sent": st.Sent, "forwarded": st.Forwarded, "delivered": st.Delivered}[want]
			if got == 0 {
				t.Fatalf("%s: %s %d: %+v", node, want, got, st)
			}
		}
	})

	t.Run("resolution latency", func(t *testing.T) {
		// The same EID resolved through the ALT (mr -> r2 -> ms3 -> xtr4)
		// and by its Map-Server directly (ms3 -> xtr4), alternately.
		var alt, direct []time.Duration
		for range 9 {
			for _, c := range []struct {
				mr  string
				out *[]time.Duration
			}{{"192.0.2.100", &alt}, {"192.0.2.103", &direct}} {
				d, err := n.ligRTT("xtr1", "10.4.0.10", "192.0.2.1", c.mr)
				if err != nil {
					t.Fatalf("lig through %s: %v", c.mr, err)
				}
				*c.out = append(*c.out, d)
			}
		}
		slices.Sort(alt)
		slices.Sort(direct)
		t.Logf("lig 10.4.0.10, 9 each, median (min..max): through the ALT (2 GRE hops) %v (%v..%v); the Map-Server directly %v (%v..%v)",
			alt[4], alt[0], alt[8], direct[4], direct[0], direct[8])
	})

	t.Run("pings across sites", func(t *testing.T) {
		for _, c := range []struct{ from, to string }{{"h1", "10.2.0.10"}, {"h2", "10.4.0.10"}, {"h4", "10.1.0.10"}} {
			got, err := n.lab.Ping(c.from, netip.MustParseAddr(c.to), 5, 3*time.Second)
			if err != nil || got != 5 {
				t.Fatalf("%s -> %s: %d/5 replies, %v", c.from, c.to, got, err)
			}
		}
	})

	t.Run("deregistered site withdrawn, negative replies", func(t *testing.T) {
		start := time.Now()
		n.stop("xtr4", true)
		n.waitFor(15*time.Second, "10.4.0.0/24 withdrawn from mr's ALT table, in instance-IDs 0 and 7", func() bool {
			v := n.altView("mr")
			return route(v, "10.4.0.0/24") == nil && route(v, fmt.Sprintf("[%d]10.4.0.0/24", altIID)) == nil
		})
		t.Logf("10.4.0.0/24 left the ALT %v after xtr4's deregistration", time.Since(start).Round(time.Millisecond))
		out, err := n.lig("xtr1", "10.4.0.10", "192.0.2.1")
		// Negative, for the prefix the ALT table leaves around the EID
		// (r1's aggregate 10.0.0.0/14 ends below it), not the site's.
		if err != nil || !strings.Contains(out, "Mapping entry for EID [0]10.4.0.0/14,") || !strings.Contains(out, "0 locator(s)") {
			t.Fatalf("lig 10.4.0.10 after the withdrawal: %v\n%s", err, out)
		}
		t.Logf("negative answer:\n%s", out)
	})

	t.Run("broken ALT link: re-convergence", func(t *testing.T) {
		// mr reaches site 2 through r2 (10.2.0.0/24 from ms2); ms2 and mr
		// also have tunnels to r1, which keeps site 2 under its aggregate.
		// Kill r2: once the BGP hold time (3 s) expires mr's longest
		// match for site 2 is the aggregate through r1, and r1 forwards
		// to ms2 over their tunnel.
		eid := netip.MustParseAddr("10.2.0.10")
		if r := lpm(n.altView("mr"), eid); r == nil || r.Peer != "10.255.0.11" {
			t.Fatalf("mr's route to site 2: %+v", r)
		}
		start := time.Now()
		n.stop("r2", false)
		n.waitFor(20*time.Second, "mr's route to site 2 through r1", func() bool {
			r := lpm(n.altView("mr"), eid)
			return r != nil && r.Peer == "10.255.0.15"
		})
		converged := time.Since(start)
		out, err := n.lig("xtr1", "10.2.0.10", "192.0.2.1")
		if err != nil || !strings.Contains(out, "Mapping entry for EID [0]10.2.0.0/24") {
			t.Fatalf("lig 10.2.0.10 after r2 died: %v\n%s", err, out)
		}
		t.Logf("r2 killed: mr's route to 10.2.0.10 moved to r1's aggregate after %v; resolution back after %v",
			converged.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	})
}

// lpm returns the longest route of v's ALT table that contains a.
func lpm(v router.ALTView, a netip.Addr) *router.ALTRouteView {
	var best *router.ALTRouteView
	for i := range v.Table {
		if r := &v.Table[i]; r.Prefix.Contains(a) && (best == nil || r.Prefix.Bits() > best.Prefix.Bits()) {
			best = r
		}
	}
	return best
}

package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/internal/testkit/bgpdtest"
	"github.com/rloc-router/rloc/internal/testkit/tsharktest"
	"github.com/rloc-router/rloc/lab"
	"github.com/rloc-router/rloc/slowpath/alt/gre"
)

// The ALT of configs/lab/alt-frr.yaml: mr -- frr -- ms, frr run by FRR.
var altFRRPlan = altPlan{
	underlay: map[string]string{"mr": "192.0.2.100", "ms": "192.0.2.101", "frr": "192.0.2.150"},
	asn:      map[string]uint32{"mr": 65200, "ms": 65101, "frr": 65150},
	tunnels:  []altTunnel{{"mr", "frr", "10.255.0.0"}, {"frr", "ms", "10.255.0.2"}},
}

// altFRRConf is frr's bgpd: eBGP with mr (10.255.0.0) and ms (10.255.0.3)
// over the tunnels, timers as short as the rloc side's (hold 3 s), the EID
// prefixes in the IPv4 L3VPN family (AFI 1, SAFI 128) as rloc's ALT
// sends them (alt.families: vpn, RD 0:<instance-ID>). bgpd keeps and
// passes on VPN routes without a VRF. For frr's kernel to forward the
// Map-Requests, the routes of instance-ID 0 are also imported into the
// default VRF's unicast table (import vpn), which zebra installs: rloc
// sends no route target, so the route-map on the session with ms adds
// the one the import matches (RT 65150:0). bgpd takes an imported route
// with a label (bgp.VPNLabel, implicit NULL) as valid over a connected
// eBGP next hop only on an interface with "mpls bgp forwarding"; zebra
// then installs it as a plain route (it pushes no implicit NULL; a real
// label would fail on this kernel, which has no MPLS). The imported
// unicast routes go to no neighbour (route-map none): the EID prefixes
// leave frr in the VPN family only.
const altFRRConf = `frr defaults traditional
hostname alt-frr
log stdout
router bgp 65150
 bgp router-id 10.0.0.150
 no bgp ebgp-requires-policy
 neighbor 10.255.0.0 remote-as 65200
 neighbor 10.255.0.0 timers 1 3
 neighbor 10.255.0.0 timers connect 1
 neighbor 10.255.0.3 remote-as 65101
 neighbor 10.255.0.3 timers 1 3
 neighbor 10.255.0.3 timers connect 1
 address-family ipv4 unicast
  neighbor 10.255.0.0 route-map none out
  neighbor 10.255.0.3 route-map none out
  rd vpn export 0:0
  rt vpn import 65150:0
  import vpn
 exit-address-family
 address-family ipv4 vpn
  neighbor 10.255.0.0 activate
  neighbor 10.255.0.3 activate
  neighbor 10.255.0.3 route-map alt-iid0 in
 exit-address-family
!
route-map alt-iid0 permit 10
 set extcommunity rt 65150:0
!
route-map none deny 10
!
interface altms
 mpls bgp forwarding
exit
`

// TestALTFRR puts an ALT router run by FRR on the Map-Request's path:
// in frr's namespace rloc's GRE terminates the two tunnels as
// point-to-point devices (one TUN each, no ALT logic), bgpd with zebra
// peers with mr and ms over them, zebra installs bgpd's best EID routes
// in frr's kernel table, and the kernel forwards the Map-Requests from
// one tunnel into the next. Checked: the sessions and the route through
// bgpd (mr's AS path 65150 65101), bgpd's RIB has the prefix from ms and
// advertises it to mr (vtysh JSON), frr's kernel routes it via ms's
// tunnel, lig through mr resolves site 1, and captures on mr's and ms's
// sides of frr show GRE carrying the LISP Map-Request into frr and out
// of it (inner TTL one less: frr's kernel forwarded it). When the site
// deregisters, the withdrawal crosses bgpd too.
func TestALTFRR(t *testing.T) {
	bgpdtest.Require(t)
	testkit.Tool(t, "vtysh")
	tsharktest.Require(t)
	tool, err := lab.CaptureTool()
	testkit.Require(t, "a capture tool", err)
	start := time.Now()
	n := newLabNetwork(t, "../configs/lab/alt-frr.yaml", "altfrr")
	buildTool(t, "lig") // now, so that the first n.lig does not wait for the build
	p := altFRRPlan

	// frr's tunnels: rloc's user-space GRE, one point-to-point TUN per
	// tunnel, opened in frr's namespace by this process.
	fns := n.lab.Node("frr")
	under := netip.MustParseAddr(p.underlay["frr"])
	devs := map[string]*gre.Device{}
	for _, c := range []struct{ name, peer, inner, peerInner string }{
		{"altmr", "mr", "10.255.0.1/31", "10.255.0.0"}, {"altms", "ms", "10.255.0.2/31", "10.255.0.3"}} {
		cfg := gre.Config{Name: c.name, Local: under, PointToPoint: true, Tunnels: []gre.TunnelConfig{{
			Remote: netip.MustParseAddr(p.underlay[c.peer]), Inner: netip.MustParsePrefix(c.inner), Peer: netip.MustParseAddr(c.peerInner)}}}
		var d *gre.Device
		err := fns.Do(func() (err error) { d, err = gre.Open(cfg); return err })
		testkit.Require(t, "a TUN device and a raw GRE socket in frr's namespace", err)
		t.Cleanup(func() { d.Close() })
		devs[c.name] = d
	}
	bd := bgpdtest.StartWithZebra(t, fns, altFRRConf)

	// BGP over the tunnels, captured on both sides of frr from before the
	// rloc daemons start until the route has crossed frr.
	stopBGPCaps, bgpFiles := captureGRE(t, n, tool, "altfrr-bgp-")

	n.start("mr", "name: mr\nroles: [map-resolver, alt]\n"+p.section("mr", ""))
	n.start("ms", `name: ms
roles: [map-server, alt]
sites:
  - name: site1
    keys: [{id: 1, secret: key-1}]
    prefixes: [{eid: 10.1.0.0/24}]
map_server: {registration_timeout: 4s}
`+p.section("ms", "  announce_registered: true\n"))
	n.start("xtr1", `name: xtr1
roles: [itr, etr]
rlocs: [192.0.2.1]
interfaces: [{name: site0, side: site}, {name: core0, side: core}]
database:
  - {eid: 10.1.0.0/24, rlocs: [{addr: 192.0.2.1}]}
map_servers: [{addr: 192.0.2.101, key: {id: 1, secret: key-1}}]
map_resolvers: [192.0.2.100]
etr: {register_interval: 1s, deregister_on_stop: true}
`)

	site := netip.MustParsePrefix("10.1.0.0/24")
	n.waitFor(30*time.Second, "mr's ALT route to site 1 through frr (AS path 65150 65101)", func() bool {
		r := lpm(n.altView("mr"), site.Addr())
		return r != nil && r.Prefix == site && r.Peer == "10.255.0.1" && slices.Equal(r.ASPath, []uint32{65150, 65101})
	})
	converged := time.Since(start)
	stopBGPCaps()
	checkVPNUpdates(t, bgpFiles, site)
	for _, node := range []string{"mr", "ms"} {
		for _, nb := range n.altView(node).Neighbors {
			if nb.State != "established" {
				t.Fatalf("%s: session with frr (%v) %s", node, nb.Peer, nb.State)
			}
		}
	}

	// bgpd learnt the prefix from ms (rloc) in its VPN table, under RD
	// 0:0 (instance-ID 0), and announces it on to mr.
	var rib struct {
		Routes struct {
			RDs map[string]map[string][]struct {
				PeerID   string `json:"peerId"`
				Path     string `json:"path"`
				Bestpath bool   `json:"bestpath"`
			} `json:"routeDistinguishers"`
		} `json:"routes"`
	}
	out := bd.Vtysh(t, "show bgp ipv4 vpn json")
	if err := json.Unmarshal([]byte(out), &rib); err != nil || len(rib.Routes.RDs) != 1 || len(rib.Routes.RDs["0:0"]) != 1 {
		t.Fatalf("bgpd's VPN table, want only [0:0]10.1.0.0/24 (%v):\n%s", err, out)
	}
	if ps := rib.Routes.RDs["0:0"][site.String()]; len(ps) != 1 || ps[0].PeerID != "10.255.0.3" || ps[0].Path != "65101" || !ps[0].Bestpath {
		t.Fatalf("bgpd's VPN route [0:0]%v: %+v\n%s", site, ps, out)
	}
	out = bd.Vtysh(t, "show bgp ipv4 vpn neighbors 10.255.0.0 advertised-routes json")
	if !strings.Contains(out, `"0:0"`) || !strings.Contains(out, `"10.1.0.0/24"`) {
		t.Fatalf("bgpd's VPN routes advertised to mr:\n%s", out)
	}
	// zebra put the best route into frr's kernel table, via ms's tunnel.
	kr, err := n.lab.Exec("frr", "ip", "-4", "route", "show", site.String())
	if err != nil || !strings.Contains(string(kr), "via 10.255.0.3 dev altms") || !strings.Contains(string(kr), "proto bgp") {
		t.Fatalf("frr's kernel route to %v: %v %q\nbgpd unicast:\n%s\nbgpd VPN route:\n%s", site, err, kr,
			bd.Vtysh(t, "show bgp ipv4 unicast"), bd.Vtysh(t, "show bgp ipv4 vpn 10.1.0.0/24"))
	}

	// lig through mr, captured on both sides of frr: mr's underlay (the
	// tunnel into frr) and ms's (the tunnel out of frr).
	stopCaps, files := captureGRE(t, n, tool, "altfrr-")
	ligStart := time.Now()
	lout, err := n.lig("client", "10.1.0.10", "192.0.2.10")
	if err != nil || !strings.Contains(lout, "Mapping entry for EID [0]10.1.0.0/24") || !strings.Contains(lout, "192.0.2.1") {
		t.Fatalf("lig 10.1.0.10 through mr and frr: %v\n%s\nfrr GRE: altmr %+v altms %+v", err, lout, devs["altmr"].Stats(), devs["altms"].Stats())
	}
	ligTook := time.Since(ligStart)
	t.Logf("resolved through frr:\n%s", lout)
	stopCaps()
	want := map[string]struct{ hop, ttl string }{"mr": {"192.0.2.100>192.0.2.150", "64"}, "ms": {"192.0.2.150>192.0.2.101", "63"}}
	for node, w := range want {
		var seen []string
		found := false
		for _, l := range tsharktest.DecodeFile(t, files[node]) {
			if ty := tsharktest.Fields(l, "lisp.type"); len(ty) != 1 || ty[0] != "1" || tsharktest.Fields(l, "gre.proto") == nil {
				continue
			}
			src, dst, ttl := tsharktest.Fields(l, "ip.src"), tsharktest.Fields(l, "ip.dst"), tsharktest.Fields(l, "ip.ttl")
			if len(src) != 2 || len(dst) != 2 || len(ttl) != 2 {
				t.Fatalf("%s: a Map-Request in GRE with IP %v>%v ttl %v", node, src, dst, ttl)
			}
			hop := fmt.Sprintf("%s>%s %s>%s ttl %s", src[0], dst[0], src[1], dst[1], ttl[1])
			seen = append(seen, hop)
			if hop == w.hop+" 192.0.2.10>10.1.0.10 ttl "+w.ttl {
				found = true
			}
		}
		if !found {
			t.Fatalf("%s's side of frr: Map-Requests in GRE (outer src>dst inner src>dst inner TTL) %v, want %s", node, seen, w.hop)
		}
		t.Logf("%s's side of frr (tshark, GRE carrying the LISP Map-Request): %v", node, seen)
	}
	if st := n.altView("mr").Stats; st.Sent == 0 {
		t.Fatalf("mr sent nothing into the ALT: %+v", st)
	}
	if v := n.altView("ms"); v.Stats.Delivered == 0 || len(v.GREDropped) != 0 || v.Stats.NotMapRequest != 0 {
		t.Fatalf("ms: stats %+v, GRE drops %v", v.Stats, v.GREDropped)
	}
	for name, d := range devs {
		if s := d.Stats(); len(s.Dropped) != 0 || s.Tunnels[0].RxPackets == 0 || s.Tunnels[0].TxPackets == 0 {
			t.Fatalf("frr's %s: %+v", name, s)
		}
	}
	t.Logf("ALT through FRR converged %v after the start; lig answered in %v", converged.Round(time.Millisecond), ligTook.Round(time.Millisecond))

	// The site deregisters: ms withdraws the prefix, bgpd withdraws it
	// from mr and zebra from frr's kernel.
	wd := time.Now()
	n.stop("xtr1", true)
	n.waitFor(15*time.Second, "10.1.0.0/24 withdrawn through frr from mr's ALT table and frr's kernel", func() bool {
		kr, err := n.lab.Exec("frr", "ip", "-4", "route", "show", site.String())
		return err == nil && len(strings.TrimSpace(string(kr))) == 0 && lpm(n.altView("mr"), site.Addr()) == nil
	})
	t.Logf("site 1 deregistered: withdrawn through bgpd from mr and frr's kernel in %v", time.Since(wd).Round(time.Millisecond))
}

// checkVPNUpdates decodes the captures of BGP over the GRE tunnels on mr's
// and ms's sides of frr (tshark): on each side an UPDATE carries site in
// MP_REACH_NLRI with AFI 1, SAFI 128 (RFC 4364) and route distinguisher
// 0:0, and no UPDATE carries an EID prefix as plain IPv4 unicast NLRI.
func checkVPNUpdates(t *testing.T, files map[string]string, site netip.Prefix) {
	t.Helper()
	for node, f := range files {
		var vpn, unicast []string
		for _, l := range tsharktest.DecodeFile(t, f) {
			if tsharktest.Fields(l, "gre.proto") == nil {
				continue
			}
			afi := tsharktest.Fields(l, "bgp.update.path_attribute.mp_reach_nlri.afi")
			safi := tsharktest.Fields(l, "bgp.update.path_attribute.mp_reach_nlri.safi")
			if len(afi) > 0 && len(safi) > 0 {
				vpn = append(vpn, fmt.Sprintf("afi %v safi %v rd %v prefix %v", afi, safi, tsharktest.Fields(l, "bgp.rd"),
					tsharktest.Fields(l, "bgp.mp_reach_nlri_ipv4_prefix")))
			}
			unicast = append(unicast, tsharktest.Fields(l, "bgp.nlri_prefix")...)
		}
		t.Logf("%s's side of frr (tshark, BGP in GRE): MP_REACH %v; unicast NLRI %v", node, vpn, unicast)
		want := fmt.Sprintf("afi [1] safi [128] rd [0:0] prefix [%v]", site.Addr())
		if !slices.Contains(vpn, want) {
			t.Fatalf("%s's side of frr: no UPDATE with %q among %v", node, want, vpn)
		}
		if len(unicast) != 0 {
			t.Fatalf("%s's side of frr: IPv4 unicast NLRI %v", node, unicast)
		}
	}
}

// captureGRE starts captures of GRE on mr's and ms's underlay (both sides
// of frr) into files named prefix+node+".pcap"; stop ends them.
func captureGRE(t *testing.T, n *network, tool, prefix string) (stop func(), files map[string]string) {
	t.Helper()
	files = map[string]string{}
	var caps []*lab.Capture
	for _, node := range []string{"mr", "ms"} {
		files[node] = filepath.Join(n.dir, prefix+node+".pcap")
		c, err := n.lab.Capture(node, "core0", "ip proto 47", files[node])
		if err != nil {
			t.Fatalf("capture with %s in %s: %v", tool, node, err)
		}
		caps = append(caps, c)
	}
	return func() {
		t.Helper()
		for _, c := range caps {
			if err := c.Stop(); err != nil {
				t.Fatal(err)
			}
		}
	}, files
}

package e2e

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/rloc-router/rloc/router"
)

// The ALT on the delayed lab (configs/lab/alt-delay.yaml, issue 17's
// figures): the LISP-MSX experiment's delays, two Map-Resolvers of domain 1
// on the ALT, domain 2's Map-Server on the ALT in another city.
var (
	altDelayPlan = altPlan{
		underlay: map[string]string{"mr": "192.0.2.6", "a1": "192.0.2.10", "mr-up": "192.0.2.14",
			"up": "203.0.113.2", "ms2": "198.51.100.18", "a2": "198.51.100.22"},
		asn: map[string]uint32{"up": 65000, "a1": 65001, "a2": 65002, "ms2": 65102, "mr": 65200, "mr-up": 65201},
		tunnels: []altTunnel{{"mr", "a1", "10.255.0.0"}, {"a1", "a2", "10.255.0.2"}, {"a2", "ms2", "10.255.0.4"},
			{"a1", "up", "10.255.0.6"}, {"a2", "up", "10.255.0.8"}, {"mr-up", "up", "10.255.0.10"}},
	}
	// altDelayPaths are the two ways through the ALT, measured from xtr1
	// (ephemeral port) and answered by xtr2: through the regional routers
	// joined in the city, and through the upper router in another
	// country. hops are the ALT nodes that forward the Map-Request, want
	// the Map-Resolver's AS path to domain 2's site.
	altDelayPaths = []struct {
		msxExpPath
		hops []string
		want []uint32
	}{
		{msxExpPath{name: "alt", mr: "mr", addr: netip.MustParseAddrPort("192.0.2.6:4342"), site: msxExpSite},
			[]string{"a1", "a2"}, []uint32{65001, 65002, 65102}},
		{msxExpPath{name: "alt-up", mr: "mr-up", addr: netip.MustParseAddrPort("192.0.2.14:4342"), site: msxExpSite},
			[]string{"up", "a2"}, []uint32{65000, 65002, 65102}},
	}
)

// altDelayRateLimit lifts the per-source Map-Request limit for the
// benchmark's back-to-back resolutions (as in configs/msx-exp/).
const altDelayRateLimit = "control:\n  rate_limit: {map_request: {per_source: 5000, burst: 1000}}\n"

// newALTDelayLab brings up configs/lab/alt-delay.yaml with its delays,
// starts the ALT routers, the Map-Resolvers, ms2 and xtr2, and waits until
// both Map-Resolvers have domain 2's site in their ALT table by the
// expected path.
func newALTDelayLab(t testing.TB) *network {
	t.Helper()
	n := newLabNetwork(t, "../configs/lab/alt-delay.yaml", "altdly")
	p := altDelayPlan
	for _, r := range []string{"up", "a1", "a2"} {
		n.start(r, fmt.Sprintf("name: %s\nroles: [alt]\n", r)+p.section(r, ""))
	}
	for _, mr := range []string{"mr", "mr-up"} {
		n.start(mr, fmt.Sprintf("name: %s\nroles: [map-resolver, alt]\n", mr)+altDelayRateLimit+p.section(mr, ""))
	}
	n.start("ms2", `name: ms2
roles: [map-server, alt]
sites:
  - name: site2
    keys: [{id: 1, secret: key-2}]
    prefixes: [{eid: 10.2.0.0/24}]
`+altDelayRateLimit+p.section("ms2", "  announce_registered: true\n"))
	n.start("xtr2", `name: xtr2
roles: [itr, etr]
rlocs: [198.51.100.6]
interfaces: [{name: site0, side: site}, {name: core0, side: core}]
database:
  - {eid: 10.2.0.0/24, rlocs: [{addr: 198.51.100.6}]}
map_servers: [{addr: 198.51.100.18, key: {id: 1, secret: key-2}}]
map_resolvers: [192.0.2.6]
etr: {register_interval: 10s}
`+altDelayRateLimit)
	site := netip.MustParsePrefix("10.2.0.0/24")
	n.waitFor(30*time.Second, "domain 2's site in both Map-Resolvers' ALT tables", func() bool {
		for _, ap := range altDelayPaths {
			var v router.ALTView
			if err := n.get(ap.mr, "/v1/alt", &v); err != nil {
				return false
			}
			if r := lpm(v, site.Addr()); r == nil || r.Prefix != site || !slices.Equal(r.ASPath, ap.want) {
				return false
			}
		}
		return true
	})
	return n
}

// TestALTDelayLab: on the delayed ALT lab, xtr1's namespace resolves a
// domain-2 EID once through each Map-Resolver; the ETR answers, and the
// Map-Request went through the expected ALT routers (their forwarded
// counters) to ms2 (delivered).
func TestALTDelayLab(t *testing.T) {
	n := newALTDelayLab(t)
	for _, ap := range altDelayPaths {
		before := map[string]uint64{}
		for _, h := range ap.hops {
			before[h] = n.altView(h).Stats.Forwarded
		}
		delivered := n.altView("ms2").Stats.Delivered
		c := n.msxExpClient(ap.msxExpPath)
		r, err := c.Resolve(0, msxExpH2, 3*time.Second)
		if err == nil {
			err = ap.check(&r)
		}
		if err != nil {
			t.Fatalf("%s: %v", ap.name, err)
		}
		for _, h := range ap.hops {
			if got := n.altView(h).Stats.Forwarded; got != before[h]+1 {
				t.Errorf("%s: %s forwarded %d Map-Requests, want 1", ap.name, h, got-before[h])
			}
		}
		if got := n.altView("ms2").Stats.Delivered; got != delivered+1 {
			t.Errorf("%s: ms2 delivered %d, want 1", ap.name, got-delivered)
		}
		t.Logf("%s (%s -> %v -> ms2 -> xtr2): answered by %v in %v", ap.name, ap.mr, ap.hops, r.From, r.RTT)
	}
}

package e2e

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit/bgpdtest"
	"github.com/rloc-router/rloc/internal/testkit/ospftest"
	"github.com/rloc-router/rloc/lab"
	"github.com/rloc-router/rloc/router"
	"github.com/rloc-router/rloc/slowpath/control"
)

// tdSite is one LISP site of configs/lab/twodomain.yaml: an xTR and the
// host behind it.
type tdSite struct {
	XTR, Host string
	// RLOC is the xTR's address on its domain's core.
	RLOC netip.Addr
	// EID is the site's prefix, HostAddr the host's address in it.
	EID      netip.Prefix
	HostAddr netip.Addr
	// Secret is the site's key at its domain's Map-Server (key ID 1).
	Secret string
	// RouterID is the OSPF router ID of the xTR's ospfd.
	RouterID netip.Addr
}

// tdDomain is one LISP domain of configs/lab/twodomain.yaml.
type tdDomain struct {
	Name string
	// MS is the node of the Map-Server/Map-Resolver and border BGP
	// speaker, MSAddr its address on the core (and its contact).
	MS     string
	MSAddr netip.Addr
	// MSRouterID is the OSPF router ID of the MS node's ospfd; its MSFD
	// TLV comes from it.
	MSRouterID netip.Addr
	// ASN is the domain's AS number, Gateway the transit's address on the
	// domain's core (the BGP neighbour of MS, and everyone's default
	// route).
	ASN     uint32
	Gateway netip.Addr
	Sites   [2]tdSite
}

// Contact is the mapping system's contact as it advertises it in BGP: its
// Map-Resolver's address and port.
func (d *tdDomain) Contact() netip.AddrPort { return netip.AddrPortFrom(d.MSAddr, 4342) }

// Prefixes are the EID prefixes the domain's mapping system services.
func (d *tdDomain) Prefixes() []netip.Prefix {
	return []netip.Prefix{d.Sites[0].EID, d.Sites[1].EID}
}

// tdTransitASN is the transit AS, whose BGP speaker is FRR's bgpd.
const tdTransitASN = 65010

// tdDomains are the two domains (the addresses of the topology file).
var tdDomains = [2]tdDomain{
	{Name: "A", MS: "ms-a", MSAddr: mustAddr("192.0.2.100"), MSRouterID: mustAddr("10.255.1.100"),
		ASN: 65001, Gateway: mustAddr("192.0.2.254"), Sites: [2]tdSite{
			{XTR: "xtr-a1", Host: "h-a1", RLOC: mustAddr("192.0.2.1"), EID: netip.MustParsePrefix("10.1.1.0/24"),
				HostAddr: mustAddr("10.1.1.10"), Secret: "key-a1", RouterID: mustAddr("10.255.1.1")},
			{XTR: "xtr-a2", Host: "h-a2", RLOC: mustAddr("192.0.2.2"), EID: netip.MustParsePrefix("10.1.2.0/24"),
				HostAddr: mustAddr("10.1.2.10"), Secret: "key-a2", RouterID: mustAddr("10.255.1.2")},
		}},
	{Name: "B", MS: "ms-b", MSAddr: mustAddr("198.51.100.100"), MSRouterID: mustAddr("10.255.2.100"),
		ASN: 65002, Gateway: mustAddr("198.51.100.254"), Sites: [2]tdSite{
			{XTR: "xtr-b1", Host: "h-b1", RLOC: mustAddr("198.51.100.1"), EID: netip.MustParsePrefix("10.2.1.0/24"),
				HostAddr: mustAddr("10.2.1.10"), Secret: "key-b1", RouterID: mustAddr("10.255.2.1")},
			{XTR: "xtr-b2", Host: "h-b2", RLOC: mustAddr("198.51.100.2"), EID: netip.MustParsePrefix("10.2.2.0/24"),
				HostAddr: mustAddr("10.2.2.10"), Secret: "key-b2", RouterID: mustAddr("10.255.2.2")},
		}},
}

// tdOptions adds to the configurations newTwoDomains writes (for the
// steps that follow discovery: negotiation, interconnect).
type tdOptions struct {
	// MSExtra, when set, returns YAML appended to d's Map-Server
	// configuration.
	MSExtra func(d *tdDomain) string
	// XTRExtra, when set, returns YAML appended to s's xTR configuration.
	XTRExtra func(d *tdDomain, s *tdSite) string
	// BeforeRlocd, when set, runs once the namespaces and FRR are up,
	// before any rlocd starts (captures, pollers).
	BeforeRlocd func(td *twoDomains)
}

// tdMSYAML is d's Map-Server/Map-Resolver: its own two sites, its MSFD TLV
// flooded through its ospfd, and its border BGP speaker advertising its
// EID prefixes to the transit's bgpd. Nothing names the other domain.
func tdMSYAML(d *tdDomain) string {
	var sites, adv strings.Builder
	for _, s := range d.Sites {
		fmt.Fprintf(&sites, "  - {name: %s, keys: [{id: 1, secret: %s}], prefixes: [{eid: %v}]}\n", s.XTR, s.Secret, s.EID)
		fmt.Fprintf(&adv, "%v, ", s.EID)
	}
	return fmt.Sprintf(`name: %s
roles: [map-server, map-resolver]
sites:
%smap_server: {registration_timeout: 30s}
discovery:
  retry_interval: 200ms
  advertise: {locators: [%v]}
  bgp:
    asn: %d
    router_id: %v
    neighbors: [{address: %v, asn: %d, local: %v, hold_time: 9s, connect_retry: 1s}]
    advertise: [%s]
    contact: %v
`, d.MS, sites.String(), d.MSAddr, d.ASN, d.MSAddr, d.Gateway, tdTransitASN, d.MSAddr,
		strings.TrimSuffix(adv.String(), ", "), d.Contact())
}

// tdXTRYAML is s's xTR: no Map-Resolver and no Map-Server configured, only
// the site's key; both are learned from OSPF.
func tdXTRYAML(s *tdSite) string {
	return fmt.Sprintf(`name: %s
roles: [itr, etr]
rlocs: [%v]
interfaces: [{name: site0, side: site}, {name: core0, side: core}]
database:
  - {eid: %v, rlocs: [{addr: %v, priority: 1}]}
etr: {register_interval: 1s}
itr: {probe_interval: 0s, retransmit_interval: 200ms}
discovery: {retry_interval: 200ms, map_resolvers: true, map_server_key: {id: 1, secret: %s}}
`, s.XTR, s.RLOC, s.EID, s.RLOC, s.Secret)
}

// tdTransitConf is the transit's bgpd: eBGP with both mapping systems'
// border speakers, extended communities passed on.
func tdTransitConf() string {
	var b strings.Builder
	fmt.Fprintf(&b, "frr defaults traditional\nhostname transit\nrouter bgp %d\n bgp router-id 10.255.0.254\n no bgp ebgp-requires-policy\n", tdTransitASN)
	for _, d := range tdDomains {
		fmt.Fprintf(&b, " neighbor %v remote-as %d\n neighbor %v timers 3 9\n neighbor %v timers connect 1\n", d.MSAddr, d.ASN, d.MSAddr, d.MSAddr)
	}
	b.WriteString(" address-family ipv4 unicast\n")
	for _, d := range tdDomains {
		fmt.Fprintf(&b, "  neighbor %v send-community extended\n", d.MSAddr)
	}
	b.WriteString(" exit-address-family\n")
	return b.String()
}

// twoDomains is a running configs/lab/twodomain.yaml.
type twoDomains struct {
	*network
	// OSPF are the ospfd routers by node.
	OSPF map[string]*ospftest.Router
	// Transit is the transit AS's bgpd.
	Transit *bgpdtest.Bgpd
	// Start is the cold start: the namespaces are up, no daemon runs
	// yet. Rlocd is when the last rlocd's management socket answered.
	Start, Rlocd time.Time
}

// newTwoDomains brings up the two-domain network from cold: namespaces,
// the ospfd routers of both domains' areas, the transit's bgpd, then every
// rlocd (mapping systems first), without waiting for any of them to
// converge.
func newTwoDomains(t *testing.T, o tdOptions) *twoDomains {
	t.Helper()
	ospftest.Require(t)
	bgpdtest.Require(t)
	t0 := time.Now()
	td := &twoDomains{OSPF: map[string]*ospftest.Router{}}
	td.network = newLabNetwork(t, "../configs/lab/twodomain.yaml", "td")
	td.Start = time.Now()
	t.Logf("phase: rlocd built and namespaces up in %v; cold start", td.Start.Sub(t0).Round(time.Millisecond))
	for i := range tdDomains {
		d := &tdDomains[i]
		routers := map[string]netip.Addr{d.MS: d.MSRouterID}
		for _, s := range d.Sites {
			routers[s.XTR] = s.RouterID
		}
		for node, rid := range routers {
			td.OSPF[node] = ospftest.Start(t, td.lab.Node(node), ospftest.Config{
				RouterID: rid, Interfaces: []string{"core0"}, Broadcast: true})
		}
	}
	td.Transit = bgpdtest.Start(t, td.lab.Node("transit"), tdTransitConf(), netip.Addr{})
	if o.BeforeRlocd != nil {
		o.BeforeRlocd(td)
	}
	for i := range tdDomains {
		d := &tdDomains[i]
		y := tdMSYAML(d)
		if o.MSExtra != nil {
			y += o.MSExtra(d)
		}
		td.start(d.MS, y)
	}
	for i := range tdDomains {
		d := &tdDomains[i]
		for j := range d.Sites {
			s := &d.Sites[j]
			y := tdXTRYAML(s)
			if o.XTRExtra != nil {
				y += o.XTRExtra(d, s)
			}
			td.start(s.XTR, y)
		}
	}
	td.Rlocd = time.Now()
	t.Logf("phase: FRR and every rlocd started: %v after cold start", td.Rlocd.Sub(td.Start).Round(time.Millisecond))
	return td
}

// since is the time since Start (the cold start), rounded for the phase
// log.
func (td *twoDomains) since() time.Duration { return time.Since(td.Start).Round(time.Millisecond) }

// converge polls the conditions together, every 50 ms, until all of them
// hold, and returns when each first held (since the cold start). It fails
// the test after ospftest.Patience, naming the conditions that do not hold
// and why.
func (td *twoDomains) converge(conds map[string]func() error) map[string]time.Duration {
	td.t.Helper()
	at := map[string]time.Duration{}
	deadline := time.Now().Add(ospftest.Patience)
	for {
		var missing []string
		for name, cond := range conds {
			if _, ok := at[name]; ok {
				continue
			}
			if err := cond(); err != nil {
				missing = append(missing, fmt.Sprintf("%s: %v", name, err))
				continue
			}
			at[name] = td.since()
		}
		if len(missing) == 0 {
			return at
		}
		if time.Now().After(deadline) {
			slices.Sort(missing)
			td.t.Fatalf("timed out after %v; not yet:\n%s", ospftest.Patience, strings.Join(missing, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// discovery returns node's GET /v1/discovery.
func (td *twoDomains) discovery(node string) router.DiscoveryInfo {
	td.t.Helper()
	var d router.DiscoveryInfo
	if err := td.get(node, "/v1/discovery", &d); err != nil {
		td.t.Fatalf("%s discovery: %v", node, err)
	}
	return d
}

// learnedFromOSPF says why s's xTR does not (yet) use exactly its own
// domain's Map-Resolver and Map-Server, learned from d's MSFD TLV; nil
// when it does.
func (td *twoDomains) learnedFromOSPF(d *tdDomain, s *tdSite) error {
	got := td.discovery(s.XTR)
	want := []netip.AddrPort{d.Contact()}
	if !slices.Equal(got.MapResolvers, want) || !slices.Equal(got.MapServers, want) {
		return fmt.Errorf("Map-Resolvers %v, Map-Servers %v", got.MapResolvers, got.MapServers)
	}
	if len(got.Functions) != 1 || got.Functions[0].Router != d.MSRouterID ||
		got.Functions[0].Function != "map-resolver+map-server" || !got.Functions[0].Usable {
		return fmt.Errorf("functions %+v", got.Functions)
	}
	// Learned once: ospfd's replacements of the LSA (the MS floods it
	// again each time its ospfd says the area is ready) did not take it
	// away for an instant.
	if got.Stats.Changes != 1 {
		return fmt.Errorf("the set changed %d times, want once", got.Stats.Changes)
	}
	return nil
}

// learnedFromBGP says why d's mapping system does not (yet) hold exactly
// its own prefixes (self) and the other domain's, each with the other's
// contact and an AS path through the transit, learned from bgpd; nil when
// it does.
func (td *twoDomains) learnedFromBGP(d, other *tdDomain) error {
	got := td.discovery(d.MS).BGP
	if got == nil {
		return fmt.Errorf("no BGP discovery state")
	}
	var want []control.BGPDiscoveryEntry
	for _, p := range d.Prefixes() {
		want = append(want, control.BGPDiscoveryEntry{Prefix: p, Contact: d.Contact(), Self: true})
	}
	for _, p := range other.Prefixes() {
		want = append(want, control.BGPDiscoveryEntry{Prefix: p, Contact: other.Contact(), Neighbor: d.Gateway,
			ASPath: []uint32{tdTransitASN, other.ASN}})
	}
	key := func(a, b control.BGPDiscoveryEntry) int { return strings.Compare(a.Prefix.String(), b.Prefix.String()) }
	es := slices.Clone(got.Prefixes)
	slices.SortFunc(es, key)
	slices.SortFunc(want, key)
	if fmt.Sprint(es) != fmt.Sprint(want) {
		return fmt.Errorf("table %+v (counters %+v), want %+v", es, got.Stats, want)
	}
	return nil
}

// TestTwoDomains (issue 16): two LISP domains, each a mapping system
// (rlocd Map-Server/Map-Resolver), two xTR sites and an OSPF area of FRR
// ospfd routers, joined through a transit AS whose BGP speaker is FRR's
// bgpd (configs/lab/twodomain.yaml). From cold start, with nothing about
// the other domain configured anywhere and no Map-Resolver or Map-Server
// configured in any xTR:
//   - (a) every xTR learns its own domain's Map-Resolver and Map-Server
//     from the MSFD TLV flooded through ospfd, and only those (once: a
//     refresh of the LSA takes nothing away);
//   - (b) each domain's xTRs register with the discovered Map-Server and
//     the two sites of each domain ping each other with no loss;
//   - (c) each mapping system learns the other domain's EID prefixes with
//     the other's contact from the Mapping System extended community that
//     crossed bgpd, the AS path through the transit AS;
//   - (d)-(g) each mapping system, configured only with a CPNP identity
//     and the other's public key, orders the other's prefixes from the
//     learned contact, both agree (CPNP messages captured on the transit
//     and checked with rloc's parser), the interconnect is provisioned
//     both ways and the sites of the two domains ping each other with no
//     loss.
//
// The phases run concurrently; when each ended, since the cold start, is
// logged ("phase: ...").
func TestTwoDomains(t *testing.T) {
	var capture *lab.Capture
	var tl *tdTimeline
	var stopWatch func()
	td := newTwoDomains(t, tdOptions{MSExtra: tdCPNPYAML, BeforeRlocd: func(td *twoDomains) {
		capture = tdCapture(td)
		tl, stopWatch = tdWatch(td)
		td.t.Cleanup(stopWatch)
	}})

	// (a), (c) and the registrations of (b), polled together.
	ospf, reg, bgp := map[string]func() error{}, map[string]func() error{}, map[string]func() error{}
	for i := range tdDomains {
		d, other := &tdDomains[i], &tdDomains[1-i]
		for j := range d.Sites {
			s := &d.Sites[j]
			ospf[s.XTR+" learns "+d.MS+" from OSPF"] = func() error { return td.learnedFromOSPF(d, s) }
		}
		reg[d.MS+" has both sites registered"] = func() error {
			if r := td.registrationsOf(d.MS); len(r) != len(d.Sites) {
				return fmt.Errorf("registrations %+v", r)
			}
			return nil
		}
		bgp[d.MS+" learns domain "+other.Name+" through bgpd"] = func() error { return td.learnedFromBGP(d, other) }
	}
	all := map[string]func() error{}
	for _, m := range []map[string]func() error{ospf, reg, bgp} {
		maps.Copy(all, m)
	}
	at := td.converge(all)
	last := func(m map[string]func() error) time.Duration {
		var l time.Duration
		for name := range m {
			l = max(l, at[name])
		}
		return l
	}
	for _, name := range slices.Sorted(maps.Keys(at)) {
		t.Logf("  %s: %v", name, at[name])
	}
	t.Logf("phase: OSPF learned (every xTR uses its own domain's Map-Resolver and Map-Server): %v after cold start", last(ospf))
	t.Logf("phase: every site registered with its discovered Map-Server: %v after cold start", last(reg))
	t.Logf("phase: BGP learned (each mapping system has the other's prefixes and contact): %v after cold start", last(bgp))

	// The TLV went through FRR: a site's ospfd holds the MS's opaque LSA.
	for i := range tdDomains {
		d := &tdDomains[i]
		db := td.OSPF[d.Sites[1].XTR].Vtysh(t, "show ip ospf database opaque-area")
		if !strings.Contains(db, d.MSRouterID.String()) || !strings.Contains(db, "Router Information") {
			t.Fatalf("%s's ospfd database lacks %s's opaque LSA:\n%s", d.Sites[1].XTR, d.MS, db)
		}
	}
	// The prefixes went through FRR: the transit's bgpd has each from its
	// domain's AS, with an extended community.
	for i := range tdDomains {
		d := &tdDomains[i]
		for _, p := range d.Prefixes() {
			out := td.Transit.Vtysh(t, "show bgp ipv4 unicast "+p.String())
			if !strings.Contains(out, fmt.Sprint(d.ASN)) || !strings.Contains(out, d.MSAddr.String()) || !strings.Contains(out, "Extended Community") {
				t.Fatalf("transit's bgpd on %v:\n%s", p, out)
			}
		}
	}

	// (b) Each domain's sites ping each other, resolving through the
	// discovered Map-Resolver.
	for i := range tdDomains {
		d := &tdDomains[i]
		for j, s := range d.Sites {
			peer := d.Sites[1-j]
			// The first packet waits for the Map-Reply (it may be the one
			// lost while the ITR resolves): one ping with a long timeout.
			if got, err := td.lab.Ping(s.Host, peer.HostAddr, 1, 5*time.Second); err != nil || got != 1 {
				t.Fatalf("first ping %s -> %s (resolution through the discovered Map-Resolver): %d/1, %v", s.Host, peer.HostAddr, got, err)
			}
			if got, err := td.lab.Ping(s.Host, peer.HostAddr, 5, 2*time.Second); err != nil || got != 5 {
				t.Fatalf("ping %s -> %s: %d/5 answered, %v", s.Host, peer.HostAddr, got, err)
			}
			if st := msgCount(td.stats(s.XTR), "map-reply"); st.Received == 0 {
				t.Fatalf("%s received no Map-Reply: %+v", s.XTR, st)
			}
		}
	}
	t.Logf("phase: intra-domain pings answered in both domains: %v after cold start", td.since())
	// A refresh of the MS's LSA (the same TLV flooded again: ospfd
	// replaces the instance, which its API reports as a delete and an
	// update) does not take the Map-Resolver and Map-Server away from the
	// xTRs, not even for an instant: they still learned them once.
	updates := map[string]uint64{}
	for i := range tdDomains {
		d := &tdDomains[i]
		for _, s := range d.Sites {
			updates[s.XTR] = td.discovery(s.XTR).Stats.Updates
		}
		if err := td.do(d.MS, "POST", "/v1/discovery/status", router.DiscoveryStatus{Status: "enabled"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	refreshed := map[string]func() error{}
	for i := range tdDomains {
		d := &tdDomains[i]
		for j := range d.Sites {
			s := &d.Sites[j]
			refreshed[s.XTR+" receives "+d.MS+"'s refreshed LSA"] = func() error {
				if st := td.discovery(s.XTR).Stats; st.Updates == updates[s.XTR] {
					return fmt.Errorf("no update yet: %+v", st)
				}
				return td.learnedFromOSPF(d, s)
			}
		}
	}
	t0 := time.Now()
	td.converge(refreshed)
	t.Logf("phase: MSFD LSAs refreshed, every xTR still learned them once: %v after the refresh", time.Since(t0).Round(time.Millisecond))
	// The underlay between the domains is routed through the transit
	// (what the cross-domain steps need): each mapping system reaches the
	// other's contact address.
	for i := range tdDomains {
		d, other := &tdDomains[i], &tdDomains[1-i]
		if got, err := td.lab.Ping(d.MS, other.MSAddr, 2, 2*time.Second); err != nil || got != 2 {
			t.Fatalf("underlay ping %s -> %v: %d/2, %v", d.MS, other.MSAddr, got, err)
		}
	}

	// (d)-(g) Cross-domain: CPNP negotiation from the learned contacts,
	// the interconnect it provisions, pings between the sites of the two
	// domains, the negotiation checked on the wire
	// (twodomain_cpnp_test.go).
	tdCrossDomain(t, td, capture, tl, stopWatch)
}

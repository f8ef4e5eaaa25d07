package router

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/fastpath"
)

func TestGleaner(t *testing.T) {
	c := cache.New(cache.Config{})
	var g gleaner
	var asked []fastpath.MissEvent
	resolve := func(ev fastpath.MissEvent) bool { asked = append(asked, ev); return true }
	now := time.Now()
	eid, rloc := netip.MustParseAddr("10.9.0.7"), netip.MustParseAddr("192.0.2.9")
	o := fastpath.Observation{Glean: true, IID: 5, EID: eid, RLOC: rloc}

	if !g.observe(c, &o, now, resolve) {
		t.Fatal("first report not gleaned")
	}
	e, ok := c.Lookup(5, eid)
	if !ok || e.Key().Prefix != netip.MustParsePrefix("10.9.0.7/32") || len(e.RLOCs()) != 1 || e.RLOCs()[0].Addr != rloc ||
		!e.RLOCs()[0].Reachable || e.TTL() != gleanTTL {
		t.Fatalf("gleaned entry %+v", e)
	}
	if len(asked) != 1 || asked[0].IID != 5 || asked[0].Dst != eid {
		t.Fatalf("verification requests %+v", asked)
	}
	if g.observe(c, &o, now.Add(time.Second), resolve) || len(asked) != 1 {
		t.Fatal("the same EID was gleaned twice")
	}
	if _, ok := c.Lookup(6, eid); ok {
		t.Fatal("gleaned entry leaked into another instance-ID")
	}

	// The Map-Reply for the covering prefix replaces the gleaned guess.
	c.Apply([]cache.Update{{Key: cache.IPKey(5, netip.MustParsePrefix("10.9.0.0/16")), TTL: 10,
		RLOCs: []cache.RLOC{{Addr: netip.MustParseAddr("192.0.2.10"), Weight: 1, Reachable: true}}}})
	g.covered(c, 5, netip.MustParsePrefix("10.9.0.0/16"), now)
	if e, ok := c.Lookup(5, eid); !ok || e.Key().Prefix.Bits() != 16 {
		t.Fatalf("after the reply the EID maps to %+v", e)
	}
	// With a mapping from the mapping system in place, nothing is gleaned.
	o.EID = netip.MustParseAddr("10.9.3.3")
	if g.observe(c, &o, now, resolve) || len(asked) != 1 {
		t.Fatal("gleaned over a resolved mapping")
	}
	// Not a gleaning report: ignored.
	if g.observe(c, &fastpath.Observation{IID: 5, EID: eid, RLOC: rloc}, now, resolve) {
		t.Fatal("non-gleaning observation installed something")
	}
}

func TestGleanOnlyOnSiteInterfaces(t *testing.T) {
	cfg := Config{Roles: Roles{ITR: true, ETR: true}, MapResolvers: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.100:4342")}, RLOCs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}, Interfaces: []Interface{{Name: "site0", Side: SideSite, Glean: true},
		{Name: "core0", Side: SideCore, Glean: true}}}
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "interfaces[1].glean") {
		t.Fatalf("glean on a core interface: %v", err)
	}
}

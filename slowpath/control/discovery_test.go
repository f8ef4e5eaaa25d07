package control

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// TestDiscoveredPeers: an ETR with no Map-Server configured registers with
// the one discovery hands it, and an ITR with no Map-Resolver resolves
// through the one discovery hands it; when discovery takes them away, the
// ETR and ITR no longer list them (the set the next register round and the
// next resolution use).
func TestDiscoveredPeers(t *testing.T) {
	c := msConfig(siteConfig("a", "10.1.0.0/16", true))
	c.MapResolver.Aggregates = []EIDPrefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}
	ms := newEngine(t, c, nil)
	ec := etrConfig(ms.Addr(), testKey, mapping("10.1.2.0/24", "192.0.2.1"))
	ec.MapServers = nil
	etr := newEngine(t, Config{ETR: ec}, nil)
	if err := etr.c.Do(func() { etr.etr.SetDiscovered([]netip.AddrPort{ms.Addr()}, testKey) }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "registration with the discovered Map-Server", func() bool { return etr.Stats().RegisterNotified >= 1 })

	inst := &fakeInstaller{}
	ic := itrConfig()
	ic.Discover = true
	itr := newEngine(t, Config{ITR: ic}, inst)
	if got := itr.ITRMapResolvers(); len(got) != 0 {
		t.Fatalf("map-resolvers before discovery: %v", got)
	}
	if err := itr.c.Do(func() { itr.itr.SetDiscovered([]netip.AddrPort{ms.Addr()}) }); err != nil {
		t.Fatal(err)
	}
	itr.Miss(MissEvent{Dst: netip.MustParseAddr("10.1.2.3")})
	waitFor(t, 5*time.Second, "resolution through the discovered Map-Resolver", func() bool { return len(inst.positives()) == 1 })

	_ = itr.c.Do(func() { itr.itr.SetDiscovered(nil) })
	_ = etr.c.Do(func() { etr.etr.SetDiscovered(nil, testKey) })
	if got := itr.ITRMapResolvers(); len(got) != 0 {
		t.Fatalf("map-resolvers after withdrawal: %v", got)
	}
	if got := etr.ETRMapServers(); len(got) != 0 {
		t.Fatalf("map-servers after withdrawal: %v", got)
	}
	// Configured peers stay whatever discovery says.
	ic2 := itrConfig(netip.MustParseAddrPort("192.0.2.200:4342"))
	ic2.Discover = true
	itr2 := newEngine(t, Config{ITR: ic2}, &fakeInstaller{})
	_ = itr2.c.Do(func() { itr2.itr.SetDiscovered([]netip.AddrPort{ms.Addr()}) })
	_ = itr2.c.Do(func() { itr2.itr.SetDiscovered(nil) })
	if got := itr2.ITRMapResolvers(); !slices.Equal(got, ic2.MapResolvers) {
		t.Fatalf("configured map-resolvers: %v", got)
	}
}

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit/ospftest"
	"github.com/rloc-router/rloc/router"
	"github.com/rloc-router/rloc/slowpath/discovery/ospfapi"
)

// TestOSPFDiscovery: the demo network's core segment is an OSPF area of
// FRR ospfd routers (msmr, xtr1, xtr2). The Map-Server/Map-Resolver floods
// its MSFD TLV through its ospfd; the xTRs have neither Map-Resolver nor
// Map-Server configured (only their site key): they learn both from their
// own ospfd, register, resolve and ping across with no loss. The Map-Resolver's status set to disabled takes it out of the
// xTRs' list within the LSA's propagation, enabled puts it back; a
// malformed MSFD TLV flooded by another router is counted and ignored; the
// Map-Resolver's rlocd stopping flushes its LSA and the xTRs drop it.
func TestOSPFDiscovery(t *testing.T) {
	ospftest.Require(t)
	n := newNetwork(t)
	nodes := []struct {
		name, rid string
	}{{"msmr", "10.255.0.100"}, {"xtr1", "10.255.0.1"}, {"xtr2", "10.255.0.2"}}
	frr := map[string]*ospftest.Router{}
	for _, nd := range nodes {
		frr[nd.name] = ospftest.Start(t, n.lab.Node(nd.name), ospftest.Config{
			RouterID: netip.MustParseAddr(nd.rid), Interfaces: []string{"core0"}, Broadcast: true})
	}
	for _, nd := range nodes {
		frr[nd.name].WaitFull(t, 2)
	}
	start := time.Now()
	n.start("msmr", msmrYAML("5s")+"discovery: {advertise: {locators: [192.0.2.100], capabilities: [subscribe]}}\n")
	xtr := func(name, site, secret string) string {
		y := strings.Replace(xtrYAML(name, site, secret, "0s"), "map_resolvers: [192.0.2.100]\n", "", 1)
		y = strings.Replace(y, "map_servers: [{addr: 192.0.2.100, key: {id: 1, secret: "+secret+"}}]\n", "", 1)
		return y + "discovery: {map_resolvers: true, map_server_key: {id: 1, secret: " + secret + "}}\n"
	}
	n.start("xtr1", xtr("xtr1", "1", "key-one"))
	n.start("xtr2", xtr("xtr2", "2", "key-two"))

	mr := netip.MustParseAddrPort("192.0.2.100:4342")
	state := func(node string) router.DiscoveryInfo {
		t.Helper()
		var d router.DiscoveryInfo
		if err := n.get(node, "/v1/discovery", &d); err != nil {
			t.Fatalf("%s discovery: %v", node, err)
		}
		return d
	}
	uses := func(node string) bool {
		d := state(node)
		return slices.Contains(d.MapResolvers, mr) && slices.Contains(d.MapServers, mr)
	}
	for _, x := range []string{"xtr1", "xtr2"} {
		n.waitFor(ospftest.Patience, x+" learns the Map-Resolver and Map-Server from OSPF", func() bool { return uses(x) })
	}
	t.Logf("figure: rlocd start to Map-Resolver discovered by both xTRs: %v", time.Since(start).Round(time.Millisecond))
	d := state("xtr1")
	if len(d.Functions) != 1 || d.Functions[0].Router != netip.MustParseAddr("10.255.0.100") ||
		d.Functions[0].Function != "map-resolver+map-server" || !d.Functions[0].Usable ||
		!slices.Equal(d.Functions[0].Capabilities, []string{"subscribe"}) {
		t.Fatalf("xtr1 learned %+v", d.Functions)
	}
	// The LSA went through FRR: xtr2's ospfd has it in its database.
	if db := frr["xtr2"].Vtysh(t, "show ip ospf database opaque-area"); !strings.Contains(db, "10.255.0.100") || !strings.Contains(db, "Router Information") {
		t.Fatalf("xtr2's ospfd database lacks msmr's opaque LSA:\n%s", db)
	}

	h2 := netip.MustParseAddr("10.2.0.10")
	n.waitFor(30*time.Second, "both sites registered with the discovered Map-Server", func() bool { return len(n.registrations()) >= 4 })
	if got, err := n.lab.Ping("h1", h2, 1, 5*time.Second); err != nil || got != 1 {
		t.Fatalf("first ping h1 -> h2 (resolution through the discovered Map-Resolver): %d/1, %v", got, err)
	}
	if got, err := n.lab.Ping("h1", h2, 5, 2*time.Second); err != nil || got != 5 {
		t.Fatalf("ping h1 -> h2: %d/5 answered, %v", got, err)
	}
	if s := msgCount(n.stats("xtr1"), "map-reply"); s.Received == 0 {
		t.Fatalf("xtr1 received no Map-Reply: %+v", s)
	}

	// Disabled: both xTRs stop using it; enabled: back.
	for _, st := range []string{"disabled", "enabled"} {
		t0 := time.Now()
		if err := n.do("msmr", "POST", "/v1/discovery/status", router.DiscoveryStatus{Status: st}, nil); err != nil {
			t.Fatal(err)
		}
		for _, x := range []string{"xtr1", "xtr2"} {
			n.waitFor(ospftest.Patience, fmt.Sprintf("%s follows status %s", x, st), func() bool { return uses(x) == (st == "enabled") })
		}
		t.Logf("figure: status %s to both xTRs following: %v", st, time.Since(t0).Round(time.Millisecond))
	}
	if d := state("xtr1"); d.Functions[0].Status != "enabled" {
		t.Fatalf("after enabled: %+v", d.Functions)
	}

	// A malformed MSFD TLV from xtr2's router: counted and ignored.
	var c *ospfapi.Client
	if err := n.lab.Node("xtr2").Do(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		c, err = ospfapi.Dial(ctx, netip.MustParseAddrPort("127.0.0.1:2607"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.RegisterOpaqueType(ctx, ospfapi.LSATypeOpaqueArea, 4); err != nil {
		t.Fatal(err)
	}
	bad := []byte{0x80, 0x00, 0x00, 0x12, 0x01, 0x09, 0, 0, 0, 0, 0, 0, 0x10, 0xf6, 0x01, 0x00, 0x00, 0x01, 192, 0, 2, 2, 0, 0} // status 9
	before := state("xtr1").Stats.Malformed
	n.waitFor(ospftest.Patience, "xtr2's ospfd takes the malformed TLV", func() bool {
		return c.Originate(ctx, netip.Addr{}, netip.IPv4Unspecified(), ospfapi.LSATypeOpaqueArea, 4, 9, bad) == nil
	})
	n.waitFor(ospftest.Patience, "xtr1 counts the malformed TLV", func() bool { return state("xtr1").Stats.Malformed > before })
	if d := state("xtr1"); !slices.Equal(d.MapResolvers, []netip.AddrPort{mr}) || !slices.Equal(d.MapServers, []netip.AddrPort{mr}) || len(d.Functions) != 1 {
		t.Fatalf("after a malformed TLV: %+v", d)
	}
	if got, err := n.lab.Ping("h1", h2, 3, 2*time.Second); err != nil || got != 3 {
		t.Fatalf("ping h1 -> h2 after the malformed TLV: %d/3, %v", got, err)
	}

	// The Map-Resolver's rlocd stops: ospfd flushes its LSA.
	t0 := time.Now()
	n.stop("msmr", true)
	for _, x := range []string{"xtr1", "xtr2"} {
		n.waitFor(ospftest.Patience, x+" drops the flushed Map-Resolver", func() bool { return !uses(x) })
	}
	t.Logf("figure: Map-Resolver stopped to both xTRs dropping it: %v", time.Since(t0).Round(time.Millisecond))
}

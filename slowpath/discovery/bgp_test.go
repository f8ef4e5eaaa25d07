package discovery

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/bgp"
)

func mustComm(t *testing.T, c string) bgp.ExtCommunity {
	t.Helper()
	e, err := EncodeMSComm(netip.MustParseAddrPort(c))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestBGPTable: tagged best paths are learned, replaced, withdrawn;
// untagged and malformed ones are not learned, malformed ones are logged
// and counted; the table is bounded; Lookup takes the longest prefix.
func TestBGPTable(t *testing.T) {
	var logs bytes.Buffer
	b := newBGP(slowpath.DiscoveryBGP{MaxLearned: 2, Contact: netip.MustParseAddrPort("192.0.2.9:4342"),
		Advertise: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}},
		slog.New(slog.NewTextHandler(&logs, nil)))
	nb := netip.MustParseAddr("203.0.113.1")
	p1, p2, p3 := netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("10.1.2.0/24"), netip.MustParsePrefix("10.3.0.0/16")
	rt := bgp.ExtCommunity{0x00, 0x02, 0xfd, 0xe8, 0, 0, 0, 1}
	b.onBest(bgp.Route{Prefix: p1, Neighbor: nb, ASPath: []uint32{65002, 65001},
		ExtCommunities: []bgp.ExtCommunity{rt, mustComm(t, "198.51.100.1:4342")}})
	b.onBest(bgp.Route{Prefix: p2, Neighbor: nb, ExtCommunities: []bgp.ExtCommunity{
		{0x01, 0x4c, 224, 0, 0, 1, 0, 0}, mustComm(t, "198.51.100.2:14342")}})
	if c, ok := b.Lookup(netip.MustParseAddr("10.1.2.3")); !ok || c != netip.MustParseAddrPort("198.51.100.2:14342") {
		t.Fatalf("lookup 10.1.2.3: %v %v", c, ok)
	}
	if c, ok := b.Lookup(netip.MustParseAddr("10.1.9.9")); !ok || c != netip.MustParseAddrPort("198.51.100.1:4342") {
		t.Fatalf("lookup 10.1.9.9: %v %v", c, ok)
	}
	if !strings.Contains(logs.String(), "malformed Mapping System community ignored") {
		t.Fatalf("no log line: %s", logs.String())
	}
	// Full: a third prefix is dropped; an untagged one is not learned.
	b.onBest(bgp.Route{Prefix: p3, Neighbor: nb, ExtCommunities: []bgp.ExtCommunity{mustComm(t, "198.51.100.3:4342")}})
	b.onBest(bgp.Route{Prefix: netip.MustParsePrefix("10.4.0.0/16"), Neighbor: nb})
	// A new best path without the community removes the entry.
	b.onBest(bgp.Route{Prefix: p2, Neighbor: nb, ExtCommunities: []bgp.ExtCommunity{rt}})
	b.onBest(bgp.Route{Prefix: p1, Withdrawn: true})
	s := b.Stats()
	if want := (BGPStats{Updates: 5, Withdrawals: 1, Malformed: 1, Untagged: 2, Dropped: 1}); s != want {
		t.Fatalf("stats %+v, want %+v", s, want)
	}
	e := b.Entries()
	if len(e) != 1 || !e[0].Self || e[0].Prefix != netip.MustParsePrefix("10.9.0.0/16") {
		t.Fatalf("entries %+v", e)
	}
	b.onBest(bgp.Route{Prefix: p3, Neighbor: nb, ASPath: []uint32{65002},
		ExtCommunities: []bgp.ExtCommunity{mustComm(t, "198.51.100.3:4342")}})
	e = b.Entries()
	if len(e) != 2 || e[0].Prefix != p3 || e[0].Contact != netip.MustParseAddrPort("198.51.100.3:4342") || e[0].Neighbor != nb || e[0].Self {
		t.Fatalf("entries %+v", e)
	}
}

// TestDiscoveryBGPConfig: the section's errors name the key.
func TestDiscoveryBGPConfig(t *testing.T) {
	good := slowpath.DiscoveryBGP{ASN: 65001, RouterID: netip.MustParseAddr("10.0.0.1"),
		Neighbors: []slowpath.DiscoveryBGPNeighbor{{Address: netip.MustParseAddr("10.0.0.2"), ASN: 65002}},
		Advertise: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, Contact: netip.MustParseAddrPort("192.0.2.1:4342")}
	if err := good.Validate("discovery.bgp"); err != nil {
		t.Fatal(err)
	}
	for want, mod := range map[string]func(*slowpath.DiscoveryBGP){
		"discovery.bgp.asn":                  func(c *slowpath.DiscoveryBGP) { c.ASN = 0 },
		"discovery.bgp.router_id":            func(c *slowpath.DiscoveryBGP) { c.RouterID = netip.Addr{} },
		"discovery.bgp.neighbors":            func(c *slowpath.DiscoveryBGP) { c.Neighbors = nil },
		"discovery.bgp.contact: missing":     func(c *slowpath.DiscoveryBGP) { c.Contact = netip.AddrPort{} },
		"discovery.bgp.contact: [2001:db8::": func(c *slowpath.DiscoveryBGP) { c.Contact = netip.MustParseAddrPort("[2001:db8::1]:1") },
		"discovery.bgp.neighbors[0].asn":     func(c *slowpath.DiscoveryBGP) { c.Neighbors = []slowpath.DiscoveryBGPNeighbor{{Address: c.RouterID}} },
	} {
		c := good
		mod(&c)
		if err := c.Validate("discovery.bgp"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
}

// TestBGPWatch: a watcher gets the table as it is, then every prefix
// learned, its contact changing (old entry gone first), an untagged path
// replacing it and a withdrawal; a path with an unchanged contact is no
// event.
func TestBGPWatch(t *testing.T) {
	b := newBGP(slowpath.DiscoveryBGP{}, nil)
	nb := netip.MustParseAddr("203.0.113.1")
	p1, p2 := netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("10.2.0.0/16")
	b.onBest(bgp.Route{Prefix: p1, Neighbor: nb, ExtCommunities: []bgp.ExtCommunity{mustComm(t, "198.51.100.1:4342")}})
	var got []string
	b.Watch(func(e BGPEntry, gone bool) {
		got = append(got, fmt.Sprintf("%v %v %v", e.Prefix, e.Contact, gone))
	})
	b.onBest(bgp.Route{Prefix: p2, Neighbor: nb, ExtCommunities: []bgp.ExtCommunity{mustComm(t, "198.51.100.2:4342")}})
	b.onBest(bgp.Route{Prefix: p2, Neighbor: nb, ASPath: []uint32{1}, ExtCommunities: []bgp.ExtCommunity{mustComm(t, "198.51.100.2:4342")}})
	b.onBest(bgp.Route{Prefix: p2, Neighbor: nb, ExtCommunities: []bgp.ExtCommunity{mustComm(t, "198.51.100.3:4342")}})
	b.onBest(bgp.Route{Prefix: p2, Neighbor: nb})
	b.onBest(bgp.Route{Prefix: p1, Withdrawn: true})
	want := []string{
		"10.1.0.0/16 198.51.100.1:4342 false",
		"10.2.0.0/16 198.51.100.2:4342 false",
		"10.2.0.0/16 198.51.100.2:4342 true", "10.2.0.0/16 198.51.100.3:4342 false",
		"10.2.0.0/16 198.51.100.3:4342 true",
		"10.1.0.0/16 198.51.100.1:4342 true",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

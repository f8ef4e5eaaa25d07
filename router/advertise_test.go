package router

import (
	"net/netip"
	"testing"

	"github.com/rloc-router/rloc/internal/testkit/netnstest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestAdvertiseAggregates: a PITR's EID aggregates become blackhole routes
// of protocol RouteProtocol in the kernel's main table, replace a crashed
// run's leftovers, and are withdrawn again.
func TestAdvertiseAggregates(t *testing.T) {
	ns := netnstest.New(t, "rloc-adv")
	prefixes := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("2001:db8:1::/48")}
	ours := func() map[string]bool {
		t.Helper()
		got := map[string]bool{}
		for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
			rs, err := ns.Netlink().RouteListFiltered(fam, &netlink.Route{Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN},
				netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				if r.Type != unix.RTN_BLACKHOLE {
					t.Errorf("route %v has type %d, want blackhole", r.Dst, r.Type)
				}
				got[r.Dst.String()] = true
			}
		}
		return got
	}
	var a, leftover advertiser
	if err := ns.Do(func() error { return leftover.advertise(prefixes[:1]) }); err != nil {
		t.Fatal(err)
	}
	if err := ns.Do(func() error { return a.advertise(prefixes) }); err != nil {
		t.Fatalf("advertise over a leftover route: %v", err)
	}
	if got := ours(); len(got) != 2 || !got["10.1.0.0/16"] || !got["2001:db8:1::/48"] {
		t.Fatalf("routes after advertise: %v", got)
	}
	if err := ns.Do(a.withdraw); err != nil {
		t.Fatal(err)
	}
	if got := ours(); len(got) != 0 {
		t.Fatalf("routes after withdraw: %v", got)
	}
}

package router

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RouteProtocol is the routing protocol number rloc gives the kernel routes
// it installs for the EID aggregates a PITR advertises (RFC 6832 §3): a
// routing daemon redistributes them into the underlay by this number
// ("ip route show proto 82"), and rloc removes exactly its own routes.
const RouteProtocol = 82

// advertiser installs the PITR's EID-aggregate routes into the kernel's
// main table and removes them on Stop.
type advertiser struct {
	routes []netlink.Route
}

// aggregateRoute is the kernel route for one advertised EID aggregate: a
// blackhole, since the traffic itself is taken by the site interface's XDP
// program before the kernel routes it; the route only announces the prefix.
func aggregateRoute(p netip.Prefix) netlink.Route {
	p = p.Masked()
	ip := net.IP(p.Addr().AsSlice())
	return netlink.Route{
		Dst:      &net.IPNet{IP: ip, Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Type:     unix.RTN_BLACKHOLE,
		Protocol: RouteProtocol,
		Table:    unix.RT_TABLE_MAIN,
		Family:   map[bool]int{true: netlink.FAMILY_V4, false: netlink.FAMILY_V6}[p.Addr().Is4()],
	}
}

// advertise installs (or replaces: a crashed run's leftovers are taken
// over) one route per aggregate.
func (a *advertiser) advertise(prefixes []netip.Prefix) error {
	for _, p := range prefixes {
		rt := aggregateRoute(p)
		if err := netlink.RouteReplace(&rt); err != nil {
			return fmt.Errorf("advertise: route %v: %w", p, err)
		}
		a.routes = append(a.routes, rt)
	}
	return nil
}

// withdraw removes the routes advertise installed.
func (a *advertiser) withdraw() error {
	var first error
	for i := range a.routes {
		if err := netlink.RouteDel(&a.routes[i]); err != nil && first == nil {
			first = fmt.Errorf("withdraw: route %v: %w", a.routes[i].Dst, err)
		}
	}
	a.routes = nil
	return first
}

package router

import (
	"net/netip"
	"testing"
	"time"
)

// TestMcastConfigSuppressHold: the underlay's SuppressHold reaches the
// control plane's configuration.
func TestMcastConfigSuppressHold(t *testing.T) {
	c := Config{Roles: Roles{ITR: true, ETR: true}, RLOCs: []netip.Addr{netip.MustParseAddr("192.0.2.1")},
		Interfaces: []Interface{{Name: "s0", Side: SideSite}, {Name: "c0", Side: SideCore}},
		Multicast: MulticastOptions{Enabled: true, Receivers: true, Underlay: &UnderlayOptions{Method: "hash",
			Range: netip.MustParsePrefix("239.1.0.0/16"), RegisterURLOC: true, SuppressHold: 7 * time.Second}}}
	mc, err := c.mcastConfig()
	if err != nil {
		t.Fatal(err)
	}
	if u := mc.Underlay; u == nil || !u.RegisterURLOC || u.SuppressHold != 7*time.Second {
		t.Fatalf("underlay %+v", u)
	}
}

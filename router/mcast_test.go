package router

import (
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

func TestInstallMulticast(t *testing.T) {
	r := &Router{cache: cache.New(cache.Config{}), log: slog.New(slog.DiscardHandler), events: newHub()}
	in := installer{r}
	src, grp := netip.MustParsePrefix("10.1.0.10/32"), netip.MustParsePrefix("232.1.1.1/32")
	rle := []replicate.Entry{{Addr: netip.MustParseAddr("192.0.2.2"), Level: 128}, {Addr: netip.MustParseAddr("192.0.2.3"), Level: 128}}
	in.InstallMulticast(&slowpath.ResolvedMulticast{IID: 7, Source: src, Group: grp, TTL: time.Minute, RLE: rle})
	e, ok := r.cache.LookupMulticast(7, src.Addr(), grp.Addr())
	if !ok || len(e.RLE()) != 2 || e.RLE()[1].Addr != rle[1].Addr || e.RLE()[0].Level != 128 {
		t.Fatalf("installed (S,G): ok=%v rle=%+v", ok, e)
	}
	// (*,G) covers other sources; an empty RLE is a drop entry.
	in.InstallMulticast(&slowpath.ResolvedMulticast{IID: 7, Source: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Group: grp, TTL: time.Minute})
	e, ok = r.cache.LookupMulticast(7, netip.MustParseAddr("10.9.9.9"), grp.Addr())
	if !ok || !e.Negative() || e.Action() != wire.ActionDrop {
		t.Fatalf("(*,G) without receivers: ok=%v entry=%+v", ok, e)
	}
	in.RemoveMulticast(7, src, grp)
	if e, ok = r.cache.LookupMulticast(7, src.Addr(), grp.Addr()); !ok || !e.Negative() {
		t.Fatalf("after removing (S,G) the (*,G) should match: ok=%v", ok)
	}
}

func TestMcastConfig(t *testing.T) {
	base := func() Config {
		return Config{Roles: Roles{ITR: true, ETR: true}, RLOCs: []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.1")},
			Interfaces: []Interface{{Name: "s0", Side: SideSite, IID: 3}, {Name: "c0", Side: SideCore}}}
	}
	c := base()
	if mc, err := c.mcastConfig(); err != nil || mc != nil {
		t.Fatalf("disabled: %v %v", mc, err)
	}
	c.Multicast = MulticastOptions{Enabled: true, Receivers: true, Underlay: &UnderlayOptions{Method: "hash", Range: netip.MustParsePrefix("239.1.0.0/16")}}
	mc, err := c.mcastConfig()
	if err != nil || mc.RLOC != netip.MustParseAddr("192.0.2.1") || len(mc.SiteInterfaces) != 1 ||
		mc.SiteInterfaces[0] != (slowpath.SiteInterface{Name: "s0", IID: 3}) || mc.Underlay.Method != slowpath.UnderlayHash {
		t.Fatalf("enabled: %+v %v", mc, err)
	}
	if c.underlayIface() != "c0" {
		t.Fatalf("underlay interface %q", c.underlayIface())
	}
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Multicast = MulticastOptions{Receivers: true} }, "multicast.enabled"},
		{func(c *Config) { c.Multicast.Underlay.Method = "magic" }, "multicast.underlay.method"},
		{func(c *Config) { c.Roles.ETR = false }, "multicast.receivers"},
		{func(c *Config) {
			c.Multicast.Trees = []slowpath.RTRGroup{{Group: netip.MustParsePrefix("232.0.0.1/32")}}
		}, "multicast.trees"},
	} {
		c := base()
		c.Multicast = MulticastOptions{Enabled: true, Receivers: true, Underlay: &UnderlayOptions{Method: "hash", Range: netip.MustParsePrefix("239.1.0.0/16")}}
		tc.mod(&c)
		if _, err := c.mcastConfig(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error naming %s, got %v", tc.want, err)
		}
	}
}

func TestParseSGQuery(t *testing.T) {
	for q, ok := range map[string]bool{
		"?group=232.1.1.1&source=10.1.0.10":     true,
		"?group=232.1.1.1&source=*&iid=5":       true,
		"?group=ff3e::1/128&source=2001:db8::1": true,
		"?group=10.1.1.1":                       false,
		"?group=232.1.1.1&source=bogus":         false,
		"?group=232.1.1.1&iid=99999999":         false,
		"":                                      false,
	} {
		_, _, _, err := parseSGQuery(httptest.NewRequest("GET", "/v1/mcast/tree"+q, nil))
		if (err == nil) != ok {
			t.Errorf("%q: err %v", q, err)
		}
	}
}

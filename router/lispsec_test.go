package router

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/slowpath"
)

// TestLispSecConfig: itr.lisp_sec becomes the ITR's LISP-SEC settings;
// map_server.lisp_sec_key the Map-Server's key; bad settings are named.
func TestLispSecConfig(t *testing.T) {
	mr := netip.MustParseAddrPort("192.0.2.10:4342")
	cfg := Config{Name: "xtr", Roles: Roles{ITR: true}, RLOCs: []netip.Addr{netip.MustParseAddr("192.0.2.1")},
		MapResolvers: []netip.AddrPort{mr}}
	if cfg.lispSecConfig() != nil {
		t.Fatal("LISP-SEC without itr.lisp_sec")
	}
	cfg.ITR.LispSec = LispSecOptions{Mode: "required", Key: "k", IIDs: []uint32{3}, MapResolvers: []netip.AddrPort{mr}}
	if err := cfg.validateLispSec(); err != nil {
		t.Fatal(err)
	}
	ec, err := cfg.engineConfig()
	if err != nil {
		t.Fatal(err)
	}
	if l := ec.ITR.LispSec; l == nil || l.Mode != slowpath.LispSecRequired || l.Key != "k" || len(l.IIDs) != 1 || l.MapResolvers[0] != mr {
		t.Fatalf("engine config %+v", ec.ITR.LispSec)
	}
	ms := Config{Name: "ms", Roles: Roles{MapServer: true}, Sites: []slowpath.SiteConfig{testSite()},
		MapServer: MapServerOptions{LispSecKey: "k"}}
	if ec, err := ms.engineConfig(); err != nil || ec.MapServer.LispSecKey != "k" {
		t.Fatalf("map_server.lisp_sec_key: %v %+v", err, ec.MapServer)
	}
	for _, tc := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.ITR.LispSec.Mode = "maybe" }, "itr.lisp_sec.mode"},
		{func(c *Config) { c.ITR.LispSec.Mode = "off" }, "itr.lisp_sec: settings without mode"},
		{func(c *Config) {
			c.ITR.LispSec.MapResolvers = []netip.AddrPort{netip.MustParseAddrPort("192.0.2.11:4342")}
		},
			"itr.lisp_sec.map_resolvers[0]"},
	} {
		c := cfg
		c.ITR.LispSec.MapResolvers = []netip.AddrPort{mr}
		tc.set(&c)
		err := c.validateLispSec()
		if err == nil {
			_, err = c.engineConfig()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v", tc.want, err)
		}
	}
}

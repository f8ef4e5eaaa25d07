package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/router"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// TestDiscoveryCommand runs `rlocctl discovery` against a Map-Resolver
// whose ospfd is not there (a closed port): the table says the API is not
// connected and counts the failed connections; `discovery status
// disabled` is accepted and a bad status is refused with the reason; -o
// json decodes to router.DiscoveryInfo.
func TestDiscoveryCommand(t *testing.T) {
	closed, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api := netip.MustParseAddrPort(closed.Addr().String())
	closed.Close()
	key := slowpath.AuthKey{KeyID: 1, Alg: wire.AuthHMACSHA256128, Secret: "s"}
	cfg := router.Config{
		Name:    "mr",
		Roles:   router.Roles{MapServer: true, MapResolver: true},
		Control: router.ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Sites: []slowpath.SiteConfig{{Name: "s1", Keys: []slowpath.AuthKey{key},
			Prefixes: []slowpath.SitePrefix{{EIDPrefix: slowpath.EIDPrefix{Prefix: netip.MustParsePrefix("10.1.0.0/16")}}}}},
		Mgmt:      router.MgmtOptions{Socket: filepath.Join(t.TempDir(), "mgmt.sock")},
		Discovery: slowpath.DiscoveryConfig{OSPFAPI: api},
	}
	r, err := router.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	var out bytes.Buffer
	if err := run([]string{"-s", cfg.Mgmt.Socket, "discovery"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ROUTER", "map-resolvers asked: -", "ospf api connected: false"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, out.String())
		}
	}
	if err := run([]string{"-s", cfg.Mgmt.Socket, "discovery", "status", "disabled"}, &out); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-s", cfg.Mgmt.Socket, "discovery", "status", "off"}, &out); err == nil || !strings.Contains(err.Error(), "enabled or disabled") {
		t.Fatalf("status off: %v", err)
	}
	out.Reset()
	if err := run([]string{"-s", cfg.Mgmt.Socket, "discovery", "-o", "json"}, &out); err != nil {
		t.Fatal(err)
	}
	var d router.DiscoveryInfo
	if err := json.Unmarshal(out.Bytes(), &d); err != nil || d.Stats.Connected || d.Functions == nil {
		t.Fatalf("json %v: %s", err, out.String())
	}
}

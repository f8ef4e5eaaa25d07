package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/router"
	"github.com/rloc-router/rloc/slowpath"
)

// TestDiscoveryBGPCommand runs `rlocctl discovery` against a Map-Resolver
// with only BGP discovery configured (its neighbour absent): the BGP table
// lists the advertised prefix with the contact, marked self, and -o json
// carries it under bgp.
func TestDiscoveryBGPCommand(t *testing.T) {
	cfg := router.Config{
		Name:    "mr",
		Roles:   router.Roles{MapResolver: true},
		Control: router.ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Mgmt:    router.MgmtOptions{Socket: filepath.Join(t.TempDir(), "mgmt.sock")},
		Discovery: slowpath.DiscoveryConfig{BGP: &slowpath.DiscoveryBGP{ASN: 65001, RouterID: netip.MustParseAddr("10.0.0.1"),
			Neighbors: []slowpath.DiscoveryBGPNeighbor{{Address: netip.MustParseAddr("127.0.0.2"), ASN: 65002, Port: 1}},
			Advertise: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, Contact: netip.MustParseAddrPort("192.0.2.1:4342")}},
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
	for _, want := range []string{"EID PREFIX", "10.1.0.0/16  192.0.2.1:4342  self", "bgp: 0 prefixes learned"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := run([]string{"-s", cfg.Mgmt.Socket, "discovery", "-o", "json"}, &out); err != nil {
		t.Fatal(err)
	}
	var d router.DiscoveryInfo
	if err := json.Unmarshal(out.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	if d.BGP == nil || len(d.BGP.Prefixes) != 1 || !d.BGP.Prefixes[0].Self {
		t.Fatalf("json: %s", out.String())
	}
}

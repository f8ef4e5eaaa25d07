package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/router"
	"github.com/rloc-router/rloc/slowpath"
)

// TestALTConfigYAML: roles [alt] and the alt section reach the router's
// configuration; a mistake in the section is named by its key, and so is a
// change of it on reload (refused: a restart applies it).
func TestALTConfigYAML(t *testing.T) {
	dir := t.TempDir()
	good := `roles: [map-server, alt]
sites: [{name: s1, keys: [{id: 1, secret: k}], prefixes: [{eid: 10.1.0.0/24}]}]
alt:
  asn: 65101
  router_id: 10.0.0.101
  underlay: 192.0.2.101
  hold_time: 3s
  announce_registered: true
  aggregates: [10.0.0.0/14]
  announce_iid: [{iid: 7, eid: 10.7.0.0/16}]
  neighbors:
    - {remote: 192.0.2.201, inner: 10.255.0.0/31, peer: 10.255.0.1, asn: 65001, checksum: true, key: 7}
`
	f := filepath.Join(dir, "alt.yaml")
	if err := os.WriteFile(f, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := loadConfig(f, flags())
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.ALT
	want := slowpath.ALTNeighbor{Remote: netip.MustParseAddr("192.0.2.201"), Inner: netip.MustParsePrefix("10.255.0.0/31"),
		Peer: netip.MustParseAddr("10.255.0.1"), ASN: 65001, Checksum: true, Key: 7}
	if !cfg.Roles.ALT || a.ASN != 65101 || a.HoldTime != 3*time.Second || !a.AnnounceRegistered || len(a.Neighbors) != 1 ||
		a.Neighbors[0] != want || a.Aggregates[0] != netip.MustParsePrefix("10.0.0.0/14") || a.WithDefaults().Families != slowpath.ALTFamiliesVPN ||
		len(a.AnnounceIID) != 1 || a.AnnounceIID[0] != (slowpath.EIDPrefix{IID: 7, Prefix: netip.MustParsePrefix("10.7.0.0/16")}) {
		t.Fatalf("alt %+v", a)
	}
	changed := cfg
	changed.ALT.HoldTime = time.Minute
	if err := router.CheckReload(&cfg, &changed); err == nil || !strings.Contains(err.Error(), "alt.hold_time") {
		t.Fatalf("reload with a new alt.hold_time: %v", err)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"peer outside the tunnel", strings.Replace(good, "peer: 10.255.0.1", "peer: 10.255.0.5", 1), "alt.neighbors[0].peer"},
		{"inner too wide", strings.Replace(good, "10.255.0.0/31", "10.255.0.0/24", 1), "alt.neighbors[0].inner"},
		{"no asn", strings.Replace(good, "asn: 65101", "asn: 0", 1), "alt.asn"},
		{"aggregate with host bits", strings.Replace(good, "10.0.0.0/14", "10.1.0.0/14", 1), "alt.aggregates[0]"},
		{"unknown families", strings.Replace(good, "hold_time: 3s", "hold_time: 3s\n  families: mpls", 1), `alt.families: "mpls"`},
		{"instance-ID on unicast", strings.Replace(good, "hold_time: 3s", "hold_time: 3s\n  families: unicast", 1), "alt.announce_iid[0].iid: 7: the unicast families"},
		{"instance-ID over 24 bits", strings.Replace(good, "iid: 7,", "iid: 16777216,", 1), "alt.announce_iid[0].iid"},
		{"section without the role", strings.Replace(good, "[map-server, alt]", "[map-server]", 1), "alt: set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadYAML(t, dir, tc.name, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

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

// TestDDTConfigYAML: roles [ddt-node] and the ddt section reach the
// router's configuration, durations and targets included; a mistake in the
// section is named by its key, and so is a change of it on reload (refused:
// a restart applies it).
func TestDDTConfigYAML(t *testing.T) {
	dir := t.TempDir()
	good := `roles: [ddt-node]
ddt:
  authoritative: [{iid: 0, eid: 10.0.0.0/8}]
  referral_ttl: 2h
  delegations:
    - {eid: 10.1.0.0/16, type: node, incomplete: true, targets: [{addr: 192.0.2.1, priority: 1, weight: 50}, {addr: 192.0.2.2, priority: 2}]}
    - {iid: 0, eid: 10.2.0.0/16, type: map-server, targets: [{addr: 198.51.100.1}]}
`
	f := filepath.Join(dir, "ddt.yaml")
	if err := os.WriteFile(f, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := loadConfig(f, flags())
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.DDT
	if !cfg.Roles.DDTNode || d.ReferralTTL != 2*time.Hour || len(d.Delegations) != 2 ||
		d.Delegations[0].Type != slowpath.DDTNode || !d.Delegations[0].Incomplete ||
		d.Delegations[0].Targets[1] != (slowpath.DDTTarget{Addr: netip.MustParseAddr("192.0.2.2"), Priority: 2}) ||
		d.Delegations[1].Prefix != netip.MustParsePrefix("10.2.0.0/16") || d.Delegations[1].Type != slowpath.DDTMapServer {
		t.Fatalf("ddt %+v", d)
	}
	// A reload cannot change the delegations: refused, the key named.
	changed := cfg
	changed.DDT.ReferralTTL = time.Hour
	if err := router.CheckReload(&cfg, &changed); err == nil || !strings.Contains(err.Error(), "ddt.referral_ttl") {
		t.Fatalf("reload with a new ddt.referral_ttl: %v", err)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"bad type", strings.Replace(good, "type: map-server", "type: ms", 1), "ddt.delegations[1].type"},
		{"bad target", strings.Replace(good, "198.51.100.1", "198.51.100.300", 1), "ddt.delegations[1].targets[0].addr"},
		{"priority beyond a byte", strings.Replace(good, "priority: 2", "priority: 256", 1), "ddt.delegations[0].targets[1].priority"},
		{"unknown key", strings.Replace(good, "referral_ttl: 2h", "referal_ttl: 2h", 1), "ddt.referal_ttl"},
		{"section without the role", strings.Replace(good, "[ddt-node]", "[map-resolver]", 1), "ddt: set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadYAML(t, dir, tc.name, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
)

// TestDDTResolverConfigYAML: map_resolver.ddt, map_resolver.ddt_keys and
// map_server.ddt reach the router's configuration; their mistakes are
// named by key (a missing or wrong key file, bounds, DDT settings without
// roots, a bad peer, a signing key that is no private key).
func TestDDTResolverConfigYAML(t *testing.T) {
	dir := t.TempDir()
	pub, err := filepath.Abs("../../wire/testdata/ddt_rsa_pub.pem")
	if err != nil {
		t.Fatal(err)
	}
	priv := strings.Replace(pub, "ddt_rsa_pub.pem", "ddt_rsa_key.pem", 1)
	good := `roles: [map-server, map-resolver]
sites: [{name: s, keys: [{id: 1, secret: k}], prefixes: [{eid: 10.0.0.0/8}]}]
map_resolver:
  ddt_roots: [192.0.2.10]
  ddt: {max_hops: 4, retransmit_interval: 500ms, tries_per_target: 3, cache_size: 100, max_pending: 50}
  ddt_keys:
    - {eid: 0.0.0.0/0, key_file: PUB}
    - {iid: 7, eid: 10.1.0.0/16, key_file: PUB}
map_server:
  ddt:
    ack_ttl: 30m
    not_registered_ttl: 2m
    peers: [{addr: 192.0.2.31, priority: 1, weight: 50}, {addr: 192.0.2.32, priority: 1, weight: 50}]
    signing: {key_file: PRIV}
`
	good = strings.NewReplacer("PUB", pub, "PRIV", priv).Replace(good)
	f := filepath.Join(dir, "mr.yaml")
	if err := os.WriteFile(f, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := loadConfig(f, flags())
	if err != nil {
		t.Fatal(err)
	}
	mr, ms := cfg.MapResolver, cfg.MapServer.DDT
	if mr.DDT != (slowpath.DDTResolverConfig{MaxHops: 4, RetransmitInterval: 500 * time.Millisecond, TriesPerTarget: 3, CacheSize: 100, MaxPending: 50}) ||
		len(mr.DDTKeys) != 2 || mr.DDTKeys[1].IID != 7 || mr.DDTKeys[1].Prefix != netip.MustParsePrefix("10.1.0.0/16") || mr.DDTKeys[0].KeyFile != pub {
		t.Fatalf("map_resolver %+v", mr)
	}
	if ms.AckTTL != 30*time.Minute || ms.NotRegisteredTTL != 2*time.Minute || len(ms.Peers) != 2 || ms.Peers[1].Weight != 50 || ms.Signing.KeyFile != priv {
		t.Fatalf("map_server.ddt %+v", ms)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"missing key file", strings.Replace(good, "{eid: 0.0.0.0/0, key_file: "+pub, "{eid: 0.0.0.0/0, key_file: /nonexistent.pem", 1),
			"map_resolver.ddt_keys[0].key_file: open /nonexistent.pem"},
		{"private key as public", strings.Replace(good, "{iid: 7, eid: 10.1.0.0/16, key_file: "+pub, "{iid: 7, eid: 10.1.0.0/16, key_file: "+priv, 1),
			"map_resolver.ddt_keys[1].key_file: " + priv},
		{"key twice", strings.Replace(good, "{iid: 7, eid: 10.1.0.0/16", "{eid: 0.0.0.0/0", 1), "map_resolver.ddt_keys[1].eid: 0/0.0.0.0/0 has a key already"},
		{"no key file", strings.Replace(good, ", key_file: "+pub+"}\n    - {iid", "}\n    - {iid", 1), "map_resolver.ddt_keys[0].key_file: empty"},
		{"hops", strings.Replace(good, "max_hops: 4", "max_hops: 100", 1), "map_resolver.ddt.max_hops: 100 out of range"},
		{"interval", strings.Replace(good, "retransmit_interval: 500ms", "retransmit_interval: 2h", 1), "map_resolver.ddt.retransmit_interval"},
		{"no roots", strings.Replace(good, "ddt_roots: [192.0.2.10]", "ddt_roots: []", 1), "map_resolver.ddt: set, but no map_resolver.ddt_roots"},
		{"bad peer", strings.Replace(good, "192.0.2.32", "0.0.0.0", 1), "map_server.ddt.peers[1].addr"},
		{"public key to sign", strings.Replace(good, "signing: {key_file: "+priv, "signing: {key_file: "+pub, 1), "map_server.ddt.signing.key_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadYAML(t, dir, tc.name, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

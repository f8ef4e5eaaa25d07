package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/router"
)

// TestExampleConfigs loads every example and demo configuration.
func TestExampleConfigs(t *testing.T) {
	files, _ := filepath.Glob("../../configs/*.yaml")
	demo, _ := filepath.Glob("../../configs/demo/*.yaml")
	ddt, _ := filepath.Glob("../../configs/ddt/*.yaml")        // the DDT lab's (configs/lab/ddt.yaml)
	msxExp, _ := filepath.Glob("../../configs/msx-exp/*.yaml") // the LISP-MSX experiment's (configs/lab/msx-exp.yaml)
	files = append(append(append(files, demo...), ddt...), msxExp...)
	if len(files) < 8 {
		t.Fatalf("found only %d example configs: %v", len(files), files)
	}
	roles := map[string]bool{}
	for _, f := range files {
		cfg, _, err := loadConfig(f, flags())
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		r := cfg.Roles
		roles["itr"] = roles["itr"] || r.ITR
		roles["etr"] = roles["etr"] || r.ETR
		roles["pitr"] = roles["pitr"] || r.PITR
		roles["petr"] = roles["petr"] || r.PETR
		roles["rtr"] = roles["rtr"] || r.RTR
		roles["ms"] = roles["ms"] || r.MapServer
		roles["mr"] = roles["mr"] || r.MapResolver
	}
	if len(roles) != 7 {
		t.Fatalf("roles covered by the examples: %v", roles)
	}
	for k, v := range roles {
		if !v {
			t.Errorf("no example config has role %s", k)
		}
	}
}

// TestConfigErrors checks that bad configurations stop with the key and
// the reason.
func TestConfigErrors(t *testing.T) {
	base := `name: x
roles: [map-server]
sites:
  - name: s
    keys: [{id: 1, secret: k}]
    prefixes: [{eid: 10.0.0.0/8}]
`
	cases := []struct{ name, yaml, want string }{
		{"ok", base, ""},
		{"unknown top key", base + "colour: blue\n", "colour"},
		{"unknown nested key", strings.Replace(base, "name: s", "name: s\n    colour: red", 1), "colour"},
		{"bad role", strings.Replace(base, "[map-server]", "[map-sever]", 1), "roles[0]"},
		{"bad prefix", strings.Replace(base, "10.0.0.0/8", "10.0.0.1/8", 1), "sites[0].prefixes[0].eid"},
		{"bad alg", strings.Replace(base, "id: 1,", "id: 1, alg: md5,", 1), "sites[0].keys[0].alg"},
		{"empty secret", strings.Replace(base, "secret: k", "secret: \"\"", 1), "sites[0].keys[0].secret"},
		{"key variant ok", strings.Replace(base, "id: 1,", "id: 0, alg: hmac-sha256-128-hkdf, layout: legacy, hmac_length: truncated, coverage: records,", 1), ""},
		{"legacy key ID", strings.Replace(base, "id: 1,", "id: 1, layout: legacy,", 1), "sites[0].keys[0].id"},
		{"bad layout", strings.Replace(base, "id: 1,", "id: 1, layout: old,", 1), "sites[0].keys[0].layout"},
		{"bad hmac length", strings.Replace(base, "id: 1,", "id: 1, hmac_length: 20,", 1), "sites[0].keys[0].hmac_length"},
		{"bad coverage", strings.Replace(base, "id: 1,", "id: 1, coverage: all,", 1), "sites[0].keys[0].coverage"},
		{"no sites", "roles: [map-server]\n", "sites"},
		{"bad duration", base + "map_server: {registration_timeout: soon}\n", "map_server.registration_timeout"},
		{"itr without resolver", "roles: [itr]\nrlocs: [192.0.2.1]\ninterfaces: [{name: a, side: site}, {name: b, side: core}]\n", "map_resolvers"},
		{"bad side", "roles: [itr]\nrlocs: [192.0.2.1]\nmap_resolvers: [192.0.2.9]\ninterfaces: [{name: a, side: inside}, {name: b, side: core}]\n", "interfaces[0].side"},
		{"bad rloc", "roles: [petr]\nrlocs: [192.0.2.300]\n", "rlocs[0]"},
		{"bad log level", base + "log: {level: loud}\n", "log.level"},
		{"xdp ok", base + "xdp: {ring_size: 4096, frames: 8192}\n", ""},
		{"xdp ring not power of two", base + "xdp: {ring_size: 3000}\n", "xdp.ring_size"},
		{"xdp frames below ring", base + "xdp: {ring_size: 4096, frames: 1024}\n", "xdp.frames"},
		{"xdp kick delay too long", base + "xdp: {kick_delay: 5ms}\n", "xdp.kick_delay"},
		{"xdp kick delay negative", base + "xdp: {kick_delay: -1us}\n", "xdp.kick_delay"},
		{"xdp kick delay ok", base + "xdp: {kick_delay: 50us}\n", ""},
		{"next-hop buffer too big", base + "next_hops: {receive_buffer_mib: 2048}\n", "next_hops.receive_buffer_mib"},
		{"next-hop buffer negative", base + "next_hops: {receive_buffer_mib: -1}\n", "next_hops.receive_buffer_mib"},
		{"next-hop gap too long", base + "next_hops: {publish_gap: 2s}\n", "next_hops.publish_gap"},
		{"next-hop gap negative", base + "next_hops: {publish_gap: -1ms}\n", "next_hops.publish_gap"},
		{"next-hop options ok", base + "next_hops: {receive_buffer_mib: 64, publish_gap: 20ms}\n", ""},
		{"group mapping ok", base + "map_server: {group_mappings: [{iid: 9, eid: 232.1.0.0/16, groups: [239.1.1.1, \"192.0.2.1,232.9.9.9\"], unicast: [192.0.2.7]}]}\n", ""},
		{"group mapping bad group", base + "map_server: {group_mappings: [{iid: 9, eid: 232.1.0.0/16, groups: [239.1.1]}]}\n", "map_server.group_mappings[0].groups[0]"},
		{"group mapping unicast G-RLOC", base + "map_server: {group_mappings: [{iid: 9, eid: 232.1.0.0/16, groups: [10.1.1.1]}]}\n", "map_server.group_mappings[0]"},
		{"group mapping unicast range", base + "map_server: {group_mappings: [{iid: 9, eid: 10.0.0.0/8, groups: [239.1.1.1]}]}\n", "map_server.group_mappings[0]"},
		{"group mapping empty", base + "map_server: {group_mappings: [{iid: 9, eid: 232.1.0.0/16}]}\n", "map_server.group_mappings[0]"},
		// Operator mistakes (issue 13): ranges, sections a role would
		// ignore, addresses start-up would refuse.
		{"negative iid", strings.Replace(base, "{eid: 10.0.0.0/8}", "{eid: 10.0.0.0/8, iid: -1}", 1), "sites[0].prefixes[0].iid"},
		{"iid beyond 24 bits", strings.Replace(base, "{eid: 10.0.0.0/8}", "{eid: 10.0.0.0/8, iid: 16777216}", 1), "sites[0].prefixes[0].iid"},
		{"largest iid", strings.Replace(base, "{eid: 10.0.0.0/8}", "{eid: 10.0.0.0/8, iid: 16777215}", 1), ""},
		{"static iid beyond 24 bits", base + "map_cache: [{iid: 16777216, eid: 10.9.0.0/16, rlocs: [{addr: 192.0.2.9}]}]\n", "map_cache[0].iid"},
		{"database without etr", base + "database: [{eid: 10.1.0.0/24, rlocs: [{addr: 192.0.2.1}]}]\n", "database: only the etr role"},
		{"etr section without etr", base + "etr: {register_interval: 5s}\n", "etr: set, but only the etr role"},
		{"itr section without itr", base + "itr: {probe_interval: 5s}\n", "itr: set"},
		{"map_resolver section without the role", base + "map_resolver: {negative_ttl: 1m}\n", "map_resolver: set"},
		{"map_server section without the role", "roles: [map-resolver]\nmap_server: {registration_timeout: 1m}\n", "map_server: set"},
		{"metrics without port", base + "metrics: {listen: localhost}\n", "metrics.listen"},
		{"prefix in two sites", base + "  - name: t\n    keys: [{id: 1, secret: k}]\n    prefixes: [{eid: 10.0.0.0/8}]\n", "sites[1].prefixes[0].eid"},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadYAML(t, dir, tc.name, tc.yaml)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted; want an error naming %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

// TestEnvOverride checks RLOC_* overrides of keys the file does not set.
func TestEnvOverride(t *testing.T) {
	t.Setenv("RLOC_MGMT_SOCKET", "/tmp/x.sock")
	t.Setenv("RLOC_LOG_LEVEL", "debug")
	cfg, opts, err := loadConfig("../../configs/demo/msmr.yaml", flags())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mgmt.Socket != "/tmp/x.sock" || opts.logLevel.String() != "DEBUG" {
		t.Fatalf("mgmt socket %q, log level %v", cfg.Mgmt.Socket, opts.logLevel)
	}
}

// loadYAML writes yaml as dir/name.yaml and loads it; it returns the
// file's path and loadConfig's error.
func loadYAML(t *testing.T, dir, name, yaml string) (string, error) {
	t.Helper()
	f := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
	if err := os.WriteFile(f, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := loadConfig(f, flags())
	return f, err
}

// loadSite loads a Map-Server configuration with one site and extra's
// keys, failing the test on an error.
func loadSite(t *testing.T, extra string) router.Config {
	t.Helper()
	base := "roles: [map-server]\nsites: [{name: s, keys: [{id: 1, secret: k}], prefixes: [{eid: 10.0.0.0/8}]}]\n"
	f := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(f, []byte(base+extra), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := loadConfig(f, flags())
	if err != nil {
		t.Fatalf("%q: %v", extra, err)
	}
	return cfg
}

// TestNextHopKeys: next_hops.receive_buffer_mib and publish_gap reach
// the router's configuration (0 unless set: the watcher's defaults).
func TestNextHopKeys(t *testing.T) {
	for _, tc := range []struct {
		extra string
		mib   int
		gap   time.Duration
	}{{"", 0, 0}, {"next_hops: {receive_buffer_mib: 64}\n", 64, 0}, {"next_hops: {publish_gap: 25ms}\n", 0, 25 * time.Millisecond}} {
		if cfg := loadSite(t, tc.extra); cfg.NextHops.ReceiveBufferMiB != tc.mib || cfg.NextHops.PublishGap != tc.gap {
			t.Errorf("%q: %+v", tc.extra, cfg.NextHops)
		}
	}
}

// TestBusyPollKey: xdp.busy_poll and xdp.kick_delay reach the router's
// configuration (off and 0 unless set).
func TestBusyPollKey(t *testing.T) {
	for _, tc := range []struct {
		extra string
		want  bool
		kick  time.Duration
	}{{"", false, 0}, {"xdp: {busy_poll: true}\n", true, 0}, {"xdp: {kick_delay: 50us}\n", false, 50 * time.Microsecond}} {
		if cfg := loadSite(t, tc.extra); cfg.XDP.BusyPoll != tc.want || cfg.XDP.KickDelay != tc.kick {
			t.Errorf("%q: BusyPoll %v, KickDelay %v", tc.extra, cfg.XDP.BusyPoll, cfg.XDP.KickDelay)
		}
	}
}

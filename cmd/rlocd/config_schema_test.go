package main

import (
	"strings"
	"testing"
)

// TestConfigErrorPaths: every kind of bad configuration is refused with an
// error that starts with the key path the operator wrote.
func TestConfigErrorPaths(t *testing.T) {
	ms := `name: ms
roles: [map-server, map-resolver]
sites:
  - name: s
    keys: [{id: 1, secret: k}]
    prefixes: [{eid: 10.0.0.0/8}]
`
	xtr := `name: x
roles: [itr, etr]
rlocs: [192.0.2.1]
interfaces: [{name: site0, side: site}, {name: core0, side: core}]
database: [{eid: 10.1.0.0/24, rlocs: [{addr: 192.0.2.1}]}]
map_servers: [{addr: 192.0.2.100, key: {id: 1, secret: k}}]
map_resolvers: [192.0.2.100]
`
	rtr := `name: r
roles: [rtr]
rlocs: [192.0.2.1]
interfaces: [{name: site0, side: site}, {name: core0, side: core}]
map_servers: [{addr: 192.0.2.100, key: {id: 1, secret: k}}]
map_resolvers: [192.0.2.100]
multicast: {enabled: true, trees: [{group: 232.1.1.1/32, level: 0}]}
`
	sub := func(base, old, new string) string {
		if !strings.Contains(base, old) {
			t.Fatalf("%q not in the base configuration", old)
		}
		return strings.Replace(base, old, new, 1)
	}
	cases := []struct{ name, yaml, path string }{
		{"unknown top-level key", ms + "colour: blue\n", "colour"},
		{"unknown key in a list item", sub(ms, "name: s", "name: s\n    colour: red"), "sites[0].colour"},
		{"unknown key two levels down", sub(ms, "{id: 1, secret: k}", "{id: 1, secret: k, colour: red}"), "sites[0].keys[0].colour"},
		{"unknown key in a section", xtr + "itr: {probe_intervall: 1s}\n", "itr.probe_intervall"},
		{"unknown key in a pointer section", xtr + "multicast: {enabled: true, receivers: true, underlay: {method: hash, colour: red}}\n", "multicast.underlay.colour"},
		{"action on a database mapping", sub(xtr, "{eid: 10.1.0.0/24,", "{eid: 10.1.0.0/24, action: drop,"), "database[0].action"},
		{"ttl on a static entry", xtr + "map_cache: [{eid: 10.9.0.0/16, ttl: 1m, action: drop}]\n", "map_cache[0].ttl"},
		{"wrong type: bool", ms + "nonce: maybe\n", "nonce"},
		{"wrong type: int", sub(xtr, "{name: site0, side: site}", "{name: site0, side: site, queues: many}"), "interfaces[0].queues"},
		{"wrong type: list", sub(ms, "sites:\n  - name: s\n    keys: [{id: 1, secret: k}]\n    prefixes: [{eid: 10.0.0.0/8}]\n", "sites: 5\n"), "sites[0]"}, // a scalar is read as a list of one
		{"wrong type: list element", ms + "cpus: [one]\n", "cpus[0]"},
		{"wrong type: section", xtr + "etr: 5\n", "etr"},
		{"bad role", sub(ms, "[map-server, map-resolver]", "[map-server, resolver]"), "roles[1]"},
		{"prefix with host bits", sub(ms, "10.0.0.0/8", "10.0.0.1/8"), "sites[0].prefixes[0].eid"},
		{"not a prefix", sub(xtr, "10.1.0.0/24", "10.1.0/24"), "database[0].eid"},
		{"not an address", sub(xtr, "{addr: 192.0.2.100,", "{addr: 192.0.2.300,"), "map_servers[0].addr"},
		{"not an RLOC", sub(xtr, "rlocs: [{addr: 192.0.2.1}]", "rlocs: [{addr: me}]"), "database[0].rlocs[0].addr"},
		{"bad duration", ms + "map_server: {registration_timeout: soon}\n", "map_server.registration_timeout"},
		{"bad subscriber xTR-ID", ms + "map_server: {pubsub: {subscribers: [{xtr_id: abc, key: {id: 1, secret: k}}]}}\n", "map_server.pubsub.subscribers[0].xtr_id"},
		{"unknown key in itr.subscribe", xtr + "itr: {subscribe: {enabled: true, iid: [1]}}\n", "itr.subscribe.iid"},
		{"discovery status", ms + "discovery: {advertise: {locators: [192.0.2.100], status: off}}\n", "discovery.advertise.status"},
		{"discovery timer", ms + "discovery: {advertise: {locators: [192.0.2.100], reboot_timer: 1500ms}}\n", "discovery.advertise.reboot_timer"},
		{"discovery area", xtr + "discovery: {area: \"::1\"}\n", "discovery.area"},
		{"discovered resolvers without an ITR", ms + "discovery: {map_resolvers: true}\n", "discovery.map_resolvers"},
		{"negative duration", xtr + "etr: {register_interval: -1s}\n", "etr.register_interval"},
		{"duration without unit", sub(xtr, "{eid: 10.1.0.0/24,", "{eid: 10.1.0.0/24, ttl: 60,"), "database[0].ttl"},
		{"iid beyond 24 bits", sub(xtr, "{name: site0, side: site}", "{name: site0, side: site, iid: 16777216}"), "interfaces[0].iid"},
		{"iid beyond 32 bits", sub(xtr, "{eid: 10.1.0.0/24,", "{eid: 10.1.0.0/24, iid: 4294967296,"), "database[0].iid"},
		{"negative iid", sub(ms, "{eid: 10.0.0.0/8}", "{eid: 10.0.0.0/8, iid: -1}"), "sites[0].prefixes[0].iid"},
		{"key id beyond 255", sub(ms, "{id: 1, secret: k}", "{id: 256, secret: k}"), "sites[0].keys[0].id"},
		{"priority beyond 255", sub(xtr, "{addr: 192.0.2.1}]", "{addr: 192.0.2.1, priority: 300}]"), "database[0].rlocs[0].priority"},
		{"bad algorithm", sub(xtr, "key: {id: 1,", "key: {id: 1, alg: md5,"), "map_servers[0].key.alg"},
		{"empty secret", sub(xtr, "secret: k}", "secret: \"\"}"), "map_servers[0].key.secret"},
		{"duplicate key id", sub(ms, "[{id: 1, secret: k}]", "[{id: 1, secret: k}, {id: 1, secret: j}]"), "sites[0].keys[1].id"},
		{"duplicate site", ms + "  - {name: s, keys: [{id: 1, secret: k}], prefixes: [{eid: 11.0.0.0/8}]}\n", "sites[1].name"},
		{"prefix of two sites", ms + "  - {name: t, keys: [{id: 1, secret: k}], prefixes: [{eid: 10.0.0.0/8}]}\n", "sites[1].prefixes[0].eid"},
		{"prefix twice in a site", sub(ms, "[{eid: 10.0.0.0/8}]", "[{eid: 10.0.0.0/8}, {eid: 10.0.0.0/8, accept_more_specifics: true}]"), "sites[0].prefixes[1].eid"},
		{"group mapping twice", ms + "map_server: {group_mappings: [{iid: 9, eid: 232.1.0.0/16, groups: [239.1.1.1]}, {iid: 9, eid: 232.1.0.0/16, groups: [239.1.1.2]}]}\n", "map_server.group_mappings[1].eid"},
		{"site without prefixes", sub(ms, "    prefixes: [{eid: 10.0.0.0/8}]\n", ""), "sites[0].prefixes"},
		{"bad action", xtr + "map_cache: [{eid: 10.9.0.0/16, action: bounce}]\n", "map_cache[0].action"},
		{"static prefix with host bits", xtr + "map_cache: [{eid: 10.9.0.1/16, action: drop}]\n", "map_cache[0].eid"},
		{"static entry with action and RLOCs", xtr + "map_cache: [{eid: 10.9.0.0/16, action: drop}, {eid: 10.8.0.0/16, action: drop, rlocs: [{addr: 192.0.2.9}]}]\n", "map_cache[1]"},
		{"mapping without RLOCs", sub(xtr, "rlocs: [{addr: 192.0.2.1}]", "rlocs: []"), "database[0].rlocs"},
		{"second IPv4 control socket", ms + "control: {listen: [192.0.2.1, \"192.0.2.2:4342\"]}\n", "control.listen[1]"},
		{"not a control socket", ms + "control: {listen: [\"192.0.2.1:http\"]}\n", "control.listen[0]"},
		{"negative rate limit", ms + "control: {rate_limit: {map_register: {per_source: -2}}}\n", "control.rate_limit.map_register.per_source"},
		{"aggregate with host bits", ms + "map_resolver: {aggregates: [{eid: 10.0.0.1/8}]}\n", "map_resolver.aggregates[0].eid"},
		{"remote Map-Server prefix", ms + "map_resolver: {map_servers: [{addr: 192.0.2.7, prefixes: [{eid: 10.1/16}]}]}\n", "map_resolver.map_servers[0].prefixes[0].eid"},
		{"remote Map-Server without prefixes", ms + "map_resolver: {map_servers: [{addr: 192.0.2.7}]}\n", "map_resolver.map_servers[0].prefixes"},
		{"bad underlay group", ms + "map_server: {group_mappings: [{iid: 9, eid: 232.1.0.0/16, groups: [239.1.1.1, \"192.0.2.1,232.9.9\"]}]}\n", "map_server.group_mappings[0].groups[1]"},
		{"group range with host bits", ms + "map_server: {group_mappings: [{iid: 9, eid: 232.1.0.1/16, groups: [239.1.1.1]}]}\n", "map_server.group_mappings[0].eid"},
		{"negative hold bound", xtr + "hold: {per_eid: -1}\n", "hold"},
		{"second IPv4 RLOC", sub(xtr, "rlocs: [192.0.2.1]", "rlocs: [192.0.2.1, 192.0.2.2]"), "rlocs[1]"},
		{"second IPv4 PETR", xtr + "petrs: [192.0.2.3, 192.0.2.4]\n", "petrs[1]"},
		{"interface listed twice", sub(xtr, "{name: core0, side: core}", "{name: site0, side: core}"), "interfaces[1].name"},
		{"bad xdp mode", sub(xtr, "{name: site0, side: site}", "{name: site0, side: site, xdp_mode: turbo}"), "interfaces[0].xdp_mode"},
		{"bad log format", ms + "log: {format: xml}\n", "log.format"},
		{"multicast key without secret", xtr + "multicast: {enabled: true, key: {id: 1}}\n", "multicast.key.secret"},
		{"bad underlay method", xtr + "multicast: {enabled: true, receivers: true, underlay: {method: flood}}\n", "multicast.underlay.method"},
		{"underlay range with host bits", xtr + "multicast: {enabled: true, receivers: true, underlay: {method: hash, range: 239.1.0.1/16}}\n", "multicast.underlay.range"},
		{"underlay range not multicast", xtr + "multicast: {enabled: true, receivers: true, underlay: {method: hash, range: 10.0.0.0/8}}\n", "multicast.underlay.range"},
		{"tree group with host bits", sub(rtr, "232.1.1.1/32", "232.1.1.1/24"), "multicast.trees[0].group"},
		{"tree group not multicast", sub(rtr, "232.1.1.1/32", "10.1.1.1/32"), "multicast.trees[0].group"},
		{"tree at an ETR level", sub(rtr, "level: 0", "level: 128"), "multicast.trees[0].level"},
		{"tree twice", sub(rtr, "level: 0}]", "level: 0}, {group: 232.1.1.1, level: 1}]"), "multicast.trees[1]"},
		{"trees without the rtr role", sub(rtr, "roles: [rtr]", "roles: [itr]"), "multicast.trees"},
		{"multicast level", xtr + "multicast: {enabled: true, level: 200}\n", "multicast.level"},
		{"multicast off with options", xtr + "multicast: {receivers: true}\n", "multicast.enabled"},
	}
	dir := t.TempDir()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := loadYAML(t, dir, tc.name, tc.yaml)
			if err == nil {
				t.Fatalf("case %d accepted; want an error at %s", i, tc.path)
			}
			t.Log(strings.TrimPrefix(err.Error(), f+": "))
			if !strings.HasPrefix(err.Error(), f+": "+tc.path+": ") {
				t.Fatalf("error %q does not start with the key %q", strings.TrimPrefix(err.Error(), f+": "), tc.path)
			}
		})
	}
	for name, base := range map[string]string{"ms": ms, "xtr": xtr, "rtr": rtr} {
		if _, err := loadYAML(t, dir, name, base); err != nil {
			t.Errorf("base %s: %v", name, err)
		}
	}
}

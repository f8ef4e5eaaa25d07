package lab

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const small = `
name: small
nodes:
  - name: a
    routes:
      - {to: default, via: 10.0.1.1}
      - {to: default, via: "2001:db8:1::1"}
  - name: r
    sysctls:
      net.ipv4.ip_forward: 1
      net.ipv6.conf.all.forwarding: 1
    role: {config: configs/x.yaml, roles: [itr, etr]}
  - name: b
    routes:
      - {to: 10.0.1.0/24, via: 10.0.2.1}
      - {to: "2001:db8:1::/64", via: "2001:db8:2::1"}
links:
  - name: ar
    ends:
      - {node: a, ifname: eth0, addrs: [10.0.1.2/24, "2001:db8:1::2/64"]}
      - {node: r, ifname: eth0, addrs: [10.0.1.1/24, "2001:db8:1::1/64"]}
bridges:
  - name: core
    ports:
      - {node: r, ifname: core0, addrs: [10.0.2.1/24, "2001:db8:2::1/64"]}
      - {node: b, ifname: core0, addrs: [10.0.2.2/24, "2001:db8:2::2/64"]}
`

func TestParseSmall(t *testing.T) {
	topo, err := Parse([]byte(small))
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.Nodes) != 3 || len(topo.Links) != 1 || len(topo.Bridges) != 1 {
		t.Fatalf("got %d nodes, %d links, %d bridges", len(topo.Nodes), len(topo.Links), len(topo.Bridges))
	}
	r, ok := topo.Node("r")
	if !ok {
		t.Fatal("node r missing")
	}
	if r.Sysctls["net.ipv4.ip_forward"] != "1" {
		t.Errorf("sysctl value %q, want \"1\"", r.Sysctls["net.ipv4.ip_forward"])
	}
	if r.Role["config"] != "configs/x.yaml" {
		t.Errorf("role %v", r.Role)
	}
	a, _ := topo.Node("a")
	if got := a.Routes[1].dst; got != netip.MustParsePrefix("::/0") {
		t.Errorf("IPv6 default route parsed as %v", got)
	}
	if got, ok := topo.Addr("b", "core0", 6); !ok || got != netip.MustParseAddr("2001:db8:2::2") {
		t.Errorf("Addr(b, core0, 6) = %v, %v", got, ok)
	}
	if got, ok := topo.Addr("a", "eth0", 4); !ok || got != netip.MustParseAddr("10.0.1.2") {
		t.Errorf("Addr(a, eth0, 4) = %v, %v", got, ok)
	}
	if _, ok := topo.Addr("a", "eth9", 4); ok {
		t.Error("Addr of a missing interface found something")
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, doc string
		want      []string // substrings of the error
	}{
		{"empty", ``, []string{"empty"}},
		{"no nodes", `nodes: []`, []string{"nodes", "at least one"}},
		{"unknown top key", "nodes: [{name: a}]\nfoo: 1\n", []string{"foo"}},
		{"unknown node key", "nodes: [{name: a, colour: red}]\n", []string{"colour"}},
		{"unknown end key", `
nodes: [{name: a}, {name: b}]
links: [{ends: [{node: a, ifname: e0, address: 10.0.0.1/24}, {node: b, ifname: e0}]}]
`, []string{"address"}},
		{"duplicate node", "nodes: [{name: a}, {name: a}]\n", []string{`node "a"`, "already used"}},
		{"bridge named like a node", `
nodes: [{name: a}, {name: b}]
bridges: [{name: a, ports: [{node: a, ifname: e0}, {node: b, ifname: e0}]}]
`, []string{`bridge "a"`, "already used"}},
		{"node name too long", "nodes: [{name: abcdefghijklmnopqrstuvwxyz}]\n", []string{"abcdefghijklmnopqrstuvwxyz", "longer than 20"}},
		{"node name bad chars", "nodes: [{name: A_b}]\n", []string{"A_b", "lower-case"}},
		{"node name missing", "nodes: [{sysctls: {a.b: 1}}]\n", []string{"nodes[0]", "name: missing"}},
		{"ifname too long", `
nodes: [{name: a}, {name: b}]
links: [{name: l1, ends: [{node: a, ifname: abcdefghijklmnop}, {node: b, ifname: e0}]}]
`, []string{`link "l1" end 0`, "abcdefghijklmnop", "15"}},
		{"link queues out of range", `
nodes: [{name: a}, {name: b}]
links: [{name: l1, queues: 65, ends: [{node: a, ifname: e0}, {node: b, ifname: e0}]}]
`, []string{`link "l1"`, "queues: 65"}},
		{"link to unknown node", `
nodes: [{name: a}]
links: [{name: l1, ends: [{node: a, ifname: e0}, {node: zz, ifname: e0}]}]
`, []string{`link "l1" end 1`, `unknown node "zz"`}},
		{"link with three ends", `
nodes: [{name: a}, {name: b}, {name: c}]
links: [{name: l1, ends: [{node: a, ifname: e0}, {node: b, ifname: e0}, {node: c, ifname: e0}]}]
`, []string{`link "l1"`, "exactly 2"}},
		{"bridge with one port", `
nodes: [{name: a}]
bridges: [{name: s, ports: [{node: a, ifname: e0}]}]
`, []string{`bridge "s"`, "at least 2"}},
		{"duplicate interface", `
nodes: [{name: a}, {name: b}, {name: c}]
links:
  - {name: l1, ends: [{node: a, ifname: e0}, {node: b, ifname: e0}]}
  - {name: l2, ends: [{node: a, ifname: e0}, {node: c, ifname: e0}]}
`, []string{`link "l2" end 0`, `"e0"`, "already has it"}},
		{"bad address", `
nodes: [{name: a}, {name: b}]
links: [{name: l1, ends: [{node: a, ifname: e0, addrs: [10.0.0.300/24]}, {node: b, ifname: e0}]}]
`, []string{`link "l1" end 0`, "addrs", "10.0.0.300/24"}},
		{"address without length", `
nodes: [{name: a}, {name: b}]
links: [{name: l1, ends: [{node: a, ifname: e0, addrs: [10.0.0.1]}, {node: b, ifname: e0}]}]
`, []string{"addrs", `"10.0.0.1"`}},
		{"bad mac", `
nodes: [{name: a}, {name: b}]
links: [{name: l1, ends: [{node: a, ifname: e0, mac: "zz:00"}, {node: b, ifname: e0}]}]
`, []string{`link "l1" end 0`, "mac"}},
		{"bad route via", `
nodes: [{name: a, routes: [{to: default, via: 10.0.0.x}]}]
`, []string{`node "a" routes[0]`, "via"}},
		{"route family mismatch", `
nodes: [{name: a, routes: [{to: 10.0.0.0/8, via: "2001:db8::1"}]}]
`, []string{`node "a" routes[0]`, "families"}},
		{"route with host bits", `
nodes: [{name: a, routes: [{to: 10.0.0.1/8, via: 10.1.1.1}]}]
`, []string{`node "a" routes[0]`, "host bits"}},
		{"route dev unknown", `
nodes: [{name: a, routes: [{to: default4, dev: eth7}]}]
`, []string{`node "a" routes[0]`, "dev", "eth7"}},
		{"route without via or dev", `
nodes: [{name: a, routes: [{to: 10.0.0.0/8}]}]
`, []string{`node "a" routes[0]`, "via or dev"}},
		{"default without via", `
nodes: [{name: a}, {name: b, routes: [{to: default, dev: e0}]}]
links: [{ends: [{node: a, ifname: e0}, {node: b, ifname: e0}]}]
`, []string{`node "b" routes[0]`, "default4/default6"}},
		{"bad sysctl key", `
nodes: [{name: a, sysctls: {"../../etc/passwd": 1}}]
`, []string{`node "a"`, "sysctls", "passwd"}},
		{"two documents", "nodes: [{name: a}]\n---\nnodes: [{name: b}]\n", []string{"more than one"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc))
			if err == nil {
				t.Fatalf("no error for\n%s", c.doc)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "t.yaml")
	if err := os.WriteFile(p, []byte("nodes: [{name: a, bogus: 1}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("Load error %v: want the file name and the key", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
}

// TestDemoTopology checks that the shipped topology files parse.
func TestShippedTopologies(t *testing.T) {
	files, err := filepath.Glob("../configs/lab/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no topology in configs/lab")
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%v", err)
		}
	}
}

func TestUpRefusesUnvalidated(t *testing.T) {
	var topo Topology
	if _, err := topo.Up(t.Context()); err == nil {
		t.Fatal("Up of a hand-made, unvalidated topology succeeded")
	}
}

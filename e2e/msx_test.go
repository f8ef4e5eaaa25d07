package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/router"
)

// msxMSYAML is the Map-Server/Map-Resolver of one domain, interconnected
// with the other domain's (copy mode, both ways).
func msxMSYAML(name, site, secret, prefix4, prefix6, peer string) string {
	return labMSYAML(name, site, secret, prefix4, prefix6) + fmt.Sprintf(`msx:
  retransmit_interval: 200ms
  agreements:
    - name: peer
      peers: ["%s:4342"]
      key: {id: 1, secret: msx-agreement}
      mode: copy
      lifetime: 10s
`, peer)
}

// labMSYAML is a Map-Server/Map-Resolver of one site with an IPv4 and an
// IPv6 prefix.
func labMSYAML(name, site, secret, prefix4, prefix6 string) string {
	return fmt.Sprintf(`name: %s
roles: [map-server, map-resolver]
sites:
  - name: %s
    keys: [{id: 1, secret: %s}]
    prefixes: [{eid: %s}, {eid: "%s"}]
map_server: {registration_timeout: 30s}
`, name, site, secret, prefix4, prefix6)
}

// TestMSX: two mapping systems in namespaces, each a real rlocd
// Map-Server/Map-Resolver with its own xTR. Domain 2's registration is
// there before domain 1's Map-Server starts: it reaches domain 1's copy by
// bulk; domain 1's registration comes after the subscription: it reaches
// domain 2's copy by notification. Each Map-Resolver then answers its
// ITR's Map-Requests for the other domain's EIDs from its copy (with the
// owner's TTL), and pings across are not lost.
func TestMSX(t *testing.T) {
	n := newLabNetwork(t, "../configs/lab/msx.yaml", "msx")
	n.start("msmr2", msxMSYAML("msmr2", "site2", "key-two", "10.2.0.0/24", "2001:db8:2::/64", "192.0.2.100"))
	x2 := strings.ReplaceAll(xtrYAML("xtr2", "2", "key-two", "0s"), "192.0.2.100", "192.0.2.101")
	n.start("xtr2", x2)
	n.waitFor(10*time.Second, "xtr2 registered", func() bool { return len(n.registrationsOf("msmr2")) == 2 })

	n.start("msmr1", msxMSYAML("msmr1", "site1", "key-one", "10.1.0.0/24", "2001:db8:1::/64", "192.0.2.101"))
	n.waitFor(10*time.Second, "domain 2's table copied by bulk", func() bool {
		a := n.msxAgreement("msmr1")
		return a.Complete && a.Copy == 2 && a.Counters["pulls_done"] >= 1
	})
	n.waitFor(10*time.Second, "domain 2's copy of the (empty) domain 1", func() bool {
		return n.msxAgreement("msmr2").Complete
	})
	n.start("xtr1", xtrYAML("xtr1", "1", "key-one", "0s"))
	n.waitFor(10*time.Second, "domain 1's registration notified to domain 2", func() bool {
		a := n.msxAgreement("msmr2")
		return a.Copy == 2 && a.Counters["notifies_in"] >= 1 && a.Counters["pulls_done"] == 1
	})

	for _, p := range []struct{ from, to string }{{"h1", "10.2.0.10"}, {"h2", "10.1.0.10"}, {"h1", "2001:db8:2::10"}} {
		if got, err := n.lab.Ping(p.from, mustAddr(p.to), 5, 3*time.Second); err != nil || got != 5 {
			t.Fatalf("%s -> %s: %d/5, %v", p.from, p.to, got, err)
		}
	}
	if a := n.msxAgreement("msmr1"); a.Counters["answered"] < 1 {
		t.Fatalf("msmr1 answered nothing from its copy: %v", a.Counters)
	}
	// The picture of msmr1's interconnect (rlocctl msx agreements -o
	// svg, the status page): its agreement and the peer, heard from.
	var l []router.MSXAgreementInfo
	if err := n.get("msmr1", "/v1/msx/agreements", &l); err != nil {
		t.Fatal(err)
	}
	if g := router.MSXPicture(l); len(g.Edges) != 2 || len(g.Nodes) != 3 || g.Nodes[2].Class != "leaf" ||
		!strings.Contains(g.Nodes[1].Label, "copy: 2 mappings (complete)") {
		t.Errorf("msmr1's interconnect picture: %+v", g)
	}
	if a := n.msxAgreement("msmr2"); a.Counters["answered"] < 1 {
		t.Fatalf("msmr2 answered nothing from its copy: %v", a.Counters)
	}
	// The ITR holds domain 2's mapping with the TTL xtr2 registered (a
	// day by default), not a Map-Resolver's own.
	for _, e := range n.mapCache("xtr1") {
		if e.EID == "10.2.0.0/24" && !e.Negative {
			if e.TTL != 1440 {
				t.Fatalf("xtr1's mapping of 10.2.0.0/24 has TTL %d minutes, want xtr2's 1440", e.TTL)
			}
			return
		}
	}
	t.Fatalf("xtr1's map-cache lacks 10.2.0.0/24: %+v", n.mapCache("xtr1"))
}

// msxAgreement returns node's one interconnect agreement.
func (n *network) msxAgreement(node string) router.MSXAgreementInfo {
	n.t.Helper()
	var l []router.MSXAgreementInfo
	if err := n.get(node, "/v1/msx/agreements", &l); err != nil || len(l) != 1 {
		n.t.Fatalf("%s agreements: %v %+v", node, err, l)
	}
	return l[0]
}

// registrationsOf lists node's registrations.
func (n *network) registrationsOf(node string) []router.RegistrationInfo {
	n.t.Helper()
	var out []router.RegistrationInfo
	if err := n.get(node, "/v1/registrations", &out); err != nil {
		n.t.Fatalf("%s registrations: %v", node, err)
	}
	return out
}

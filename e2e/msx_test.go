package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/router"
)

// msxMSYAML is the Map-Server/Map-Resolver of one domain, interconnected
// with the other domain's (copy mode, both ways).
func msxMSYAML(name, site, secret, prefix4, prefix6, peer string) string {
	return labMSYAML(name, site, secret, prefix4, prefix6) + msxCopyYAML(peer, "10s")
}

// msxCopyYAML is the msx section of an agreement in copy mode with the
// Map-Server at peer, subscribing for lifetime.
func msxCopyYAML(peer, lifetime string) string {
	return fmt.Sprintf(`msx:
  retransmit_interval: 200ms
  agreements:
    - name: peer
      peers: ["%s:4342"]
      key: {id: 1, secret: msx-agreement}
      mode: copy
      lifetime: %s
`, peer, lifetime)
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
// owner's TTL), and pings across are not lost. xtr1 subscribes (RFC 9437)
// to what it resolves: an RLOC change and a withdrawal in domain 2 reach
// msmr1's copy by the interconnect's notification, then xtr1's map-cache
// by msmr1's Map-Notify, without a Map-Request from xtr1.
func TestMSX(t *testing.T) {
	n := newLabNetwork(t, "../configs/lab/msx.yaml", "msx")
	n.start("msmr2", msxMSYAML("msmr2", "site2", "key-two", "10.2.0.0/24", "2001:db8:2::/64", "192.0.2.100"))
	x2 := strings.ReplaceAll(xtrYAML("xtr2", "2", "key-two", "0s"), "192.0.2.100", "192.0.2.101")
	x2 = strings.Replace(x2, "etr: {register_interval: 1s}", "etr: {register_interval: 1s, deregister_on_stop: true}", 1)
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
	n.start("xtr1", strings.Replace(xtrYAML("xtr1", "1", "key-one", "0s"), "retransmit_interval: 200ms}",
		"retransmit_interval: 200ms, subscribe: {enabled: true}}", 1))
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
	cached := func() (router.MapCacheEntry, bool) {
		for _, e := range n.mapCache("xtr1") {
			if e.EID == "10.2.0.0/24" {
				return e, true
			}
		}
		return router.MapCacheEntry{}, false
	}
	if e, ok := cached(); !ok || e.Negative || e.TTL != 1440 {
		t.Fatalf("xtr1's mapping of 10.2.0.0/24: %+v (want xtr2's, TTL 1440 minutes)", e)
	}

	// xtr1 is subscribed at msmr1 to the copied 10.2.0.0/24.
	x1id := xtrIDOf("xtr1")
	n.waitFor(5*time.Second, "xtr1 subscribed at msmr1 to 10.2.0.0/24", func() bool {
		var s router.SubscriptionsInfo
		if err := n.get("msmr1", "/v1/subscriptions", &s); err != nil {
			t.Fatalf("msmr1 subscriptions: %v", err)
		}
		return slices.ContainsFunc(s.Subscriptions, func(e router.SubscriptionInfo) bool { return e.XTRID == x1id && e.EID == "10.2.0.0/24" })
	})
	before := n.stats("xtr1")
	notifiesIn := n.msxAgreement("msmr1").Counters["notifies_in"]
	// An RLOC change in domain 2 (xtr2 registers it at once).
	start := time.Now()
	d := router.DatabaseMapping{EID: "10.2.0.0/24", RLOCs: []router.RLOCInfo{{Addr: "192.0.2.2", Priority: 1, Weight: 100}}}
	if err := n.do("xtr2", "POST", "/v1/database", d, nil); err != nil {
		t.Fatal(err)
	}
	n.waitFor(3*time.Second, "xtr1's map-cache to follow the RLOC change", func() bool {
		e, ok := cached()
		return ok && !e.Negative && len(e.RLOCs) == 1 && e.RLOCs[0].Addr == "192.0.2.2"
	})
	t.Logf("xtr1's map-cache followed domain 2's RLOC change %v after it (polled every 50 ms)", time.Since(start).Round(time.Millisecond))
	// A withdrawal in domain 2 (xtr2 deregisters on stop).
	start = time.Now()
	n.stop("xtr2", true)
	n.waitFor(3*time.Second, "xtr1's map-cache to follow the withdrawal", func() bool {
		e, ok := cached()
		return ok && e.Negative && e.Action == "send-map-request"
	})
	t.Logf("xtr1's map-cache followed domain 2's withdrawal %v after the stop", time.Since(start).Round(time.Millisecond))
	after := n.stats("xtr1")
	if a, b := after.Control["resolutions"], before.Control["resolutions"]; a != b {
		t.Errorf("xtr1 resolved %d times during the changes, want none", a-b)
	}
	if a, b := msgCount(after, "ecm").Sent, msgCount(before, "ecm").Sent; a != b || after.Control["smr_invoked"] != 0 {
		t.Errorf("xtr1 sent %d Map-Requests during the changes (%d SMR-invoked), want none", a-b, after.Control["smr_invoked"])
	}
	var s router.SubscriptionsInfo
	if err := n.get("xtr1", "/v1/subscriptions", &s); err != nil {
		t.Fatal(err)
	}
	if s.ITR["withdrawals"] < 1 || s.ITR["bad_auth"] != 0 {
		t.Errorf("xtr1's subscribe counters %v", s.ITR)
	}
	if got := n.msxAgreement("msmr1").Counters["notifies_in"] - notifiesIn; got < 2 {
		t.Errorf("msmr1's copy took %d notifications for the two changes", got)
	}
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

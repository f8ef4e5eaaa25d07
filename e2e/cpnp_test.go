package e2e

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/router"
)

// cpnpIdentity returns the example identity key of mapping system name
// (seed, public key; tests only).
func cpnpIdentity(name string) (string, string) {
	s := sha256.Sum256([]byte("rloc e2e " + name))
	k := ed25519.NewKeyFromSeed(s[:])
	return base64.StdEncoding.EncodeToString(s[:]), base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey))
}

// cpnpSection is the cpnp section of mapping system name, trusting peer
// (whose contact is given when not empty) and sharing its own prefixes.
func cpnpSection(name, peer, contact, peerPrefixes, own string) string {
	seed, _ := cpnpIdentity(name)
	_, ppub := cpnpIdentity(peer)
	c := ""
	if contact != "" {
		c = fmt.Sprintf("\n      contact: \"%s:4342\"\n      prefixes: %s", contact, peerPrefixes)
	}
	return fmt.Sprintf(`cpnp:
  identity: %s
  private_key: "%s"
  retransmit_interval: 200ms
  retry_interval: 2s
  peers:
    - name: %s
      public_key: "%s"%s
  offer:
    prefixes: %s
  order:
    mode: copy
`, name, seed, peer, ppub, c, own)
}

// cpnpMSYAML is one domain's Map-Server/Map-Resolver with no interconnect
// configured: only a cpnp section naming the other domain's key and
// contact.
func cpnpMSYAML(name, site, secret, prefix4, prefix6, peerName, peer, peerPrefixes string) string {
	return labMSYAML(name, site, secret, prefix4, prefix6) +
		cpnpSection(name, peerName, peer, peerPrefixes, fmt.Sprintf(`[{eid: %s}, {eid: "%s"}]`, prefix4, prefix6))
}

// TestCPNP: two real rlocd mapping systems in namespaces, with no msx
// section: each orders the other's prefixes with CPNP over UDP, each
// offers its own, both accept; the agreements provision the interconnect
// (key derived on both sides, never sent), the copies fill, and pings
// between the domains' sites are not lost. A withdrawal de-provisions
// both sides.
func TestCPNP(t *testing.T) {
	n := newLabNetwork(t, "../configs/lab/msx.yaml", "msx")
	n.start("msmr2", cpnpMSYAML("msmr2", "site2", "key-two", "10.2.0.0/24", "2001:db8:2::/64",
		"msmr1", "192.0.2.100", `[{eid: 10.1.0.0/24}, {eid: "2001:db8:1::/64"}]`))
	x2 := strings.ReplaceAll(xtrYAML("xtr2", "2", "key-two", "0s"), "192.0.2.100", "192.0.2.101")
	n.start("xtr2", x2)
	n.waitFor(10*time.Second, "xtr2 registered", func() bool { return len(n.registrationsOf("msmr2")) == 2 })
	n.start("msmr1", cpnpMSYAML("msmr1", "site1", "key-one", "10.1.0.0/24", "2001:db8:1::/64",
		"msmr2", "192.0.2.101", `[{eid: 10.2.0.0/24}, {eid: "2001:db8:2::/64"}]`))
	n.start("xtr1", xtrYAML("xtr1", "1", "key-one", "0s"))

	for _, ms := range []string{"msmr1", "msmr2"} {
		n.waitFor(20*time.Second, ms+" agreed both ways", func() bool {
			l := n.cpnp(ms)
			agreed := 0
			for _, a := range l.Agreements {
				if a.State == "agreed" && a.Interconnect != "" {
					agreed++
				}
			}
			return agreed == 2
		})
	}
	n.waitFor(20*time.Second, "copies complete", func() bool {
		a1, a2 := n.msxAgreement("msmr1"), n.msxAgreement("msmr2")
		return a1.Complete && a2.Complete && a1.Copy == 2 && a2.Copy == 2
	})
	for _, p := range []struct{ from, to string }{{"h1", "10.2.0.10"}, {"h2", "10.1.0.10"}, {"h1", "2001:db8:2::10"}} {
		if got, err := n.lab.Ping(p.from, mustAddr(p.to), 5, 3*time.Second); err != nil || got != 5 {
			t.Fatalf("%s -> %s: %d/5, %v", p.from, p.to, got, err)
		}
	}
	a := n.msxAgreement("msmr1")
	if a.Name != "cpnp-msmr2" || a.Mode != "copy" || a.Counters["answered"] < 1 || a.Counters["reply_bad_auth"] != 0 {
		t.Fatalf("msmr1's interconnect %+v", a)
	}

	// msmr1 withdraws its order: msmr2 stops sharing with it, msmr1's copy
	// is gone; msmr2's order still stands (its agreement stays).
	var cust router.CPNPInfo
	for _, ag := range n.cpnp("msmr1").Agreements {
		if ag.Role == "customer" {
			if err := n.do("msmr1", "POST", "/v1/cpnp/withdraw", router.CPNPWithdrawal{Peer: ag.Peer, CustomerID: ag.CustomerID}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	n.waitFor(10*time.Second, "msmr1's order withdrawn on both sides", func() bool {
		cust = n.cpnp("msmr2")
		for _, ag := range cust.Agreements {
			if ag.Role == "provider" && ag.State != "withdrawn" {
				return false
			}
		}
		a := n.msxAgreement("msmr1")
		return a.Mode == "none" && a.Copy == 0
	})
}

// cpnp returns node's negotiation state.
func (n *network) cpnp(node string) router.CPNPInfo {
	n.t.Helper()
	var l router.CPNPInfo
	if err := n.get(node, "/v1/cpnp", &l); err != nil {
		n.t.Fatalf("%s cpnp: %v", node, err)
	}
	return l
}

// TestCPNPPartialAndDecline: the two answers a provider's policy gives
// besides a full offer, between real rlocd mapping systems in namespaces.
// msmr2 offers only its IPv4 prefix; msmr1 orders both of domain 2's
// prefixes (and msmr2 orders msmr1's IPv4 prefix, for the way back). By
// default msmr1 takes the part: both sides agree on 10.2.0.0/24 alone,
// msmr1's copy holds that one mapping and h1 reaches h2 through it. Restarted with order.decline_partial, msmr1 declines the
// same offer: its order ends declined, counted, and nothing is provisioned
// on its side; msmr2 lists the declined order. Then msmr2, restarted to
// share nothing msmr1 asks for, declines msmr1's next order itself.
func TestCPNPPartialAndDecline(t *testing.T) {
	n := newLabNetwork(t, "../configs/lab/msx.yaml", "msx")
	n.start("msmr2", labMSYAML("msmr2", "site2", "key-two", "10.2.0.0/24", "2001:db8:2::/64")+
		cpnpSection("msmr2", "msmr1", "192.0.2.100", `[{eid: 10.1.0.0/24}]`, `[{eid: 10.2.0.0/24}]`))
	x2 := strings.ReplaceAll(xtrYAML("xtr2", "2", "key-two", "0s"), "192.0.2.100", "192.0.2.101")
	n.start("xtr2", x2)
	n.waitFor(10*time.Second, "xtr2 registered", func() bool { return len(n.registrationsOf("msmr2")) == 2 })
	msmr1 := labMSYAML("msmr1", "site1", "key-one", "10.1.0.0/24", "2001:db8:1::/64") +
		cpnpSection("msmr1", "msmr2", "192.0.2.101", `[{eid: 10.2.0.0/24}, {eid: "2001:db8:2::/64"}]`, `[{eid: 10.1.0.0/24}]`)
	n.start("msmr1", msmr1)
	n.start("xtr1", xtrYAML("xtr1", "1", "key-one", "0s"))

	// customer is msmr1's order: its state and the prefixes agreed.
	customer := func() (state string, prefixes []string) {
		for _, a := range n.cpnp("msmr1").Agreements {
			if a.Role == "customer" {
				return a.State, a.Prefixes
			}
		}
		return "", nil
	}
	n.waitFor(20*time.Second, "msmr1's order agreed", func() bool { st, _ := customer(); return st == "agreed" })
	if _, p := customer(); !slices.Equal(p, []string{"[0]10.2.0.0/24"}) {
		t.Fatalf("msmr1 agreed on %q, want the offered part [0]10.2.0.0/24 only", p)
	}
	n.waitFor(20*time.Second, "both copies", func() bool {
		a1, a2 := n.msxAgreement("msmr1"), n.msxAgreement("msmr2")
		return a1.Complete && a1.Copy == 1 && a2.Complete && a2.Copy == 1
	})
	if got, err := n.lab.Ping("h1", mustAddr("10.2.0.10"), 5, 3*time.Second); err != nil || got != 5 {
		t.Fatalf("h1 -> h2 through the partial agreement: %d/5, %v", got, err)
	}

	n.stop("msmr1", true)
	n.start("msmr1", strings.Replace(msmr1, "    mode: copy\n", "    mode: copy\n    decline_partial: true\n", 1))
	n.waitFor(20*time.Second, "msmr1 declines the partial offer", func() bool {
		st, _ := customer()
		return st == "declined" && n.cpnp("msmr1").Stats.DeclinedOffers >= 1
	})
	// msmr2's own order may still give msmr1 a provider side; nothing of
	// domain 2 is copied or asked for.
	var ags []router.MSXAgreementInfo
	if err := n.get("msmr1", "/v1/msx/agreements", &ags); err != nil {
		t.Fatal(err)
	}
	for _, a := range ags {
		if a.Mode != "none" || a.Copy != 0 {
			t.Fatalf("msmr1 provisioned an interconnect after declining: %+v", a)
		}
	}
	providerDeclined := func() bool {
		for _, a := range n.cpnp("msmr2").Agreements {
			if a.Role == "provider" && a.State == "declined" {
				return true
			}
		}
		return false
	}
	n.waitFor(10*time.Second, "msmr2 lists the declined order", providerDeclined)

	// The provider declines: msmr2 restarted to share only space msmr1
	// does not ask for. msmr1 orders again (retry_interval) and is
	// declined by msmr2, not by itself.
	declined := n.cpnp("msmr1").Stats.DeclinedOffers
	orders := n.cpnp("msmr1").Stats.Orders
	n.stop("msmr2", true)
	n.start("msmr2", labMSYAML("msmr2", "site2", "key-two", "10.2.0.0/24", "2001:db8:2::/64")+
		cpnpSection("msmr2", "msmr1", "192.0.2.100", `[{eid: 10.1.0.0/24}]`, `[{eid: 10.99.0.0/24}]`))
	n.waitFor(20*time.Second, "the restarted msmr2 declines msmr1's next order", func() bool {
		st, _ := customer()
		return providerDeclined() && st == "declined" && n.cpnp("msmr1").Stats.Orders > orders
	})
	if d := n.cpnp("msmr1").Stats.DeclinedOffers; d != declined {
		t.Fatalf("msmr1 declined %d offers since, want none: the provider declined", d-declined)
	}
	for _, a := range n.cpnp("msmr2").Agreements {
		if a.Role == "provider" && a.State == "agreed" {
			t.Fatalf("the restarted msmr2 agreed to %+v", a)
		}
	}
}

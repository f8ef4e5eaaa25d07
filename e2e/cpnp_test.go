package e2e

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
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

package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/bench/resolve"
)

// The LISP-MSX experiment (configs/lab/msx-exp.yaml, issue 15, the article's
// Fig. 6): one ITR (xtr1) in domain 1 resolves domain 2's EIDs through four
// Map-Resolvers of domain 1; the DDT ones through two trees under the same
// roots, flat (10.2.0.0/16, the root refers to the Map-Server) and deep
// (10.3.0.0/16, root -> regional node -> domain 2's node -> Map-Server).
var (
	msxExpH2   = netip.MustParseAddr("10.2.0.10")    // h2, domain 2's host
	msxExpETR  = netip.MustParseAddr("198.51.100.6") // xtr2, domain 2's ETR
	msxExpCopy = netip.MustParseAddrPort("192.0.2.18:4342")
	msxExpSite = netip.MustParsePrefix("10.2.0.0/24") // xtr2's site, h2's
	msxExpDeep = netip.MustParsePrefix("10.3.0.0/24") // xtr2's prefix under the deep tree
)

// msxExpPath is one way of resolving domain 2's EIDs: a Map-Resolver, the
// site prefix asked for and, for DDT, the referrals a cold resolution
// leaves in the resolver's cache. The measuring client asks from xtr1's
// address and an ephemeral port, as lig does.
type msxExpPath struct {
	name string // scenario name, as in the metrics and the samples file
	mr   string // node
	addr netip.AddrPort
	site netip.Prefix   // the EIDs asked for, and the record wanted
	from netip.AddrPort // who answers; zero: the ETR (any port)
	// referrals are those a cold resolution caches (DDT only; the cache
	// is flushed before each of its resolutions); none: not DDT.
	referrals []string
}

func (p msxExpPath) ddt() bool { return len(p.referrals) > 0 }

// The referrals of the two DDT trees, as the resolver caches them.
var (
	msxExpFlat = []string{"[0]10.2.0.0/16 MS-REFERRAL [198.51.100.2:4342]"}
	msxExpTree = []string{
		"[0]10.3.0.0/16 NODE-REFERRAL [203.0.113.10:4342]",  // root -> ddt-region
		"[0]10.3.0.0/20 NODE-REFERRAL [198.51.100.10:4342]", // ddt-region -> ddt-d2
		"[0]10.3.0.0/22 MS-REFERRAL [198.51.100.2:4342]",    // ddt-d2 -> ms2
	}
)

// msxExpPaths are the scenarios of the experiment, numbered as in the
// issue: (1) interconnect, invoke mode; (2) DDT, nearby root, and (3)
// distant root, each through the deep tree and the flat one; (4)
// interconnect, local copy.
var msxExpPaths = []msxExpPath{
	{"invoke", "mr-invoke", netip.MustParseAddrPort("192.0.2.6:4342"), msxExpSite, netip.AddrPort{}, nil},
	{"ddt-near-deep", "mr-ddt-near", netip.MustParseAddrPort("192.0.2.10:4342"), msxExpDeep, netip.AddrPort{}, msxExpTree},
	{"ddt-far-deep", "mr-ddt-far", netip.MustParseAddrPort("192.0.2.14:4342"), msxExpDeep, netip.AddrPort{}, msxExpTree},
	{"copy", "mr-copy", msxExpCopy, msxExpSite, msxExpCopy, nil},
	{"ddt-near", "mr-ddt-near", netip.MustParseAddrPort("192.0.2.10:4342"), msxExpSite, netip.AddrPort{}, msxExpFlat},
	{"ddt-far", "mr-ddt-far", netip.MustParseAddrPort("192.0.2.14:4342"), msxExpSite, netip.AddrPort{}, msxExpFlat},
}

// msxExpPathNamed returns the index of the scenario named name.
func msxExpPathNamed(name string) int {
	for i, p := range msxExpPaths {
		if p.name == name {
			return i
		}
	}
	panic("no scenario " + name)
}

// newMSXExpLab brings up the experiment's lab with the delays of the file,
// starts rlocd in every node whose role names a configuration
// (configs/msx-exp/, as they are) and waits until both sites are
// registered and mr-copy holds domain 2's table.
func newMSXExpLab(t testing.TB) *network {
	t.Helper()
	n := newLabNetwork(t, "../configs/lab/msx-exp.yaml", "msxexp")
	n.startRoles()
	// ms2: xtr2's 10.2.0.0/24 and 10.3.0.0/24; mr-copy: xtr1's.
	for ms, want := range map[string]int{"ms2": 2, "mr-copy": 1} {
		n.waitFor(15*time.Second, ms+"'s registrations", func() bool { return len(n.registrationsOf(ms)) == want })
	}
	n.waitFor(15*time.Second, "mr-copy's copy of domain 2", func() bool {
		a := n.msxAgreement("mr-copy")
		return a.Complete && a.Copy == 1
	})
	return n
}

// startRoles starts rlocd in every node of the lab whose role names a
// configuration file (`role: {kind: rlocd, rlocd: FILE}`, relative to the
// repository), used as it is.
func (n *network) startRoles() {
	n.t.Helper()
	for _, node := range n.lab.Topology().Nodes {
		cf, _ := node.Role["rlocd"].(string)
		if node.Role["kind"] != "rlocd" || cf == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join("..", cf))
		if err != nil {
			n.t.Fatal(err)
		}
		n.start(node.Name, string(b))
	}
}

// msxExpClient opens a resolve.Client for p in xtr1's namespace, closed at
// the end of the test.
func (n *network) msxExpClient(p msxExpPath) *resolve.Client {
	n.t.Helper()
	var c *resolve.Client
	err := n.lab.Node("xtr1").Do(func() (err error) {
		c, err = resolve.Dial(p.addr, netip.AddrPort{}) // xtr1's address, an ephemeral port
		return err
	})
	if err != nil {
		n.t.Fatalf("client for %s in xtr1: %v", p.name, err)
	}
	n.t.Cleanup(func() { c.Close() })
	return c
}

// check judges a reply of path p: positive, from the ETR (or, for the copy,
// from the Map-Resolver), for the path's site prefix.
func (p msxExpPath) check(r *resolve.Reply) error {
	switch {
	case r.Negative():
		return fmt.Errorf("%s: negative reply from %v", p.name, r.From)
	case p.from.IsValid() && r.From != p.from, !p.from.IsValid() && r.From.Addr() != msxExpETR:
		return fmt.Errorf("%s: reply from %v", p.name, r.From)
	}
	if _, pfx, ok := r.Record.EID.Prefix(r.Record.MaskLen); !ok || pfx != p.site {
		return fmt.Errorf("%s: reply for %v/%d, want %v", p.name, r.Record.EID, r.Record.MaskLen, p.site)
	}
	return nil
}

// TestMSXExperimentPaths: on the experiment's lab (delayed links, real
// daemons, the configurations of configs/msx-exp/), the ITR's namespace
// (xtr1's address, an ephemeral port) resolves a domain-2 EID once through
// each scenario: invoke mode (answered by the ETR, counted as invoked), DDT
// through the nearby root and through the distant one, each down the deep
// tree (the root's and the regional node's NODE-REFERRALs and domain 2's
// node's MS-REFERRAL cached afterwards) and the flat one (the root's
// MS-REFERRAL), the referral cache flushed first; and the local copy (a
// proxy reply from mr-copy); then h1 and h2 ping each other without loss
// (xtr1 resolves through mr-invoke, xtr2 through ms2 invoking mr-copy).
func TestMSXExperimentPaths(t *testing.T) {
	n := newMSXExpLab(t)
	for _, p := range msxExpPaths {
		c := n.msxExpClient(p)
		if p.ddt() {
			if err := n.flushReferrals(p.mr); err != nil {
				t.Fatal(err)
			}
		}
		eid := p.site.Addr().Next().Next() // .2 of the prefix
		r, err := c.Resolve(0, eid, 3*time.Second)
		if err == nil {
			err = p.check(&r)
		}
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		t.Logf("%s: %v answered in %v", p.name, r.From, r.RTT)
		if p.ddt() {
			var got []string
			for _, ref := range n.ddtReferrals(p.mr).Referrals {
				got = append(got, referralString(ref))
			}
			if strings.Join(got, " | ") != strings.Join(p.referrals, " | ") {
				t.Errorf("%s: %s's referral cache %q, want %q", p.name, p.mr, got, p.referrals)
			}
		}
	}
	if c := n.msxAgreement("mr-invoke").Counters; c["invoked"] != 1 {
		t.Errorf("mr-invoke counters %v, want one invocation", c)
	}
	if c := n.msxAgreement("mr-copy").Counters; c["answered"] != 1 {
		t.Errorf("mr-copy counters %v, want one answer from the copy", c)
	}
	for _, p := range []struct {
		from string
		to   netip.Addr
	}{{"h1", msxExpH2}, {"h2", netip.MustParseAddr("10.1.0.10")}} {
		if got, err := n.lab.Ping(p.from, p.to, 5, 3*time.Second); err != nil || got != 5 {
			t.Fatalf("%s -> %v: %d/5 replies, %v", p.from, p.to, got, err)
		}
	}
}

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
// Map-Resolvers of domain 1, one per path.
var (
	msxExpH2   = netip.MustParseAddr("10.2.0.10")    // h2, domain 2's host
	msxExpETR  = netip.MustParseAddr("198.51.100.6") // xtr2, domain 2's ETR
	msxExpCopy = netip.MustParseAddrPort("192.0.2.18:4342")
)

// msxExpPath is one way of resolving domain 2's EIDs: a Map-Resolver and
// the client address in xtr1 that measures it (port 4342, the DDT lab's
// former reply-port workaround, kept: configs/lab/msx-exp.yaml).
type msxExpPath struct {
	name  string // scenario name, as in the metrics and the samples file
	mr    string // node
	addr  netip.AddrPort
	probe netip.AddrPort
	ddt   bool           // a DDT resolver: its referral cache is flushed before each cold resolution
	from  netip.AddrPort // who answers; zero: the ETR (any port)
}

// msxExpPaths are the four scenarios of the experiment, numbered as in the
// issue: (1) interconnect, invoke mode; (2) DDT, nearby root; (3) DDT,
// distant root; (4) interconnect, local copy.
var msxExpPaths = []msxExpPath{
	{"invoke", "mr-invoke", netip.MustParseAddrPort("192.0.2.6:4342"), netip.MustParseAddrPort("192.0.2.130:4342"), false, netip.AddrPort{}},
	{"ddt-near", "mr-ddt-near", netip.MustParseAddrPort("192.0.2.10:4342"), netip.MustParseAddrPort("192.0.2.131:4342"), true, netip.AddrPort{}},
	{"ddt-far", "mr-ddt-far", netip.MustParseAddrPort("192.0.2.14:4342"), netip.MustParseAddrPort("192.0.2.132:4342"), true, netip.AddrPort{}},
	{"copy", "mr-copy", msxExpCopy, netip.MustParseAddrPort("192.0.2.133:4342"), false, msxExpCopy},
}

// newMSXExpLab brings up the experiment's lab with the delays of the file,
// starts rlocd in every node whose role names a configuration
// (configs/msx-exp/, as they are) and waits until both sites are
// registered and mr-copy holds domain 2's table.
func newMSXExpLab(t testing.TB) *network {
	t.Helper()
	n := newLabNetwork(t, "../configs/lab/msx-exp.yaml", "msxexp")
	n.startRoles()
	for _, ms := range []string{"ms2", "mr-copy"} {
		n.waitFor(15*time.Second, ms+"'s registration", func() bool { return len(n.registrationsOf(ms)) == 1 })
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
		c, err = resolve.Dial(p.addr, p.probe)
		return err
	})
	if err != nil {
		n.t.Fatalf("client for %s in xtr1: %v", p.name, err)
	}
	n.t.Cleanup(func() { c.Close() })
	return c
}

// check judges a reply of path p: positive, from the ETR (or, for the copy,
// from the Map-Resolver), for domain 2's site prefix.
func (p msxExpPath) check(r *resolve.Reply) error {
	switch {
	case r.Negative():
		return fmt.Errorf("%s: negative reply from %v", p.name, r.From)
	case p.from.IsValid() && r.From != p.from, !p.from.IsValid() && r.From.Addr() != msxExpETR:
		return fmt.Errorf("%s: reply from %v", p.name, r.From)
	}
	if _, pfx, ok := r.Record.EID.Prefix(r.Record.MaskLen); !ok || pfx != netip.MustParsePrefix("10.2.0.0/24") {
		return fmt.Errorf("%s: reply for %v/%d, want 10.2.0.0/24", p.name, r.Record.EID, r.Record.MaskLen)
	}
	return nil
}

// TestMSXExperimentPaths: on the experiment's lab (delayed links, real
// daemons, the configurations of configs/msx-exp/), the ITR's namespace
// resolves a domain-2 EID once through each of the four Map-Resolvers:
// invoke mode (answered by the ETR, counted as invoked), DDT through the
// nearby root and through the distant one (referral cache flushed first;
// the MS-REFERRAL cached afterwards), and the local copy (a proxy reply
// from mr-copy); then h1 and h2 ping each other without loss (xtr1 resolves
// through mr-invoke, xtr2 through ms2 invoking mr-copy).
func TestMSXExperimentPaths(t *testing.T) {
	n := newMSXExpLab(t)
	for _, p := range msxExpPaths {
		c := n.msxExpClient(p)
		if p.ddt {
			if err := n.flushReferrals(p.mr); err != nil {
				t.Fatal(err)
			}
		}
		r, err := c.Resolve(0, msxExpH2, 3*time.Second)
		if err == nil {
			err = p.check(&r)
		}
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		t.Logf("%s: %v answered in %v", p.name, r.From, r.RTT)
		if p.ddt {
			var got []string
			for _, ref := range n.ddtReferrals(p.mr).Referrals {
				got = append(got, referralString(ref))
			}
			if want := "[0]10.2.0.0/16 MS-REFERRAL [198.51.100.2:4342]"; strings.Join(got, " ") != want {
				t.Errorf("%s's referral cache %q, want %q", p.mr, got, want)
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

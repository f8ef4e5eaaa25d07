package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rloc-router/rloc/bench/resolve"
	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/router"
)

// The DDT lab (configs/lab/ddt.yaml, docs/ddt.md "The DDT lab"): a DDT
// root, the sibling child nodes ddt-a1 and ddt-a2 (iid 0) and ddt-b (iid
// 7), Map-Servers ms1, ms2 (iid 0) and ms3 (iid 7), DDT Map-Resolvers mr1
// (domain A) and mr2 (domain B), and four sites behind xtr1..xtr4.
var (
	ddtH2 = netip.MustParseAddr("10.1.17.10") // h2: site 2, iid 0, at ms2 (h1 is 10.1.1.10 at ms1)
	ddtH4 = netip.MustParseAddr("10.7.2.10")  // h4: site 4, iid 7, at ms3 (h3 is 10.7.1.10)
	ddtMR = map[string]netip.AddrPort{
		"mr1": netip.MustParseAddrPort("192.0.2.2:4342"),
		"mr2": netip.MustParseAddrPort("198.51.100.2:4342"),
	}
)

// newDDTLab brings up the DDT lab with the delays of the file, starts rlocd
// in every node whose role names a configuration (configs/ddt/, used as they
// are, plus a management socket and debug logs) and waits until the four
// sites are registered.
func newDDTLab(t testing.TB) *network {
	t.Helper()
	n := newLabNetwork(t, "../configs/lab/ddt.yaml", "ddt")
	for _, node := range n.lab.Topology().Nodes {
		cf, _ := node.Role["rlocd"].(string)
		if node.Role["kind"] != "rlocd" || cf == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join("..", cf))
		if err != nil {
			t.Fatal(err)
		}
		n.start(node.Name, string(b))
	}
	for ms, want := range map[string]int{"ms1": 1, "ms2": 1, "ms3": 2} {
		n.waitFor(15*time.Second, ms+"'s registrations", func() bool {
			var r []router.RegistrationInfo
			return n.get(ms, "/v1/registrations", &r) == nil && len(r) == want
		})
	}
	return n
}

// ddtReferrals is a DDT Map-Resolver's referral cache and counters.
func (n *network) ddtReferrals(mr string) router.DDTResolverInfo {
	n.t.Helper()
	var l router.DDTResolverInfo
	if err := n.get(mr, "/v1/ddt/referrals", &l); err != nil {
		n.t.Fatalf("%s referrals: %v", mr, err)
	}
	return l
}

// ddtNodeStats is a DDT node's counters of referrals sent.
func (n *network) ddtNodeStats(node string) router.DDTInfo {
	n.t.Helper()
	var l router.DDTInfo
	if err := n.get(node, "/v1/ddt/delegations", &l); err != nil {
		n.t.Fatalf("%s delegations: %v", node, err)
	}
	return l
}

// flushReferrals empties mr's referral cache.
func (n *network) flushReferrals(mr string) error {
	var out map[string]int
	return n.do(mr, "DELETE", "/v1/ddt/referrals", nil, &out)
}

// ddtProbe is the measuring client's address in xtr1 and xtr3 (their
// rlocd listens on the first address): the ETR answers a DDT-resolved
// request at port 4342 (bench/resolve.Dial).
var ddtProbe = map[string]netip.AddrPort{
	"xtr1": netip.MustParseAddrPort("192.0.2.130:4342"),
	"xtr3": netip.MustParseAddrPort("198.51.100.130:4342"),
}

// resolver opens a resolve.Client in node's namespace (on its probe
// address) towards the Map-Resolver mr, closed at the end of the test.
func (n *network) resolver(node, mr string) *resolve.Client {
	n.t.Helper()
	var c *resolve.Client
	err := n.lab.Node(node).Do(func() (err error) {
		c, err = resolve.Dial(ddtMR[mr], ddtProbe[node])
		return err
	})
	if err != nil {
		n.t.Fatalf("resolver in %s: %v", node, err)
	}
	n.t.Cleanup(func() { c.Close() })
	return c
}

// negativeAtITR pings eid once from host (its packet is held, then
// dropped or sent natively) and checks that the ITR itr installs the
// negative map-cache entry prefix with action for it (iid 0).
func (n *network) negativeAtITR(t *testing.T, host, itr string, eid netip.Addr, prefix, action string) {
	t.Helper()
	_, _ = n.lab.Ping(host, eid, 1, 300*time.Millisecond)
	var e router.MapCacheEntry
	testkit.WaitFor(t, itr+"'s negative entry for "+eid.String(), func() error {
		for _, e = range n.mapCache(itr) {
			if p, err := netip.ParsePrefix(e.EID); err == nil && e.IID == 0 && e.Negative && p.Contains(eid) {
				return nil
			}
		}
		return fmt.Errorf("no negative entry covers %v", eid)
	})
	if e.EID != prefix || e.Action != action {
		t.Errorf("%s's entry for %v: %+v, want %s %s", itr, eid, e, prefix, action)
	}
}

// referralString is a cache entry as the tests compare it.
func referralString(r router.DDTReferralInfo) string {
	return fmt.Sprintf("[%d]%s %s %v", r.IID, r.EID, r.Type, r.Targets)
}

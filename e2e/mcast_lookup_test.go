package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/replicate"
)

// Group-name lookup end-to-end test (issue 6, "Underlay groups": the
// group-<G-EID> lookup method with many:1 and 1:many mappings): real rlocd
// processes in the configs/lab/mcast-underlay.yaml namespaces; the
// Map-Server holds the provider's group mappings and the receivers' ETRs
// look their overlay groups up.

// lookupIID is the instance-ID the group names live in.
const lookupIID = 1000

const (
	// lkStream packets are sent to each group, lkRate packets per second
	// in all (4 s).
	lkStream, lkRate = 2000, 2000
	// lkWarm numbers the warm-up packets, out of the stream's range.
	lkWarm = 90_000
)

var (
	// many:1: two overlay ranges map to one G-RLOC.
	lkManyG = netip.MustParseAddr("239.255.0.50")
	// 1:many: one overlay range maps to two G-RLOCs.
	lkOneG = []netip.Addr{netip.MustParseAddr("239.255.0.60"), netip.MustParseAddr("239.255.0.61")}
)

// lkMSYAML is the Map-Server of the multicast lab with the provider's
// group mappings.
func lkMSYAML() string {
	gm := fmt.Sprintf(`map_server:
  registration_timeout: 5s
  group_mappings:
    - {iid: %d, eid: 232.1.0.0/16, groups: [%s]}
    - {iid: %d, eid: 232.2.0.0/16, groups: [%s]}
    - {iid: %d, eid: 232.3.0.0/16, groups: [%s, %s]}
`, lookupIID, lkManyG, lookupIID, lkManyG, lookupIID, lkOneG[0], lkOneG[1])
	y := mcMSYAML()
	if !strings.Contains(y, "map_server: {registration_timeout: 5s}\n") {
		panic("mcMSYAML changed shape")
	}
	return strings.Replace(y, "map_server: {registration_timeout: 5s}\n", gm, 1)
}

// lkETRYAML is a receiver site's xTR that looks overlay groups up.
func lkETRYAML(i int) string {
	y := mcXTRYAML(i)
	return strings.TrimSuffix(y, "}\n") + fmt.Sprintf(", underlay: {method: lookup, lookup_iid: %d}}\n", lookupIID)
}

// lkGroups returns two groups of 232.3.0.0/16 that the 1:many mapping
// sends to different G-RLOCs ((*,G): no source), with those G-RLOCs.
func lkGroups(t *testing.T) (c [2]netip.Addr, g [2]netip.Addr) {
	first := -1
	for i := 1; i < 256; i++ {
		a := netip.AddrFrom4([4]byte{232, 3, 0, byte(i)})
		p := replicate.PickGroup(netip.Addr{}, a, len(lkOneG))
		switch {
		case p < 0:
			t.Fatalf("PickGroup refused %s", a)
		case first < 0:
			first, c[0], g[0] = p, a, lkOneG[p]
		case p != first:
			c[1], g[1] = a, lkOneG[p]
			return c, g
		}
	}
	t.Fatal("no two groups of 232.3.0.0/16 pick different G-RLOCs")
	return
}

// multiSender sends to several groups from the source host: the phase of
// a packet is its group's index.
type multiSender struct {
	c      *net.UDPConn
	groups []netip.Addr
}

func openMultiSender(t *testing.T, n *network, groups []netip.Addr) *multiSender {
	t.Helper()
	return &multiSender{c: sourceConn(t, n, netip.Addr{}), groups: groups}
}

// send sends sequence numbers [from, from+count) to every group in turn,
// rate packets per second in all (bounded in count and time).
func (s *multiSender) send(from, count, rate int) error {
	var b [64]byte
	pace := newPacer(rate)
	for i := from; i < from+count; i++ {
		for ph, g := range s.groups {
			binary.BigEndian.PutUint32(b[0:], uint32(ph))
			binary.BigEndian.PutUint32(b[4:], uint32(i))
			if _, err := s.c.WriteToUDPAddrPort(b[:], netip.AddrPortFrom(g, mcPort)); err != nil {
				return fmt.Errorf("%s packet %d: %w", g, i, err)
			}
			pace.sent()
		}
	}
	return nil
}

// groupRLE reads the Map-Server's merged (*,G) RLE of group g.
func (n *network) groupRLE(g netip.Addr) []netip.Addr {
	n.t.Helper()
	var rle []replicate.Entry
	q := url.Values{"group": {g.String()}, "source": {"*"}}
	if err := n.get("msmr", "/v1/mcast/rle?"+q.Encode(), &rle); err != nil {
		n.t.Fatalf("merged RLE of %s: %v", g, err)
	}
	var out []netip.Addr
	for _, e := range rle {
		out = append(out, e.Addr)
	}
	return out
}

// TestMulticastGroupLookup: the Map-Server maps 232.1.0.0/16 and
// 232.2.0.0/16 to one G-RLOC (many:1) and 232.3.0.0/16 to two (1:many).
// Receivers in 3 sites join groups of all three ranges; each ETR looks
// "group-<G>" up, joins and registers the G-RLOC it is given (for 1:many
// the one every ETR picks for that group), so the merged RLE of each
// overlay group holds exactly its G-RLOC; the ITR sends one copy per
// packet, every receiver gets every packet of its groups exactly once, and
// an ETR drops the groups it receives through a shared G-RLOC but has no
// receivers for.
func TestMulticastGroupLookup(t *testing.T) {
	c, cg := lkGroups(t)
	a, b := netip.MustParseAddr("232.1.1.1"), netip.MustParseAddr("232.2.2.2")
	groups := []netip.Addr{a, b, c[0], c[1]} // phase = index
	want := map[netip.Addr]netip.Addr{a: lkManyG, b: lkManyG, c[0]: cg[0], c[1]: cg[1]}
	joins := map[string][]int{"r2": {0, 2}, "r3": {1, 2}, "r4": {0, 3}}
	t.Logf("1:many: %s -> %s, %s -> %s", c[0], cg[0], c[1], cg[1])

	n := newLabNetwork(t, "../configs/lab/mcast-underlay.yaml", "ml")
	n.start("msmr", lkMSYAML())
	n.start("xtr1", mcXTRYAML(1))
	for i := 2; i <= 4; i++ {
		n.start(fmt.Sprintf("xtr%d", i), lkETRYAML(i))
	}
	rs := map[string]*mcReceiver{}
	for _, h := range []string{"r2", "r3", "r4"} {
		r := openReceiver(t, n, h)
		for _, ph := range joins[h] {
			if err := r.p.JoinGroup(r.ifi, &net.UDPAddr{IP: groups[ph].AsSlice()}); err != nil {
				t.Fatalf("%s join %s: %v", h, groups[ph], err)
			}
		}
		rs[h] = r
	}

	// Each ETR registers (*,G) with the G-RLOC the lookup gave it; the
	// Map-Server merges equal entries.
	n.waitFor(15*time.Second, "every overlay group's RLE holding its G-RLOC", func() bool {
		for _, g := range groups {
			if !slices.Equal(n.groupRLE(g), []netip.Addr{want[g]}) {
				return false
			}
		}
		return true
	})
	for _, g := range groups {
		t.Logf("(*,%s) RLE %v", g, n.groupRLE(g))
	}
	if got := n.stats("msmr").Control["group_name_replies"]; got < 6 {
		t.Errorf("the Map-Server answered %d group-name lookups, want at least 6 (2 per ETR)", got)
	}

	src := openMultiSender(t, n, groups)
	// Warm-up: the first packets of each (S,G) miss at the ITR and are
	// held while it is resolved.
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; ; i++ {
		all := true
		for h, r := range rs {
			for _, ph := range joins[h] {
				if r.firstSeq(ph) < 0 {
					all = false
				}
			}
		}
		if all {
			break
		}
		if time.Now().After(deadline) || i >= 500 {
			t.Fatalf("warm-up: not every receiver got a packet of each of its groups; xtr1 %v", n.stats("xtr1").Fastpath)
		}
		if err := src.send(lkWarm+i, 1, lkRate); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	before := n.stats("xtr1")
	etrBefore := map[string]uint64{}
	for _, x := range []string{"xtr2", "xtr3", "xtr4"} {
		etrBefore[x] = n.stats(x).Drops["no_receivers"]
	}
	if err := src.send(0, lkStream, lkRate); err != nil {
		t.Fatal(err)
	}
	all := make([]*mcReceiver, 0, len(rs))
	for _, r := range rs {
		all = append(all, r)
	}
	for ph := range groups {
		quiet(all, ph, 5*time.Second)
	}
	after := n.stats("xtr1")
	copies := after.Fastpath["replicate"] - before.Fastpath["replicate"]
	t.Logf("xtr1 made %d copies for %d packets", copies, len(groups)*lkStream)
	if copies != uint64(len(groups)*lkStream) {
		t.Errorf("xtr1 made %d copies for %d packets, want exactly one per packet (to the G-RLOC)", copies, len(groups)*lkStream)
	}
	// Through the many:1 G-RLOC every ETR also receives the other range's
	// group, which none of its receivers joined: it must not reach the
	// site (exactly one group's stream dropped per ETR).
	for _, x := range []string{"xtr2", "xtr3", "xtr4"} {
		d := n.stats(x).Drops["no_receivers"] - etrBefore[x]
		t.Logf("%s dropped %d packets of groups without receivers", x, d)
		if d != lkStream {
			t.Errorf("%s dropped %d packets of groups without receivers, want %d (the other many:1 group)", x, d, lkStream)
		}
	}
	for _, h := range []string{"r2", "r3", "r4"} {
		for _, ph := range joins[h] {
			once, missing, dups := rs[h].tally(ph, 0, lkStream)
			t.Logf("%s %s: %d once, %d missing, %d duplicated", h, groups[ph], once, missing, dups)
			if once != lkStream {
				t.Errorf("%s %s: %d of %d packets exactly once (%d missing, %d duplicated)", h, groups[ph], once, lkStream, missing, dups)
			}
		}
	}
	if t.Failed() {
		n.logLinkDrops("hs", "eth0", "xtr1", "site0", "xtr1", "core0")
		for _, x := range []string{"xtr1", "xtr2", "xtr3", "xtr4"} {
			st := n.stats(x)
			t.Logf("%s fastpath %v drops %v", x, st.Fastpath, st.Drops)
		}
	}
}

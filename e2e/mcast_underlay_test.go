package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Underlay-group end-to-end test (issue 6, "Underlay groups"): real rlocd
// processes in the configs/lab/mcast-underlay.yaml namespaces.

// ugRange is the underlay group range the ETRs hash overlay groups into.
var ugRange = netip.MustParsePrefix("239.255.0.0/24")

const (
	// ugStream is the sequenced stream's length and ugRate its pace
	// (3 s).
	ugStream, ugRate = 3000, 1000
	// ugReceivers is the number of receiver sites (xtr2..xtr4).
	ugReceivers = 3
)

// newUnderlayNetwork brings up the underlay-group lab (without daemons).
func newUnderlayNetwork(t *testing.T) *network {
	t.Helper()
	return newLabNetwork(t, "../configs/lab/mcast-underlay.yaml", "mu")
}

// ugETRYAML is a receiver site's xTR on the multicast underlay: it hashes
// overlay groups into ugRange and registers the G-RLOC only.
func ugETRYAML(i int) string {
	y := mcXTRYAML(i)
	return strings.TrimSuffix(y, "}\n") + ", underlay: {method: hash, range: " + ugRange.String() + "}}\n"
}

var gRLOCLog = regexp.MustCompile(`underlay group chosen.*g_rloc[=":]+([0-9a-f.:]+)`)

// chosenGRLOCs returns the G-RLOCs an xTR logged choosing.
func (n *network) chosenGRLOCs(node string) []string {
	b, err := os.ReadFile(n.logFile(node))
	if err != nil {
		n.t.Fatalf("%s log: %v", node, err)
	}
	var out []string
	for _, m := range gRLOCLog.FindAllStringSubmatch(string(b), -1) {
		out = append(out, strings.Trim(m[1], `"`))
	}
	return out
}

// TestMulticastUnderlayGroup: the receivers' ETRs share a multicast-capable
// core segment and map the overlay group to an underlay group by hash: every
// ETR computes the same G-RLOC, the Map-Server's merged RLE holds that one
// entry, the ITR sends one copy per packet to it, and every receiver gets
// every packet of a sequenced stream exactly once.
func TestMulticastUnderlayGroup(t *testing.T) {
	n := newUnderlayNetwork(t)
	n.start("msmr", mcMSYAML())
	n.start("xtr1", mcXTRYAML(1))
	for i := 2; i <= 1+ugReceivers; i++ {
		n.start(fmt.Sprintf("xtr%d", i), ugETRYAML(i))
	}
	rs := joinedReceivers(t, n, 2, 1+ugReceivers)
	// Each ETR registers the G-RLOC it chose; the Map-Server merges equal
	// entries, so one entry in the RLE means one G-RLOC for all.
	n.waitFor(10*time.Second, "every ETR chose an underlay group", func() bool {
		for i := 2; i <= 1+ugReceivers; i++ {
			if len(n.chosenGRLOCs(fmt.Sprintf("xtr%d", i))) == 0 {
				return false
			}
		}
		return true
	})
	var g netip.Addr
	for i := 2; i <= 1+ugReceivers; i++ {
		node := fmt.Sprintf("xtr%d", i)
		for _, s := range n.chosenGRLOCs(node) {
			a, err := netip.ParseAddr(s)
			if err != nil || !ugRange.Contains(a) {
				t.Fatalf("%s chose %q, not an address in %s", node, s, ugRange)
			}
			if !g.IsValid() {
				g = a
			} else if a != g {
				t.Fatalf("%s chose G-RLOC %s, another ETR %s", node, a, g)
			}
		}
	}
	t.Logf("every ETR chose G-RLOC %s for (*,%s)", g, mcGroup)
	n.waitFor(10*time.Second, "the merged (*,G) RLE holding the G-RLOC", func() bool {
		rle := n.mergedRLE("*")
		return len(rle) == 1 && rle[0].Addr == g
	})

	src := openSender(t, n)
	// Warm-up: the first packets miss at the ITR and are held while (S,G)
	// is resolved. Send until every receiver has one.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		all := true
		for _, r := range rs {
			if r.firstSeq(0) < 0 {
				all = false
			}
		}
		if all {
			break
		}
		if time.Now().After(deadline) || i >= mcStream {
			st := n.stats("xtr1")
			t.Fatalf("warm-up: not every receiver got a packet; xtr1 fastpath %v drops %v; xtr2 %v", st.Fastpath, st.Drops, n.stats("xtr2").Drops)
		}
		if err := src.send(0, 1, 1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	n.streamExactlyOnce(t, "one copy, to the G-RLOC", src, rs, 1, ugStream, ugRate, 1)
	if t.Failed() {
		n.logLinkDrops("hs", "eth0", "xtr1", "site0", "xtr1", "core0")
		for _, x := range []string{"xtr1", "xtr2"} {
			st := n.stats(x)
			t.Logf("%s fastpath %v drops %v", x, st.Fastpath, st.Drops)
		}
	}
}

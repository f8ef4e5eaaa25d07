package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/lab"
	"github.com/rloc-router/rloc/slowpath"
)

// Duplicate suppression end to end (issue 6, "Underlay groups": an ETR that
// registered both G-RLOC and U-RLOC ends up receiving no duplicates;
// draft-ietf-lisp-group-mapping): real rlocd processes in the
// configs/lab/mcast-underlay.yaml namespaces, xtr2 registering its U-RLOC
// with the G-RLOC, xtr3 and xtr4 the G-RLOC only.

const (
	mdLab = "../configs/lab/mcast-underlay.yaml"
	// mdHold is xtr2's multicast.underlay.suppress_hold.
	mdHold = 2 * time.Second
	// mdSwitch bounds the phase-2 stream that runs while xtr2 switches
	// back to unicast (packets at ugRate: 20 s).
	mdSwitch = 20_000
)

// Log lines (slowpath/mcast_underlay.go, slowpath/mcast_itr.go).
const (
	mdLogSuppressOn  = "leaving (S,G) probes on the U-RLOC unanswered"
	mdLogSuppressOff = "answering (S,G) probes on the U-RLOC again"
	mdLogURLOCBack   = "U-RLOC answers (S,G) probes again"
)

// mdETRYAML is xtr2: the hash method, registering its U-RLOC too.
func mdETRYAML(i int) string {
	return strings.TrimSuffix(mcXTRYAML(i), "}\n") + fmt.Sprintf(", underlay: {method: hash, range: %s, register_urloc: true, suppress_hold: %s}}\n", ugRange, mdHold)
}

// mcastStats reads node's multicast control counters.
func (n *network) mcastStats(node string) slowpath.McastStats {
	n.t.Helper()
	var s slowpath.McastStats
	if err := n.get(node, "/v1/mcast/stats", &s); err != nil {
		n.t.Fatalf("%s multicast stats: %v", node, err)
	}
	return s
}

// logCount counts the lines of node's log containing s.
func (n *network) logCount(node, s string) int {
	b, err := os.ReadFile(n.logFile(node))
	if err != nil {
		n.t.Fatalf("%s log: %v", node, err)
	}
	return strings.Count(string(b), s)
}

// bridgePort is the bridge-side interface of node's port on the lab's
// bridge segment br: lab.Up names them p<index in the topology's port list>.
func bridgePort(t *testing.T, br, node string) string {
	t.Helper()
	topo, err := lab.Load(mdLab)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range topo.Bridges {
		if b.Name != br {
			continue
		}
		for j, p := range b.Ports {
			if p.Node == node {
				return fmt.Sprintf("p%d", j)
			}
		}
	}
	t.Fatalf("%s has no port on bridge %s", node, br)
	return ""
}

// TestMulticastUnderlayDuplicates: xtr2 registers its U-RLOC with the
// G-RLOC, so the ITR xtr1 first sends it a unicast copy besides the one to
// the group. Once xtr2 receives through the G-RLOC it leaves (S,G)
// RLOC-probes on its U-RLOC unanswered, xtr1 stops the unicast copies, and
// a sequenced stream reaches every receiver exactly once with one copy per
// packet at xtr1. Then the bridge stops delivering multicast to xtr2: once
// its suppression hold ran out it answers the probes again, xtr1 resumes
// the unicast copies, and r2 receives again (the loss during the switch is
// counted, not required to be 0), every receiver exactly once after it.
func TestMulticastUnderlayDuplicates(t *testing.T) {
	n := newLabNetwork(t, mdLab, "md")
	if _, err := exec.LookPath("bridge"); err != nil {
		testkit.Unavailable(t, "no bridge tool (iproute2) to stop multicast flooding to a port: %v", err)
	}
	n.start("msmr", mcMSYAML())
	n.start("xtr1", mcXTRYAML(1))
	n.start("xtr2", mdETRYAML(2))
	for i := 3; i <= 1+ugReceivers; i++ {
		n.start(fmt.Sprintf("xtr%d", i), ugETRYAML(i))
	}
	rs := joinedReceivers(t, n, 2, 1+ugReceivers)
	t.Cleanup(func() {
		if t.Failed() {
			n.logLinkDrops("hs", "eth0", "xtr1", "site0", "xtr1", "core0")
			for _, x := range []string{"xtr1", "xtr2"} {
				if n.procs[x] == nil {
					continue
				}
				st := n.stats(x)
				t.Logf("%s fastpath %v drops %v mcast %+v", x, st.Fastpath, st.Drops, n.mcastStats(x))
			}
		}
	})

	// The merged (*,G) RLE: the G-RLOC every ETR hashed to, once, and
	// xtr2's U-RLOC.
	n.waitFor(10*time.Second, "every ETR chose an underlay group", func() bool {
		for i := 2; i <= 1+ugReceivers; i++ {
			if len(n.chosenGRLOCs(fmt.Sprintf("xtr%d", i))) == 0 {
				return false
			}
		}
		return true
	})
	g, err := netip.ParseAddr(n.chosenGRLOCs("xtr2")[0])
	if err != nil || !ugRange.Contains(g) {
		t.Fatalf("xtr2 chose %v (%v), not an address in %s", g, err, ugRange)
	}
	uRLOC := netip.MustParseAddr("192.0.2.2")
	want := []netip.Addr{uRLOC, g}
	slices.SortFunc(want, netip.Addr.Compare)
	n.waitFor(10*time.Second, "the merged (*,G) RLE holding the G-RLOC and xtr2's U-RLOC", func() bool {
		var got []netip.Addr
		for _, e := range n.mergedRLE("*") {
			got = append(got, e.Addr)
		}
		slices.SortFunc(got, netip.Addr.Compare)
		return slices.Equal(got, want)
	})
	for i := 3; i <= 1+ugReceivers; i++ {
		node := fmt.Sprintf("xtr%d", i)
		if c := n.chosenGRLOCs(node); len(c) == 0 || c[0] != g.String() {
			t.Fatalf("%s chose %v, xtr2 %s", node, c, g)
		}
	}
	t.Logf("merged (*,%s) RLE: G-RLOC %s and U-RLOC %s", mcGroup, g, uRLOC)

	// Warm-up (phase 0, 50 packets a second): the first packets miss at
	// xtr1 and are held while (*,G) is resolved; xtr2 gets them twice
	// (through the group and to its U-RLOC) until it hears of G-RLOC
	// traffic, stops answering probes on its U-RLOC and xtr1, after its
	// probe misses, stops the unicast copies.
	src := openSender(t, n)
	deadline := time.Now().Add(30 * time.Second)
	warm := 0
	for i := 0; ; i++ {
		warm = i + 1
		if err := src.sendSeq(0, i, i+1, 1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		if i%10 != 9 {
			continue
		}
		all := true
		for _, r := range rs {
			all = all && r.firstSeq(0) >= 0
		}
		if all && n.mcastStats("xtr1").URLOCsDown >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("warm-up: after %d packets, receivers' first packets %d/%d/%d, xtr1 %+v, xtr2 %+v", i+1,
				rs[0].firstSeq(0), rs[1].firstSeq(0), rs[2].firstSeq(0), n.mcastStats("xtr1"), n.mcastStats("xtr2"))
		}
	}
	if s := n.mcastStats("xtr2"); s.ProbesSuppressed == 0 {
		t.Fatalf("xtr2 left no probe unanswered: %+v", s)
	}
	// Before that, xtr1 did send xtr2 unicast copies besides the group's.
	_, _, warmDups := rs[0].tally(0, 0, warm)
	t.Logf("warm-up: %d packets until xtr1 left xtr2's U-RLOC out, %d of them duplicated at r2", warm, warmDups)
	if warmDups == 0 {
		t.Errorf("warm-up: r2 got no duplicate before suppression: xtr1 never sent to xtr2's U-RLOC")
	}

	// Phase 1: the sequenced stream, one copy per packet (to the group),
	// every receiver exactly once; xtr2's suppression stays on throughout
	// (the G-RLOC traffic renews it).
	n.streamExactlyOnce(t, "phase 1 (one copy, to the G-RLOC)", src, rs, 1, ugStream, ugRate, 1)
	if k := n.logCount("xtr2", mdLogSuppressOn); k != 1 {
		t.Errorf("xtr2 logged the start of suppression %d times, want once", k)
	}
	if k := n.logCount("xtr2", mdLogSuppressOff); k != 0 {
		t.Errorf("xtr2 logged the end of suppression %d times while receiving through the G-RLOC", k)
	}
	if t.Failed() {
		n.logLinkDrops("hs", "eth0", "xtr1", "site0", "xtr1", "core0")
		return
	}

	// Phase 2: the bridge stops flooding multicast to xtr2 (its U-RLOC is
	// still reached by unicast). Stream until r2 receives again: xtr2's
	// hold runs out, it answers the next probe, xtr1 puts its U-RLOC back.
	// A short burst first renews xtr2's suppression (phase 1 ended a
	// moment ago), so that it is surely still on when multicast stops.
	port := bridgePort(t, "core", "xtr2")
	if err := src.sendSeq(0, warm, warm+50, ugRate); err != nil {
		t.Fatal(err)
	}
	if out, err := n.lab.Exec("core", "bridge", "link", "set", "dev", port, "mcast_flood", "off"); err != nil {
		t.Fatalf("stop multicast to xtr2: %v\n%s", err, out)
	}
	beforeSw := n.stats("xtr1")
	sent := 0
	for sent < mdSwitch {
		if err := src.sendSeq(2, sent, sent+250, ugRate); err != nil {
			t.Fatal(err)
		}
		sent += 250
		if first := rs[0].firstSeq(2); first >= 0 && sent-first >= 1000 {
			break // r2 has received again for about a second
		}
	}
	quiet(rs, 2, 5*time.Second)
	first := rs[0].firstSeq(2)
	if first < 0 {
		t.Fatalf("phase 2: r2 received nothing of %d packets after losing the G-RLOC (xtr2 suppression ended %d times, xtr1 re-added it %d times)",
			sent, n.logCount("xtr2", mdLogSuppressOff), n.logCount("xtr1", mdLogURLOCBack))
	}
	if first == 0 {
		t.Fatalf("phase 2: r2 received the first packet sent after multicast to xtr2 stopped: the bridge still delivers the group")
	}
	once, missing, dups := rs[0].tally(2, 0, sent)
	t.Logf("phase 2: r2 back after %d packets (about %v at %d pps): %d once, %d missing, %d duplicated of %d",
		first, time.Duration(first)*time.Second/ugRate, ugRate, once, missing, dups, sent)
	if dups != 0 {
		t.Errorf("phase 2: r2 got %d duplicates", dups)
	}
	if o, _, _ := rs[0].tally(2, first, sent); o != sent-first {
		t.Errorf("phase 2: r2 got %d of the %d packets after its first exactly once", o, sent-first)
	}
	for _, r := range rs[1:] {
		once, missing, dups := r.tally(2, 0, sent)
		if once != sent {
			t.Errorf("phase 2: %s: %d of %d packets exactly once (%d missing, %d duplicated)", r.name, once, sent, missing, dups)
		}
	}
	if k := n.logCount("xtr2", mdLogSuppressOff); k != 1 {
		t.Errorf("xtr2 logged the end of suppression %d times, want once", k)
	}
	if k := n.logCount("xtr1", mdLogURLOCBack); k != 1 {
		t.Errorf("xtr1 logged %d times that xtr2's U-RLOC answers again, want once", k)
	}
	swCopies := n.stats("xtr1").Fastpath["replicate"] - beforeSw.Fastpath["replicate"]
	t.Logf("phase 2: xtr1 made %d copies for %d packets", swCopies, sent)

	// Phase 3: a sequenced stream with xtr2 on unicast: two copies per
	// packet at xtr1 (the group, xtr2's U-RLOC), every receiver exactly
	// once.
	n.streamExactlyOnce(t, "phase 3 (two copies: the G-RLOC and xtr2's U-RLOC)", src, rs, 3, ugStream, ugRate, 2)
}

package e2e

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// TestDDTLab runs the DDT lab (configs/lab/ddt.yaml: delayed links, 10 ms
// and 20 ms one way to the root) with real daemons: an ITR resolves an EID
// three levels down (root -> DDT node -> Map-Server -> ETR) while its first
// packets wait in the hold queue, in instance-IDs 0 and 7; the resolver's
// referral cache and the nodes' counters show the path; the next
// resolution in the delegation skips the root; an unregistered EID and an
// EID outside every delegation get negative replies (MS-NOT-REGISTERED,
// DELEGATION-HOLE) that reach the ITR's map-cache; with the first child DDT
// node killed, the resolver asks its sibling and still resolves. Every
// referral is signed and mr1 verifies them all; restarted with another
// key, the first child's referrals are dropped (counted) and its sibling
// answers. `lig --ddt` walks root -> node -> MS-ACK, and lig from an
// ephemeral port gets the ETR's Map-Reply through mr1.
func TestDDTLab(t *testing.T) {
	dir := t.TempDir()
	priv, pub := ddtKeyPair(t, dir, "tree")
	n := newDDTLab(t, ddtSigned(priv, pub))
	lig := buildTool(t, "lig")

	t.Run("ping three levels down, first packets held", func(t *testing.T) {
		for _, p := range []struct {
			from, itr string
			to        netip.Addr
		}{{"h1", "xtr1", ddtH2}, {"h3", "xtr3", ddtH4}} {
			if got, err := n.lab.Ping(p.from, p.to, 5, 2*time.Second); err != nil || got != 5 {
				t.Fatalf("%s -> %v: %d/5 replies, %v", p.from, p.to, got, err)
			}
			st := n.stats(p.itr)
			if st.Fastpath["held"] == 0 || st.Fastpath["released"] == 0 {
				t.Errorf("%s: no packet held during resolution: %v", p.itr, st.Fastpath)
			}
			for _, d := range []string{"hold_timeout", "hold_full_eid", "hold_full_global", "hold_no_slot"} {
				if st.Drops[d] != 0 {
					t.Errorf("%s dropped %d held packets (%s)", p.itr, st.Drops[d], d)
				}
			}
		}
	})

	t.Run("referral cache: root, node, MS-ACK", func(t *testing.T) {
		// mr1 resolved h2 for xtr1 (root -> ddt-a1 -> ms2, MS-ACK) and h1
		// for xtr2's echo replies (from the cached node referral: ddt-a1
		// -> ms1); mr2 resolved h4 and h3 in iid 7 the same way.
		want := map[string][]string{
			"mr1": {"[0]10.1.0.0/16 NODE-REFERRAL [192.0.2.6:4342 192.0.2.10:4342]",
				"[0]10.1.0.0/20 MS-REFERRAL [192.0.2.14:4342]", "[0]10.1.16.0/20 MS-REFERRAL [192.0.2.18:4342]"},
			"mr2": {"[7]10.7.0.0/16 NODE-REFERRAL [198.51.100.6:4342]", "[7]10.7.0.0/20 MS-REFERRAL [198.51.100.10:4342]"},
		}
		for mr, w := range want {
			l := n.ddtReferrals(mr)
			var got []string
			for _, r := range l.Referrals {
				got = append(got, referralString(r))
			}
			slices.Sort(got)
			if !slices.Equal(got, w) {
				t.Errorf("%s referral cache %q, want %q", mr, got, w)
			}
			if c := l.Counters; c["referrals_node_referral"] != 1 || c["referrals_ms_referral"] != uint64(len(w)-1) ||
				c["referrals_ms_ack"] != 2 || c["acked"] != 2 || c["resolutions"] != 2 || c["cache_hits"] != 1 {
				t.Errorf("%s counters %v", mr, c)
			}
		}
		// mr1 verified the signature of each of its 5 referrals (the
		// root's, ddt-a1's two, ms1's and ms2's MS-ACKs).
		if c := n.ddtReferrals("mr1").Counters; c["referrals_verified"] != 5 || c["referrals_bad_signature"] != 0 ||
			c["referrals_unsigned"] != 0 {
			t.Errorf("mr1 signature counters %v", c)
		}
		// One NODE-REFERRAL per domain from the root, the MS-REFERRALs from
		// the child nodes; ddt-a2 was not needed.
		for node, w := range map[string][2]uint64{"root": {2, 0}, "ddt-a1": {0, 2}, "ddt-a2": {0, 0}, "ddt-b": {0, 1}} {
			if s := n.ddtNodeStats(node).Stats; s.NodeReferrals != w[0] || s.MSReferrals != w[1] {
				t.Errorf("%s sent %d NODE-REFERRALs and %d MS-REFERRALs, want %v", node, s.NodeReferrals, s.MSReferrals, w)
			}
		}
	})

	t.Run("lig --ddt: root, node, MS-ACK", func(t *testing.T) {
		out, err := n.lab.Exec("xtr1", lig, ddtH2.String(), "--ddt", "203.0.113.2")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		t.Logf("%s", out)
		want := [][4]string{
			{"1", "203.0.113.2:4342", "NODE-REFERRAL", "[0]10.1.0.0/16"},
			{"2", "192.0.2.6:4342", "MS-REFERRAL", "[0]10.1.16.0/20"},
			{"3", "192.0.2.18:4342", "MS-ACK", "[0]10.1.17.0/24"},
		}
		var hops [][4]string
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) >= 4 && f[0] >= "1" && f[0] <= "9" && strings.HasSuffix(f[1], ":4342") {
				hops = append(hops, [4]string(f[:4]))
				if !strings.Contains(line, "signed(tag") {
					t.Errorf("hop not signed: %s", line)
				}
			}
		}
		if !slices.Equal(hops, want) {
			t.Errorf("hops %q, want %q", hops, want)
		}
		if !strings.Contains(string(out), "Received Map-Reply from 192.0.2.26:4342") {
			t.Errorf("no Map-Reply from xtr2 at the end of the trace")
		}
	})

	t.Run("lig from an ephemeral port: the ETR's Map-Reply", func(t *testing.T) {
		// Through mr1: the ETR (xtr2) answers the port lig asked from.
		out, err := n.lab.Exec("xtr1", lig, "10.1.17.42", "--mr", "192.0.2.2")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		t.Logf("%s", out)
		if s := string(out); !strings.Contains(s, "Received Map-Reply from 192.0.2.26:4342") ||
			!strings.Contains(s, "[0]10.1.17.0/24") || !strings.Contains(s, "1 locator(s)") ||
			strings.Contains(s, "Send Map-Request from 192.0.2.22:4342") {
			t.Errorf("lig from an ephemeral port: no positive Map-Reply from xtr2")
		}
	})

	c := n.resolver("xtr1", "mr1")

	t.Run("second resolution in the delegation skips the root", func(t *testing.T) {
		root, a1, before := n.ddtNodeStats("root").Stats, n.ddtNodeStats("ddt-a1").Stats, n.ddtReferrals("mr1").Counters
		r, err := c.Resolve(0, netip.MustParseAddr("10.1.17.99"), 3*time.Second)
		if err != nil || r.Negative() || r.From.Addr() != netip.MustParseAddr("192.0.2.26") {
			t.Fatalf("10.1.17.99: %+v, %v (want xtr2's Map-Reply)", r, err)
		}
		after := n.ddtReferrals("mr1").Counters
		if n.ddtNodeStats("root").Stats != root || n.ddtNodeStats("ddt-a1").Stats != a1 {
			t.Errorf("the root or ddt-a1 was asked again")
		}
		if after["cache_hits"] != before["cache_hits"]+1 || after["acked"] != before["acked"]+1 {
			t.Errorf("mr1 counters before %v, after %v", before, after)
		}
		t.Logf("resolved from the cached MS-REFERRAL in %v", r.RTT)
	})

	t.Run("MS-NOT-REGISTERED: negative reply to the ITR", func(t *testing.T) {
		// 10.1.5.5 is in ms1's site prefix 10.1.0.0/20, not registered.
		n.negativeAtITR(t, "h1", "xtr1", netip.MustParseAddr("10.1.5.5"), "10.1.4.0/22", "send-map-request")
		if c := n.ddtReferrals("mr1").Counters; c["referrals_ms_not_registered"] != 1 {
			t.Errorf("mr1 counters %v", c)
		}
		// Asked again: answered from the negative cache entry at once.
		r, err := c.Resolve(0, netip.MustParseAddr("10.1.6.1"), 3*time.Second)
		if err != nil || !r.Negative() || r.Record.Action != wire.ActionSendMapRequest || r.From != ddtMR["mr1"] {
			t.Fatalf("10.1.6.1: %+v, %v", r, err)
		}
		if c := n.ddtReferrals("mr1").Counters; c["negative_hits"] != 1 || c["referrals_ms_not_registered"] != 1 {
			t.Errorf("mr1 counters %v", c)
		}
	})

	t.Run("DELEGATION-HOLE: negative reply to the ITR", func(t *testing.T) {
		// 10.200.0.1 is in the root's 10.0.0.0/8, in no delegation.
		n.negativeAtITR(t, "h1", "xtr1", netip.MustParseAddr("10.200.0.1"), "10.128.0.0/9", "natively-forward")
		if s := n.ddtNodeStats("root").Stats; s.DelegationHoles != 1 {
			t.Errorf("root sent %d DELEGATION-HOLEs", s.DelegationHoles)
		}
		if c := n.ddtReferrals("mr1").Counters; c["referrals_delegation_hole"] != 1 {
			t.Errorf("mr1 counters %v", c)
		}
	})

	t.Run("dead child DDT node: its sibling answers", func(t *testing.T) {
		n.stop("ddt-a1", false) // SIGKILL
		if err := n.flushReferrals("mr1"); err != nil {
			t.Fatal(err)
		}
		r, err := c.Resolve(0, ddtH2, 5*time.Second)
		if err != nil || r.Negative() || r.From.Addr() != netip.MustParseAddr("192.0.2.26") {
			t.Fatalf("%v with ddt-a1 dead: %+v, %v", ddtH2, r, err)
		}
		if s := n.ddtNodeStats("ddt-a2").Stats; s.MSReferrals != 1 {
			t.Errorf("ddt-a2 sent %d MS-REFERRALs, want 1", s.MSReferrals)
		}
		if r.RTT < time.Second {
			t.Errorf("resolved in %v: ddt-a1 cannot have been asked first (a silent target is given a second)", r.RTT)
		}
		t.Logf("resolved through ddt-a2 in %v (ddt-a1 silent for its second)", r.RTT)
	})

	t.Run("wrongly signed referral: dropped, counted, the sibling answers", func(t *testing.T) {
		// ddt-a1 comes back signing with a key mr1 does not hold.
		wrong, _ := ddtKeyPair(t, dir, "wrong")
		n.start("ddt-a1", ddtConfig(t, "ddt-a1", ddtSigned(wrong, pub)))
		if err := n.flushReferrals("mr1"); err != nil {
			t.Fatal(err)
		}
		before, a2 := n.ddtReferrals("mr1").Counters, n.ddtNodeStats("ddt-a2").Stats
		r, err := c.Resolve(0, ddtH2, 5*time.Second)
		if err != nil || r.Negative() || r.From.Addr() != netip.MustParseAddr("192.0.2.26") {
			t.Fatalf("%v with ddt-a1 signing wrongly: %+v, %v", ddtH2, r, err)
		}
		after := n.ddtReferrals("mr1").Counters
		if after["referrals_bad_signature"] < before["referrals_bad_signature"]+1 {
			t.Errorf("no bad signature counted: before %v, after %v", before, after)
		}
		if s := n.ddtNodeStats("ddt-a1").Stats; s.MSReferrals < 1 || s.Signed < 1 {
			t.Errorf("ddt-a1 did not answer: %+v", s)
		}
		if s := n.ddtNodeStats("ddt-a2").Stats; s.MSReferrals != a2.MSReferrals+1 {
			t.Errorf("ddt-a2 sent %d MS-REFERRALs, want %d", s.MSReferrals, a2.MSReferrals+1)
		}
		if r.RTT < time.Second {
			t.Errorf("resolved in %v: ddt-a1's dropped referral should have cost the retransmission interval", r.RTT)
		}
		t.Logf("resolved through ddt-a2 in %v (ddt-a1's referral dropped); mr1 %d bad signatures", r.RTT,
			after["referrals_bad_signature"])
	})
}

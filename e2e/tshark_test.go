package e2e

import (
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/internal/testkit/tsharktest"
)

// TestCapture records the whole exchange on the core bridge — the
// registrations, their notifications, the resolutions and the data packets
// of a first flow — and has tshark decode it: every packet is well formed
// and carries the expected fields.
func TestCapture(t *testing.T) {
	n := newNetwork(t)
	if _, err := exec.LookPath("tshark"); err != nil {
		missing(t, "tshark not installed (scripts/deps.sh tshark): %v", err)
	}
	file := filepath.Join(n.dir, "core.pcap")
	cp, err := n.lab.Capture("core", "br0", "udp port 4341 or udp port 4342", file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	n.start("msmr", msmrYAML("30s"))
	n.start("xtr1", xtrYAML("xtr1", "1", "key-one", "0s"))
	n.start("xtr2", xtrYAML("xtr2", "2", "key-two", "0s"))
	n.waitFor(10*time.Second, "4 registrations", func() bool { return len(n.registrations()) == 4 })
	for _, x := range []string{"xtr1", "xtr2"} {
		n.waitFor(5*time.Second, x+" Map-Notify", func() bool { return n.stats(x).Control["register_notified"] >= 1 })
	}
	for _, dst := range []string{"10.2.0.10", "2001:db8:2::10"} {
		a := mustAddr(dst)
		if got, err := n.lab.Ping("h1", a, 3, 2*time.Second); err != nil || got != 3 {
			t.Fatalf("h1 -> %s: %d/3, %v", dst, got, err)
		}
	}
	if err := cp.Stop(); err != nil {
		t.Fatal(err)
	}
	pkts := tsharktest.DecodeFile(t, file)
	if t.Failed() {
		return
	}

	type reg struct {
		src   string
		nonce string
	}
	var regs []reg
	var notifies, requests, replies, data int
	type request struct{ eid, site, itr string }
	reqs := map[string]request{} // ECM Map-Request nonce -> what was asked
	siteOf := map[string]string{"10.1.0.10": "1", "2001:db8:1::10": "1", "10.2.0.10": "2", "2001:db8:2::10": "2"}
	for i, l := range pkts {
		frame := i + 1
		srcs := tsharktest.Fields(l, "ip.src")
		if len(srcs) == 0 {
			srcs = tsharktest.Fields(l, "ipv6.src")
		}
		dsts := tsharktest.Fields(l, "ip.dst")
		if len(dsts) == 0 {
			dsts = tsharktest.Fields(l, "ipv6.dst")
		}
		if len(srcs) == 0 || len(dsts) == 0 {
			t.Errorf("frame %d: no IP addresses", frame)
			continue
		}
		src, dst := srcs[0], dsts[0]
		if _, ok := l["lisp-data"]; ok {
			data++
			// RFC 9300 §5.3: the I bit and the 24-bit instance-ID (0 here),
			// between the RLOCs, around an h1 <-> h2 packet.
			if f := tsharktest.Fields(l, "lisp-data.flags.iid"); !slices.Contains([]string{"1", "True"}, first(f)) {
				t.Errorf("frame %d: LISP data without the I bit: %q", frame, f)
			}
			if iid := tsharktest.Fields(l, "lisp-data.iid"); first(iid) != "0" {
				t.Errorf("frame %d: lisp-data.iid %q, want 0", frame, iid)
			}
			if !isRLOC(src) || !isRLOC(dst) {
				t.Errorf("frame %d: outer %s -> %s is not between RLOCs", frame, src, dst)
			}
			inner := append(tsharktest.Fields(l, "ip.src"), tsharktest.Fields(l, "ipv6.src")...)
			if !slices.ContainsFunc(inner, func(s string) bool {
				return s == "10.1.0.10" || s == "10.2.0.10" ||
					s == "2001:db8:1::10" || s == "2001:db8:2::10"
			}) {
				t.Errorf("frame %d: no inner host address in %q", frame, inner)
			}
			continue
		}
		types := tsharktest.Fields(l, "lisp.type")
		switch first(types) {
		case "3": // Map-Register (RFC 9301 §5.6)
			if dst != "192.0.2.100" || (src != "192.0.2.1" && src != "192.0.2.2") {
				t.Errorf("frame %d: Map-Register %s -> %s", frame, src, dst)
			}
			if f := first(tsharktest.Fields(l, "lisp.mreg.flags.wmn")); f != "1" && f != "True" {
				t.Errorf("frame %d: Map-Register without want-map-notify (%q)", frame, f)
			}
			site := src[len(src)-1:]
			eids := append(tsharktest.Fields(l, "lisp.mapping.eid.ipv4"), tsharktest.Fields(l, "lisp.mapping.eid.ipv6")...)
			sort.Strings(eids)
			want := []string{"10." + site + ".0.0", "2001:db8:" + site + "::"}
			if !slices.Equal(eids, want) {
				t.Errorf("frame %d: Map-Register from %s registers %q, want %q", frame, src, eids, want)
			}
			if locs := tsharktest.Fields(l, "lisp.loc.locator"); !containsAll(locs, "192.0.2."+site, "2001:db8:ff::"+site) {
				t.Errorf("frame %d: Map-Register locators %q", frame, locs)
			}
			if ml := tsharktest.Fields(l, "lisp.mapping.eid.masklen"); !containsAll(ml, "24", "64") {
				t.Errorf("frame %d: Map-Register mask lengths %q", frame, ml)
			}
			regs = append(regs, reg{src, first(tsharktest.Fields(l, "lisp.nonce"))})
		case "4": // Map-Notify (RFC 9301 §5.7): echoes the register's nonce
			notifies++
			nonce := first(tsharktest.Fields(l, "lisp.nonce"))
			if !slices.Contains(regs, reg{dst, nonce}) {
				t.Errorf("frame %d: Map-Notify to %s with nonce %s answers no earlier Map-Register of %s (%v)",
					frame, dst, nonce, dst, regs)
			}
			if src != "192.0.2.100" {
				t.Errorf("frame %d: Map-Notify from %s", frame, src)
			}
		case "8": // ECM (RFC 9301 §5.8) around a Map-Request (§5.2)
			if len(types) != 2 || types[1] != "1" {
				t.Errorf("frame %d: ECM carries types %q, want [8 1]", frame, types)
				continue
			}
			requests++
			eid := first(append(tsharktest.Fields(l, "lisp.mreq.record.prefix.ipv4"), tsharktest.Fields(l, "lisp.mreq.record.prefix.ipv6")...))
			site := siteOf[eid]
			if site == "" {
				t.Errorf("frame %d: Map-Request for %q, not a host of the flow", frame, eid)
				continue
			}
			// The requester is the ITR of the other site; its ITR-RLOCs
			// are its own RLOCs.
			other := map[string]string{"1": "2", "2": "1"}[site]
			itr := append(tsharktest.Fields(l, "lisp.mreq.itr_rloc_ipv4"), tsharktest.Fields(l, "lisp.mreq.itr_rloc_ipv6")...)
			if !slices.Equal(itr, []string{"192.0.2." + other, "2001:db8:ff::" + other}) {
				t.Errorf("frame %d: ITR-RLOCs %q, want xtr%s's", frame, itr, other)
			}
			reqs[first(tsharktest.Fields(l, "lisp.nonce"))] = request{eid: eid, site: site, itr: other}
		case "2": // Map-Reply (RFC 9301 §5.4): echoes the request's nonce
			replies++
			nonce := first(tsharktest.Fields(l, "lisp.nonce"))
			rq, ok := reqs[nonce]
			if !ok {
				t.Errorf("frame %d: Map-Reply nonce %s echoes no Map-Request", frame, nonce)
				continue
			}
			eids := append(tsharktest.Fields(l, "lisp.mapping.eid.ipv4"), tsharktest.Fields(l, "lisp.mapping.eid.ipv6")...)
			want := "10." + rq.site + ".0.0"
			if strings.Contains(rq.eid, ":") {
				want = "2001:db8:" + rq.site + "::"
			}
			if len(eids) != 1 || eids[0] != want {
				t.Errorf("frame %d: Map-Reply for %q, want %s (request for %s)", frame, eids, want, rq.eid)
			}
			if locs := tsharktest.Fields(l, "lisp.loc.locator"); !slices.Equal(locs, []string{"192.0.2." + rq.site, "2001:db8:ff::" + rq.site}) {
				t.Errorf("frame %d: Map-Reply locators %q", frame, locs)
			}
			if dst != "192.0.2."+rq.itr && dst != "2001:db8:ff::"+rq.itr {
				t.Errorf("frame %d: Map-Reply to %s, not to the requester's ITR-RLOC", frame, dst)
			}
		default:
			t.Errorf("frame %d: unexpected LISP message types %q", frame, types)
		}
	}
	t.Logf("%d frames: %d Map-Registers, %d Map-Notifies, %d ECM Map-Requests, %d Map-Replies, %d data",
		len(pkts), len(regs), notifies, requests, replies, data)
	if len(regs) < 2 || notifies < 2 || requests < 2 || replies < 2 || data < 12 {
		drops, ok := cp.KernelDrops()
		t.Errorf("missing messages in the capture (%s's kernel drops: %d, reported: %v)", cp.Tool, drops, ok)
	}
}

func containsAll(have []string, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func isRLOC(s string) bool {
	return strings.HasPrefix(s, "192.0.2.") || strings.HasPrefix(s, "2001:db8:ff::")
}

// missing fails (CI set) or skips the test for a missing prerequisite.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	testkit.Unavailable(t, format, args...)
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

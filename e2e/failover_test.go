package e2e

import (
	"testing"
	"time"
)

// TestFailover: xtr2's EIDs have RLOCs 192.0.2.2 (priority 1) and
// 2001:db8:ff::2 (priority 2). Taking 192.0.2.2 away in xtr2's namespace
// makes xtr1's RLOC-probes to it go unanswered; traffic must move to the
// IPv6 RLOC within 3 probe intervals, and back once the address returns.
func TestFailover(t *testing.T) {
	n := newNetwork(t)
	const probe = time.Second
	n.start("msmr", msmrYAML("30s"))
	n.start("xtr1", xtrYAML("xtr1", "1", "key-one", probe.String()))
	n.start("xtr2", xtrYAML("xtr2", "2", "key-two", "0s"))
	n.waitFor(10*time.Second, "registrations", func() bool { return len(n.registrations()) == 4 })
	if got, err := n.lab.Ping("h1", h2v4, 3, 2*time.Second); err != nil || got != 3 {
		t.Fatalf("h1 -> h2: %d/3, %v", got, err)
	}
	reach := func(rloc string) (bool, bool) {
		for _, e := range n.mapCache("xtr1") {
			if e.EID != "10.2.0.0/24" {
				continue
			}
			for _, r := range e.RLOCs {
				if r.Addr == rloc {
					return r.Reachable, true
				}
			}
		}
		return false, false
	}
	if up, ok := reach("192.0.2.2"); !ok || !up {
		t.Fatalf("192.0.2.2 not an up RLOC of 10.2.0.0/24: %+v", n.mapCache("xtr1"))
	}
	if out, err := n.lab.Exec("xtr2", "ip", "addr", "del", "192.0.2.2/24", "dev", "core0"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// Keep xtr2's way back to xtr1 over IPv4 (the connected route left with
	// the address): only the RLOC 192.0.2.2 itself is gone.
	if out, err := n.lab.Exec("xtr2", "ip", "route", "add", "192.0.2.0/24", "dev", "core0"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	cut := time.Now()
	n.waitFor(3*probe+time.Second, "192.0.2.2 marked down", func() bool { up, _ := reach("192.0.2.2"); return !up })
	t.Logf("marked down %v after the cut (probe interval %v)", time.Since(cut).Round(10*time.Millisecond), probe)
	before := n.stats("xtr2").Fastpath["decap"]
	if got, err := n.lab.Ping("h1", h2v4, 3, 2*time.Second); err != nil || got != 3 {
		t.Fatalf("h1 -> h2 over the priority-2 RLOC: %d/3, %v", got, err)
	}
	if d := n.stats("xtr2").Fastpath["decap"] - before; d < 3 {
		t.Fatalf("xtr2 decapsulated %d packets after failover", d)
	}
	_, _ = n.lab.Exec("xtr2", "ip", "route", "del", "192.0.2.0/24", "dev", "core0")
	if out, err := n.lab.Exec("xtr2", "ip", "addr", "add", "192.0.2.2/24", "dev", "core0"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	n.waitFor(3*probe+time.Second, "192.0.2.2 back up", func() bool { up, _ := reach("192.0.2.2"); return up })
	if got, err := n.lab.Ping("h1", h2v4, 3, 2*time.Second); err != nil || got != 3 {
		t.Fatalf("h1 -> h2 after restore: %d/3, %v", got, err)
	}
}

package control

import (
	"net/netip"
	"testing"
	"time"
)

// Duplicate suppression (draft-ietf-lisp-group-mapping) is time-based: the
// U-RLOC leaves (S,G) probes unanswered only while G-RLOC traffic was heard
// within UnderlayConfig.SuppressHold.

// TestDuplicateSuppressionEnds: the ETR's U-RLOC stops answering (S,G)
// probes when it hears of G-RLOC traffic and answers them again once no
// news came for SuppressHold; a new report suppresses again.
func TestDuplicateSuppressionEnds(t *testing.T) {
	r := newRig(t)
	const hold = time.Second
	r.tweak = func(c *MulticastConfig) {
		c.Underlay = &UnderlayConfig{Method: UnderlayHash, Range: netip.MustParsePrefix("239.255.0.0/16"), RegisterURLOC: true, SuppressHold: hold}
	}
	e, l := r.startETR("192.0.2.63")
	l.inject(t, join("10.1.1.1", "232.1.1.1"))
	r.waitRLE("registered", addrs("192.0.2.63", mustHash(t).String()))
	conn := listenUDP(t)
	probe := func() bool { return sgProbeAnswered(t, conn, e.Addr()) }
	if !probe() {
		t.Fatal("no probe reply before any G-RLOC traffic")
	}
	e.ReceivedOnUnderlayGroup(mustHash(t))
	if probe() {
		t.Fatal("probe answered right after G-RLOC traffic")
	}
	if e.McastStats().ProbesSuppressed == 0 {
		t.Fatal("ProbesSuppressed not counted")
	}
	// No more news: within a few holds the U-RLOC answers again.
	waitFor(t, 5*hold, "the U-RLOC answering probes again after the hold", probe)
	if e.ProbeSuppressed() {
		t.Error("ProbeSuppressed still reports suppression")
	}
	// News again: suppressed again.
	e.ReceivedOnUnderlayGroup(mustHash(t))
	if probe() {
		t.Fatal("probe answered after G-RLOC traffic resumed")
	}
}

// TestDuplicateSuppressionAtITRResumes: the ITR leaves the U-RLOC of an ETR
// receiving through the G-RLOC out of its RLE while the ETR keeps hearing
// of G-RLOC traffic, and puts it back once the traffic (and so the
// suppression) stopped.
func TestDuplicateSuppressionAtITRResumes(t *testing.T) {
	r := newRig(t)
	r.startITR()
	const hold = time.Second
	r.tweak = func(c *MulticastConfig) {
		c.Underlay = &UnderlayConfig{Method: UnderlayHash, Range: netip.MustParsePrefix("239.255.0.0/16"), RegisterURLOC: true, SuppressHold: hold}
	}
	e1, l1 := r.startETR("192.0.2.67")
	_, l2 := r.startETR("192.0.2.68")
	l1.inject(t, join("10.1.1.1", "232.1.1.1"))
	l2.inject(t, join("10.1.1.1", "232.1.1.1"))
	g := mustHash(t)
	all := addrs("192.0.2.67", "192.0.2.68", g.String())
	r.waitRLE("both registered G-RLOC and U-RLOC", all)
	r.itr.Miss(MissEvent{Dst: grpEID.Addr(), Src: srcEID.Addr()})
	r.waitITR("ITR installed the whole RLE", all)
	// G-RLOC traffic reported every 100 ms (the fast path does it every
	// second; ten times the margin here) for 3 holds: the ITR drops the
	// U-RLOC and does not put it back meanwhile.
	e1.ReceivedOnUnderlayGroup(g)
	r.waitITR("ITR stops sending to ETR 1's U-RLOC", addrs("192.0.2.68", g.String()))
	for range 30 {
		e1.ReceivedOnUnderlayGroup(g)
		time.Sleep(hold / 10)
	}
	if got, _ := r.inst.last(); len(got) != 2 {
		t.Fatalf("ITR put the U-RLOC back while the ETR still received through the G-RLOC: %v", got)
	}
	if s := r.itr.McastStats(); s.URLOCsDown != 1 {
		t.Fatalf("ITR marked %d U-RLOCs down, want 1 (no flapping)", s.URLOCsDown)
	}
	// The traffic stops: after the hold ETR 1 answers again and the ITR
	// sends it unicast copies again.
	r.waitITR("ITR sends to ETR 1's U-RLOC again", all)
}

package slowpath

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// Duplicate suppression (draft-ietf-lisp-group-mapping) is time-based: the
// U-RLOC leaves (S,G) probes unanswered only while G-RLOC traffic was heard
// within UnderlayConfig.SuppressHold.

const (
	logStarted = "leaving (S,G) probes on the U-RLOC unanswered"
	logEnded   = "answering (S,G) probes on the U-RLOC again"
)

// TestSuppressHoldWindow drives the suppression state by hand on the
// engine's clock (no real time): off before any news, on from the news to
// exactly SuppressHold after it, off one nanosecond later; renewals keep it
// on; each start and end is logged once however many probes ask.
func TestSuppressHoldWindow(t *testing.T) {
	var mu sync.Mutex
	var logs bytes.Buffer
	const hold = 3 * time.Second
	base := time.Now()
	m := &mcast{
		e:       &Engine{log: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))},
		cfg:     &MulticastConfig{RLOC: netip.MustParseAddr("192.0.2.61"), Underlay: &UnderlayConfig{Method: UnderlayHash, RegisterURLOC: true, SuppressHold: hold}},
		ugEpoch: base,
	}
	at := func(d time.Duration) bool {
		m.e.now = base.Add(d)
		return m.probeSuppressed()
	}
	for _, d := range []time.Duration{0, time.Second, time.Hour} {
		if at(d) {
			t.Fatalf("suppressed at %v before any G-RLOC traffic", d)
		}
	}
	// One report at 10 s.
	m.heardUnderlay(10 * time.Second)
	for _, tc := range []struct {
		at   time.Duration
		want bool
	}{
		{10 * time.Second, true},
		{9 * time.Second, true}, // a report newer than the engine's clock is fresh
		{12 * time.Second, true},
		{10*time.Second + hold, true},
		{10*time.Second + hold + 1, false},
		{time.Hour, false},
	} {
		if got := at(tc.at); got != tc.want {
			t.Fatalf("one report at 10 s: suppressed at %v = %v, want %v", tc.at, got, tc.want)
		}
	}
	// Reports once a second from 100 s to 110 s, probes every 100 ms in
	// between: suppressed throughout and until hold after the last one.
	for d := 100 * time.Second; d <= 110*time.Second; d += 100 * time.Millisecond {
		if d%time.Second == 0 {
			m.heardUnderlay(d)
		}
		if !at(d) {
			t.Fatalf("renewed every second: not suppressed at %v", d)
		}
	}
	if !at(110*time.Second+hold) || at(110*time.Second+hold+1) {
		t.Fatal("the hold does not run from the last report")
	}
	mu.Lock()
	started, ended := strings.Count(logs.String(), logStarted), strings.Count(logs.String(), logEnded)
	mu.Unlock()
	if started != 2 || ended != 2 {
		t.Errorf("logged %d starts and %d ends, want 2 of each:\n%s", started, ended, logs.String())
	}

	// Without RegisterURLOC there is nothing to suppress.
	m.cfg.Underlay.RegisterURLOC = false
	m.heardUnderlay(200 * time.Second)
	if at(200 * time.Second) {
		t.Error("suppressed without a registered U-RLOC")
	}
}

// TestSuppressHoldConfig: SuppressHold defaults to DefaultSuppressHold and
// must not be negative.
func TestSuppressHoldConfig(t *testing.T) {
	top := &Config{}
	c := MulticastConfig{Underlay: &UnderlayConfig{Method: UnderlayHash, Range: netip.MustParsePrefix("239.255.0.0/16")}}
	if got := c.withDefaults(top).Underlay.SuppressHold; got != DefaultSuppressHold {
		t.Errorf("default hold %v, want %v", got, DefaultSuppressHold)
	}
	c.Underlay.SuppressHold = 7 * time.Second
	if got := c.withDefaults(top).Underlay.SuppressHold; got != 7*time.Second {
		t.Errorf("hold %v, want 7s", got)
	}
	c.Underlay.SuppressHold = -time.Second
	if err := c.validate(top); err == nil || !strings.Contains(err.Error(), "suppress_hold") {
		t.Errorf("negative hold: %v", err)
	}
}

// TestProbeSuppressedClock: Engine.ProbeSuppressed follows the real clock:
// on after a report, off for a report older than the hold.
func TestProbeSuppressedClock(t *testing.T) {
	r := newRig(t)
	r.tweak = func(c *MulticastConfig) {
		c.Underlay = &UnderlayConfig{Method: UnderlayHash, Range: netip.MustParsePrefix("239.255.0.0/16"), RegisterURLOC: true, SuppressHold: time.Minute}
	}
	e, _ := r.startETR("192.0.2.62")
	m := e.mc
	// Move the clock origin an hour back (on the engine goroutine, which
	// reads it), so that a report 2 minutes old has a positive time.
	if err := e.do(func() { m.ugEpoch = m.ugEpoch.Add(-time.Hour) }); err != nil {
		t.Fatal(err)
	}
	if e.ProbeSuppressed() {
		t.Fatal("suppressed before any report")
	}
	e.ReceivedOnUnderlayGroup(netip.MustParseAddr("192.0.2.1")) // not a group: ignored
	if e.ProbeSuppressed() {
		t.Fatal("suppressed after a unicast outer destination")
	}
	e.ReceivedOnUnderlayGroup(mustHash(t))
	if !e.ProbeSuppressed() {
		t.Fatal("not suppressed right after a report (hold 1 min)")
	}
	m.heardUnderlay(time.Since(m.ugEpoch) - 2*time.Minute) // a report 2 minutes ago
	if e.ProbeSuppressed() {
		t.Fatal("suppressed after a report older than the hold")
	}
}

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

package mcast

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/slowpath"
)

// Duplicate suppression (draft-ietf-lisp-group-mapping) is time-based: the
// U-RLOC leaves (S,G) probes unanswered only while G-RLOC traffic was heard
// within UnderlayConfig.SuppressHold.

const (
	logStarted = "leaving (S,G) probes on the U-RLOC unanswered"
	logEnded   = "answering (S,G) probes on the U-RLOC again"
)

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// mustHash is the hashed underlay group of (10.1.1.1, 232.1.1.1) in
// 239.255.0.0/16.
func mustHash(t *testing.T) netip.Addr {
	g, err := replicate.HashGroup(netip.MustParseAddr("10.1.1.1"), netip.MustParseAddr("232.1.1.1"), netip.MustParsePrefix("239.255.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestSuppressHoldWindow drives the suppression state by hand on a fake
// clock of the core (no real time): off before any news, on from the news to
// exactly SuppressHold after it, off one nanosecond later; renewals keep it
// on; each start and end is logged once however many probes ask.
func TestSuppressHoldWindow(t *testing.T) {
	var mu sync.Mutex
	var logs bytes.Buffer
	const hold = 3 * time.Second
	base := time.Now()
	var now atomic.Int64 // the fake clock: nanoseconds after base
	c, err := slowpath.NewCore(&slowpath.Config{Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))},
		slowpath.Options{Clock: func() time.Time { return base.Add(time.Duration(now.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	t.Cleanup(func() { c.Close() })
	m := &Mcast{
		c:       c,
		cfg:     &slowpath.MulticastConfig{RLOC: netip.MustParseAddr("192.0.2.61"), Underlay: &slowpath.UnderlayConfig{Method: slowpath.UnderlayHash, RegisterURLOC: true, SuppressHold: hold}},
		ugEpoch: base,
	}
	// at moves the fake clock to base+d and asks on the event loop, which
	// reads the clock for every event.
	at := func(d time.Duration) (on bool) {
		now.Store(int64(d))
		if err := c.Do(func() { on = m.probeSuppressed() }); err != nil {
			t.Fatal(err)
		}
		return on
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

// TestProbeSuppressedClock: Mcast.ProbeSuppressed follows the real clock:
// on after a report, off for a report older than the hold.
func TestProbeSuppressedClock(t *testing.T) {
	c, err := slowpath.NewCore(&slowpath.Config{}, slowpath.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := slowpath.MulticastConfig{RLOC: netip.MustParseAddr("192.0.2.62"),
		Underlay: &slowpath.UnderlayConfig{Method: slowpath.UnderlayHash, Range: netip.MustParsePrefix("239.255.0.0/16"), RegisterURLOC: true, SuppressHold: time.Minute}}
	e, err := New(c, cfg.WithDefaults(&slowpath.Config{}), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := e
	// Move the clock origin an hour back (the core is not running: nothing
	// else reads it), so that a report 2 minutes old has a positive time.
	m.ugEpoch = m.ugEpoch.Add(-time.Hour)
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

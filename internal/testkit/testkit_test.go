package testkit

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB that records how a helper ended the test; like
// the real ones, its Fatalf and Skipf do not return (the embedded TB is
// nil: any other method panics).
type recorder struct {
	testing.TB
	fatal, skip string
}

// ended is what recorder's Fatalf and Skipf panic with.
type ended struct{}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	panic(ended{})
}
func (r *recorder) Skipf(format string, args ...any) {
	r.skip = fmt.Sprintf(format, args...)
	panic(ended{})
}

// run calls fn with r, stopping where r's test ended.
func (r *recorder) run(fn func(testing.TB)) {
	defer func() {
		if v := recover(); v != nil && v != (ended{}) {
			panic(v)
		}
	}()
	fn(r)
}

// TestPolicy: a missing prerequisite fails the test when CI is set and
// skips it otherwise, naming what is missing; nothing happens without an
// error.
func TestPolicy(t *testing.T) {
	missing := errors.New("no such file")
	for _, tc := range []struct {
		ci        string
		err       error
		wantFatal bool
		wantSkip  bool
	}{
		{ci: "true", err: missing, wantFatal: true},
		{ci: "1", err: missing, wantFatal: true},
		{ci: "", err: missing, wantSkip: true},
		{ci: "true", err: nil},
		{ci: "", err: nil},
	} {
		t.Setenv("CI", tc.ci)
		if CI() != (tc.ci != "") {
			t.Errorf("CI=%q: CI() = %v", tc.ci, CI())
		}
		var r recorder
		r.run(func(t testing.TB) { Require(t, "tshark", tc.err) })
		if (r.fatal != "") != tc.wantFatal || (r.skip != "") != tc.wantSkip {
			t.Errorf("CI=%q err=%v: fatal %q, skip %q; want fatal %v, skip %v", tc.ci, tc.err, r.fatal, r.skip, tc.wantFatal, tc.wantSkip)
		}
		if msg := r.fatal + r.skip; tc.err != nil && msg != "" {
			want := "tshark: no such file"
			if !strings.Contains(msg, want) {
				t.Errorf("CI=%q: message %q does not name %q", tc.ci, msg, want)
			}
		}
	}
}

// TestWaitForState: WaitFor returns once the condition holds, and its
// failure names what it waited for and the last state.
func TestWaitForState(t *testing.T) {
	n := 0
	WaitFor(t, "three polls", func() error {
		if n++; n < 3 {
			return fmt.Errorf("poll %d", n)
		}
		return nil
	})
	if n != 3 {
		t.Fatalf("polled %d times, want 3", n)
	}
}

// parked blocks on ch; its name is what TestWaitBlocked looks for.
func parked(ch chan struct{}) { <-ch }

// TestWaitBlocked: WaitBlocked returns only once the goroutine is blocked
// in the named function, and blockedIn ignores running goroutines and other
// functions.
func TestWaitBlocked(t *testing.T) {
	ch := make(chan struct{})
	done := make(chan struct{})
	go func() { parked(ch); close(done) }()
	WaitBlocked(t, "github.com/rloc-router/rloc/internal/testkit.parked")
	close(ch)
	<-done

	traces := []byte("goroutine 1 [running]:\nexample.com/p.f(0x1)\n\t/p/f.go:3 +0x1\n\n" +
		"goroutine 2 [chan receive, 2 minutes]:\nexample.com/p.g(...)\n\t/p/g.go:5\nexample.com/p.h()\n\t/p/h.go:9 +0x2\n")
	for fn, want := range map[string]bool{
		"example.com/p.f": false, // running
		"example.com/p.g": true,  // blocked, innermost frame
		"example.com/p.h": true,  // blocked, outer frame
		"example.com/p":   false, // not a function of the trace
	} {
		if got := blockedIn(traces, fn); got != want {
			t.Errorf("blockedIn(%q) = %v, want %v", fn, got, want)
		}
	}
}

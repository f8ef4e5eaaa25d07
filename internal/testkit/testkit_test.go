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

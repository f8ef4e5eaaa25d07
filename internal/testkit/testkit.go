// Package testkit holds what rloc's tests share and production code never
// imports: the policy for a missing prerequisite (root, network namespaces,
// AF_XDP, tshark, a tool on PATH), waiting for something instead of sleeping
// (WaitFor, WaitBlocked) and, in its sub-packages, the namespace helpers
// (netnstest), the AF_XDP xTR harness (xdptest) and the tshark decoder
// (tsharktest).
//
// The policy is written once, here: a test whose prerequisite is missing
// fails when the environment variable CI is set (not empty), so continuous
// integration never passes by skipping, and is skipped with the reason
// otherwise, so a developer's laptop without root still runs the rest.
package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// CI reports whether the tests run under continuous integration: the
// environment variable CI is set and not empty.
func CI() bool { return os.Getenv("CI") != "" }

// Unavailable ends the test (or benchmark) t whose prerequisite is missing:
// t.Fatalf when CI is set, t.Skipf otherwise, with the formatted reason.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("prerequisite missing (CI is set, so this fails): %s", msg)
	}
	t.Skipf("prerequisite missing: %s", msg)
}

// Require returns when err is nil and otherwise ends t through Unavailable,
// naming what the test needed and why it is missing.
func Require(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		Unavailable(t, "%s: %v", what, err)
	}
}

// Tool returns the path of the command name on PATH; a missing one is a
// missing prerequisite (Require), named with the scripts/deps.sh call that
// installs it.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	Require(t, name+" (scripts/deps.sh "+name+" installs it)", err)
	return p
}

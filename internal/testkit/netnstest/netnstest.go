// Package netnstest holds the testing side of lab/netns: a check that the
// test may build namespaces, and namespaces that a test creates and that
// its cleanup deletes. A missing prerequisite goes through
// testkit.Unavailable (fails under CI, skips otherwise).
package netnstest

import (
	"os"
	"testing"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/lab/netns"
)

// Require checks that the test can build namespaces (it runs as root) and
// ends it through testkit.Unavailable otherwise.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		testkit.Unavailable(t, "network namespaces need root (euid %d)", os.Geteuid())
	}
}

// New creates a namespace named prefix-netns.Suffix() for a test and
// deletes it in t.Cleanup; a failure to create it goes to
// testkit.Unavailable.
func New(t testing.TB, prefix string) *netns.NS {
	t.Helper()
	Require(t)
	n, err := netns.New(prefix + "-" + netns.Suffix())
	testkit.Require(t, "create a network namespace", err)
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("netns teardown: %v", err)
		}
	})
	return n
}

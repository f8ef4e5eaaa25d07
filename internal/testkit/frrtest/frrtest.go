// Package frrtest holds what the kits that run FRR daemons in a test's
// network namespace share (ospftest, bgpdtest): the directories the
// daemons write once they dropped privileges to the frr user.
package frrtest

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/lab/netns"
)

// Dir makes the directory for the daemons' configuration, sockets, pid
// files and logs (a temporary one named prefix-<namespace>-*) and
// /var/run/frr/<ns.Name>, where -N <ns.Name> puts their other default
// paths, both owned by the frr user (the daemons drop privileges to it;
// root is not in the frrvty group) and removed when the test ends. It
// returns the first. A missing frr user goes to testkit.Unavailable.
func Dir(t testing.TB, ns *netns.NS, prefix string) string {
	t.Helper()
	u, err := user.Lookup("frr")
	if err != nil {
		testkit.Unavailable(t, "no frr user (scripts/deps.sh bgpd installs frr): %v", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		t.Fatalf("frr user: uid %q gid %q", u.Uid, u.Gid)
	}
	dir, err := os.MkdirTemp("", prefix+"-"+ns.Name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	run := filepath.Join("/var/run/frr", ns.Name)
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(run) })
	for _, d := range []string{dir, run} {
		if err := os.Chown(d, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

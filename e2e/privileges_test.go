package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/router"
)

// The capability sets of docs/operating-privileges.md: what an xTR is
// started with, what it keeps once running; a Map-Server/Map-Resolver
// needs none.
var (
	xtrStartCaps   = router.Caps(router.CapNetAdmin, router.CapNetRaw, router.CapBPF, router.CapPerfmon, router.CapIPCLock)
	xtrRunningCaps = router.Caps(router.CapNetAdmin)
)

// unprivileged is the uid and gid rlocd runs as (nobody).
const unprivileged = 65534

// TestLeastPrivilege runs the demo network (Map-Server, two xTRs, the PxTR
// with its non-LISP site) with rlocd started by setpriv as uid nobody with exactly the documented
// capabilities (none for the Map-Server), in bounding, inheritable and
// ambient sets alike, and under the unit's SystemCallFilter (seccomp, see
// seccomp_test.go): registration, IPv4 and IPv6 pings through the
// overlay and to the non-LISP site through the PxTR, a SIGHUP reload and a graceful stop (XDP detached) still work,
// and once started each daemon's CapEff is the documented running set.
func TestLeastPrivilege(t *testing.T) {
	setpriv, err := exec.LookPath("setpriv")
	testkit.Require(t, "setpriv (util-linux)", err)
	// Capabilities are per thread: only a binary without cgo can change
	// all of its threads (router.KeepCapabilities).
	t.Setenv("CGO_ENABLED", "0")
	n := newNetwork(t)
	// nobody must reach the binary, the configurations and the sockets.
	for _, d := range []string{filepath.Dir(n.dir), n.dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(n.dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	rlocd := n.rlocd
	filter := strings.Join(seccompWrapper(t), " ")
	wrap := func(name string, caps router.CapSet) string {
		set := "-all"
		if s := caps.String(); s != "" {
			set += ",+" + strings.ReplaceAll(strings.ReplaceAll(s, "cap_", ""), ",", ",+")
		}
		script := fmt.Sprintf("#!/bin/sh\nexec %s %s --reuid=%d --regid=%d --clear-groups --inh-caps=%s --ambient-caps=%s --bounding-set=%s -- %s \"$@\"\n",
			filter, setpriv, unprivileged, unprivileged, set, set, set, rlocd)
		f := filepath.Join(n.dir, name)
		if err := os.WriteFile(f, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		return f
	}
	n.rlocd = wrap("rlocd-nocaps", 0)
	n.start("msmr", msmrYAML("4s"))
	n.rlocd = wrap("rlocd-xtr", xtrStartCaps)
	n.start("xtr1", xtrYAML("xtr1", "1", "key-one", "0s"))
	n.start("xtr2", xtrYAML("xtr2", "2", "key-two", "0s"))
	n.start("pxtr", pxtrYAML)

	n.waitFor(10*time.Second, "4 registrations", func() bool { return len(n.registrations()) == 4 })
	for _, dst := range []netip.Addr{h2v4, h2v6} {
		if got, err := n.lab.Ping("h1", dst, 5, 2*time.Second); err != nil || got != 5 {
			t.Fatalf("h1 -> %s through unprivileged xTRs: %d/5 replies, %v", dst, got, err)
		}
	}
	// The non-LISP site: xtr1 sends to the PxTR as PETR (a negative
	// reply), the answers come back through it as PITR.
	for _, dst := range []netip.Addr{nlv4, nlv6} {
		if got, err := n.lab.Ping("h1", dst, 3, 2*time.Second); err != nil || got != 3 {
			t.Fatalf("h1 -> %s through the unprivileged PxTR: %d/3 replies, %v", dst, got, err)
		}
	}
	if st := n.stats("pxtr"); st.Fastpath["decap"] < 6 || st.Fastpath["encap"] < 6 {
		t.Fatalf("pxtr decapsulated %d and encapsulated %d packets, want >= 6 each (PETR and PITR)", st.Fastpath["decap"], st.Fastpath["encap"])
	}
	for node, want := range map[string]router.CapSet{"msmr": 0, "xtr1": xtrRunningCaps, "xtr2": xtrRunningCaps, "pxtr": xtrRunningCaps} {
		eff, uid := procCaps(t, n.procs[node].Cmd.Process.Pid)
		if eff != want || uid != unprivileged {
			t.Errorf("%s runs as uid %d with CapEff %q, want uid %d with %q", node, uid, eff, unprivileged, want)
		}
	}

	// SIGHUP: the reload reads the file and swaps tables, nothing that
	// needs a capability.
	if err := n.procs["xtr1"].Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	n.waitFor(5*time.Second, "xtr1 reload", func() bool {
		b, _ := os.ReadFile(n.logFile("xtr1"))
		if strings.Contains(string(b), "reload failed") {
			t.Fatalf("reload failed without privileges:\n%s", tail(string(b), 10))
		}
		return strings.Contains(string(b), "configuration reloaded")
	})
	// A graceful stop detaches the XDP programs with what was kept.
	n.stop("xtr1", true)
	if b, _ := os.ReadFile(n.logFile("xtr1")); strings.Contains(string(b), "level=WARN") {
		t.Errorf("xtr1 warned:\n%s", tail(string(b), 10))
	}
	for _, ifc := range []string{"site0", "core0"} {
		out, err := n.lab.Exec("xtr1", "ip", "link", "show", "dev", ifc)
		if err != nil || strings.Contains(string(out), "xdp") {
			t.Errorf("xtr1 %s after stop: %v\n%s", ifc, err, out)
		}
	}
}

// procCaps reads the effective capabilities and real uid of process pid,
// which must be rlocd (ip netns exec and setpriv exec it in place).
func procCaps(t *testing.T, pid int) (router.CapSet, int) {
	t.Helper()
	if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(b)) != "rlocd" {
		t.Fatalf("process %d is %q, not rlocd", pid, strings.TrimSpace(string(b)))
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var eff router.CapSet
	uid := -1
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		switch {
		case k == "CapEff" && len(f) == 1:
			x, err := strconv.ParseUint(f[0], 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			eff = router.CapSet(x)
		case k == "Uid" && len(f) > 0:
			uid, _ = strconv.Atoi(f[0])
		}
	}
	return eff, uid
}

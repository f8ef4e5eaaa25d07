package lab

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/internal/testkit/netnstest"
	"github.com/rloc-router/rloc/lab/netns"
)

// upT brings topo up and tears it down in t.Cleanup.
func upT(t *testing.T, topo *Topology) *Lab {
	t.Helper()
	l, err := topo.Up(t.Context())
	if err != nil {
		if strings.Contains(err.Error(), "operation not permitted") {
			testkit.Unavailable(t, "%v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Errorf("Down: %v", err)
		}
	})
	return l
}

// assertGone fails when a namespace of run id still exists.
func assertGone(t *testing.T, id string) {
	t.Helper()
	left, err := Namespaces(NamePrefix + id + "-")
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("namespaces left behind: %v", left)
	}
}

func TestUpPingDown(t *testing.T) {
	netnstest.Require(t)
	topo, err := Parse([]byte(small))
	if err != nil {
		t.Fatal(err)
	}
	l := upT(t, topo)
	ns, err := Namespaces(NamePrefix + l.ID() + "-")
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 4 { // a, r, b and the bridge segment
		t.Fatalf("namespaces of the run: %v, want 4", ns)
	}
	if _, err := os.Stat(l.StateFile()); err != nil {
		t.Fatalf("state file: %v", err)
	}
	for _, dst := range []string{"10.0.2.2", "2001:db8:2::2", "10.0.1.1"} {
		n, err := l.Ping("a", netip.MustParseAddr(dst), 3, 2*time.Second)
		if err != nil || n != 3 {
			t.Errorf("ping a -> %s: %d of 3 replies, %v", dst, n, err)
		}
	}
	n, err := l.Ping("b", netip.MustParseAddr("10.0.1.2"), 2, 2*time.Second)
	if err != nil || n != 2 {
		t.Errorf("ping b -> a: %d of 2, %v", n, err)
	}
	// An address nobody has: no replies, no error.
	n, err = l.Ping("a", netip.MustParseAddr("10.0.2.99"), 2, 300*time.Millisecond)
	if err != nil || n != 0 {
		t.Errorf("ping to nowhere: %d replies, %v", n, err)
	}
	if _, err := l.Ping("nobody", netip.MustParseAddr("10.0.2.2"), 1, time.Second); err == nil {
		t.Error("ping from an unknown node succeeded")
	}
	out, err := l.Exec("r", "cat", "/proc/sys/net/ipv4/ip_forward")
	if err != nil || strings.TrimSpace(string(out)) != "1" {
		t.Errorf("ip_forward in r: %q, %v", out, err)
	}
	out, err = l.Exec("a", "ip", "-6", "addr", "show", "dev", "eth0")
	if err != nil || strings.Contains(string(out), "tentative") || !strings.Contains(string(out), "2001:db8:1::2/64") {
		t.Errorf("a's IPv6 address tentative or missing: %s %v", out, err)
	}
	out, err = l.Exec("core", "cat", "/sys/class/net/br0/bridge/multicast_snooping")
	if err != nil || strings.TrimSpace(string(out)) != "0" {
		t.Errorf("bridge multicast snooping: %q, %v", out, err)
	}
	p, err := l.Start("b", "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Down(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	default:
		t.Error("process started in b still runs after Down")
	}
	assertGone(t, l.ID())
	if _, err := os.Stat(l.StateFile()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file after Down: %v", err)
	}
	if err := l.Down(); err != nil {
		t.Errorf("second Down: %v", err)
	}
	if _, err := l.Start("a", "true"); err == nil {
		t.Error("Start after Down succeeded")
	}
}

// TestUpFailureRollsBack injects a route through a gateway no interface
// reaches: Up must fail naming the node and leave nothing behind.
func TestUpFailureRollsBack(t *testing.T) {
	netnstest.Require(t)
	doc := strings.Replace(small, "      - {to: 10.0.1.0/24, via: 10.0.2.1}\n",
		"      - {to: 10.0.1.0/24, via: 10.0.2.1}\n      - {to: 10.9.0.0/16, via: 10.77.0.1}\n", 1)
	topo, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	id := "f" + netns.Suffix()
	l, err := topo.UpWith(t.Context(), Options{ID: id})
	if err == nil {
		l.Down()
		t.Fatal("Up with an unreachable gateway succeeded")
	}
	if !strings.Contains(err.Error(), `node "b"`) || !strings.Contains(err.Error(), "10.9.0.0/16") {
		t.Errorf("error %q does not name the node and route", err)
	}
	if _, err := os.Stat(StatePath(id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file after a failed Up: %v", err)
	}
	assertGone(t, id)
}

// TestUpCancelled checks that a cancelled context stops Up and rolls back.
func TestUpCancelled(t *testing.T) {
	netnstest.Require(t)
	topo, err := Parse([]byte(small))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	id := "c" + netns.Suffix()
	if _, err := topo.UpWith(ctx, Options{ID: id}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Up with a cancelled context: %v", err)
	}
	assertGone(t, id)
	if _, err := os.Stat(StatePath(id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file after a cancelled Up: %v", err)
	}
}

func TestTwoRunsOfOneFile(t *testing.T) {
	netnstest.Require(t)
	topo, err := Parse([]byte(small))
	if err != nil {
		t.Fatal(err)
	}
	var labs [2]*Lab
	var errs [2]error
	var wg sync.WaitGroup
	for i := range labs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			labs[i], errs[i] = topo.Up(t.Context())
		}()
	}
	wg.Wait()
	for i, l := range labs {
		if l != nil {
			t.Cleanup(func() { l.Down() })
		}
		if errs[i] != nil {
			t.Fatalf("run %d: %v", i, errs[i])
		}
	}
	if labs[0].ID() == labs[1].ID() {
		t.Fatalf("both runs have ID %s", labs[0].ID())
	}
	for i, l := range labs {
		n, err := l.Ping("a", netip.MustParseAddr("10.0.2.2"), 2, 2*time.Second)
		if err != nil || n != 2 {
			t.Errorf("run %d: ping a -> b: %d of 2, %v", i, n, err)
		}
	}
	// A chosen ID already in use is refused without harming the first run.
	if _, err := topo.UpWith(t.Context(), Options{ID: labs[0].ID()}); err == nil {
		t.Error("second run with the same ID succeeded")
	}
	if n, _ := labs[0].Ping("a", netip.MustParseAddr("10.0.2.2"), 1, 2*time.Second); n != 1 {
		t.Error("first run broken by the refused duplicate")
	}
	for _, l := range labs {
		if err := l.Down(); err != nil {
			t.Error(err)
		}
		assertGone(t, l.ID())
	}
}

// TestDownStateAndClean tears a run down from its state file, and cleans a
// run whose owner died.
func TestDownStateAndClean(t *testing.T) {
	netnstest.Require(t)
	topo, err := Parse([]byte(small))
	if err != nil {
		t.Fatal(err)
	}
	l1 := upT(t, topo)
	if _, err := l1.Start("r", "sleep", "60"); err != nil {
		t.Fatal(err)
	}
	if err := DownState(l1.StateFile()); err != nil {
		t.Fatal(err)
	}
	assertGone(t, l1.ID())

	// A run whose owner is gone: rewrite its state file with a dead PID.
	l2 := upT(t, topo)
	l3 := upT(t, topo) // alive, must survive
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	s, err := ReadState(l2.StateFile())
	if err != nil {
		t.Fatal(err)
	}
	if !s.Alive() {
		t.Fatal("state of a live run reports its owner dead")
	}
	s.PID = dead.Process.Pid
	os.Remove(l2.StateFile())
	if _, err := writeState(s); err != nil {
		t.Fatal(err)
	}
	// An orphan namespace with our prefix and no state file.
	orphan, err := netns.New(NamePrefix + "o" + netns.Suffix() + "-x")
	if err != nil {
		t.Fatal(err)
	}
	defer orphan.Close()
	removed, err := Clean(false)
	if err != nil {
		t.Fatal(err)
	}
	assertGone(t, l2.ID())
	if !containsAll(removed, orphan.Name, l2.NSName("a"), l2.NSName("core")) {
		t.Errorf("Clean removed %v", removed)
	}
	if n, err := l3.Ping("a", netip.MustParseAddr("10.0.2.2"), 1, 2*time.Second); n != 1 {
		t.Errorf("live run damaged by Clean: %v", err)
	}
	if _, err := os.Stat(l3.StateFile()); err != nil {
		t.Errorf("live run's state file: %v", err)
	}
}

func containsAll(have []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

func TestCapture(t *testing.T) {
	netnstest.Require(t)
	if _, err := CaptureTool(); err != nil {
		testkit.Unavailable(t, "%v", err)
	}
	if _, err := exec.LookPath("tshark"); err != nil {
		testkit.Unavailable(t, "tshark missing to read the capture")
	}
	topo, err := Parse([]byte(small))
	if err != nil {
		t.Fatal(err)
	}
	l := upT(t, topo)
	for _, tool := range captureTools {
		t.Run(tool, func(t *testing.T) {
			if _, err := exec.LookPath(tool); err != nil {
				t.Skipf("%s not installed (the other tool is tested)", tool)
			}
			file := filepath.Join(t.TempDir(), "c.pcap")
			c, err := l.capture(tool, "b", "core0", "icmp", file)
			if err != nil {
				t.Fatal(err)
			}
			if n, err := l.Ping("a", netip.MustParseAddr("10.0.2.2"), 3, 2*time.Second); n != 3 {
				t.Fatalf("ping: %d, %v", n, err)
			}
			if err := c.Stop(); err != nil {
				t.Fatal(err)
			}
			if n, ok := c.KernelDrops(); !ok || n != 0 {
				t.Errorf("kernel drops %d (reported: %v), want 0 reported (exit summary %q)", n, ok, c.summary)
			}
			out, err := exec.Command("tshark", "-n", "-r", file, "-T", "fields", "-e", "icmp.type").Output()
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Count(string(out), "8\n"); got != 3 {
				t.Errorf("capture holds %d echo requests, want 3:\n%s", got, out)
			}
		})
	}
}

// TestDemoUnderlay brings up the demo topology and checks what the demo
// relies on: every direct neighbour answers (IPv4 and IPv6), the underlay
// joins the xTRs, the PxTR and the Map-Server, and no EID or non-LISP
// prefix is reachable natively (only LISP may carry that traffic).
func TestDemoUnderlay(t *testing.T) {
	netnstest.Require(t)
	topo, err := Load("../configs/lab/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l := upT(t, topo)
	reach := []struct {
		from, to string
		want     int
	}{
		{"h1", "10.1.0.1", 2}, {"h1", "2001:db8:1::1", 2},
		{"h2", "10.2.0.1", 2}, {"nl", "198.51.100.1", 2}, {"nl", "2001:db8:100::1", 2},
		{"xtr1", "192.0.2.2", 2}, {"xtr1", "192.0.2.100", 2}, {"xtr2", "192.0.2.3", 2},
		{"xtr1", "2001:db8:ff::2", 2}, {"pxtr", "2001:db8:ff::100", 2},
		// Nothing native between sites, or between sites and the non-LISP host.
		{"h1", "10.2.0.10", 0}, {"h1", "2001:db8:2::10", 0}, {"h2", "198.51.100.10", 0},
		{"nl", "10.1.0.10", 0}, {"xtr1", "10.2.0.10", 0}, {"xtr1", "198.51.100.10", 0},
	}
	var wg sync.WaitGroup
	for _, r := range reach {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := l.Ping(r.from, netip.MustParseAddr(r.to), 2, time.Second)
			if err != nil && r.want > 0 {
				t.Errorf("ping %s -> %s: %v", r.from, r.to, err)
			}
			if n != r.want {
				t.Errorf("ping %s -> %s: %d replies, want %d", r.from, r.to, n, r.want)
			}
		}()
	}
	wg.Wait()
	out, err := l.Exec("xtr1", "cat", "/sys/class/net/core0/mtu")
	if err != nil || strings.TrimSpace(string(out)) != "1600" {
		t.Errorf("core0 MTU %q, %v", out, err)
	}
	x, _ := topo.Node("xtr1")
	if x.Role["rlocd"] != "configs/demo/xtr1.yaml" {
		t.Errorf("xtr1 role %v", x.Role)
	}
}

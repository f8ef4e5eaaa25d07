package nexthop

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// needRoot fails under CI and skips otherwise when namespaces can't be made.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI: this test needs root (network namespaces, veth)")
	}
	t.Skip("needs root to create network namespaces and veth pairs")
}

// newNS creates an unnamed network namespace without leaving the calling
// thread in it.
func newNS(t *testing.T) netns.NsHandle {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("current netns: %v", err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		runtime.UnlockOSThread()
		if os.Getenv("CI") == "" {
			t.Skipf("cannot create a network namespace: %v", err)
		}
		t.Fatalf("create netns: %v", err)
	}
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: it dies with the goroutine.
		ns.Close()
		t.Fatalf("restore netns: %v", err)
	}
	runtime.UnlockOSThread()
	t.Cleanup(func() { ns.Close() })
	return ns
}

func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last state: %s", what, last)
}

func resolveIs(tab *Table, dst string, want AdjStatus, mac net.HardwareAddr) func() (bool, string) {
	return func() (bool, string) {
		adj, st := tab.Resolve(netip.MustParseAddr(dst))
		ok := st == want
		if ok && mac != nil {
			ok = net.HardwareAddr(adj.DstMAC[:]).String() == mac.String()
		}
		return ok, fmt.Sprintf("%s: %v %+v", dst, st, adj)
	}
}

func TestWatcherNamespace(t *testing.T) {
	needRoot(t)
	nsA, nsB := newNS(t), newNS(t)
	hA, err := netlink.NewHandleAt(nsA)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hA.Close)
	hB, err := netlink.NewHandleAt(nsB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hB.Close)

	sfx := fmt.Sprintf("%d%d", os.Getpid()%100000, time.Now().UnixNano()%1000)
	nameA, nameB := "nbA"+sfx, "nbB"+sfx
	if err := hA.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: nameA}, PeerName: nameB,
		PeerNamespace: netlink.NsFd(nsB)}); err != nil {
		t.Fatalf("veth: %v", err)
	}
	t.Cleanup(func() {
		if l, err := hA.LinkByName(nameA); err == nil {
			hA.LinkDel(l)
		}
	})
	lA, err := hA.LinkByName(nameA)
	if err != nil {
		t.Fatal(err)
	}
	lB, err := hB.LinkByName(nameB)
	if err != nil {
		t.Fatal(err)
	}
	macB := lB.Attrs().HardwareAddr
	mustAddr := func(h *netlink.Handle, l netlink.Link, cidr string) {
		a, err := netlink.ParseAddr(cidr)
		if err != nil {
			t.Fatal(err)
		}
		a.Flags = unix.IFA_F_NODAD
		if err := h.AddrAdd(l, a); err != nil {
			t.Fatalf("addr %s: %v", cidr, err)
		}
	}
	mustAddr(hA, lA, "10.77.0.1/24")
	mustAddr(hB, lB, "10.77.0.2/24")
	mustAddr(hA, lA, "2001:db8:77::1/64")
	mustAddr(hB, lB, "2001:db8:77::2/64")
	for _, x := range []struct {
		h *netlink.Handle
		l netlink.Link
	}{{hA, lA}, {hB, lB}} {
		if err := x.h.LinkSetUp(x.l); err != nil {
			t.Fatal(err)
		}
	}
	route := func(dst, gw string) *netlink.Route {
		_, n, err := net.ParseCIDR(dst)
		if err != nil {
			t.Fatal(err)
		}
		return &netlink.Route{LinkIndex: lA.Attrs().Index, Dst: n, Gw: net.ParseIP(gw)}
	}
	if err := hA.RouteAdd(route("192.0.2.0/24", "10.77.0.2")); err != nil {
		t.Fatalf("route: %v", err)
	}

	var tab Table
	w, err := NewWatcher(WatcherConfig{Links: []string{nameA}, Namespace: &nsA, Table: &tab, RetryInterval: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(tWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	var runErr error
	go func() {
		defer wg.Done()
		runErr = w.Run(ctx)
	}()
	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() {
			cancel()
			wg.Wait()
			if runErr != nil {
				t.Errorf("Run: %v", runErr)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case <-w.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("watcher not ready")
	}

	// The gateway of an existing route gets resolved (managed neighbour):
	// the table ends up with the peer's MAC.
	waitFor(t, "gateway 10.77.0.2 resolved", resolveIs(&tab, "192.0.2.1", AdjResolved, macB))
	adj, _ := tab.Resolve(netip.MustParseAddr("192.0.2.1"))
	if adj.Port != 0 || adj.IfIndex != int32(lA.Attrs().Index) || net.HardwareAddr(adj.SrcMAC[:]).String() != lA.Attrs().HardwareAddr.String() {
		t.Fatalf("adjacency %+v: wrong port, ifindex or source MAC", adj)
	}
	// Connected: the peer itself resolves, an unknown host on the subnet
	// needs resolution, and an address with no route has none.
	waitFor(t, "connected peer", resolveIs(&tab, "10.77.0.2", AdjResolved, macB))
	waitFor(t, "unknown neighbour", resolveIs(&tab, "10.77.0.99", AdjIncomplete, nil))
	waitFor(t, "no route", resolveIs(&tab, "203.0.113.1", AdjNoRoute, nil))

	// A neighbour and a route added later appear.
	mac50, _ := net.ParseMAC("02:00:00:00:00:50")
	if err := hA.NeighAdd(&netlink.Neigh{LinkIndex: lA.Attrs().Index, Family: netlink.FAMILY_V4,
		IP: net.ParseIP("10.77.0.50"), HardwareAddr: mac50, State: netlink.NUD_PERMANENT}); err != nil {
		t.Fatalf("neigh add: %v", err)
	}
	if err := hA.RouteAdd(route("198.51.100.0/24", "10.77.0.50")); err != nil {
		t.Fatalf("route add: %v", err)
	}
	waitFor(t, "new route via new neighbour", resolveIs(&tab, "198.51.100.7", AdjResolved, mac50))

	// IPv6 through the peer.
	if err := hA.RouteAdd(route("2001:db8:99::/48", "2001:db8:77::2")); err != nil {
		t.Fatalf("route6 add: %v", err)
	}
	waitFor(t, "IPv6 gateway resolved", resolveIs(&tab, "2001:db8:99::1", AdjResolved, macB))

	// A deleted route disappears.
	if err := hA.RouteDel(route("198.51.100.0/24", "10.77.0.50")); err != nil {
		t.Fatalf("route del: %v", err)
	}
	waitFor(t, "deleted route gone", resolveIs(&tab, "198.51.100.7", AdjNoRoute, nil))

	// Carrier loss (the peer goes down, our end stays admin-up with its
	// routes and permanent neighbours): nothing resolves through it.
	if err := hB.LinkSetDown(lB); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "carrier down", resolveIs(&tab, "192.0.2.1", AdjNoRoute, nil))

	// Stopping removes the managed neighbours the watcher installed and
	// leaves the administrator's entries alone.
	stop()
	list, err := hA.NeighList(0, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	perm := false
	for _, n := range list {
		if n.FlagsExt&netlink.NTF_EXT_MANAGED != 0 {
			t.Errorf("managed neighbour %v left behind", n.IP)
		}
		perm = perm || n.IP.Equal(net.ParseIP("10.77.0.50"))
	}
	if !perm {
		t.Error("the permanent neighbour added by the test was removed")
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := NewWatcher(WatcherConfig{}); err == nil {
		t.Error("nil table accepted")
	}
	if _, err := NewWatcher(WatcherConfig{Table: new(Table), Links: []string{"a-name-longer-than-15"}}); err == nil {
		t.Error("long interface name accepted")
	}
}

// tWriter sends log lines to the test log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}

package nexthop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/internal/testkit/netnstest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// newNS creates an unnamed network namespace without leaving the calling
// thread in it.
func newNS(t testing.TB) netns.NsHandle {
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
		testkit.Require(t, "create a network namespace", err)
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

func resolveIs(tab *Table, dst string, want AdjStatus, mac net.HardwareAddr) func() error {
	return func() error {
		adj, st := tab.Resolve(netip.MustParseAddr(dst))
		ok := st == want
		if ok && mac != nil {
			ok = net.HardwareAddr(adj.DstMAC[:]).String() == mac.String()
		}
		if ok {
			return nil
		}
		return fmt.Errorf("%s: %v %+v", dst, st, adj)
	}
}

func TestWatcherNamespace(t *testing.T) {
	netnstest.Require(t)
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
	testkit.WaitFor(t, "gateway 10.77.0.2 resolved", resolveIs(&tab, "192.0.2.1", AdjResolved, macB))
	adj, _ := tab.Resolve(netip.MustParseAddr("192.0.2.1"))
	if adj.Port != 0 || adj.IfIndex != int32(lA.Attrs().Index) || net.HardwareAddr(adj.SrcMAC[:]).String() != lA.Attrs().HardwareAddr.String() {
		t.Fatalf("adjacency %+v: wrong port, ifindex or source MAC", adj)
	}
	// Connected: the peer itself resolves, an unknown host on the subnet
	// needs resolution, and an address with no route has none.
	testkit.WaitFor(t, "connected peer", resolveIs(&tab, "10.77.0.2", AdjResolved, macB))
	testkit.WaitFor(t, "unknown neighbour", resolveIs(&tab, "10.77.0.99", AdjIncomplete, nil))
	testkit.WaitFor(t, "no route", resolveIs(&tab, "203.0.113.1", AdjNoRoute, nil))

	// A neighbour and a route added later appear.
	mac50, _ := net.ParseMAC("02:00:00:00:00:50")
	if err := hA.NeighAdd(&netlink.Neigh{LinkIndex: lA.Attrs().Index, Family: netlink.FAMILY_V4,
		IP: net.ParseIP("10.77.0.50"), HardwareAddr: mac50, State: netlink.NUD_PERMANENT}); err != nil {
		t.Fatalf("neigh add: %v", err)
	}
	if err := hA.RouteAdd(route("198.51.100.0/24", "10.77.0.50")); err != nil {
		t.Fatalf("route add: %v", err)
	}
	testkit.WaitFor(t, "new route via new neighbour", resolveIs(&tab, "198.51.100.7", AdjResolved, mac50))

	// The kernel announcing that neighbour again in another usable state,
	// with the same MAC, publishes nothing; a new MAC does.
	pubs, events := w.publishes.Load(), w.events.Load()
	neigh50 := func(state int, mac net.HardwareAddr) *netlink.Neigh {
		return &netlink.Neigh{LinkIndex: lA.Attrs().Index, Family: netlink.FAMILY_V4,
			IP: net.ParseIP("10.77.0.50"), HardwareAddr: mac, State: state}
	}
	if err := hA.NeighSet(neigh50(netlink.NUD_REACHABLE, mac50)); err != nil {
		t.Fatalf("neigh set: %v", err)
	}
	testkit.WaitFor(t, "the neighbour's event applied", func() error {
		if w.events.Load() == events {
			return fmt.Errorf("no event after %d", events)
		}
		return nil
	})
	if got := w.publishes.Load(); got != pubs {
		t.Errorf("%d snapshots published for a neighbour whose MAC and usability did not change", got-pubs)
	}
	mac51, _ := net.ParseMAC("02:00:00:00:00:51")
	if err := hA.NeighSet(neigh50(netlink.NUD_PERMANENT, mac51)); err != nil {
		t.Fatalf("neigh set: %v", err)
	}
	testkit.WaitFor(t, "the neighbour's new MAC", resolveIs(&tab, "198.51.100.7", AdjResolved, mac51))

	// A new host on the link is published, in a snapshot that keeps every
	// resolved adjacency: the Table does not call its OnStore function.
	var moves atomic.Uint64
	tab.OnStore(func(*Snapshot) { moves.Add(1) })
	mac60, _ := net.ParseMAC("02:00:00:00:00:60")
	if err := hA.NeighAdd(&netlink.Neigh{LinkIndex: lA.Attrs().Index, Family: netlink.FAMILY_V4,
		IP: net.ParseIP("10.77.0.60"), HardwareAddr: mac60, State: netlink.NUD_REACHABLE}); err != nil {
		t.Fatalf("neigh add: %v", err)
	}
	testkit.WaitFor(t, "the new host", resolveIs(&tab, "10.77.0.60", AdjResolved, mac60))
	if n := moves.Load(); n != 0 || !tab.Load().KeepsResolved() {
		t.Errorf("a new neighbour: OnStore called %d times, snapshot KeepsResolved %v", n, tab.Load().KeepsResolved())
	}
	// The host goes: the snapshot names its MAC as lost, and nothing else.
	var lostSnap atomic.Pointer[Snapshot]
	tab.OnStore(func(s *Snapshot) { lostSnap.Store(s) })
	if err := hA.NeighDel(&netlink.Neigh{LinkIndex: lA.Attrs().Index, Family: netlink.FAMILY_V4, IP: net.ParseIP("10.77.0.60")}); err != nil {
		t.Fatalf("neigh del: %v", err)
	}
	testkit.WaitFor(t, "the host's deletion", func() error {
		if lostSnap.Load() == nil {
			return errors.New("no snapshot stored that may change an adjacency")
		}
		return nil
	})
	if ls, ok := lostSnap.Load().Lost(); !ok || !slices.Equal(ls, []LinkDest{{IfIndex: int32(lA.Attrs().Index), MAC: [6]byte(mac60)}}) {
		t.Errorf("the host's deletion: a snapshot that lost %v (precise %v), want its MAC on %s alone", ls, ok, lA.Attrs().Name)
	}
	tab.OnStore(nil)

	// MarkUsed marks the entries of the destinations it is given used, as
	// the kernel's forwarding would: a STALE one is probed again (DELAY);
	// another STALE one stays as it is, and a PERMANENT one at the marked
	// MAC is left alone.
	mac61, mac62 := net.HardwareAddr{2, 0, 0, 0, 0, 0x61}, net.HardwareAddr{2, 0, 0, 0, 0, 0x62}
	for _, n := range []struct {
		ip    string
		mac   net.HardwareAddr
		state int
	}{{"10.77.0.61", mac61, netlink.NUD_STALE}, {"10.77.0.62", mac62, netlink.NUD_STALE}, {"10.77.0.63", mac61, netlink.NUD_PERMANENT}} {
		if err := hA.NeighAdd(&netlink.Neigh{LinkIndex: lA.Attrs().Index, Family: netlink.FAMILY_V4,
			IP: net.ParseIP(n.ip), HardwareAddr: n.mac, State: n.state}); err != nil {
			t.Fatalf("neigh add: %v", err)
		}
	}
	testkit.WaitFor(t, "the STALE hosts", resolveIs(&tab, "10.77.0.62", AdjResolved, mac62))
	testkit.WaitFor(t, "the static host", resolveIs(&tab, "10.77.0.63", AdjResolved, mac61))
	stateOf := func(ip string) int {
		list, err := hA.NeighList(lA.Attrs().Index, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range list {
			if n.IP.Equal(net.ParseIP(ip)) {
				return n.State
			}
		}
		return -1
	}
	w.MarkUsed([]LinkDest{{IfIndex: int32(lA.Attrs().Index), MAC: [6]byte(mac61)}, {IfIndex: int32(lA.Attrs().Index) + 1000, MAC: [6]byte(mac62)}})
	testkit.WaitFor(t, "10.77.0.61 probed again", func() error {
		if s := stateOf("10.77.0.61"); s == netlink.NUD_STALE || s < 0 {
			return fmt.Errorf("state %#x", s)
		}
		return nil
	})
	if s, n := stateOf("10.77.0.62"), w.marked.Load(); s != netlink.NUD_STALE || n != 1 {
		t.Errorf("10.77.0.62 (its MAC named on another interface): state %#x, want STALE; %d entries marked, want 1", s, n)
	}
	if s := stateOf("10.77.0.63"); s != netlink.NUD_PERMANENT {
		t.Errorf("10.77.0.63, static, at a MAC marked used: state %#x, want PERMANENT (a mark of use strips it)", s)
	}

	// IPv6 through the peer.
	if err := hA.RouteAdd(route("2001:db8:99::/48", "2001:db8:77::2")); err != nil {
		t.Fatalf("route6 add: %v", err)
	}
	testkit.WaitFor(t, "IPv6 gateway resolved", resolveIs(&tab, "2001:db8:99::1", AdjResolved, macB))

	// A deleted route disappears.
	if err := hA.RouteDel(route("198.51.100.0/24", "10.77.0.50")); err != nil {
		t.Fatalf("route del: %v", err)
	}
	testkit.WaitFor(t, "deleted route gone", resolveIs(&tab, "198.51.100.7", AdjNoRoute, nil))

	// Carrier loss (the peer goes down, our end stays admin-up with its
	// routes and permanent neighbours): nothing resolves through it.
	if err := hB.LinkSetDown(lB); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "carrier down", resolveIs(&tab, "192.0.2.1", AdjNoRoute, nil))

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

// vethNS returns a new namespace, a handle in it and the first end of a
// veth pair in it (both ends up, the first with address cidr), its names
// starting with prefix. Test cleanup removes them.
func vethNS(t testing.TB, prefix, cidr string) (netns.NsHandle, *netlink.Handle, netlink.Link) {
	t.Helper()
	netnstest.Require(t)
	ns := newNS(t)
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	sfx := fmt.Sprintf("%d%d", os.Getpid()%100000, time.Now().UnixNano()%1000)
	name, peer := prefix+"A"+sfx, prefix+"B"+sfx
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer}); err != nil {
		t.Fatalf("veth: %v", err)
	}
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.LinkDel(l) })
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	a.Flags = unix.IFA_F_NODAD
	if err := h.AddrAdd(l, a); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{name, peer} {
		x, err := h.LinkByName(n)
		if err == nil {
			err = h.LinkSetUp(x)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if l, err = h.LinkByName(name); err != nil {
		t.Fatal(err)
	}
	return ns, h, l
}

// runWatcher runs w until the end of the test and waits for its first
// snapshot.
func runWatcher(t testing.TB, w *Watcher) {
	t.Helper()
	runWatcherWithin(t, w, 10*time.Second)
}

// runWatcherWithin is runWatcher waiting up to d for the first snapshot.
func runWatcherWithin(t testing.TB, w *Watcher, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-w.Ready():
	case <-time.After(d):
		t.Fatal("watcher not ready")
	}
}

// TestWatcherOverflow: an event storm that overflows the watcher's netlink
// sockets (here 20,000 changes of one neighbour's MAC while the watcher is
// held, against buffers of 256 KiB) loses no state: the watcher sees its subscription fail, starts over
// from a fresh dump (counted in Resyncs), and its table ends up with what
// the kernel holds, the last MAC and the route the watcher was publishing.
func TestWatcherOverflow(t *testing.T) {
	ns, h, l := vethNS(t, "no", "10.79.0.1/24")
	var tab Table
	w, err := NewWatcher(WatcherConfig{Links: []string{l.Attrs().Name}, Namespace: &ns, Table: &tab,
		Logger: slog.New(slog.NewTextHandler(tWriter{t}, nil)), ReceiveBuffer: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	runWatcher(t, w)

	// A route change makes the watcher publish a snapshot that may change
	// any adjacency, which the Table hands to OnStore: held there, the
	// watcher reads no event.
	held, release := make(chan struct{}), make(chan struct{})
	var once, released sync.Once
	tab.OnStore(func(*Snapshot) { once.Do(func() { close(held); <-release }) })
	free := func() { released.Do(func() { close(release) }) }
	t.Cleanup(free) // before the watcher's own cleanup: it runs first
	_, dst, _ := net.ParseCIDR("198.18.0.0/24")
	if err := h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst, Gw: net.ParseIP("10.79.0.2")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the route's snapshot did not reach OnStore")
	}
	const storm = 20000
	mac := func(i int) net.HardwareAddr { return net.HardwareAddr{2, 0, 0x79, 0, byte(i >> 8), byte(i)} }
	for i := range storm {
		if err := h.NeighSet(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: netlink.FAMILY_V4, IP: net.ParseIP("10.79.0.2"),
			HardwareAddr: mac(i), State: netlink.NUD_PERMANENT}); err != nil {
			t.Fatal(err)
		}
	}
	free()
	tab.OnStore(nil)
	testkit.WaitFor(t, "a resync", func() error {
		if st := w.Stats(); st.Resyncs == 0 {
			return fmt.Errorf("no resync yet (%+v)", st)
		}
		return nil
	})
	testkit.WaitFor(t, "the kernel's last MAC", resolveIs(&tab, "198.18.0.5", AdjResolved, mac(storm-1)))
}

// TestWatcherReceiveBuffer: the watcher's subscription sockets get the
// receive buffer asked for even past net.core.rmem_max, which caps what a
// process without CAP_NET_ADMIN gets (212992 bytes on a stock Debian: a
// storm of a few hundred events would overflow it). ss(8) in the
// namespace shows each rtnl socket's buffer (the kernel doubles the size
// set).
func TestWatcherReceiveBuffer(t *testing.T) {
	if _, err := exec.LookPath("ss"); err != nil {
		testkit.Unavailable(t, "no ss(8) (iproute2): %v", err)
	}
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Fatal(err)
	}
	rmemMax, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	want := rmemMax + 1<<20
	ns, _, l := vethNS(t, "nr", "10.80.0.1/24")
	w, err := NewWatcher(WatcherConfig{Links: []string{l.Attrs().Name}, Namespace: &ns, Table: new(Table),
		Logger: slog.New(slog.NewTextHandler(tWriter{t}, nil)), ReceiveBuffer: want})
	if err != nil {
		t.Fatal(err)
	}
	runWatcher(t, w)
	out := execIn(t, ns, "ss", "-f", "netlink", "-a", "-m")
	// ss lists a socket subscribed to groups more than once.
	rbs := regexp.MustCompile(`\b(rtnl:\S*).*?\brb(\d+)`).FindAllStringSubmatch(out, -1)
	got := map[string]bool{}
	for _, m := range rbs {
		if m[2] == strconv.Itoa(2*want) {
			got[m[1]] = true
		}
	}
	if n := len(got); n != 3 {
		t.Fatalf("%d rtnl sockets with a receive buffer of %d (%d asked for, rmem_max %d), want the 3 subscriptions:\n%s",
			n, 2*want, want, rmemMax, out)
	}
	if _, err := NewWatcher(WatcherConfig{Table: new(Table), ReceiveBuffer: -1}); err == nil {
		t.Error("a negative receive buffer accepted")
	}
}

// execIn runs name with args in namespace ns and returns its output.
func execIn(t testing.TB, ns netns.NsHandle, name string, args ...string) string {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	out, cerr := exec.Command(name, args...).CombinedOutput() // forked on this thread: in ns
	if err := netns.Set(orig); err != nil {
		t.Fatalf("restore netns: %v", err) // the thread stays locked and dies with the goroutine
	}
	runtime.UnlockOSThread()
	if cerr != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, cerr, out)
	}
	return string(out)
}

// TestWatcherMarkVanished: a mark of use reaches only the neighbour
// entries the kernel still has. One the kernel deleted before Run applied
// the event (the watcher's copy still holds it) is not created again, which
// would leave an INCOMPLETE entry behind and make the kernel resolve an
// address nothing sends to; the one the kernel has is marked (probed again).
func TestWatcherMarkVanished(t *testing.T) {
	ns, h, l := vethNS(t, "nv", "10.78.0.1/24")
	name := l.Attrs().Name
	ifx := int32(l.Attrs().Index)
	here, gone := netip.MustParseAddr("10.78.0.5"), netip.MustParseAddr("10.78.0.6")
	macHere, macGone := [6]byte{2, 0, 0, 0, 0x78, 5}, [6]byte{2, 0, 0, 0, 0x78, 6}
	if err := h.NeighAdd(&netlink.Neigh{LinkIndex: int(ifx), Family: netlink.FAMILY_V4, IP: here.AsSlice(),
		HardwareAddr: macHere[:], State: netlink.NUD_STALE}); err != nil {
		t.Fatal(err)
	}

	w, err := NewWatcher(WatcherConfig{Links: []string{name}, Namespace: &ns, Table: new(Table),
		Logger: slog.New(slog.NewTextHandler(tWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	w.h = h
	if w.mark, err = openRoute(&ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.mark.Close)
	w.neighs = map[neighID]Neighbour{
		{here, ifx}: {Addr: here, IfIndex: ifx, MAC: macHere, Valid: true},
		{gone, ifx}: {Addr: gone, IfIndex: ifx, MAC: macGone, Valid: true},
	}
	w.dynamic = map[neighID]bool{{here, ifx}: true, {gone, ifx}: true}
	w.markUsed([]LinkDest{{IfIndex: ifx, MAC: macHere}, {IfIndex: ifx, MAC: macGone}})

	list, err := h.NeighList(int(ifx), netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	stateHere := -1
	for _, n := range list {
		switch {
		case n.IP.Equal(gone.AsSlice()):
			t.Errorf("%v, deleted before the mark, is back in state %#x", gone, n.State)
		case n.IP.Equal(here.AsSlice()):
			stateHere = n.State
		}
	}
	if stateHere == netlink.NUD_STALE || stateHere < 0 {
		t.Errorf("%v, STALE and marked used: state %#x, want it probed again (not STALE, present)", here, stateHere)
	}
	if st := w.Stats(); st.Marked != 1 || st.MarkGone != 1 {
		t.Errorf("stats %+v: %d entries marked used and %d found gone, want 1 and 1", st, st.Marked, st.MarkGone)
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

// TestWatcherChangedOnly: the events that leave a Snapshot's contents
// as they were (a neighbour moving between usable states with the same
// MAC, a route or link announced again unchanged, the deletion of what is
// not there) mark nothing to publish; every other one does. Of those, the
// ones about neighbour entries that were absent or unusable leave the
// published snapshot KeepsResolved, and the Table does not call its OnStore
// function for it; the ones about neighbour entries that were usable make
// a snapshot that names their interface and MAC as Lost; all others make
// one that may change any adjacency (Lost reports false). The Table calls
// its OnStore function for both with the snapshot, in the order of Seq.
func TestWatcherChangedOnly(t *testing.T) {
	var tab Table
	stores := 0
	var last uint64
	tab.OnStore(func(s *Snapshot) {
		if s != tab.Load() || s.Seq() <= last {
			t.Errorf("OnStore called with snapshot %p (seq %d, the last %d), the table holds %p", s, s.Seq(), last, tab.Load())
		}
		last = s.Seq()
		stores++
	})
	w, err := NewWatcher(WatcherConfig{Links: []string{"core0"}, Table: &tab})
	if err != nil {
		t.Fatal(err)
	}
	w.reset()
	mac, mac2 := net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}
	neigh := func(addr string, state int, m net.HardwareAddr) *netlink.Neigh {
		return &netlink.Neigh{LinkIndex: 3, Family: unix.AF_INET, IP: net.ParseIP(addr), State: state, HardwareAddr: m}
	}
	_, dst, _ := net.ParseCIDR("192.0.2.0/24")
	route := func(gw string) *netlink.Route {
		return &netlink.Route{LinkIndex: 3, Dst: dst, Gw: net.ParseIP(gw), Type: unix.RTN_UNICAST, Table: unix.RT_TABLE_MAIN}
	}
	link := func(mtu int, up bool) netlink.LinkUpdate {
		a := netlink.LinkAttrs{Index: 3, Name: "core0", MTU: mtu, HardwareAddr: mac, OperState: netlink.OperUp}
		if up {
			a.Flags = net.FlagUp
		}
		return netlink.LinkUpdate{Header: unix.NlMsghdr{Type: unix.RTM_NEWLINK}, Link: &netlink.Device{LinkAttrs: a}}
	}
	const (
		none  = iota // nothing to publish
		kept         // a snapshot that KeepsResolved
		lost         // a snapshot that Lost the step's destinations alone
		moved        // a snapshot that may change any resolved adjacency
	)
	l1, l2 := LinkDest{IfIndex: 3, MAC: [6]byte(mac)}, LinkDest{IfIndex: 3, MAC: [6]byte(mac2)}
	for i, step := range []struct {
		what  string
		apply func()
		want  int
		lost  []LinkDest
	}{
		{"new link", func() { w.applyLink(link(1500, true)) }, moved, nil},
		{"link again", func() { w.applyLink(link(1500, true)) }, none, nil},
		{"link MTU", func() { w.applyLink(link(9000, true)) }, moved, nil},
		{"link down", func() { w.applyLink(link(9000, false)) }, moved, nil},
		{"new neighbour", func() { w.applyNeigh(unix.RTM_NEWNEIGH, neigh("10.0.0.2", netlink.NUD_REACHABLE, mac)) }, kept, nil},
		{"reachable to stale", func() { w.applyNeigh(unix.RTM_NEWNEIGH, neigh("10.0.0.2", netlink.NUD_STALE, mac)) }, none, nil},
		{"stale to delay", func() { w.applyNeigh(unix.RTM_NEWNEIGH, neigh("10.0.0.2", netlink.NUD_DELAY, mac)) }, none, nil},
		{"delay to probe", func() { w.applyNeigh(unix.RTM_NEWNEIGH, neigh("10.0.0.2", netlink.NUD_PROBE, mac)) }, none, nil},
		{"probe to failed", func() { w.applyNeigh(unix.RTM_NEWNEIGH, neigh("10.0.0.2", netlink.NUD_FAILED, mac)) }, lost, []LinkDest{l1}},
		{"failed to reachable", func() { w.applyNeigh(unix.RTM_NEWNEIGH, neigh("10.0.0.2", netlink.NUD_REACHABLE, mac)) }, kept, nil},
		{"new MAC", func() { w.applyNeigh(unix.RTM_NEWNEIGH, neigh("10.0.0.2", netlink.NUD_REACHABLE, mac2)) }, lost, []LinkDest{l1}},
		{"usable neighbour deleted", func() { w.applyNeigh(unix.RTM_DELNEIGH, neigh("10.0.0.2", netlink.NUD_REACHABLE, mac2)) }, lost, []LinkDest{l2}},
		{"neighbour deleted again", func() { w.applyNeigh(unix.RTM_DELNEIGH, neigh("10.0.0.2", netlink.NUD_REACHABLE, mac2)) }, none, nil},
		{"incomplete neighbour", func() { w.applyNeigh(unix.RTM_NEWNEIGH, neigh("10.0.0.3", netlink.NUD_INCOMPLETE, nil)) }, kept, nil},
		{"unusable neighbour deleted", func() { w.applyNeigh(unix.RTM_DELNEIGH, neigh("10.0.0.3", netlink.NUD_FAILED, nil)) }, kept, nil},
		{"new route", func() { w.applyRoute(unix.RTM_NEWROUTE, route("10.0.0.2")) }, moved, nil},
		{"route again", func() { w.applyRoute(unix.RTM_NEWROUTE, route("10.0.0.2")) }, none, nil},
		{"route's gateway", func() { w.applyRoute(unix.RTM_NEWROUTE, route("10.0.0.3")) }, moved, nil},
		{"route deleted", func() { w.applyRoute(unix.RTM_DELROUTE, route("10.0.0.3")) }, moved, nil},
		{"route deleted again", func() { w.applyRoute(unix.RTM_DELROUTE, route("10.0.0.3")) }, none, nil},
		{"another new neighbour", func() { w.applyNeigh(unix.RTM_NEWNEIGH, neigh("10.0.0.5", netlink.NUD_STALE, mac)) }, kept, nil},
		{"a new and a changed neighbour", func() {
			w.applyNeigh(unix.RTM_NEWNEIGH, neigh("10.0.0.4", netlink.NUD_REACHABLE, mac))
			w.applyNeigh(unix.RTM_NEWNEIGH, neigh("10.0.0.5", netlink.NUD_PERMANENT, mac2))
		}, lost, []LinkDest{l1}},
		{"two usable neighbours deleted, one twice", func() {
			w.applyNeigh(unix.RTM_NEWNEIGH, neigh("10.0.0.6", netlink.NUD_REACHABLE, mac))
			w.applyNeigh(unix.RTM_DELNEIGH, neigh("10.0.0.5", netlink.NUD_PERMANENT, mac2))
			w.applyNeigh(unix.RTM_DELNEIGH, neigh("10.0.0.4", netlink.NUD_REACHABLE, mac))
			w.applyNeigh(unix.RTM_DELNEIGH, neigh("10.0.0.6", netlink.NUD_REACHABLE, mac))
		}, lost, []LinkDest{l1, l2}},
		{"two new neighbours", func() {
			w.applyNeigh(unix.RTM_NEWNEIGH, neigh("10.0.0.7", netlink.NUD_REACHABLE, mac))
			w.applyNeigh(unix.RTM_NEWNEIGH, neigh("10.0.0.8", netlink.NUD_REACHABLE, mac2))
		}, kept, nil},
		{"a lost neighbour and a route", func() {
			w.applyNeigh(unix.RTM_DELNEIGH, neigh("10.0.0.7", netlink.NUD_REACHABLE, mac))
			w.applyRoute(unix.RTM_NEWROUTE, route("10.0.0.8"))
		}, moved, nil},
		{"route deleted once more", func() { w.applyRoute(unix.RTM_DELROUTE, route("10.0.0.8")) }, moved, nil},
		{"more neighbours lost than a snapshot names", func() {
			for i := range lostMax + 1 {
				m := net.HardwareAddr{2, 0, 0, 1, byte(i >> 8), byte(i)}
				a := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}).String()
				w.applyNeigh(unix.RTM_NEWNEIGH, neigh(a, netlink.NUD_REACHABLE, m))
				w.applyNeigh(unix.RTM_NEWNEIGH, neigh(a, netlink.NUD_FAILED, m))
			}
		}, moved, nil},
		{"link deleted with its usable neighbours", func() {
			u := link(9000, false)
			u.Header.Type = unix.RTM_DELLINK
			w.applyLink(u)
		}, moved, nil},
	} {
		n, pubs := stores, w.publishes.Load()
		step.apply()
		got := none
		if w.changed {
			// As Run does: publish, and the next step starts clean.
			w.publish()
			s := tab.Load()
			ls, precise := s.Lost()
			switch {
			case s.KeepsResolved():
				got = kept
			case precise:
				got = lost
			default:
				got = moved
			}
			if got == lost && !slices.Equal(ls, step.lost) {
				t.Errorf("step %d, %s: lost %v, want %v", i, step.what, ls, step.lost)
			}
			if called := stores - n; w.publishes.Load() != pubs+1 || (called == 1) != (got != kept) {
				t.Errorf("step %d, %s: OnStore called %d times for %d snapshots (KeepsResolved %v)", i, step.what, called, w.publishes.Load()-pubs, got == kept)
			}
		}
		if got != step.want {
			t.Errorf("step %d, %s: %d, want %d (0 nothing to publish, 1 kept, 2 lost, 3 moved)", i, step.what, got, step.want)
		}
	}
	if len(w.links)+w.routes.prefixes()+len(w.hops.ids)+len(w.neighs)+len(w.gateways) != 0 {
		t.Errorf("left: links %v, routes %d, neighbours %v, gateways %v", w.links, w.routes.prefixes(), w.neighs, w.gateways)
	}
}

// TestWatcherManyRoutes: with thousands of routes in a namespace's main
// table, the watcher's snapshots follow the kernel's own events: a dump
// taken at start, a burst of route replacements moving half of them to
// another gateway (each a persistent update or, for a big burst, a copy
// of the routes' trie), then deletions. A sample of the routes is
// resolved after each step, moved and unmoved ones, the step's last
// included.
func TestWatcherManyRoutes(t *testing.T) {
	ns, h, l := vethNS(t, "nm", "10.81.0.1/24")
	// No IPv6 (router solicitations, its routes and neighbours): the
	// watcher sees no event but the test's, so a snapshot it holds back
	// comes from its own timer or not at all.
	execIn(t, ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	idx := l.Attrs().Index
	macs := []net.HardwareAddr{{2, 0, 0x81, 0, 0, 2}, {2, 0, 0x81, 0, 0, 3}}
	gws := []string{"10.81.0.2", "10.81.0.3"}
	for i, gw := range gws {
		if err := h.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: netlink.FAMILY_V4, IP: net.ParseIP(gw),
			HardwareAddr: macs[i], State: netlink.NUD_PERMANENT}); err != nil {
			t.Fatal(err)
		}
	}
	const n = 8000
	route := func(i, gw int) *netlink.Route {
		return &netlink.Route{LinkIndex: idx, Gw: net.ParseIP(gws[gw]),
			Dst: &net.IPNet{IP: net.IPv4(100, 64+byte(i>>8), byte(i), 0), Mask: net.CIDRMask(24, 32)}}
	}
	for i := range n {
		if err := h.RouteAdd(route(i, 0)); err != nil {
			t.Fatalf("route %d: %v", i, err)
		}
	}
	var tab Table
	w, err := NewWatcher(WatcherConfig{Links: []string{l.Attrs().Name}, Namespace: &ns, Table: &tab,
		Logger: slog.New(slog.NewTextHandler(tWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	runWatcher(t, w)
	// sample checks that routes resolve as want says (-1: no route):
	// every 37th one, and the last six, which the last burst of each step
	// changed (a snapshot the watcher holds back for PublishGap must come).
	var checked []int
	for i := 0; i < n; i += 37 {
		checked = append(checked, i)
	}
	checked = append(checked, n-6, n-5, n-4, n-3, n-2, n-1)
	sample := func(want func(i int) int) func() error {
		return func() error {
			for _, i := range checked {
				dst := fmt.Sprintf("100.%d.%d.9", 64+i>>8, i&0xff)
				g := want(i)
				var err error
				if g < 0 {
					err = resolveIs(&tab, dst, AdjNoRoute, nil)()
				} else {
					err = resolveIs(&tab, dst, AdjResolved, macs[g])()
				}
				if err != nil {
					return fmt.Errorf("route %d: %w", i, err)
				}
			}
			return nil
		}
	}
	testkit.WaitFor(t, "the dumped routes", sample(func(int) int { return 0 }))
	if got := tab.Load().Routes(); got < n {
		t.Fatalf("%d routes in the snapshot, want at least %d", got, n)
	}
	for i := 0; i < n; i += 2 {
		if err := h.RouteReplace(route(i, 1)); err != nil {
			t.Fatalf("replace route %d: %v", i, err)
		}
	}
	testkit.WaitFor(t, "every other route moved", sample(func(i int) int { return 1 - i%2 }))
	for i := 0; i < n; i += 3 {
		if err := h.RouteDel(route(i, 1-i%2)); err != nil {
			t.Fatalf("delete route %d: %v", i, err)
		}
	}
	testkit.WaitFor(t, "every third route deleted", sample(func(i int) int {
		if i%3 == 0 {
			return -1
		}
		return 1 - i%2
	}))
	if st := w.Stats(); st.Resyncs != 0 {
		t.Errorf("%d resyncs: the snapshots came from dumps, not from the events", st.Resyncs)
	}
}

// logBuf collects log lines for a test to read, and shows them in its log.
type logBuf struct {
	t  *testing.T
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Logf("%s", p)
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWatcherNexthopObjects: routes through kernel nexthop objects
// (ip-nexthop(8), what FRR's zebra installs on kernels that have them)
// resolve through their object, single or group (its first member), a
// blackhole rejects, and a change of the object moves every route through
// it without an event of theirs. With net.ipv4.nexthop_compat_mode 1 (the
// kernel's default) and with 0, where the kernel gives a route the object's
// id alone and sends nothing for the routes when the object changes; from
// events and from a dump. Deleting an object takes its routes with it,
// silently: the watcher drops them too (the address then has no route),
// and a group that loses its first member resolves through the next. No
// route is counted as having no egress, and nothing is warned of. An IPv4
// route through an IPv6 gateway (RTA_VIA) resolves through that
// gateway's neighbour entry.
func TestWatcherNexthopObjects(t *testing.T) {
	if _, err := exec.LookPath("ip"); err != nil {
		testkit.Unavailable(t, "no ip(8) (iproute2): %v", err)
	}
	ns, h, l := vethNS(t, "nx", "10.83.0.1/24")
	name, idx := l.Attrs().Name, l.Attrs().Index
	mac := func(i byte) net.HardwareAddr { return net.HardwareAddr{2, 0, 0, 0, 0x83, i} }
	for i := byte(2); i <= 4; i++ {
		if err := h.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: netlink.FAMILY_V4, IP: net.IPv4(10, 83, 0, i),
			HardwareAddr: mac(i), State: netlink.NUD_PERMANENT}); err != nil {
			t.Fatal(err)
		}
	}
	ip := func(args ...string) { execIn(t, ns, "ip", args...) }
	execIn(t, ns, "sysctl", "-qw", "net.ipv4.nexthop_compat_mode=1")
	ip("link", "set", "lo", "up") // a blackhole object's device
	ip("nexthop", "add", "id", "10", "via", "10.83.0.2", "dev", name)
	ip("nexthop", "add", "id", "11", "via", "10.83.0.3", "dev", name)
	ip("nexthop", "add", "id", "20", "group", "10/11")
	ip("nexthop", "add", "id", "30", "blackhole")
	ip("route", "add", "198.51.100.0/24", "nhid", "10")
	if err := h.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: netlink.FAMILY_V6, IP: net.ParseIP("fe80::5"),
		HardwareAddr: mac(5), State: netlink.NUD_PERMANENT}); err != nil {
		t.Fatal(err)
	}
	ip("route", "add", "198.18.5.0/24", "via", "inet6", "fe80::5", "dev", name)

	var tab Table
	logs := &logBuf{t: t}
	w, err := NewWatcher(WatcherConfig{Links: []string{name}, Namespace: &ns, Table: &tab,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	runWatcher(t, w)
	testkit.WaitFor(t, "a route through object 10 (10.83.0.2), from the dump", resolveIs(&tab, "198.51.100.1", AdjResolved, mac(2)))
	testkit.WaitFor(t, "an IPv4 route through an IPv6 gateway", resolveIs(&tab, "198.18.5.1", AdjResolved, mac(5)))
	ip("nexthop", "replace", "id", "10", "via", "10.83.0.3", "dev", name)
	testkit.WaitFor(t, "the route after its object moved to 10.83.0.3", resolveIs(&tab, "198.51.100.1", AdjResolved, mac(3)))

	execIn(t, ns, "sysctl", "-qw", "net.ipv4.nexthop_compat_mode=0")
	ip("route", "add", "203.0.113.0/24", "nhid", "10")
	testkit.WaitFor(t, "a route given by its object's id alone", resolveIs(&tab, "203.0.113.1", AdjResolved, mac(3)))
	ip("nexthop", "replace", "id", "10", "via", "10.83.0.4", "dev", name)
	testkit.WaitFor(t, "the id-only route after its object moved to 10.83.0.4", resolveIs(&tab, "203.0.113.1", AdjResolved, mac(4)))
	testkit.WaitFor(t, "the other route through the object, which the kernel did not send again", resolveIs(&tab, "198.51.100.1", AdjResolved, mac(4)))
	ip("route", "add", "192.0.2.0/24", "nhid", "20")
	ip("route", "add", "100.64.0.0/24", "nhid", "30")
	testkit.WaitFor(t, "a route through group 20: its first member, object 10", resolveIs(&tab, "192.0.2.1", AdjResolved, mac(4)))
	testkit.WaitFor(t, "a route through a blackhole object", resolveIs(&tab, "100.64.0.1", AdjNoRoute, nil))

	// A dump in mode 0 reads the same.
	var tab2 Table
	w2, err := NewWatcher(WatcherConfig{Links: []string{name}, Namespace: &ns, Table: &tab2, NoManaged: true})
	if err != nil {
		t.Fatal(err)
	}
	runWatcher(t, w2)
	for _, c := range []struct {
		dst string
		st  AdjStatus
		mac net.HardwareAddr
	}{{"198.51.100.1", AdjResolved, mac(4)}, {"203.0.113.1", AdjResolved, mac(4)}, {"192.0.2.1", AdjResolved, mac(4)}, {"100.64.0.1", AdjNoRoute, nil}} {
		if err := resolveIs(&tab2, c.dst, c.st, c.mac)(); err != nil {
			t.Errorf("after a dump in mode 0: %v", err)
		}
	}

	ip("nexthop", "del", "id", "10")
	testkit.WaitFor(t, "a route through a deleted object gone", resolveIs(&tab, "198.51.100.1", AdjNoRoute, nil))
	testkit.WaitFor(t, "the other one gone", resolveIs(&tab, "203.0.113.1", AdjNoRoute, nil))
	testkit.WaitFor(t, "the group through its remaining member", resolveIs(&tab, "192.0.2.1", AdjResolved, mac(3)))
	if n := w.Stats().RoutesWithoutEgress; n != 0 {
		t.Errorf("RoutesWithoutEgress %d, want 0", n)
	}
	if strings.Contains(logs.String(), "name no interface") {
		t.Error("warned of routes without an interface")
	}
}

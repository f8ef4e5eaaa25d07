package nexthop

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// BenchmarkWatcherObject: NHROUTES /24 routes (default 100000) through one
// kernel nexthop object, as FRR's zebra installs a BGP peer's routes, in a
// namespace whose net.ipv4.nexthop_compat_mode is NHCOMPAT (default 1, the
// kernel's default). Each op moves the object to the other gateway (one
// netlink request) and reports the time until a snapshot resolves the
// first or the last of the routes through the new gateway (ms-one), and
// both (ms-both), and the
// process's CPU time and the watcher's events until it has read what the
// kernel sent for the change. Root only; no packet is sent.
func BenchmarkWatcherObject(b *testing.B) {
	n, compat := 100_000, "1"
	if v := os.Getenv("NHROUTES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 1<<22 {
			b.Fatalf("NHROUTES=%q: want 1..%d", v, 1<<22)
		}
	}
	if v := os.Getenv("NHCOMPAT"); v != "" {
		if v != "0" && v != "1" {
			b.Fatalf("NHCOMPAT=%q: want 0 or 1", v)
		}
		compat = v
	}
	ns, h, l := vethNS(b, "no", "10.84.0.1/24")
	idx := l.Attrs().Index
	gws := []string{"10.84.0.2", "10.84.0.3"}
	macs := [][6]byte{{2, 0, 0x84, 0, 0, 2}, {2, 0, 0x84, 0, 0, 3}}
	for i, gw := range gws {
		if err := h.NeighSet(&netlink.Neigh{LinkIndex: idx, Family: netlink.FAMILY_V4, IP: net.ParseIP(gw),
			HardwareAddr: macs[i][:], State: netlink.NUD_PERMANENT}); err != nil {
			b.Fatal(err)
		}
	}
	execIn(b, ns, "sysctl", "-qw", "net.ipv4.nexthop_compat_mode="+compat)
	setNexthop(b, ns, 10, gws[0], idx)
	dst := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{byte(20 + i>>16), byte(i >> 8), byte(i), 1}) }
	var batch strings.Builder
	for i := range n {
		batch.WriteString("route add " + netip.PrefixFrom(dst(i), 24).Masked().String() + " nhid 10\n")
	}
	f := filepath.Join(b.TempDir(), "routes")
	if err := os.WriteFile(f, []byte(batch.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	execIn(b, ns, "ip", "-batch", f)

	var tab Table
	var want atomic.Int32 // the gateway the op waits for (-1: none)
	want.Store(-1)
	// some: a snapshot resolves the first or the last route through it;
	// both: one resolves both (the kernel sends the routes again in its
	// own order, not theirs).
	some, both := make(chan struct{}, 1), make(chan struct{}, 1)
	tab.OnStore(func(s *Snapshot) {
		g := want.Load()
		if g < 0 {
			return
		}
		a0, st0 := s.Resolve(dst(0))
		a1, st1 := s.Resolve(dst(n - 1))
		ok0, ok1 := st0 == AdjResolved && a0.DstMAC == macs[g], st1 == AdjResolved && a1.DstMAC == macs[g]
		if ok0 || ok1 {
			select {
			case some <- struct{}{}:
			default:
			}
		}
		if ok0 && ok1 {
			want.Store(-1)
			both <- struct{}{}
		}
	})
	w, err := NewWatcher(WatcherConfig{Links: []string{l.Attrs().Name}, Namespace: &ns, Table: &tab})
	if err != nil {
		b.Fatal(err)
	}
	runWatcherWithin(b, w, 2*time.Minute)
	if _, st := tab.Resolve(dst(n - 1)); st != AdjResolved {
		b.Fatalf("the last route resolves %v before any change", st)
	}
	// The events the kernel sends for one change: counted once, before
	// the timing, as those the watcher reads until it is quiet.
	quiet := func() uint64 {
		prev := w.Stats().Events
		for {
			time.Sleep(20 * time.Millisecond)
			cur := w.Stats().Events
			if cur == prev {
				return cur
			}
			prev = cur
		}
	}
	var someT, bothT, cpu time.Duration
	var events uint64
	g := 0
	for b.Loop() {
		g = 1 - g
		<-time.After(3 * defaultPublishGap) // a quiet spell, as in BenchmarkWatcherKernel
		e0 := quiet()
		var ru0, ru1 unix.Rusage
		_ = unix.Getrusage(unix.RUSAGE_SELF, &ru0)
		for len(some) > 0 {
			<-some
		}
		want.Store(int32(g))
		t0 := time.Now()
		setNexthop(b, ns, 10, gws[g], idx)
		select {
		case <-some:
			someT += time.Since(t0)
		case <-time.After(2 * time.Minute):
			b.Fatalf("no snapshot resolved the first or the last route through %s", gws[g])
		}
		select {
		case <-both:
			bothT += time.Since(t0)
		case <-time.After(2 * time.Minute):
			b.Fatalf("no snapshot resolved both the first and the last route through %s", gws[g])
		}
		events += quiet() - e0
		_ = unix.Getrusage(unix.RUSAGE_SELF, &ru1)
		cpu += time.Duration(ru1.Utime.Nano() - ru0.Utime.Nano() + ru1.Stime.Nano() - ru0.Stime.Nano())
	}
	ops := float64(b.N)
	b.ReportMetric(float64(someT.Microseconds())/1e3/ops, "ms-one")
	b.ReportMetric(float64(bothT.Microseconds())/1e3/ops, "ms-both")
	b.ReportMetric(float64(cpu.Microseconds())/1e3/ops, "cpu-ms/change")
	b.ReportMetric(float64(events)/ops, "events/change")
	b.ReportMetric(float64(w.Stats().Resyncs), "resyncs")
	runtime.KeepAlive(w)
}

// setNexthop creates or replaces kernel nexthop object id (via gw on
// interface ifindex) in namespace ns: one netlink request, as a routing
// daemon makes it (the netlink library has no nexthop objects).
func setNexthop(tb testing.TB, ns netns.NsHandle, id uint32, gw string, ifindex int) {
	tb.Helper()
	sh, err := openRoute(&ns)
	if err != nil {
		tb.Fatal(err)
	}
	defer sh.Socket.Close()
	req := nl.NewNetlinkRequest(unix.RTM_NEWNEXTHOP, unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_ACK)
	req.AddData(nhmsg(unix.AF_INET))
	req.AddData(nl.NewRtAttr(unix.NHA_ID, u32(id)))
	req.AddData(nl.NewRtAttr(unix.NHA_OIF, u32(uint32(ifindex))))
	req.AddData(nl.NewRtAttr(unix.NHA_GATEWAY, net.ParseIP(gw).To4()))
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: sh}
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		tb.Fatalf("nexthop %d via %s: %v", id, gw, err)
	}
}

package veth

import (
	"bufio"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/rloc-router/rloc/fastpath"
	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/internal/testkit/netnstest"
	"github.com/rloc-router/rloc/internal/testkit/xdptest"
	"github.com/rloc-router/rloc/lab"
	"github.com/rloc-router/rloc/ring/xsk"
	"github.com/rloc-router/rloc/router"
)

// vethTopo: generator — DUT — sink. The generator's frames go to the DUT's
// in0 (fixed MAC) from 10.1.0.10 to 10.2.0.10; the DUT sends them on out0
// towards the sink (192.0.2.2), encapsulated or not.
const vethTopo = `
name: veth
nodes:
  - name: gen
  - name: dut
    sysctls:
      net.ipv4.ip_forward: 1
      net.ipv4.conf.all.rp_filter: 0
      net.ipv4.conf.default.rp_filter: 0
  - name: sink
links:
  - name: in
    ends:
      - {node: gen, ifname: eth0, addrs: [10.1.0.10/24], mac: "02:00:00:00:00:10"}
      - {node: dut, ifname: in0, addrs: [10.1.0.1/24], mac: "02:00:00:00:01:01"}
  - name: out
    ends:
      - {node: dut, ifname: out0, addrs: [192.0.2.1/24], mac: "02:00:00:00:02:01"}
      - {node: sink, ifname: eth0, addrs: [192.0.2.2/24], mac: "02:00:00:00:02:02"}
`

const (
	// packets is the fixed count the generator sends per run.
	packets = 1_000_000
	// iid is the instance-ID (LISP) and VNI (VXLAN).
	iid = 7777
	// genCPU runs trafgen; dutCPU runs the DUT (rloc's worker, the kernel
	// path through RPS).
	genCPU = 0
	dutCPU = 1
)

// trafgenCfg is one 64-byte frame (no FCS): Ethernet to the DUT's in0,
// IPv4 10.1.0.10 -> 10.2.0.10, UDP 1000 -> 2000 with a zero checksum
// (allowed for IPv4, RFC 768), 22 bytes of payload.
const trafgenCfg = `{
  0x02, 0x00, 0x00, 0x00, 0x01, 0x01,
  0x02, 0x00, 0x00, 0x00, 0x00, 0x10,
  c16(0x0800),
  0x45, 0x00, c16(50), c16(0), 0x40, 0x00, 64, 17, csumip(14, 33),
  10, 1, 0, 10,
  10, 2, 0, 10,
  c16(1000), c16(2000), c16(30), c16(0),
  fill(0x61, 22)
}
`

// need ends the benchmark when a prerequisite is missing (fails under CI).
func need(b *testing.B, ok bool, format string, args ...any) {
	b.Helper()
	if !ok {
		testkit.Unavailable(b, format, args...)
	}
}

type bench struct {
	l        *lab.Lab
	cfg      string
	rate     string        // trafgen -b argument; empty: as fast as it can
	xsk      xsk.Options   // rloc's UMEM and ring sizes
	spins    int           // rloc's idle spins (XTRConfig.IdleSpins)
	nice     int           // nice value of rloc's worker thread
	kick     time.Duration // transmit kick coalescing (fastpath.Config.KickDelay)
	churn    int           // neighbour-table events per second in the DUT while trafgen runs (NEIGHCHURN)
	mapChurn int           // map-cache changes per second in rloc while trafgen runs (MAPCHURN)
	mapBatch int           // the mappings each of them installs (MAPBATCH, default 1)
	loss     int           // usable neighbour entries added and deleted per second in the DUT while trafgen runs (NEIGHLOSS)
	routes   int           // routes added and deleted per second in the DUT while trafgen runs (ROUTECHURN)
}

// run executes argv in node and fails the benchmark on error.
func (v *bench) run(b *testing.B, node string, argv ...string) {
	b.Helper()
	if out, err := v.l.Exec(node, argv...); err != nil {
		b.Fatalf("%v\n%s", err, out)
	}
}

func (v *bench) rxPackets(b *testing.B, node, ifname string) uint64 {
	b.Helper()
	l, err := v.l.Node(node).Link(ifname)
	if err != nil {
		b.Fatal(err)
	}
	return l.Attrs().Statistics.RxPackets
}

func (v *bench) txPackets(b *testing.B, node, ifname string) uint64 {
	b.Helper()
	l, err := v.l.Node(node).Link(ifname)
	if err != nil {
		b.Fatal(err)
	}
	return l.Attrs().Statistics.TxPackets
}

// cpuTicks is one CPU's line of /proc/stat, in USER_HZ ticks.
type cpuTicks struct{ user, system, idle, softirq, steal uint64 }

func readStat(b *testing.B) []cpuTicks {
	b.Helper()
	f, err := os.Open("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var cpus []cpuTicks
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 9 || !strings.HasPrefix(fs[0], "cpu") || fs[0] == "cpu" {
			continue
		}
		v := make([]uint64, 9)
		for i := 1; i < 9; i++ {
			v[i], _ = strconv.ParseUint(fs[i], 10, 64)
		}
		// user nice system idle iowait irq softirq steal
		cpus = append(cpus, cpuTicks{user: v[1] + v[2], system: v[3], idle: v[4], softirq: v[7], steal: v[8]})
	}
	return cpus
}

// ticks converts USER_HZ ticks to a duration (USER_HZ is 100 on Linux).
func ticks(n uint64) time.Duration { return time.Duration(n) * 10 * time.Millisecond }

// sinkDrop attaches an XDP program returning XDP_DROP to the sink's eth0,
// so the sink costs the same (little) in every variant; veth counts the
// dropped frames in rx_packets.
func (v *bench) sinkDrop(b *testing.B) {
	b.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.XDP,
		License:      "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 1 /* XDP_DROP */), asm.Return()},
	})
	need(b, err == nil, "load an XDP program: %v", err)
	b.Cleanup(func() { prog.Close() })
	err = v.l.Node("sink").Do(func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.LinkSetXdpFdWithFlags(l, prog.FD(), unix.XDP_FLAGS_DRV_MODE)
	})
	need(b, err == nil, "attach native XDP to veth: %v", err)
}

// result is what one run measured.
type result struct {
	offered, received uint64
	wall              time.Duration
	genCPU            time.Duration // trafgen's user+system time
	soft0, soft1      time.Duration // softirq time on the generator's and the DUT's CPU
	busy0, busy1      time.Duration // user+system+softirq per CPU
	worker            time.Duration // rloc worker thread CPU time (rloc only)
	steal0, steal1    time.Duration
	dutCPU            time.Duration // the DUT's CPU time (see the variants)
	txDUT, sinkRx     uint64
}

// cpuTimer is a DUT thread whose CPU time a run measures (rloc's worker, the
// I/O-only loop).
type cpuTimer interface {
	CPUTime() (time.Duration, error)
}

// generate runs trafgen for the fixed count and measures around it; x is
// the DUT thread to time, nil for the kernel variants.
func (v *bench) generate(b *testing.B, x cpuTimer) result {
	b.Helper()
	var r result
	in0 := v.rxPackets(b, "dut", "in0")
	out0 := v.txPackets(b, "dut", "out0")
	sink0 := v.rxPackets(b, "sink", "eth0")
	st0 := readStat(b)
	var w0 time.Duration
	if x != nil {
		w0, _ = x.CPUTime()
	}
	argv := []string{"trafgen", "-o", "eth0", "-i", v.cfg, "-n", strconv.Itoa(packets), "-P", "1", "-Q", "-C", "-H"}
	if v.rate != "" {
		argv = append(argv, "-b", v.rate)
	}
	c, err := v.l.Command("gen", argv...)
	if err != nil {
		b.Fatal(err)
	}
	var out strings.Builder
	c.Stdout, c.Stderr = &out, &out
	stopChurn, stopMaps, stopLoss, stopRoutes := v.startChurn(b), v.startMapChurn(b, x), v.startLoss(b), v.startRouteChurn(b)
	stopSweeps := startSweeps(b, x)
	start := time.Now()
	err = c.Run()
	r.wall = time.Since(start)
	if n := stopChurn(); v.churn > 0 {
		b.Logf("%d neighbour-table events in the DUT during the run", n)
	}
	if n := stopLoss(); v.loss > 0 {
		b.Logf("%d neighbour entries added or deleted in the DUT during the run", n)
	}
	if n := stopRoutes(); v.routes > 0 {
		b.Logf("%d routes added or deleted in the DUT during the run", n)
	}
	stopSweeps()
	if n := stopMaps(); v.mapChurn > 0 {
		b.Logf("%d map-cache changes in rloc during the run", n)
	}
	if err != nil {
		b.Fatalf("trafgen: %v\n%s", err, out.String())
	}
	r.genCPU = c.ProcessState.UserTime() + c.ProcessState.SystemTime()
	// Let the DUT drain what is queued (bounded).
	for range 50 {
		time.Sleep(20 * time.Millisecond)
		if v.rxPackets(b, "sink", "eth0")-sink0 >= v.rxPackets(b, "dut", "in0")-in0 {
			break
		}
	}
	st1 := readStat(b)
	if x != nil {
		w1, _ := x.CPUTime()
		r.worker = w1 - w0
	}
	r.offered = v.rxPackets(b, "dut", "in0") - in0
	r.txDUT = v.txPackets(b, "dut", "out0") - out0
	r.received = v.rxPackets(b, "sink", "eth0") - sink0
	r.sinkRx = r.received
	d := func(i int) cpuTicks {
		a, z := st0[i], st1[i]
		return cpuTicks{user: z.user - a.user, system: z.system - a.system, idle: z.idle - a.idle,
			softirq: z.softirq - a.softirq, steal: z.steal - a.steal}
	}
	c0, c1 := d(genCPU), d(dutCPU)
	r.soft0, r.soft1 = ticks(c0.softirq), ticks(c1.softirq)
	r.busy0, r.busy1 = ticks(c0.user+c0.system+c0.softirq), ticks(c1.user+c1.system+c1.softirq)
	r.steal0, r.steal1 = ticks(c0.steal), ticks(c1.steal)
	return r
}

// startChurn makes v.churn neighbour-table events a second in the DUT
// until the function it returns is called (which returns how many it
// made), as a busy link does to a router: every other one moves the
// neighbour 192.0.2.3 on out0 between REACHABLE and STALE with the same
// MAC, the others add a new neighbour (2001:db8:77::n) on out0. Neither
// changes how any address the DUT forwards to resolves.
func (v *bench) startChurn(b *testing.B) func() int {
	if v.churn == 0 {
		return func() int { return 0 }
	}
	nl, out0 := v.dutOut0(b)
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0x77, 0x03}
	return paced(b, "neighbour churn", v.churn, func(n int) error {
		nb := &netlink.Neigh{LinkIndex: out0, Family: netlink.FAMILY_V4, IP: net.IPv4(192, 0, 2, 3),
			HardwareAddr: mac, State: []int{netlink.NUD_REACHABLE, netlink.NUD_STALE}[n/2%2]}
		if n%2 == 1 {
			a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0x77, 12: byte(n >> 24), 13: byte(n >> 16), 14: byte(n >> 8), 15: byte(n)})
			nb.Family, nb.IP, nb.State = netlink.FAMILY_V6, a.AsSlice(), netlink.NUD_REACHABLE
		}
		return nl.NeighSet(nb)
	})
}

// dutOut0 is the DUT's netlink handle and the index of its out0.
func (v *bench) dutOut0(b *testing.B) (*netlink.Handle, int) {
	nl := v.l.Node("dut").Netlink()
	out0, err := nl.LinkByName("out0")
	if err != nil {
		b.Fatal(err)
	}
	return nl, out0.Attrs().Index
}

// startLoss adds and deletes v.loss usable neighbour entries a second on
// the DUT's out0 until the function it returns is called (which returns how
// many), as the kernel's garbage collector and returning hosts do to a
// router's neighbour table: event n adds (n even) or deletes (n odd) host
// 192.0.2.100+n/2%100, at a MAC of its own, that no frame goes to. Each
// deletion loses a usable entry, which before rloc's snapshots named what
// they lost started an offload epoch.
func (v *bench) startLoss(b *testing.B) func() int {
	if v.loss == 0 {
		return func() int { return 0 }
	}
	nl, out0 := v.dutOut0(b)
	return paced(b, "neighbour loss", v.loss, func(n int) error {
		h := byte(n / 2 % 100)
		nb := &netlink.Neigh{LinkIndex: out0, Family: netlink.FAMILY_V4, IP: net.IPv4(192, 0, 2, 100+h),
			HardwareAddr: net.HardwareAddr{0x02, 0, 0, 0, 0x78, h}, State: netlink.NUD_REACHABLE}
		if n%2 == 1 {
			return nl.NeighDel(nb)
		}
		return nl.NeighSet(nb)
	})
}

// startRouteChurn adds and deletes v.routes routes a second in the DUT
// until the function it returns is called (which returns how many), as a
// routing daemon does to a router's table: event n adds (n even) or
// deletes (n odd) 198.18.(n/2%256).0/24 via 192.0.2.2 on out0, a prefix no
// frame goes to. Each is a next-hop snapshot that may change any
// adjacency, which before rloc compared snapshots started an offload
// epoch.
func (v *bench) startRouteChurn(b *testing.B) func() int {
	if v.routes == 0 {
		return func() int { return 0 }
	}
	nl, out0 := v.dutOut0(b)
	return paced(b, "route churn", v.routes, func(n int) error {
		r := &netlink.Route{LinkIndex: out0, Dst: &net.IPNet{IP: net.IPv4(198, 18, byte(n/2%256), 0), Mask: net.CIDRMask(24, 32)},
			Gw: net.IPv4(192, 0, 2, 2)}
		if n%2 == 1 {
			return nl.RouteDel(r)
		}
		return nl.RouteReplace(r)
	})
}

// startSweeps sweeps x's kernel offload once a second, as rlocd's
// housekeeping does (none for a variant without one), until the function
// it returns is called.
func startSweeps(b *testing.B, x cpuTimer) func() {
	xt, ok := x.(*xdptest.XTR)
	if !ok || xt.Offload() == nil {
		return func() {}
	}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for range 120 { // a run takes seconds: bounded anyway
			select {
			case <-done:
				return
			case <-t.C:
				if err := xt.Offload().Sweep(xt.Cache()); err != nil {
					b.Errorf("offload sweep: %v", err)
					return
				}
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// startMapChurn makes v.mapChurn map-cache changes a second in x's
// map-cache (an rloc variant's; none for the kernel's) until the function
// it returns is called (which returns how many): each installs a /24 of
// 10.200.0.0/16 to the sink, as Map-Replies for new destinations do to an
// ITR, or with v.mapBatch > 1 that many /32s of 10.200.0.0/16 in one batch,
// as a bulk load does. None covers a destination the generator sends to.
func (v *bench) startMapChurn(b *testing.B, x cpuTimer) func() int {
	xt, ok := x.(*xdptest.XTR)
	if v.mapChurn == 0 || !ok {
		return func() int { return 0 }
	}
	c := xt.Cache()
	rlocs := []fastpath.StaticRLOC{{Addr: netip.MustParseAddr("192.0.2.2"), Priority: 1, Weight: 1}}
	return paced(b, "map-cache churn", v.mapChurn, func(n int) error {
		if v.mapBatch <= 1 {
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 200, byte(n), 0}), 24)
			return fastpath.InstallStatic(c, []fastpath.StaticMapping{{IID: iid, Prefix: p, RLOCs: rlocs}})
		}
		ms := make([]fastpath.StaticMapping, v.mapBatch)
		for i := range ms {
			k := n*v.mapBatch + i
			ms[i] = fastpath.StaticMapping{IID: iid, Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 200, byte(k >> 8), byte(k)}), 32), RLOCs: rlocs}
		}
		return fastpath.InstallStatic(c, ms)
	})
}

// paced calls do(0), do(1) ... rate times a second in a goroutine, at most
// a minute's worth, until the function it returns is called, which
// returns how many calls were made. The first error do returns is reported,
// prefixed with what, and ends the calls.
func paced(b *testing.B, what string, rate int, do func(n int) error) func() int {
	stop, done := make(chan struct{}), make(chan int)
	go func() {
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		n := 0
		for ; n < 60*rate; n++ {
			select {
			case <-stop:
				done <- n
				return
			case <-t.C:
			}
			if err := do(n); err != nil {
				b.Errorf("%s: %v", what, err)
				break
			}
		}
		<-stop
		done <- n
	}()
	return func() int {
		close(stop)
		return <-done
	}
}

// logEpochs logs how many epochs x's kernel offload started (none without
// one).
func logEpochs(b *testing.B, x *xdptest.XTR) {
	if o := x.Offload(); o != nil {
		st := o.Stats()
		b.Logf("offload epochs started so far: %d (%+v)", st.Invalidations, st)
	}
}

// report logs and reports one variant's figures.
func report(b *testing.B, name string, r result) {
	b.Helper()
	secs := r.wall.Seconds()
	mpps := float64(r.received) / secs / 1e6
	b.ReportMetric(mpps, "Mpps")
	b.ReportMetric(float64(r.offered)/secs/1e6, "offered-Mpps")
	b.ReportMetric(float64(r.received)/float64(max(r.offered, 1))*100, "%delivered")
	if r.received > 0 {
		b.ReportMetric(float64(r.dutCPU.Nanoseconds())/float64(r.received), "dut-ns/pkt")
		b.ReportMetric(float64(r.genCPU.Nanoseconds())/float64(r.offered), "gen-ns/pkt")
	}
	b.Logf("%s: %d packets in %v; offered %d (%.3f Mpps), DUT tx %d, sink received %d (%.3f Mpps); "+
		"trafgen CPU %v; CPU%d busy %v (softirq %v, steal %v); CPU%d busy %v (softirq %v, steal %v); rloc worker thread %v; DUT CPU %v",
		name, packets, r.wall.Round(time.Millisecond), r.offered, float64(r.offered)/secs/1e6, r.txDUT, r.received, mpps,
		r.genCPU.Round(time.Millisecond), genCPU, r.busy0, r.soft0, r.steal0, dutCPU, r.busy1, r.soft1, r.steal1,
		r.worker.Round(time.Millisecond), r.dutCPU.Round(time.Millisecond))
}

// BenchmarkVeth compares, on one topology and with the same offered
// traffic (trafgen, 1M 64-byte UDP/IPv4 frames at its full speed on CPU 0),
// what reaches the sink when the DUT (CPU 1) is plain kernel forwarding, the
// kernel encapsulating into VXLAN, and rloc as an ITR on AF_XDP.
func BenchmarkVeth(b *testing.B) {
	v := newBench(b)
	if err := os.WriteFile(v.cfg, []byte(trafgenCfg), 0o644); err != nil {
		b.Fatal(err)
	}
	v.run(b, "dut", "ip", "link", "add", "vx0", "type", "vxlan", "id", strconv.Itoa(iid),
		"local", "192.0.2.1", "remote", "192.0.2.2", "dstport", "4341", "dev", "out0")
	v.run(b, "dut", "ip", "link", "set", "vx0", "up")
	v.run(b, "dut", "ip", "neigh", "replace", "10.99.0.2", "lladdr", "02:00:00:00:09:09", "dev", "vx0", "nud", "permanent")

	// Each load: every variant, side by side.
	for _, load := range loads {
		v.rate = load.rate
		b.Run(load.name+"/kernel-forward", func(b *testing.B) {
			v.run(b, "dut", "ip", "route", "replace", "10.2.0.0/24", "via", "192.0.2.2", "dev", "out0")
			for i := 0; i < b.N; i++ {
				r := v.generate(b, nil)
				r.dutCPU = r.soft0 + r.soft1
				report(b, load.name+"/kernel-forward", r)
			}
		})
		b.Run(load.name+"/kernel-vxlan", func(b *testing.B) {
			v.run(b, "dut", "ip", "route", "replace", "10.2.0.0/24", "via", "10.99.0.2", "dev", "vx0", "onlink")
			for i := 0; i < b.N; i++ {
				r := v.generate(b, nil)
				r.dutCPU = r.soft0 + r.soft1
				report(b, load.name+"/kernel-vxlan", r)
			}
		})
		// rloc-itr-adaptivefill is rloc with ring/xsk's adaptive fill policy
		// (every socket's fill ring kept full, a quarter of the UMEM
		// reserved), for comparison with the adaptive one in the same run.
		// rloc-itr-offload is rloc with the kernel offload on
		// (fastpath.Offload): after its first packets the flow is
		// encapsulated by the site program and redirected in XDP.
		for _, variant := range []string{"rloc-itr", "rloc-itr-adaptivefill", "rloc-itr-offload"} {
			v.rlocVariant(b, load.name, variant)
		}
		v.ioOnlyVariant(b, load.name)
	}
}

// logSockets logs the counters of a closed xTR's two sockets: what they
// received and sent, their fill targets, and how often a refill fell short
// of UMEM chunks (xsk.Port.FillShort: frames waiting for their transmission
// to complete). With the kernel's fill-ring-empty drops, these tell a UMEM
// too small from a worker not scheduled in time.
func logSockets(b *testing.B, x *xdptest.XTR) {
	sp, cp := x.Ports()
	for _, s := range []struct {
		name string
		p    *xsk.Port
	}{{"site", sp}, {"core", cp}} {
		p := s.p
		b.Logf("rloc %s socket: rx %d (%d wake-ups) tx %d (%d sendto, %d busy); fill target %d (grows %d shrinks %d), refills short of chunks %d",
			s.name, p.RxPackets, p.RxWakeups, p.TxPackets, p.TxKicks, p.TxKickBusy, p.FillTarget(), p.FillGrows, p.FillShrinks, p.FillShort)
	}
}

// rlocVariant runs rloc as the ITR (variant rloc-itr or rloc-itr-adaptivefill)
// under the current load.
func (v *bench) rlocVariant(b *testing.B, load, variant string) {
	b.Run(load+"/"+variant, func(b *testing.B) {
		v.run(b, "dut", "sh", "-c", "ip route del 10.2.0.0/24 2>/dev/null; true")
		opts := v.xsk
		opts.AdaptiveFill = variant == "rloc-itr-adaptivefill"
		offload := variant == "rloc-itr-offload"
		x := v.startRLOC(b, opts, offload)
		defer func() {
			if err := x.Close(); err != nil {
				b.Errorf("close: %v", err)
			}
			logSockets(b, x)
			_, cp := x.Ports()
			logKicks(b, cp)
		}()
		for i := 0; i < b.N; i++ {
			r := v.generate(b, x)
			// The worker's thread, plus the XDP receive path (redirect
			// and copy into the UMEM), which veth runs in softirq on
			// the sender's CPU. The sink's share on CPU 1 is not added:
			// its softirq runs when the worker's sendto re-enables
			// bottom halves, in the worker's context, so the thread's
			// CPU time already holds it (perf: 38% of the worker
			// thread's samples under handle_softirqs, none in
			// ksoftirqd/1); adding softirq on CPU 1 counted it twice.
			r.dutCPU = r.worker + r.soft0
			if offload {
				// The kernel's encapsulation and redirect run in
				// softirq, on the generator's CPU and on the DUT's,
				// as in the kernel variants; the worker is idle.
				r.dutCPU = r.worker + r.soft0 + r.soft1
			}
			report(b, load+"/"+variant, r)
			var c fastpath.Counters
			x.Worker().Counters().Snapshot(&c)
			site, _, _ := x.ProgramStats()
			ss, cs, _ := x.SocketStats()
			b.Logf("rloc worker (cumulative): rx %d encap %d tx %d dropped %d; site program redirected %d, offloaded %d; site socket %+v; core socket %+v",
				c.Get(fastpath.CounterRX), c.Get(fastpath.CounterEncap), c.Get(fastpath.CounterTX), c.DroppedTotal(),
				site[xsk.StatRedirect], site[xsk.StatOffload], ss, cs)
			logEpochs(b, x)
		}
	})
}

// startRLOC starts rloc as the ITR on the DUT: in0 is the site, out0 the
// core, 10.2.0.0/24 and 2001:db8:2::/64 map to the sink's address. The worker is pinned to
// dutCPU at nice -20 (see XTR.SetNice).
func (v *bench) startRLOC(b *testing.B, opts xsk.Options, offload bool) *xdptest.XTR {
	b.Helper()
	x, err := xdptest.StartXTR(xdptest.XTRConfig{
		NS: v.l.Node("dut"), Site: "in0", Core: "out0", IID: iid,
		SiteAddrs: []netip.Addr{netip.MustParseAddr("10.1.0.1")},
		RLOC4:     netip.MustParseAddr("192.0.2.1"),
		Mappings: []fastpath.StaticMapping{{IID: iid, Prefix: netip.MustParsePrefix("10.2.0.0/24"),
			RLOCs: []fastpath.StaticRLOC{{Addr: netip.MustParseAddr("192.0.2.2"), Priority: 1, Weight: 1}}},
			{IID: iid, Prefix: netip.MustParsePrefix("2001:db8:2::/64"), // BenchmarkVethEID6
				RLOCs: []fastpath.StaticRLOC{{Addr: netip.MustParseAddr("192.0.2.2"), Priority: 1, Weight: 1}}}},
		XDPMode:   xsk.XDPDriver,
		Options:   opts,
		Offload:   offload,
		IdleSpins: v.spins,
		KickDelay: v.kick,
		Pin:       true,
		CPU:       dutCPU,
	})
	need(b, err == nil, "rloc xTR on AF_XDP: %v", err)
	if err := x.SetNice(v.nice); err != nil {
		x.Close()
		b.Fatal(err)
	}
	return x
}

// newBench sets up the generator — DUT — sink lab (needs root, trafgen and
// 2 CPUs): the sink drops what it receives in XDP, and the DUT knows its
// MAC.
func newBench(b *testing.B) *bench {
	netnstest.Require(b)
	_, err := exec.LookPath("trafgen")
	need(b, err == nil, "trafgen is not installed (scripts/deps.sh trafgen)")
	need(b, readStat(b) != nil && len(readStat(b)) >= 2, "needs 2 CPUs")
	topo, err := lab.Parse([]byte(vethTopo))
	if err != nil {
		b.Fatal(err)
	}
	l, err := topo.Up(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := l.Down(); err != nil {
			b.Errorf("lab down: %v", err)
		}
	})
	v := &bench{l: l, cfg: filepath.Join(b.TempDir(), "frames.cfg")}
	if os.Getenv("SPIN") != "" {
		v.spins = -1
	}
	if n, err := strconv.Atoi(os.Getenv("NICE")); err == nil {
		v.nice = n
	}
	if d, err := time.ParseDuration(os.Getenv("KICKDELAY")); err == nil {
		v.kick = d
	}
	if n, err := strconv.Atoi(os.Getenv("NEIGHCHURN")); err == nil && n > 0 {
		v.churn = min(n, 10000)
	}
	if n, err := strconv.Atoi(os.Getenv("MAPCHURN")); err == nil && n > 0 {
		v.mapChurn = min(n, 10000)
	}
	if n, err := strconv.Atoi(os.Getenv("MAPBATCH")); err == nil && n > 0 {
		v.mapBatch = min(n, 65536)
	}
	if n, err := strconv.Atoi(os.Getenv("NEIGHLOSS")); err == nil && n > 0 {
		v.loss = min(n, 10000)
	}
	if n, err := strconv.Atoi(os.Getenv("ROUTECHURN")); err == nil && n > 0 {
		v.routes = min(n, 10000)
	}
	// rloc's sockets are sized as rlocd sizes them for an xTR with two
	// interfaces (xdp.ring_size, xdp.frames), RINGSIZE as its ring_size.
	xo := router.XDPOptions{}
	if n, err := strconv.Atoi(os.Getenv("RINGSIZE")); err == nil {
		xo.RingSize = n
	}
	v.xsk = xo.XSK(2)
	if os.Getenv("BIGRING") != "" {
		v.xsk = xsk.Options{NumFrames: 16384, FillRingSize: 8192, RxRingSize: 8192, TxRingSize: 2048, CompletionRingSize: 2048}
	}
	v.sinkDrop(b)
	// The sink's MAC is known to the DUT for every variant.
	v.run(b, "dut", "ip", "neigh", "replace", "192.0.2.2", "lladdr", "02:00:00:00:02:02", "dev", "out0", "nud", "permanent")
	return v
}

// loads are the offered loads of each benchmark: "max" lets trafgen send as
// fast as it can; "paced200k" offers the same fixed rate to every variant,
// so their CPU cost per packet compares at equal load.
var loads = []struct{ name, rate string }{{"max", ""}, {"paced200k", "200000pps"}}

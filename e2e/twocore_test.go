package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/router"
)

// pairTopo is the topology h1 — xa — xb — h2 named name, every link a veth
// pair with queues receive and transmit queues on both ends. TestTwoWorkers
// uses two queues: xa and xb run rlocd with one worker per queue.
func pairTopo(name string, queues int) string {
	return fmt.Sprintf(`
name: %s
nodes:
  - name: h1
    routes: [{to: default, via: 10.1.0.1}]
  - name: xa
    sysctls: &router {net.ipv4.ip_forward: 1, net.ipv4.conf.all.rp_filter: 0, net.ipv4.conf.default.rp_filter: 0}
  - name: xb
    sysctls: *router
  - name: h2
    routes: [{to: default, via: 10.2.0.1}]
links:
  - name: site1
    queues: %[2]d
    ends:
      - {node: h1, ifname: eth0, addrs: [10.1.0.10/24], mac: "02:00:00:00:01:10"}
      - {node: xa, ifname: site0, addrs: [10.1.0.1/24], mac: "02:00:00:00:01:01"}
  - name: core
    queues: %[2]d
    ends:
      - {node: xa, ifname: core0, addrs: [192.0.2.1/24], mac: "02:00:00:00:02:01"}
      - {node: xb, ifname: core0, addrs: [192.0.2.2/24], mac: "02:00:00:00:02:02"}
  - name: site2
    queues: %[2]d
    ends:
      - {node: xb, ifname: site0, addrs: [10.2.0.1/24], mac: "02:00:00:00:03:01"}
      - {node: h2, ifname: eth0, addrs: [10.2.0.10/24], mac: "02:00:00:00:03:10"}
`, name, queues)
}

// pairNeighbours makes every neighbour on pairTopo's paths permanent, so no
// packet takes the kernel's ARP path (which could reorder a flow's first
// packets against the AF_XDP path, and would add to latencies).
func pairNeighbours(t testing.TB, n *network) {
	t.Helper()
	for _, c := range [][]string{
		{"h1", "ip", "neigh", "replace", "10.1.0.1", "lladdr", "02:00:00:00:01:01", "dev", "eth0", "nud", "permanent"},
		{"xa", "ip", "neigh", "replace", "10.1.0.10", "lladdr", "02:00:00:00:01:10", "dev", "site0", "nud", "permanent"},
		{"xa", "ip", "neigh", "replace", "192.0.2.2", "lladdr", "02:00:00:00:02:02", "dev", "core0", "nud", "permanent"},
		{"xb", "ip", "neigh", "replace", "192.0.2.1", "lladdr", "02:00:00:00:02:01", "dev", "core0", "nud", "permanent"},
		{"xb", "ip", "neigh", "replace", "10.2.0.10", "lladdr", "02:00:00:00:03:10", "dev", "site0", "nud", "permanent"},
		{"h2", "ip", "neigh", "replace", "10.2.0.1", "lladdr", "02:00:00:00:03:01", "dev", "eth0", "nud", "permanent"},
	} {
		if out, err := n.lab.Exec(c[0], c[1:]...); err != nil {
			t.Fatalf("%v: %v\n%s", c, err, out)
		}
	}
}

// pairXTR is the rlocd configuration of xa (site "1") or xb (site "2") in
// pairTopo: queues queues, the workers pinned to cpus, a static mapping for
// the other site (the Map-Resolver address answers nothing and is not
// needed).
func pairXTR(site string, queues int, cpus string) string {
	self, peer := site, "2"
	if site == "2" {
		peer = "1"
	}
	return fmt.Sprintf(`name: x%[1]s
roles: [itr, etr]
rlocs: [192.0.2.%[1]s]
interfaces: [{name: site0, side: site, queues: %[3]d}, {name: core0, side: core, queues: %[3]d}]
cpus: %[4]s
database: [{eid: 10.%[1]s.0.0/24, rlocs: [{addr: 192.0.2.%[1]s, priority: 1}]}]
map_cache: [{eid: 10.%[2]s.0.0/24, rlocs: [{addr: 192.0.2.%[2]s, priority: 1}]}]
map_resolvers: [192.0.2.100]
`, self, peer, queues, cpus)
}

// TestTwoWorkers: 16 UDP flows from h1 to h2 through two xTRs that each run
// two workers on two queues. Every worker of both routers forwards part of
// the traffic (the veth queues spread the flows), and every flow arrives
// complete and in order (a flow stays on one queue, so on one worker).
func TestTwoWorkers(t *testing.T) {
	file := filepath.Join(t.TempDir(), "twocore.yaml")
	if err := os.WriteFile(file, []byte(pairTopo("twocore", 2)), 0o644); err != nil {
		t.Fatal(err)
	}
	n := newLabNetwork(t, file, "2c")
	for _, ifc := range []struct{ node, name string }{{"h1", "eth0"}, {"xa", "site0"}, {"xa", "core0"}, {"xb", "core0"}} {
		out, err := n.lab.Exec(ifc.node, "ls", "/sys/class/net/"+ifc.name+"/queues")
		if err != nil || !strings.Contains(string(out), "rx-1") || !strings.Contains(string(out), "tx-1") {
			t.Fatalf("%s/%s has not two queues: %v %q", ifc.node, ifc.name, err, out)
		}
	}
	// The sender's checksums must be complete: they cross AF_XDP sockets
	// (netns.SetTxChecksum).
	if err := n.lab.Node("h1").SetTxChecksum("eth0", false); err != nil {
		t.Fatal(err)
	}
	pairNeighbours(t, n)
	n.start("xa", pairXTR("1", 2, "[0, 1]"))
	n.start("xb", pairXTR("2", 2, "[0, 1]"))
	for _, node := range []string{"xa", "xb"} {
		if w := n.stats(node).Workers; w != 2 {
			t.Fatalf("%s runs %d workers, want 2", node, w)
		}
	}

	const flows, perFlow = 16, 500
	var sink *net.UDPConn
	if err := n.lab.Node("h2").Do(func() (err error) {
		sink, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 2, 0, 10), Port: 9000})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	_ = sink.SetReadBuffer(4 << 20)
	srcs := make([]*net.UDPConn, flows)
	if err := n.lab.Node("h1").Do(func() error {
		for i := range srcs {
			c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(10, 2, 0, 10), Port: 9000})
			if err != nil {
				return err
			}
			srcs[i] = c
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range srcs {
			if c != nil {
				c.Close()
			}
		}
	}()

	// Receive: per flow (the sender's port), the next sequence number
	// expected. Bounded in time; ends when every packet arrived.
	type flowState struct{ next, lost, reordered int }
	got := map[uint16]*flowState{}
	total := 0
	recvDone := make(chan error, 1)
	go func() {
		buf := make([]byte, 2048)
		deadline := time.Now().Add(30 * time.Second)
		for total < flows*perFlow {
			_ = sink.SetReadDeadline(deadline)
			k, from, err := sink.ReadFromUDPAddrPort(buf)
			if err != nil {
				recvDone <- err
				return
			}
			if k < 4 {
				continue
			}
			seq := int(binary.BigEndian.Uint32(buf))
			f := got[from.Port()]
			if f == nil {
				f = &flowState{}
				got[from.Port()] = f
			}
			switch {
			case seq < f.next:
				f.reordered++
			case seq > f.next:
				f.lost += seq - f.next
				f.next = seq + 1
			default:
				f.next++
			}
			total++
		}
		recvDone <- nil
	}()

	// Send: round robin over the flows, paced at 20k packets/s in all.
	p := newPacer(20000)
	payload := make([]byte, 64)
	for seq := range perFlow {
		binary.BigEndian.PutUint32(payload, uint32(seq))
		for _, c := range srcs {
			if _, err := c.Write(payload); err != nil {
				t.Fatal(err)
			}
			p.sent()
		}
	}
	if err := <-recvDone; err != nil {
		t.Errorf("receiving: %v after %d of %d packets", err, total, flows*perFlow)
	}
	if len(got) != flows {
		t.Errorf("%d flows arrived, want %d", len(got), flows)
	}
	for port, f := range got {
		if f.lost != 0 || f.reordered != 0 || f.next != perFlow {
			t.Errorf("flow from port %d: %d in order, %d lost, %d out of order", port, f.next, f.lost, f.reordered)
		}
	}
	for _, node := range []string{"xa", "xb"} {
		s := n.stats(node)
		t.Logf("%s per worker: %v; xsk tx frames %d in %d sendto calls", node, s.PerWorker,
			s.Fastpath["xsk_tx_frames"], s.Fastpath["xsk_tx_sendto"])
		key := "encap"
		if node == "xb" {
			key = "decap"
		}
		if len(s.PerWorker) != 2 {
			t.Fatalf("%s: %d per-worker counter sets", node, len(s.PerWorker))
		}
		for w, c := range s.PerWorker {
			if c[key] == 0 {
				t.Errorf("%s worker %d: %s 0: it forwarded nothing", node, w, key)
			}
		}
		if len(s.Drops) > 0 {
			t.Errorf("%s drops: %v", node, s.Drops)
		}
	}
	if p.Stalls > 0 {
		t.Logf("the sender fell behind its schedule %d times", p.Stalls)
	}
}

// TestQueueCountRefused: rlocd refuses to start when an interface's queues
// differ from the receive queues its NIC spreads traffic over (veth pairs
// with two queues): with fewer, the exit names the interface, both counts
// and the fixes (traffic on the other queue would pass the fast path by);
// with more, it names the missing queue. partial_queues lets the operator
// run one queue on purpose: rlocd then starts, with one worker.
func TestQueueCountRefused(t *testing.T) {
	file := filepath.Join(t.TempDir(), "queues.yaml")
	if err := os.WriteFile(file, []byte(pairTopo("queuechk", 2)), 0o644); err != nil {
		t.Fatal(err)
	}
	n := newLabNetwork(t, file, "qc")
	for _, c := range []struct {
		queues int
		want   []string
	}{
		{1, []string{"interfaces[0].queues: 1, but site0 spreads what it receives over 2 queues",
			"what arrives on queue 1 would pass the fast path by", "ethtool -L site0 combined 1", "partial_queues"}},
		{3, []string{"interfaces[0].queues: 3, but site0 has 2 receive queue(s)"}},
	} {
		out := n.refused("xa", fmt.Sprintf("xa-%d.yaml", c.queues), pairXTR("1", c.queues, "[1]"))
		t.Logf("queues %d: %s", c.queues, tail(out, 2))
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("queues %d: the refusal does not say %q:\n%s", c.queues, w, tail(out, 10))
			}
		}
	}
	// One queue on purpose: 16 flows from h1 spread over both queues;
	// queue 0's are encapsulated, queue 1's are counted as passed to the
	// kernel (which drops them: xa does not forward to 10.2.0.0/24).
	pairNeighbours(t, n)
	n.start("xa", strings.Replace(pairXTR("1", 1, "[1]"), "queues: 1}", "queues: 1, partial_queues: true}", 2)+
		"metrics: {listen: \"127.0.0.1:9100\"}\n")
	if w := n.stats("xa").Workers; w != 1 {
		t.Fatalf("xa runs %d workers, want 1", w)
	}
	if err := n.lab.Node("h1").Do(func() error {
		for i := range 16 {
			c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(10, 2, 0, 10), Port: 9000 + i})
			if err != nil {
				return err
			}
			for range 4 {
				if _, err := c.Write(make([]byte, 32)); err != nil {
					c.Close()
					return err
				}
			}
			c.Close()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var s router.Stats
	n.waitFor(10*time.Second, "both queues' traffic counted", func() bool {
		s = n.stats("xa")
		return s.Fastpath["encap"]+s.Fastpath["xdp_pass_no_xsk"] >= 64
	})
	if s.Fastpath["encap"] == 0 || s.Fastpath["xdp_pass_no_xsk"] == 0 {
		t.Errorf("encap %d, xdp_pass_no_xsk %d: want both (16 flows over two queues, one served)",
			s.Fastpath["encap"], s.Fastpath["xdp_pass_no_xsk"])
	}
	// The same count in the metrics, by interface: site0 received the
	// flows, core0 nothing on a queue without a socket.
	m := n.scrape("xa", "127.0.0.1:9100")
	site, core := m[`rloc_xdp_steering_total{action="pass_no_xsk",interface="site0"}`], m[`rloc_xdp_steering_total{action="pass_no_xsk",interface="core0"}`]
	if uint64(site) != s.Fastpath["xdp_pass_no_xsk"] || core != 0 || m[`rloc_xdp_steering_total{action="redirect",interface="site0"}`] == 0 {
		t.Errorf("rloc_xdp_steering_total: pass_no_xsk site0 %v core0 %v, redirect site0 %v; stats say %d passed",
			site, core, m[`rloc_xdp_steering_total{action="redirect",interface="site0"}`], s.Fastpath["xdp_pass_no_xsk"])
	}
}

// twoCoreBenchTopo: gen — dut — sink, veth pairs with two queues. The sink
// has no address of the RLOC the DUT sends to and does not forward, so it
// drops the DUT's packets right after counting them (rx_packets).
const twoCoreBenchTopo = `
name: twocoreb
nodes:
  - name: gen
  - name: dut
    sysctls: {net.ipv4.ip_forward: 1, net.ipv4.conf.all.rp_filter: 0, net.ipv4.conf.default.rp_filter: 0}
  - name: sink
links:
  - name: in
    queues: 2
    ends:
      - {node: gen, ifname: eth0, addrs: [10.1.0.10/24], mac: "02:00:00:00:00:10"}
      - {node: dut, ifname: site0, addrs: [10.1.0.1/24], mac: "02:00:00:00:01:01"}
  - name: out
    queues: 2
    ends:
      - {node: dut, ifname: core0, addrs: [192.0.2.1/24], mac: "02:00:00:00:02:01"}
      - {node: sink, ifname: eth0, addrs: [192.0.2.3/24], mac: "02:00:00:00:02:02"}
`

// twoCoreTrafgen: 64-byte UDP/IPv4 frames 10.1.0.10 -> 10.2.0.10 to the
// DUT's site0, the source port random per frame (many flows).
const twoCoreTrafgen = `{
  0x02, 0x00, 0x00, 0x00, 0x01, 0x01,
  0x02, 0x00, 0x00, 0x00, 0x00, 0x10,
  c16(0x0800),
  0x45, 0x00, c16(50), c16(0), 0x40, 0x00, 64, 17, csumip(14, 33),
  10, 1, 0, 10,
  10, 2, 0, 10,
  drnd(2), c16(2000), c16(30), c16(0),
  fill(0x61, 22)
}
`

// BenchmarkTwoWorkersVeth offers the same traffic (trafgen, 1M frames of
// random source ports, paced at 200 kpps and at full speed) to rlocd as an
// ITR with one queue and worker (pinned to CPU 1) and with two (CPUs 0 and
// 1). trafgen runs on CPU 0, sharing it with worker 0 in the two-worker
// case. For two workers it sends through the qdisc layer (-q), where the
// kernel picks its veth transmit queue, and so the DUT's receive queue, by
// flow hash: the random source ports spread over both (the per-worker
// counters in the log show the split). For one worker it bypasses the
// qdisc, and every frame takes queue 0 (the one-worker rlocd says so with
// partial_queues). rlocd-ns/pkt is the CPU
// time of the whole rlocd process per delivered packet; the receive side of
// veth (XDP, the copy into the UMEM) runs in the generator's softirq and is
// not in it. Run it as root:
//
//	go test -run '^$' -bench TwoWorkersVeth -benchtime 1x ./e2e
func BenchmarkTwoWorkersVeth(b *testing.B) {
	if _, err := exec.LookPath("trafgen"); err != nil {
		testkit.Unavailable(b, "trafgen is not installed (scripts/deps.sh trafgen)")
	}
	file := filepath.Join(b.TempDir(), "twocoreb.yaml")
	if err := os.WriteFile(file, []byte(twoCoreBenchTopo), 0o644); err != nil {
		b.Fatal(err)
	}
	cfgFile := filepath.Join(b.TempDir(), "udp64.cfg")
	if err := os.WriteFile(cfgFile, []byte(twoCoreTrafgen), 0o644); err != nil {
		b.Fatal(err)
	}
	n := newLabNetwork(b, file, "2cb")
	if out, err := n.lab.Exec("dut", "ip", "neigh", "replace", "192.0.2.2", "lladdr", "02:00:00:00:02:02",
		"dev", "core0", "nud", "permanent"); err != nil {
		b.Fatalf("%v\n%s", err, out)
	}
	rx := func(node, ifname string) uint64 {
		l, err := n.lab.Node(node).Link(ifname)
		if err != nil {
			b.Fatal(err)
		}
		return l.Attrs().Statistics.RxPackets
	}
	for _, queues := range []int{1, 2} {
		cpus := "[1]"
		if queues == 2 {
			cpus = "[0, 1]"
		}
		n.start("dut", fmt.Sprintf(`name: dut
roles: [itr]
rlocs: [192.0.2.1]
interfaces: [{name: site0, side: site, queues: %d, partial_queues: true}, {name: core0, side: core, queues: %d, partial_queues: true}]
cpus: %s
map_cache: [{eid: 10.2.0.0/24, rlocs: [{addr: 192.0.2.2, priority: 1}]}]
map_resolvers: [192.0.2.100]
`, queues, queues, cpus))
		pid := n.procs["dut"].Cmd.Process.Pid
		for _, load := range []struct{ name, rate string }{{"paced200k", "200000pps"}, {"max", ""}} {
			b.Run(fmt.Sprintf("%d-workers/%s", queues, load.name), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					in0, sink0 := rx("dut", "site0"), rx("sink", "eth0")
					c0, err := procCPU(pid)
					if err != nil {
						b.Fatal(err)
					}
					// No -H (high priority): worker 0 shares CPU 0 with
					// trafgen, and a generator at nice -20 starved it.
					argv := []string{"trafgen", "-o", "eth0", "-i", cfgFile, "-n", "1000000", "-P", "1"}
					if queues == 2 {
						// Through the qdisc layer, which picks the transmit
						// queue by flow hash. By default trafgen bypasses it
						// and every frame takes queue 0, the only one a
						// one-queue rlocd has a socket on.
						argv = append(argv, "-q")
					}
					if load.rate != "" {
						argv = append(argv, "-b", load.rate)
					}
					t0 := time.Now()
					if out, err := n.lab.Exec("gen", argv...); err != nil {
						b.Fatalf("trafgen: %v\n%s", err, out)
					}
					wall := time.Since(t0)
					for range 50 { // let the DUT drain (bounded)
						time.Sleep(20 * time.Millisecond)
						if rx("sink", "eth0")-sink0 >= rx("dut", "site0")-in0 {
							break
						}
					}
					c1, _ := procCPU(pid)
					offered, got := rx("dut", "site0")-in0, rx("sink", "eth0")-sink0
					b.ReportMetric(float64(got)/wall.Seconds()/1e6, "Mpps")
					b.ReportMetric(float64(got)/float64(max(offered, 1))*100, "%delivered")
					b.ReportMetric(float64((c1-c0).Nanoseconds())/float64(max(got, 1)), "rlocd-ns/pkt")
					s := n.stats("dut")
					b.Logf("%d workers, %s: offered %d, delivered %d in %v; rlocd CPU %v; per worker %v; drops %v",
						queues, load.name, offered, got, wall.Round(time.Millisecond), c1-c0, s.PerWorker, s.Drops)
				}
			})
		}
		n.stop("dut", true)
	}
}

package lab

import (
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit/netnstest"
)

// benchTopo joins a and b by a plain veth link and by delayed links of 0,
// 0.1 (the LAN value of configs/lab/msx-exp.yaml), 1 and 10 ms, each with
// its own subnet; the -sleep links forward as before issue 15 (sleep to
// the due time, delay from the forwarder's read; sleepOnlyLinks).
const benchTopo = `
nodes: [{name: a}, {name: b}]
links:
  - name: plain
    ends: [{node: a, ifname: eth0, addrs: [10.0.0.1/24]}, {node: b, ifname: eth0, addrs: [10.0.0.2/24]}]
  - name: d0
    delay: 0ms
    ends: [{node: a, ifname: eth1, addrs: [10.0.1.1/24]}, {node: b, ifname: eth1, addrs: [10.0.1.2/24]}]
  - name: d1
    delay: 1ms
    ends: [{node: a, ifname: eth2, addrs: [10.0.2.1/24]}, {node: b, ifname: eth2, addrs: [10.0.2.2/24]}]
  - name: d10
    delay: 10ms
    ends: [{node: a, ifname: eth3, addrs: [10.0.3.1/24]}, {node: b, ifname: eth3, addrs: [10.0.3.2/24]}]
  - name: d0.1
    delay: 100us
    ends: [{node: a, ifname: eth4, addrs: [10.0.4.1/24]}, {node: b, ifname: eth4, addrs: [10.0.4.2/24]}]
  - name: d0.1-sleep
    delay: 100us
    ends: [{node: a, ifname: eth5, addrs: [10.0.5.1/24]}, {node: b, ifname: eth5, addrs: [10.0.5.2/24]}]
  - name: d1-sleep
    delay: 1ms
    ends: [{node: a, ifname: eth6, addrs: [10.0.6.1/24]}, {node: b, ifname: eth6, addrs: [10.0.6.2/24]}]
`

// benchLinks are the links of benchTopo in subnet order, with their delay.
var benchLinks = []struct {
	name  string
	delay time.Duration
}{
	{"plain", 0}, {"d0", 0}, {"d1", time.Millisecond}, {"d10", 10 * time.Millisecond},
	{"d0.1", 100 * time.Microsecond}, {"d0.1-sleep", 100 * time.Microsecond}, {"d1-sleep", time.Millisecond},
}

// BenchmarkDelayedLink measures what a delayed link adds to the one-way
// delay: UDP echoes one at a time across each link, and per echo half
// the round trip minus half the median round trip of the plain veth link.
// It reports p50 and p99 of that added delay, and of its excess over the
// configured delay. The sub-benchmarks of one delay alternate the forwarder
// as it is and as it was (-sleep). Run it with -benchtime 300x or so (each
// echo over the 10 ms link takes 20 ms).
func BenchmarkDelayedLink(b *testing.B) {
	netnstest.Require(b)
	topo, err := Parse([]byte(benchTopo))
	if err != nil {
		b.Fatal(err)
	}
	sleepOnlyLinks = map[string]bool{"d0.1-sleep": true, "d1-sleep": true}
	defer func() { sleepOnlyLinks = nil }()
	l := upWithT(b, topo, Options{})
	conns := map[string]*net.UDPConn{}
	for i, c := range benchLinks {
		conns[c.name] = udpEcho(b, l, "b", netip.AddrFrom4([4]byte{10, 0, byte(i), 2}), "a")
	}
	// Baseline: the plain link, warmed up (ARP) and sampled.
	base, err := rtts(conns["plain"], 200, time.Second)
	if err != nil || len(base) < 190 {
		b.Fatalf("plain link: %d of 200 echoes, %v", len(base), err)
	}
	slices.Sort(base)
	baseMedian := base[len(base)/2]
	for _, i := range []int{0, 1, 5, 4, 6, 2, 3} {
		c := benchLinks[i]
		b.Run(c.name, func(b *testing.B) {
			conn := conns[c.name]
			if _, err := rtts(conn, 3, time.Second); err != nil { // ARP
				b.Fatal(err)
			}
			b.ResetTimer()
			rs, err := rtts(conn, b.N, time.Second)
			b.StopTimer()
			if err != nil || len(rs) < b.N*99/100 {
				b.Fatalf("%d of %d echoes answered, %v", len(rs), b.N, err)
			}
			added := make([]time.Duration, len(rs))
			for i, r := range rs {
				added[i] = (r - baseMedian) / 2
			}
			slices.Sort(added)
			pct := func(p int) time.Duration { return added[min(len(added)-1, len(added)*p/100)] }
			us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
			b.ReportMetric(us(pct(50)), "p50-added-µs")
			b.ReportMetric(us(pct(99)), "p99-added-µs")
			b.ReportMetric(us(pct(50)-c.delay), "p50-excess-µs")
			b.ReportMetric(us(pct(99)-c.delay), "p99-excess-µs")
			b.ReportMetric(us(baseMedian/2), "plain-oneway-µs")
		})
	}
}

package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// idleTopo: h1 — xa — xb — h2 on plain veth pairs, every neighbour
// permanent (no ARP in the latencies measured).
const idleTopo = `
name: idle
nodes:
  - name: h1
    routes: [{to: default, via: 10.1.0.1}]
  - name: xa
    sysctls: {net.ipv4.ip_forward: 1, net.ipv4.conf.all.rp_filter: 0, net.ipv4.conf.default.rp_filter: 0}
  - name: xb
    sysctls: {net.ipv4.ip_forward: 1, net.ipv4.conf.all.rp_filter: 0, net.ipv4.conf.default.rp_filter: 0}
  - name: h2
    routes: [{to: default, via: 10.2.0.1}]
links:
  - name: site1
    ends:
      - {node: h1, ifname: eth0, addrs: [10.1.0.10/24], mac: "02:00:00:00:01:10"}
      - {node: xa, ifname: site0, addrs: [10.1.0.1/24], mac: "02:00:00:00:01:01"}
  - name: core
    ends:
      - {node: xa, ifname: core0, addrs: [192.0.2.1/24], mac: "02:00:00:00:02:01"}
      - {node: xb, ifname: core0, addrs: [192.0.2.2/24], mac: "02:00:00:00:02:02"}
  - name: site2
    ends:
      - {node: xb, ifname: site0, addrs: [10.2.0.1/24], mac: "02:00:00:00:03:01"}
      - {node: h2, ifname: eth0, addrs: [10.2.0.10/24], mac: "02:00:00:00:03:10"}
`

// idleXTR is xa's or xb's rlocd configuration: one queue, the worker pinned
// to CPU 1, a static mapping for the other site.
func idleXTR(name, rloc, eid, peerEID, peerRLOC string) string {
	return fmt.Sprintf(`name: %s
roles: [itr, etr]
rlocs: [%s]
interfaces: [{name: site0, side: site}, {name: core0, side: core}]
cpus: [1]
database: [{eid: %s, rlocs: [{addr: %s, priority: 1}]}]
map_cache: [{eid: %s, rlocs: [{addr: %s, priority: 1}]}]
map_resolvers: [192.0.2.100]
`, name, rloc, eid, rloc, peerEID, peerRLOC)
}

// procCPU returns the user+system CPU time of process pid (all threads).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces): state is 3rd.
	s := string(b)
	fs := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fs) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseUint(fs[11], 10, 64)               // utime, field 14
	st, _ := strconv.ParseUint(fs[12], 10, 64)               // stime, field 15
	return time.Duration(ut+st) * 10 * time.Millisecond, nil // USER_HZ 100
}

// echo is a UDP echo between h1 (client) and h2 (server): round trips
// through both xTRs, timed in Go on both ends (no ping binary needed).
type echo struct {
	cli, srv *net.UDPConn
	buf      [64]byte
}

func newEcho(b *testing.B, n *network) *echo {
	b.Helper()
	e := &echo{}
	// UDP checksums must be complete: they cross AF_XDP sockets.
	for _, h := range []string{"h1", "h2"} {
		if err := n.lab.Node(h).SetTxChecksum("eth0", false); err != nil {
			b.Fatal(err)
		}
	}
	if err := n.lab.Node("h2").Do(func() (err error) {
		e.srv, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 2, 0, 10), Port: 7})
		return err
	}); err != nil {
		b.Fatal(err)
	}
	if err := n.lab.Node("h1").Do(func() (err error) {
		e.cli, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(10, 2, 0, 10), Port: 7})
		return err
	}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.cli.Close(); e.srv.Close() })
	go func() { // echo until the socket closes
		var buf [64]byte
		for {
			k, from, err := e.srv.ReadFromUDPAddrPort(buf[:])
			if err != nil {
				return
			}
			_, _ = e.srv.WriteToUDPAddrPort(buf[:k], from)
		}
	}()
	return e
}

// rtt sends one datagram and returns its round trip, or false when no
// reply came within timeout.
func (e *echo) rtt(seq uint32, timeout time.Duration) (time.Duration, bool) {
	binary.BigEndian.PutUint32(e.buf[:], seq)
	t0 := time.Now()
	if _, err := e.cli.Write(e.buf[:8]); err != nil {
		return 0, false
	}
	deadline := t0.Add(timeout)
	for {
		_ = e.cli.SetReadDeadline(deadline)
		var in [64]byte
		k, err := e.cli.Read(in[:])
		if err != nil {
			return 0, false
		}
		if k >= 4 && binary.BigEndian.Uint32(in[:]) == seq {
			return time.Since(t0), true
		}
	}
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkIdle measures what an idle xTR costs and how fast it answers
// after idling: the CPU time of xa's whole rlocd process over 10 s without
// traffic (idle-cpu-%, of one core), and the round trip of a UDP echo from
// h1 to h2 (through xa and xb, both ways) sent after 5 s of silence
// (first-rtt-ms, median of 3), against the median of 20 echoes 1 ms apart
// (busy-rtt-ms). Run it as
// root:
//
//	go test -run '^$' -bench Idle -benchtime 1x ./e2e
func BenchmarkIdle(b *testing.B) {
	file := filepath.Join(b.TempDir(), "idle.yaml")
	if err := os.WriteFile(file, []byte(idleTopo), 0o644); err != nil {
		b.Fatal(err)
	}
	n := newLabNetwork(b, file, "idle")
	for _, c := range [][]string{
		{"h1", "ip", "neigh", "replace", "10.1.0.1", "lladdr", "02:00:00:00:01:01", "dev", "eth0", "nud", "permanent"},
		{"xa", "ip", "neigh", "replace", "10.1.0.10", "lladdr", "02:00:00:00:01:10", "dev", "site0", "nud", "permanent"},
		{"xa", "ip", "neigh", "replace", "192.0.2.2", "lladdr", "02:00:00:00:02:02", "dev", "core0", "nud", "permanent"},
		{"xb", "ip", "neigh", "replace", "192.0.2.1", "lladdr", "02:00:00:00:02:01", "dev", "core0", "nud", "permanent"},
		{"xb", "ip", "neigh", "replace", "10.2.0.10", "lladdr", "02:00:00:00:03:10", "dev", "site0", "nud", "permanent"},
		{"h2", "ip", "neigh", "replace", "10.2.0.1", "lladdr", "02:00:00:00:03:01", "dev", "eth0", "nud", "permanent"},
	} {
		if out, err := n.lab.Exec(c[0], c[1:]...); err != nil {
			b.Fatalf("%v: %v\n%s", c, err, out)
		}
	}
	n.start("xa", idleXTR("xa", "192.0.2.1", "10.1.0.0/24", "10.2.0.0/24", "192.0.2.2"))
	n.start("xb", idleXTR("xb", "192.0.2.2", "10.2.0.0/24", "10.1.0.0/24", "192.0.2.1"))
	e := newEcho(b, n)
	seq := uint32(0)
	n.waitFor(20*time.Second, "an echo from h1 to h2", func() bool {
		seq++
		_, ok := e.rtt(seq, time.Second)
		return ok
	})
	// roundTrip times one echo; a lost one fails the benchmark.
	roundTrip := func() float64 {
		seq++
		d, ok := e.rtt(seq, 2*time.Second)
		if !ok {
			b.Fatalf("echo %d lost", seq)
		}
		return ms(d)
	}
	pid := n.procs["xa"].Cmd.Process.Pid
	for i := 0; i < b.N; i++ {
		time.Sleep(2 * time.Second) // settle
		c0, err := procCPU(pid)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		time.Sleep(10 * time.Second)
		c1, err := procCPU(pid)
		if err != nil {
			b.Fatal(err)
		}
		idle := float64(c1-c0) / float64(time.Since(t0)) * 100
		var first, busy []float64
		for range 3 {
			time.Sleep(5 * time.Second)
			first = append(first, roundTrip())
		}
		for range 20 {
			busy = append(busy, roundTrip())
			time.Sleep(time.Millisecond)
		}
		b.ReportMetric(idle, "idle-cpu-%")
		b.ReportMetric(median(first), "first-rtt-ms")
		b.ReportMetric(median(busy), "busy-rtt-ms")
		b.Logf("xa rlocd: %v CPU in 10 s idle (%.2f %% of a core); first echo after 5 s idle: %v ms; echoes 1 ms apart: median %.3f ms",
			c1-c0, idle, first, median(busy))
	}
}

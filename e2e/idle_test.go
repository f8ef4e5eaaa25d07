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
// (busy-rtt-ms). It runs the default workers, which sleep in poll(2) when
// idle ("sleep"), workers configured to busy-poll ("busy-poll"), and, as
// the machine's own reference, xa and xb as plain kernel routers without
// rlocd ("kernel": no idle-cpu-%), one network after the other. The
// difference between sleep's and busy-poll's first-rtt-ms is what waking
// the sleeping workers costs the first packet (everything else on the path
// is the same); kernel's first-rtt-ms against its busy-rtt-ms is what
// waking this machine's idle CPUs costs any packet. Run it as root:
//
//	go test -run '^$' -bench Idle -benchtime 1x ./e2e
func BenchmarkIdle(b *testing.B) {
	for _, m := range []struct {
		name, xdp string
	}{{"sleep", ""}, {"busy-poll", "xdp: {busy_poll: true}\n"}, {"kernel", ""}} {
		b.Run(m.name, func(b *testing.B) { benchIdle(b, m.xdp, m.name == "kernel") })
	}
}

// benchIdle is BenchmarkIdle for xTRs whose configs end with xdp, or for
// kernel routes instead of xTRs.
func benchIdle(b *testing.B, xdp string, kernel bool) {
	file := filepath.Join(b.TempDir(), "idle.yaml")
	if err := os.WriteFile(file, []byte(pairTopo("idle", 1)), 0o644); err != nil {
		b.Fatal(err)
	}
	n := newLabNetwork(b, file, "idle")
	pairNeighbours(b, n)
	if kernel {
		for _, c := range [][]string{
			{"xa", "ip", "route", "replace", "10.2.0.0/24", "via", "192.0.2.2"},
			{"xb", "ip", "route", "replace", "10.1.0.0/24", "via", "192.0.2.1"},
		} {
			if out, err := n.lab.Exec(c[0], c[1:]...); err != nil {
				b.Fatalf("%v: %v\n%s", c, err, out)
			}
		}
	} else {
		n.start("xa", pairXTR("1", 1, "[1]")+xdp)
		n.start("xb", pairXTR("2", 1, "[1]")+xdp)
	}
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
	for i := 0; i < b.N; i++ {
		time.Sleep(2 * time.Second) // settle
		if !kernel {
			pid := n.procs["xa"].Cmd.Process.Pid
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
			b.ReportMetric(idle, "idle-cpu-%")
			b.Logf("xa rlocd: %v CPU in 10 s idle (%.2f %% of a core)", c1-c0, idle)
		}
		var first, busy []float64
		for range 3 {
			time.Sleep(5 * time.Second)
			first = append(first, roundTrip())
		}
		for range 20 {
			busy = append(busy, roundTrip())
			time.Sleep(time.Millisecond)
		}
		b.ReportMetric(median(first), "first-rtt-ms")
		b.ReportMetric(median(busy), "busy-rtt-ms")
		b.Logf("first echo after 5 s idle: %v ms; echoes 1 ms apart: median %.3f ms", first, median(busy))
	}
}

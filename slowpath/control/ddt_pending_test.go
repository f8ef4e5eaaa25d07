package control

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
)

// TestDDTResolverPendingBound: with max_pending 2 and a root that never
// answers, two resolutions are in progress and every further request is
// refused and counted without a DDT request or any new state; a request
// whose nonce is already pending is refused too. When the two time out,
// the bound frees and the next request starts a resolution.
func TestDDTResolverPendingBound(t *testing.T) {
	probe, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	probe.Close()
	root, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loAddr(91), port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	clk := newFakeClock()
	mr := newEngineWith(t, Config{Listen: []netip.AddrPort{netip.AddrPortFrom(loAddr(90), port)},
		MapResolver: &MapResolverConfig{DDTRoots: []netip.AddrPort{netip.AddrPortFrom(loAddr(91), port)}, DDTPort: port,
			DDT: slowpath.DDTResolverConfig{MaxPending: 2}}},
		nil, slowpath.Options{Clock: clk.Now})
	itr, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loAddr(92), port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { itr.Close() })
	tr := &ddtTree{port: port, mr: mr, clk: clk, itr: itr, itrAddr: loAddr(92)}
	rootGot := 0
	drainRoot := func() {
		buf := make([]byte, 9216)
		for {
			root.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if _, err := root.Read(buf); err != nil {
				return
			}
			rootGot++
		}
	}
	stats := func() (resolutions, refused uint64) {
		st, _, _ := mr.DDTResolverStats()
		return st.Resolutions, st.Refused
	}
	tr.ask(t, "10.1.2.1")
	tr.ask(t, "10.1.2.2")
	waitFor(t, 5*time.Second, "two resolutions", func() bool { r, _ := stats(); return r == 2 })
	for i := 0; i < 20; i++ {
		tr.ask(t, "10.1.2.3")
	}
	tr.n = 1 // the first request's nonce again
	tr.ask(t, "10.1.2.1")
	waitFor(t, 5*time.Second, "refusals", func() bool { _, f := stats(); return f == 21 })
	drainRoot()
	if r, f := stats(); r != 2 || f != 21 || rootGot != 2 {
		t.Fatalf("resolutions %d, refused %d, DDT requests at the root %d; want 2, 21, 2", r, f, rootGot)
	}
	tick(t, mr, clk, time.Second)   // each retransmitted once
	tick(t, mr, clk, 2*time.Second) // and given up
	tr.n = 50
	tr.ask(t, "10.1.2.4")
	waitFor(t, 5*time.Second, "a resolution after the bound freed", func() bool { r, _ := stats(); return r == 3 })
	if st, _, _ := mr.DDTResolverStats(); st.TimedOut != 2 || st.Refused != 21 {
		t.Fatalf("timed out %d, refused %d; want 2, 21", st.TimedOut, st.Refused)
	}
}

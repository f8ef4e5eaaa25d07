package e2e

import (
	"encoding/binary"
	"fmt"
	"maps"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/ring/xsk"
)

// TestOffloadDaemon runs xtr1 with xdp.offload. While its core interface
// does not take XDP redirects (a veth whose peer runs no XDP program),
// rlocd refuses to start and says why. Once it does: after the mapping is
// resolved, a UDP flow from h1 to h2 is encapsulated by xtr1's site XDP
// program (counted as xdp_offloaded, not as encap), and every datagram
// arrives at h2 through xtr2, in order. When the peer detaches its XDP
// program, xtr1 pauses the offload and its workers send every datagram;
// when it attaches one again, the offload resumes. xtr2 runs
// xdp.offload_decap: refused while its site interface does not take
// redirects; then its core program delivers most datagrams itself, and it
// pauses that direction alone when h2 detaches its XDP program. xtr2 marks
// h2's ARP entry used (made STALE, it is probed again), which neither its
// kernel's deliveries nor its workers' pass.
func TestOffloadDaemon(t *testing.T) {
	n := newNetwork(t)
	cfg := xtrYAML("xtr1", "1", "key-one", "0s") + "xdp: {offload: true}\nmetrics: {listen: \"127.0.0.1:9100\"}\n"
	if out := n.refused("xtr1", "xtr1-offload.yaml", cfg); !strings.Contains(out, "interfaces[1]: xdp.offload: core0 does not take XDP redirects") {
		t.Fatalf("rlocd with offload towards a core that drops redirects:\n%s", tail(out, 5))
	}
	cfg2 := xtrYAML("xtr2", "2", "key-two", "0s") + "xdp: {offload: true, offload_decap: true}\nmetrics: {listen: \"127.0.0.1:9100\"}\n"
	if out := n.refused("xtr2", "xtr2-decap.yaml", cfg2); !strings.Contains(out, "interfaces[0]: xdp.offload_decap: site0 does not take XDP redirects") {
		t.Fatalf("rlocd with offload_decap towards a site that drops redirects:\n%s", tail(out, 5))
	}
	// The bridge port facing xtr1's core interface, and h2's interface
	// facing xtr2's site, must take XDP redirects: on veth, an XDP program
	// on the peer (mode off passes all).
	peerXDP := func(node, ifname string) *xsk.Program {
		p, err := xsk.LoadProgram(xsk.ProgramConfig{Mode: xsk.ModeOff})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.lab.Node(node).Do(func() error { return p.Attach(ifname, xsk.XDPDriver) }); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.lab.Node(node).Do(p.Close) })
		return p
	}
	peer, h2peer := peerXDP("core", "p0"), peerXDP("h2", "eth0")
	peerXDP("core", "p1") // xtr2's core0: xtr2 encapsulates in the kernel too
	n.start("msmr", msmrYAML("4s"))
	n.start("xtr1", cfg)
	n.start("xtr2", cfg2)
	for _, h := range []string{"h1", "h2"} {
		if err := n.lab.Node(h).SetTxChecksum("eth0", false); err != nil {
			t.Fatal(err)
		}
	}
	n.waitFor(10*time.Second, "4 registrations", func() bool { return len(n.registrations()) == 4 })
	if got, err := n.lab.Ping("h1", h2v4, 3, 2*time.Second); err != nil || got != 3 {
		t.Fatalf("h1 -> h2: %d/3 replies (%v)", got, err)
	}

	var rx, tx *net.UDPConn
	if err := n.lab.Node("h2").Do(func() (err error) {
		rx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: h2v4.AsSlice(), Port: 9000})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if err := n.lab.Node("h1").Do(func() (err error) {
		tx, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: h2v4.AsSlice(), Port: 9000})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	// burst sends count datagrams h1 -> h2, checks that h2 received them
	// all, in order but for a few, and returns xtr1's fast-path stats and
	// the change of its offloaded and encapsulated counts, and of xtr2's
	// offloaded and decapsulated ones ("xtr2/...").
	burst := func(count int) (after, delta map[string]uint64) {
		reordered := 0
		got := make(chan int, 1)
		go func() {
			buf := make([]byte, 64)
			last, k := -1, 0
			for k < count {
				_ = rx.SetReadDeadline(time.Now().Add(2 * time.Second))
				m, err := rx.Read(buf)
				if err != nil {
					break
				}
				if m != 16 {
					continue
				}
				s := int(binary.BigEndian.Uint64(buf))
				if s < last {
					reordered++
				}
				last = max(last, s)
				k++
			}
			got <- k
		}()
		before, before2 := n.stats("xtr1").Fastpath, n.stats("xtr2").Fastpath
		msg := make([]byte, 16)
		for i := range count {
			binary.BigEndian.PutUint64(msg, uint64(i))
			if _, err := tx.Write(msg); err != nil {
				t.Fatal(err)
			}
			if i%32 == 31 {
				time.Sleep(100 * time.Microsecond) // below what copy-mode veth rings hold
			}
		}
		k := <-got
		after = n.stats("xtr1").Fastpath
		delta = map[string]uint64{}
		for _, c := range []string{"xdp_offloaded", "encap"} {
			delta[c] = after[c] - before[c]
		}
		after2 := n.stats("xtr2").Fastpath
		for _, c := range []string{"xdp_offloaded", "decap"} {
			delta["xtr2/"+c] = after2[c] - before2[c]
		}
		t.Logf("received %d of %d, %d out of order; xtr1 offloaded %d, encapsulated %d; offload puts %d, paused %d; "+
			"xtr2 offloaded %d, decapsulated %d, paused %d",
			k, count, reordered, delta["xdp_offloaded"], delta["encap"], after["offload_put"], after["xdp_offload_paused"],
			delta["xtr2/xdp_offloaded"], delta["xtr2/decap"], after2["xdp_offload_paused"])
		if k != count {
			t.Fatalf("h2 received %d of %d datagrams", k, count)
		}
		if reordered > 64 {
			t.Fatalf("%d datagrams out of order", reordered)
		}
		return after, delta
	}
	const count = 5000
	after, d := burst(count)
	if e, ok := after["xdp_offload_errors"]; !ok || e != 0 {
		t.Fatalf("xdp_offload_errors %d (reported: %v)", e, ok)
	}
	if off, enc := d["xdp_offloaded"], d["encap"]; off < count/2 || off+enc < count {
		t.Fatalf("xtr1's site program offloaded %d of %d (worker %d)", off, count, enc)
	}
	if off, dec := d["xtr2/xdp_offloaded"], d["xtr2/decap"]; off < count/2 || off+dec < count {
		t.Fatalf("xtr2's core program delivered %d of %d (worker %d)", off, count, dec)
	}
	// What the kernel tables hold (rlocctl offload, GET /v1/offload):
	// xtr1's site program encapsulates the flow to h2 towards xtr2's RLOC
	// out of core0, xtr2's core program delivers it out of site0, each
	// entry of the current epoch with the packets it sent; xtr1's decap
	// direction is off (epoch 0). The sweep (once a second) counts the
	// current entries (rloc_xdp_offload_flows). A map-cache or neighbour
	// change starts a new epoch, whose sweep deletes the entries of the
	// last: then another burst offers the flow again.
	ctl := buildTool(t, "rlocctl")
	checks, last := map[string]func() bool{}, map[string]string{}
	for node, c := range map[string]struct {
		row, also *regexp.Regexp
		dir       string
	}{
		"xtr1": {regexp.MustCompile(`(?m)^encap\s+0\s+10\.2\.0\.10\s+\d+\s+192\.0\.2\.2\s+-\s+core0\s+\d+\s+yes\s+[1-9]\d*$`),
			regexp.MustCompile(`(?m)^decap\s+false\s+0\s+false$`), "encap"},
		"xtr2": {regexp.MustCompile(`(?m)^decap\s+0\s+10\.2\.0\.10\s+-\s+192\.0\.2\.2\s+ipv4\s+site0\s+\d+\s+yes\s+[1-9]\d*$`),
			regexp.MustCompile(`(?m)^decap\s+true\s+\d+\s+false$`), "decap"},
	} {
		checks[node] = func() bool {
			out, err := exec.Command(ctl, "-s", n.sock(node), "offload").CombinedOutput()
			if err != nil {
				t.Fatalf("rlocctl offload on %s: %v\n%s", node, err, out)
			}
			flows := n.scrape(node, "127.0.0.1:9100")[`rloc_xdp_offload_flows{direction="`+c.dir+`"}`]
			last[node] = fmt.Sprintf("rloc_xdp_offload_flows{direction=%q} %v, rlocctl offload:\n%s", c.dir, flows, out)
			return c.row.Match(out) && c.also.Match(out) && flows >= 1
		}
	}
	for try := 0; len(checks) > 0; try++ {
		if try > 0 {
			if try == 3 {
				for _, node := range slices.Sorted(maps.Keys(checks)) {
					t.Errorf("%s: the offloaded flow was not listed and counted: %s", node, last[node])
				}
				t.FailNow()
			}
			burst(500)
		}
		// Polled for 2.5 s: the count waits for the next sweep.
		for range 25 {
			for node, ok := range checks {
				if ok() {
					delete(checks, node)
				}
			}
			if len(checks) == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// xtr2 delivers the flow to h2 through its kernel (and its worker),
	// neither of which passes h2's ARP entry: made STALE, the entry is
	// probed again once rlocd marks it used (housekeeping, once a second,
	// after the sweep found the kernel's packets).
	stale := func() (string, error) {
		out, err := n.lab.Node("xtr2").Command("ip", "neigh", "show", h2v4.String(), "dev", "site0").CombinedOutput()
		if f := strings.Fields(string(out)); err == nil && len(f) > 0 {
			return f[len(f)-1], nil
		}
		return "", fmt.Errorf("ip neigh show: %v: %s", err, out)
	}
	if out, err := n.lab.Node("xtr2").Command("ip", "neigh", "change", h2v4.String(), "dev", "site0", "nud", "stale").CombinedOutput(); err != nil {
		t.Fatalf("ip neigh change: %v: %s", err, out)
	}
	burst(500)
	n.waitFor(10*time.Second, "xtr2 marks h2's ARP entry used", func() bool {
		s, err := stale()
		return err == nil && s != "STALE"
	})
	m := n.scrape("xtr2", "127.0.0.1:9100")
	if m[`rloc_nexthop_events_total{event="neigh_marked"}`] < 1 ||
		m[`rloc_nexthop_events_total{event="snapshots"}`] < 1 || m[`rloc_nexthop_events_total{event="events"}`] < 1 {
		t.Fatalf("xtr2's next-hop watcher metrics: neigh_marked %v, snapshots %v, events %v; want each at least 1",
			m[`rloc_nexthop_events_total{event="neigh_marked"}`], m[`rloc_nexthop_events_total{event="snapshots"}`],
			m[`rloc_nexthop_events_total{event="events"}`])
	}
	if v, ok := m[`rloc_nexthop_routes_without_egress`]; !ok || v != 0 {
		t.Fatalf("xtr2's rloc_nexthop_routes_without_egress %v (exported %v), want 0: its routes all name an interface or a nexthop object", v, ok)
	}

	// The peer detaches its XDP program: core0 no longer takes redirects,
	// so xtr1 pauses the offload and its workers send every datagram.
	paused := func(want uint64) bool { return n.stats("xtr1").Fastpath["xdp_offload_paused"] == want }
	if err := n.lab.Node("core").Do(peer.Detach); err != nil {
		t.Fatal(err)
	}
	n.waitFor(10*time.Second, "xtr1 pauses the offload", func() bool { return paused(1) })
	if after, d = burst(2000); d["xdp_offloaded"] != 0 || d["encap"] < 2000 || after["xdp_offload_pauses"] != 1 {
		t.Fatalf("paused: offloaded %d, encapsulated %d of 2000; pauses %d", d["xdp_offloaded"], d["encap"], after["xdp_offload_pauses"])
	}
	m = n.scrape("xtr1", "127.0.0.1:9100")
	if enc, dec := m[`rloc_xdp_offload_paused{direction="encap"}`], m[`rloc_xdp_offload_paused{direction="decap"}`]; enc != 1 || dec != 0 ||
		m[`rloc_xdp_offload_events_total{event="pauses"}`] != 1 {
		t.Fatalf("metrics while paused: rloc_xdp_offload_paused encap %v decap %v, pauses %v", enc, dec,
			m[`rloc_xdp_offload_events_total{event="pauses"}`])
	}
	// Attached again: the offload resumes.
	if err := n.lab.Node("core").Do(func() error { return peer.Attach("p0", xsk.XDPDriver) }); err != nil {
		t.Fatal(err)
	}
	n.waitFor(10*time.Second, "xtr1 resumes the offload", func() bool { return paused(0) })
	if _, d = burst(2000); d["xdp_offloaded"] < 1000 {
		t.Fatalf("resumed: offloaded %d of 2000 (worker %d)", d["xdp_offloaded"], d["encap"])
	}
	// h2 detaches its program: xtr2's site interface no longer takes
	// redirects, so xtr2 pauses and its workers deliver every datagram.
	if err := n.lab.Node("h2").Do(h2peer.Detach); err != nil {
		t.Fatal(err)
	}
	n.waitFor(10*time.Second, "xtr2 pauses the offload", func() bool { return n.stats("xtr2").Fastpath["xdp_offload_paused"] == 1 })
	if _, d = burst(2000); d["xtr2/xdp_offloaded"] != 0 || d["xtr2/decap"] < 2000 {
		t.Fatalf("xtr2 paused: offloaded %d, decapsulated %d of 2000", d["xtr2/xdp_offloaded"], d["xtr2/decap"])
	}
	// Only the direction that redirects to site0 is paused.
	m = n.scrape("xtr2", "127.0.0.1:9100")
	if enc, dec := m[`rloc_xdp_offload_paused{direction="encap"}`], m[`rloc_xdp_offload_paused{direction="decap"}`]; enc != 0 || dec != 1 {
		t.Fatalf("xtr2's metrics: rloc_xdp_offload_paused encap %v decap %v, want 0 and 1", enc, dec)
	}
}

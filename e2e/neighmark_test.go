package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestNeighbourMarksFollowTraffic: rlocd marks the kernel's neighbour
// entry of a host its workers deliver to used, as the kernel's own
// forwarding would (the workers' packets pass none of it), and stops once
// the workers stop sending to it: the kernel then leaves the host's entry
// STALE, where marks would keep probing it. xb delivers to two hosts
// behind site0 with dynamic ARP entries, h2 (10.2.0.10) and a second
// address of h2's with a MAC of its own (10.2.0.11, a macvlan). xb's
// kernel keeps a STALE entry that was marked used in DELAY for 30 s
// (delay_first_probe_time), so a mark shows as DELAY. A steady flow to
// 10.2.0.11 is the clock: each time the test makes 10.2.0.11's entry STALE
// and sees it marked again, rlocd made a round of marks since. After
// 10.2.0.10's last datagram, three such rounds pass, the test makes its
// entry STALE, two more rounds pass, and the entry must still be STALE.
func TestNeighbourMarksFollowTraffic(t *testing.T) {
	file := filepath.Join(t.TempDir(), "neighmark.yaml")
	if err := os.WriteFile(file, []byte(pairTopo("neighmark", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	n := newLabNetwork(t, file, "nm")
	pairNeighbours(t, n)
	for _, c := range [][]string{
		{"h2", "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1"},
		{"h2", "sysctl", "-qw", "net.ipv4.conf.eth0.arp_ignore=1"},
		{"h2", "ip", "link", "add", "link", "eth0", "name", "m3", "address", "02:00:00:00:03:11", "type", "macvlan", "mode", "bridge"},
		{"h2", "ip", "addr", "add", "10.2.0.11/24", "dev", "m3"},
		{"h2", "ip", "link", "set", "m3", "up"},
		{"xb", "sysctl", "-qw", "net.ipv4.neigh.site0.delay_first_probe_time=30"},
		{"xb", "ip", "neigh", "replace", "10.2.0.10", "lladdr", "02:00:00:00:03:10", "dev", "site0", "nud", "stale"},
		{"xb", "ip", "neigh", "replace", "10.2.0.11", "lladdr", "02:00:00:00:03:11", "dev", "site0", "nud", "stale"},
	} {
		if out, err := n.lab.Exec(c[0], c[1:]...); err != nil {
			t.Fatalf("%v: %v\n%s", c, err, out)
		}
	}
	if err := n.lab.Node("h1").SetTxChecksum("eth0", false); err != nil { // complete checksums: they cross AF_XDP
		t.Fatal(err)
	}
	n.start("xa", pairXTR("1", 1, "[1]"))
	n.start("xb", pairXTR("2", 1, "[1]"))

	dial := func(ip string) *net.UDPConn {
		var c *net.UDPConn
		if err := n.lab.Node("h1").Do(func() (err error) {
			c, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(ip), Port: 9})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	state := func(ip string) string {
		out, err := n.lab.Exec("xb", "ip", "neigh", "show", ip, "dev", "site0")
		if f := strings.Fields(string(out)); err == nil && len(f) > 0 {
			return f[len(f)-1]
		}
		t.Fatalf("ip neigh show %s: %v: %s", ip, err, out)
		return ""
	}
	stale := func(ip string) {
		if out, err := n.lab.Exec("xb", "ip", "neigh", "change", ip, "dev", "site0", "nud", "stale"); err != nil {
			t.Fatalf("ip neigh change %s: %v: %s", ip, err, out)
		}
	}
	marked := func(ip string) {
		n.waitFor(10*time.Second, ip+"'s entry at xb marked used", func() bool { return state(ip) != "STALE" })
	}

	// The host sent to is marked (a worker notes what it sent through
	// while it steps: the datagrams go on until the mark).
	c10 := dial("10.2.0.10")
	d0 := n.stats("xb").Fastpath["decap"]
	n.waitFor(20*time.Second, "10.2.0.10's entry at xb marked used while xb delivers to it", func() bool {
		_, _ = c10.Write([]byte("to h2"))
		return state("10.2.0.10") != "STALE"
	})
	if d := n.stats("xb").Fastpath["decap"]; d == d0 {
		t.Fatal("10.2.0.10 marked, but xb's workers decapsulated nothing")
	}

	// The clock: a steady flow to 10.2.0.11, at most 2000 datagrams.
	c11 := dial("10.2.0.11")
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 2000 {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			_, _ = c11.Write([]byte("to m3"))
		}
	}()
	defer wg.Wait()
	defer close(done)
	round := func() {
		stale("10.2.0.11")
		marked("10.2.0.11")
	}
	// A worker notes what it sent through every half second, rlocd hands
	// the notes to the watcher once a second, and the watcher marks the
	// entries of one hand-off in any order: after three rounds, every mark
	// of 10.2.0.10 from before its last datagram is done.
	for range 3 {
		round()
	}
	stale("10.2.0.10")
	if s := state("10.2.0.10"); s != "STALE" {
		t.Fatalf("10.2.0.10 made STALE: %s", s)
	}
	round()
	round()
	if s := state("10.2.0.10"); s != "STALE" {
		t.Fatalf("10.2.0.10, sent nothing for two rounds of marks: %s, want STALE (rlocd marks a host no longer sent to)", s)
	}
}

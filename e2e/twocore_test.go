package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// twoCoreTopo: h1 — xa ==== xb — h2, every link a veth pair with two
// receive and transmit queues. xa and xb run rlocd with one worker per
// queue (queues: 2), pinned to CPUs 0 and 1. Neighbours are permanent, so no
// packet takes the kernel's ARP path (which could reorder a flow's first
// packets against the AF_XDP path).
const twoCoreTopo = `
name: twocore
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
    queues: 2
    ends:
      - {node: h1, ifname: eth0, addrs: [10.1.0.10/24], mac: "02:00:00:00:01:10"}
      - {node: xa, ifname: site0, addrs: [10.1.0.1/24], mac: "02:00:00:00:01:01"}
  - name: core
    queues: 2
    ends:
      - {node: xa, ifname: core0, addrs: [192.0.2.1/24], mac: "02:00:00:00:02:01"}
      - {node: xb, ifname: core0, addrs: [192.0.2.2/24], mac: "02:00:00:00:02:02"}
  - name: site2
    queues: 2
    ends:
      - {node: xb, ifname: site0, addrs: [10.2.0.1/24], mac: "02:00:00:00:03:01"}
      - {node: h2, ifname: eth0, addrs: [10.2.0.10/24], mac: "02:00:00:00:03:10"}
`

// twoCoreXTR is the rlocd configuration of xa or xb: two queues, two
// pinned workers, a static mapping for the other site (the Map-Resolver
// address answers nothing and is not needed).
func twoCoreXTR(name, rloc, eid, peerEID, peerRLOC string) string {
	return fmt.Sprintf(`name: %s
roles: [itr, etr]
rlocs: [%s]
interfaces: [{name: site0, side: site, queues: 2}, {name: core0, side: core, queues: 2}]
cpus: [0, 1]
database: [{eid: %s, rlocs: [{addr: %s, priority: 1}]}]
map_cache: [{eid: %s, rlocs: [{addr: %s, priority: 1}]}]
map_resolvers: [192.0.2.100]
`, name, rloc, eid, rloc, peerEID, peerRLOC)
}

// TestTwoWorkers: 16 UDP flows from h1 to h2 through two xTRs that each run
// two workers on two queues. Every worker of both routers forwards part of
// the traffic (the veth queues spread the flows), and every flow arrives
// complete and in order (a flow stays on one queue, so on one worker).
func TestTwoWorkers(t *testing.T) {
	file := filepath.Join(t.TempDir(), "twocore.yaml")
	if err := os.WriteFile(file, []byte(twoCoreTopo), 0o644); err != nil {
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
	for _, c := range [][]string{
		{"h1", "ip", "neigh", "replace", "10.1.0.1", "lladdr", "02:00:00:00:01:01", "dev", "eth0", "nud", "permanent"},
		{"xa", "ip", "neigh", "replace", "192.0.2.2", "lladdr", "02:00:00:00:02:02", "dev", "core0", "nud", "permanent"},
		{"xb", "ip", "neigh", "replace", "10.2.0.10", "lladdr", "02:00:00:00:03:10", "dev", "site0", "nud", "permanent"},
	} {
		if out, err := n.lab.Exec(c[0], c[1:]...); err != nil {
			t.Fatalf("%v: %v\n%s", c, err, out)
		}
	}
	n.start("xa", twoCoreXTR("xa", "192.0.2.1", "10.1.0.0/24", "10.2.0.0/24", "192.0.2.2"))
	n.start("xb", twoCoreXTR("xb", "192.0.2.2", "10.2.0.0/24", "10.1.0.0/24", "192.0.2.1"))
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
			s.Fastpath["xsk-tx-frames"], s.Fastpath["xsk-tx-sendto"])
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

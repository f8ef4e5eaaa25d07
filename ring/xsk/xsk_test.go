package xsk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/internal/testkit/netnstest"
	"github.com/rloc-router/rloc/lab/netns"
	"github.com/rloc-router/rloc/ring"
)

// topo is a router namespace and a peer namespace joined by veth pairs:
// link i is r<i><sfx> (10.7<i>.0.1/24, fd7<i>::1/64) in the router and
// p<i><sfx> (10.7<i>.0.2, fd7<i>::2) in the peer.
type topo struct {
	r, p  *netns.NS
	rif   []string
	pif   []string
	pmac  []net.HardwareAddr
	rmac  []net.HardwareAddr
	links int
}

func newTopo(t *testing.T, links int) *topo {
	t.Helper()
	s := netns.Suffix()
	tp := &topo{r: netnstest.New(t, "xr"), p: netnstest.New(t, "xp"), links: links}
	for i := 0; i < links; i++ {
		ri, pi := "r"+string(rune('0'+i))+s, "p"+string(rune('0'+i))+s
		if err := netns.Veth(tp.r, ri, tp.p, pi); err != nil {
			t.Fatal(err)
		}
		for _, a := range []struct {
			ns   *netns.NS
			ifn  string
			addr string
		}{
			{tp.r, ri, v4(i, 1) + "/24"}, {tp.p, pi, v4(i, 2) + "/24"},
			{tp.r, ri, v6(i, 1) + "/64"}, {tp.p, pi, v6(i, 2) + "/64"},
		} {
			if err := a.ns.AddAddr(a.ifn, netip.MustParsePrefix(a.addr)); err != nil {
				t.Fatal(err)
			}
		}
		// Destinations behind the router, so the peer sends transit traffic
		// (after ARP/ND for the router's address, which must pass).
		for _, cmd := range [][]string{
			{"ip", "route", "add", "10.1" + string(rune('0'+i)) + ".0.0/16", "via", v4(i, 1)},
			{"ip", "-6", "route", "add", "fd1" + string(rune('0'+i)) + "::/16", "via", v6(i, 1)},
		} {
			if out, err := tp.p.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
				t.Fatalf("%v: %v %s", cmd, err, out)
			}
		}
		rl, err := tp.r.Link(ri)
		if err != nil {
			t.Fatal(err)
		}
		pl, err := tp.p.Link(pi)
		if err != nil {
			t.Fatal(err)
		}
		tp.rif, tp.pif = append(tp.rif, ri), append(tp.pif, pi)
		tp.rmac, tp.pmac = append(tp.rmac, rl.Attrs().HardwareAddr), append(tp.pmac, pl.Attrs().HardwareAddr)
	}
	return tp
}

func v4(link, host int) string {
	return "10.7" + string(rune('0'+link)) + ".0." + string(rune('0'+host))
}

func v6(link, host int) string {
	return "fd7" + string(rune('0'+link)) + "::" + string(rune('0'+host))
}

// steer attaches a program in mode m to router link i and opens a socket
// of group g on it (a new group when g is nil).
func (tp *topo) steer(t *testing.T, i int, cfg ProgramConfig, xm XDPMode, g *Group) (*Program, *Port) {
	t.Helper()
	prog, err := LoadProgram(cfg)
	if err != nil {
		testkit.Unavailable(t, "load XDP program: %v", err)
	}
	for _, a := range []string{v4(i, 1), v6(i, 1)} {
		if err := prog.AddLocal(netip.MustParseAddr(a)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tp.r.Do(func() error { return prog.Attach(tp.rif[i], xm) }); err != nil {
		prog.Close()
		testkit.Unavailable(t, "attach XDP (mode %d) to veth: %v", xm, err)
	}
	t.Cleanup(func() {
		if err := tp.r.Do(prog.Close); err != nil {
			t.Errorf("program close: %v", err)
		}
	})
	if g == nil {
		if g, err = NewGroup(Options{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
	}
	var port *Port
	if err := tp.r.Do(func() (err error) {
		port, err = g.Open(tp.rif[i], 0)
		return err
	}); err != nil {
		testkit.Unavailable(t, "AF_XDP socket on veth: %v", err)
	}
	if err := prog.Register(0, port.FD()); err != nil {
		t.Fatal(err)
	}
	return prog, port
}

// udpIn opens a UDP socket bound to addr inside ns.
func udpIn(t *testing.T, ns *netns.NS, network, addr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := ns.Do(func() error {
		a, err := net.ResolveUDPAddr(network, addr)
		if err != nil {
			return err
		}
		c, err = net.ListenUDP(network, a)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sendFrom sends count datagrams with payload to dst from inside ns.
func sendFrom(t *testing.T, ns *netns.NS, network, dst string, payload []byte, count int) {
	t.Helper()
	if err := ns.Do(func() error {
		c, err := net.Dial(network, dst)
		if err != nil {
			return err
		}
		defer c.Close()
		for i := 0; i < count; i++ {
			if _, err := c.Write(payload); err != nil {
				return err
			}
			time.Sleep(time.Millisecond)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// receiveMatching polls port for up to timeout and counts frames whose bytes
// contain marker; fn, if set, gets each matching frame (and must not keep it).
func receiveMatching(t *testing.T, port *Port, marker []byte, want int, timeout time.Duration, fn func(f *ring.Frame) bool) int {
	t.Helper()
	var fs [ring.IdealBatchSize]ring.Frame
	got := 0
	deadline := time.Now().Add(timeout)
	for got < want && time.Now().Before(deadline) {
		if _, err := port.Wait(50 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		n, err := port.Receive(fs[:])
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if bytes.Contains(fs[i].Bytes(), marker) {
				got++
				if fn != nil && fn(&fs[i]) {
					fs[i] = ring.Frame{} // taken
				}
			}
		}
		port.Release(fs[:n])
	}
	return got
}

func readUDP(c *net.UDPConn, timeout time.Duration) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 2048)
	n, _, err := c.ReadFromUDP(buf)
	return buf[:n], err
}

func TestSiteMode(t *testing.T) {
	for _, xm := range []struct {
		name string
		m    XDPMode
	}{{"driver", XDPDriver}, {"generic", XDPGeneric}} {
		t.Run(xm.name, func(t *testing.T) {
			tp := newTopo(t, 1)
			prog, port := tp.steer(t, 0, ProgramConfig{Mode: ModeSite}, xm.m, nil)
			host := udpIn(t, tp.r, "udp4", v4(0, 1)+":6000")
			host6 := udpIn(t, tp.r, "udp6", "["+v6(0, 1)+"]:6000")

			// Transit IPv4 and IPv6 reach the socket (ARP and ND for the
			// next hop must have passed to the kernel for them to be sent).
			sendFrom(t, tp.p, "udp4", "10.10.0.5:5000", []byte("transit-v4"), 10)
			if got := receiveMatching(t, port, []byte("transit-v4"), 10, 5*time.Second, nil); got != 10 {
				t.Errorf("XSK received %d of 10 transit IPv4 datagrams", got)
			}
			sendFrom(t, tp.p, "udp6", "[fd10::5]:5000", []byte("transit-v6"), 10)
			if got := receiveMatching(t, port, []byte("transit-v6"), 10, 5*time.Second, nil); got != 10 {
				t.Errorf("XSK received %d of 10 transit IPv6 datagrams", got)
			}
			// Traffic to the router's own addresses goes to the kernel.
			sendFrom(t, tp.p, "udp4", v4(0, 1)+":6000", []byte("to-host-v4"), 1)
			if b, err := readUDP(host, 5*time.Second); err != nil || string(b) != "to-host-v4" {
				t.Errorf("host socket: %q, %v", b, err)
			}
			sendFrom(t, tp.p, "udp6", "["+v6(0, 1)+"]:6000", []byte("to-host-v6"), 1)
			if b, err := readUDP(host6, 5*time.Second); err != nil || string(b) != "to-host-v6" {
				t.Errorf("host socket v6: %q, %v", b, err)
			}
			st, err := prog.Stats()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("program stats %v", st)
			if st[StatRedirect] < 20 || st[StatPassLocal] < 2 || st[StatPassNotIP] < 1 || st[StatPassControl] < 1 {
				t.Errorf("stats: redirect %d local %d not-ip(ARP) %d control(ND) %d",
					st[StatRedirect], st[StatPassLocal], st[StatPassNotIP], st[StatPassControl])
			}
		})
	}
}

func TestCoreMode(t *testing.T) {
	tp := newTopo(t, 1)
	prog, port := tp.steer(t, 0, ProgramConfig{Mode: ModeCore}, XDPDriver, nil)
	ctl := udpIn(t, tp.r, "udp4", v4(0, 1)+":4342")
	vx := udpIn(t, tp.r, "udp4", v4(0, 1)+":4789")
	rloc := v4(0, 1)

	sendFrom(t, tp.p, "udp4", rloc+":4341", []byte("lisp-data"), 10)
	if got := receiveMatching(t, port, []byte("lisp-data"), 10, 5*time.Second, nil); got != 10 {
		t.Errorf("XSK received %d of 10 LISP data datagrams", got)
	}
	sendFrom(t, tp.p, "udp6", "["+v6(0, 1)+"]:4341", []byte("lisp-data-v6"), 5)
	if got := receiveMatching(t, port, []byte("lisp-data-v6"), 5, 5*time.Second, nil); got != 5 {
		t.Errorf("XSK received %d of 5 LISP data datagrams over IPv6", got)
	}
	sendFrom(t, tp.p, "udp4", rloc+":4342", []byte("map-request"), 1)
	if b, err := readUDP(ctl, 5*time.Second); err != nil || string(b) != "map-request" {
		t.Errorf("control socket on 4342: %q, %v", b, err)
	}
	// Transit traffic (not to a local RLOC) is the kernel's in core mode.
	sendFrom(t, tp.p, "udp4", "10.10.0.9:4341", []byte("not-ours"), 3)
	if got := receiveMatching(t, port, []byte("not-ours"), 1, 300*time.Millisecond, nil); got != 0 {
		t.Errorf("XSK received %d datagrams not addressed to a local RLOC", got)
	}
	// VXLAN passes until enabled.
	sendFrom(t, tp.p, "udp4", rloc+":4789", []byte("vxlan-off"), 1)
	if b, err := readUDP(vx, 5*time.Second); err != nil || string(b) != "vxlan-off" {
		t.Errorf("4789 with VXLAN off: %q, %v", b, err)
	}
	if err := prog.Configure(ProgramConfig{Mode: ModeCore, VXLAN: true}); err != nil {
		t.Fatal(err)
	}
	sendFrom(t, tp.p, "udp4", rloc+":4789", []byte("vxlan-on"), 3)
	if got := receiveMatching(t, port, []byte("vxlan-on"), 3, 5*time.Second, nil); got != 3 {
		t.Errorf("XSK received %d of 3 VXLAN datagrams with VXLAN on", got)
	}
	// A LISP datagram the sender's kernel fragments (DF clear, larger than
	// the veth MTU): both fragments reach the socket, the second without a
	// UDP header (RFC 9300 §7.1, the ETR reassembles).
	big := bytes.Repeat([]byte("outer-frag"), 200)
	var frags [2]bool
	sendFrom(t, tp.p, "udp4", rloc+":4341", big, 1)
	receiveMatching(t, port, []byte("outer-frag"), 2, 5*time.Second, func(f *ring.Frame) bool {
		b := f.Bytes()
		if len(b) >= 34 && b[12] == 0x08 && b[13] == 0 {
			ff := binary.BigEndian.Uint16(b[20:])
			frags[min(int(ff&0x1fff), 1)] = true
		}
		return false
	})
	if !frags[0] || !frags[1] {
		t.Errorf("XSK received first fragment %v, later fragment %v", frags[0], frags[1])
	}
	st, _ := prog.Stats()
	t.Logf("program stats %v", st)
	if st[StatRedirect] != 20 || st[StatPassOther] < 3 {
		t.Errorf("stats: redirect %d (want 20) other %d", st[StatRedirect], st[StatPassOther])
	}
}

// buildUDP4 writes Ethernet + IPv4 + UDP headers (42 bytes) in front of a
// UDP payload of plen bytes. RFC 791 §3.1, RFC 768.
func buildUDP4(h []byte, dmac, smac net.HardwareAddr, src, dst netip.Addr, sport, dport uint16, plen int) {
	copy(h[0:6], dmac)
	copy(h[6:12], smac)
	binary.BigEndian.PutUint16(h[12:], 0x0800)
	ip := h[14:34]
	ip[0], ip[1] = 0x45, 0
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+plen))
	binary.BigEndian.PutUint32(ip[4:], 0x4000) // id 0, DF
	ip[8], ip[9] = 64, 17
	ip[10], ip[11] = 0, 0
	s, d := src.As4(), dst.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	u := h[34:42]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(8+plen))
	binary.BigEndian.PutUint16(u[6:], 0) // no checksum (IPv4)
}

func TestTransmitWithHeadroom(t *testing.T) {
	tp := newTopo(t, 1)
	_, port := tp.steer(t, 0, ProgramConfig{Mode: ModeSite}, XDPDriver, nil)
	sink := udpIn(t, tp.p, "udp4", v4(0, 2)+":4341")
	src, dst := netip.MustParseAddr(v4(0, 1)), netip.MustParseAddr(v4(0, 2))

	// A fresh frame: payload first, then grow the front by 8 (a LISP
	// header) + 28 (IPv4 + UDP) = 36 bytes and 14 for Ethernet.
	var fs [1]ring.Frame
	if port.Alloc(fs[:]) != 1 {
		t.Fatal("Alloc failed")
	}
	f := &fs[0]
	if f.Headroom() < ring.Headroom {
		t.Fatalf("allocated frame headroom %d", f.Headroom())
	}
	f.SetLen(7)
	copy(f.Bytes(), "payload")
	payload := f.Bytes()
	copy(f.Push(8), "LISPHDR!")
	f.Push(36 - 8)
	hdr := f.Push(14)
	buildUDP4(hdr, tp.pmac[0], tp.rmac[0], src, dst, 40000, 4341, 15)
	if !ring.SameMemory(f.Bytes()[50:], payload) {
		t.Fatal("payload moved")
	}
	if n, err := port.Transmit(fs[:]); n != 1 || err != nil {
		t.Fatalf("Transmit = %d, %v", n, err)
	}
	if b, err := readUDP(sink, 5*time.Second); err != nil || string(b) != "LISPHDR!payload" {
		t.Fatalf("peer got %q, %v", b, err)
	}

	// A received frame, encapsulated in place and sent back out: the XDP
	// path's headroom must take the 36-byte outer header plus Ethernet.
	sendFrom(t, tp.p, "udp4", "10.10.0.7:5000", []byte("inner-packet"), 1)
	got := receiveMatching(t, port, []byte("inner-packet"), 1, 5*time.Second, func(f *ring.Frame) bool {
		if f.Headroom() < ring.Headroom {
			t.Errorf("received frame headroom %d < %d", f.Headroom(), ring.Headroom)
		}
		inner := f.Bytes()[14:] // drop the inner Ethernet header
		innerLen := len(inner)
		f.Pull(14)
		copy(f.Push(8), "LISPHDR!")
		f.Push(28)
		buildUDP4(f.Push(14), tp.pmac[0], tp.rmac[0], src, dst, 40001, 4341, 8+innerLen)
		one := []ring.Frame{*f}
		if n, err := port.Transmit(one); n != 1 || err != nil {
			t.Errorf("Transmit encapsulated = %d, %v", n, err)
			return false
		}
		return true
	})
	if got != 1 {
		t.Fatalf("received %d transit packets", got)
	}
	b, err := readUDP(sink, 5*time.Second)
	if err != nil || !bytes.HasPrefix(b, []byte("LISPHDR!\x45")) || !bytes.HasSuffix(b, []byte("inner-packet")) {
		t.Fatalf("peer got %q, %v", b, err)
	}
	completed := 0
	testkit.WaitFor(t, "2 transmit completions", func() error {
		if completed += port.Complete(); completed < 2 {
			return fmt.Errorf("%d completions", completed)
		}
		return nil
	})
	if completed != 2 {
		t.Errorf("completions: %d, want 2", completed)
	}
}

// TestSharedUMEMForward forwards from a site port to a core port of the same
// Group: the frame goes out without a copy.
func TestSharedUMEMForward(t *testing.T) {
	tp := newTopo(t, 2)
	g, err := NewGroup(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	_, site := tp.steer(t, 0, ProgramConfig{Mode: ModeSite}, XDPDriver, g)
	_, core := tp.steer(t, 1, ProgramConfig{Mode: ModeCore}, XDPDriver, g)
	if site.Pool() != core.Pool() {
		t.Fatal("ports of one group do not share a pool")
	}
	sink := udpIn(t, tp.p, "udp4", v4(1, 2)+":7000")
	sendFrom(t, tp.p, "udp4", "10.10.0.8:5000", []byte("forward-me"), 1)
	src, dst := netip.MustParseAddr(v4(1, 1)), netip.MustParseAddr(v4(1, 2))
	got := receiveMatching(t, site, []byte("forward-me"), 1, 5*time.Second, func(f *ring.Frame) bool {
		f.Pull(14 + 20 + 8)
		buildUDP4(f.Push(42), tp.pmac[1], tp.rmac[1], src, dst, 40002, 7000, f.Len()-42)
		one := []ring.Frame{*f}
		n, err := core.Transmit(one)
		return n == 1 && err == nil
	})
	if got != 1 {
		t.Fatalf("site port received %d", got)
	}
	if b, err := readUDP(sink, 5*time.Second); err != nil || string(b) != "forward-me" {
		t.Fatalf("core peer got %q, %v", b, err)
	}
	if core.TxCopies != 0 || core.TxPackets != 1 {
		t.Errorf("core port: copies %d packets %d; want 0, 1", core.TxCopies, core.TxPackets)
	}
}

func xdpAttached(t *testing.T, ns *netns.NS, ifname string) (bool, uint32) {
	t.Helper()
	l, err := ns.Link(ifname)
	if err != nil {
		t.Fatal(err)
	}
	x := l.Attrs().Xdp
	if x == nil {
		return false, 0
	}
	return x.Attached, x.ProgId
}

func TestCloseDetaches(t *testing.T) {
	tp := newTopo(t, 1)
	prog, err := LoadProgram(ProgramConfig{Mode: ModeSite})
	if err != nil {
		testkit.Unavailable(t, "load XDP program: %v", err)
	}
	if err := tp.r.Do(func() error { return prog.Attach(tp.rif[0], XDPDriver) }); err != nil {
		prog.Close()
		testkit.Unavailable(t, "attach XDP: %v", err)
	}
	if ok, _ := xdpAttached(t, tp.r, tp.rif[0]); !ok {
		t.Fatal("program not attached after Attach")
	}
	if err := tp.r.Do(prog.Close); err != nil {
		t.Fatal(err)
	}
	if ok, _ := xdpAttached(t, tp.r, tp.rif[0]); ok {
		t.Fatal("program still attached after Close")
	}
}

func TestStaleProgramReplaced(t *testing.T) {
	for _, tc := range []struct {
		name         string
		stale, fresh XDPMode
	}{
		{"same mode", XDPDriver, XDPDriver},
		{"generic leftover, driver attach", XDPGeneric, XDPDriver},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := newTopo(t, 1)
			stale, err := LoadProgram(ProgramConfig{Mode: ModeSite})
			if err != nil {
				testkit.Unavailable(t, "load XDP program: %v", err)
			}
			if err := tp.r.Do(func() error { return stale.Attach(tp.rif[0], tc.stale) }); err != nil {
				stale.Close()
				testkit.Unavailable(t, "attach XDP: %v", err)
			}
			// A crash: the process forgets the program without detaching;
			// the interface keeps it.
			stale.objs.Close()
			if ok, _ := xdpAttached(t, tp.r, tp.rif[0]); !ok {
				t.Fatal("stale program not attached")
			}
			fresh, err := LoadProgram(ProgramConfig{Mode: ModeSite})
			if err != nil {
				t.Fatal(err)
			}
			defer tp.r.Do(fresh.Close)
			if err := tp.r.Do(func() error { return fresh.Attach(tp.rif[0], tc.fresh) }); err != nil {
				t.Fatalf("attach over a stale program: %v", err)
			}
			ok, id := xdpAttached(t, tp.r, tp.rif[0])
			if !ok || id != uint32(fresh.progID) {
				t.Fatalf("attached %v id %d, want our id %d", ok, id, fresh.progID)
			}
		})
	}
}

func TestOptionsRejected(t *testing.T) {
	for _, o := range []Options{
		{FrameSize: 1000},
		{FrameSize: 1 << 20},
		{RxRingSize: 1000},
		{NumFrames: 10},
		{Headroom: 4096},
	} {
		if g, err := NewGroup(o); err == nil {
			g.Close()
			t.Errorf("NewGroup(%+v) succeeded", o)
		}
	}
}

func TestStatNames(t *testing.T) {
	if NumStats.String() != "stat(11)" || StatRedirect.String() != "redirect" || StatOffload.String() != "offload" {
		t.Fatal("stat names")
	}
	spec, err := loadSteer()
	if err != nil {
		t.Fatal(err)
	}
	if got := spec.Maps["stats"].MaxEntries; got != uint32(NumStats) {
		t.Fatalf("stats map has %d entries, Go knows %d", got, NumStats)
	}
}

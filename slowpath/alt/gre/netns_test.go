package gre_test

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/internal/testkit/netnstest"
	"github.com/rloc-router/rloc/internal/testkit/tsharktest"
	"github.com/rloc-router/rloc/lab/netns"
	"github.com/rloc-router/rloc/slowpath/alt/gre"
	"golang.org/x/sys/unix"
)

// openIn opens a device inside ns and closes it in t.Cleanup.
func openIn(t *testing.T, ns *netns.NS, cfg gre.Config) *gre.Device {
	t.Helper()
	var d *gre.Device
	if err := ns.Do(func() (err error) { d, err = gre.Open(cfg); return err }); err != nil {
		testkit.Require(t, "a TUN device and a raw GRE socket", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// packetSocket opens an AF_PACKET socket on ifname inside ns that sees
// every frame, non-blocking, closed in t.Cleanup.
func packetSocket(t *testing.T, ns *netns.NS, ifname string) int {
	t.Helper()
	fd := -1
	err := ns.Do(func() error {
		l, err := ns.Link(ifname)
		if err != nil {
			return err
		}
		proto := int(unix.ETH_P_ALL>>8 | unix.ETH_P_ALL&0xff<<8) // network byte order
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: l.Attrs().Index})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// greFrames drains fd and keeps the IPv4 frames of protocol 47.
func greFrames(fd int) [][]byte {
	var out [][]byte
	buf := make([]byte, 65536)
	for range 100000 {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			break
		}
		f := buf[:n]
		if n > 34 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == 47 {
			out = append(out, append([]byte(nil), f...))
		}
	}
	return out
}

// TestTunnelNetns joins two namespaces with one GRE tunnel in user space
// and pings across it: the kernel's ICMP goes through the TUNs, the
// tunnel is real GRE on the veth, which tshark decodes as GRE carrying
// IPv4 and ICMP. Then bad GRE from the peer's address is dropped and
// counted at the receiver.
func TestTunnelNetns(t *testing.T) {
	tsharktest.Require(t)
	testkit.Tool(t, "ping")
	a, b := netnstest.New(t, "greA"), netnstest.New(t, "greB")
	if err := netns.Veth(a, "ga", b, "gb"); err != nil {
		t.Fatal(err)
	}
	ua, ub := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	if err := a.AddAddr("ga", netip.PrefixFrom(ua, 24)); err != nil {
		t.Fatal(err)
	}
	if err := b.AddAddr("gb", netip.PrefixFrom(ub, 24)); err != nil {
		t.Fatal(err)
	}
	ia, ib := netip.MustParsePrefix("10.255.0.0/31"), netip.MustParsePrefix("10.255.0.1/31")
	da := openIn(t, a, gre.Config{Name: "alt0", Local: ua, Tunnels: []gre.TunnelConfig{
		{Remote: ub, Inner: ia, Peer: ib.Addr(), Checksum: true}}})
	db := openIn(t, b, gre.Config{Name: "alt0", Local: ub, Tunnels: []gre.TunnelConfig{
		{Remote: ua, Inner: ib, Peer: ia.Addr(), Checksum: true}}})
	cap := packetSocket(t, b, "gb")

	out, err := a.Command("ping", "-n", "-c", "3", "-i", "0.2", "-W", "5", ib.Addr().String()).CombinedOutput()
	if err != nil || !strings.Contains(string(out), " 0% packet loss") {
		t.Fatalf("ping over the tunnel: %v\n%s\nA: %+v\nB: %+v", err, out, da.Stats(), db.Stats())
	}
	frames := greFrames(cap)
	if len(frames) < 6 {
		t.Fatalf("captured %d GRE frames, want at least 6 (3 requests, 3 replies)", len(frames))
	}
	icmp := 0
	for _, l := range tsharktest.Decode(t, frames) {
		if tsharktest.Field(t, l, "gre.proto") != "0x0800" || tsharktest.Field(t, l, "gre.flags.checksum") != "1" {
			t.Fatalf("GRE decoded as %v / checksum %v", tsharktest.Fields(l, "gre.proto"), tsharktest.Fields(l, "gre.flags.checksum"))
		}
		// 1 is good in tshark's checksum status (0 bad, 2 unverified).
		if st := tsharktest.Fields(l, "gre.checksum.status"); len(st) != 1 || st[0] != "1" {
			t.Fatalf("tshark's checksum status %v, want 1 (good)", st)
		}
		src := tsharktest.Fields(l, "ip.src")
		if len(src) != 2 || src[1] != ia.Addr().String() && src[1] != ib.Addr().String() {
			t.Fatalf("outer and inner sources %v", src)
		}
		if len(tsharktest.Fields(l, "icmp.type")) == 1 {
			icmp++
		}
	}
	if icmp < 6 {
		t.Fatalf("tshark found ICMP inside %d GRE packets, want 6", icmp)
	}

	// Bad GRE from A's underlay address: B drops and counts each.
	inner := []byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0, 10, 255, 0, 0, 10, 255, 0, 1}
	bad := map[int][]byte{
		gre.DropProtocol:        gre.Append(nil, &gre.Header{Protocol: 0x88B5, Checksum: true}, inner),
		gre.DropKeyUnasked:      gre.Append(nil, &gre.Header{Protocol: gre.ProtoIPv4, Checksum: true, HasKey: true, Key: 5}, inner),
		gre.DropChecksumMissing: gre.Append(nil, &gre.Header{Protocol: gre.ProtoIPv4}, inner),
		gre.DropTruncated:       {0x80, 0x00, 0x08, 0x00, 0x12},
	}
	err = a.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 47)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for _, p := range bad {
			if err := unix.Sendto(fd, p, 0, &unix.SockaddrInet4{Addr: ub.As4()}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "B counting the bad GRE packets", func() error {
		for r := range bad {
			if db.Dropped(r) != 1 {
				return fmt.Errorf("%s: %d; all: %v", gre.DropName(r), db.Dropped(r), db.Stats().Dropped)
			}
		}
		return nil
	})
	if s := db.Stats(); s.Tunnels[0].RxPackets < 3 || s.Tunnels[0].TxPackets < 3 {
		t.Fatalf("B's tunnel counters %+v", s.Tunnels[0])
	}
}

// TestPointToPointNetns routes across a middle namespace M whose two
// tunnels are point-to-point devices sharing M's one underlay address,
// with the forwarding left to M's kernel: A pings B's inner address
// through M (A -> M over one tunnel, M's kernel routes to the other TUN,
// M -> B over the second tunnel, and back). Each of M's devices sees
// only its own peer's GRE (no unknown-peer drops: the raw sockets are
// connected) and every packet the kernel puts in a TUN goes to its
// tunnel whatever the destination (no no-tunnel drops).
func TestPointToPointNetns(t *testing.T) {
	testkit.Tool(t, "ping")
	a, m, b := netnstest.New(t, "p2pA"), netnstest.New(t, "p2pM"), netnstest.New(t, "p2pB")
	if err := netns.Veth(a, "pa", m, "ma"); err != nil {
		t.Fatal(err)
	}
	if err := netns.Veth(m, "mb", b, "pb"); err != nil {
		t.Fatal(err)
	}
	ua, um, ub := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("198.51.100.1")
	for _, s := range []struct {
		ns     *netns.NS
		ifname string
		addr   string
	}{{a, "pa", "192.0.2.1/24"}, {m, "ma", "192.0.2.2/24"}, {m, "mb", "198.51.100.2/24"}, {b, "pb", "198.51.100.1/24"}} {
		if err := s.ns.AddAddr(s.ifname, netip.MustParsePrefix(s.addr)); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range map[string]string{"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.default.rp_filter": "0"} {
		if err := m.Sysctl(k, v); err != nil {
			t.Fatal(err)
		}
	}
	// B reaches M's underlay address, which both of M's devices use.
	route(t, b, "192.0.2.0/24", "198.51.100.2", "pb")
	p2p := func(name string, local, remote netip.Addr, inner string) gre.Config {
		in := netip.MustParsePrefix(inner)
		peer := in.Masked().Addr()
		if peer == in.Addr() {
			peer = peer.Next()
		}
		return gre.Config{Name: name, Local: local, PointToPoint: true, Tunnels: []gre.TunnelConfig{
			{Remote: remote, Inner: in, Peer: peer, Checksum: true}}}
	}
	da := openIn(t, a, p2p("alt0", ua, um, "10.255.0.0/31"))
	ma := openIn(t, m, p2p("alta", um, ua, "10.255.0.1/31"))
	mb := openIn(t, m, p2p("altb", um, ub, "10.255.0.2/31"))
	db := openIn(t, b, p2p("alt0", ub, um, "10.255.0.3/31"))
	// The far ends' inner subnets via M's inner address: the kernel picks
	// the TUN by the next hop.
	route(t, a, "10.255.0.2/31", "10.255.0.1", "alt0")
	route(t, b, "10.255.0.0/31", "10.255.0.2", "alt0")

	out, err := a.Command("ping", "-n", "-c", "3", "-i", "0.2", "-W", "5", "10.255.0.3").CombinedOutput()
	if err != nil || !strings.Contains(string(out), " 0% packet loss") || !strings.Contains(string(out), "ttl=63") {
		t.Fatalf("ping across M: %v\n%s\nA %+v\nM/a %+v\nM/b %+v\nB %+v", err, out, da.Stats(), ma.Stats(), mb.Stats(), db.Stats())
	}
	for name, d := range map[string]*gre.Device{"A": da, "M/a": ma, "M/b": mb, "B": db} {
		s := d.Stats()
		if len(s.Dropped) != 0 || s.Tunnels[0].RxPackets < 3 || s.Tunnels[0].TxPackets < 3 {
			t.Errorf("%s: drops %v, tunnel %+v", name, s.Dropped, s.Tunnels[0])
		}
	}
}

// route adds the route to dst via gw on ifname inside ns.
func route(t *testing.T, ns *netns.NS, dst, gw, ifname string) {
	t.Helper()
	out, err := ns.Command("ip", "route", "add", dst, "via", gw, "dev", ifname).CombinedOutput()
	if err != nil {
		t.Fatalf("ip route add %s via %s in %s: %v %s", dst, gw, ns.Name, err, out)
	}
}

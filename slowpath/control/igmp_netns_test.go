package control

import (
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/internal/testkit/netnstest"
	"github.com/rloc-router/rloc/lab/netns"
	"github.com/rloc-router/rloc/wire"
)

// hostAndRouter builds two namespaces joined by a veth: h0 (host side,
// 10.50.0.2/24) and s0 (the ETR's site interface, 10.50.0.1/24), with IPv6
// duplicate address detection off so MLD reports leave at once.
func hostAndRouter(t *testing.T) (host, router *netns.NS) {
	host = netnstest.New(t, "mch")
	router = netnstest.New(t, "mcr")
	for _, n := range []*netns.NS{host, router} {
		if out, err := n.Command("sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0").CombinedOutput(); err != nil {
			testkit.Unavailable(t, "sysctl: %v %s", err, out)
		}
	}
	if err := netns.Veth(host, "h0", router, "s0"); err != nil {
		testkit.Unavailable(t, "%v", err)
	}
	if err := host.AddAddr("h0", netip.MustParsePrefix("10.50.0.2/24")); err != nil {
		t.Fatal(err)
	}
	if err := router.AddAddr("s0", netip.MustParsePrefix("10.50.0.1/24")); err != nil {
		t.Fatal(err)
	}
	// Reports sent before the kernel sees the carrier (linkwatch may take
	// up to a second) are dropped: wait for both ends to be up.
	waitFor(t, 5*time.Second, "veth operationally up", func() bool {
		a, err1 := host.Netlink().LinkByName("h0")
		b, err2 := router.Netlink().LinkByName("s0")
		return err1 == nil && err2 == nil && a.Attrs().OperState == netlink.OperUp && b.Attrs().OperState == netlink.OperUp
	})
	return host, router
}

// collect reads every message l hears into a channel of group records,
// until l is closed.
func collect(t *testing.T, l MembershipListener) <-chan wire.GroupRecord {
	ch := make(chan wire.GroupRecord, 256)
	go func() {
		buf := make([]byte, 9000)
		var m wire.Membership
		for {
			n, src, dst, mld, err := l.Read(buf)
			if err != nil {
				return
			}
			if mld {
				err = m.ParseMLD(buf[:n], src, dst)
			} else {
				err = m.ParseIGMP(buf[:n])
			}
			if err != nil {
				t.Logf("unparsable message from %v: %v", src, err)
				continue
			}
			for _, r := range m.Records {
				r.Sources = slices.Clone(r.Sources)
				select {
				case ch <- r:
				default:
				}
			}
		}
	}()
	return ch
}

// readRecords waits up to d for a record for group.
func readRecords(t *testing.T, ch <-chan wire.GroupRecord, group netip.Addr, d time.Duration) (wire.GroupRecord, bool) {
	t.Helper()
	tm := time.NewTimer(d)
	defer tm.Stop()
	for {
		select {
		case r := <-ch:
			if r.Group == group {
				return r, true
			}
		case <-tm.C:
			return wire.GroupRecord{}, false
		}
	}
}

// TestRawListenerHearsKernelReports: the AF_PACKET listener on the site
// interface hears the IGMPv3 and MLDv2 reports the host kernel sends when a
// socket joins, verifies their checksums, and a group-specific query makes
// the host report again.
func TestRawListenerHearsKernelReports(t *testing.T) {
	host, router := hostAndRouter(t)
	var l MembershipListener
	if err := router.Do(func() (err error) {
		l, err = OpenMembershipListener(SiteInterface{Name: "s0"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := collect(t, l)
	g4 := netip.MustParseAddr("232.1.1.1")
	g6 := netip.MustParseAddr("ff3e::8000:1")
	var c4, c6 *net.UDPConn
	if err := host.Do(func() error {
		ifi, err := net.InterfaceByName("h0")
		if err != nil {
			return err
		}
		if c4, err = net.ListenMulticastUDP("udp4", ifi, &net.UDPAddr{IP: g4.AsSlice(), Port: 5001}); err != nil {
			return err
		}
		c6, err = net.ListenMulticastUDP("udp6", ifi, &net.UDPAddr{IP: g6.AsSlice(), Port: 5001})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c6.Close()
	r, ok := readRecords(t, ch, g4, 5*time.Second)
	if !ok || (r.Type != wire.ChangeToExclude && r.Type != wire.ModeIsExclude) {
		t.Fatalf("IGMP join of %v: got %+v (%v)", g4, r, ok)
	}
	r, ok = readRecords(t, ch, g6, 5*time.Second)
	if !ok || (r.Type != wire.ChangeToExclude && r.Type != wire.ModeIsExclude) {
		t.Fatalf("MLD join of %v: got %+v (%v)", g6, r, ok)
	}
	// A group-specific query (max response 1 s) gets a current-state report.
	if err := l.Query(g4); err != nil {
		t.Fatalf("query: %v", err)
	}
	// (The join's retransmitted TO_EX reports may come first.)
	deadline := time.Now().Add(4 * time.Second)
	for {
		r, ok = readRecords(t, ch, g4, time.Until(deadline))
		if ok && r.Type == wire.ModeIsExclude {
			break
		}
		if !ok {
			t.Fatalf("no current-state report after the group-specific query")
		}
	}
	// Leaving sends a TO_IN({}) report.
	c4.Close()
	deadline = time.Now().Add(5 * time.Second)
	for {
		r, ok = readRecords(t, ch, g4, time.Until(deadline))
		if !ok {
			t.Fatalf("no leave of %v", g4)
		}
		if r.Type == wire.ChangeToInclude && len(r.Sources) == 0 {
			break
		}
	}
}

// TestEngineLearnsFromKernel: an ETR engine with the raw listener of a
// namespace's site interface registers the (*,G) a host joins there.
func TestEngineLearnsFromKernel(t *testing.T) {
	host, router := hostAndRouter(t)
	var l MembershipListener
	if err := router.Do(func() (err error) {
		l, err = OpenMembershipListener(SiteInterface{Name: "s0"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	r := newRig(t)
	c := r.mcConfig("192.0.2.91")
	c.Listeners = []MembershipListener{l}
	newEngine(t, Config{
		ETR: &ETRConfig{
			MapServers: []MapServerPeer{{Addr: r.ms.Addr(), Key: testKey}},
			Mappings:   []Mapping{mapping("10.2.0.0/16", "192.0.2.250")},
		},
		Multicast: c,
	}, nil)
	g := netip.MustParseAddr("239.9.9.9")
	var conn *net.UDPConn
	if err := host.Do(func() error {
		ifi, err := net.InterfaceByName("h0")
		if err != nil {
			return err
		}
		conn, err = net.ListenMulticastUDP("udp4", ifi, &net.UDPAddr{IP: g.AsSlice(), Port: 5002})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	star := netip.PrefixFrom(g, 32)
	waitFor(t, 5*time.Second, "(*,G) registered from a kernel report", func() bool {
		return slices.Equal(addrsOf(r.ms.McastRLE(0, netip.Prefix{}, star)), addrs("192.0.2.91"))
	})
	conn.Close()
	waitFor(t, 5*time.Second, "withdrawn after the kernel's leave", func() bool {
		return len(r.ms.McastRLE(0, netip.Prefix{}, star)) == 0
	})
}

// TestSocketJoinerSendsJoins: joining an underlay group on the core
// interface makes the kernel send the IGMP report, heard by a listener on
// the other end of the link.
func TestSocketJoinerSendsJoins(t *testing.T) {
	host, router := hostAndRouter(t)
	var l MembershipListener
	if err := host.Do(func() (err error) {
		l, err = OpenMembershipListener(SiteInterface{Name: "h0"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := collect(t, l)
	var j UnderlayJoiner
	if err := router.Do(func() (err error) {
		j, err = NewSocketJoiner("s0", 4341)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.(io.Closer).Close() })
	g := netip.MustParseAddr("239.255.93.45")
	if err := j.Join(g, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if r, ok := readRecords(t, ch, g, 5*time.Second); !ok {
		t.Fatalf("no IGMP join for %v: %+v", g, r)
	}
	if err := j.Leave(g, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if r, ok := readRecords(t, ch, g, 5*time.Second); !ok || r.Type != wire.ChangeToInclude {
		t.Fatalf("no IGMP leave for %v: %+v", g, r)
	}
}

package netns_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/internal/testkit/netnstest"
	"github.com/rloc-router/rloc/lab/netns"
)

func TestVethAcrossNamespaces(t *testing.T) {
	s := netns.Suffix()
	a := netnstest.New(t, "nsa")
	b := netnstest.New(t, "nsb")
	if err := netns.Veth(a, "va"+s, b, "vb"+s); err != nil {
		t.Fatal(err)
	}
	if err := a.AddAddr("va"+s, netip.MustParsePrefix("10.99.0.1/24")); err != nil {
		t.Fatal(err)
	}
	if err := b.AddAddr("vb"+s, netip.MustParsePrefix("10.99.0.2/24")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Link("vb" + s); err == nil {
		t.Fatal("peer interface visible in namespace a")
	}
	var srv *net.UDPConn
	if err := b.Do(func() (err error) {
		srv, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 99, 0, 2), Port: 9999})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := a.Do(func() error {
		c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(10, 99, 0, 2), Port: 9999})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("ping"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	n, from, err := srv.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != "ping" || !from.IP.Equal(net.IPv4(10, 99, 0, 1)) {
		t.Fatalf("got %q from %v, %v", buf[:n], from, err)
	}
	if err := a.Sysctl("net.ipv4.ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	if out, err := a.Command("cat", "/proc/sys/net/ipv4/ip_forward").Output(); err != nil || string(out) != "1\n" {
		t.Fatalf("ip netns exec: %q, %v", out, err)
	}
}

func TestCloseRemovesNamespace(t *testing.T) {
	netnstest.Require(t)
	n, err := netns.New("nsc-" + netns.Suffix())
	if err != nil {
		testkit.Unavailable(t, "%v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := netns.New(n.Name)
	if err != nil {
		t.Fatalf("name not free after Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

package slowpath_test

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/rloc-router/rloc/slowpath"
)

// TestBatchIO: datagrams queued in a SendBatch leave in one Write and come
// out of one RecvBatch Read with their bytes and their source; one longer
// than the receive buffer is marked truncated; a full queue and a
// destination of the other family are refused. IPv4 and IPv6.
func TestBatchIO(t *testing.T) {
	for _, fam := range []struct {
		name, net string
		lo        netip.Addr
		other     netip.AddrPort
	}{
		{"ipv4", "udp4", netip.MustParseAddr("127.0.0.1"), netip.MustParseAddrPort("[2001:db8::1]:9")},
		{"ipv6", "udp6", netip.MustParseAddr("::1"), netip.AddrPort{}},
	} {
		t.Run(fam.name, func(t *testing.T) {
			listen := func() *net.UDPConn {
				c, err := net.ListenUDP(fam.net, net.UDPAddrFromAddrPort(netip.AddrPortFrom(fam.lo, 0)))
				if err != nil {
					t.Skipf("no %s loopback: %v", fam.name, err)
				}
				t.Cleanup(func() { c.Close() })
				return c
			}
			a, b := listen(), listen()
			from, to := a.LocalAddr().(*net.UDPAddr).AddrPort(), b.LocalAddr().(*net.UDPAddr).AddrPort()
			tx, err := slowpath.NewSendBatch(a, fam.name == "ipv6", 3, 8)
			if err != nil {
				t.Fatal(err)
			}
			rx, err := slowpath.NewRecvBatch(b, 4, 16, 0)
			if err != nil {
				t.Fatal(err)
			}
			msgs := [][]byte{[]byte("one"), bytes.Repeat([]byte{'x'}, 20), {}}
			for i, m := range msgs {
				if slot, ok := tx.Add(to, m); !ok || slot != i {
					t.Fatalf("Add %d: slot %d, %v", i, slot, ok)
				}
			}
			if _, ok := tx.Add(to, []byte("four")); ok {
				t.Fatal("a fourth datagram fit a queue of 3")
			}
			if n, err := tx.Write(0); n != 3 || err != nil {
				t.Fatalf("Write: %d, %v", n, err)
			}
			tx.Reset()
			if fam.other.IsValid() {
				if _, ok := tx.Add(fam.other, []byte("x")); ok {
					t.Fatal("an IPv6 destination was queued on an IPv4 socket")
				}
			}
			n, err := rx.Read()
			if err != nil || n != 3 {
				t.Fatalf("Read: %d, %v", n, err)
			}
			for i, m := range msgs {
				data, src, _, trunc := rx.Datagram(i)
				want := m[:min(len(m), 16)]
				if !bytes.Equal(data, want) || src != from || trunc != (len(m) > 16) {
					t.Errorf("datagram %d: %q from %v truncated %v; want %q from %v", i, data, src, trunc, want, from)
				}
			}
		})
	}
}

// TestBatchIOLinkLocal: a scoped IPv6 source comes out of a RecvBatch with
// its interface's name as zone, as the net package names it, and a
// SendBatch sends to a destination with that zone. It needs an interface
// with a link-local address (the datagrams go to the host's own address).
func TestBatchIOLinkLocal(t *testing.T) {
	var ll netip.Addr
	ifs, _ := net.Interfaces()
	for _, ifi := range ifs {
		addrs, _ := ifi.Addrs()
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() {
				ll = p.Addr().WithZone(ifi.Name)
				break
			}
		}
		if ll.IsValid() {
			break
		}
	}
	if !ll.IsValid() {
		t.Skip("no interface with an IPv6 link-local address")
	}
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ll, 0)))
		if err != nil {
			t.Skipf("cannot bind %v: %v", ll, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := listen(), listen()
	from, to := a.LocalAddr().(*net.UDPAddr).AddrPort(), b.LocalAddr().(*net.UDPAddr).AddrPort()
	tx, err := slowpath.NewSendBatch(a, true, 1, 8)
	if err != nil {
		t.Fatal(err)
	}
	rx, err := slowpath.NewRecvBatch(b, 1, 16, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tx.Add(to, []byte("hi")); !ok {
		t.Fatalf("Add %v refused", to)
	}
	if n, err := tx.Write(0); n != 1 || err != nil {
		t.Fatalf("Write to %v: %d, %v", to, n, err)
	}
	if n, err := rx.Read(); n != 1 || err != nil {
		t.Fatalf("Read: %d, %v", n, err)
	}
	if data, src, _, _ := rx.Datagram(0); string(data) != "hi" || src != from {
		t.Fatalf("got %q from %v, want %q from %v", data, src, "hi", from)
	}
}

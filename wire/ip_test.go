package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// TestViewsOnGopacketFrames reads frames built by gopacket (udpFrame)
// through the Ethernet, IPv4/IPv6 and UDP views.
func TestViewsOnGopacketFrames(t *testing.T) {
	for _, c := range []struct{ src, dst string }{
		{"10.0.0.1", "192.0.2.200"},
		{"2001:db8::1", "fd00::abcd"},
	} {
		src, dst := netip.MustParseAddr(c.src), netip.MustParseAddr(c.dst)
		payload := []byte("odd-length payload!")
		fr := udpFrame(t, src, dst, 1234, DataPort, payload)
		et, off, vlan, err := Ethernet(fr).Payload()
		if err != nil || off != EthernetLen || vlan != 0 {
			t.Fatalf("ethernet: %v %d %d", err, off, vlan)
		}
		if Ethernet(fr).Src() != testSrcMAC || Ethernet(fr).Dst() != testDstMAC {
			t.Errorf("MACs %x %x", Ethernet(fr).Src(), Ethernet(fr).Dst())
		}
		pkt := fr[off:]
		var seg []byte
		if src.Is4() {
			if et != EtherTypeIPv4 {
				t.Fatalf("ethertype %#x", et)
			}
			ip := IPv4(pkt)
			if err := ip.Validate(len(pkt)); err != nil {
				t.Fatal(err)
			}
			if ip.Src() != src || ip.Dst() != dst || ip.Protocol() != ProtoUDP || ip.TTL() != 64 ||
				ip.Version() != 4 || ip.HeaderLength() != 20 || !ip.ChecksumValid() || ip.ComputeChecksum() != ip.Checksum() {
				t.Errorf("ipv4 view: %x", pkt[:20])
			}
			seg = ip.Payload()
		} else {
			if et != EtherTypeIPv6 {
				t.Fatalf("ethertype %#x", et)
			}
			ip := IPv6(pkt)
			if err := ip.Validate(len(pkt)); err != nil {
				t.Fatal(err)
			}
			if ip.Src() != src || ip.Dst() != dst || ip.NextHeader() != ProtoUDP || ip.HopLimit() != 64 || ip.Version() != 6 {
				t.Errorf("ipv6 view: %x", pkt[:40])
			}
			seg = ip.Payload()
		}
		u := UDP(seg)
		if err := u.Validate(len(seg)); err != nil {
			t.Fatal(err)
		}
		if u.SrcPort() != 1234 || u.DstPort() != DataPort || !bytes.Equal(u.Payload(), payload) {
			t.Errorf("udp view: %x", seg)
		}
		if u.Checksum() == 0 || UDPChecksum(seg, src, dst) != u.Checksum() || !UDPChecksumOK(seg, src, dst) {
			t.Errorf("udp checksum %#x, computed %#x", u.Checksum(), UDPChecksum(seg, src, dst))
		}
		seg[len(seg)-1] ^= 1
		if UDPChecksumOK(seg, src, dst) {
			t.Errorf("corrupted datagram verifies")
		}
		u.SetChecksum(0)
		if !UDPChecksumOK(seg, src, dst) {
			t.Errorf("zero checksum must be accepted (RFC 9300 §5.3)")
		}
	}
}

func TestEthernetVLAN(t *testing.T) {
	fr := make([]byte, 22)
	e := Ethernet(fr)
	e.SetType(EtherTypeVLAN)
	binary.BigEndian.PutUint16(fr[14:], 0x2000|100) // PCP 1, VID 100
	binary.BigEndian.PutUint16(fr[16:], EtherTypeIPv6)
	et, off, vlan, err := e.Payload()
	if err != nil || et != EtherTypeIPv6 || off != 18 || vlan != 100 {
		t.Errorf("tagged: %#x %d %d %v", et, off, vlan, err)
	}
	for n := 0; n < 18; n++ {
		if _, _, _, err := Ethernet(fr[:n]).Payload(); !errors.Is(err, ErrTruncated) {
			t.Errorf("tagged[:%d]: %v", n, err)
		}
	}
	if Ethernet(fr[:13]).IsValid() || !Ethernet(fr[:14]).IsValid() {
		t.Errorf("IsValid")
	}
}

func TestIPv4Validate(t *testing.T) {
	good := testInnerIPv4(t, 64, 0, 60)
	mod := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	for _, c := range []struct {
		name   string
		b      []byte
		pktLen int
		want   error
	}{
		{"good", good, len(good), nil},
		{"good with trailer", append(append([]byte(nil), good...), 0, 0, 0), len(good) + 3, nil},
		{"short", good[:19], 19, ErrIPTruncated},
		{"version 6", mod(func(b []byte) { b[0] = 0x65 }), len(good), ErrIPVersion},
		{"IHL 4", mod(func(b []byte) { b[0] = 0x44 }), len(good), ErrIPHeaderLength},
		{"IHL 0", mod(func(b []byte) { b[0] = 0x40 }), len(good), ErrIPHeaderLength},
		{"IHL beyond data", mod(func(b []byte) { b[0] = 0x4f })[:24], 24, ErrIPHeaderLength},
		{"IHL beyond total length", mod(func(b []byte) { b[0] = 0x46; b[2], b[3] = 0, 20 }), len(good), ErrIPHeaderLength},
		{"total length beyond frame", mod(func(b []byte) { b[3]++ }), len(good), ErrIPTotalLength},
		{"total length beyond pktLen", good, len(good) - 1, ErrIPTotalLength},
	} {
		err := IPv4(c.b).Validate(c.pktLen)
		if err != c.want {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if IPv4(c.b).IsValid(c.pktLen) != (c.want == nil) {
			t.Errorf("%s: IsValid disagrees", c.name)
		}
	}
	for _, e := range []error{ErrIPHeaderLength, ErrIPTotalLength, ErrUDPLength} {
		if !errors.Is(e, ErrBadLength) {
			t.Errorf("%v does not wrap ErrBadLength", e)
		}
	}
	if !errors.Is(ErrIPTruncated, ErrTruncated) || !errors.Is(ErrIPVersion, ErrBadValue) {
		t.Errorf("error wrapping")
	}
}

func TestIPv4Accessors(t *testing.T) {
	b := testInnerIPv4(t, 9, 0xb9, 40)
	ip := IPv4(b)
	if ip.DSCP() != 46 || ip.ECN() != ECNECT1 || ip.ID() != 0x1234 || ip.DontFragment() || ip.IsFragment() {
		t.Errorf("accessors: %x", b[:20])
	}
	ip.SetSrc(netip.MustParseAddr("::ffff:1.2.3.4"))
	ip.SetDst(netip.MustParseAddr("5.6.7.8"))
	ip.SetTTL(1)
	ip.SetTOS(0)
	ip.SetID(7)
	ip.SetFlagsFragment(IPv4FlagMF | 3)
	ip.SetProtocol(ProtoTCP)
	ip.SetTotalLength(40)
	ip.UpdateChecksum()
	p := gopacket.NewPacket(b, layers.LayerTypeIPv4, gopacket.NoCopy)
	g, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if g == nil || g.SrcIP.String() != "1.2.3.4" || g.DstIP.String() != "5.6.7.8" || g.TTL != 1 || g.Id != 7 ||
		g.Flags != layers.IPv4MoreFragments || g.FragOffset != 3 || g.Protocol != layers.IPProtocolTCP {
		t.Errorf("gopacket sees %+v", g)
	}
	if !ip.IsFragment() || ip.FragmentOffset() != 24 || naiveSum(b[:20]) != 0xffff {
		t.Errorf("fragment/ checksum")
	}
	// Recompute with gopacket and compare the checksum.
	g.Checksum = 0
	re := serialize(t, g, gopacket.Payload(g.Payload))
	if binary.BigEndian.Uint16(re[10:]) != ip.Checksum() {
		t.Errorf("checksum %#x, gopacket %#x", ip.Checksum(), binary.BigEndian.Uint16(re[10:]))
	}
	ip.SetSrc(netip.MustParseAddr("2001:db8::1"))
	if ip.Src() != netip.MustParseAddr("0.0.0.0") {
		t.Errorf("IPv6 address in IPv4 header: %v", ip.Src())
	}
}

func TestIPv6ValidateAndAccessors(t *testing.T) {
	good := testInnerIPv6(t, 7, 0xb9, 60)
	ip := IPv6(good)
	if err := ip.Validate(len(good)); err != nil {
		t.Fatal(err)
	}
	if ip.TrafficClass() != 0xb9 || ip.DSCP() != 46 || ip.ECN() != 1 || ip.FlowLabel() != 0x12345 || ip.HopLimit() != 7 {
		t.Errorf("accessors: %x", good[:8])
	}
	ip.SetTrafficClass(0x03)
	ip.SetFlowLabel(0xfffff)
	if ip.Version() != 6 || ip.TrafficClass() != 3 || ip.FlowLabel() != 0xfffff {
		t.Errorf("setters: %x", good[:4])
	}
	ip.SetFlowLabel(0x100001)
	if ip.FlowLabel() != 1 || ip.TrafficClass() != 3 {
		t.Errorf("flow label masking: %x", good[:4])
	}
	ip.SetSrc(netip.MustParseAddr("10.0.0.1"))
	if ip.Src() != netip.MustParseAddr("::ffff:10.0.0.1") {
		t.Errorf("mapped: %v", ip.Src())
	}
	for _, c := range []struct {
		name   string
		b      []byte
		pktLen int
		want   error
	}{
		{"short", good[:39], 39, ErrIPTruncated},
		{"version 4", append([]byte{0x45}, good[1:]...), len(good), ErrIPVersion},
		{"payload beyond frame", good[:59], 59, ErrIPTotalLength},
		{"payload beyond pktLen", good, 50, ErrIPTotalLength},
	} {
		if err := IPv6(c.b).Validate(c.pktLen); err != c.want {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if IPv6(c.b).IsValid(c.pktLen) {
			t.Errorf("%s: IsValid", c.name)
		}
	}
}

func TestUDPValidate(t *testing.T) {
	b := []byte{0, 1, 0, 2, 0, 10, 0, 0, 0xaa, 0xbb}
	if err := UDP(b).Validate(len(b)); err != nil {
		t.Fatal(err)
	}
	u := UDP(b)
	u.SetSrcPort(5)
	u.SetDstPort(6)
	if u.SrcPort() != 5 || u.DstPort() != 6 || !bytes.Equal(u.Payload(), []byte{0xaa, 0xbb}) {
		t.Errorf("accessors %x", b)
	}
	for _, c := range []struct {
		n, length, pktLen int
		want              error
	}{
		{7, 8, 7, ErrUDPTruncated},
		{10, 7, 10, ErrUDPLength},
		{10, 11, 10, ErrUDPLength},
		{10, 10, 9, ErrUDPLength},
	} {
		bb := append([]byte(nil), b[:c.n]...)
		if len(bb) >= 6 {
			UDP(bb).SetLength(uint16(c.length))
		}
		if err := UDP(bb).Validate(c.pktLen); err != c.want {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func TestChecksumAgainstNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for n := 0; n < 300; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		init := uint16(r.Uint32())
		want := naiveSum([]byte{byte(init >> 8), byte(init)}, b)
		if got := Checksum(b, init); got != want && !(got == 0xffff && want == 0) && !(got == 0 && want == 0xffff) {
			t.Fatalf("n=%d: %#x, naive %#x", n, got, want)
		}
	}
	// All ones stays all ones (no end-around carry mistakes).
	if Checksum(bytes.Repeat([]byte{0xff}, 1000), 0xffff) != 0xffff {
		t.Errorf("all-ones sum")
	}
}

// TestChecksumUpdate changes random words of random IPv4 headers and checks
// the RFC 1624 update against a full recomputation.
func TestChecksumUpdate(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	b := testInnerIPv4(t, 64, 0, 28)[:IPv4MinLen]
	for i := 0; i < 10000; i++ {
		for j := 0; j < 20; j++ {
			if j != 10 && j != 11 {
				b[j] = byte(r.Uint32())
			}
		}
		b[0] = 0x45
		IPv4(b).UpdateChecksum()
		w := 2 * r.IntN(10)
		if w == 10 {
			continue
		}
		old := binary.BigEndian.Uint16(b[w:])
		nw := uint16(r.Uint32())
		if w == 0 {
			nw = 0x4500 | nw&0xff // keep version and IHL: only TOS changes
		}
		binary.BigEndian.PutUint16(b[w:], nw)
		c := ChecksumUpdate(IPv4(b).Checksum(), old, nw)
		if c != IPv4(b).ComputeChecksum() {
			t.Fatalf("word %d %#x->%#x: incremental %#x, full %#x", w, old, nw, c, IPv4(b).ComputeChecksum())
		}
	}
}

func TestPseudoHeaderAndUDPChecksumGopacket(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for i := 0; i < 200; i++ {
		var src, dst netip.Addr
		var nl gopacket.NetworkLayer
		if i%2 == 0 {
			src = netip.AddrFrom4([4]byte{10, byte(i), 0, 1})
			dst = netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
			nl = &layers.IPv4{Version: 4, TTL: 1, Protocol: layers.IPProtocolUDP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		} else {
			var a [16]byte
			a[0], a[1], a[15] = 0x20, 0x01, byte(i)
			src = netip.AddrFrom16(a)
			a[14] = 0xff
			dst = netip.AddrFrom16(a)
			nl = &layers.IPv6{Version: 6, HopLimit: 1, NextHeader: layers.IPProtocolUDP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		}
		payload := make([]byte, r.IntN(100))
		for j := range payload {
			payload[j] = byte(r.Uint32())
		}
		udp := &layers.UDP{SrcPort: layers.UDPPort(r.Uint32()), DstPort: DataPort}
		if err := udp.SetNetworkLayerForChecksum(nl); err != nil {
			t.Fatal(err)
		}
		pkt := serialize(t, nl.(gopacket.SerializableLayer), udp, gopacket.Payload(payload))
		hl := IPv4MinLen
		if src.Is6() {
			hl = IPv6Len
		}
		seg := pkt[hl:]
		if got, want := UDPChecksum(seg, src, dst), UDP(seg).Checksum(); got != want {
			t.Fatalf("%v->%v len %d: %#x, gopacket %#x", src, dst, len(seg), got, want)
		}
	}
}

func TestIPTTLAndTOS(t *testing.T) {
	if ttl, tos, ok := IPTTLAndTOS(testInnerIPv4(t, 5, 0x11, 28)); !ok || ttl != 5 || tos != 0x11 {
		t.Errorf("v4: %d %#x %v", ttl, tos, ok)
	}
	if ttl, tos, ok := IPTTLAndTOS(testInnerIPv6(t, 6, 0x22, 48)); !ok || ttl != 6 || tos != 0x22 {
		t.Errorf("v6: %d %#x %v", ttl, tos, ok)
	}
	for _, b := range [][]byte{nil, {0x45}, make([]byte, 39), {0x60}, {0x00, 1, 2}} {
		if _, _, ok := IPTTLAndTOS(b); ok {
			t.Errorf("%x accepted", b)
		}
	}
}

func TestFlowHash(t *testing.T) {
	in4 := testInnerIPv4(t, 64, 0, 40)
	in6 := testInnerIPv6(t, 64, 0, 60)
	for name, in := range map[string][]byte{"v4": in4, "v6": in6} {
		h := FlowHash(in, 0)
		if FlowHash(in, 0) != h {
			t.Errorf("%s: not deterministic", name)
		}
		if FlowHash(in, 1) == h {
			t.Errorf("%s: seed ignored", name)
		}
		// TTL, payload and checksum are not part of the flow.
		c := append([]byte(nil), in...)
		c[len(c)-1] ^= 0xff
		if name == "v4" {
			c[v4TTL]--
		} else {
			c[v6HopLimit]--
		}
		if FlowHash(c, 0) != h {
			t.Errorf("%s: hash depends on non-flow bytes", name)
		}
		// Ports, addresses and protocol are.
		hl := IPv4MinLen
		src := v4Src
		if name == "v6" {
			hl, src = IPv6Len, v6Src+15
		}
		for _, off := range []int{hl, hl + 1, hl + 2, hl + 3, src} {
			c := append([]byte(nil), in...)
			c[off] ^= 1
			if FlowHash(c, 0) == h {
				t.Errorf("%s: byte %d not hashed", name, off)
			}
		}
	}
	// Fragments hash without ports, so all fragments of a datagram agree.
	f1 := append([]byte(nil), in4...)
	IPv4(f1).SetFlagsFragment(IPv4FlagMF)
	f2 := append([]byte(nil), in4...)
	IPv4(f2).SetFlagsFragment(185)
	f2[IPv4MinLen] ^= 0x55 // the "ports" of a later fragment are payload
	if FlowHash(f1, 0) != FlowHash(f2, 0) {
		t.Errorf("fragments of one datagram hash differently")
	}
	// ICMP: no ports.
	ic := append([]byte(nil), in4...)
	ic[v4Proto] = ProtoICMP
	ic2 := append([]byte(nil), ic...)
	ic2[IPv4MinLen] ^= 1
	if FlowHash(ic, 0) != FlowHash(ic2, 0) {
		t.Errorf("ICMP hash reads ports")
	}
	// Short and odd input hashes without panicking.
	for n := 0; n < len(in6); n++ {
		_ = FlowHash(in6[:n], 0)
		_ = FlowHash(in4[:min(n, len(in4))], 0)
	}
	// Spread: 4096 flows over 16 buckets, none empty or more than twice fair.
	var buckets [16]int
	for i := 0; i < 4096; i++ {
		binary.BigEndian.PutUint16(in4[IPv4MinLen:], uint16(i))
		buckets[FlowHash(in4, 0)%16]++
	}
	for i, n := range buckets {
		if n < 128 || n > 512 {
			t.Errorf("bucket %d has %d of 4096", i, n)
		}
	}
}

func TestSourcePort(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	seen := map[uint16]bool{}
	for i := 0; i < 200000; i++ {
		p := SourcePort(r.Uint32())
		if p < SourcePortMin {
			t.Fatalf("port %d below %d", p, SourcePortMin)
		}
		seen[p] = true
	}
	// 200k draws over 16384 ports leave essentially none unused.
	if len(seen) < 16300 {
		t.Errorf("only %d distinct source ports", len(seen))
	}
	if SourcePort(0x00010000) == SourcePort(0) {
		t.Errorf("high half of the hash ignored")
	}
}

func TestIPAllocs(t *testing.T) {
	in4 := testInnerIPv4(t, 64, 0, 64)
	in6 := testInnerIPv6(t, 64, 0, 64)
	n := testing.AllocsPerRun(1000, func() {
		ip := IPv4(in4)
		_ = ip.Validate(len(in4))
		_ = ip.Src()
		_ = ip.Dst()
		_ = ip.ChecksumValid()
		_ = IPv4(in4[:3]).Validate(3)
		ip6 := IPv6(in6)
		_ = ip6.Validate(len(in6))
		_ = ip6.Src()
		_ = ip6.Dst()
		_ = UDPChecksum(ip6.Payload(), ip6.Src(), ip6.Dst())
		_ = UDP(in6[:3]).Validate(3)
		_ = FlowHash(in4, 1) + FlowHash(in6, 1)
	})
	if n != 0 {
		t.Fatalf("IP views allocate %v times per run", n)
	}
}

// FuzzIPHeaders feeds arbitrary bytes to the validators and, where they
// accept, to every accessor and to the flow hash: nothing may panic, and
// accepted lengths must lie within the input.
func FuzzIPHeaders(f *testing.F) {
	f.Add(testInnerIPv4(f, 64, 0, 40))
	f.Add(testInnerIPv6(f, 64, 0, 60))
	f.Add([]byte{0x4f, 0, 0, 60})
	f.Add([]byte{0x81, 0, 0x45})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = FlowHash(b, 0)
		_, _, _ = IPTTLAndTOS(b)
		_, _, _, _ = Ethernet(b).Payload()
		if IPv4(b).Validate(len(b)) == nil {
			ip := IPv4(b)
			p := ip.Payload()
			if ip.HeaderLength()+len(p) != int(ip.TotalLength()) || int(ip.TotalLength()) > len(b) {
				t.Fatalf("ipv4 payload %d", len(p))
			}
			_ = ip.ChecksumValid()
			_, _ = ip.Src(), ip.Dst()
			_, _ = ApplyDecap(append([]byte(nil), b...), 3, 3)
			if UDP(p).Validate(len(p)) == nil {
				_ = UDP(p).Payload()
				_ = UDPChecksumOK(p, ip.Src(), ip.Dst())
			}
		}
		if IPv6(b).Validate(len(b)) == nil {
			ip := IPv6(b)
			p := ip.Payload()
			if IPv6Len+len(p) > len(b) {
				t.Fatalf("ipv6 payload %d", len(p))
			}
			_, _ = ApplyDecap(append([]byte(nil), b...), 3, 3)
			if UDP(p).Validate(len(p)) == nil {
				_ = UDPChecksumOK(p, ip.Src(), ip.Dst())
			}
		}
	})
}

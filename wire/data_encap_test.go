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

// testInnerIPv4 builds an IPv4+UDP packet (no Ethernet) of total length
// size with the given TTL and TOS, with gopacket.
func testInnerIPv4(t testing.TB, ttl, tos uint8, size int) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: ttl, TOS: tos, Id: 0x1234, Protocol: layers.IPProtocolUDP,
		SrcIP: netip.MustParseAddr("10.1.0.1").AsSlice(), DstIP: netip.MustParseAddr("10.2.0.2").AsSlice()}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 40001}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return serialize(t, ip, udp, gopacket.Payload(bytes.Repeat([]byte{0xa5}, size-IPv4MinLen-UDPLen)))
}

// testInnerIPv6 builds an IPv6+UDP packet of total length size with the
// given hop limit and traffic class, with gopacket.
func testInnerIPv6(t testing.TB, hop, tc uint8, size int) []byte {
	t.Helper()
	ip := &layers.IPv6{Version: 6, HopLimit: hop, TrafficClass: tc, FlowLabel: 0x12345, NextHeader: layers.IPProtocolUDP,
		SrcIP: netip.MustParseAddr("fd00:1::1").AsSlice(), DstIP: netip.MustParseAddr("fd00:2::2").AsSlice()}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 40001}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return serialize(t, ip, udp, gopacket.Payload(bytes.Repeat([]byte{0x5a}, size-IPv6Len-UDPLen)))
}

func serialize(t testing.TB, l ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, l...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// naiveSum is an independent RFC 1071 sum: byte pairs, one at a time.
func naiveSum(bs ...[]byte) uint16 {
	var s uint32
	for _, b := range bs {
		for i := 0; i < len(b); i += 2 {
			w := uint32(b[i]) << 8
			if i+1 < len(b) {
				w |= uint32(b[i+1])
			}
			s += w
			for s > 0xffff {
				s = s&0xffff + s>>16
			}
		}
	}
	return uint16(s)
}

// naiveUDPOK verifies the UDP checksum of the datagram seg sent from src to
// dst independently of the code under test.
func naiveUDPOK(src, dst netip.Addr, seg []byte) bool {
	var ph []byte
	ph = append(ph, src.AsSlice()...)
	ph = append(ph, dst.AsSlice()...)
	if src.Is4() {
		ph = append(ph, 0, 17, byte(len(seg)>>8), byte(len(seg)))
	} else {
		ph = append(ph, 0, 0, byte(len(seg)>>8), byte(len(seg)), 0, 0, 0, 17)
	}
	return naiveSum(ph, seg) == 0xffff
}

var (
	rloc4a = netip.MustParseAddr("192.0.2.1")
	rloc4b = netip.MustParseAddr("203.0.113.9")
	rloc6a = netip.MustParseAddr("2001:db8::1")
	rloc6b = netip.MustParseAddr("2001:db8:ffff::2")
)

func TestOuterTemplateIPv4(t *testing.T) {
	o := &Outer{Src: rloc4a, Dst: rloc4b, DontFragment: true,
		LISP: HeaderFields{Flags: FlagN | FlagL | FlagI, Nonce: 0x111111, InstanceID: 0x000123, LSBs: 1}}
	tmpl, err := AppendOuterIPv4([]byte{0xff}, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(tmpl) != 1+OuterIPv4Len || tmpl[0] != 0xff {
		t.Fatalf("template length %d", len(tmpl))
	}
	tmpl = tmpl[1:]
	// Hand-written expectation (RFC 791 §3.1, RFC 768, RFC 9300 §5.3).
	want := unhex(t, `
		45 00 0024 0000 4000 40 11 0000 c0000201 cb007109
		c000 10f5 0010 0000
		c8 111111 000123 01`)
	binary.BigEndian.PutUint16(want[10:], ^naiveSum(want[:20]))
	if !bytes.Equal(tmpl, want) {
		t.Fatalf("template\n got %x\nwant %x", tmpl, want)
	}
	p := gopacket.NewPacket(tmpl, layers.LayerTypeIPv4, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if ip == nil || udp == nil || p.ErrorLayer() != nil {
		t.Fatalf("gopacket: %v", p)
	}
	if ip.Length != OuterIPv4Len || ip.TTL != DefaultOuterTTL || ip.Flags != layers.IPv4DontFragment ||
		!ip.SrcIP.Equal(rloc4a.AsSlice()) || !ip.DstIP.Equal(rloc4b.AsSlice()) || udp.DstPort != DataPort ||
		udp.Length != UDPLen+HeaderLen || udp.Checksum != 0 {
		t.Errorf("gopacket sees %+v %+v", ip, udp)
	}
	if naiveSum(tmpl[:20]) != 0xffff || !IPv4(tmpl).ChecksumValid() {
		t.Errorf("template IPv4 checksum does not verify")
	}
	// A mapped address works; mixed families and N+V do not.
	if _, err := AppendOuterIPv4(nil, &Outer{Src: netip.AddrFrom16(rloc4a.As16()), Dst: rloc4b}); err != nil {
		t.Errorf("mapped source: %v", err)
	}
	if b, err := AppendOuterIPv4(nil, &Outer{Src: rloc6a, Dst: rloc4b}); !errors.Is(err, ErrBadAFI) || len(b) != 0 {
		t.Errorf("v6 source in v4 template: %v", err)
	}
	if _, err := AppendOuterIPv4(nil, &Outer{Src: rloc4a, Dst: rloc4b, LISP: HeaderFields{Flags: FlagN | FlagV}}); !errors.Is(err, ErrBadValue) {
		t.Errorf("N+V: %v", err)
	}
	if _, err := AppendOuterIPv4(nil, &Outer{}); !errors.Is(err, ErrBadAFI) {
		t.Errorf("zero Outer: %v", err)
	}
}

func TestOuterTemplateIPv6(t *testing.T) {
	o := &Outer{Src: rloc6a, Dst: rloc6b, TTL: 200, UDPChecksum: true,
		LISP: HeaderFields{Flags: FlagI, InstanceID: 0xfffffe}}
	tmpl, err := AppendOuter(nil, o)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, `
		60000000 0010 11 c8
		20010db8000000000000000000000001
		20010db8ffff00000000000000000002
		c000 10f5 0010 0000
		08 000000 fffffe 00`)
	cs := UDPChecksum(want[40:], rloc6a, rloc6b)
	binary.BigEndian.PutUint16(want[46:], cs)
	if !bytes.Equal(tmpl, want) {
		t.Fatalf("template\n got %x\nwant %x", tmpl, want)
	}
	if cs == 0 || !naiveUDPOK(rloc6a, rloc6b, tmpl[40:]) {
		t.Errorf("template UDP checksum %#x does not verify", cs)
	}
	p := gopacket.NewPacket(tmpl, layers.LayerTypeIPv6, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if ip == nil || udp == nil || p.ErrorLayer() != nil {
		t.Fatalf("gopacket: %v", p)
	}
	if ip.Length != UDPLen+HeaderLen || ip.HopLimit != 200 || ip.NextHeader != layers.IPProtocolUDP ||
		!ip.SrcIP.Equal(rloc6a.AsSlice()) || udp.DstPort != DataPort {
		t.Errorf("gopacket sees %+v %+v", ip, udp)
	}
	for _, bad := range []*Outer{{Src: rloc4a, Dst: rloc4b}, {Src: rloc6a, Dst: rloc4b},
		{Src: netip.AddrFrom16(rloc4a.As16()), Dst: rloc6b}} {
		if _, err := AppendOuterIPv6(nil, bad); !errors.Is(err, ErrBadAFI) {
			t.Errorf("%v -> %v: %v", bad.Src, bad.Dst, err)
		}
	}
}

// encap copies the template for o in front of inner and patches it.
func encap(t testing.TB, o *Outer, inner []byte, p *EncapParams) []byte {
	t.Helper()
	pkt, err := AppendOuter(nil, o)
	if err != nil {
		t.Fatal(err)
	}
	pkt = append(pkt, inner...)
	if err := PatchOuter(pkt, p); err != nil {
		t.Fatal(err)
	}
	return pkt
}

// TestEncapGopacket encapsulates IPv4 and IPv6 inner packets into IPv4 and
// IPv6 outer headers, with and without UDP checksums, and decodes the
// result with gopacket; checksums are verified independently.
func TestEncapGopacket(t *testing.T) {
	inners := map[string][]byte{
		"in4":     testInnerIPv4(t, 17, 0xb9, 64),    // DSCP 46 (EF), ECT(1)
		"in6":     testInnerIPv6(t, 3, 0x2a, 101),    // DSCP 10, ECT(0), odd length
		"in4-big": testInnerIPv4(t, 255, 0x03, 1400), // CE
	}
	outers := map[string][2]netip.Addr{"out4": {rloc4a, rloc4b}, "out6": {rloc6a, rloc6b}}
	for on, addrs := range outers {
		for in, inner := range inners {
			for _, sum := range []bool{false, true} {
				name := on + "/" + in
				if sum {
					name += "/udpsum"
				}
				t.Run(name, func(t *testing.T) {
					o := &Outer{Src: addrs[0], Dst: addrs[1], UDPChecksum: sum,
						LISP: HeaderFields{Flags: FlagN | FlagL | FlagI, InstanceID: 77}}
					ep := &EncapParams{FlowHash: FlowHash(inner, 0), Nonce: 0xc0ffee, LSBs: 0x3, ID: 0x4242}
					pkt := encap(t, o, inner, ep)
					innerTTL, innerTOS, _ := IPTTLAndTOS(inner)
					first := layers.LayerTypeIPv4
					if addrs[0].Is6() {
						first = layers.LayerTypeIPv6
					}
					p := gopacket.NewPacket(pkt, first, gopacket.Default)
					if p.ErrorLayer() != nil {
						t.Fatalf("gopacket: %v", p.ErrorLayer().Error())
					}
					var udpSeg []byte
					if addrs[0].Is4() {
						ip := p.Layers()[0].(*layers.IPv4)
						if int(ip.Length) != len(pkt) || ip.TTL != innerTTL || ip.TOS != innerTOS || ip.Id != 0x4242 ||
							ip.Protocol != layers.IPProtocolUDP || !ip.SrcIP.Equal(addrs[0].AsSlice()) {
							t.Errorf("outer IPv4 %+v", ip)
						}
						if naiveSum(pkt[:20]) != 0xffff {
							t.Errorf("outer IPv4 checksum %#x does not verify", ip.Checksum)
						}
						udpSeg = pkt[IPv4MinLen:]
					} else {
						ip := p.Layers()[0].(*layers.IPv6)
						if int(ip.Length) != len(pkt)-IPv6Len || ip.HopLimit != innerTTL || ip.TrafficClass != innerTOS ||
							ip.FlowLabel != ep.FlowHash&0xfffff || !ip.DstIP.Equal(addrs[1].AsSlice()) {
							t.Errorf("outer IPv6 %+v", ip)
						}
						udpSeg = pkt[IPv6Len:]
					}
					udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
					if udp == nil || udp.DstPort != DataPort || uint16(udp.SrcPort) != SourcePort(ep.FlowHash) ||
						int(udp.Length) != len(udpSeg) {
						t.Fatalf("outer UDP %+v", udp)
					}
					if udp.SrcPort < SourcePortMin {
						t.Errorf("source port %d below %d", udp.SrcPort, SourcePortMin)
					}
					if sum {
						if udp.Checksum == 0 || !naiveUDPOK(addrs[0], addrs[1], udpSeg) {
							t.Errorf("UDP checksum %#x does not verify", udp.Checksum)
						}
						if !UDPChecksumOK(udpSeg, addrs[0], addrs[1]) {
							t.Errorf("UDPChecksumOK disagrees")
						}
					} else if udp.Checksum != 0 {
						t.Errorf("UDP checksum %#x, want 0", udp.Checksum)
					}
					h, err := ParseHeader(udp.Payload)
					if err != nil {
						t.Fatal(err)
					}
					var f HeaderFields
					h.Decode(&f)
					if f != (HeaderFields{Flags: FlagN | FlagL | FlagI, Nonce: 0xc0ffee, InstanceID: 77, LSBs: 3}) {
						t.Errorf("LISP header %+v", f)
					}
					if !bytes.Equal(udp.Payload[HeaderLen:], inner) {
						t.Errorf("inner packet changed")
					}
				})
			}
		}
	}
}

// TestEncapTTLECN checks that the outer TTL and the whole TOS / traffic
// class byte (DSCP, and ECN per RFC 6040 §4.1 normal mode) are copied from
// the inner header, for every ECN codepoint.
func TestEncapTTLECN(t *testing.T) {
	for _, ttl := range []uint8{1, 64, 255} {
		for _, dscp := range []uint8{0, 10, 46, 63} {
			for ecn := uint8(0); ecn < 4; ecn++ {
				tos := dscp<<2 | ecn
				for _, in := range [][]byte{testInnerIPv4(t, ttl, tos, 40), testInnerIPv6(t, ttl, tos, 60)} {
					p4 := encap(t, &Outer{Src: rloc4a, Dst: rloc4b}, in, &EncapParams{})
					if o := IPv4(p4); o.TTL() != ttl || o.DSCP() != dscp || o.ECN() != ecn || !o.ChecksumValid() {
						t.Errorf("v4 outer ttl %d tos %#x for inner ttl %d tos %#x", o.TTL(), o.TOS(), ttl, tos)
					}
					p6 := encap(t, &Outer{Src: rloc6a, Dst: rloc6b}, in, &EncapParams{})
					if o := IPv6(p6); o.HopLimit() != ttl || o.DSCP() != dscp || o.ECN() != ecn || o.Version() != 6 {
						t.Errorf("v6 outer hop %d tc %#x for inner ttl %d tos %#x", o.HopLimit(), o.TrafficClass(), ttl, tos)
					}
				}
			}
		}
	}
}

// TestPatchRepeated reuses one buffer and one template for many packets of
// random size, TTL, TOS and ID: the incremental checksum must stay right.
func TestPatchRepeated(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tmpl, _ := AppendOuterIPv4(nil, &Outer{Src: rloc4a, Dst: rloc4b, DontFragment: true,
		LISP: HeaderFields{Flags: FlagN | FlagI, InstanceID: 9}})
	buf := make([]byte, 2048)
	inner := testInnerIPv4(t, 64, 0, 1500)
	for i := 0; i < 2000; i++ {
		n := IPv4MinLen + r.IntN(1480)
		in := buf[OuterIPv4Len : OuterIPv4Len+n]
		copy(in, inner[:n])
		in[v4TTL] = uint8(r.Uint32())
		in[v4TOS] = uint8(r.Uint32())
		copy(buf, tmpl)
		pkt := buf[:OuterIPv4Len+n]
		ep := EncapParams{FlowHash: r.Uint32(), Nonce: r.Uint32(), ID: uint16(r.Uint32())}
		if err := PatchOuterIPv4(pkt, &ep); err != nil {
			t.Fatal(err)
		}
		o := IPv4(pkt)
		if naiveSum(pkt[:20]) != 0xffff || int(o.TotalLength()) != len(pkt) || o.ID() != ep.ID ||
			o.TTL() != in[v4TTL] || o.TOS() != in[v4TOS] || Header(pkt[28:]).Nonce() != ep.Nonce&MaxNonce {
			t.Fatalf("iteration %d: outer %x", i, pkt[:OuterIPv4Len])
		}
		// Patching the same packet twice gives the same bytes.
		again := append([]byte(nil), pkt[:OuterIPv4Len]...)
		if err := PatchOuterIPv4(pkt, &ep); err != nil || !bytes.Equal(again, pkt[:OuterIPv4Len]) {
			t.Fatalf("second patch differs: %v", err)
		}
	}
}

func TestPatchErrors(t *testing.T) {
	t4, _ := AppendOuterIPv4(nil, &Outer{Src: rloc4a, Dst: rloc4b})
	t6, _ := AppendOuterIPv6(nil, &Outer{Src: rloc6a, Dst: rloc6b})
	in4 := testInnerIPv4(t, 9, 0, 28)
	in6 := testInnerIPv6(t, 9, 0, 48)
	for _, c := range []struct {
		name string
		pkt  []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"v4 template only", t4, ErrTruncated},
		{"v6 template only", t6, ErrTruncated},
		{"v4 inner v4 short", append(append([]byte(nil), t4...), in4[:19]...), ErrTruncated},
		{"v4 inner v6 short", append(append([]byte(nil), t4...), in6[:39]...), ErrTruncated},
		{"v6 inner v4 short", append(append([]byte(nil), t6...), in4[:10]...), ErrTruncated},
		{"v4 inner not IP", append(append([]byte(nil), t4...), 0x00, 1, 2, 3), ErrBadValue},
		{"v6 inner not IP", append(append([]byte(nil), t6...), 0x50, 1, 2, 3), ErrBadValue},
		{"v4 too large", append(append(append([]byte(nil), t4...), in4...), make([]byte, 65536)...), ErrTooLarge},
		{"v6 too large", append(append(append([]byte(nil), t6...), in4...), make([]byte, 65536)...), ErrTooLarge},
		{"template not IP", append([]byte{0x00}, make([]byte, 80)...), ErrBadAFI},
	} {
		before := append([]byte(nil), c.pkt...)
		if err := PatchOuter(c.pkt, &EncapParams{FlowHash: 1, Nonce: 2, ID: 3}); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
		if !bytes.Equal(before, c.pkt) {
			t.Errorf("%s: packet modified on error", c.name)
		}
	}
	// Inner IPv6 after an IPv6 outer, exactly 40 bytes of inner header: ok.
	if err := PatchOuter(append(append([]byte(nil), t6...), in6[:IPv6Len]...), &EncapParams{}); err != nil {
		t.Errorf("minimal inner: %v", err)
	}
}

// TestInnerTTLAndECN is the decapsulation table of RFC 6040 §4.2 (Figure
// 4), row by row, plus the TTL rule of RFC 9300 §5.3.
func TestInnerTTLAndECN(t *testing.T) {
	N, E0, E1, CE := ECNNotECT, ECNECT0, ECNECT1, ECNCE
	type out struct {
		ecn uint8
		d   ECNDecap
	}
	// Rows: arriving inner; columns: arriving outer Not-ECT, ECT(0), ECT(1), CE.
	table := map[uint8][4]out{
		N:  {{N, ECNForward}, {N, ECNForwardAlarm}, {N, ECNForwardAlarm}, {N, ECNDrop}},
		E0: {{E0, ECNForward}, {E0, ECNForward}, {E1, ECNForward}, {CE, ECNForward}},
		E1: {{E1, ECNForward}, {E1, ECNForward}, {E1, ECNForward}, {CE, ECNForward}},
		CE: {{CE, ECNForward}, {CE, ECNForward}, {CE, ECNForwardAlarm}, {CE, ECNForward}},
	}
	cols := [4]uint8{N, E0, E1, CE}
	for inner, row := range table {
		for i, outer := range cols {
			_, ecn, d := InnerTTLAndECN(64, outer, 64, inner)
			if ecn != row[i].ecn || d != row[i].d {
				t.Errorf("inner %d outer %d: got %d %v, want %d %v", inner, outer, ecn, d, row[i].ecn, row[i].d)
			}
			// DSCP bits around the ECN field are ignored.
			if _, ecn2, d2 := InnerTTLAndECN(64, outer|0xb8, 64, inner|0x28); ecn2 != ecn || d2 != d {
				t.Errorf("DSCP bits change the outcome")
			}
		}
	}
	for _, c := range [][3]uint8{{10, 20, 10}, {20, 10, 10}, {0, 5, 0}, {255, 255, 255}, {1, 0, 0}} {
		if ttl, _, _ := InnerTTLAndECN(c[0], 0, c[1], 0); ttl != c[2] {
			t.Errorf("outer %d inner %d: ttl %d, want %d", c[0], c[1], ttl, c[2])
		}
	}
	if ECNDrop.String() != "drop" || ECNDecap(9).String() != "ecn-decap-9" {
		t.Errorf("String: %v %v", ECNDrop, ECNDecap(9))
	}
}

func TestApplyDecap(t *testing.T) {
	for _, c := range []struct {
		outerTTL, outerTOS, innerTTL, innerTOS uint8
		wantTTL, wantTOS                       uint8
		want                                   ECNDecap
	}{
		{10, 0x03, 64, 0xb9, 10, 0xbb, ECNForward},      // CE copied into ECT(1), DSCP kept
		{200, 0x00, 64, 0x2a, 64, 0x2a, ECNForward},     // nothing to copy
		{30, 0x01, 64, 0x02, 30, 0x01, ECNForward},      // ECT(1) over ECT(0)
		{30, 0x03, 64, 0x00, 64, 0x00, ECNDrop},         // CE over Not-ECT: drop, unchanged
		{30, 0x02, 64, 0xb8, 30, 0xb8, ECNForwardAlarm}, // ECT(0) over Not-ECT: alarm
	} {
		in4 := testInnerIPv4(t, c.innerTTL, c.innerTOS, 60)
		d, err := ApplyDecap(in4, c.outerTTL, c.outerTOS)
		ip := IPv4(in4)
		if err != nil || d != c.want || ip.TTL() != c.wantTTL || ip.TOS() != c.wantTOS || naiveSum(in4[:20]) != 0xffff {
			t.Errorf("v4 %+v: got %v %v ttl %d tos %#x sum ok %v", c, d, err, ip.TTL(), ip.TOS(), naiveSum(in4[:20]) == 0xffff)
		}
		in6 := testInnerIPv6(t, c.innerTTL, c.innerTOS, 60)
		d, err = ApplyDecap(in6, c.outerTTL, c.outerTOS)
		ip6 := IPv6(in6)
		if err != nil || d != c.want || ip6.HopLimit() != c.wantTTL || ip6.TrafficClass() != c.wantTOS ||
			ip6.FlowLabel() != 0x12345 || ip6.Version() != 6 {
			t.Errorf("v6 %+v: got %v %v hop %d tc %#x", c, d, err, ip6.HopLimit(), ip6.TrafficClass())
		}
	}
	for _, bad := range [][]byte{nil, {0x45, 0}, make([]byte, 39), {0x60, 0, 0}} {
		if _, err := ApplyDecap(bad, 1, 1); err == nil {
			t.Errorf("ApplyDecap(%x) accepted", bad)
		}
	}
}

func TestEncapAllocs(t *testing.T) {
	inner := testInnerIPv4(t, 64, 0, 64)
	t4, _ := AppendOuterIPv4(nil, &Outer{Src: rloc4a, Dst: rloc4b, LISP: HeaderFields{Flags: FlagN | FlagI, InstanceID: 1}})
	t6, _ := AppendOuterIPv6(nil, &Outer{Src: rloc6a, Dst: rloc6b, UDPChecksum: true, LISP: HeaderFields{Flags: FlagN | FlagI}})
	buf := make([]byte, 256)
	ep := EncapParams{}
	n := testing.AllocsPerRun(1000, func() {
		for _, tmpl := range [][]byte{t4, t6} {
			copy(buf, tmpl)
			copy(buf[len(tmpl):], inner)
			pkt := buf[:len(tmpl)+len(inner)]
			ep.FlowHash = FlowHash(inner, 7)
			ep.Nonce++
			if err := PatchOuter(pkt, &ep); err != nil {
				panic(err)
			}
			if _, err := ApplyDecap(pkt[len(tmpl):], 3, 3); err != nil {
				panic(err)
			}
		}
		_ = PatchOuter(buf[:10], &ep) // error path
	})
	if n != 0 {
		t.Fatalf("template copy + patch allocates %v times per run", n)
	}
}

// FuzzPatchOuter puts arbitrary bytes behind IPv4 and IPv6 templates:
// patching must never panic, and when it succeeds the outer headers must
// be consistent with the packet.
func FuzzPatchOuter(f *testing.F) {
	f.Add(testInnerIPv4(f, 64, 0xb9, 64), uint32(1), uint32(2), true)
	f.Add(testInnerIPv6(f, 1, 0x03, 80), uint32(0xffffffff), uint32(0), false)
	f.Add([]byte{0x45}, uint32(0), uint32(0), false)
	f.Add([]byte{0x60, 0, 0}, uint32(0), uint32(0), true)
	f.Fuzz(func(t *testing.T, inner []byte, hash, nonce uint32, sum bool) {
		for _, o := range []*Outer{
			{Src: rloc4a, Dst: rloc4b, UDPChecksum: sum, LISP: HeaderFields{Flags: FlagN | FlagL | FlagI, InstanceID: 5}},
			{Src: rloc6a, Dst: rloc6b, UDPChecksum: sum, LISP: HeaderFields{Flags: FlagN | FlagL}},
		} {
			pkt, err := AppendOuter(nil, o)
			if err != nil {
				t.Fatal(err)
			}
			hl := len(pkt)
			pkt = append(pkt, inner...)
			if err := PatchOuter(pkt, &EncapParams{FlowHash: hash, Nonce: nonce, LSBs: hash}); err != nil {
				if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrBadValue) && !errors.Is(err, ErrTooLarge) {
					t.Fatalf("unexpected error %v", err)
				}
				continue
			}
			var u UDP
			if hl == OuterIPv4Len {
				if IPv4(pkt).Validate(len(pkt)) != nil || !IPv4(pkt).ChecksumValid() {
					t.Fatalf("outer IPv4 invalid: %x", pkt[:hl])
				}
				u = UDP(pkt[IPv4MinLen:])
			} else {
				if IPv6(pkt).Validate(len(pkt)) != nil {
					t.Fatalf("outer IPv6 invalid: %x", pkt[:hl])
				}
				u = UDP(pkt[IPv6Len:])
			}
			if u.Validate(len(u)) != nil || int(u.Length()) != len(u) || u.SrcPort() != SourcePort(hash) {
				t.Fatalf("outer UDP invalid: %x", pkt[:hl])
			}
			if sum != (u.Checksum() != 0) || (sum && !naiveUDPOK(o.Src, o.Dst, u)) {
				t.Fatalf("UDP checksum %#x (wanted: %v)", u.Checksum(), sum)
			}
			if Header(pkt[hl-HeaderLen:]).Nonce() != nonce&MaxNonce {
				t.Fatalf("nonce not written")
			}
			if !bytes.Equal(pkt[hl:], inner) {
				t.Fatalf("inner changed")
			}
		}
	})
}

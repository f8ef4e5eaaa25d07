package wire

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/rloc-router/rloc/internal/testkit/tsharktest"
)

// Shared test helpers: build frames with gopacket and check what tshark
// makes of them. The control-message tests of this package use them too.

var (
	testSrcMAC = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	testDstMAC = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}
)

// udpFrame returns an Ethernet + IPv4/IPv6 + UDP frame from src:sport to
// dst:dport carrying payload, built with gopacket with correct lengths and
// checksums. src and dst must be of one family.
func udpFrame(t testing.TB, src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	t.Helper()
	src, dst = src.Unmap(), dst.Unmap()
	if src.Is4() != dst.Is4() {
		t.Fatalf("udpFrame: mixed families %v -> %v", src, dst)
	}
	eth := &layers.Ethernet{SrcMAC: testSrcMAC[:], DstMAC: testDstMAC[:]}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	var ip gopacket.SerializableLayer
	if src.Is4() {
		eth.EthernetType = layers.EthernetTypeIPv4
		v4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
			SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		if err := udp.SetNetworkLayerForChecksum(v4); err != nil {
			t.Fatal(err)
		}
		ip = v4
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		v6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
			SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		if err := udp.SetNetworkLayerForChecksum(v6); err != nil {
			t.Fatal(err)
		}
		ip = v6
	}
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, eth, ip, udp, gopacket.Payload(payload)); err != nil {
		t.Fatalf("udpFrame: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// ethFrame puts an Ethernet header in front of the IP packet pkt.
func ethFrame(pkt []byte) []byte {
	f := make([]byte, EthernetLen, EthernetLen+len(pkt))
	e := Ethernet(f)
	e.SetDst(testDstMAC)
	e.SetSrc(testSrcMAC)
	if len(pkt) > 0 && pkt[0]>>4 == 6 {
		e.SetType(EtherTypeIPv6)
	} else {
		e.SetType(EtherTypeIPv4)
	}
	return append(f, pkt...)
}

// The tshark helpers live in internal/testkit/tsharktest; these names keep the
// tests of this package short.
var (
	tsharkDecode = tsharktest.Decode
	tsharkFields = tsharktest.Fields
	tsharkField  = tsharktest.Field
	tsharkUint   = tsharktest.Uint
)

// TestTsharkDataHeader encapsulates packets with the outer templates (IPv4
// and IPv6 outer, IPv4 and IPv6 inner, several flag combinations) and checks
// that tshark decodes the LISP data header to exactly what was encoded,
// with nothing malformed.
func TestTsharkDataHeader(t *testing.T) {
	type tc struct {
		name       string
		src, dst   string
		inner      []byte
		lisp       HeaderFields
		p          EncapParams
		udpSum     bool
		wantLSB8   bool
		wantIID    bool
		wantNonce  bool
		wantMapVer bool
	}
	in4 := testInnerIPv4(t, 64, 0xb9, 32)
	in6 := testInnerIPv6(t, 64, 0x2a, 60)
	cases := []tc{
		{name: "v4/N", src: "192.0.2.1", dst: "198.51.100.7", inner: in4,
			lisp: HeaderFields{Flags: FlagN}, p: EncapParams{FlowHash: 1, Nonce: 0x123456}, wantNonce: true},
		{name: "v4/NLI", src: "192.0.2.1", dst: "198.51.100.7", inner: in6,
			lisp: HeaderFields{Flags: FlagN | FlagL | FlagI, InstanceID: 0xabcdef},
			p:    EncapParams{FlowHash: 99, Nonce: 0xfedcba, LSBs: 0x05}, wantNonce: true, wantIID: true, wantLSB8: true},
		{name: "v4/I-udpsum", src: "192.0.2.1", dst: "198.51.100.7", inner: in4, udpSum: true,
			lisp: HeaderFields{Flags: FlagI, InstanceID: 1}, p: EncapParams{FlowHash: 7}, wantIID: true},
		{name: "v6/NLI", src: "2001:db8::1", dst: "2001:db8:ffff::2", inner: in4,
			lisp: HeaderFields{Flags: FlagN | FlagL | FlagI, InstanceID: 4096},
			p:    EncapParams{FlowHash: 0xdeadbeef, Nonce: 1, LSBs: 0xff}, wantNonce: true, wantIID: true, wantLSB8: true},
		{name: "v6/NE-L32-udpsum", src: "2001:db8::1", dst: "2001:db8:ffff::2", inner: in6, udpSum: true,
			lisp: HeaderFields{Flags: FlagN | FlagE | FlagL},
			p:    EncapParams{FlowHash: 5, Nonce: 0xffffff, LSBs: 0x80000001}, wantNonce: true},
		{name: "v6/V", src: "2001:db8::1", dst: "2001:db8:ffff::2", inner: in6,
			lisp: HeaderFields{Flags: FlagV, SourceMapVersion: 0x123, DestMapVersion: 0xfff},
			p:    EncapParams{FlowHash: 5}, wantMapVer: true},
	}
	var frames [][]byte
	for _, c := range cases {
		o := &Outer{Src: netip.MustParseAddr(c.src), Dst: netip.MustParseAddr(c.dst), LISP: c.lisp, UDPChecksum: c.udpSum}
		pkt, err := AppendOuter(nil, o)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		pkt = append(pkt, c.inner...)
		if err := PatchOuter(pkt, &c.p); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		frames = append(frames, ethFrame(pkt))
	}
	got := tsharkDecode(t, frames)
	for i, c := range cases {
		l := got[i]
		t.Run(c.name, func(t *testing.T) {
			if p := tsharkField(t, l, "frame.protocols"); !strings.Contains(p, ":udp:lisp-data:ip") {
				t.Errorf("protocols %q: want udp:lisp-data:ip(v6)", p)
			}
			if d := tsharkFields(l, "udp.dstport"); len(d) == 0 || d[0] != strconv.Itoa(DataPort) {
				t.Errorf("outer udp.dstport %q, want %d", d, DataPort)
			}
			if v := tsharkUint(t, l, "lisp-data.flags"); v != uint64(c.lisp.Flags) {
				t.Errorf("flags %#x, want %#x", v, c.lisp.Flags)
			}
			for _, bit := range []struct {
				field string
				flag  uint8
			}{{"nonce", FlagN}, {"lsb", FlagL}, {"enr", FlagE}, {"mv", FlagV}, {"iid", FlagI}} {
				want := uint64(0)
				if c.lisp.Flags&bit.flag != 0 {
					want = 1
				}
				if v := tsharkUint(t, l, "lisp-data.flags."+bit.field); v != want {
					t.Errorf("flag %s = %d, want %d", bit.field, v, want)
				}
			}
			if c.wantNonce {
				if v := tsharkUint(t, l, "lisp-data.nonce"); v != uint64(c.p.Nonce&MaxNonce) {
					t.Errorf("nonce %#x, want %#x", v, c.p.Nonce)
				}
			}
			if c.wantIID {
				if v := tsharkUint(t, l, "lisp-data.iid"); v != uint64(c.lisp.InstanceID) {
					t.Errorf("iid %d, want %d", v, c.lisp.InstanceID)
				}
			}
			if c.wantLSB8 {
				if v := tsharkUint(t, l, "lisp-data.lsb8"); v != uint64(c.p.LSBs&0xff) {
					t.Errorf("lsb8 %#x, want %#x", v, c.p.LSBs&0xff)
				}
			} else if c.lisp.Flags&FlagL != 0 {
				if v := tsharkUint(t, l, "lisp-data.lsb"); v != uint64(c.p.LSBs) {
					t.Errorf("lsb %#x, want %#x", v, c.p.LSBs)
				}
			}
			if c.wantMapVer {
				if v := tsharkUint(t, l, "lisp-data.srcmapver"); v != uint64(c.lisp.SourceMapVersion) {
					t.Errorf("srcmapver %d", v)
				}
				if v := tsharkUint(t, l, "lisp-data.dstmapver"); v != uint64(c.lisp.DestMapVersion) {
					t.Errorf("dstmapver %d", v)
				}
			}
			for _, f := range []string{"lisp-data.flags.nv_invalid", "lisp-data.flags.en_invalid"} {
				if v := tsharkFields(l, f); len(v) != 0 {
					t.Errorf("tshark reports %s", f)
				}
			}
			// The checksums tshark verified (status 1 = good): every IPv4
			// header and, when sent, the outer UDP checksum.
			for _, s := range tsharkFields(l, "ip.checksum.status") {
				if s != "1" {
					t.Errorf("ip.checksum.status %s, want 1 (good)", s)
				}
			}
			sums := tsharkFields(l, "udp.checksum.status")
			if c.udpSum && (len(sums) == 0 || sums[0] != "1") {
				t.Errorf("outer udp.checksum.status %q, want 1 (good)", sums)
			}
			if src := tsharkFields(l, "udp.srcport"); len(src) == 0 || src[0] != strconv.Itoa(int(SourcePort(c.p.FlowHash))) {
				t.Errorf("udp.srcport %q, want %d", src, SourcePort(c.p.FlowHash))
			}
		})
	}
}

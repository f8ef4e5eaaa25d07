package wire

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var (
	mldSrc = netip.MustParseAddr("fe80::1")
	mldDst = netip.MustParseAddr("ff02::16")
)

// igmpCases are valid IGMP messages with what they parse to.
func igmpCases(t testing.TB) []struct {
	name string
	b    []byte
	want []GroupRecord
	ver  uint8
} {
	g := netip.MustParseAddr("232.1.1.1")
	s1, s2 := netip.MustParseAddr("10.1.1.1"), netip.MustParseAddr("10.1.1.2")
	v3recs := []GroupRecord{
		{Type: ModeIsInclude, Group: g, Sources: []netip.Addr{s1, s2}},
		{Type: ChangeToExclude, Group: netip.MustParseAddr("239.1.2.3")},
		{Type: BlockOldSources, Group: g, Sources: []netip.Addr{s2}},
	}
	v3, err := AppendIGMPv3Report(nil, v3recs)
	if err != nil {
		t.Fatal(err)
	}
	join, err := AppendIGMPv2(nil, g, false)
	if err != nil {
		t.Fatal(err)
	}
	leave, _ := AppendIGMPv2(nil, g, true)
	return []struct {
		name string
		b    []byte
		want []GroupRecord
		ver  uint8
	}{
		{"v3 report", v3, v3recs, 3},
		{"v2 report", join, []GroupRecord{{Type: ModeIsExclude, Group: g}}, 2},
		{"v2 leave", leave, []GroupRecord{{Type: ChangeToInclude, Group: g}}, 2},
		// RFC 1112 v1 report for 224.0.0.251, checksum computed by hand.
		{"v1 report", []byte{0x12, 0, 0x0d, 0x04, 224, 0, 0, 251}, []GroupRecord{{Type: ModeIsExclude, Group: netip.MustParseAddr("224.0.0.251")}}, 1},
	}
}

func recsEqual(a, b []GroupRecord) bool {
	return slices.EqualFunc(a, b, func(x, y GroupRecord) bool {
		return x.Type == y.Type && x.Group == y.Group && slices.Equal(x.Sources, y.Sources)
	})
}

func TestIGMPKnownVector(t *testing.T) {
	// The IGMPv2 report for 224.0.0.251 as every mDNS host sends it.
	b, err := AppendIGMPv2(nil, netip.MustParseAddr("224.0.0.251"), false)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x16, 0x00, 0x09, 0x04, 0xe0, 0x00, 0x00, 0xfb}
	if !slices.Equal(b, want) {
		t.Fatalf("got % x, want % x", b, want)
	}
	if _, err := AppendIGMPv2(nil, netip.MustParseAddr("ff02::1"), false); err == nil {
		t.Fatal("IPv6 group accepted for IGMP")
	}
}

func TestParseIGMP(t *testing.T) {
	var m Membership
	for _, c := range igmpCases(t) {
		if err := m.ParseIGMP(c.b); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if m.MLD || m.Query || m.Version != c.ver || !recsEqual(m.Records, c.want) {
			t.Fatalf("%s: got %+v v%d, want %+v v%d", c.name, m.Records, m.Version, c.want, c.ver)
		}
		for n := range len(c.b) {
			if err := m.ParseIGMP(c.b[:n]); err == nil {
				t.Fatalf("%s: prefix of %d/%d bytes parsed", c.name, n, len(c.b))
			}
		}
		bad := slices.Clone(c.b)
		bad[len(bad)-1] ^= 1
		if err := m.ParseIGMP(bad); err == nil || !errors.Is(err, ErrBadValue) {
			t.Fatalf("%s: corrupted message: %v", c.name, err)
		}
	}
}

// TestIGMPv3AgainstGopacket decodes our encoding with gopacket's IGMP layer
// (an independent implementation).
func TestIGMPv3AgainstGopacket(t *testing.T) {
	c := igmpCases(t)[0]
	var l layers.IGMP
	if err := l.DecodeFromBytes(c.b, gopacket.NilDecodeFeedback); err != nil {
		t.Fatal(err)
	}
	if int(l.NumberOfGroupRecords) != len(c.want) || len(l.GroupRecords) != len(c.want) {
		t.Fatalf("gopacket sees %d records", l.NumberOfGroupRecords)
	}
	for i, r := range l.GroupRecords {
		w := c.want[i]
		if uint8(r.Type) != uint8(w.Type) || !r.MulticastAddress.Equal(net.IP(w.Group.AsSlice())) || len(r.SourceAddresses) != len(w.Sources) {
			t.Fatalf("record %d: gopacket %+v, want %+v", i, r, w)
		}
	}
}

func TestParseIGMPRefuses(t *testing.T) {
	fix := func(b []byte) []byte {
		b[2], b[3] = 0, 0
		s := ^Checksum(b, 0)
		b[2], b[3] = byte(s>>8), byte(s)
		return b
	}
	cases := map[string][]byte{
		"unicast group":    fix([]byte{0x16, 0, 0, 0, 10, 0, 0, 1}),
		"unknown type":     fix([]byte{0x42, 0, 0, 0, 224, 0, 0, 1}),
		"record type 0":    fix([]byte{0x22, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 232, 1, 1, 1}),
		"record type 7":    fix([]byte{0x22, 0, 0, 0, 0, 0, 0, 1, 7, 0, 0, 0, 232, 1, 1, 1}),
		"multicast source": fix([]byte{0x22, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 232, 1, 1, 1, 239, 0, 0, 1}),
		"aux past end":     fix([]byte{0x22, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 232, 1, 1, 1}),
		"bad query length": fix([]byte{0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0}),
	}
	var m Membership
	for name, b := range cases {
		if err := m.ParseIGMP(b); err == nil {
			t.Errorf("%s: parsed %+v", name, m)
		}
	}
	q := fix([]byte{0x11, 100, 0, 0, 232, 1, 1, 1})
	if err := m.ParseIGMP(q); err != nil || !m.Query || m.QueryGroup != netip.MustParseAddr("232.1.1.1") || m.Version != 2 {
		t.Fatalf("v2 query: %v %+v", err, m)
	}
}

func mldCases(t testing.TB) []struct {
	name string
	b    []byte
	want []GroupRecord
	ver  uint8
} {
	g := netip.MustParseAddr("ff3e::8000:1")
	s1 := netip.MustParseAddr("2001:db8::1")
	recs := []GroupRecord{
		{Type: ModeIsInclude, Group: g, Sources: []netip.Addr{s1}},
		{Type: ChangeToInclude, Group: netip.MustParseAddr("ff05::1:3")},
	}
	v2, err := AppendMLDv2Report(nil, recs, mldSrc, mldDst)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := AppendMLDv1(nil, g, false, mldSrc, g)
	if err != nil {
		t.Fatal(err)
	}
	done, _ := AppendMLDv1(nil, g, true, mldSrc, mldDst)
	return []struct {
		name string
		b    []byte
		want []GroupRecord
		ver  uint8
	}{
		{"v2 report", v2, recs, 2},
		{"v1 report", rep, []GroupRecord{{Type: ModeIsExclude, Group: g}}, 1},
		{"v1 done", done, []GroupRecord{{Type: ChangeToInclude, Group: g}}, 1},
	}
}

func TestParseMLD(t *testing.T) {
	var m Membership
	g := netip.MustParseAddr("ff3e::8000:1")
	for _, c := range mldCases(t) {
		dst := mldDst
		if c.name == "v1 report" {
			dst = g
		}
		if err := m.ParseMLD(c.b, mldSrc, dst); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !m.MLD || m.Query || m.Version != c.ver || !recsEqual(m.Records, c.want) {
			t.Fatalf("%s: got %+v, want %+v", c.name, m.Records, c.want)
		}
		if err := m.ParseMLD(c.b, mldSrc, netip.MustParseAddr("ff02::2222")); err == nil {
			t.Fatalf("%s: wrong pseudo-header accepted", c.name)
		}
		if err := m.ParseMLD(c.b, netip.Addr{}, netip.Addr{}); err != nil {
			t.Fatalf("%s: without checksum: %v", c.name, err)
		}
		for n := range len(c.b) {
			if err := m.ParseMLD(c.b[:n], netip.Addr{}, netip.Addr{}); err == nil {
				t.Fatalf("%s: prefix of %d/%d bytes parsed", c.name, n, len(c.b))
			}
		}
	}
}

// TestMLDv2AgainstGopacket parses a report that gopacket serialized, with the
// ICMPv6 checksum gopacket computed.
func TestMLDv2AgainstGopacket(t *testing.T) {
	ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolICMPv6, HopLimit: 1,
		SrcIP: net.IP(mldSrc.AsSlice()), DstIP: net.IP(mldDst.AsSlice())}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(MLDv2Report, 0)}
	if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	g := netip.MustParseAddr("ff3e::1234")
	s := netip.MustParseAddr("2001:db8::7")
	rep := &layers.MLDv2MulticastListenerReportMessage{
		NumberOfMulticastAddressRecords: 1,
		MulticastAddressRecords: []layers.MLDv2MulticastAddressRecord{{
			RecordType: layers.MLDv2MulticastAddressRecordTypeAllowNewSources, N: 1,
			MulticastAddress: net.IP(g.AsSlice()), SourceAddresses: []net.IP{net.IP(s.AsSlice())},
		}},
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, icmp, rep); err != nil {
		t.Fatal(err)
	}
	var m Membership
	if err := m.ParseMLD(buf.Bytes(), mldSrc, mldDst); err != nil {
		t.Fatalf("%v: % x", err, buf.Bytes())
	}
	want := []GroupRecord{{Type: AllowNewSources, Group: g, Sources: []netip.Addr{s}}}
	if !recsEqual(m.Records, want) {
		t.Fatalf("got %+v", m.Records)
	}
}

func TestMembershipReuseNoAlloc(t *testing.T) {
	c := igmpCases(t)[0]
	var m Membership
	if err := m.ParseIGMP(c.b); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = m.ParseIGMP(c.b) }); n != 0 {
		t.Fatalf("%v allocations per parse", n)
	}
}

// FuzzMembership checks that no input panics and that whatever parses has
// multicast groups and sources that are neither multicast nor unspecified.
// Seeds: testdata/fuzz/FuzzMembership (valid IGMP and MLD messages).
func FuzzMembership(f *testing.F) {
	for _, c := range igmpCases(f) {
		f.Add(c.b, false)
	}
	for _, c := range mldCases(f) {
		f.Add(c.b, true)
	}
	var m Membership
	f.Fuzz(func(t *testing.T, b []byte, mld bool) {
		var err error
		if mld {
			err = m.ParseMLD(b, netip.Addr{}, netip.Addr{})
		} else {
			err = m.ParseIGMP(b)
		}
		if err != nil {
			return
		}
		for _, r := range m.Records {
			if !r.Group.IsMulticast() || r.Type < ModeIsInclude || r.Type > BlockOldSources {
				t.Fatalf("accepted record %+v", r)
			}
			for _, s := range r.Sources {
				if s.IsMulticast() || s.IsUnspecified() {
					t.Fatalf("accepted source %v", s)
				}
			}
		}
	})
}

// BenchmarkParseMembership parses an IGMPv3 report of 3 records and an
// MLDv2 report of 2 records (with the ICMPv6 checksum) into a reused
// Membership.
func BenchmarkParseMembership(b *testing.B) {
	ic := igmpCases(b)[0]
	mc := mldCases(b)[0]
	var m Membership
	b.Run("igmpv3", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := m.ParseIGMP(ic.b); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/msg")
	})
	b.Run("mldv2", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := m.ParseMLD(mc.b, mldSrc, mldDst); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/msg")
	})
}

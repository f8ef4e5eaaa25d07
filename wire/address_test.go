package wire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestAddressPlainGolden(t *testing.T) {
	cases := []struct {
		name   string
		addr   Address
		golden []byte
		str    string
	}{
		// 00 00: AFI 0, no address (RFC 9301 §5.2).
		{"none", Address{}, []byte{0x00, 0x00}, "no-address"},
		// 00 01 | c0 00 02 07: AFI 1, 192.0.2.7.
		{"ipv4", ipa("192.0.2.7"), []byte{0x00, 0x01, 0xc0, 0x00, 0x02, 0x07}, "192.0.2.7"},
		// 00 02 | 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01: AFI 2, 2001:db8::1.
		{"ipv6", ipa("2001:db8::1"), []byte{0x00, 0x02, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01}, "2001:db8::1"},
		// 00 06 | 02 00 00 00 00 01: AFI 6 (IEEE 802) MAC as some peers send it.
		{"mac6", Address{AFI: AFIMAC, MAC: [6]byte{2, 0, 0, 0, 0, 1}}, []byte{0x00, 0x06, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01}, "02:00:00:00:00:01"},
		// 40 05 | 00 11 22 33 44 55: AFI 16389 48-bit MAC (RFC 8060 §4.1).
		{"mac48", MACAddress([6]byte{0, 0x11, 0x22, 0x33, 0x44, 0x55}), []byte{0x40, 0x05, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55}, "00:11:22:33:44:55"},
		// 00 11 | 67 72 6f 75 70 00: AFI 17, "group" NUL (draft-ietf-lisp-name-encoding).
		{"name", NameAddress("group"), []byte{0x00, 0x11, 0x67, 0x72, 0x6f, 0x75, 0x70, 0x00}, "'group'"},
		// 00 11 | 00: AFI 17, the empty name.
		{"empty-name", NameAddress(""), []byte{0x00, 0x11, 0x00}, "''"},
	}
	for _, c := range cases {
		b, err := c.addr.Append(nil)
		if err != nil || !bytes.Equal(b, c.golden) {
			t.Fatalf("%s: encoding %x (%v), want %x", c.name, b, err, c.golden)
		}
		if c.addr.Len() != len(c.golden) {
			t.Fatalf("%s: Len %d", c.name, c.addr.Len())
		}
		var got Address
		if n, err := got.Parse(c.golden); err != nil || n != len(c.golden) || !reflect.DeepEqual(got, c.addr) {
			t.Fatalf("%s: parse n=%d err=%v got %#v", c.name, n, err, got)
		}
		if got.String() != c.str {
			t.Fatalf("%s: String %q, want %q", c.name, got.String(), c.str)
		}
		for i := range c.golden {
			if _, err := got.Parse(c.golden[:i]); !errors.Is(err, ErrTruncated) {
				t.Fatalf("%s: prefix %d: %v", c.name, i, err)
			}
		}
	}
	var a Address
	if _, err := a.Parse([]byte{0x12, 0x34, 0, 0}); !errors.Is(err, ErrBadAFI) {
		t.Fatalf("unknown AFI: %v", err)
	}
	bad := NameAddress("a\x00")
	if _, err := bad.Append(nil); !errors.Is(err, ErrBadValue) {
		t.Fatalf("name with NUL: %v", err)
	}
}

// Parsing into a reused Address allocates nothing once its slices have grown.
func TestAddressParseAllocs(t *testing.T) {
	rle := make([]RLENode, 8)
	for i := range rle {
		rle[i] = RLENode{Level: uint8(i / 4), Address: ipa("192.0.2.1")}
		if i%3 == 0 {
			rle[i].Address = iida(uint32(i), "2001:db8::1")
		}
	}
	rle[2].Name = "rtr-2"
	rle[5].Name = "etr-5"
	cases := map[string]Address{
		"iid-ipv4":   iida(7, "10.1.0.0"),
		"sg":         SGAddress(1000, pfx("10.0.0.1/32"), pfx("239.1.1.1/32")),
		"rle-8":      RLEAddress(rle...),
		"name":       NameAddress("group-239.1.1.1"),
		"nat":        NATAddress(4342, 4341, ipa("192.0.2.1"), ipa("192.0.2.2"), ipa("10.0.0.1"), ipa("192.0.2.3")),
		"seckey":     SecurityKeyAddress(SecurityKey{Algorithm: 1, Keys: [][]byte{make([]byte, 32)}}, ipa("192.0.2.1")),
		"json":       JSONAddress([]byte(`{"k":"v"}`), false, Address{}),
		"elp":        ELPAddress(ELPHop{Address: ipa("192.0.2.1")}, ELPHop{Strict: true, Address: iida(1, "192.0.2.2")}),
		"afi-list":   AFIListAddress(ipa("192.0.2.1"), iida(1, "192.0.2.2"), NameAddress("x")),
		"unknown-99": {AFI: AFILCAF, LCAF: LCAF{Type: 99, Raw: []byte("raw")}},
	}
	for name, a := range cases {
		b, err := a.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		var r Address
		if _, err := r.Parse(b); err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := r.Parse(b); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per parse into a reused Address", name, allocs)
		}
	}
	// Append into a buffer with room allocates nothing either.
	sg := SGAddress(1000, pfx("10.0.0.1/32"), pfx("239.1.1.1/32"))
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { _, _ = sg.Append(buf[:0]) }); n != 0 {
		t.Errorf("Append: %v allocations", n)
	}
}

// An Address reused across different kinds of address yields exactly what a
// fresh one would (compared by re-encoding, since reused slices are empty
// rather than nil).
func TestAddressReuseAcrossKinds(t *testing.T) {
	all := append(lcafCases(), nestedCases()...)
	var r Address
	for round := 0; round < 2; round++ {
		for i := range all {
			c := all[(i*7+round)%len(all)]
			if _, err := r.Parse(c.golden); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			b, err := r.Append(nil)
			if err != nil || !bytes.Equal(b, c.golden) {
				t.Fatalf("%s after reuse: %x (%v), want %x", c.name, b, err, c.golden)
			}
			if r.String() != c.addr.String() {
				t.Fatalf("%s after reuse: String %q, want %q", c.name, r.String(), c.addr.String())
			}
		}
	}
}

func BenchmarkAddressParse(b *testing.B) {
	rle := make([]RLENode, 8)
	for i := range rle {
		rle[i] = RLENode{Level: uint8(i), Address: ipa("192.0.2.1")}
	}
	for _, c := range []struct {
		name string
		a    Address
	}{
		{"IPv4", ipa("192.0.2.1")},
		{"IIDIPv4", iida(7, "10.1.0.0")},
		{"SG", SGAddress(1000, pfx("10.0.0.1/32"), pfx("239.1.1.1/32"))},
		{"RLE8", RLEAddress(rle...)},
	} {
		buf, err := c.a.Append(nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			var r Address
			b.ReportAllocs()
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if _, err := r.Parse(buf); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/addr")
		})
	}
}

func BenchmarkAddressAppend(b *testing.B) {
	rle := make([]RLENode, 8)
	for i := range rle {
		rle[i] = RLENode{Level: uint8(i), Address: ipa("192.0.2.1")}
	}
	for _, c := range []struct {
		name string
		a    Address
	}{
		{"IIDIPv4", iida(7, "10.1.0.0")},
		{"SG", SGAddress(1000, pfx("10.0.0.1/32"), pfx("239.1.1.1/32"))},
		{"RLE8", RLEAddress(rle...)},
	} {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 0, 256)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.a.Append(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/addr")
		})
	}
}

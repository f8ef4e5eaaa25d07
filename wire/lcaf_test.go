package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func ip(s string) netip.Addr            { return netip.MustParseAddr(s) }
func pfx(s string) netip.Prefix         { return netip.MustParsePrefix(s) }
func ipa(s string) Address              { return IPAddress(ip(s)) }
func iida(iid uint32, s string) Address { return IIDAddress(iid, ip(s)) }

type lcafCase struct {
	name   string
	addr   Address
	golden []byte
	str    string
}

func lcafCases() []lcafCase {
	iid := iida(0x123456, "10.1.0.0")
	iid.LCAF.Rsvd2 = 24
	sg := SGAddress(1000, pfx("10.0.0.1/32"), pfx("239.1.1.1/32"))
	sg.LCAF.Rsvd2 = McastJoin
	return []lcafCase{
		{"afi-list", AFIListAddress(ipa("192.0.2.1"), ipa("2001:db8::1")), goldenAFIList, "afi-list{192.0.2.1,2001:db8::1}"},
		{"instance-id", iid, goldenInstanceID, "[1193046]10.1.0.0"},
		{"as-number", ASAddress(64500, ipa("192.0.2.1")), goldenASNumber, "as64500:192.0.2.1"},
		{"geo", GeoAddress(Geo{North: true, LatDegrees: 37, LatMinutes: 24, LatSeconds: 5,
			LonDegrees: 122, LonMinutes: 3, LonSeconds: 2, Altitude: -10}, ipa("192.0.2.1")),
			goldenGeo, "geo(N37°24'5\",W122°3'2\",-10m):192.0.2.1"},
		{"nat-traversal", NATAddress(4342, 61000, ipa("198.51.100.7"), ipa("192.0.2.53"), ipa("10.0.0.7"), ipa("203.0.113.1")),
			goldenNATT, "nat{ms-port 4342,etr-port 61000,global 198.51.100.7,ms 192.0.2.53,private 10.0.0.7,rtr 203.0.113.1}"},
		{"multicast-sg", sg, goldenMcastSG, "[1000](10.0.0.1,239.1.1.1)/J"},
		{"multicast-star-g", SGAddress(5, netip.Prefix{}, pfx("239.1.1.0/24")), goldenMcastStarG, "[5](*,239.1.1.0/24)"},
		{"elp", ELPAddress(ELPHop{Address: ipa("192.0.2.1")}, ELPHop{Lookup: true, Probe: true, Address: ipa("192.0.2.2")},
			ELPHop{Strict: true, Address: ipa("192.0.2.3")}), goldenELP, "elp{192.0.2.1,192.0.2.2/LP,192.0.2.3/S}"},
		{"security-key", SecurityKeyAddress(SecurityKey{Algorithm: 1, Keys: [][]byte{{0xde, 0xad, 0xbe, 0xef}}}, ipa("192.0.2.1")),
			goldenSecKey, "seckey{alg 1,keys 1}:192.0.2.1"},
		{"src-dst", SrcDstAddress(pfx("10.0.0.0/8"), pfx("10.9.0.0/16")), goldenSrcDst, "(10.0.0.0/8->10.9.0.0/16)"},
		{"rle", RLEAddress(RLENode{Level: 0, Address: ipa("192.0.2.1")}, RLENode{Level: 128, Address: ipa("192.0.2.2")}),
			goldenRLE, "rle{0:192.0.2.1,128:192.0.2.2}"},
		{"rle-name", RLEAddress(RLENode{Level: 1, Address: ipa("192.0.2.1"), Name: "rtr-a"}, RLENode{Level: 2, Address: ipa("192.0.2.2")}),
			goldenRLEName, "rle{1:192.0.2.1'rtr-a',2:192.0.2.2}"},
		{"json", JSONAddress([]byte(`{"a":1}`), false, Address{}), goldenJSON, `json"{\"a\":1}"`},
		{"key-value", KVAddress(NameAddress("color"), ipa("192.0.2.1")), goldenKeyValue, "kv{'color'=192.0.2.1}"},
		{"unknown-200", Address{AFI: AFILCAF, LCAF: LCAF{Type: 200, Rsvd1: 0x12, Flags: 0x34, Rsvd2: 0x56, Raw: []byte{0xaa, 0xbb, 0xcc}}},
			goldenUnknown200, "lcaf-200(3 bytes)"},
	}
}

func TestLCAFGolden(t *testing.T) {
	for _, c := range lcafCases() {
		t.Run(c.name, func(t *testing.T) {
			b, err := c.addr.Append(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, c.golden) {
				t.Fatalf("encoding\n got %x\nwant %x", b, c.golden)
			}
			if c.addr.Len() != len(c.golden) {
				t.Fatalf("Len %d, want %d", c.addr.Len(), len(c.golden))
			}
			var got Address
			n, err := got.Parse(c.golden)
			if err != nil || n != len(c.golden) {
				t.Fatalf("parse: n=%d err=%v", n, err)
			}
			if !reflect.DeepEqual(got, c.addr) {
				t.Fatalf("parse\n got %#v\nwant %#v", got, c.addr)
			}
			if s := got.String(); s != c.str {
				t.Fatalf("String() = %q, want %q", s, c.str)
			}
			// Trailing bytes after the address are not part of it.
			n, err = got.Parse(append(append([]byte(nil), c.golden...), 0xee, 0xff))
			if err != nil || n != len(c.golden) {
				t.Fatalf("parse with trailing data: n=%d err=%v", n, err)
			}
		})
	}
}

// Every proper prefix of a valid encoding fails with ErrTruncated: the LCAF
// length then points beyond the buffer.
func TestLCAFTruncatedPrefixes(t *testing.T) {
	for _, c := range append(lcafCases(), nestedCases()...) {
		var a Address
		for i := range c.golden {
			if _, err := a.Parse(c.golden[:i]); !errors.Is(err, ErrTruncated) {
				t.Fatalf("%s: prefix of %d bytes: err %v, want ErrTruncated", c.name, i, err)
			}
		}
	}
}

// Shrinking the LCAF length (and the buffer with it) cuts the body at every
// point: the result is either an error or a shorter valid encoding that
// re-encodes to exactly those bytes; never a panic.
func TestLCAFInnerTruncation(t *testing.T) {
	for _, c := range append(lcafCases(), nestedCases()...) {
		body := c.golden[2+lcafHeaderLen:]
		valid := 0
		for k := 0; k < len(body); k++ {
			b := append([]byte(nil), c.golden[:2+lcafHeaderLen]...)
			binary.BigEndian.PutUint16(b[6:], uint16(k))
			b = append(b, body[:k]...)
			var a Address
			n, err := a.Parse(b)
			if err != nil {
				continue
			}
			valid++
			re, err := a.Append(nil)
			if err != nil || n != len(b) || !bytes.Equal(re, b) {
				t.Fatalf("%s: body cut to %d parsed (n=%d) but re-encodes to %x (%v), want %x", c.name, k, n, re, err, b)
			}
		}
		// Only list-like types have shorter valid forms.
		switch c.addr.LCAF.Type {
		case LCAFAFIList, LCAFInstanceID, LCAFELP, LCAFRLE, LCAFSecKey, LCAFJSON, LCAFNATT, 200:
		default:
			if valid != 0 {
				t.Fatalf("%s: %d cut bodies parsed as valid", c.name, valid)
			}
		}
	}
}

func TestLCAFLengthBeyondBuffer(t *testing.T) {
	for _, c := range lcafCases() {
		b := append([]byte(nil), c.golden...)
		binary.BigEndian.PutUint16(b[6:], 0xffff)
		var a Address
		if _, err := a.Parse(b); !errors.Is(err, ErrTruncated) {
			t.Fatalf("%s: length 65535: err %v, want ErrTruncated", c.name, err)
		}
		binary.BigEndian.PutUint16(b[6:], uint16(len(c.golden)-8+1))
		if _, err := a.Parse(b); !errors.Is(err, ErrTruncated) {
			t.Fatalf("%s: length one beyond: err %v, want ErrTruncated", c.name, err)
		}
	}
}

// A fixed-layout LCAF whose length covers one byte more than its fields is
// refused; an unknown type keeps the byte.
func TestLCAFTrailingBytes(t *testing.T) {
	for _, c := range lcafCases() {
		b := append(append([]byte(nil), c.golden...), 0)
		binary.BigEndian.PutUint16(b[6:], binary.BigEndian.Uint16(b[6:])+1)
		var a Address
		_, err := a.Parse(b)
		switch c.addr.LCAF.Type {
		case 200:
			if err != nil || !bytes.Equal(a.LCAF.Raw, []byte{0xaa, 0xbb, 0xcc, 0}) {
				t.Fatalf("%s: unknown type with extra byte: %v %x", c.name, err, a.LCAF.Raw)
			}
		case LCAFAFIList, LCAFELP, LCAFRLE, LCAFNATT:
			// A one-byte address or entry is truncated.
			if err == nil {
				t.Fatalf("%s: trailing byte accepted", c.name)
			}
		default:
			if !errors.Is(err, ErrBadLength) {
				t.Fatalf("%s: trailing byte: err %v, want ErrBadLength", c.name, err)
			}
		}
	}
	// Two extra zero bytes read as an AFI-0 address: refused where the count
	// of addresses is fixed.
	for _, c := range lcafCases() {
		switch c.addr.LCAF.Type {
		case LCAFASNumber, LCAFGeo, LCAFMcastInfo, LCAFSrcDst, LCAFKeyValue, LCAFInstanceID, LCAFSecKey, LCAFJSON:
		default:
			continue
		}
		b := append(append([]byte(nil), c.golden...), 0, 0)
		binary.BigEndian.PutUint16(b[6:], binary.BigEndian.Uint16(b[6:])+2)
		var a Address
		if _, err := a.Parse(b); !errors.Is(err, ErrBadLength) {
			t.Fatalf("%s: extra AFI-0 address: err %v, want ErrBadLength", c.name, err)
		}
	}
}

// Shorter-than-fixed bodies and inconsistent inner lengths.
func TestLCAFBadInnerLengths(t *testing.T) {
	bad := map[string][]byte{
		// Multicast-info with Length 6: shorter than its 8 fixed bytes.
		"mcast-short": {0x40, 0x03, 0, 0, 9, 0, 0, 6, 0, 0, 0, 1, 0, 0},
		// JSON length 200 in a 4-byte body.
		"json-len": {0x40, 0x03, 0, 0, 14, 0, 0, 4, 0, 200, 'a', 'b'},
		// Security key announcing 3 keys, one present.
		"seckey-count": {0x40, 0x03, 0, 0, 11, 0, 0, 7, 3, 0, 1, 0, 0, 1, 0xaa},
		// Security key whose key length runs past the body.
		"seckey-keylen": {0x40, 0x03, 0, 0, 11, 0, 0, 7, 1, 0, 1, 0, 0, 9, 0xaa},
		// Key/value with one address.
		"kv-one": {0x40, 0x03, 0, 0, 15, 0, 0, 2, 0, 0},
		// NAT with two addresses (needs three).
		"nat-two": {0x40, 0x03, 0, 0, 7, 0, 0, 8, 0x10, 0xf6, 0x10, 0xf5, 0, 0, 0, 0},
		// RLE entry with an appended name missing its NUL.
		"rle-name-nul": {0x40, 0x03, 0, 0, 13, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 17, 'x'},
		// RLE entry with an empty appended name (AFI 17, NUL), then an entry
		// whose reserved bytes read as AFI 17: it could not be re-emitted.
		"rle-empty-name": {0x40, 0x03, 0, 0, 13, 0, 0, 23,
			0, 0, 0, 1, 0, 1, 10, 0, 0, 1, 0, 17, 0,
			0, 17, 0, 2, 0, 1, 10, 0, 0, 2},
		// RLE entry header cut.
		"rle-entry": {0x40, 0x03, 0, 0, 13, 0, 0, 3, 0, 0, 0},
		// ELP hop flags cut.
		"elp-hop": {0x40, 0x03, 0, 0, 10, 0, 0, 1, 0},
		// Nested address with an unknown AFI.
		"afi-list-afi": {0x40, 0x03, 0, 0, 1, 0, 0, 2, 0x12, 0x34},
	}
	for name, b := range bad {
		var a Address
		if _, err := a.Parse(b); err == nil {
			t.Fatalf("%s: parsed %v", name, a)
		}
	}
}

// nestedCases are round trips of LCAFs inside LCAFs.
func nestedCases() []lcafCase {
	sd := Address{AFI: AFILCAF, LCAF: LCAF{Type: LCAFSrcDst, SrcMaskLen: 24, DstMaskLen: 16,
		Addrs: []Address{iida(9, "10.1.1.0"), iida(9, "10.2.0.0")}}}
	cases := []lcafCase{
		{name: "iid-in-srcdst", addr: sd},
		{name: "srcdst-in-iid", addr: Address{AFI: AFILCAF, LCAF: LCAF{Type: LCAFInstanceID, IID: 4,
			Addrs: []Address{SrcDstAddress(pfx("2001:db8::/32"), pfx("2001:db8:1::/48"))}}}},
		{name: "rle-iid", addr: RLEAddress(RLENode{Level: 0, Address: iida(1, "192.0.2.1")},
			RLENode{Level: 1, Address: iida(2, "2001:db8::2"), Name: "etr-b"}, RLENode{Level: 128, Address: ipa("192.0.2.3")})},
		{name: "afi-list-lcaf", addr: AFIListAddress(ipa("192.0.2.1"), iida(3, "10.0.0.1"), NameAddress("site-a"),
			MACAddress([6]byte{2, 0, 0, 0, 0, 1}), AFIListAddress())},
		{name: "elp-iid", addr: ELPAddress(ELPHop{Lookup: true, Address: iida(7, "192.0.2.1")},
			ELPHop{Strict: true, Rsvd: 0x1abc, Address: ipa("2001:db8::9")})},
		{name: "kv-lcaf", addr: KVAddress(NameAddress("k"), RLEAddress(RLENode{Level: 3, Address: ipa("192.0.2.7")}))},
		{name: "nat-v6", addr: NATAddress(4342, 4341, ipa("2001:db8::1"), Address{}, iida(1, "10.0.0.1"))},
		{name: "sg-v6", addr: SGAddress(0xffffffff, pfx("2001:db8::1/128"), pfx("ff0e::1234/128"))},
		{name: "seckey-many", addr: Address{AFI: AFILCAF, LCAF: LCAF{Type: LCAFSecKey, Rsvd1: 1, Flags: 2, Rsvd2: 3,
			Key: SecurityKey{Algorithm: 2, Revoked: true, Rsvd3: 5, Rsvd4: 0x55, Keys: [][]byte{{1}, {2, 3}, {4, 5, 6}}}}}},
		{name: "json-binary-addr", addr: JSONAddress([]byte{0xff, 0}, true, iida(3, "192.0.2.1"))},
		{name: "geo-no-alt", addr: GeoAddress(Geo{LatDegrees: 0x7fff, East: true, LonDegrees: 180, Altitude: GeoNoAltitude}, NameAddress("x"))},
		{name: "as-in-iid-in-afi-list", addr: AFIListAddress(Address{AFI: AFILCAF, LCAF: LCAF{Type: LCAFInstanceID, IID: 1,
			Addrs: []Address{ASAddress(1, ipa("192.0.2.1"))}}})},
		{name: "unknown-in-rle", addr: RLEAddress(RLENode{Level: 9, Rsvd: [3]byte{1, 2, 3},
			Address: Address{AFI: AFILCAF, LCAF: LCAF{Type: 250, Raw: []byte("opaque")}}})},
		{name: "iid-range", addr: Address{AFI: AFILCAF, LCAF: LCAF{Type: LCAFInstanceID, IID: 0x100000, Rsvd2: 12}}},
	}
	for i := range cases {
		b, err := cases[i].addr.Append(nil)
		if err != nil {
			panic(cases[i].name + ": " + err.Error())
		}
		cases[i].golden = b
	}
	return cases
}

func TestLCAFNestedRoundTrip(t *testing.T) {
	var reused Address
	for _, c := range nestedCases() {
		if c.addr.Len() != len(c.golden) {
			t.Fatalf("%s: Len %d, encoded %d", c.name, c.addr.Len(), len(c.golden))
		}
		var got Address
		n, err := got.Parse(c.golden)
		if err != nil || n != len(c.golden) {
			t.Fatalf("%s: parse n=%d err=%v", c.name, n, err)
		}
		if !reflect.DeepEqual(got, c.addr) {
			t.Fatalf("%s: round trip\n got %#v\nwant %#v", c.name, got, c.addr)
		}
		// The same bytes into a struct that held other LCAFs before.
		if _, err := reused.Parse(c.golden); err != nil {
			t.Fatalf("%s: reused parse: %v", c.name, err)
		}
		if b, err := reused.Append(nil); err != nil || !bytes.Equal(b, c.golden) {
			t.Fatalf("%s: reused re-encoding %x (%v), want %x", c.name, b, err, c.golden)
		}
		if got.String() == "" || got.String() != c.addr.String() {
			t.Fatalf("%s: String %q vs %q", c.name, got.String(), c.addr.String())
		}
	}
}

func TestLCAFNestedStrings(t *testing.T) {
	want := map[string]string{
		"iid-in-srcdst": "([9]10.1.1.0/24->[9]10.2.0.0/16)",
		"rle-iid":       "rle{0:[1]192.0.2.1,1:[2]2001:db8::2'etr-b',128:192.0.2.3}",
		"afi-list-lcaf": "afi-list{192.0.2.1,[3]10.0.0.1,'site-a',02:00:00:00:00:01,afi-list{}}",
		"sg-v6":         "[4294967295](2001:db8::1,ff0e::1234)",
		"nat-v6":        "nat{ms-port 4342,etr-port 4341,global 2001:db8::1,ms no-address,private [1]10.0.0.1}",
		"seckey-many":   "seckey{alg 2,keys 3,revoked}",
	}
	for _, c := range nestedCases() {
		if w, ok := want[c.name]; ok && c.addr.String() != w {
			t.Errorf("%s: String() = %q, want %q", c.name, c.addr.String(), w)
		}
	}
}

// deepIID nests depth instance-ID LCAFs around an IPv4 address.
func deepIID(depth int) []byte {
	b := []byte{0, 1, 192, 0, 2, 1}
	for i := 0; i < depth; i++ {
		h := []byte{0x40, 0x03, 0, 0, byte(LCAFInstanceID), 0, 0, 0, 0, 0, 0, byte(i)}
		binary.BigEndian.PutUint16(h[6:], uint16(4+len(b)))
		b = append(h, b...)
	}
	return b
}

func TestLCAFDepthBomb(t *testing.T) {
	var a Address
	// maxAddressDepth+1 LCAF levels (depth 0..maxAddressDepth) are accepted.
	ok := deepIID(maxAddressDepth + 1)
	if _, err := a.Parse(ok); err != nil {
		t.Fatalf("nesting at the limit: %v", err)
	}
	if b, err := a.Append(nil); err != nil || !bytes.Equal(b, ok) {
		t.Fatalf("nesting at the limit re-encodes: %v", err)
	}
	for _, d := range []int{maxAddressDepth + 2, 100, 5000} {
		if _, err := a.Parse(deepIID(d)); !errors.Is(err, ErrBadValue) {
			t.Fatalf("depth %d: err %v, want ErrBadValue", d, err)
		}
	}
	// Deep nesting through RLE entries and AFI lists too.
	inner := []byte{0, 0}
	for i := 0; i < 50; i++ {
		h := []byte{0x40, 0x03, 0, 0, byte(LCAFRLE), 0, 0, 0, 0, 0, 0, 1}
		binary.BigEndian.PutUint16(h[6:], uint16(4+len(inner)))
		inner = append(h, inner...)
	}
	if _, err := a.Parse(inner); !errors.Is(err, ErrBadValue) {
		t.Fatalf("RLE depth bomb: %v", err)
	}
	// Building one by hand is refused at Append.
	deep := ipa("192.0.2.1")
	for i := 0; i < maxAddressDepth+2; i++ {
		deep = AFIListAddress(deep)
	}
	if _, err := deep.Append(nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append of a too-deep address: %v", err)
	}
}

func TestRLELargeLists(t *testing.T) {
	mk := func(n int, a Address) Address {
		nodes := make([]RLENode, n)
		for i := range nodes {
			nodes[i] = RLENode{Level: uint8(i), Address: a}
		}
		return RLEAddress(nodes...)
	}
	v4, v6 := ipa("192.0.2.1"), ipa("2001:db8::1")
	// IPv4 entries take 10 bytes: 5000 fit (50000 bytes), 6553 fit exactly
	// below 65535, 6554 do not.
	for _, tc := range []struct {
		n    int
		a    Address
		fits bool
	}{{5000, v4, true}, {6553, v4, true}, {6554, v4, false}, {5000, v6, false}, {2978, v6, true}, {2979, v6, false}} {
		r := mk(tc.n, tc.a)
		b, err := r.Append(nil)
		if !tc.fits {
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("%d entries of %v: err %v, want ErrTooLarge", tc.n, tc.a, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d entries of %v: %v", tc.n, tc.a, err)
		}
		var got Address
		if n, err := got.Parse(b); err != nil || n != len(b) {
			t.Fatalf("%d entries: parse n=%d err=%v", tc.n, n, err)
		}
		nodes, ok := got.RLENodes()
		if !ok || len(nodes) != tc.n || nodes[tc.n-1].Level != uint8(tc.n-1) {
			t.Fatalf("%d entries parsed as %d", tc.n, len(nodes))
		}
	}
}

func TestLCAFAppendRefusesBadStructs(t *testing.T) {
	long := make([]byte, 0x10000)
	cases := map[string]Address{
		"mcast-one-addr": {AFI: AFILCAF, LCAF: LCAF{Type: LCAFMcastInfo, Addrs: []Address{ipa("10.0.0.1")}}},
		"kv-three":       {AFI: AFILCAF, LCAF: LCAF{Type: LCAFKeyValue, Addrs: []Address{{}, {}, {}}}},
		"as-none":        {AFI: AFILCAF, LCAF: LCAF{Type: LCAFASNumber}},
		"nat-two":        {AFI: AFILCAF, LCAF: LCAF{Type: LCAFNATT, Addrs: []Address{{}, {}}}},
		"iid-two":        {AFI: AFILCAF, LCAF: LCAF{Type: LCAFInstanceID, Addrs: []Address{{}, {}}}},
		"unknown-addrs":  {AFI: AFILCAF, LCAF: LCAF{Type: 99, Addrs: []Address{{}}}},
		"geo-degrees":    GeoAddress(Geo{LatDegrees: 0x8000}, Address{}),
		"elp-rsvd":       ELPAddress(ELPHop{Rsvd: 0x2000}),
		"seckey-rsvd4":   SecurityKeyAddress(SecurityKey{Rsvd4: 0x80}, Address{}),
		"seckey-256":     SecurityKeyAddress(SecurityKey{Keys: make([][]byte, 256)}, Address{}),
		"seckey-long":    SecurityKeyAddress(SecurityKey{Keys: [][]byte{long}}, Address{}),
		"json-long":      JSONAddress(long, false, Address{}),
		"rle-name-nul":   RLEAddress(RLENode{Address: ipa("10.0.0.1"), Name: "a\x00b"}),
		"rle-rsvd-afi17": RLEAddress(RLENode{Address: ipa("10.0.0.1")}, RLENode{Rsvd: [3]byte{0, 17, 0}, Address: ipa("10.0.0.2")}),
		"nested-bad-ip":  AFIListAddress(Address{AFI: AFIIPv4, IP: ip("2001:db8::1")}),
		"unknown-afi":    AFIListAddress(Address{AFI: 999}),
	}
	for name, a := range cases {
		if _, err := a.Append(nil); err == nil {
			t.Errorf("%s: Append accepted %v", name, a)
		}
	}
}

func TestSGAddress(t *testing.T) {
	cases := []struct {
		iid        uint32
		src, group netip.Prefix
		wantSrc    netip.Prefix
		str        string
	}{
		{7, pfx("10.0.0.1/32"), pfx("239.1.1.1/32"), pfx("10.0.0.1/32"), "[7](10.0.0.1,239.1.1.1)"},
		{7, netip.Prefix{}, pfx("239.1.1.1/32"), pfx("0.0.0.0/0"), "[7](*,239.1.1.1)"},
		{7, pfx("0.0.0.0/0"), pfx("239.0.0.0/8"), pfx("0.0.0.0/0"), "[7](*,239.0.0.0/8)"},
		{0, pfx("10.1.2.3/16"), pfx("232.1.1.1/32"), pfx("10.1.0.0/16"), "[0](10.1.0.0/16,232.1.1.1)"},
		{1, netip.Prefix{}, pfx("ff0e::1/128"), pfx("::/0"), "[1](*,ff0e::1)"},
		{1, pfx("2001:db8::5/128"), pfx("ff3e::8000:1/128"), pfx("2001:db8::5/128"), "[1](2001:db8::5,ff3e::8000:1)"},
	}
	for _, c := range cases {
		a := SGAddress(c.iid, c.src, c.group)
		if a.String() != c.str {
			t.Errorf("String %q, want %q", a.String(), c.str)
		}
		b, err := a.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		var got Address
		if _, err := got.Parse(b); err != nil {
			t.Fatal(err)
		}
		iid, s, g, ok := got.SG()
		if !ok || iid != c.iid || s != c.wantSrc || g != c.group.Masked() {
			t.Errorf("SG() = %d %v %v %v, want %d %v %v", iid, s, g, ok, c.iid, c.wantSrc, c.group)
		}
	}
	if a := SGAddress(1, pfx("2001:db8::1/128"), pfx("239.1.1.1/32")); !a.IsZero() {
		t.Errorf("mixed families gave %v", a)
	}
	if a := SGAddress(1, netip.Prefix{}, netip.Prefix{}); !a.IsZero() {
		t.Errorf("invalid group gave %v", a)
	}
	// A (*,G) whose source travels as AFI 0, as some peers send it.
	star := Address{AFI: AFILCAF, LCAF: LCAF{Type: LCAFMcastInfo, IID: 3, DstMaskLen: 32, Addrs: []Address{{}, ipa("239.9.9.9")}}}
	if _, s, g, ok := star.SG(); !ok || s != pfx("0.0.0.0/0") || g != pfx("239.9.9.9/32") {
		t.Errorf("AFI-0 source: %v %v %v", s, g, ok)
	}
	// Not (S,G): wrong type, mask too long, families differ.
	for _, a := range []Address{
		ipa("10.0.0.1"),
		iida(1, "10.0.0.1"),
		{AFI: AFILCAF, LCAF: LCAF{Type: LCAFMcastInfo, SrcMaskLen: 33, DstMaskLen: 32, Addrs: []Address{ipa("10.0.0.1"), ipa("239.1.1.1")}}},
		{AFI: AFILCAF, LCAF: LCAF{Type: LCAFMcastInfo, SrcMaskLen: 32, DstMaskLen: 40, Addrs: []Address{ipa("10.0.0.1"), ipa("239.1.1.1")}}},
		{AFI: AFILCAF, LCAF: LCAF{Type: LCAFMcastInfo, SrcMaskLen: 128, DstMaskLen: 32, Addrs: []Address{ipa("2001:db8::1"), ipa("239.1.1.1")}}},
		{AFI: AFILCAF, LCAF: LCAF{Type: LCAFMcastInfo, Addrs: []Address{ipa("10.0.0.1")}}},
	} {
		if _, _, _, ok := a.SG(); ok {
			t.Errorf("SG() ok for %v", a)
		}
	}
}

func TestSrcDstAndAccessors(t *testing.T) {
	a := SrcDstAddress(pfx("10.1.2.3/8"), pfx("2001:db8::/32"))
	if iid, s, d, ok := a.SrcDst(); !ok || iid != 0 || s != pfx("10.0.0.0/8") || d != pfx("2001:db8::/32") {
		t.Fatalf("SrcDst() = %d %v %v %v", iid, s, d, ok)
	}
	for _, c := range nestedCases() {
		iid, s, d, ok := c.addr.SrcDst()
		switch c.name {
		case "iid-in-srcdst":
			if !ok || iid != 9 || s != pfx("10.1.1.0/24") || d != pfx("10.2.0.0/16") {
				t.Fatalf("%s: %d %v %v %v", c.name, iid, s, d, ok)
			}
		case "srcdst-in-iid":
			if !ok || iid != 4 || s != pfx("2001:db8::/32") || d != pfx("2001:db8:1::/48") {
				t.Fatalf("%s: %d %v %v %v", c.name, iid, s, d, ok)
			}
		default:
			if ok {
				t.Fatalf("%s: SrcDst ok", c.name)
			}
		}
	}
	if a := SrcDstAddress(netip.Prefix{}, pfx("10.0.0.0/8")); !a.IsZero() {
		t.Fatalf("invalid source gave %v", a)
	}
	nodes := []RLENode{{Level: 1, Address: ipa("192.0.2.1")}}
	r := RLEAddress(nodes...)
	nodes[0].Level = 9 // RLEAddress copied the slice
	if got, ok := r.RLENodes(); !ok || len(got) != 1 || got[0].Level != 1 {
		t.Fatalf("RLENodes() = %v %v", got, ok)
	}
	wrapped := Address{AFI: AFILCAF, LCAF: LCAF{Type: LCAFInstanceID, IID: 2, Addrs: []Address{r}}}
	if got, ok := wrapped.RLENodes(); !ok || len(got) != 1 {
		t.Fatalf("RLENodes() through IID = %v %v", got, ok)
	}
	if _, ok := a.RLENodes(); ok {
		t.Fatal("RLENodes ok on a src/dst")
	}
}

// The String forms never panic on partly filled structs.
func TestLCAFStringPartial(t *testing.T) {
	for typ := 0; typ < 256; typ++ {
		l := LCAF{Type: LCAFType(typ)}
		if s := l.String(); s == "" {
			t.Fatalf("type %d: empty String", typ)
		}
		l.Addrs = []Address{ipa("192.0.2.1")}
		_ = l.String()
	}
	if s := (Address{AFI: 4242}).String(); !strings.Contains(s, "4242") {
		t.Fatalf("unknown AFI String %q", s)
	}
}

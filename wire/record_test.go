package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

func TestRecordGolden(t *testing.T) {
	// Map-Reply record (RFC 9301 §5.4) for [7]10.1.0.0/16, TTL 1440 minutes,
	// authoritative, map-version 5, one IPv4 locator 192.0.2.1 p1 w100 R.
	//   0000  00 00 05 a0 01 10 10 00  00 05 40 03 00 00 02 00
	//   0010  00 0a 00 00 00 07 00 01  0a 01 00 00 01 64 ff 00
	//   0020  00 01 00 01 c0 00 02 01
	golden := []byte{
		0x00, 0x00, 0x05, 0xa0, 0x01, 0x10, 0x10, 0x00, 0x00, 0x05, 0x40, 0x03, 0x00, 0x00, 0x02, 0x00,
		0x00, 0x0a, 0x00, 0x00, 0x00, 0x07, 0x00, 0x01, 0x0a, 0x01, 0x00, 0x00, 0x01, 0x64, 0xff, 0x00,
		0x00, 0x01, 0x00, 0x01, 0xc0, 0x00, 0x02, 0x01,
	}
	r := Record{
		TTL: 1440, MaskLen: 16, Authoritative: true, MapVersion: 5,
		EID: IIDAddress(7, netip.MustParseAddr("10.1.0.0")),
		Locators: []Locator{{Priority: 1, Weight: 100, MPriority: 255, Reachable: true,
			Address: IPAddress(netip.MustParseAddr("192.0.2.1"))}},
	}
	b, err := r.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, golden) {
		t.Fatalf("encoding\n got %x\nwant %x", b, golden)
	}
	if r.Len() != len(golden) {
		t.Fatalf("Len %d, want %d", r.Len(), len(golden))
	}
	var got Record
	n, err := got.Parse(golden)
	if err != nil || n != len(golden) {
		t.Fatalf("parse: n=%d err=%v", n, err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip\n got %+v\nwant %+v", got, r)
	}
	iid, p, ok := got.Prefix()
	if !ok || iid != 7 || p != netip.MustParsePrefix("10.1.0.0/16") {
		t.Fatalf("Prefix() = %d %v %v", iid, p, ok)
	}
	for i := range golden {
		if _, err := got.Parse(golden[:i]); !errors.Is(err, ErrTruncated) {
			t.Fatalf("prefix of %d bytes: err %v, want ErrTruncated", i, err)
		}
	}
	// A record announcing 255 locators with one present fails cleanly.
	bad := append([]byte(nil), golden...)
	bad[4] = 255
	if _, err := got.Parse(bad); !errors.Is(err, ErrTruncated) {
		t.Fatalf("count 255: %v", err)
	}
	// Mask length beyond the address is refused.
	bad = append([]byte(nil), golden...)
	bad[5] = 33
	if _, err := got.Parse(bad); !errors.Is(err, ErrBadValue) {
		t.Fatalf("masklen 33: %v", err)
	}
}

func TestAddressPlainRoundTrip(t *testing.T) {
	cases := []Address{
		{},
		IPAddress(netip.MustParseAddr("192.0.2.7")),
		IPAddress(netip.MustParseAddr("2001:db8::1")),
		MACAddress([6]byte{0, 0x11, 0x22, 0x33, 0x44, 0x55}),
		{AFI: AFIMAC, MAC: [6]byte{2, 0, 0, 0, 0, 1}},
		NameAddress("group-224.1.1.1"),
		IIDAddress(0xffffff, netip.MustParseAddr("2001:db8::")),
		{AFI: AFILCAF, LCAF: LCAF{Type: 200, Rsvd1: 1, Flags: 2, Rsvd2: 3, Raw: []byte{1, 2, 3}}},
	}
	for _, a := range cases {
		b, err := a.Append(nil)
		if err != nil {
			t.Fatalf("%v: %v", a, err)
		}
		if len(b) != a.Len() {
			t.Fatalf("%v: Len %d, encoded %d", a, a.Len(), len(b))
		}
		var got Address
		n, err := got.Parse(b)
		if err != nil || n != len(b) {
			t.Fatalf("%v: parse n=%d err=%v", a, n, err)
		}
		b2, _ := got.Append(nil)
		if !bytes.Equal(b, b2) {
			t.Fatalf("%v: re-encoding differs: %x vs %x", a, b, b2)
		}
		for i := range b {
			if _, err := got.Parse(b[:i]); err == nil {
				t.Fatalf("%v: prefix %d parsed", a, i)
			}
		}
	}
}

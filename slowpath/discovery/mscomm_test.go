package discovery

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/rloc-router/rloc/slowpath/bgp"
)

// TestMSCommBytes pins the community's octets (docs/discovery.md).
func TestMSCommBytes(t *testing.T) {
	e, err := EncodeMSComm(netip.MustParseAddrPort("198.51.100.7:4342"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (bgp.ExtCommunity{0x01, 0x4c, 198, 51, 100, 7, 0, 0}); e != want {
		t.Fatalf("% x, want % x", e, want)
	}
	e, err = EncodeMSComm(netip.MustParseAddrPort("10.1.2.3:14342"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (bgp.ExtCommunity{0x01, 0x4c, 10, 1, 2, 3, 0x38, 0x06}); e != want {
		t.Fatalf("% x, want % x", e, want)
	}
	got, err := ParseMSComm(e)
	if err != nil || got != netip.MustParseAddrPort("10.1.2.3:14342") {
		t.Fatalf("parse: %v %v", got, err)
	}
	got, err = ParseMSComm(bgp.ExtCommunity{0x01, 0x4c, 198, 51, 100, 7, 0, 0})
	if err != nil || got != netip.MustParseAddrPort("198.51.100.7:4342") {
		t.Fatalf("parse port 0: %v %v", got, err)
	}
}

// TestMSCommMalformed: other communities are told apart from malformed
// Mapping System ones, and bad contacts are refused both ways.
func TestMSCommMalformed(t *testing.T) {
	for _, e := range []bgp.ExtCommunity{
		{0x00, 0x02, 0, 1, 0, 0, 0, 1},  // a route target
		{0x01, 0x02, 10, 0, 0, 1, 0, 1}, // IPv4 route target
		{0x41, 0x4c, 10, 0, 0, 1, 0, 0}, // non-transitive
	} {
		if _, err := ParseMSComm(e); !errors.Is(err, errNotMSComm) {
			t.Errorf("% x: %v, want errNotMSComm", e, err)
		}
	}
	for _, e := range []bgp.ExtCommunity{
		{0x01, 0x4c, 0, 0, 0, 0, 0, 0},
		{0x01, 0x4c, 224, 0, 0, 1, 0, 0},
		{0x01, 0x4c, 255, 255, 255, 255, 0, 0},
		{0x01, 0x4c, 127, 0, 0, 1, 0, 0},
	} {
		if _, err := ParseMSComm(e); err == nil || errors.Is(err, errNotMSComm) {
			t.Errorf("% x: %v, want a malformed contact", e, err)
		}
	}
	for _, c := range []string{"[2001:db8::1]:4342", "0.0.0.0:4342", "239.1.1.1:1"} {
		if _, err := EncodeMSComm(netip.MustParseAddrPort(c)); err == nil {
			t.Errorf("encode %s: no error", c)
		}
	}
}

// FuzzParseMSComm: the decoder never panics, and what it accepts encodes
// back to the same octets (a port of 4342 aside, sent as 0).
func FuzzParseMSComm(f *testing.F) {
	f.Add([]byte{0x01, 0x4c, 10, 1, 2, 3, 0, 0})
	f.Add([]byte{0x01, 0x4c, 0, 0, 0, 0, 0x10, 0xf6})
	f.Add([]byte{0x00, 0x02, 0, 1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 8 {
			return
		}
		e := bgp.ExtCommunity(b[:8])
		c, err := ParseMSComm(e)
		if err != nil {
			return
		}
		back, err := EncodeMSComm(c)
		if err != nil {
			t.Fatalf("%v accepted but not encodable: %v", c, err)
		}
		if back != e && !(c.Port() == defaultControlPort && back[6] == 0 && back[7] == 0) {
			t.Fatalf("% x -> %v -> % x", e, c, back)
		}
	})
}

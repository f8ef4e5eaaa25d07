package msx

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

var (
	testSecret = []byte("0123456789abcdef0123456789abcdef")
	testPeer   = netip.MustParseAddrPort("192.0.2.1:4342")
)

func TestCookieRoundTrip(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for _, last := range []key{
		prefixKey(slowpath.EIDPrefix{IID: 7, Prefix: netip.MustParsePrefix("10.1.2.0/24")}),
		prefixKey(slowpath.EIDPrefix{IID: 0, Prefix: netip.MustParsePrefix("2001:db8::/48")}),
		nameKey(slowpath.EIDName{IID: 5, Name: "printer.example"}),
		nameKey(slowpath.EIDName{Name: strings.Repeat("n", slowpath.MaxEIDNameLen)}),
	} {
		c := cookie{scope: 42, issued: now.UnixNano(), serial: 9, last: last}
		b := appendCookie(nil, &c, testSecret, testPeer, "d2")
		got, err := parseCookie(b, testSecret, testPeer, "d2")
		if err != nil || got != c {
			t.Fatalf("%+v: got %+v %v", c, got, err)
		}
		if err := got.fresh(now.Add(10*time.Second), 30*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := got.fresh(now.Add(31*time.Second), 30*time.Second); err != errCookieExpired {
			t.Fatalf("old cookie: %v", err)
		}
		if err := got.fresh(now.Add(-time.Second), 30*time.Second); err != errCookieExpired {
			t.Fatalf("cookie from the future: %v", err)
		}
		// Bound to the requester, the agreement and the secret; every
		// byte matters; every truncation fails.
		for _, bad := range []struct {
			peer   netip.AddrPort
			name   string
			secret []byte
		}{{netip.MustParseAddrPort("192.0.2.1:4343"), "d2", testSecret}, {testPeer, "d3", testSecret}, {testPeer, "d2", []byte("x")}} {
			if _, err := parseCookie(b, bad.secret, bad.peer, bad.name); err != errCookieBad {
				t.Fatalf("foreign cookie accepted: %v", err)
			}
		}
		for i := range b {
			f := bytes.Clone(b)
			f[i] ^= 0x10
			if _, err := parseCookie(f, testSecret, testPeer, "d2"); err == nil {
				t.Fatalf("byte %d flipped: accepted", i)
			}
			if _, err := parseCookie(b[:i], testSecret, testPeer, "d2"); err == nil {
				t.Fatalf("%d-byte prefix accepted", i)
			}
		}
	}
}

// FuzzCookie: whatever bytes come as a cookie, parsing never panics, and
// only what this provider issued is accepted.
func FuzzCookie(f *testing.F) {
	c := cookie{scope: 1, issued: 2, serial: 3, last: prefixKey(slowpath.EIDPrefix{IID: 4, Prefix: netip.MustParsePrefix("10.0.0.0/8")})}
	f.Add(appendCookie(nil, &c, testSecret, testPeer, "d2"))
	c.last = nameKey(slowpath.EIDName{IID: 4, Name: "a.example"})
	f.Add(appendCookie(nil, &c, testSecret, testPeer, "d2"))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseCookie(b, testSecret, testPeer, "d2")
		if err == nil && !bytes.Equal(appendCookie(nil, &got, testSecret, testPeer, "d2"), b) {
			t.Fatalf("accepted %x, which re-encodes differently", b)
		}
	})
}

func TestClip(t *testing.T) {
	pfx := func(iid uint32, s string) scopeEntry { return scopeEntry{iid: iid, prefix: netip.MustParsePrefix(s)} }
	pk := func(iid uint32, s string) key {
		return prefixKey(slowpath.EIDPrefix{IID: iid, Prefix: netip.MustParsePrefix(s)})
	}
	nk := func(iid uint32, n string) key { return nameKey(slowpath.EIDName{IID: iid, Name: n}) }
	nm := func(iid uint32, n string) scopeEntry { return scopeEntry{iid: iid, name: n} }
	allowed := scope{entries: []scopeEntry{pfx(0, "10.1.0.0/16"), {iid: 7, whole: true}, nm(0, "*.lab.example"), nm(0, "printer.example")}}
	for _, tc := range []struct {
		name    string
		req     scope
		clipped bool
		has     []key
		hasnt   []key
	}{
		{"all", scope{all: true}, true,
			[]key{pk(0, "10.1.2.0/24"), pk(7, "::/0")},
			[]key{pk(0, "10.2.0.0/24")}},
		{"inside", scope{entries: []scopeEntry{pfx(0, "10.1.4.0/24")}}, false,
			[]key{pk(0, "10.1.4.128/25")},
			[]key{pk(0, "10.1.5.0/24")}},
		{"wider", scope{entries: []scopeEntry{pfx(0, "10.0.0.0/8")}}, true,
			[]key{pk(0, "10.1.4.0/24")},
			[]key{pk(0, "10.2.0.0/16")}},
		{"outside", scope{entries: []scopeEntry{pfx(3, "10.0.0.0/8")}}, true, nil,
			[]key{pk(3, "10.1.0.0/16")}},
		{"whole iid asked", scope{entries: []scopeEntry{{iid: 0, whole: true}}}, true,
			[]key{pk(0, "10.1.0.0/16")},
			[]key{pk(0, "::/0")}},
		{"names inside", scope{entries: []scopeEntry{nm(0, "*.a.lab.example"), nm(0, "printer.example")}}, false,
			[]key{nk(0, "x.a.lab.example"), nk(0, "printer.example")},
			[]key{nk(0, "x.lab.example"), nk(5, "printer.example")}},
		{"names wider", scope{entries: []scopeEntry{nm(0, "*.example")}}, true,
			[]key{nk(0, "cam.lab.example"), nk(0, "printer.example")},
			[]key{nk(0, "scanner.example"), nk(0, "lab.example")}},
		{"names outside", scope{entries: []scopeEntry{nm(0, "scanner.example"), nm(3, "*.lab.example")}}, true, nil,
			[]key{nk(0, "scanner.example"), nk(3, "a.lab.example")}},
		{"whole iid has names", scope{entries: []scopeEntry{nm(7, "*.x")}}, false,
			[]key{nk(7, "a.x")}, []key{nk(7, "x"), pk(7, "10.0.0.0/8")}},
		{"all has names", scope{all: true}, true,
			[]key{nk(0, "printer.example"), nk(7, "any")}, []key{nk(0, "other.example")}},
	} {
		got, clipped := clip(&tc.req, &allowed)
		if clipped != tc.clipped {
			t.Errorf("%s: clipped %v", tc.name, clipped)
		}
		for _, k := range tc.has {
			if !got.has(k) {
				t.Errorf("%s: lacks %v", tc.name, k)
			}
		}
		for _, k := range tc.hasnt {
			if got.has(k) {
				t.Errorf("%s: has %v", tc.name, k)
			}
		}
	}
	// The wire's scope: an instance-ID LCAF with mask length 0 is the
	// whole instance-ID; names (AFI 17, bare or in an instance-ID) are
	// exact or "*." suffixes; bad names and AS numbers are counted.
	recs := []wire.EIDRecord{{MaskLen: 0, EID: wire.IIDAddress(7, netip.MustParseAddr("0.0.0.0"))},
		{MaskLen: 16, EID: wire.IPAddress(netip.MustParseAddr("10.1.0.0"))}, {EID: wire.NameAddress("x")},
		{EID: slowpath.NameAddress(9, "*.lab.example")}, {EID: wire.NameAddress("a b")}, {EID: wire.NameAddress("*x")},
		{EID: wire.Address{AFI: wire.AFILCAF, LCAF: wire.LCAF{Type: wire.LCAFASNumber, ASN: 65000, Addrs: []wire.Address{wire.IPAddress(netip.MustParseAddr("10.0.0.0"))}}}}}
	s, bad := requestedScope(false, recs)
	if bad != 3 || len(s.entries) != 4 || !s.entries[0].whole || s.entries[1].prefix != netip.MustParsePrefix("10.1.0.0/16") ||
		s.entries[2] != nm(0, "x") || s.entries[3] != nm(9, "*.lab.example") {
		t.Fatalf("scope %+v, %d bad", s, bad)
	}
}

package msx

import (
	"bytes"
	"net/netip"
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
	for _, last := range []slowpath.EIDPrefix{
		{IID: 7, Prefix: netip.MustParsePrefix("10.1.2.0/24")},
		{IID: 0, Prefix: netip.MustParsePrefix("2001:db8::/48")},
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
	c := cookie{scope: 1, issued: 2, serial: 3, last: slowpath.EIDPrefix{IID: 4, Prefix: netip.MustParsePrefix("10.0.0.0/8")}}
	good := appendCookie(nil, &c, testSecret, testPeer, "d2")
	f.Add(good)
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
	allowed := scope{entries: []scopeEntry{pfx(0, "10.1.0.0/16"), {iid: 7, whole: true}}}
	for _, tc := range []struct {
		name    string
		req     scope
		clipped bool
		has     []slowpath.EIDPrefix
		hasnt   []slowpath.EIDPrefix
	}{
		{"all", scope{all: true}, true,
			[]slowpath.EIDPrefix{{IID: 0, Prefix: netip.MustParsePrefix("10.1.2.0/24")}, {IID: 7, Prefix: netip.MustParsePrefix("::/0")}},
			[]slowpath.EIDPrefix{{IID: 0, Prefix: netip.MustParsePrefix("10.2.0.0/24")}}},
		{"inside", scope{entries: []scopeEntry{pfx(0, "10.1.4.0/24")}}, false,
			[]slowpath.EIDPrefix{{IID: 0, Prefix: netip.MustParsePrefix("10.1.4.128/25")}},
			[]slowpath.EIDPrefix{{IID: 0, Prefix: netip.MustParsePrefix("10.1.5.0/24")}}},
		{"wider", scope{entries: []scopeEntry{pfx(0, "10.0.0.0/8")}}, true,
			[]slowpath.EIDPrefix{{IID: 0, Prefix: netip.MustParsePrefix("10.1.4.0/24")}},
			[]slowpath.EIDPrefix{{IID: 0, Prefix: netip.MustParsePrefix("10.2.0.0/16")}}},
		{"outside", scope{entries: []scopeEntry{pfx(3, "10.0.0.0/8")}}, true, nil,
			[]slowpath.EIDPrefix{{IID: 3, Prefix: netip.MustParsePrefix("10.1.0.0/16")}}},
		{"whole iid asked", scope{entries: []scopeEntry{{iid: 0, whole: true}}}, true,
			[]slowpath.EIDPrefix{{IID: 0, Prefix: netip.MustParsePrefix("10.1.0.0/16")}},
			[]slowpath.EIDPrefix{{IID: 0, Prefix: netip.MustParsePrefix("::/0")}}},
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
	// whole instance-ID; a name is no EID prefix.
	recs := []wire.EIDRecord{{MaskLen: 0, EID: wire.IIDAddress(7, netip.MustParseAddr("0.0.0.0"))},
		{MaskLen: 16, EID: wire.IPAddress(netip.MustParseAddr("10.1.0.0"))}, {EID: wire.Address{AFI: wire.AFIDistName, Name: "x"}}}
	s, bad := requestedScope(false, recs)
	if bad != 1 || len(s.entries) != 2 || !s.entries[0].whole || s.entries[1].prefix != netip.MustParsePrefix("10.1.0.0/16") {
		t.Fatalf("scope %+v, %d bad", s, bad)
	}
}

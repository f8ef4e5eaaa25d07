package control

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// ddtTestConfig is a DDT node authoritative for 10.0.0.0/8 (IID 0) and
// 2001:db8::/32 (IID 7), delegating 10.1.0.0/16 to two child DDT nodes,
// 10.2.0.0/16 to a Map-Server and 2001:db8:1::/48 (IID 7) to one child
// node whose referral set is marked incomplete.
func ddtTestConfig() *slowpath.DDTNodeConfig {
	p := func(iid uint32, s string) slowpath.EIDPrefix {
		return slowpath.EIDPrefix{IID: iid, Prefix: netip.MustParsePrefix(s)}
	}
	tg := func(a string, prio uint8) slowpath.DDTTarget {
		return slowpath.DDTTarget{Addr: netip.MustParseAddr(a), Priority: prio, Weight: 50}
	}
	return &slowpath.DDTNodeConfig{
		Authoritative: []slowpath.EIDPrefix{p(0, "10.0.0.0/8"), p(7, "2001:db8::/32")},
		Delegations: []slowpath.DDTDelegation{
			{EIDPrefix: p(0, "10.1.0.0/16"), Type: slowpath.DDTNode, Targets: []slowpath.DDTTarget{tg("192.0.2.1", 1), tg("192.0.2.2", 2)}},
			{EIDPrefix: p(0, "10.2.0.0/16"), Type: slowpath.DDTMapServer, Targets: []slowpath.DDTTarget{tg("198.51.100.1", 1)}},
			{EIDPrefix: p(7, "2001:db8:1::/48"), Type: slowpath.DDTNode, Targets: []slowpath.DDTTarget{tg("2001:db8:ffff::1", 1)}, Incomplete: true},
		},
		ReferralTTL: 2 * time.Hour,
		HoleTTL:     10 * time.Minute,
	}
}

// ddtClient is a DDT Map-Resolver stand-in on a loopback socket.
type ddtClient struct {
	t    *testing.T
	conn *net.UDPConn
	dst  netip.AddrPort
	n    byte
}

func newDDTClient(t *testing.T, e *Engine) *ddtClient {
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &ddtClient{t: t, conn: conn, dst: e.Addr()}
}

// request builds a Map-Request for iid/eid (host prefix) with a fresh nonce.
func (c *ddtClient) request(iid uint32, eid string) (wire.Nonce, []byte) {
	c.n++
	a := netip.MustParseAddr(eid)
	req := wire.MapRequest{Nonce: wire.Nonce{0xdd, 7, 0, 0, 0, 0, 0, c.n}, ITRRLOCs: []wire.Address{wire.IPAddress(lo4)},
		Records: []wire.EIDRecord{{MaskLen: uint8(a.BitLen()), EID: slowpath.EIDAddress(iid, a)}}}
	b, err := req.Append(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return req.Nonce, b
}

// ecm wraps a Map-Request in an ECM, with the DDT bit when ddt is set.
func (c *ddtClient) ecm(req []byte, dst netip.Addr, ddt bool) []byte {
	src := lo4
	if dst.Is6() {
		src = netip.IPv6Loopback()
	}
	e := wire.ECM{DDT: ddt, Src: src, Dst: dst, SrcPort: c.conn.LocalAddr().(*net.UDPAddr).AddrPort().Port(), DstPort: 4342, TTL: 64, Message: req}
	b, err := e.Append(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

func (c *ddtClient) send(b []byte) {
	if _, err := c.conn.WriteToUDPAddrPort(b, c.dst); err != nil {
		c.t.Fatal(err)
	}
}

// referral reads the next Map-Referral and checks its nonce.
func (c *ddtClient) referral(nonce wire.Nonce) (*wire.MapReferral, []byte) {
	c.t.Helper()
	buf := make([]byte, 9216)
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.conn.Read(buf)
	if err != nil {
		c.t.Fatalf("no Map-Referral: %v", err)
	}
	var m wire.MapReferral
	if err := m.Parse(buf[:n]); err != nil {
		c.t.Fatalf("Map-Referral: %v", err)
	}
	if m.Nonce != nonce {
		c.t.Fatalf("nonce %x, want %x", m.Nonce, nonce)
	}
	if len(m.Records) != 1 {
		c.t.Fatalf("%d records", len(m.Records))
	}
	return &m, buf[:n]
}

// ask sends a DDT Map-Request (ECM, D bit) for iid/eid and returns the
// referral record.
func (c *ddtClient) ask(iid uint32, eid string) *wire.MapReferral {
	c.t.Helper()
	nonce, req := c.request(iid, eid)
	c.send(c.ecm(req, netip.MustParseAddr(eid), true))
	m, _ := c.referral(nonce)
	return m
}

type wantReferral struct {
	typ        wire.ReferralType
	iid        uint32
	prefix     string
	ttl        uint32
	auth, inc  bool
	targets    []string
	priorities []uint8
}

func checkReferral(t *testing.T, m *wire.MapReferral, w wantReferral) {
	t.Helper()
	r := &m.Records[0]
	iid, p, ok := r.Prefix()
	if !ok || wire.ReferralType(r.Action) != w.typ || iid != w.iid || p != netip.MustParsePrefix(w.prefix) ||
		r.TTL != w.ttl || r.Authoritative != w.auth || r.Incomplete != w.inc || len(r.Locators) != len(w.targets) {
		t.Fatalf("referral %v iid %d %v ttl %d A %v I %v %d targets, want %+v",
			wire.ReferralType(r.Action), iid, p, r.TTL, r.Authoritative, r.Incomplete, len(r.Locators), w)
	}
	for i, l := range r.Locators {
		if l.Address.IP != netip.MustParseAddr(w.targets[i]) || l.Priority != w.priorities[i] {
			t.Fatalf("target %d: %v priority %d, want %s priority %d", i, l.Address.IP, l.Priority, w.targets[i], w.priorities[i])
		}
	}
}

// TestDDTNodeReferrals: the DDT node answers DDT Map-Requests (ECM with the
// D bit, RFC 8111 §6.3) over loopback with each referral type of RFC 8111
// §6.4.1 it can give: NODE-REFERRAL with several prioritised targets,
// MS-REFERRAL, DELEGATION-HOLE with the least-specific hole, and
// NOT-AUTHORITATIVE; the TTLs and the A and I bits follow the
// configuration.
func TestDDTNodeReferrals(t *testing.T) {
	e := newEngine(t, Config{DDT: ddtTestConfig()}, nil)
	c := newDDTClient(t, e)
	for _, tc := range []struct {
		name string
		iid  uint32
		eid  string
		want wantReferral
	}{
		{"node referral", 0, "10.1.2.3", wantReferral{wire.ReferralNode, 0, "10.1.0.0/16", 120, true, false,
			[]string{"192.0.2.1", "192.0.2.2"}, []uint8{1, 2}}},
		{"ms referral", 0, "10.2.200.1", wantReferral{wire.ReferralMS, 0, "10.2.0.0/16", 120, true, false,
			[]string{"198.51.100.1"}, []uint8{1}}},
		{"incomplete node referral in iid 7", 7, "2001:db8:1:2::1", wantReferral{wire.ReferralNode, 7, "2001:db8:1::/48", 120, true, true,
			[]string{"2001:db8:ffff::1"}, []uint8{1}}},
		// 10.0.0.0/9 holds both delegations, 10.64.0.0/10 none.
		{"hole far from the delegations", 0, "10.64.1.1", wantReferral{wire.ReferralDelegationHole, 0, "10.64.0.0/10", 10, true, false, nil, nil}},
		// 10.2.0.0/15 holds 10.2.0.0/16; 10.3.0.0/16 is the widest clear one.
		{"hole beside a delegation", 0, "10.3.0.1", wantReferral{wire.ReferralDelegationHole, 0, "10.3.0.0/16", 10, true, false, nil, nil}},
		{"hole in iid 7", 7, "2001:db8:8000::1", wantReferral{wire.ReferralDelegationHole, 7, "2001:db8:8000::/33", 10, true, false, nil, nil}},
		{"not authoritative", 0, "192.168.1.1", wantReferral{wire.ReferralNotAuthoritative, 0, "192.168.1.1/32", 1, false, true, nil, nil}},
		{"not authoritative in another iid", 9, "10.1.2.3", wantReferral{wire.ReferralNotAuthoritative, 9, "10.1.2.3/32", 1, false, true, nil, nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			checkReferral(t, c.ask(tc.iid, tc.eid), tc.want)
		})
	}
	l, ok := e.DDTDelegations()
	if !ok || len(l.Delegations) != 3 || l.Stats.NodeReferrals != 2 || l.Stats.MSReferrals != 1 ||
		l.Stats.DelegationHoles != 3 || l.Stats.NotAuthoritative != 2 || l.Signed {
		t.Fatalf("listing %+v", l)
	}
	if s := e.Stats().Msg(wire.TypeMapReferral); s.Sent != 8 {
		t.Fatalf("Map-Referrals sent %d, want 8", s.Sent)
	}
}

// TestDDTNodePlainRequest: a plain Map-Request (no ECM) gets the same
// referral when the router runs no Map-Server or Map-Resolver; an ECM
// without the D bit is not a DDT request and is left alone (ignored).
func TestDDTNodePlainRequest(t *testing.T) {
	e := newEngine(t, Config{DDT: ddtTestConfig()}, nil)
	c := newDDTClient(t, e)
	_, req := c.request(0, "10.1.0.1")
	c.send(c.ecm(req, netip.MustParseAddr("10.1.0.1"), false)) // no D bit: no answer
	nonce, req := c.request(0, "10.2.0.1")
	c.send(req)
	m, _ := c.referral(nonce) // the first datagram back answers the plain request
	checkReferral(t, m, wantReferral{wire.ReferralMS, 0, "10.2.0.0/16", 120, true, false, []string{"198.51.100.1"}, []uint8{1}})
	if s := e.Stats().Msg(wire.TypeMapRequest); s.Ignored != 1 {
		t.Fatalf("Map-Requests ignored %d, want 1 (the ECM without the D bit)", s.Ignored)
	}
}

// TestDDTNodeMalformed: malformed DDT requests are dropped and counted and
// get no answer: an ECM whose Map-Request does not parse, and one whose
// EID record is not an IP prefix (a distinguished name).
func TestDDTNodeMalformed(t *testing.T) {
	e := newEngine(t, Config{DDT: ddtTestConfig()}, nil)
	c := newDDTClient(t, e)
	_, req := c.request(0, "10.1.0.1")
	c.send(c.ecm(req[:len(req)-3], netip.MustParseAddr("10.1.0.1"), true)) // truncated Map-Request
	dn := wire.MapRequest{Nonce: wire.Nonce{1}, ITRRLOCs: []wire.Address{wire.IPAddress(lo4)},
		Records: []wire.EIDRecord{{EID: wire.Address{AFI: wire.AFIDistName, Name: "not-an-eid"}}}}
	b, err := dn.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	c.send(c.ecm(b, netip.MustParseAddr("10.1.0.1"), true))
	// Garbage after the ECM header: the ECM does not parse.
	c.send([]byte{0x84, 0, 0, 0, 0x45, 0})
	// Then a good request: its answer is the first datagram back.
	m := c.ask(0, "10.1.0.1")
	checkReferral(t, m, wantReferral{wire.ReferralNode, 0, "10.1.0.0/16", 120, true, false, []string{"192.0.2.1", "192.0.2.2"}, []uint8{1, 2}})
	st := e.Stats()
	if r := st.Msg(wire.TypeMapRequest); r.BadParse != 1 || r.Rejected != 1 {
		t.Fatalf("Map-Requests bad_parse %d rejected %d, want 1 and 1", r.BadParse, r.Rejected)
	}
	if s := st.Msg(wire.TypeECM); s.BadParse != 1 {
		t.Fatalf("ECMs bad_parse %d, want 1", s.BadParse)
	}
	if l, _ := e.DDTDelegations(); l.Stats.Malformed != 1 || st.Msg(wire.TypeMapReferral).Sent != 1 {
		t.Fatalf("malformed %d, referrals sent %d", l.Stats.Malformed, st.Msg(wire.TypeMapReferral).Sent)
	}
}

// TestDDTNodeSigned: with a signing key every referral and hole record
// carries an RSA-SHA256 signature (RFC 8111 §6.4.1) that verifies with the
// public key; the same record is not re-signed while its signature is
// fresh; a forged copy (a target changed) fails; NOT-AUTHORITATIVE records
// go unsigned.
func TestDDTNodeSigned(t *testing.T) {
	cfg := ddtTestConfig()
	cfg.Signing.KeyFile = "../../wire/testdata/ddt_rsa_key.pem"
	cfg.Signing.KeyTag = 0x4242
	e := newEngine(t, Config{DDT: cfg}, nil)
	c := newDDTClient(t, e)
	pemPub, err := os.ReadFile("../../wire/testdata/ddt_rsa_pub.pem")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := slowpath.ParseDDTPublicKey(pemPub)
	if err != nil {
		t.Fatal(err)
	}
	for _, eid := range []string{"10.1.2.3", "10.1.9.9", "10.64.1.1", "192.168.1.1"} {
		nonce, req := c.request(0, eid)
		c.send(c.ecm(req, netip.MustParseAddr(eid), true))
		m, raw := c.referral(nonce)
		r := &m.Records[0]
		if eid == "192.168.1.1" {
			if r.SigCount != 0 || len(m.Signatures) != 0 {
				t.Fatalf("NOT-AUTHORITATIVE signed: %+v", m.Signatures)
			}
			continue
		}
		if r.SigCount != 1 || m.Signatures[0].KeyTag != 0x4242 || m.Signatures[0].OriginalTTL != r.TTL {
			t.Fatalf("%s: SigCnt %d, signatures %+v", eid, r.SigCount, m.Signatures)
		}
		if _, err := wire.VerifyReferral(nil, r, &m.Signatures[0], pub, time.Now()); err != nil {
			t.Fatalf("%s: %v", eid, err)
		}
		if eid == "10.1.2.3" {
			// The first locator's address is at byte 12 (header) + 10
			// (record) + 6 (EID) + 8 (locator) = 36: 192.0.2.1 becomes .66.
			raw[36+3] = 66
			var f wire.MapReferral
			if err := f.Parse(raw); err != nil {
				t.Fatal(err)
			}
			if _, err := wire.VerifyReferral(nil, &f.Records[0], &f.Signatures[0], pub, time.Now()); !errors.Is(err, wire.ErrAuth) {
				t.Fatalf("forged referral: %v", err)
			}
		}
	}
	l, _ := e.DDTDelegations()
	if !l.Signed || l.KeyTag != 0x4242 || l.Stats.Signed != 2 {
		t.Fatalf("signed %v key tag %x signatures made %d, want 2 (10.1.0.0/16 once, the hole)", l.Signed, l.KeyTag, l.Stats.Signed)
	}
}

// TestDDTNodeWidePrefix: a request for a prefix wider than the delegations
// inside it cannot get a hole free of them; the node answers
// DELEGATION-HOLE for the prefix asked with the I bit set. A request for a
// prefix inside a delegation gets the delegation's referral.
func TestDDTNodeWidePrefix(t *testing.T) {
	e := newEngine(t, Config{DDT: ddtTestConfig()}, nil)
	c := newDDTClient(t, e)
	for _, tc := range []struct {
		p    string
		want wantReferral
	}{
		{"10.0.0.0/14", wantReferral{wire.ReferralDelegationHole, 0, "10.0.0.0/14", 10, true, true, nil, nil}},
		{"10.2.4.0/24", wantReferral{wire.ReferralMS, 0, "10.2.0.0/16", 120, true, false, []string{"198.51.100.1"}, []uint8{1}}},
	} {
		p := netip.MustParsePrefix(tc.p)
		req := wire.MapRequest{Nonce: wire.Nonce{0xee, byte(p.Bits())}, ITRRLOCs: []wire.Address{wire.IPAddress(lo4)},
			Records: []wire.EIDRecord{{MaskLen: uint8(p.Bits()), EID: wire.IPAddress(p.Addr())}}}
		b, err := req.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		c.send(c.ecm(b, p.Addr(), true))
		m, _ := c.referral(req.Nonce)
		checkReferral(t, m, tc.want)
	}
}

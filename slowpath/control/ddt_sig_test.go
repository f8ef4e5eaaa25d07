package control

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/resolver"
	"github.com/rloc-router/rloc/wire"
)

const (
	testDDTKey    = "../../wire/testdata/ddt_rsa_key.pem"
	testDDTPubKey = "../../wire/testdata/ddt_rsa_pub.pem"
)

// ddtPort returns a UDP port free on 127.0.0.1 (a whole DDT tree runs on
// one port of several loopback addresses).
func ddtPort(t *testing.T) uint16 {
	t.Helper()
	probe, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	return probe.LocalAddr().(*net.UDPAddr).AddrPort().Port()
}

// listenLo opens a UDP socket on 127.0.0.i:port, closed at cleanup.
func listenLo(t *testing.T, i byte, port uint16) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loAddr(i), port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// otherPubKey writes the public half of a fresh 2048-bit RSA key (key B)
// to a PEM file and returns its path.
func otherPubKey(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "b.pub.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// rootKeys loads file as the roots' key for IPv4 in instance-ID 0.
func rootKeys(t *testing.T, file string) []slowpath.DDTPublicKey {
	t.Helper()
	keys, err := slowpath.LoadDDTKeys("keys", []slowpath.DDTKey{{EIDPrefix: slowpath.EIDPrefix{Prefix: netip.MustParsePrefix("0.0.0.0/0")}, KeyFile: file}})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// signedTree is a root signing with key A (authoritative for 10.0.0.0/8,
// 10.1.0.0/16 delegated to a Map-Server with an ETR that registered
// 10.1.2.0/24), all on loopback port port.
func signedTree(t *testing.T, port uint16) {
	t.Helper()
	const root, ms = 121, 122
	tr := newEngine(t, Config{Listen: []netip.AddrPort{netip.AddrPortFrom(loAddr(root), port)}, DDT: &slowpath.DDTNodeConfig{
		Authoritative: []slowpath.EIDPrefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}},
		Delegations: []slowpath.DDTDelegation{{EIDPrefix: slowpath.EIDPrefix{Prefix: netip.MustParsePrefix("10.1.0.0/16")},
			Type: slowpath.DDTMapServer, Targets: []slowpath.DDTTarget{{Addr: loAddr(ms), Priority: 1, Weight: 100}}}},
		Signing: slowpath.DDTSigning{KeyFile: testDDTKey}}}, nil)
	_ = tr
	msc := msConfig(siteConfig("a", "10.1.0.0/16", true))
	msc.Listen = []netip.AddrPort{netip.AddrPortFrom(loAddr(ms), port)}
	m := newEngine(t, msc, nil)
	etr := newEngine(t, Config{ETR: etrConfig(m.Addr(), testKey, mapping("10.1.2.0/24", "192.0.2.1"))}, nil)
	waitFor(t, 5*time.Second, "registration", func() bool { return etr.Stats().RegisterNotified >= 1 })
}

// sigResolver is a DDT Map-Resolver at 127.0.0.mr on a fake clock with
// root 127.0.0.121 and keys, and an ITR socket at 127.0.0.itr.
func sigResolver(t *testing.T, port uint16, mr, itr byte, keys []slowpath.DDTPublicKey) *ddtTree {
	t.Helper()
	clk := newFakeClock()
	e := newEngineWith(t, Config{Listen: []netip.AddrPort{netip.AddrPortFrom(loAddr(mr), port)}, MapResolver: &MapResolverConfig{
		DDTRoots: []netip.AddrPort{netip.AddrPortFrom(loAddr(121), port)}, DDTPort: port, DDTKeys: keys}},
		nil, slowpath.Options{Clock: clk.Now})
	return &ddtTree{port: port, mr: e, clk: clk, itr: listenLo(t, itr, port), itrAddr: loAddr(itr)}
}

// TestDDTResolverSignatures: a root signing its referrals with key A; a
// resolver trusting A for the roots resolves through it (the referral
// verified); one trusting key B drops the root's referral as badly signed
// (counted), asks again after the retransmission interval, and when the
// root has had its tries answers the ITR negatively.
func TestDDTResolverSignatures(t *testing.T) {
	port := ddtPort(t)
	signedTree(t, port)

	good := sigResolver(t, port, 123, 124, rootKeys(t, testDDTPubKey))
	n := good.ask(t, "10.1.2.9")
	if r := good.reply(t, n); len(r.Locators) != 1 {
		t.Fatalf("reply through a verified referral: %+v", r)
	}
	if st, _, _ := good.mr.DDTResolverStats(); st.Verified != 1 || st.BadSignature != 0 || st.Unsigned != 0 {
		t.Fatalf("verified %d, bad %d, unsigned %d; want 1, 0, 0", st.Verified, st.BadSignature, st.Unsigned)
	}

	bad := sigResolver(t, port, 125, 126, rootKeys(t, otherPubKey(t)))
	n = bad.ask(t, "10.1.2.9")
	waitFor(t, 5*time.Second, "the badly signed referral", func() bool { st, _, _ := bad.mr.DDTResolverStats(); return st.BadSignature == 1 })
	tick(t, bad.mr, bad.clk, time.Second)
	waitFor(t, 5*time.Second, "the second badly signed referral", func() bool { st, _, _ := bad.mr.DDTResolverStats(); return st.BadSignature == 2 })
	tick(t, bad.mr, bad.clk, 2*time.Second)
	checkNegative(t, bad.reply(t, n), "10.1.2.9/32", wire.ActionSendMapRequest)
	st, cached, _ := bad.mr.DDTResolverStats()
	if st.TimedOut != 1 || st.Verified != 0 || cached != 0 || st.Referrals[wire.ReferralMS] != 0 {
		t.Fatalf("after bad signatures: %+v, %d cached", st, cached)
	}
}

// TestDDTResolverForgedSignature: with the roots' key configured, a fake
// root's referrals are checked: an unsigned one and one signed with key A
// but altered (its prefix changed, a bit of its signature flipped, its TTL
// raised above the signed one) or expired are dropped and counted, and the resolution goes on; the genuine signed one
// is followed.
func TestDDTResolverForgedSignature(t *testing.T) {
	port := ddtPort(t)
	root := listenLo(t, 121, port)
	key, err := slowpath.LoadDDTSigningKey(testDDTKey)
	if err != nil {
		t.Fatal(err)
	}
	tr := sigResolver(t, port, 127, 128, rootKeys(t, testDDTPubKey))
	n := tr.ask(t, "10.1.2.3")
	buf := make([]byte, 9216)
	root.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := root.Read(buf); err != nil {
		t.Fatalf("root asked nothing: %v", err)
	}
	now := tr.clk.Now()
	var signAt func(r wire.Record, from, until time.Time) wire.MapReferral
	rec := wire.Record{TTL: 60, MaskLen: 16, Action: wire.Action(wire.ReferralDelegationHole), Authoritative: true,
		EID: slowpath.EIDAddress(0, netip.MustParseAddr("10.1.0.0"))}
	sign := func(r wire.Record) wire.MapReferral { return signAt(r, now.Add(-time.Minute), now.Add(time.Hour)) }
	signAt = func(r wire.Record, from, until time.Time) wire.MapReferral {
		s := wire.Signature{Inception: uint32(from.Unix()), Expiration: uint32(until.Unix()), KeyTag: 7}
		r.SigCount = 1
		if _, err := wire.SignReferral(nil, &r, &s, key); err != nil {
			t.Fatal(err)
		}
		return wire.MapReferral{Nonce: n, Records: []wire.Record{r}, Signatures: []wire.Signature{s}}
	}
	send := func(m wire.MapReferral) {
		t.Helper()
		b, err := m.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := root.WriteToUDPAddrPort(b, tr.mr.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	stats := func() resolver.DDTStats { st, _, _ := tr.mr.DDTResolverStats(); return st }

	send(wire.MapReferral{Nonce: n, Records: []wire.Record{rec}})
	waitFor(t, 5*time.Second, "the unsigned referral", func() bool { return stats().Unsigned == 1 })

	forged := sign(rec)
	forged.Records[0].MaskLen = 24 // signed /16, sent /24
	forged.Records[0].EID = slowpath.EIDAddress(0, netip.MustParseAddr("10.1.2.0"))
	send(forged)
	waitFor(t, 5*time.Second, "the forged referral", func() bool { return stats().BadSignature == 1 })

	flipped := sign(rec)
	flipped.Signatures[0].Sig[17] ^= 0x04
	send(flipped)
	waitFor(t, 5*time.Second, "the bit-flipped signature", func() bool { return stats().BadSignature == 2 })

	stretched := sign(rec)
	stretched.Records[0].TTL = 61 // above the signed original TTL
	send(stretched)
	waitFor(t, 5*time.Second, "the stretched TTL", func() bool { return stats().BadSignature == 3 })

	send(signAt(rec, now.Add(-2*time.Hour), now.Add(-time.Hour)))
	waitFor(t, 5*time.Second, "the expired signature", func() bool { return stats().BadSignature == 4 })

	send(sign(rec))
	checkNegative(t, tr.reply(t, n), "10.1.0.0/16", wire.ActionNativelyForward)
	if st := stats(); st.Verified != 1 || st.Referrals[wire.ReferralDelegationHole] != 1 {
		t.Fatalf("genuine referral: %+v", st)
	}
}

// FuzzDDTResolverReferral feeds Map-Referrals to a DDT Map-Resolver that
// holds the roots' key and has a resolution pending with the seeds' nonce,
// from the root's address: the signature checks, the bits and the cache
// see every mutation; nothing may panic and the pending state stays
// bounded.
func FuzzDDTResolverReferral(f *testing.F) {
	root := netip.MustParseAddrPort("127.0.0.1:9") // feed's source
	keys, err := slowpath.LoadDDTKeys("keys", []slowpath.DDTKey{{EIDPrefix: slowpath.EIDPrefix{Prefix: netip.MustParsePrefix("0.0.0.0/0")}, KeyFile: testDDTPubKey}})
	if err != nil {
		f.Fatal(err)
	}
	c := Config{RateLimit: RateLimitConfig{Off: true}, Logger: slog.New(slog.DiscardHandler),
		MapResolver: &MapResolverConfig{DDTRoots: []netip.AddrPort{root}, DDTPort: 9, DDTKeys: keys}}
	mr := newEngineWith(f, c, nil, slowpath.Options{Clock: newFakeClock().Now})
	nonce := wire.Nonce{0xf0, 0x22}
	req := wire.MapRequest{Nonce: nonce, ITRRLOCs: []wire.Address{wire.IPAddress(lo4)},
		Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(netip.MustParseAddr("10.1.2.3"))}}}
	rb, _ := req.Append(nil)
	ecm, _ := (&wire.ECM{Src: lo4, Dst: netip.MustParseAddr("10.1.2.3"), SrcPort: 9, DstPort: 4342, TTL: 64, Message: rb}).Append(nil)
	key, err := slowpath.LoadDDTSigningKey(testDDTKey)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	for _, rec := range []wire.Record{refRec("10.1.0.0/16", wire.ReferralNode, true, false, loAddr(1)),
		refRec("10.1.0.0/16", wire.ReferralDelegationHole, true, false), refRec("10.1.2.0/24", wire.ReferralMSNotRegistered, true, true)} {
		s := wire.Signature{Inception: uint32(now.Add(-time.Hour).Unix()), Expiration: uint32(now.Add(time.Hour).Unix())}
		rec.SigCount = 1
		if _, err := wire.SignReferral(nil, &rec, &s, key); err != nil {
			f.Fatal(err)
		}
		b, err := (&wire.MapReferral{Nonce: nonce, Records: []wire.Record{rec}, Signatures: []wire.Signature{s}}).Append(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		feed(mr, ecm) // (re)start the resolution the referrals answer
		feed(mr, b)
		if _, n, _ := mr.DDTPending(0); n > 1 {
			t.Fatalf("%d resolutions pending, at most 1 started", n)
		}
	})
}

// TestDDTResolverSignedChain: every level signs (root, child node,
// Map-Server, all with the test key) and the resolver holds a key for each
// (the roots', 10.1.0.0/16's, 10.1.2.0/24's): the resolution verifies
// three referrals; without the child's key its referral is not checked
// (two verified).
func TestDDTResolverSignedChain(t *testing.T) {
	port := ddtPort(t)
	const root, child, ms = 161, 162, 163
	p := func(s string) slowpath.EIDPrefix { return slowpath.EIDPrefix{Prefix: netip.MustParsePrefix(s)} }
	at := func(i byte) []netip.AddrPort { return []netip.AddrPort{netip.AddrPortFrom(loAddr(i), port)} }
	sign := slowpath.DDTSigning{KeyFile: testDDTKey}
	newEngine(t, Config{Listen: at(root), DDT: &slowpath.DDTNodeConfig{Authoritative: []slowpath.EIDPrefix{p("10.0.0.0/8")},
		Delegations: []slowpath.DDTDelegation{{EIDPrefix: p("10.1.0.0/16"), Type: slowpath.DDTNode,
			Targets: []slowpath.DDTTarget{{Addr: loAddr(child), Priority: 1}}}}, Signing: sign}}, nil)
	newEngine(t, Config{Listen: at(child), DDT: &slowpath.DDTNodeConfig{Authoritative: []slowpath.EIDPrefix{p("10.1.0.0/16")},
		Delegations: []slowpath.DDTDelegation{{EIDPrefix: p("10.1.2.0/24"), Type: slowpath.DDTMapServer,
			Targets: []slowpath.DDTTarget{{Addr: loAddr(ms), Priority: 1}}}}, Signing: sign}}, nil)
	msc := msConfig(siteConfig("a", "10.1.0.0/16", true))
	msc.Listen = at(ms)
	msc.MapServer.DDT.Signing = sign
	m := newEngine(t, msc, nil)
	etr := newEngine(t, Config{ETR: etrConfig(m.Addr(), testKey, mapping("10.1.2.0/24", "192.0.2.1"))}, nil)
	waitFor(t, 5*time.Second, "registration", func() bool { return etr.Stats().RegisterNotified >= 1 })
	keys := func(prefixes ...string) []slowpath.DDTPublicKey {
		var ks []slowpath.DDTKey
		for _, s := range prefixes {
			ks = append(ks, slowpath.DDTKey{EIDPrefix: p(s), KeyFile: testDDTPubKey})
		}
		out, err := slowpath.LoadDDTKeys("keys", ks)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, tc := range []struct {
		mr, itr  byte
		keys     []string
		verified uint64
	}{{164, 165, []string{"0.0.0.0/0", "10.1.0.0/16", "10.1.2.0/24"}, 3}, {166, 167, []string{"0.0.0.0/0", "10.1.2.0/24"}, 2}} {
		clk := newFakeClock()
		e := newEngineWith(t, Config{Listen: at(tc.mr), MapResolver: &MapResolverConfig{DDTRoots: at(root), DDTPort: port,
			DDTKeys: keys(tc.keys...)}}, nil, slowpath.Options{Clock: clk.Now})
		tr := &ddtTree{port: port, mr: e, clk: clk, itr: listenLo(t, tc.itr, port), itrAddr: loAddr(tc.itr)}
		n := tr.ask(t, "10.1.2.9")
		tr.reply(t, n)
		waitFor(t, 5*time.Second, "MS-ACK", func() bool { st, _, _ := e.DDTResolverStats(); return st.Acked == 1 })
		if st, _, _ := e.DDTResolverStats(); st.Verified != tc.verified || st.BadSignature != 0 || st.Unsigned != 0 {
			t.Fatalf("keys %v: verified %d, bad %d, unsigned %d; want %d, 0, 0", tc.keys, st.Verified, st.BadSignature, st.Unsigned, tc.verified)
		}
	}
}

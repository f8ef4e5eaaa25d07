package control

import (
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// msDDTConfig is a Map-Server for site 10.1.0.0/16 answering DDT with
// its own TTLs, two peers and signatures by key A.
func msDDTConfig() Config {
	c := msConfig(siteConfig("a", "10.1.0.0/16", true))
	c.MapServer.DDT = slowpath.DDTMapServerConfig{AckTTL: 30 * time.Minute, NotRegisteredTTL: 2 * time.Minute,
		NotAuthoritativeTTL: 3 * time.Minute, Signing: slowpath.DDTSigning{KeyFile: testDDTKey},
		Peers: []slowpath.DDTTarget{{Addr: netip.MustParseAddr("192.0.2.31"), Priority: 1, Weight: 50},
			{Addr: netip.MustParseAddr("192.0.2.32"), Priority: 1, Weight: 50}}}
	return c
}

// verifyWith checks m's one record's signature against the public key in
// file.
func verifyWith(t *testing.T, m *wire.MapReferral, file string) {
	t.Helper()
	keys := rootKeys(t, file)
	if m.Records[0].SigCount != 1 || len(m.Signatures) != 1 {
		t.Fatalf("%d signatures, want 1", len(m.Signatures))
	}
	if _, err := wire.VerifyReferral(nil, &m.Records[0], &m.Signatures[0], keys[0].Key, time.Now()); err != nil {
		t.Fatalf("signature: %v", err)
	}
}

// TestDDTMapServerSignedPeers: a Map-Server configured with DDT TTLs, its
// peers and a signing key answers MS-ACK and MS-NOT-REGISTERED with the
// peers as referral set and the I bit clear, NOT-AUTHORITATIVE with I set
// and no set, each with its configured TTL and signed with the key.
func TestDDTMapServerSignedPeers(t *testing.T) {
	ms := newEngine(t, msDDTConfig(), nil)
	ec := etrConfig(ms.Addr(), testKey, mapping("10.1.2.0/24", "192.0.2.1"))
	ec.ProxyReply = true
	etr := newEngine(t, Config{ETR: ec}, nil)
	waitFor(t, 5*time.Second, "registration", func() bool { return etr.Stats().RegisterNotified >= 1 })
	c := newDDTClient(t, ms)
	peers, prios := []string{"192.0.2.31", "192.0.2.32"}, []uint8{1, 1}

	nonce, req := c.request(0, "10.1.2.9")
	c.send(c.ecm(req, netip.MustParseAddr("10.1.2.9"), true))
	for range 2 { // the proxy Map-Reply and the MS-ACK, in either order
		typ, b := c.read()
		if typ != wire.TypeMapReferral {
			continue
		}
		var m wire.MapReferral
		if err := m.Parse(b); err != nil || m.Nonce != nonce {
			t.Fatalf("Map-Referral %+v: %v", m, err)
		}
		checkReferral(t, &m, wantReferral{wire.ReferralMSAck, 0, "10.1.2.0/24", 30, true, false, peers, prios})
		verifyWith(t, &m, testDDTPubKey)
	}
	m := c.ask(0, "10.1.200.1")
	checkReferral(t, m, wantReferral{wire.ReferralMSNotRegistered, 0, "10.1.128.0/17", 2, true, false, peers, prios})
	verifyWith(t, m, testDDTPubKey)
	m = c.ask(0, "192.168.0.1")
	checkReferral(t, m, wantReferral{wire.ReferralNotAuthoritative, 0, "192.168.0.1/32", 3, false, true, nil, nil})
	verifyWith(t, m, testDDTPubKey)
}

// TestDDTResolverMapServerKey: a resolver with the Map-Server's key for
// its delegation (10.1.0.0/16, from an unsigned root) verifies the
// MS-ACK and the MS-NOT-REGISTERED, whose clear I bit lets it cache the
// negative answer; a resolver with another key drops the MS-ACK, counted.
func TestDDTResolverMapServerKey(t *testing.T) {
	port := ddtPort(t)
	const root, msAddr = 151, 152
	newEngine(t, Config{Listen: []netip.AddrPort{netip.AddrPortFrom(loAddr(root), port)}, DDT: &slowpath.DDTNodeConfig{
		Authoritative: []slowpath.EIDPrefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}},
		Delegations: []slowpath.DDTDelegation{{EIDPrefix: slowpath.EIDPrefix{Prefix: netip.MustParsePrefix("10.1.0.0/16")},
			Type: slowpath.DDTMapServer, Targets: []slowpath.DDTTarget{{Addr: loAddr(msAddr), Priority: 1, Weight: 100}}}}}}, nil)
	msc := msDDTConfig()
	msc.Listen = []netip.AddrPort{netip.AddrPortFrom(loAddr(msAddr), port)}
	msc.MapServer.DDT.Peers = []slowpath.DDTTarget{{Addr: loAddr(msAddr), Priority: 1, Weight: 100}} // the only Map-Server of the site
	ms := newEngine(t, msc, nil)
	etr := newEngine(t, Config{ETR: etrConfig(ms.Addr(), testKey, mapping("10.1.2.0/24", "192.0.2.1"))}, nil)
	waitFor(t, 5*time.Second, "registration", func() bool { return etr.Stats().RegisterNotified >= 1 })
	msKey := func(file string) []slowpath.DDTPublicKey {
		keys, err := slowpath.LoadDDTKeys("keys", []slowpath.DDTKey{{EIDPrefix: slowpath.EIDPrefix{Prefix: netip.MustParsePrefix("10.1.0.0/16")}, KeyFile: file}})
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	resolver := func(mr, itr byte, keys []slowpath.DDTPublicKey) *ddtTree {
		clk := newFakeClock()
		e := newEngineWith(t, Config{Listen: []netip.AddrPort{netip.AddrPortFrom(loAddr(mr), port)}, MapResolver: &MapResolverConfig{
			DDTRoots: []netip.AddrPort{netip.AddrPortFrom(loAddr(root), port)}, DDTPort: port, DDTKeys: keys}},
			nil, slowpath.Options{Clock: clk.Now})
		return &ddtTree{port: port, mr: e, clk: clk, itr: listenLo(t, itr, port), itrAddr: loAddr(itr)}
	}

	good := resolver(153, 154, msKey(testDDTPubKey))
	n := good.ask(t, "10.1.2.9")
	good.reply(t, n)
	waitFor(t, 5*time.Second, "the verified MS-ACK", func() bool { st, _, _ := good.mr.DDTResolverStats(); return st.Acked == 1 })
	n = good.ask(t, "10.1.200.1")
	checkNegative(t, good.reply(t, n), "10.1.128.0/17", wire.ActionSendMapRequest)
	if st, cached, _ := good.mr.DDTResolverStats(); st.Verified != 2 || cached != 2 {
		t.Fatalf("verified %d, cached %d; want 2 (MS-ACK, MS-NOT-REGISTERED), 2 (the MS-REFERRAL, the negative)", st.Verified, cached)
	}

	bad := resolver(155, 156, msKey(otherPubKey(t)))
	bad.ask(t, "10.1.2.9")
	waitFor(t, 5*time.Second, "the MS-ACK dropped", func() bool { st, _, _ := bad.mr.DDTResolverStats(); return st.BadSignature == 1 })
	if st, _, _ := bad.mr.DDTResolverStats(); st.Acked != 0 {
		t.Fatalf("acked %d with the wrong key", st.Acked)
	}
}

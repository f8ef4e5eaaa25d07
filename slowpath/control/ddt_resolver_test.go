package control

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// ddtTree is a DDT tree on loopback, every node on port port of its own
// 127.0.0.x address (a referral names addresses only, so the resolver
// reaches them all on one port). The root is authoritative for 10.0.0.0/8
// and [7]2001:db8::/32; it delegates 10.1.0.0/16 to two sibling child
// nodes (c1 preferred), 10.8.0.0/16 and 10.16.0.0/16 to a broken node that
// refers back to a wider prefix and answers with holes wider than what it
// was given, and [7]2001:db8:1::/48 to c1, which knows nothing of it. The
// children delegate 10.1.2.0/24 and 10.1.3.0/24 to a Map-Server (site
// 10.1.0.0/16) with an ETR that registered 10.1.2.0/25 and 10.1.3.0/24.
// A DDT Map-Resolver seeded with the root runs on a fake clock; the ITR is
// a socket.
type ddtTree struct {
	port                      uint16
	root, c1, c2, bad, ms, mr *Engine
	clk                       *fakeClock
	itr                       *net.UDPConn
	itrAddr                   netip.Addr
	n                         byte
}

func loAddr(i byte) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 0, i}) }

func newDDTTree(t *testing.T) *ddtTree {
	probe, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	probe.Close()
	tr := &ddtTree{port: port, itrAddr: loAddr(57)}
	at := func(i byte) []netip.AddrPort { return []netip.AddrPort{netip.AddrPortFrom(loAddr(i), port)} }
	p := func(s string) slowpath.EIDPrefix { return slowpath.EIDPrefix{Prefix: netip.MustParsePrefix(s)} }
	tg := func(i, prio byte) slowpath.DDTTarget {
		return slowpath.DDTTarget{Addr: loAddr(i), Priority: prio, Weight: 100}
	}
	const root, c1, c2, bad, ms, mr = 52, 53, 54, 59, 55, 56
	tr.root = newEngine(t, Config{Listen: at(root), DDT: &slowpath.DDTNodeConfig{
		Authoritative: []slowpath.EIDPrefix{p("10.0.0.0/8"), {IID: 7, Prefix: netip.MustParsePrefix("2001:db8::/32")}},
		Delegations: []slowpath.DDTDelegation{
			{EIDPrefix: p("10.1.0.0/16"), Type: slowpath.DDTNode, Targets: []slowpath.DDTTarget{tg(c1, 1), tg(c2, 2)}},
			{EIDPrefix: slowpath.EIDPrefix{IID: 7, Prefix: netip.MustParsePrefix("2001:db8:1::/48")}, Type: slowpath.DDTNode,
				Targets: []slowpath.DDTTarget{tg(c1, 1)}},
			{EIDPrefix: p("10.8.0.0/16"), Type: slowpath.DDTNode, Targets: []slowpath.DDTTarget{tg(bad, 1)}},
			{EIDPrefix: p("10.16.0.0/16"), Type: slowpath.DDTNode, Targets: []slowpath.DDTTarget{tg(bad, 1)}},
		}}}, nil)
	child := func() *slowpath.DDTNodeConfig {
		return &slowpath.DDTNodeConfig{Authoritative: []slowpath.EIDPrefix{p("10.1.0.0/16")},
			Delegations: []slowpath.DDTDelegation{
				{EIDPrefix: p("10.1.2.0/24"), Type: slowpath.DDTMapServer, Targets: []slowpath.DDTTarget{tg(ms, 1)}},
				{EIDPrefix: p("10.1.3.0/24"), Type: slowpath.DDTMapServer, Targets: []slowpath.DDTTarget{tg(ms, 1)}},
			}}
	}
	tr.c1 = newEngine(t, Config{Listen: at(c1), DDT: child()}, nil)
	tr.c2 = newEngine(t, Config{Listen: at(c2), DDT: child()}, nil)
	tr.bad = newEngine(t, Config{Listen: at(bad), DDT: &slowpath.DDTNodeConfig{
		Authoritative: []slowpath.EIDPrefix{p("10.0.0.0/8")},
		Delegations: []slowpath.DDTDelegation{
			{EIDPrefix: p("10.8.0.0/13"), Type: slowpath.DDTNode, Targets: []slowpath.DDTTarget{tg(bad, 1)}}}}}, nil)
	msc := msConfig(siteConfig("a", "10.1.0.0/16", true))
	msc.Listen = at(ms)
	tr.ms = newEngine(t, msc, nil)
	etr := newEngine(t, Config{ETR: etrConfig(tr.ms.Addr(), testKey, mapping("10.1.2.0/25", "192.0.2.1"), mapping("10.1.3.0/24", "192.0.2.1"))}, nil)
	waitFor(t, 5*time.Second, "registration", func() bool { return etr.Stats().RegisterNotified >= 1 })
	tr.clk = newFakeClock()
	tr.mr = newEngineWith(t, Config{Listen: at(mr), MapResolver: &MapResolverConfig{
		DDTRoots: at(root), DDTPort: port}}, nil, slowpath.Options{Clock: tr.clk.Now})
	tr.itr, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(tr.itrAddr, port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.itr.Close() })
	return tr
}

// ask sends the resolver the ITR's Map-Request for eid in an ECM.
func (tr *ddtTree) ask(t *testing.T, eid string) wire.Nonce { return tr.askIID(t, 0, eid) }

// askIID is ask for an EID in instance-ID iid; an IPv6 EID goes with
// inner addresses ::1 → EID.
func (tr *ddtTree) askIID(t *testing.T, iid uint32, eid string) wire.Nonce {
	t.Helper()
	tr.n++
	a := netip.MustParseAddr(eid)
	req := wire.MapRequest{Nonce: wire.Nonce{0xd7, 1, 0, 0, 0, 0, 0, tr.n}, ITRRLOCs: []wire.Address{wire.IPAddress(tr.itrAddr)},
		Records: []wire.EIDRecord{{MaskLen: uint8(a.BitLen()), EID: slowpath.EIDAddress(iid, a)}}}
	b, err := req.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	src := tr.itrAddr
	if a.Is6() {
		src = netip.IPv6Loopback()
	}
	e := wire.ECM{Src: src, Dst: a, SrcPort: tr.port, DstPort: 4342, TTL: 64, Message: b}
	if b, err = e.Append(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.itr.WriteToUDPAddrPort(b, tr.mr.Addr()); err != nil {
		t.Fatal(err)
	}
	return req.Nonce
}

// reply reads the ITR's next Map-Reply and checks its nonce.
func (tr *ddtTree) reply(t *testing.T, nonce wire.Nonce) *wire.Record {
	t.Helper()
	buf := make([]byte, 9216)
	tr.itr.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := tr.itr.Read(buf)
	if err != nil {
		t.Fatalf("no Map-Reply: %v", err)
	}
	var rep wire.MapReply
	if typ, _ := wire.PeekType(buf[:n]); typ != wire.TypeMapReply {
		t.Fatalf("ITR got %v", typ)
	}
	if err := rep.Parse(buf[:n]); err != nil || len(rep.Records) != 1 {
		t.Fatalf("Map-Reply %+v: %v", rep, err)
	}
	if rep.Nonce != nonce {
		t.Fatalf("Map-Reply nonce %x, want %x", rep.Nonce, nonce)
	}
	r := rep.Records[0]
	return &r
}

func (tr *ddtTree) stats(t *testing.T) (int, uint64, uint64) {
	t.Helper()
	st, n, ok := tr.mr.DDTResolverStats()
	if !ok {
		t.Fatal("no DDT resolver")
	}
	return n, st.Resolutions, st.Acked
}

func nodeStats(t *testing.T, e *Engine) DDTListing {
	t.Helper()
	l, ok := e.DDTDelegations()
	if !ok {
		t.Fatal("no DDT node")
	}
	return l
}

func checkNegative(t *testing.T, r *wire.Record, prefix string, act wire.Action) {
	t.Helper()
	_, p, ok := r.Prefix()
	if !ok || p != netip.MustParsePrefix(prefix) || r.Action != act || len(r.Locators) != 0 {
		t.Fatalf("negative reply %v action %v, %d locators; want %s action %v", p, r.Action, len(r.Locators), prefix, act)
	}
}

// TestDDTResolver: a DDT Map-Resolver resolves iteratively (RFC 8111
// §7.3) through a real root, child node, Map-Server and ETR over loopback:
// the ITR gets the ETR's Map-Reply for an EID two levels down; the second
// EID in the same delegation goes straight to the Map-Server (the root and
// the child see no second request); an unregistered EID gets a negative
// reply for the MS-NOT-REGISTERED prefix, an EID outside every delegation
// a native-forward one for the DELEGATION-HOLE (in IPv4 and in IPv6 in
// instance-ID 7), NOT-AUTHORITATIVE one for the EID; a referral no more
// specific than the last ends with a negative reply, counted; with the
// preferred child closed the retransmission goes to its sibling.
func TestDDTResolver(t *testing.T) {
	tr := newDDTTree(t)

	// Two levels down: root → c1 → Map-Server → ETR → ITR.
	tr.firstResolution(t)
	if l := nodeStats(t, tr.c1); l.Stats.MSReferrals != 1 {
		t.Fatalf("c1 MS referrals %d, want 1", l.Stats.MSReferrals)
	}
	if cached, _, _ := tr.stats(t); cached != 2 {
		t.Fatalf("cached referrals %d, want 2 (the /16 and the /24)", cached)
	}

	// Same delegation: the cached MS-REFERRAL skips the root and c1.
	n := tr.ask(t, "10.1.2.77")
	tr.reply(t, n)
	waitFor(t, 5*time.Second, "MS-ACK", func() bool { _, _, acked := tr.stats(t); return acked == 2 })
	if l := nodeStats(t, tr.root); l.Stats.NodeReferrals != 1 {
		t.Fatalf("root referrals %d after the cached resolution, want 1", l.Stats.NodeReferrals)
	}
	if l := nodeStats(t, tr.c1); l.Stats.MSReferrals != 1 {
		t.Fatalf("c1 MS referrals %d after the cached resolution, want 1", l.Stats.MSReferrals)
	}
	if st, _, _ := tr.mr.DDTResolverStats(); st.CacheHits != 1 {
		t.Fatalf("cache hits %d, want 1", st.CacheHits)
	}

	// Unregistered inside the site: MS-NOT-REGISTERED → negative reply.
	n = tr.ask(t, "10.1.2.200")
	checkNegative(t, tr.reply(t, n), "10.1.2.128/25", wire.ActionSendMapRequest)

	// Outside every delegation: DELEGATION-HOLE from the root.
	n = tr.ask(t, "10.64.1.1")
	checkNegative(t, tr.reply(t, n), "10.64.0.0/10", wire.ActionNativelyForward)
	// The hole is cached: the next EID in it is answered without asking.
	holes := nodeStats(t, tr.root).Stats.DelegationHoles
	n = tr.ask(t, "10.65.0.1")
	checkNegative(t, tr.reply(t, n), "10.64.0.0/10", wire.ActionNativelyForward)
	if h := nodeStats(t, tr.root).Stats.DelegationHoles; h != holes {
		t.Fatalf("root asked again for a cached hole: %d holes, was %d", h, holes)
	}

	// IPv6 in instance-ID 7: a hole from the root for [7]2001:db8:8000::/33
	// (beside the delegated 2001:db8:1::/48); then the delegated /48 asks
	// c1, which is authoritative for nothing in IID 7: NOT-AUTHORITATIVE,
	// a negative reply for the EID alone.
	n = tr.askIID(t, 7, "2001:db8:8000::1")
	r := tr.reply(t, n)
	checkNegative(t, r, "2001:db8:8000::/33", wire.ActionNativelyForward)
	if iid, _, _ := r.Prefix(); iid != 7 {
		t.Fatalf("reply in IID %d, want 7", iid)
	}
	n = tr.askIID(t, 7, "2001:db8:1::5")
	checkNegative(t, tr.reply(t, n), "2001:db8:1::5/128", wire.ActionSendMapRequest)
	if st, _, _ := tr.mr.DDTResolverStats(); st.Referrals[wire.ReferralNotAuthoritative] != 1 {
		t.Fatalf("NOT-AUTHORITATIVE referrals %d, want 1", st.Referrals[wire.ReferralNotAuthoritative])
	}

	// A referral that does not progress: the broken node refers 10.8.1.1
	// to 10.8.0.0/13, wider than the root's 10.8.0.0/16.
	n = tr.ask(t, "10.8.1.1")
	checkNegative(t, tr.reply(t, n), "10.8.1.1/32", wire.ActionSendMapRequest)
	if st, _, _ := tr.mr.DDTResolverStats(); st.NoProgress != 1 {
		t.Fatalf("no-progress referrals %d, want 1", st.NoProgress)
	}

	// A hole wider than the delegation it came from: the broken node
	// answers 10.16.1.1 with the hole 10.16.0.0/12 though the root gave it
	// 10.16.0.0/16 only. The ITR gets a reply for the EID alone and the
	// hole is not cached.
	n = tr.ask(t, "10.16.1.1")
	checkNegative(t, tr.reply(t, n), "10.16.1.1/32", wire.ActionNativelyForward)
	if st, _, _ := tr.mr.DDTResolverStats(); st.Overreach != 1 {
		t.Fatalf("overreaching referrals %d, want 1", st.Overreach)
	}
	if l := nodeStats(t, tr.bad); l.Stats.DelegationHoles != 1 {
		t.Fatalf("broken node holes %d, want 1", l.Stats.DelegationHoles)
	}

	// The preferred child is dead: after the retransmission interval the
	// sibling is asked.
	if err := tr.c1.Close(); err != nil {
		t.Fatal(err)
	}
	_, started, _ := tr.stats(t)
	n = tr.ask(t, "10.1.3.5")
	waitFor(t, 5*time.Second, "the resolution to start", func() bool { _, s, _ := tr.stats(t); return s == started+1 })
	tick(t, tr.mr, tr.clk, time.Second)
	r = tr.reply(t, n)
	if _, p, _ := r.Prefix(); p != netip.MustParsePrefix("10.1.3.0/24") || len(r.Locators) != 1 {
		t.Fatalf("reply through the sibling: %v %+v", p, r.Locators)
	}
	if l := nodeStats(t, tr.c2); l.Stats.MSReferrals != 1 {
		t.Fatalf("sibling MS referrals %d, want 1", l.Stats.MSReferrals)
	}
}

// TestDDTResolverChainBound: a chain of referrals, each more specific than
// the last, is cut after maxReferralHops with a negative reply, counted:
// the root refers 10.9.0.0/16 to n1, each node ni refers the next longer
// prefix to n(i+1).
func TestDDTResolverChainBound(t *testing.T) {
	probe, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	probe.Close()
	at := func(i byte) []netip.AddrPort { return []netip.AddrPort{netip.AddrPortFrom(loAddr(i), port)} }
	node := func(i byte, auth, deleg int) *Engine {
		p := func(bits int) slowpath.EIDPrefix {
			return slowpath.EIDPrefix{Prefix: netip.PrefixFrom(netip.MustParseAddr("10.9.0.0"), bits).Masked()}
		}
		return newEngine(t, Config{Listen: at(i), DDT: &slowpath.DDTNodeConfig{Authoritative: []slowpath.EIDPrefix{p(auth)},
			Delegations: []slowpath.DDTDelegation{{EIDPrefix: p(deleg), Type: slowpath.DDTNode,
				Targets: []slowpath.DDTTarget{{Addr: loAddr(i + 1), Priority: 1, Weight: 100}}}}}}, nil)
	}
	// Root 10.9.0.0/15 at .70 delegating /16; node .70+k delegating /(16+k).
	for k := 0; k <= 9; k++ {
		node(byte(70+k), 15+k, 16+k)
	}
	clk := newFakeClock()
	mr := newEngineWith(t, Config{Listen: at(69), MapResolver: &MapResolverConfig{DDTRoots: at(70), DDTPort: port}},
		nil, slowpath.Options{Clock: clk.Now})
	itr, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loAddr(68), port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { itr.Close() })
	tr := &ddtTree{port: port, mr: mr, clk: clk, itr: itr, itrAddr: loAddr(68)}
	n := tr.ask(t, "10.9.0.1")
	checkNegative(t, tr.reply(t, n), "10.9.0.1/32", wire.ActionSendMapRequest)
	st, cached, _ := mr.DDTResolverStats()
	if st.TooLong != 1 || st.Referrals[wire.ReferralNode] != 9 || cached != 8 {
		t.Fatalf("too long %d, node referrals %d, cached %d; want 1, 9, 8", st.TooLong, st.Referrals[wire.ReferralNode], cached)
	}
}

// TestDDTResolverTimeout: a root that never answers is asked twice (one
// second apart, the retransmission interval), and when the second wait
// (two seconds) runs out the ITR gets a negative reply, counted.
func TestDDTResolverTimeout(t *testing.T) {
	probe, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	probe.Close()
	// A silent root: a socket that counts what it gets and never answers.
	root, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loAddr(81), port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	clk := newFakeClock()
	mr := newEngineWith(t, Config{Listen: []netip.AddrPort{netip.AddrPortFrom(loAddr(80), port)},
		MapResolver: &MapResolverConfig{DDTRoots: []netip.AddrPort{netip.AddrPortFrom(loAddr(81), port)}, DDTPort: port}},
		nil, slowpath.Options{Clock: clk.Now})
	itr, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loAddr(82), port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { itr.Close() })
	tr := &ddtTree{port: port, mr: mr, clk: clk, itr: itr, itrAddr: loAddr(82)}
	readDDT := func() {
		t.Helper()
		buf := make([]byte, 9216)
		root.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := root.Read(buf)
		if err != nil {
			t.Fatalf("root got nothing: %v", err)
		}
		var e wire.ECM
		if err := e.Parse(buf[:n]); err != nil || !e.DDT {
			t.Fatalf("root got %x: %v (want an ECM with the D bit)", buf[:n], err)
		}
	}
	n := tr.ask(t, "10.1.2.3")
	readDDT()
	tick(t, mr, clk, time.Second)
	readDDT()
	tick(t, mr, clk, 2*time.Second)
	checkNegative(t, tr.reply(t, n), "10.1.2.3/32", wire.ActionSendMapRequest)
	if st, _, _ := mr.DDTResolverStats(); st.TimedOut != 1 || st.Resolutions != 1 {
		t.Fatalf("timed out %d of %d resolutions, want 1 of 1", st.TimedOut, st.Resolutions)
	}
}

// TestDDTResolverForeignReferral: a Map-Referral with a pending nonce from
// an address the request did not go to is ignored, counted; the one from
// the asked root is taken.
func TestDDTResolverForeignReferral(t *testing.T) {
	mr, tr, root, forger, n := askOneRoot(t, 90, "10.1.2.3")
	referral := func(prefix string) []byte {
		p := netip.MustParsePrefix(prefix)
		m := wire.MapReferral{Nonce: n, Records: []wire.Record{{TTL: 10, MaskLen: uint8(p.Bits()),
			Action: wire.Action(wire.ReferralDelegationHole), Authoritative: true, EID: slowpath.EIDAddress(0, p.Addr())}}}
		b, err := m.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := forger.WriteToUDPAddrPort(referral("10.0.0.0/8"), mr.Addr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the forged referral counted", func() bool { st, _, _ := mr.DDTResolverStats(); return st.Unmatched == 1 })
	if _, err := root.WriteToUDPAddrPort(referral("10.1.0.0/16"), mr.Addr()); err != nil {
		t.Fatal(err)
	}
	checkNegative(t, tr.reply(t, n), "10.1.0.0/16", wire.ActionNativelyForward)
	if st, cached, _ := mr.DDTResolverStats(); st.Referrals[wire.ReferralDelegationHole] != 1 || cached != 1 {
		t.Fatalf("holes taken %d, cached %d; want 1, 1", st.Referrals[wire.ReferralDelegationHole], cached)
	}
}

// TestDDTResolverRandomInput: 20000 random mutations and truncations of
// Map-Requests (plain ECMs, which start resolutions, and DDT ones, which a
// resolver leaves alone) and of Map-Referrals fed to a DDT Map-Resolver:
// nothing panics, bad and foreign referrals are counted, the pending
// resolutions stay bounded, and a good request afterwards starts a
// resolution.
func TestDDTResolverRandomInput(t *testing.T) {
	port, listen := loopbackPort(t)
	listen(101) // the root exists, so requests to it are not refused
	mr := newEngineWith(t, Config{RateLimit: RateLimitConfig{Off: true},
		MapResolver: &MapResolverConfig{DDTRoots: []netip.AddrPort{netip.AddrPortFrom(loAddr(101), port)}, DDTPort: port}},
		nil, slowpath.Options{Clock: newFakeClock().Now})
	seeds := ddtSeeds(t)
	for _, s := range seeds[:4] {
		var e wire.ECM
		if err := e.Parse(s); err != nil {
			t.Fatal(err)
		}
		e.DDT = false
		b, err := e.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	hole := wire.MapReferral{Nonce: wire.Nonce{1, 2}, Records: []wire.Record{{TTL: 10, MaskLen: 16,
		Action: wire.Action(wire.ReferralDelegationHole), EID: slowpath.EIDAddress(0, netip.MustParseAddr("10.1.0.0"))}}}
	hb, err := hole.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	seeds = append(seeds, hb)
	rng := rand.New(rand.NewPCG(14, 73))
	for range 20000 {
		m := append([]byte(nil), seeds[rng.IntN(len(seeds))]...)
		for range 1 + rng.IntN(4) {
			m[rng.IntN(len(m))] = byte(rng.Uint32())
		}
		m = m[:rng.IntN(len(m)+1)]
		feed(mr, m)
	}
	feed(mr, hb) // whole, from an address no request went to
	st, _, _ := mr.DDTResolverStats()
	if st.Resolutions == 0 || st.BadReferrals == 0 || st.Unmatched == 0 {
		t.Fatalf("noise not seen: %+v", st)
	}
	if p := mr.Stats().Msg(wire.TypeMapReferral); p.BadParse == 0 {
		t.Fatalf("bad Map-Referrals not counted: %+v", p)
	}
	req := wire.MapRequest{Nonce: wire.Nonce{0xee, 0xee}, ITRRLOCs: []wire.Address{wire.IPAddress(lo4)},
		Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(netip.MustParseAddr("10.1.2.3"))}}}
	rb, _ := req.Append(nil)
	good := wire.ECM{Src: lo4, Dst: netip.MustParseAddr("10.1.2.3"), SrcPort: 9, DstPort: 4342, TTL: 64, Message: rb}
	gb, _ := good.Append(nil)
	feed(mr, gb)
	if after, _, _ := mr.DDTResolverStats(); after.Resolutions != st.Resolutions+1 {
		t.Fatalf("a good request after the noise: resolutions %d -> %d", st.Resolutions, after.Resolutions)
	}
}

// TestDDTResolverLocalFirst: on a router that is Map-Server and DDT
// Map-Resolver, a registered EID is answered by the local Map-Server
// without DDT; an EID it cannot answer is resolved through the roots.
func TestDDTResolverLocalFirst(t *testing.T) {
	probe, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	probe.Close()
	root, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loAddr(111), port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	c := msConfig(siteConfig("a", "10.1.0.0/16", true))
	c.Listen = []netip.AddrPort{netip.AddrPortFrom(loAddr(110), port)}
	c.MapResolver.DDTRoots, c.MapResolver.DDTPort = []netip.AddrPort{netip.AddrPortFrom(loAddr(111), port)}, port
	msmr := newEngine(t, c, nil)
	etr := newEngine(t, Config{ETR: etrConfig(msmr.Addr(), testKey, mapping("10.1.2.0/25", "192.0.2.1"))}, nil)
	waitFor(t, 5*time.Second, "registration", func() bool { return etr.Stats().RegisterNotified >= 1 })
	itr, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loAddr(112), port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { itr.Close() })
	tr := &ddtTree{port: port, mr: msmr, itr: itr, itrAddr: loAddr(112)}
	n := tr.ask(t, "10.1.2.9")
	if r := tr.reply(t, n); len(r.Locators) != 1 {
		t.Fatalf("local answer %+v", r)
	}
	if st, _, _ := msmr.DDTResolverStats(); st.Resolutions != 0 {
		t.Fatalf("DDT resolutions %d for a registered EID, want 0", st.Resolutions)
	}
	tr.ask(t, "10.1.2.200")
	buf := make([]byte, 9216)
	root.SetReadDeadline(time.Now().Add(5 * time.Second))
	k, err := root.Read(buf)
	if err != nil {
		t.Fatalf("root asked nothing: %v", err)
	}
	var e wire.ECM
	if err := e.Parse(buf[:k]); err != nil || !e.DDT {
		t.Fatalf("root got %x: %v", buf[:k], err)
	}
	if st, _, _ := msmr.DDTResolverStats(); st.Resolutions != 1 {
		t.Fatalf("DDT resolutions %d, want 1", st.Resolutions)
	}
}

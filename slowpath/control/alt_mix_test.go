package control

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/gaissmai/bart"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/resolver"
	"github.com/rloc-router/rloc/wire"
)

// fakeALT stands in for the ALT router role at a Map-Resolver (the real
// one needs a TUN, a raw GRE socket and BGP sessions; e2e TestALT runs it):
// its table is a fixed list of routes, and a Map-Request it is asked to
// route is answered at once with a Map-Reply to the ITR whose locator is
// altRLOC, so the ITR sees that the ALT carried it.
type fakeALT struct {
	routes []netip.Prefix
	table  bart.Table[struct{}]
	conn   *net.UDPConn
	itr    netip.AddrPort

	mu     sync.Mutex
	routed []netip.Addr
}

var altRLOC = netip.MustParseAddr("192.0.2.99")

func newFakeALT(t *testing.T, itr netip.AddrPort, routes ...string) *fakeALT {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f := &fakeALT{conn: c, itr: itr}
	for _, r := range routes {
		p := netip.MustParsePrefix(r)
		f.routes = append(f.routes, p)
		f.table.Insert(p, struct{}{})
	}
	return f
}

// Lookup implements resolver.ALTLookup: the longest route holding addr,
// as from neighbour 10.255.0.1 with AS path 65001 65102.
func (f *fakeALT) Lookup(iid uint32, addr netip.Addr) (resolver.ALTRoute, bool) {
	var best netip.Prefix
	for _, p := range f.routes {
		if iid == 0 && p.Contains(addr) && (!best.IsValid() || p.Bits() > best.Bits()) {
			best = p
		}
	}
	if !best.IsValid() {
		return resolver.ALTRoute{}, false
	}
	return resolver.ALTRoute{Prefix: best, NextHop: netip.MustParseAddr("10.255.0.1"), ASPath: []uint32{65001, 65102}}, true
}

// Route implements resolver.ALT (event loop).
func (f *fakeALT) Route(m *slowpath.Msg, iid uint32, addr netip.Addr) bool {
	r, ok := f.Lookup(iid, addr)
	if !ok {
		return false
	}
	f.mu.Lock()
	f.routed = append(f.routed, addr)
	f.mu.Unlock()
	rep := wire.MapReply{Nonce: m.Request.Nonce, Records: []wire.Record{{TTL: 10, MaskLen: uint8(r.Prefix.Bits()),
		EID: wire.IPAddress(r.Prefix.Addr()), Locators: []wire.Locator{{Priority: 1, Weight: 100, Reachable: true,
			Address: wire.IPAddress(altRLOC)}}}}}
	if b, err := rep.Append(nil); err == nil {
		_, _ = f.conn.WriteToUDPAddrPort(b, f.itr)
	}
	return true
}

// Known implements resolver.ALT.
func (f *fakeALT) Known(iid uint32, out []slowpath.PrefixSet) []slowpath.PrefixSet {
	if iid != 0 {
		return out
	}
	return append(out, slowpath.BartSet[struct{}]{Table: &f.table})
}

func (f *fakeALT) sent() []netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]netip.Addr(nil), f.routed...)
}

// newMixTree is the DDT tree of newDDTTree whose Map-Resolver also has
// the ALT, with routes for 10.64.5.0/24 (inside the root's hole
// 10.64.0.0/10), 172.16.0.0/16 (outside the root's authority) and
// 10.1.0.0/16 (also delegated by DDT, to the child nodes).
func newMixTree(t *testing.T) (*ddtTree, *fakeALT) {
	tr := newDDTTree(t)
	f := newFakeALT(t, netip.AddrPortFrom(tr.itrAddr, tr.port), "10.64.5.0/24", "172.16.0.0/16", "10.1.0.0/16")
	if err := tr.mr.do(func() { tr.mr.mr.SetALT(f) }); err != nil {
		t.Fatal(err)
	}
	return tr, f
}

// checkETRReply checks that r is the ETR's answer (locator 192.0.2.1) for
// prefix.
func checkETRReply(t *testing.T, r *wire.Record, prefix string) {
	t.Helper()
	_, p, _ := r.Prefix()
	if p != netip.MustParsePrefix(prefix) || len(r.Locators) != 1 || r.Locators[0].Address.IP != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("reply %v %+v, want the ETR's for %s", p, r.Locators, prefix)
	}
}

// checkNone checks that nothing was sent into the ALT.
func (f *fakeALT) checkNone(t *testing.T) {
	t.Helper()
	if s := f.sent(); len(s) != 0 {
		t.Fatalf("sent into the ALT: %v", s)
	}
}

// checkALTReply checks that r is the fake ALT's answer for prefix.
func checkALTReply(t *testing.T, r *wire.Record, prefix string) {
	t.Helper()
	_, p, _ := r.Prefix()
	if p != netip.MustParsePrefix(prefix) || len(r.Locators) != 1 || r.Locators[0].Address.IP != altRLOC {
		t.Fatalf("reply %v %+v, want the ALT's answer for %s (locator %v)", p, r.Locators, prefix, altRLOC)
	}
}

// TestMixDDTOnly: a Map-Resolver with DDT roots and the ALT resolves an
// EID only DDT knows through DDT (root → child → Map-Server → ETR); the
// ALT is not asked.
func TestMixDDTOnly(t *testing.T) {
	tr, f := newMixTree(t)
	n := tr.ask(t, "10.1.3.7")
	checkETRReply(t, tr.reply(t, n), "10.1.3.0/24")
	waitFor(t, 5*time.Second, "MS-ACK", func() bool { _, _, acked := tr.stats(t); return acked == 1 })
	f.checkNone(t)
}

// TestMixALTOnly: EIDs DDT does not delegate but the ALT has a route for
// go into the ALT after DDT's answer: a DELEGATION-HOLE from the root
// (10.64.5.1), the hole from the referral cache without asking the root
// again (10.64.5.7), NOT-AUTHORITATIVE for an EID outside the root's
// authority (172.16.1.1). The Map-Resolver records each with its ALT
// route and DDT's answer (what lig --alt-path shows), the last 64.
func TestMixALTOnly(t *testing.T) {
	tr, f := newMixTree(t)
	n := tr.ask(t, "10.64.5.1")
	checkALTReply(t, tr.reply(t, n), "10.64.5.0/24")
	holes := nodeStats(t, tr.root).Stats.DelegationHoles
	if holes != 1 {
		t.Fatalf("root holes %d, want 1", holes)
	}
	n = tr.ask(t, "10.64.5.7")
	checkALTReply(t, tr.reply(t, n), "10.64.5.0/24")
	if h := nodeStats(t, tr.root).Stats.DelegationHoles; h != holes {
		t.Fatalf("root asked again for a cached hole: %d holes, was %d", h, holes)
	}
	n = tr.ask(t, "172.16.1.1")
	checkALTReply(t, tr.reply(t, n), "172.16.0.0/16")
	if s := f.sent(); len(s) != 3 {
		t.Fatalf("sent into the ALT: %v, want 3", s)
	}
	st, _, _ := tr.mr.DDTResolverStats()
	if st.ALT != 3 || st.Resolutions != 2 || st.NegativeHits != 1 {
		t.Fatalf("DDT: %d to the ALT, %d resolutions, %d negative hits; want 3, 2, 1", st.ALT, st.Resolutions, st.NegativeHits)
	}
	sent := tr.mr.ALTSent()
	if len(sent) != 3 {
		t.Fatalf("recorded %d Map-Requests sent into the ALT, want 3: %+v", len(sent), sent)
	}
	want := []struct {
		eid, route, ddt string
		typ             wire.ReferralType
	}{
		{"10.64.5.1", "10.64.5.0/24", "10.64.0.0/10", wire.ReferralDelegationHole},
		{"10.64.5.7", "10.64.5.0/24", "10.64.0.0/10", wire.ReferralDelegationHole},
		{"172.16.1.1", "172.16.0.0/16", "172.16.1.1/32", wire.ReferralNotAuthoritative},
	}
	for i, w := range want {
		s := sent[i]
		if s.EID.String() != w.eid || s.Route.Prefix.String() != w.route || s.DDT != w.typ || s.DDTPrefix.String() != w.ddt ||
			s.Route.NextHop.String() != "10.255.0.1" || len(s.Route.ASPath) != 2 {
			t.Errorf("sent %d: %+v, want EID %s by %s after %v %s", i, s, w.eid, w.route, w.typ, w.ddt)
		}
	}
	// The record keeps the last 64, oldest first: 62 more make 65, the
	// first (10.64.5.1) is gone.
	for i := range 62 {
		n = tr.ask(t, netip.AddrFrom4([4]byte{10, 64, 5, byte(100 + i)}).String())
		checkALTReply(t, tr.reply(t, n), "10.64.5.0/24")
	}
	sent = tr.mr.ALTSent()
	if len(sent) != 64 || sent[0].EID.String() != "10.64.5.7" || sent[1].EID.String() != "172.16.1.1" || sent[63].EID.String() != "10.64.5.161" {
		t.Fatalf("after 65 sent: %d recorded, first %v %v, last %v; want 64, 10.64.5.7 172.16.1.1, 10.64.5.161", len(sent), sent[0].EID, sent[1].EID, sent[len(sent)-1].EID)
	}
}

// TestMixNeither: an EID neither DDT nor the ALT knows gets DDT's
// negative answer, its prefix narrowed so that it holds no ALT route: the
// root's hole 10.64.0.0/10 holds the ALT's 10.64.5.0/24, so 10.64.9.1
// gets 10.64.8.0/21 and (from the cached hole) 10.65.0.1 gets
// 10.65.0.0/16, native-forward both; an EID outside the root's authority
// and the ALT gets NOT-AUTHORITATIVE's reply for the EID alone.
func TestMixNeither(t *testing.T) {
	tr, f := newMixTree(t)
	n := tr.ask(t, "10.64.9.1")
	checkNegative(t, tr.reply(t, n), "10.64.8.0/21", wire.ActionNativelyForward)
	n = tr.ask(t, "10.65.0.1")
	checkNegative(t, tr.reply(t, n), "10.65.0.0/16", wire.ActionNativelyForward)
	n = tr.ask(t, "192.168.1.1")
	checkNegative(t, tr.reply(t, n), "192.168.1.1/32", wire.ActionSendMapRequest)
	f.checkNone(t)
	if st, _, _ := tr.mr.DDTResolverStats(); st.Narrowed != 2 || st.NegativeHits != 1 {
		t.Fatalf("narrowed %d, negative hits %d; want 2, 1", st.Narrowed, st.NegativeHits)
	}
	// The hole outside the ALT's routes keeps DDT's prefix: 10.64.0.0/10
	// less the /21 around 10.64.5.0/24 is not a prefix, so an EID far
	// from it (10.96.0.1) gets the largest prefix in the hole without it.
	n = tr.ask(t, "10.96.0.1")
	checkNegative(t, tr.reply(t, n), "10.96.0.0/11", wire.ActionNativelyForward)
}

// TestMixBoth: an EID both DDT and the ALT know (DDT delegates
// 10.1.0.0/16, the ALT has a route for it) is resolved by DDT, which is
// asked first: the ETR's reply, nothing sent into the ALT; DDT's
// MS-NOT-REGISTERED inside it is final (negative reply for DDT's prefix),
// not handed to the ALT.
func TestMixBoth(t *testing.T) {
	tr, f := newMixTree(t)
	n := tr.ask(t, "10.1.2.5")
	checkETRReply(t, tr.reply(t, n), "10.1.2.0/25")
	n = tr.ask(t, "10.1.2.200")
	checkNegative(t, tr.reply(t, n), "10.1.2.128/25", wire.ActionSendMapRequest)
	f.checkNone(t)
	if st, _, _ := tr.mr.DDTResolverStats(); st.ALT != 0 || st.Resolutions != 2 {
		t.Fatalf("DDT: %d to the ALT, %d resolutions; want 0, 2", st.ALT, st.Resolutions)
	}
}

// TestMixRemoteMapServer: a configured remote Map-Server covering the EID
// comes before DDT and the ALT (static configuration, the operator's
// explicit choice): a Map-Resolver with DDT roots, the ALT (a route for
// 10.1.0.0/16) and the tree's Map-Server configured for 10.1.3.0/24
// forwards 10.1.3.7 to it directly (the ETR answers), with no DDT
// resolution and nothing sent into the ALT.
func TestMixRemoteMapServer(t *testing.T) {
	tr := newDDTTree(t)
	at := func(i byte) []netip.AddrPort { return []netip.AddrPort{netip.AddrPortFrom(loAddr(i), tr.port)} }
	mr := newEngineWith(t, Config{Listen: at(60), MapResolver: &MapResolverConfig{DDTRoots: at(52), DDTPort: tr.port,
		MapServers: []slowpath.RemoteMapServer{{Addr: tr.ms.Addr(), Prefixes: []slowpath.EIDPrefix{{Prefix: netip.MustParsePrefix("10.1.3.0/24")}}}}}},
		nil, slowpath.Options{Clock: tr.clk.Now})
	f := newFakeALT(t, netip.AddrPortFrom(tr.itrAddr, tr.port), "10.1.0.0/16")
	if err := mr.do(func() { mr.mr.SetALT(f) }); err != nil {
		t.Fatal(err)
	}
	tr.mr = mr
	n := tr.ask(t, "10.1.3.7")
	checkETRReply(t, tr.reply(t, n), "10.1.3.0/24")
	if st, _, _ := mr.DDTResolverStats(); st.Resolutions != 0 {
		t.Fatalf("DDT resolutions %d, want 0", st.Resolutions)
	}
	f.checkNone(t)
}

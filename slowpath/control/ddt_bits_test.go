package control

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/resolver"
	"github.com/rloc-router/rloc/wire"
)

// fakeDDT is a scripted DDT node or Map-Server: a socket that reads the
// resolver's DDT Map-Requests and sends the Map-Referrals a test writes.
type fakeDDT struct {
	t    *testing.T
	c    *net.UDPConn
	addr netip.Addr
}

func newFakeDDT(t *testing.T, i byte, port uint16) *fakeDDT {
	return &fakeDDT{t: t, c: listenLo(t, i, port), addr: loAddr(i)}
}

// asked reads the next DDT Map-Request and returns its nonce and the
// resolver's address.
func (f *fakeDDT) asked() (wire.Nonce, netip.AddrPort) {
	f.t.Helper()
	buf := make([]byte, 9216)
	f.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	k, from, err := f.c.ReadFromUDPAddrPort(buf)
	if err != nil {
		f.t.Fatalf("%v asked nothing: %v", f.addr, err)
	}
	var e wire.ECM
	var req wire.MapRequest
	if err := e.Parse(buf[:k]); err != nil || !e.DDT || req.Parse(e.Message) != nil {
		f.t.Fatalf("%v got %x: %v (want a DDT Map-Request)", f.addr, buf[:k], err)
	}
	return req.Nonce, from
}

// refRec is a referral record for prefix with the given type, A and I
// bits and targets (priority = index + 1).
func refRec(prefix string, typ wire.ReferralType, auth, incomplete bool, targets ...netip.Addr) wire.Record {
	p := netip.MustParsePrefix(prefix)
	r := wire.Record{TTL: 60, MaskLen: uint8(p.Bits()), Action: wire.Action(typ), Authoritative: auth, Incomplete: incomplete,
		EID: slowpath.EIDAddress(0, p.Addr())}
	for i, a := range targets {
		r.Locators = append(r.Locators, wire.Locator{Priority: uint8(i + 1), Weight: 100, MPriority: 255, Reachable: true, Address: wire.IPAddress(a)})
	}
	return r
}

// answer sends a Map-Referral with rec for nonce n to the resolver.
func (f *fakeDDT) answer(to netip.AddrPort, n wire.Nonce, rec wire.Record) {
	f.t.Helper()
	b, err := (&wire.MapReferral{Nonce: n, Records: []wire.Record{rec}}).Append(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.c.WriteToUDPAddrPort(b, to); err != nil {
		f.t.Fatal(err)
	}
}

// TestDDTResolverReferralBits: the resolver acts on what a referral says
// about itself (RFC 8111 §6.4, §7.3.1), against scripted nodes:
//   - a NODE-REFERRAL with the I bit (incomplete referral set) is followed
//     but not cached; a DELEGATION-HOLE with the A bit clear answers the
//     EID alone and is not cached;
//   - MS-NOT-REGISTERED from the first Map-Server of a referral set sends
//     the request to the second at once, whose MS-ACK ends it; the
//     complete referral set of an MS-NOT-REGISTERED (I clear) is asked
//     too, each Map-Server once;
//   - NOT-AUTHORITATIVE from a Map-Server found through the cache drops
//     that entry and asks the root again;
//   - a referral for a prefix that does not hold the EID is dropped,
//     counted, and the genuine one is still taken;
//   - a referral back to the node it came from for the same prefix (a
//     loop) ends with a negative reply, counted;
//   - 3000 referrals with unknown nonces are counted and leave no state.
func TestDDTResolverReferralBits(t *testing.T) {
	port := ddtPort(t)
	root, child, ms1, ms2 := newFakeDDT(t, 131, port), newFakeDDT(t, 132, port), newFakeDDT(t, 133, port), newFakeDDT(t, 134, port)
	clk := newFakeClock()
	mr := newEngineWith(t, Config{Listen: []netip.AddrPort{netip.AddrPortFrom(loAddr(130), port)}, MapResolver: &MapResolverConfig{
		DDTRoots: []netip.AddrPort{netip.AddrPortFrom(root.addr, port)}, DDTPort: port}}, nil, slowpath.Options{Clock: clk.Now})
	tr := &ddtTree{port: port, mr: mr, clk: clk, itr: listenLo(t, 135, port), itrAddr: loAddr(135)}
	stats := func() (resolver.DDTStats, int) { st, c, _ := mr.DDTResolverStats(); return st, c }

	// I bit: followed, not cached; the child's hole (A set, I clear) is.
	n := tr.ask(t, "10.1.0.1")
	rn, from := root.asked()
	root.answer(from, rn, refRec("10.1.0.0/16", wire.ReferralNode, true, true, child.addr))
	cn, from := child.asked()
	if cn != rn {
		t.Fatalf("child asked with nonce %x, want %x", cn, rn)
	}
	child.answer(from, cn, refRec("10.1.0.0/16", wire.ReferralDelegationHole, true, false))
	checkNegative(t, tr.reply(t, n), "10.1.0.0/16", wire.ActionNativelyForward)
	if st, cached := stats(); cached != 1 || st.NotCached != 1 {
		t.Fatalf("incomplete referral: %d cached, %d not cached; want 1 (the hole), 1", cached, st.NotCached)
	}

	// A bit clear: the hole answers the EID alone, not cached.
	n = tr.ask(t, "10.2.0.1")
	rn, from = root.asked()
	root.answer(from, rn, refRec("10.2.0.0/16", wire.ReferralDelegationHole, false, false))
	checkNegative(t, tr.reply(t, n), "10.2.0.1/32", wire.ActionNativelyForward)
	if st, cached := stats(); cached != 1 || st.NotCached != 2 {
		t.Fatalf("non-authoritative hole: %d cached, %d not cached; want 1, 2", cached, st.NotCached)
	}

	// MS-NOT-REGISTERED from ms1: ms2 is asked at once; its MS-ACK ends it.
	tr.ask(t, "10.3.0.9")
	rn, from = root.asked()
	root.answer(from, rn, refRec("10.3.0.0/16", wire.ReferralMS, true, false, ms1.addr, ms2.addr))
	mn, from := ms1.asked()
	ms1.answer(from, mn, refRec("10.3.0.0/24", wire.ReferralMSNotRegistered, true, true))
	mn, from = ms2.asked()
	ms2.answer(from, mn, refRec("10.3.0.0/24", wire.ReferralMSAck, true, true))
	waitFor(t, 5*time.Second, "MS-ACK", func() bool { st, _ := stats(); return st.Acked == 1 })
	if st, cached := stats(); st.NotRegisteredNext != 1 || cached != 2 {
		t.Fatalf("not registered at ms1: next %d, cached %d; want 1, 2", st.NotRegisteredNext, cached)
	}

	// The cached MS-REFERRAL leads to ms1, which is no longer
	// authoritative: the entry goes, the root is asked again.
	n = tr.ask(t, "10.3.0.10")
	mn, from = ms1.asked()
	ms1.answer(from, mn, refRec("10.3.0.10/32", wire.ReferralNotAuthoritative, false, true))
	rn, from = root.asked()
	if rn != mn {
		t.Fatalf("root asked again with nonce %x, want %x", rn, mn)
	}
	root.answer(from, rn, refRec("10.3.0.0/16", wire.ReferralDelegationHole, true, false))
	checkNegative(t, tr.reply(t, n), "10.3.0.0/16", wire.ActionNativelyForward)
	if st, _ := stats(); st.Stale != 1 || st.CacheHits != 1 {
		t.Fatalf("stale referral: %d stale, %d cache hits; want 1, 1", st.Stale, st.CacheHits)
	}

	// A referral for a prefix without the EID: dropped, counted; the
	// right one is taken.
	n = tr.ask(t, "10.4.0.1")
	rn, from = root.asked()
	root.answer(from, rn, refRec("10.9.0.0/16", wire.ReferralDelegationHole, true, false))
	waitFor(t, 5*time.Second, "the referral outside the EID", func() bool { st, _ := stats(); return st.Outside == 1 })
	root.answer(from, rn, refRec("10.4.0.0/16", wire.ReferralDelegationHole, true, false))
	checkNegative(t, tr.reply(t, n), "10.4.0.0/16", wire.ActionNativelyForward)

	// A loop: the child refers 10.5.0.0/16 back to the root.
	n = tr.ask(t, "10.5.0.1")
	rn, from = root.asked()
	root.answer(from, rn, refRec("10.5.0.0/16", wire.ReferralNode, true, false, child.addr))
	cn, from = child.asked()
	child.answer(from, cn, refRec("10.5.0.0/16", wire.ReferralNode, true, false, root.addr))
	checkNegative(t, tr.reply(t, n), "10.5.0.1/32", wire.ActionSendMapRequest)
	if st, _ := stats(); st.NoProgress != 1 {
		t.Fatalf("loop: no progress %d, want 1", st.NoProgress)
	}

	// The referral set of an MS-NOT-REGISTERED with the I bit clear: the
	// root names ms1 only, ms1 names itself and ms2, so ms2 is asked; its
	// MS-NOT-REGISTERED names the same two, both asked: negative reply.
	n = tr.ask(t, "10.9.0.1")
	rn, from = root.asked()
	root.answer(from, rn, refRec("10.9.0.0/16", wire.ReferralMS, true, true, ms1.addr))
	mn, from = ms1.asked()
	ms1.answer(from, mn, refRec("10.9.0.0/24", wire.ReferralMSNotRegistered, true, false, ms1.addr, ms2.addr))
	mn, from = ms2.asked()
	ms2.answer(from, mn, refRec("10.9.0.0/24", wire.ReferralMSNotRegistered, true, false, ms1.addr, ms2.addr))
	checkNegative(t, tr.reply(t, n), "10.9.0.0/24", wire.ActionSendMapRequest)
	if st, cached := stats(); st.NotRegisteredNext != 2 || cached != 5 {
		t.Fatalf("referral set: next %d, cached %d; want 2, 5 (the negative /24 added)", st.NotRegisteredNext, cached)
	}

	// A flood of referrals with unknown nonces: counted, no state kept.
	before, _ := stats()
	for i := range 3000 {
		root.answer(from, wire.Nonce{0xf1, byte(i >> 8), byte(i)}, refRec("10.6.0.0/16", wire.ReferralDelegationHole, true, false))
	}
	waitFor(t, 10*time.Second, "the flood counted", func() bool {
		st, _ := stats()
		return st.Unmatched+mr.Stats().Msg(wire.TypeMapReferral).RateLimited >= before.Unmatched+3000
	})
	if l, pending, _ := mr.DDTPending(10); pending != 0 || len(l) != 0 {
		t.Fatalf("after the flood: %d pending", pending)
	}
	if _, cached := stats(); cached != 5 { // the holes 10.1/16, 10.3/16, 10.4/16, the referral 10.5/16, 10.9.0/24
		t.Fatalf("after the flood: %d cached, want 5", cached)
	}
}

// TestDDTResolverConfigured: the hop bound, retransmission interval and
// tries per target come from map_resolver.ddt: with max_hops 2 the third
// referral of a chain ends the resolution (counted); with one try of 3 s
// per target a silent root gives a negative reply after 3 s (the default
// would retransmit after 1 s and give up after 3 s more); meanwhile the
// pending list shows the resolution, its target and tries.
func TestDDTResolverConfigured(t *testing.T) {
	port := ddtPort(t)
	root, n1, n2 := newFakeDDT(t, 141, port), newFakeDDT(t, 142, port), newFakeDDT(t, 143, port)
	clk := newFakeClock()
	mr := newEngineWith(t, Config{Listen: []netip.AddrPort{netip.AddrPortFrom(loAddr(140), port)}, MapResolver: &MapResolverConfig{
		DDTRoots: []netip.AddrPort{netip.AddrPortFrom(root.addr, port)}, DDTPort: port,
		DDT: slowpath.DDTResolverConfig{MaxHops: 2, RetransmitInterval: 3 * time.Second, TriesPerTarget: 1}}},
		nil, slowpath.Options{Clock: clk.Now})
	tr := &ddtTree{port: port, mr: mr, clk: clk, itr: listenLo(t, 144, port), itrAddr: loAddr(144)}

	n := tr.ask(t, "10.7.1.1")
	rn, from := root.asked()
	root.answer(from, rn, refRec("10.7.0.0/16", wire.ReferralNode, true, false, n1.addr))
	rn, from = n1.asked()
	n1.answer(from, rn, refRec("10.7.1.0/24", wire.ReferralNode, true, false, n2.addr))
	rn, from = n2.asked()
	n2.answer(from, rn, refRec("10.7.1.0/28", wire.ReferralNode, true, false, root.addr))
	checkNegative(t, tr.reply(t, n), "10.7.1.1/32", wire.ActionSendMapRequest)
	if st, _, _ := mr.DDTResolverStats(); st.TooLong != 1 {
		t.Fatalf("too long %d, want 1", st.TooLong)
	}

	n = tr.ask(t, "10.8.0.1")
	root.asked()
	l, pending, _ := mr.DDTPending(10)
	if pending != 1 || len(l) != 1 || l[0].EID != netip.MustParseAddr("10.8.0.1") || l[0].Tries != 1 ||
		l[0].Target != netip.AddrPortFrom(root.addr, port) || l[0].Delegation.IsValid() {
		t.Fatalf("pending %d: %+v", pending, l)
	}
	tick(t, mr, clk, 3*time.Second)
	checkNegative(t, tr.reply(t, n), "10.8.0.1/32", wire.ActionSendMapRequest)
	if st, _, _ := mr.DDTResolverStats(); st.TimedOut != 1 {
		t.Fatalf("timed out %d, want 1", st.TimedOut)
	}
}

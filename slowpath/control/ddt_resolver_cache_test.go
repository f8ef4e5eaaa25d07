package control

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// TestDDTResolverCacheExpiry: the resolver's referral cache ages on the
// resolver's clock (a fake one here). A cached DELEGATION-HOLE (15 minutes
// by default) answers the next EID in the hole until it expires, then the
// root is asked again; the cached NODE-REFERRAL and MS-REFERRAL (24 hours)
// send a resolution straight to the Map-Server until they expire, then it
// starts at the root again and goes through the child node.
func TestDDTResolverCacheExpiry(t *testing.T) {
	tr := newDDTTree(t)
	tr.firstResolution(t)
	acked := uint64(1)
	resolve := func(eid string) {
		t.Helper()
		tr.reply(t, tr.ask(t, eid))
		acked++
		waitFor(t, 5*time.Second, "MS-ACK", func() bool { _, _, a := tr.stats(t); return a == acked })
	}
	referrals := func() (root, holes, child uint64) {
		t.Helper()
		r := nodeStats(t, tr.root).Stats
		return r.NodeReferrals, r.DelegationHoles, nodeStats(t, tr.c1).Stats.MSReferrals
	}

	checkNegative(t, tr.reply(t, tr.ask(t, "10.64.1.1")), "10.64.0.0/10", wire.ActionNativelyForward)
	_, holes, _ := referrals()

	// 14 minutes on: the hole and the referrals are still cached.
	tick(t, tr.mr, tr.clk, 14*time.Minute)
	checkNegative(t, tr.reply(t, tr.ask(t, "10.65.0.1")), "10.64.0.0/10", wire.ActionNativelyForward)
	resolve("10.1.2.77")
	if r, h, c := referrals(); r != 1 || h != holes || c != 1 {
		t.Fatalf("after 14 min: root referrals %d holes %d (was %d), child MS referrals %d; want all from the cache", r, h, holes, c)
	}

	// 16 minutes on: the hole has expired and the root is asked again;
	// the referrals (24 h) still hold.
	tick(t, tr.mr, tr.clk, 2*time.Minute)
	checkNegative(t, tr.reply(t, tr.ask(t, "10.65.0.2")), "10.64.0.0/10", wire.ActionNativelyForward)
	resolve("10.1.2.78")
	if r, h, c := referrals(); r != 1 || h != holes+1 || c != 1 {
		t.Fatalf("after 16 min: root referrals %d holes %d (want %d), child MS referrals %d", r, h, holes+1, c)
	}

	// A day on: the NODE-REFERRAL and the MS-REFERRAL have expired; the
	// next resolution goes root → child → Map-Server again.
	tick(t, tr.mr, tr.clk, 24*time.Hour)
	resolve("10.1.2.79")
	if r, _, c := referrals(); r != 2 || c != 2 {
		t.Fatalf("after a day: root referrals %d, child MS referrals %d; want 2 and 2", r, c)
	}
}

// TestDDTResolverPendingNonceFlood: the asked root answers a pending
// resolution with 500 copies of the same NODE-REFERRAL (the pending nonce,
// from the asked address). The resolver follows the first: one request to
// the child node, one resolution, one cached referral. The other 499 match
// no pending request any more (counted as unmatched, or dropped by the
// rate limit): no further request to the child, no second resolution, and
// the pending list holds the one resolution until the child answers.
func TestDDTResolverPendingNonceFlood(t *testing.T) {
	mr, _, root, child, n := askOneRoot(t, 94, "10.1.2.3")
	m := wire.MapReferral{Nonce: n, Records: []wire.Record{{TTL: 10, MaskLen: 16,
		Action: wire.Action(wire.ReferralNode), Authoritative: true,
		EID:      slowpath.EIDAddress(0, netip.MustParseAddr("10.1.0.0")),
		Locators: []wire.Locator{{Priority: 1, Weight: 100, Reachable: true, Address: wire.IPAddress(loAddr(96))}}}}}
	ref, err := m.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	before := mr.Stats().Msg(wire.TypeMapReferral).RateLimited
	const flood = 500
	for range flood {
		if _, err := root.WriteToUDPAddrPort(ref, mr.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the flood handled", func() bool {
		st, _, _ := mr.DDTResolverStats()
		return st.Referrals[wire.ReferralNode]+st.Unmatched+mr.Stats().Msg(wire.TypeMapReferral).RateLimited-before >= flood
	})
	st, cached, _ := mr.DDTResolverStats()
	if st.Referrals[wire.ReferralNode] != 1 || st.Resolutions != 1 || cached != 1 {
		t.Fatalf("node referrals taken %d, resolutions %d, cached %d; want 1, 1, 1 (%+v)", st.Referrals[wire.ReferralNode], st.Resolutions, cached, st)
	}
	if _, p, _ := mr.DDTPending(10); p != 1 {
		t.Fatalf("%d pending resolutions, want 1", p)
	}
	// Every referral has been handled, so any request the resolver sent
	// for them is already queued at the child: exactly one.
	if _, err := readDDTRequest(child, time.Now().Add(5*time.Second)); err != nil {
		t.Fatalf("the child node got no request: %v", err)
	}
	if req, err := readDDTRequest(child, time.Now().Add(50*time.Millisecond)); err == nil {
		t.Fatalf("the child node got a second request: %+v", req)
	}
}

// askOneRoot starts a DDT Map-Resolver on 127.0.0.base whose one root is
// 127.0.0.base+1, with listeners there and on base+2 (another node) and
// base+3 (the ITR), asks it to resolve eid, and returns once the root has
// the resolver's request: the resolver, the ITR's view, the root and the
// other node's sockets, and the ITR's nonce.
func askOneRoot(t *testing.T, base byte, eid string) (*Engine, *ddtTree, *net.UDPConn, *net.UDPConn, wire.Nonce) {
	t.Helper()
	port, listen := loopbackPort(t)
	root, other, itr := listen(base+1), listen(base+2), listen(base+3)
	mr := newEngine(t, Config{Listen: []netip.AddrPort{netip.AddrPortFrom(loAddr(base), port)},
		MapResolver: &MapResolverConfig{DDTRoots: []netip.AddrPort{netip.AddrPortFrom(loAddr(base+1), port)}, DDTPort: port}}, nil)
	tr := &ddtTree{port: port, mr: mr, itr: itr, itrAddr: loAddr(base + 3)}
	n := tr.ask(t, eid)
	if req, err := readDDTRequest(root, time.Now().Add(5*time.Second)); err != nil || req.Nonce != n {
		t.Fatalf("root got %+v: %v", req, err)
	}
	return mr, tr, root, other, n
}

// loopbackPort picks a UDP port free on loopback and returns it with a
// function that listens on it at 127.0.0.i (closed when the test ends):
// scripted DDT nodes, Map-Servers and ITRs that a resolver under test
// talks to, each at its own loopback address.
func loopbackPort(t *testing.T) (uint16, func(i byte) *net.UDPConn) {
	t.Helper()
	probe, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(lo4Any))
	if err != nil {
		t.Fatal(err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	probe.Close()
	return port, func(i byte) *net.UDPConn {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loAddr(i), port)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
}

// readDDTRequest reads the next DDT Map-Request (in an ECM) arriving at c
// before deadline.
func readDDTRequest(c *net.UDPConn, deadline time.Time) (wire.MapRequest, error) {
	var e wire.ECM
	var req wire.MapRequest
	buf := make([]byte, 9216)
	c.SetReadDeadline(deadline)
	k, err := c.Read(buf)
	if err != nil {
		return req, err
	}
	if err := e.Parse(buf[:k]); err != nil {
		return req, err
	}
	return req, req.Parse(e.Message)
}

package control

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// TestDDTResolverEphemeralITR: an ITR asking the DDT Map-Resolver from an
// ephemeral port (as lig does) gets the ETR's positive Map-Reply at that
// port. The resolver keeps the ITR's inner source port in the ECMs it
// sends down the tree, and the DDT nodes and the Map-Server send their
// Map-Referrals to the ECM's outer source (RFC 8111 §7.1, §7.2), the
// resolver's own port. Before, the resolver put its own port inside, the
// ETR answered there, and the ITR's socket got nothing (or, had the
// referrals followed the inner port, got them instead of the resolver).
func TestDDTResolverEphemeralITR(t *testing.T) {
	tr := newDDTTree(t)
	eph, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(tr.itrAddr, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eph.Close() })
	ephPort := eph.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	if ephPort == tr.port {
		t.Fatal("ephemeral port is the tree's port")
	}
	tr.itr, tr.port = eph, ephPort // askIID sends from it with its port inside; reply reads it

	tr.firstResolution(t) // reads eph: fails on anything but the Map-Reply (a Map-Referral, say)
	// The resolver's own negative answers (MS-NOT-REGISTERED) go there too.
	n := tr.ask(t, "10.1.2.200")
	checkNegative(t, tr.reply(t, n), "10.1.2.128/25", wire.ActionSendMapRequest)
}

// firstResolution asks for 10.1.2.9, two levels down, and checks the ETR's
// Map-Reply at the ITR, the MS-ACK and the root's one NODE-REFERRAL.
func (tr *ddtTree) firstResolution(t *testing.T) {
	t.Helper()
	r := tr.reply(t, tr.ask(t, "10.1.2.9"))
	if _, p, _ := r.Prefix(); p != netip.MustParsePrefix("10.1.2.0/25") || len(r.Locators) != 1 ||
		r.Locators[0].Address.IP != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("reply %v %+v", p, r.Locators)
	}
	waitFor(t, 5*time.Second, "MS-ACK", func() bool { _, _, acked := tr.stats(t); return acked == 1 })
	if l := nodeStats(t, tr.root); l.Stats.NodeReferrals != 1 {
		t.Fatalf("root referrals %d, want 1", l.Stats.NodeReferrals)
	}
}

package control

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// TestTreeJoinEvents: an RTR reports its children's tree joins (the
// Map-Registers of draft-coras-lisp-re trees) as registration events, like
// a Map-Server its registrations: accepted, rejected (bad key), expired.
func TestTreeJoinEvents(t *testing.T) {
	var log eventLog
	rtr, clk, tj := newTreeRTR(t, &log)
	src := netip.MustParseAddrPort("192.0.2.82:4342")
	join := func(k AuthKey) []byte { return tj(k, 3) }
	want := EIDPrefix{IID: 0, Prefix: grpEID}

	inject(t, rtr, src, join(mcKey))
	if info, _ := rtr.McastTree(0, srcEID, grpEID); len(info.Children) != 1 {
		t.Fatalf("child not joined: %+v", info)
	}
	if acc := log.of(EventRegistrationAccepted); len(acc) != 1 || acc[0].EID != want || acc[0].Source != src {
		t.Fatalf("accepted events %+v", acc)
	}

	bad := mcKey
	bad.Secret = "not-the-domain-key"
	inject(t, rtr, src, join(bad))
	if rej := log.of(EventRegistrationRejected); len(rej) != 1 || rej[0].Source != src || !strings.Contains(rej[0].Reason, "authentication") {
		t.Fatalf("rejected events %+v", rej)
	}

	// No refresh: the child expires JoinHold after its join, found at the
	// RTR's next refresh.
	clk.Add(10 * time.Second) // JoinHold is 3 × RegisterInterval, 6 s
	if err := rtr.Core().Tick(); err != nil {
		t.Fatal(err)
	}
	if info, _ := rtr.McastTree(0, srcEID, grpEID); len(info.Children) != 0 {
		t.Fatalf("child did not expire: %+v", info)
	}
	if exp := log.of(EventRegistrationExpired); len(exp) != 1 || exp[0].EID != want || exp[0].Source != src {
		t.Fatalf("expired events %+v", exp)
	}
}

// TestTreeJoinRefreshAndLeave: a child that refreshes its join within
// JoinHold stays a child past JoinHold after its first join; its leave (a
// join with TTL 0) removes it at once, without an expiry.
func TestTreeJoinRefreshAndLeave(t *testing.T) {
	var log eventLog
	rtr, clk, tj := newTreeRTR(t, &log)
	src := netip.MustParseAddrPort("192.0.2.82:4342")
	join := func(ttl uint32) []byte { return tj(mcKey, ttl) }
	children := func() int {
		info, _ := rtr.McastTree(0, srcEID, grpEID)
		return len(info.Children)
	}
	tick := func(d time.Duration) {
		clk.Add(d)
		if err := rtr.Core().Tick(); err != nil {
			t.Fatal(err)
		}
	}
	inject(t, rtr, src, join(3))
	tick(4 * time.Second) // JoinHold is 6 s
	inject(t, rtr, src, join(3))
	tick(4 * time.Second)
	if n := children(); n != 1 {
		t.Fatalf("refreshed child gone: %d children", n)
	}
	inject(t, rtr, src, join(0))
	if n := children(); n != 0 {
		t.Fatalf("child still there after its leave: %d children", n)
	}
	if exp := log.of(EventRegistrationExpired); len(exp) != 0 {
		t.Fatalf("expired events %+v", exp)
	}
}

// newTreeRTR starts a level-0 RTR of (srcEID, grpEID) at 192.0.2.81 on a
// fake clock, reporting events to log, and returns it with a maker of
// the joins of the child 192.0.2.82 (signed with k, record TTL ttl).
func newTreeRTR(t *testing.T, log *eventLog) (*Engine, *fakeClock, func(k AuthKey, ttl uint32) []byte) {
	r := newRig(t)
	clk := newFakeClock()
	c := r.mcConfig("192.0.2.81")
	c.MapServers = []MapServerPeer{{Addr: r.ms.Addr(), Key: testKey}}
	c.RTRs = []RTRGroup{{Source: srcEID, Group: grpEID, Level: 0}}
	rtr := newEngineWith(t, Config{Multicast: c, Events: log.add}, &mcInstaller{name: "rtr", seq: &r.seq}, slowpathOptions(clk))
	join := func(k AuthKey, ttl uint32) []byte {
		reg := wire.MapRegister{Merge: true, WantMapNotify: true, Nonce: newNonce(), Auth: wire.NewAuth(k.KeyID, k.Alg, false),
			Records: []wire.Record{sgRecord(newSGKey(0, srcEID, grpEID), ttl,
				[]wire.RLENode{{Level: 128, Address: wire.IPAddress(netip.MustParseAddr("192.0.2.82"))}})}}
		b, err := reg.AppendSigned(nil, []byte(k.Secret))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return rtr, clk, join
}

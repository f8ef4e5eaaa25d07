package bgp

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
)

// speakerOn starts a speaker listening on addr (a free port) with a
// recorder, stopped at the end of the test.
func speakerOn(t *testing.T, asn uint32, addr netip.Addr) (*Speaker, int, *recorder) {
	t.Helper()
	port := freePort(t, addr.String())
	rec := newRecorder()
	sp, err := Start(Config{ASN: asn, RouterID: addr, Listen: []netip.Addr{addr}, Port: port}, rec.handlers())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sp.Stop)
	return sp, port, rec
}

// TestVPNFamilies: three speakers on loopback. a originates the same EID
// prefix in two instance-IDs and an IPv6 one in the L3VPN families (RD
// 0:<iid>) and one unicast prefix; b negotiates the VPN families with a,
// c only unicast. b gets every route with its instance-ID, c only the
// unicast one; withdrawing one instance-ID's prefix leaves the other.
func TestVPNFamilies(t *testing.T) {
	la, lb, lc := netip.MustParseAddr("127.0.0.5"), netip.MustParseAddr("127.0.0.6"), netip.MustParseAddr("127.0.0.7")
	a, pa, _ := speakerOn(t, 65001, la)
	b, pb, rb := speakerOn(t, 65002, lb)
	c, pc, rc := speakerOn(t, 65003, lc)
	peer := func(sp *Speaker, local, remote netip.Addr, asn uint32, port int, vpn bool) {
		t.Helper()
		if err := sp.AddNeighbor(Neighbor{Address: remote, ASN: asn, Local: local, Port: port, ConnectRetry: time.Second, IPv6: true, VPN: vpn}); err != nil {
			t.Fatal(err)
		}
	}
	peer(a, la, lb, 65002, pb, true)
	peer(b, lb, la, 65001, pa, true)
	peer(a, la, lc, 65003, pc, false)
	peer(c, lc, la, 65001, pa, false)
	testkit.WaitFor(t, "both sessions established", func() error {
		if sb, sc := rb.state(la), rc.state(la); sb != StateEstablished || sc != StateEstablished {
			return fmt.Errorf("b sees %q, c sees %q", sb, sc)
		}
		return nil
	})

	eid := netip.MustParsePrefix("10.1.0.0/24")
	eid6 := netip.MustParsePrefix("2001:db8:1::/48")
	uni := netip.MustParsePrefix("192.0.2.0/24")
	k5, k7, k6 := Key{Prefix: eid, VPN: true, IID: 5}, Key{Prefix: eid, VPN: true, IID: 7}, Key{Prefix: eid6, VPN: true, IID: 5}
	for _, k := range []Key{k5, k7, k6, {Prefix: uni}} {
		if err := a.Announce(Route{Prefix: k.Prefix, VPN: k.VPN, IID: k.IID, Communities: []uint32{k.IID}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.AnnouncedKeys(); !slices.Equal(got, []Key{{Prefix: uni}, k5, k6, k7}) {
		t.Fatalf("announced %v", got)
	}
	if got := a.Announced(); !slices.Equal(got, []netip.Prefix{uni}) {
		t.Fatalf("announced unicast %v", got)
	}
	for _, k := range []Key{k5, k7, k6, {Prefix: uni}} {
		testkit.WaitFor(t, "b's best path for "+k.String(), func() error {
			if _, ok := rb.key(k); !ok {
				return fmt.Errorf("not yet; b saw %v", rb.seen())
			}
			return nil
		})
		r, _ := rb.key(k)
		if r.IID != k.IID || r.VPN != k.VPN || !slices.Equal(r.ASPath, []uint32{65001}) || r.Neighbor != la ||
			!slices.Equal(r.Communities, []uint32{k.IID}) {
			t.Fatalf("b's route for %v: %+v", k, r)
		}
		if k.Prefix.Addr().Is4() && r.NextHop != la {
			t.Fatalf("b's next hop for %v: %v, want %v", k, r.NextHop, la)
		}
	}
	testkit.WaitFor(t, "c's unicast route", func() error {
		if _, ok := rc.route(uni); !ok {
			return fmt.Errorf("not yet; c saw %v", rc.seen())
		}
		return nil
	})
	// c got a's unicast UPDATE; the VPN routes went out before it (one
	// RIB walk per neighbour), none of them is at c, nor in c's RIB.
	if got := rc.seen(); len(got) != 1 {
		t.Fatalf("c, a unicast-only neighbour, saw %v", got)
	}
	best, err := c.Best()
	if err != nil || len(best) != 1 || best[0].VPN {
		t.Fatalf("c.Best: %+v %v", best, err)
	}
	best, err = b.Best()
	if err != nil || len(best) != 4 || best[0].Key() != (Key{Prefix: uni}) || best[1].Key() != k5 || best[3].Key() != k7 {
		t.Fatalf("b.Best: %+v %v", best, err)
	}

	if err := a.WithdrawKey(k5); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the withdrawal of "+k5.String()+" at b", func() error {
		if _, ok := rb.key(k5); ok {
			return fmt.Errorf("still there; b saw %v", rb.seen())
		}
		return nil
	})
	for _, k := range []Key{k7, k6} {
		if _, ok := rb.key(k); !ok {
			t.Fatalf("%v went with %v: %v", k, k5, rb.seen())
		}
	}
	if err := a.WithdrawKey(k5); err != nil {
		t.Fatalf("a second withdrawal: %v", err)
	}
	if err := a.Announce(Route{Prefix: eid, IID: 5}); err == nil {
		t.Fatal("a unicast route with an instance-ID accepted")
	}
	if err := a.Announce(Route{Prefix: eid, VPN: true, IID: 1 << 24}); err == nil {
		t.Fatal("an instance-ID over 24 bits accepted")
	}
}

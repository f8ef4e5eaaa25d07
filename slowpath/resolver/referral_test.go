package resolver

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/wire"
)

var (
	t0    = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	root1 = netip.MustParseAddrPort("192.0.2.1:4342")
	node1 = netip.MustParseAddrPort("192.0.2.21:4342")
	ms1   = netip.MustParseAddrPort("192.0.2.31:4342")
)

func ref(iid uint32, p string, typ wire.ReferralType, ttl time.Duration, targets ...netip.AddrPort) Referral {
	return Referral{IID: iid, Prefix: netip.MustParsePrefix(p), Type: typ, Targets: targets, Expires: t0.Add(ttl)}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestReferralCacheLookup(t *testing.T) {
	rc := NewReferralCache([]netip.AddrPort{root1}, 0)
	if r := rc.Lookup(0, addr("10.1.2.3"), t0); r == nil || !r.Root || r.Targets[0] != root1 {
		t.Fatalf("empty cache: %+v, want the root", r)
	}
	rc.Insert(ref(0, "10.0.0.0/8", wire.ReferralNode, time.Hour, node1), t0)
	rc.Insert(ref(0, "10.1.0.0/16", wire.ReferralMS, time.Hour, ms1), t0)
	rc.Insert(ref(7, "10.1.0.0/24", wire.ReferralDelegationHole, time.Hour), t0)
	for _, c := range []struct {
		iid  uint32
		a    string
		want string // "" = root
		typ  wire.ReferralType
	}{
		{0, "10.1.2.3", "10.1.0.0/16", wire.ReferralMS},
		{0, "10.2.0.1", "10.0.0.0/8", wire.ReferralNode},
		{0, "11.0.0.1", "", wire.ReferralNode},
		{7, "10.1.0.9", "10.1.0.0/24", wire.ReferralDelegationHole},
		{7, "10.1.1.9", "", wire.ReferralNode}, // instance-IDs are apart
	} {
		r := rc.Lookup(c.iid, addr(c.a), t0.Add(time.Minute))
		if c.want == "" {
			if r == nil || !r.Root {
				t.Errorf("[%d]%s: %+v, want the root", c.iid, c.a, r)
			}
			continue
		}
		if r == nil || r.Root || r.Prefix != netip.MustParsePrefix(c.want) || r.Type != c.typ {
			t.Errorf("[%d]%s: %+v, want %s %v", c.iid, c.a, r, c.want, c.typ)
		}
	}
	if r := rc.Lookup(7, addr("10.1.0.9"), t0); !r.Negative() {
		t.Errorf("hole entry not negative: %+v", r)
	}
	if NewReferralCache(nil, 0).Lookup(0, addr("10.1.2.3"), t0) != nil {
		t.Error("no roots: want nil")
	}
}

func TestReferralCacheTTL(t *testing.T) {
	rc := NewReferralCache([]netip.AddrPort{root1}, 0)
	rc.Insert(ref(0, "10.0.0.0/8", wire.ReferralNode, time.Hour, node1), t0)
	rc.Insert(ref(0, "10.1.0.0/16", wire.ReferralMSNotRegistered, time.Minute), t0)
	if r := rc.Lookup(0, addr("10.1.0.1"), t0.Add(59*time.Second)); r.Type != wire.ReferralMSNotRegistered {
		t.Fatalf("before expiry: %+v", r)
	}
	// The negative entry expires first: the /8 answers, the /16 is gone.
	if r := rc.Lookup(0, addr("10.1.0.1"), t0.Add(time.Minute)); r.Prefix != netip.MustParsePrefix("10.0.0.0/8") {
		t.Fatalf("after the /16 expired: %+v", r)
	}
	if rc.Len() != 1 || rc.Expired != 1 {
		t.Fatalf("len %d expired %d, want 1 1", rc.Len(), rc.Expired)
	}
	rc.Sweep(t0.Add(time.Hour))
	if rc.Len() != 0 || rc.Expired != 2 {
		t.Fatalf("after sweep: len %d expired %d, want 0 2", rc.Len(), rc.Expired)
	}
	if r := rc.Lookup(0, addr("10.1.0.1"), t0.Add(time.Hour)); !r.Root {
		t.Fatalf("all expired: %+v, want the root", r)
	}
	// TTL 0 removes the entry it replaces.
	rc.Insert(ref(0, "10.0.0.0/8", wire.ReferralNode, 2*time.Hour, node1), t0)
	rc.Insert(ref(0, "10.0.0.0/8", wire.ReferralNode, 0, node1), t0)
	if rc.Len() != 0 {
		t.Fatalf("TTL 0 kept the entry: len %d", rc.Len())
	}
}

func TestReferralCacheBound(t *testing.T) {
	rc := NewReferralCache([]netip.AddrPort{root1}, 3)
	for i, p := range []string{"10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16", "10.4.0.0/16"} {
		rc.Insert(ref(0, p, wire.ReferralMS, time.Duration(i+1)*time.Hour, ms1), t0)
	}
	if rc.Len() != 3 || rc.Evicted != 1 {
		t.Fatalf("len %d evicted %d, want 3 1", rc.Len(), rc.Evicted)
	}
	if r := rc.Lookup(0, addr("10.1.0.1"), t0); !r.Root {
		t.Errorf("oldest entry kept: %+v", r)
	}
	if r := rc.Lookup(0, addr("10.4.0.1"), t0); r.Root {
		t.Errorf("newest entry dropped")
	}
	// Replacing an entry does not evict another.
	rc.Insert(ref(0, "10.4.0.0/16", wire.ReferralNode, time.Hour, node1), t0)
	if rc.Len() != 3 || rc.Evicted != 1 {
		t.Fatalf("replace: len %d evicted %d, want 3 1", rc.Len(), rc.Evicted)
	}
	if r := rc.Lookup(0, addr("10.4.0.1"), t0); r.Type != wire.ReferralNode || r.Targets[0] != node1 {
		t.Errorf("replaced entry: %+v", r)
	}
	rc.Remove(0, netip.MustParsePrefix("10.4.0.1/16"))
	if rc.Len() != 2 {
		t.Errorf("remove: len %d, want 2", rc.Len())
	}
}

func TestReferralFromRecord(t *testing.T) {
	loc := func(ip string, prio uint8) wire.Locator {
		return wire.Locator{Priority: prio, Address: wire.IPAddress(addr(ip))}
	}
	rec := wire.Record{TTL: 10, MaskLen: 16, Action: wire.Action(wire.ReferralNode), Incomplete: true,
		EID:      wire.IIDAddress(7, addr("10.1.0.0")),
		Locators: []wire.Locator{loc("192.0.2.22", 2), loc("192.0.2.23", 255), loc("192.0.2.21", 1)}}
	r, ok := ReferralFromRecord(&rec, 4342, t0)
	if !ok {
		t.Fatal("not ok")
	}
	want := []netip.AddrPort{node1, netip.MustParseAddrPort("192.0.2.22:4342")}
	if r.IID != 7 || r.Prefix != netip.MustParsePrefix("10.1.0.0/16") || r.Type != wire.ReferralNode || !r.Incomplete ||
		!r.Expires.Equal(t0.Add(10*time.Minute)) || len(r.Targets) != 2 || r.Targets[0] != want[0] || r.Targets[1] != want[1] {
		t.Fatalf("got %+v", r)
	}
	if _, ok := ReferralFromRecord(&wire.Record{EID: wire.NameAddress("x")}, 4342, t0); ok {
		t.Error("name EID accepted")
	}
}

// TestReferralOrderWeights: targets go by priority; among equal
// priorities the first is drawn by weight (75/25 gives the first about
// three times in four), a weight-0 target goes after the weighted ones,
// all-zero weights give every order, and the roots keep their order.
func TestReferralOrderWeights(t *testing.T) {
	a, b, c, z := root1, node1, ms1, netip.MustParseAddrPort("192.0.2.99:4342")
	r := Referral{Targets: []netip.AddrPort{a, b, z, c}, Priorities: []uint8{1, 1, 1, 2}, Weights: []uint8{75, 25, 0, 100}}
	rng := rand.New(rand.NewPCG(1, 2))
	var out []netip.AddrPort
	firstA := 0
	const n = 4000
	for range n {
		out = r.Order(rng, out)
		if len(out) != 4 || out[3] != c || out[2] != z {
			t.Fatalf("order %v: want the weight-0 target third and the priority-2 one last", out)
		}
		if out[0] == a {
			firstA++
		}
	}
	if firstA < n*70/100 || firstA > n*80/100 {
		t.Fatalf("weight 75 of 100 first in %d of %d orders", firstA, n)
	}
	zero := Referral{Targets: []netip.AddrPort{a, b}, Priorities: []uint8{3, 3}, Weights: []uint8{0, 0}}
	seen := map[netip.AddrPort]bool{}
	for range 100 {
		seen[zero.Order(rng, out)[0]] = true
	}
	if !seen[a] || !seen[b] {
		t.Fatalf("all-zero weights: first targets %v, want both", seen)
	}
	roots := Referral{Targets: []netip.AddrPort{b, a}, Root: true}
	if o := roots.Order(rng, out); o[0] != b || o[1] != a {
		t.Fatalf("roots reordered: %v", o)
	}
}

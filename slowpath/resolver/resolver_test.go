package resolver

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/gaissmai/bart"

	"github.com/rloc-router/rloc/slowpath"
)

// bruteNegative is the definition of the negative prefix over plain lists:
// the shortest prefix of addr, no shorter than the longest known prefix c
// containing addr, that contains no known prefix other than c.
func bruteNegative(known []netip.Prefix, addr netip.Addr) (netip.Prefix, bool) {
	var c netip.Prefix
	for _, k := range known {
		if k.Contains(addr) && (!c.IsValid() || k.Bits() > c.Bits()) {
			c = k
		}
	}
	start := 0
	if c.IsValid() {
		start = c.Bits()
	}
	for l := start; l <= addr.BitLen(); l++ {
		q := netip.PrefixFrom(addr, l).Masked()
		ok := true
		for _, k := range known {
			if k != c && k.Bits() >= l && q.Contains(k.Addr()) {
				ok = false
				break
			}
		}
		if ok {
			return q, c.IsValid()
		}
	}
	return netip.PrefixFrom(addr, addr.BitLen()), c.IsValid()
}

func TestNegativePrefixBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var regs, aggr bart.Table[struct{}]
		var known []netip.Prefix
		n := 1 + rng.IntN(30)
		for range n {
			a := netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))})
			p := netip.PrefixFrom(a, 8+rng.IntN(25)).Masked()
			if rng.IntN(4) == 0 {
				aggr.Insert(p, struct{}{})
			} else {
				regs.Insert(p, struct{}{})
			}
		}
		for p := range regs.All() {
			known = append(known, p)
		}
		for p := range aggr.All() {
			known = append(known, p)
		}
		sets := []slowpath.PrefixSet{slowpath.BartSet[struct{}]{Table: &regs}, slowpath.BartSet[struct{}]{Table: &aggr}}
		for range 50 {
			addr := netip.AddrFrom4([4]byte{byte(8 + rng.IntN(4)), byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))})
			if _, ok := regs.Lookup(addr); ok {
				continue // registered: answered positively, not negatively
			}
			got, gin := negativePrefix(sets, addr)
			want, win := bruteNegative(known, addr)
			if got != want || gin != win {
				t.Fatalf("round %d: %v among %v: got %v (inside %v), want %v (inside %v)", round, addr, known, got, gin, want, win)
			}
		}
	}
	// Fixed cases, IPv6 included.
	known := []netip.Prefix{netip.MustParsePrefix("2001:db8:1::/48"), netip.MustParsePrefix("10.1.0.0/16")}
	var tb bart.Table[struct{}]
	for _, p := range known {
		tb.Insert(p, struct{}{})
	}
	for addr, want := range map[string]string{
		"2001:db8:2::1": "2001:db8:2::/47",
		"2001:db8::1":   "2001:db8::/48",
		"fe80::1":       "8000::/1",
		"10.2.0.1":      "10.2.0.0/15",
		"11.0.0.1":      "11.0.0.0/8",
		"0.0.0.1":       "0.0.0.0/5",
	} {
		got, _ := negativePrefix([]slowpath.PrefixSet{slowpath.BartSet[struct{}]{Table: &tb}}, netip.MustParseAddr(addr))
		if got != netip.MustParsePrefix(want) {
			t.Errorf("negative prefix for %s = %v, want %s", addr, got, want)
		}
	}
}

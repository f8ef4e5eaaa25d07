package msx

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/rloc-router/rloc/slowpath"
)

// TestIndex: whatever the order of registrations and withdrawals, the
// merged index is the present keys (prefixes and names), sorted (the
// prefixes first), each once.
func TestIndex(t *testing.T) {
	x := &MSX{present: map[key]struct{}{}}
	rng := rand.New(rand.NewPCG(1, 2))
	newKey := func() key {
		if rng.IntN(3) == 0 {
			return nameKey(slowpath.EIDName{IID: uint32(rng.IntN(3)), Name: fmt.Sprintf("h%d.example", rng.IntN(8))})
		}
		return prefixKey(slowpath.EIDPrefix{IID: uint32(rng.IntN(3)), Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(rng.IntN(8)), 0, 0}), 16+rng.IntN(3))})
	}
	for round := range 200 {
		for range rng.IntN(20) {
			x.indexChanged(newKey(), rng.IntN(3) > 0)
		}
		if round%3 == 0 {
			x.index()
			var want []key
			for k := range x.present {
				want = append(want, k)
			}
			slices.SortFunc(want, keyCompare)
			if !slices.Equal(x.keys, want) {
				t.Fatalf("round %d: index %v, want %v", round, x.keys, want)
			}
		}
	}
}

package msx

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/rloc-router/rloc/slowpath"
)

// TestIndex: whatever the order of registrations and withdrawals, the
// merged index is the present keys, sorted, each once.
func TestIndex(t *testing.T) {
	x := &MSX{present: map[slowpath.EIDPrefix]struct{}{}}
	rng := rand.New(rand.NewPCG(1, 2))
	key := func() slowpath.EIDPrefix {
		return slowpath.EIDPrefix{IID: uint32(rng.IntN(3)), Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(rng.IntN(8)), 0, 0}), 16+rng.IntN(3))}
	}
	for round := range 200 {
		for range rng.IntN(20) {
			x.indexChanged(key(), rng.IntN(3) > 0)
		}
		if round%3 == 0 {
			x.index()
			var want []slowpath.EIDPrefix
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

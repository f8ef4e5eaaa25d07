package fastpath

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestHopSlot4: deliver's slot of an IPv4 destination's bytes is the one
// hop (hopIndex4) uses for the same destination, so both find one entry.
func TestHopSlot4(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		k := rnd.Uint32()
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], k)
		if got, want := hopSlot4(k), hopIndex4(netip.AddrFrom4(a)); got != want {
			t.Fatalf("%v: hopSlot4 %d, hopIndex4 %d", netip.AddrFrom4(a), got, want)
		}
	}
}

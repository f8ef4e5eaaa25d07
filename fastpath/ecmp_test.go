package fastpath

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/rloc-router/rloc/fastpath/nexthop"
)

// TestEncapSpreadsOverPaths: when the RLOCs are reached by a multipath
// route, the ITR sends each RLOC's packets to the gateway the next-hop
// table picks for it, so that RLOCs spread over both gateways; every
// packet to one RLOC goes the same way (no flow of it reordered over two
// paths), through the memos as on their first packet.
func TestEncapSpreadsOverPaths(t *testing.T) {
	macP := [2][6]byte{{0x02, 0, 0, 0, 0, 0xc1}, {0x02, 0, 0, 0, 0, 0xc2}}
	gwP := [2]netip.Addr{netip.MustParseAddr("192.0.2.101"), netip.MustParseAddr("192.0.2.102")}
	r := newRig(t, nil)
	r.nh.Store(nextHopsWith(func(ns []nexthop.Neighbour) []nexthop.Neighbour {
		for i := range gwP {
			ns = append(ns, nexthop.Neighbour{Addr: gwP[i], IfIndex: 20, MAC: macP[i], Valid: true})
		}
		return ns
	}, nexthop.Route{Prefix: netip.MustParsePrefix("198.51.100.0/24"),
		Paths: []nexthop.Path{{Gateway: gwP[0], IfIndex: 20}, {Gateway: gwP[1], IfIndex: 20}}}))
	const rlocs = 32
	var ms []StaticMapping
	for i := range rlocs {
		ms = append(ms, StaticMapping{IID: iidSite, Prefix: netip.MustParsePrefix(fmt.Sprintf("10.50.%d.0/24", i)),
			RLOCs: []StaticRLOC{{Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}), Weight: 1}}})
	}
	r.install(ms)
	first := map[netip.Addr][6]byte{}
	for round := range 3 {
		used := [2]int{}
		for i := range rlocs {
			dst := netip.AddrFrom4([4]byte{10, 50, byte(i), 9})
			r.fromSite(siteFrame(t, innerSpec{src: hostA, dst: dst, payload: 40, sport: uint16(1000 + round)}))
			out := drain(r.core)
			if len(out) != 1 {
				t.Fatalf("round %d, %v: %d frames on the core link, want 1", round, dst, len(out))
			}
			d := decodeLISP(t, out[0])
			rloc, mac := netip.AddrFrom4([4]byte(d.ip4.DstIP)), [6]byte(out[0][0:6])
			switch mac {
			case macP[0]:
				used[0]++
			case macP[1]:
				used[1]++
			default:
				t.Fatalf("round %d: to %v by MAC %x, neither gateway's", round, rloc, mac)
			}
			if adj, _ := r.nh.Resolve(rloc); adj.DstMAC != mac {
				t.Errorf("round %d: to %v by %x, the next-hop table says %x", round, rloc, mac, adj.DstMAC)
			}
			if m, ok := first[rloc]; ok && m != mac {
				t.Errorf("round %d: to %v by %x, before by %x", round, rloc, mac, m)
			}
			first[rloc] = mac
		}
		if used[0] == 0 || used[1] == 0 {
			t.Fatalf("round %d: %d RLOCs through gateway 1, %d through 2; want both used", round, used[0], used[1])
		}
	}
}

package replicate

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/rloc-router/rloc/wire"
)

// BenchmarkReplicate measures Plan.Replicate of a 64-byte inner IPv4 packet
// to 1, 8 and 64 IPv4 RLOCs: ns/copy is the time per copy made, ns/pkt the
// time for all copies of one packet.
func BenchmarkReplicate(b *testing.B) {
	for _, n := range []int{1, 8, 64, -64} {
		name := fmt.Sprintf("fanout=%d", n)
		if n < 0 {
			// The same plan with every copy patched (no derived copies):
			// what the derivation saves.
			n = -n
			name = fmt.Sprintf("fanout=%d/patch-every-copy", n)
		}
		b.Run(name, func(b *testing.B) {
			p := fanoutPlan(b, n)
			if strings.HasSuffix(name, "patch-every-copy") {
				for i := range p.copies {
					p.copies[i].mode = modePatch
				}
			}
			inner := innerPacket(b, "10.0.0.1", "232.1.1.1", 64)
			ep := &wire.EncapParams{FlowHash: wire.FlowHash(inner, 0)}
			s := newSlab(n, 2048)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				s.used = 0
				if _, err := p.Replicate(inner, ep, s); err != nil {
					b.Fatal(err)
				}
				ep.ID++
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(ns, "ns/pkt")
			b.ReportMetric(ns/float64(n), "ns/copy")
		})
	}
}

// BenchmarkBaselineCopy100 is the yardstick for BenchmarkReplicate: only
// the 100-byte copy (36-byte outer header + 64-byte inner packet) into each
// of 64 buffers, through the same Allocator, with no header work.
func BenchmarkBaselineCopy100(b *testing.B) {
	src := make([]byte, 100)
	s := newSlab(64, 2048)
	for b.Loop() {
		s.used = 0
		for range 64 {
			buf, _ := s.Alloc(100)
			copy(buf, src)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/64, "ns/copy")
}

// BenchmarkITRCopies computes, from plans, the copies an ITR sends per
// packet for 64 receivers: head-end (all 64 ETRs in the RLE at level 128)
// against a replication tree of 8 level-0 RTRs with 8 ETRs each (the ITR
// replicates to level 0 only). It reports itr-copies/pkt and
// max-rtr-copies/pkt; the time per op is that of building the plans.
func BenchmarkITRCopies(b *testing.B) {
	itr := netip.MustParseAddr("192.0.2.1")
	etrs := make([]Entry, 64)
	for i := range etrs {
		etrs[i] = Entry{Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}), Level: ETRLevel}
	}
	cfg := PlanConfig{Role: RoleITR, Self: []netip.Addr{itr}, Template: testTemplates()}
	b.Run("head-end", func(b *testing.B) {
		var p *Plan
		for b.Loop() {
			p, _ = NewPlanFromEntries(etrs, cfg)
		}
		b.ReportMetric(float64(p.Len()), "itr-copies/pkt")
		b.ReportMetric(0, "max-rtr-copies/pkt")
	})
	b.Run("tree-8x8", func(b *testing.B) {
		var itrCopies, rtrMax int
		for b.Loop() {
			tr := NewTree(netip.MustParsePrefix("10.1.1.1/32"), netip.MustParsePrefix("232.1.1.1/32"), itr)
			for i := range 8 {
				r := netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)})
				_ = tr.AddRTR(r, 0)
				_ = tr.Join(r, tr.ParentFor(r, 0))
			}
			for _, e := range etrs {
				_ = tr.Join(e.Addr, tr.ParentFor(e.Addr, ETRLevel))
			}
			p, err := NewPlanFromEntries(tr.Entries(itr), cfg)
			if err != nil {
				b.Fatal(err)
			}
			itrCopies, rtrMax = p.Len(), 0
			for _, c := range tr.Children(itr) {
				rp, err := NewPlanFromEntries(tr.Entries(c), PlanConfig{Role: RoleRTR, Level: 0, Self: []netip.Addr{c}, Template: testTemplates()})
				if err != nil {
					b.Fatal(err)
				}
				rtrMax = max(rtrMax, rp.Len())
			}
		}
		b.ReportMetric(float64(itrCopies), "itr-copies/pkt")
		b.ReportMetric(float64(rtrMax), "max-rtr-copies/pkt")
	})
}

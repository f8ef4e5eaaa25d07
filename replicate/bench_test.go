package replicate

import (
	"fmt"
	"testing"

	"github.com/rloc-router/rloc/wire"
)

// BenchmarkReplicate measures Plan.Replicate of a 64-byte inner IPv4 packet
// to 1, 8 and 64 IPv4 RLOCs: ns/copy is the time per copy made, ns/pkt the
// time for all copies of one packet.
func BenchmarkReplicate(b *testing.B) {
	for _, n := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("fanout=%d", n), func(b *testing.B) {
			p := fanoutPlan(b, n)
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

package wire

import (
	"runtime"
	"testing"
)

// Benchmarks of the data-plane formats. Each reports ns/pkt and Mpps for
// one core; run with -benchmem for allocs/op.

func reportPkts(b *testing.B) {
	b.StopTimer()
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(ns, "ns/pkt")
	if ns > 0 {
		b.ReportMetric(1e3/ns, "Mpps")
	}
}

// sink keeps results alive so the compiler cannot drop the work.
type sink struct {
	u32 uint32
	err error
}

func BenchmarkDataHeaderParse(b *testing.B) {
	pkt := AppendHeader(nil, &HeaderFields{Flags: FlagN | FlagL | FlagI, Nonce: 0xabcdef, InstanceID: 77, LSBs: 3})
	pkt = append(pkt, testInnerIPv4(b, 64, 0, 64)...)
	var s sink
	var f HeaderFields
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h, err := ParseHeader(pkt)
		if err != nil {
			s.err = err
			continue
		}
		h.Decode(&f)
		s.u32 += f.InstanceID + f.Nonce
	}
	reportPkts(b)
	runtime.KeepAlive(s)
}

func BenchmarkDataHeaderWrite(b *testing.B) {
	buf := make([]byte, HeaderLen)
	f := HeaderFields{Flags: FlagN | FlagL | FlagI, InstanceID: 77, LSBs: 3}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.Nonce = uint32(i)
		Header(buf).Encode(&f)
	}
	reportPkts(b)
}

// benchEncap measures what the ITR does per packet with a prebuilt
// template: flow hash of the inner packet, template copy into the headroom,
// patch. The inner packet stays in place behind the headroom, as in an
// AF_XDP frame.
func benchEncap(b *testing.B, o *Outer, innerLen int) {
	tmpl, err := AppendOuter(nil, o)
	if err != nil {
		b.Fatal(err)
	}
	inner := testInnerIPv4(b, 64, 0xb9, innerLen)
	frame := make([]byte, 256+len(inner))
	off := 256
	copy(frame[off:], inner)
	var ep EncapParams
	var s sink
	b.SetBytes(int64(len(inner)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pkt := frame[off-len(tmpl):]
		copy(pkt, tmpl)
		ep.FlowHash = FlowHash(pkt[len(tmpl):], 0)
		ep.Nonce = uint32(i)
		ep.ID = uint16(i)
		if err := PatchOuter(pkt, &ep); err != nil {
			s.err = err
		}
	}
	reportPkts(b)
	runtime.KeepAlive(s)
}

func BenchmarkDataHeaderEncapIPv4(b *testing.B) {
	benchEncap(b, &Outer{Src: rloc4a, Dst: rloc4b, LISP: HeaderFields{Flags: FlagN | FlagI, InstanceID: 77}}, 64)
}

func BenchmarkDataHeaderEncapIPv6(b *testing.B) {
	benchEncap(b, &Outer{Src: rloc6a, Dst: rloc6b, LISP: HeaderFields{Flags: FlagN | FlagI, InstanceID: 77}}, 64)
}

// BenchmarkDataHeaderEncapIPv6Checksum is the IPv6 encap with the optional
// UDP checksum, which sums the whole packet.
func BenchmarkDataHeaderEncapIPv6Checksum(b *testing.B) {
	for _, n := range []struct {
		name string
		len  int
	}{{"64B", 64}, {"1400B", 1400}} {
		b.Run(n.name, func(b *testing.B) {
			benchEncap(b, &Outer{Src: rloc6a, Dst: rloc6b, UDPChecksum: true,
				LISP: HeaderFields{Flags: FlagN | FlagI, InstanceID: 77}}, n.len)
		})
	}
}

// BenchmarkDataHeaderParseAndPatch is the figure the issue aims at: parse
// a LISP header plus write a whole outer header (template copy and patch,
// without the flow hash).
func BenchmarkDataHeaderParseAndPatch(b *testing.B) {
	tmpl, _ := AppendOuterIPv4(nil, &Outer{Src: rloc4a, Dst: rloc4b, LISP: HeaderFields{Flags: FlagN | FlagI, InstanceID: 77}})
	inner := testInnerIPv4(b, 64, 0, 64)
	rx := AppendHeader(nil, &HeaderFields{Flags: FlagN | FlagI, InstanceID: 77, Nonce: 1})
	frame := make([]byte, 256+len(inner))
	copy(frame[256:], inner)
	ep := EncapParams{FlowHash: 0x12345678}
	var s sink
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h, err := ParseHeader(rx)
		if err != nil {
			s.err = err
			continue
		}
		ep.Nonce = h.Nonce() + uint32(i)
		pkt := frame[256-OuterIPv4Len:]
		copy(pkt, tmpl)
		if err := PatchOuterIPv4(pkt, &ep); err != nil {
			s.err = err
		}
	}
	reportPkts(b)
	runtime.KeepAlive(s)
}

func BenchmarkDataHeaderDecap(b *testing.B) {
	inner := testInnerIPv4(b, 64, 0xb9, 64)
	var s sink
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := ApplyDecap(inner, 200, uint8(i)&3)
		s.u32 += uint32(d)
		if err != nil {
			s.err = err
		}
	}
	reportPkts(b)
	runtime.KeepAlive(s)
}

func BenchmarkFlowHash(b *testing.B) {
	for _, c := range []struct {
		name string
		pkt  []byte
	}{{"IPv4", testInnerIPv4(b, 64, 0, 64)}, {"IPv6", testInnerIPv6(b, 64, 0, 64)}} {
		b.Run(c.name, func(b *testing.B) {
			var s sink
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				s.u32 += FlowHash(c.pkt, uint32(i))
			}
			reportPkts(b)
			runtime.KeepAlive(s)
		})
	}
}

func BenchmarkChecksum(b *testing.B) {
	for _, n := range []int{20, 64, 1500} {
		buf := make([]byte, n)
		for i := range buf {
			buf[i] = byte(i * 7)
		}
		b.Run(itoa(n)+"B", func(b *testing.B) {
			var s sink
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				s.u32 += uint32(Checksum(buf, uint16(i)))
			}
			runtime.KeepAlive(s)
		})
	}
}

// BenchmarkBaselineCopy36 copies 36 bytes (the size of an IPv4 outer
// header) and nothing else: a yardstick for the machine's speed and noise
// to read the other figures against.
func BenchmarkBaselineCopy36(b *testing.B) {
	src := make([]byte, OuterIPv4Len)
	dst := make([]byte, 64)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		src[0] = byte(i)
		copy(dst, src)
	}
	reportPkts(b)
	runtime.KeepAlive(dst)
}

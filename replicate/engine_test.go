package replicate

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/rloc-router/rloc/cache"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/rloc-router/rloc/wire"
)

// slab is an Allocator over preallocated buffers.
type slab struct {
	mem  [][]byte
	used int
}

func newSlab(n, size int) *slab {
	s := &slab{mem: make([][]byte, n)}
	for i := range s.mem {
		s.mem[i] = make([]byte, size)
	}
	return s
}

func (s *slab) Alloc(n int) ([]byte, bool) {
	if s.used == len(s.mem) || n > len(s.mem[s.used]) {
		return nil, false
	}
	b := s.mem[s.used][:n]
	s.used++
	return b, true
}

// innerPacket builds a UDP packet of total length size from src to group.
func innerPacket(t testing.TB, src, group string, size int) []byte {
	t.Helper()
	s, g := netip.MustParseAddr(src), netip.MustParseAddr(group)
	udp := &layers.UDP{SrcPort: 5000, DstPort: 6000}
	var nl gopacket.SerializableLayer
	hdr := 0
	if s.Is4() {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 17, TOS: 0xb8, Protocol: layers.IPProtocolUDP,
			SrcIP: net.IP(s.AsSlice()), DstIP: net.IP(g.AsSlice())}
		nl, hdr = ip, 20
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
	} else {
		ip := &layers.IPv6{Version: 6, HopLimit: 17, TrafficClass: 0xb8, NextHeader: layers.IPProtocolUDP,
			SrcIP: net.IP(s.AsSlice()), DstIP: net.IP(g.AsSlice())}
		nl, hdr = ip, 40
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
	}
	payload := make([]byte, size-hdr-8)
	for i := range payload {
		payload[i] = byte(i)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		nl, udp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReplicateByteExact(t *testing.T) {
	nodes := []wire.RLENode{node(128, "198.51.100.1"), node(128, "2001:db8:e::3"), node(128, "239.1.2.3"),
		node(128, "198.51.100.2"), node(128, "ff3e::8000:1")}
	base := wire.Outer{LISP: wire.HeaderFields{Flags: wire.FlagN | wire.FlagI, InstanceID: 7}}
	for _, sum := range []bool{false, true} {
		b := base
		b.UDPChecksum = sum
		p, err := NewPlan(nodes, PlanConfig{Role: RoleITR, Self: []netip.Addr{self4}, Template: templates(b, self4, self6)})
		if err != nil {
			t.Fatal(err)
		}
		for _, inner := range [][]byte{innerPacket(t, "10.0.0.1", "232.1.1.1", 64), innerPacket(t, "2001:db8:a::1", "ff3e::1", 100)} {
			ep := &wire.EncapParams{FlowHash: wire.FlowHash(inner, 0), Nonce: 0xabcdef, ID: 0x1234}
			s := newSlab(8, 2048)
			n, err := p.Replicate(inner, ep, s)
			if err != nil || n != len(nodes) {
				t.Fatalf("Replicate = %d, %v", n, err)
			}
			for i := range n {
				checkCopy(t, s.mem[i][:len(p.Copies()[i].Template)+len(inner)], p.Copies()[i].Dst, inner, ep, sum)
			}
		}
	}
}

// checkCopy decodes one copy with gopacket and checks every field.
func checkCopy(t *testing.T, pkt []byte, dst netip.Addr, inner []byte, ep *wire.EncapParams, sum bool) {
	t.Helper()
	first := layers.LayerTypeIPv4
	if dst.Is6() {
		first = layers.LayerTypeIPv6
	}
	gp := gopacket.NewPacket(pkt, first, gopacket.Default)
	if gp.ErrorLayer() != nil {
		t.Fatalf("to %s: gopacket: %v", dst, gp.ErrorLayer().Error())
	}
	ttl, tos, _ := wire.IPTTLAndTOS(inner)
	switch ip := gp.Layers()[0].(type) {
	case *layers.IPv4:
		if int(ip.Length) != len(pkt) || ip.TTL != ttl || ip.TOS != tos || ip.Id != ep.ID ||
			!ip.SrcIP.Equal(self4.AsSlice()) || !ip.DstIP.Equal(dst.AsSlice()) || ip.Protocol != layers.IPProtocolUDP {
			t.Errorf("to %s: outer IPv4 %+v", dst, ip)
		}
		if !wire.IPv4(pkt).ChecksumValid() {
			t.Errorf("to %s: IPv4 checksum", dst)
		}
	case *layers.IPv6:
		if int(ip.Length) != len(pkt)-40 || ip.HopLimit != ttl || ip.TrafficClass != tos || ip.FlowLabel != ep.FlowHash&0xfffff ||
			!ip.SrcIP.Equal(self6.AsSlice()) || !ip.DstIP.Equal(dst.AsSlice()) {
			t.Errorf("to %s: outer IPv6 %+v", dst, ip)
		}
	default:
		t.Fatalf("to %s: first layer %T", dst, ip)
	}
	udp, _ := gp.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if udp == nil || udp.DstPort != wire.DataPort || uint16(udp.SrcPort) != wire.SourcePort(ep.FlowHash) {
		t.Fatalf("to %s: UDP %+v", dst, udp)
	}
	if sum != (udp.Checksum != 0) {
		t.Errorf("to %s: UDP checksum %#x with checksums %v", dst, udp.Checksum, sum)
	}
	if sum {
		src := self4
		if dst.Is6() {
			src = self6
		}
		if !wire.UDPChecksumOK(pkt[len(pkt)-len(inner)-16:], src, dst) {
			t.Errorf("to %s: UDP checksum does not verify", dst)
		}
	}
	h, err := wire.ParseHeader(udp.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var f wire.HeaderFields
	h.Decode(&f)
	if f != (wire.HeaderFields{Flags: wire.FlagN | wire.FlagI, Nonce: ep.Nonce, InstanceID: 7}) {
		t.Errorf("to %s: LISP header %+v", dst, f)
	}
	if !bytes.Equal(udp.Payload[wire.HeaderLen:], inner) {
		t.Errorf("to %s: inner packet differs", dst)
	}
}

func TestReplicateErrors(t *testing.T) {
	var nodes []wire.RLENode
	for i := range 4 {
		nodes = append(nodes, wire.RLENode{Level: 128, Address: wire.IPAddress(netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}))})
	}
	p, err := NewPlan(nodes, PlanConfig{Template: testTemplates()})
	if err != nil {
		t.Fatal(err)
	}
	inner := innerPacket(t, "10.0.0.1", "232.1.1.1", 64)
	ep := &wire.EncapParams{}
	s := newSlab(2, 256)
	if n, err := p.Replicate(inner, ep, s); n != 2 || !errors.Is(err, ErrNoBuffer) {
		t.Errorf("short pool: %d, %v", n, err)
	}
	for i := range 2 {
		checkCopy(t, s.mem[i][:36+64], p.Copies()[i].Dst, inner, ep, false)
	}
	bad := map[string][]byte{
		"empty":     nil,
		"version 5": append([]byte{0x50}, inner[1:]...),
		"short v4":  inner[:19],
		"short v6":  innerPacket(t, "2001:db8::2", "ff3e::1", 64)[:39],
		"too long":  append([]byte{0x45}, make([]byte, 0xffff)...),
	}
	for name, b := range bad {
		s := newSlab(4, 256)
		if n, err := p.Replicate(b, ep, s); n != 0 || !errors.Is(err, ErrInner) || s.used != 0 {
			t.Errorf("%s: %d, %v, %d buffers taken", name, n, err, s.used)
		}
	}
	empty, _ := NewPlan(nil, PlanConfig{})
	if n, err := empty.Replicate(inner, ep, newSlab(1, 256)); n != 0 || err != nil {
		t.Errorf("empty plan: %d %v", n, err)
	}
}

func TestReplicateAllocs(t *testing.T) {
	p := fanoutPlan(t, 64)
	inner := innerPacket(t, "10.0.0.1", "232.1.1.1", 64)
	ep := &wire.EncapParams{FlowHash: 99}
	s := newSlab(64, 256)
	allocs := testing.AllocsPerRun(100, func() {
		s.used = 0
		if n, err := p.Replicate(inner, ep, s); n != 64 || err != nil {
			t.Fatal(n, err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per packet", allocs)
	}
}

func fanoutPlan(t testing.TB, n int) *Plan {
	nodes := make([]wire.RLENode, n)
	for i := range nodes {
		nodes[i] = wire.RLENode{Level: 128, Address: wire.IPAddress(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i + 1)}))}
	}
	p, err := NewPlan(nodes, PlanConfig{Template: testTemplates()})
	if err != nil || p.Len() != n {
		t.Fatal(p, err)
	}
	return p
}

// TestReplicateMatchesPatch checks that copies derived from the first copy
// of their family are byte for byte what copying the template and patching
// it gives, for random RLOCs (so every checksum carry case comes up).
func TestReplicateMatchesPatch(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		var nodes []wire.RLENode
		seen := map[netip.Addr]bool{}
		for len(nodes) < 40 {
			var a netip.Addr
			if rnd.IntN(3) == 0 {
				var b [16]byte
				b[0] = 0x20
				for i := 1; i < 16; i++ {
					b[i] = byte(rnd.Uint32())
				}
				a = netip.AddrFrom16(b)
			} else {
				a = netip.AddrFrom4([4]byte{byte(1 + rnd.IntN(200)), byte(rnd.Uint32()), byte(rnd.Uint32()), byte(rnd.Uint32())})
			}
			if seen[a] || !a.IsGlobalUnicast() {
				continue
			}
			seen[a] = true
			nodes = append(nodes, wire.RLENode{Level: 128, Address: wire.IPAddress(a)})
		}
		base := wire.Outer{LISP: wire.HeaderFields{Flags: wire.FlagN | wire.FlagI, InstanceID: uint32(round)},
			UDPChecksum: round%5 == 4, DontFragment: round%2 == 0}
		p, err := NewPlan(nodes, PlanConfig{Template: templates(base, self4, self6)})
		if err != nil {
			t.Fatal(err)
		}
		derived := 0
		for _, c := range p.Copies() {
			if c.mode != modePatch {
				derived++
			}
		}
		// With UDP checksums every copy is patched (the checksum depends
		// on the destination); otherwise all but the first of each family
		// are derived.
		if want := len(nodes) - 2; base.UDPChecksum && derived != 0 || !base.UDPChecksum && derived != want {
			t.Fatalf("round %d: %d of %d copies derived (UDP checksum %v)", round, derived, len(nodes), base.UDPChecksum)
		}
		inner := innerPacket(t, "10.0.0.1", "232.1.1.1", 64+round)
		ep := &wire.EncapParams{FlowHash: rnd.Uint32(), Nonce: rnd.Uint32() & 0xffffff, ID: uint16(rnd.Uint32())}
		s := newSlab(len(nodes), 512)
		if n, err := p.Replicate(inner, ep, s); n != len(nodes) || err != nil {
			t.Fatal(n, err)
		}
		for i, c := range p.Copies() {
			want := append(append([]byte(nil), c.Template...), inner...)
			if err := wire.PatchOuter(want, ep); err != nil {
				t.Fatal(err)
			}
			if got := s.mem[i][:len(want)]; !bytes.Equal(got, want) {
				t.Fatalf("round %d copy %d to %s (mode %d): got\n% x\nwant\n% x", round, i, c.Dst, c.mode, got, want)
			}
		}
		// The same in rounds of 7 copies (ReplicateRange).
		for from := 0; from < len(nodes); from += 7 {
			r := newSlab(7, 512)
			n, err := p.ReplicateRange(inner, ep, r, from, from+7)
			if err != nil {
				t.Fatal(err)
			}
			for i := range n {
				if !bytes.Equal(r.mem[i], s.mem[from+i]) {
					t.Fatalf("round %d: copy %d differs when made from %d", round, from+i, from)
				}
			}
		}
	}
}

// TestReplicateMixedTemplates: templates that differ in more than the
// destination (here: another instance-ID) are patched, not derived.
func TestReplicateMixedTemplates(t *testing.T) {
	a := templates(wire.Outer{LISP: wire.HeaderFields{Flags: wire.FlagI, InstanceID: 1}}, self4, self6)
	b := templates(wire.Outer{LISP: wire.HeaderFields{Flags: wire.FlagI, InstanceID: 2}}, self4, self6)
	d1, d2 := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	hops := []cache.RLEHop{{Addr: d1, Level: 128, Template: a(d1)}, {Addr: d2, Level: 128, Template: b(d2)}}
	p, err := NewPlanFromHops(hops, PlanConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Copies()[1].mode != modePatch {
		t.Fatalf("copy with another instance-ID would be derived")
	}
	inner := innerPacket(t, "10.0.0.1", "232.1.1.1", 64)
	s := newSlab(2, 256)
	if n, err := p.Replicate(inner, &wire.EncapParams{}, s); n != 2 || err != nil {
		t.Fatal(n, err)
	}
	if iid := wire.Header(s.mem[1][28:]).InstanceID(); iid != 2 {
		t.Errorf("second copy's instance-ID %d", iid)
	}
}

func TestReplicateRange(t *testing.T) {
	p := fanoutPlan(t, 10)
	inner := innerPacket(t, "10.0.0.1", "232.1.1.1", 64)
	ep := &wire.EncapParams{FlowHash: 5, ID: 9}
	all := newSlab(10, 256)
	if n, err := p.Replicate(inner, ep, all); n != 10 || err != nil {
		t.Fatal(n, err)
	}
	// Rounds of 4, 4, 2 give the same bytes; each round starts from a
	// patched copy of its own.
	for from := 0; from < 10; from += 4 {
		s := newSlab(4, 256)
		n, err := p.ReplicateRange(inner, ep, s, from, from+4)
		if err != nil || n != min(4, 10-from) {
			t.Fatalf("range %d: %d %v", from, n, err)
		}
		for i := range n {
			if !bytes.Equal(s.mem[i][:100], all.mem[from+i][:100]) {
				t.Errorf("copy %d differs in rounds", from+i)
			}
		}
	}
	if n, err := p.ReplicateRange(inner, ep, newSlab(1, 256), 12, 20); n != 0 || err != nil {
		t.Errorf("empty range: %d %v", n, err)
	}
}

package xsk

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/wire"
)

// lispSpec is a LISP data packet as it arrives on a core interface.
type lispSpec struct {
	v6         bool    // an outer IPv6 header (to decapRLOC6), without frag
	inner6     bool    // an inner IPv6 packet to decapDst6 (innerTTL: its hop limit)
	dst        [4]byte // outer IPv4 destination (the RLOC)
	tos, ttl   uint8   // outer (IPv6: traffic class, hop limit)
	frag       uint16  // outer IPv4 flags and fragment offset
	flags      uint8   // LISP flags
	iid        uint32
	innerTTL   uint8
	dport      uint16
	pad        int // bytes after the outer packet
	udpExtra   int // UDP length beyond the inner packet
	innerExtra int // inner total length beyond what it holds
}

var (
	decapRLOC  = [4]byte{192, 0, 2, 1}
	decapRLOC6 = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	decapDst   = [4]byte{10, 2, 0, 10}
	decapDst6  = [16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 2, 15: 0x10}
	decapEth   = [14]byte{2, 0, 0, 0, 0, 0xcc, 2, 0, 0, 0, 0, 0xdd, 0x08, 0x00}
)

// outerLen is the outer IP header's length in s's frame.
func (s lispSpec) outerLen() int {
	if s.v6 {
		return wire.IPv6Len
	}
	return wire.IPv4MinLen
}

// coreFrame builds s's frame: Ethernet, outer IPv4 or IPv6, UDP, LISP
// header and an inner UDP packet from 10.1.0.10 to decapDst with 30 bytes
// of payload.
func coreFrame(s lispSpec) (frame, inner []byte) {
	inner = siteFrame4([4]byte{10, 1, 0, 10}, decapDst, wire.ProtoUDP, s.innerTTL, [4]byte{4, 0, 0, 53}, 30, 0)[wire.EthernetLen:]
	if s.inner6 {
		// From 2001:db8:1::10 to decapDst6: UDP 1024 -> 53, 30 bytes.
		inner = make([]byte, wire.IPv6Len+wire.UDPLen+30)
		inner[0] = 0x60
		binary.BigEndian.PutUint16(inner[4:], uint16(len(inner)-wire.IPv6Len+s.innerExtra))
		inner[6], inner[7] = wire.ProtoUDP, s.innerTTL
		copy(inner[8:24], []byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 15: 0x10})
		copy(inner[24:40], decapDst6[:])
		binary.BigEndian.PutUint32(inner[40:], 1024<<16|53)
		binary.BigEndian.PutUint16(inner[44:], wire.UDPLen+30)
	} else if s.innerExtra != 0 {
		binary.BigEndian.PutUint16(inner[2:], uint16(len(inner)+s.innerExtra))
		inner[10], inner[11] = 0, 0
		binary.BigEndian.PutUint16(inner[10:], ^sum16(inner[:20]))
	}
	ul := wire.UDPLen + wire.HeaderLen + len(inner) + s.udpExtra
	tl := s.outerLen() + ul
	b := make([]byte, wire.EthernetLen+tl+s.pad)
	copy(b[0:12], []byte{2, 0, 0, 0, 0, 0xaa, 2, 0, 0, 0, 0, 0xbb})
	o := b[wire.EthernetLen:]
	if s.v6 {
		b[12], b[13] = 0x86, 0xdd
		binary.BigEndian.PutUint32(o[0:], 6<<28|uint32(s.tos)<<20)
		binary.BigEndian.PutUint16(o[4:], uint16(ul))
		o[6], o[7] = wire.ProtoUDP, s.ttl
		copy(o[8:24], []byte{0x20, 0x01, 0x0d, 0xb8, 15: 9})
		copy(o[24:40], decapRLOC6[:])
	} else {
		b[12], b[13] = 0x08, 0x00
		o[0], o[1] = 0x45, s.tos
		binary.BigEndian.PutUint16(o[2:], uint16(tl))
		binary.BigEndian.PutUint16(o[6:], s.frag)
		o[8], o[9] = s.ttl, wire.ProtoUDP
		copy(o[12:16], []byte{192, 0, 2, 9})
		copy(o[16:20], s.dst[:])
		binary.BigEndian.PutUint16(o[10:], ^sum16(o[:20]))
	}
	u := o[s.outerLen():]
	binary.BigEndian.PutUint16(u[0:], 50000)
	binary.BigEndian.PutUint16(u[2:], s.dport)
	binary.BigEndian.PutUint16(u[4:], uint16(ul))
	u[8] = s.flags
	copy(u[9:12], []byte{0x12, 0x34, 0x56})
	binary.BigEndian.PutUint32(u[12:], s.iid<<8|0x01)
	copy(u[16:], inner)
	return b, inner
}

// goodLISP is a packet the decap entry of TestDecapOffload takes (over
// IPv6 with v6).
func goodLISP(v6 bool) lispSpec {
	return lispSpec{v6: v6, dst: decapRLOC, ttl: 64, flags: wire.FlagI, iid: 7777, innerTTL: 64, dport: wire.DataPort}
}

// decapEntry is the entry for goodLISP(v6)'s flow in epoch.
func decapEntry(v6 bool, epoch uint32) ring.DecapEntry {
	return decapEntryFor(lispSpec{v6: v6, iid: 7777}, epoch)
}

// decapEntryFor is the entry for s's flow (outer version, inner
// destination, instance-ID) in epoch.
func decapEntryFor(s lispSpec, epoch uint32) ring.DecapEntry {
	v6 := s.v6
	e := ring.DecapEntry{IID: s.iid, Dst: decapDst, Epoch: epoch, Ifindex: 1, Eth: decapEth}
	if s.inner6 {
		e.Dst, e.InnerV6, e.Dst6 = [4]byte{}, true, decapDst6
		e.Eth[12], e.Eth[13] = 0x86, 0xdd
	}
	if v6 {
		e.V6, e.RLOC6 = true, decapRLOC6
	} else {
		e.RLOC = decapRLOC
	}
	return e
}

// decapEpoch is the epoch of coreWithEntry's program.
const decapEpoch = 4

// coreWithEntry is loadCore's program in epoch decapEpoch with the entry
// for goodLISP(v6)'s flow, which it returns.
func coreWithEntry(t *testing.T, base lispSpec, nonceOK bool) (*Program, ring.DecapEntry) {
	t.Helper()
	p := loadCore(t)
	if err := p.SetOffload(decapEpoch, 0); err != nil {
		t.Fatal(err)
	}
	e := decapEntryFor(base, decapEpoch)
	e.NonceOK = nonceOK
	if err := p.PutDecap(&e); err != nil {
		t.Fatal(err)
	}
	return p, e
}

// redirectTimes runs s's frame through p n times, each of which p must
// redirect: an entry's hits for the sweep tests.
func redirectTimes(t *testing.T, p *Program, s lispSpec, n int) {
	t.Helper()
	b, _ := coreFrame(s)
	for range n {
		if ret, _ := run(t, p, b); ret != xdpRedirect {
			t.Fatalf("action %d, want XDP_REDIRECT", ret)
		}
	}
}

// outers runs f for each outer and inner version: f gets goodLISP's
// packet with those.
func outers(t *testing.T, f func(t *testing.T, base lispSpec)) {
	for _, v6 := range []bool{false, true} {
		for _, in6 := range []bool{false, true} {
			name := map[bool]string{false: "outer-ipv4", true: "outer-ipv6"}[v6] + "/" + map[bool]string{false: "inner-ipv4", true: "inner-ipv6"}[in6]
			base := goodLISP(v6)
			base.inner6 = in6
			t.Run(name, func(t *testing.T) { f(t, base) })
		}
	}
}

func loadCore(t testing.TB) *Program {
	t.Helper()
	p, err := LoadProgram(ProgramConfig{Mode: ModeCore})
	testkit.Require(t, "loading the XDP steering program (root, BPF)", err)
	t.Cleanup(func() { p.Close() })
	for _, a := range []netip.Addr{netip.AddrFrom4(decapRLOC), netip.AddrFrom16(decapRLOC6)} {
		if err := p.AddLocal(a); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// TestDecapOffload runs the core program over LISP packets whose flow has a
// decap entry and checks what it redirects: the entry's Ethernet header
// and the inner packet, cut to its length, its TTL lowered to the outer
// one where that is lower (RFC 9300 §5.3) with a valid checksum, nothing
// else changed.
func TestDecapOffload(t *testing.T) {
	outers(t, func(t *testing.T, base lispSpec) {
		p, _ := coreWithEntry(t, base, true)
		for _, tc := range lispTaken {
			t.Run(tc.name, func(t *testing.T) {
				s := base
				tc.mod(&s)
				frame, inner := coreFrame(s)
				out := runOffloaded(t, p, frame)
				eth := decapEntryFor(s, 0).Eth
				if len(out) != wire.EthernetLen+len(inner) || string(out[:14]) != string(eth[:]) {
					t.Fatalf("out %d bytes (want %d), Ethernet % x", len(out), wire.EthernetLen+len(inner), out[:14])
				}
				in := out[wire.EthernetLen:]
				want := append([]byte(nil), inner...)
				switch {
				case s.inner6 && s.ttl < want[7]:
					want[7] = s.ttl // the hop limit; no checksum
				case !s.inner6 && s.ttl < want[8]:
					want[8] = s.ttl
					want[10], want[11] = 0, 0
					binary.BigEndian.PutUint16(want[10:], ^sum16(want[:20]))
				}
				if string(in) != string(want) {
					t.Fatalf("inner packet\n% x\nwant\n% x", in, want)
				}
			})
		}
	})
}

// TestDecapOffloadLeaves checks the packets the decap offload must leave to
// the socket (here: no socket, so XDP_PASS) unchanged: those the fast
// path's deliver4 does not take, those it reports to its slow path, and
// those without a current entry.
func TestDecapOffloadLeaves(t *testing.T) {
	outers(t, func(t *testing.T, base lispSpec) {
		p, e := coreWithEntry(t, base, false)
		const epoch = decapEpoch
		other := e
		other.IID, other.RLOC, other.RLOC6[15] = 8888, [4]byte{192, 0, 2, 77}, 77 // an entry for another RLOC
		if err := p.PutDecap(&other); err != nil {
			t.Fatal(err)
		}
		other6 := base
		other6.v6, other6.iid = !base.v6, 9999
		across := decapEntryFor(other6, epoch) // an entry for our RLOC of the other version
		if err := p.PutDecap(&across); err != nil {
			t.Fatal(err)
		}
		if ret, _ := run(t, p, lispFrame(base, func(*lispSpec) {})); ret != xdpRedirect {
			t.Fatalf("the good frame: action %d", ret)
		}
		cases := append(lispLeaves(base), epochLeaves(base, decapEpoch, func(e uint32) error { return p.SetOffload(e, 0) })...)
		checkLeaves(t, p, cases)
	})
}

// lispTaken are changes of goodLISP's packet that the core offloads
// (decap, reencap) still take: TTLs above, below and at the edge of the
// other one's, the flags the fast path does not report (N, with entries
// that take it; V), an outer DSCP, DF (IPv4) and Ethernet padding, and a
// UDP length longer than the inner packet.
var lispTaken = []struct {
	name string
	mod  func(*lispSpec)
}{
	{"plain", func(*lispSpec) {}},
	{"outer-ttl-lower", func(s *lispSpec) { s.ttl = 5 }},
	{"outer-ttl-2", func(s *lispSpec) { s.ttl = 2 }},
	{"inner-ttl-2", func(s *lispSpec) { s.innerTTL = 2 }},
	{"outer-ttl-higher", func(s *lispSpec) { s.ttl = 200 }},
	{"nonce", func(s *lispSpec) { s.flags |= wire.FlagN }},
	{"map-version", func(s *lispSpec) { s.flags |= wire.FlagV }},
	{"outer-dscp", func(s *lispSpec) { s.tos = 0xb8 }},
	{"df-and-padding", func(s *lispSpec) { s.frag, s.pad = 0x4000, 20 }},
	{"udp-longer-than-inner", func(s *lispSpec) { s.udpExtra = 6 }},
}

// lispFrame is base's frame (coreFrame) changed by mod.
func lispFrame(base lispSpec, mod func(*lispSpec)) []byte {
	s := base
	mod(&s)
	b, _ := coreFrame(s)
	return b
}

// lispLeaves are the packets that both core offloads, decap and reencap,
// must leave to the socket unchanged, made from base's packet (whose flow
// has a current entry): the flags the fast path reports to its slow path
// (N only while watched: the callers' entries do not take it), other
// instance-IDs, the entries the caller put for another RLOC of ours
// (instance-ID 8888) and for our RLOC of the other outer version (9999),
// ECN, a TTL that ends here, lengths that do not add up, a truncated frame,
// an inner header they do not take, and the outer version's own checks.
func lispLeaves(base lispSpec) []leaveCase {
	frame := func(mod func(*lispSpec)) []byte { return lispFrame(base, mod) }
	ol := wire.EthernetLen + base.outerLen() // where UDP starts
	cases := []leaveCase{
		{name: "nonce-watched", frame: frame(func(s *lispSpec) { s.flags |= wire.FlagN })},
		{name: "nonce-and-version", frame: frame(func(s *lispSpec) { s.flags |= wire.FlagN | wire.FlagV })},
		{name: "echo-request", frame: frame(func(s *lispSpec) { s.flags |= wire.FlagE })},
		{name: "lsbs", frame: frame(func(s *lispSpec) { s.flags |= wire.FlagL })},
		{name: "no-instance-id", frame: frame(func(s *lispSpec) { s.flags = 0 })},
		{name: "other-instance-id", frame: frame(func(s *lispSpec) { s.iid = 7778 })},
		{name: "entry-for-another-rloc", frame: frame(func(s *lispSpec) { s.iid = 8888 })},
		{name: "entry-for-the-other-version", frame: frame(func(s *lispSpec) { s.iid = 9999 })},
		{name: "ecn", frame: frame(func(s *lispSpec) { s.tos = 1 })},
		{name: "ecn-ce", frame: frame(func(s *lispSpec) { s.tos = 0xbb })},
		{name: "outer-ttl-0", frame: frame(func(s *lispSpec) { s.ttl = 0 })},
		{name: "inner-ttl-0", frame: frame(func(s *lispSpec) { s.innerTTL = 0 })},
		{name: "inner-longer-than-udp", frame: frame(func(s *lispSpec) { s.innerExtra = 1 })},
		{name: "udp-longer-than-ip", frame: mod(frame(func(*lispSpec) {}), func(b []byte) {
			binary.BigEndian.PutUint16(b[ol+4:], binary.BigEndian.Uint16(b[ol+4:])+1)
		})},
		{name: "inner-version-5", frame: mod(frame(func(*lispSpec) {}), func(b []byte) { b[ol+16] = 0x55 })},
		{name: "truncated", frame: frame(func(*lispSpec) {})[:ol+30]},
	}
	if base.inner6 {
		cases = append(cases, leaveCase{name: "inner-truncated", frame: frame(func(*lispSpec) {})[:ol+16+39]})
	} else {
		cases = append(cases, leaveCase{name: "inner-options", frame: mod(frame(func(*lispSpec) {}), func(b []byte) { b[ol+16] = 0x46 })})
	}
	if base.v6 {
		return append(cases,
			leaveCase{name: "payload-longer-than-frame", frame: mod(frame(func(*lispSpec) {}), func(b []byte) {
				binary.BigEndian.PutUint16(b[wire.EthernetLen+4:], binary.BigEndian.Uint16(b[wire.EthernetLen+4:])+1)
			})},
			leaveCase{name: "extension-header", frame: mod(frame(func(*lispSpec) {}), func(b []byte) { b[wire.EthernetLen+6] = 60 })})
	}
	return append(cases,
		leaveCase{name: "fragment", frame: frame(func(s *lispSpec) { s.frag = 0x2000 })},
		leaveCase{name: "bad-checksum", frame: mod(frame(func(*lispSpec) {}), func(b []byte) { b[wire.EthernetLen+10] ^= 1 })})
}

// epochLeaves are base's packet left to the socket once set (the table's
// epoch setter) moved the table from its current epoch to the next one, and
// then turned it off: the last cases of a run, as they change the table.
func epochLeaves(base lispSpec, epoch uint32, set func(uint32) error) []leaveCase {
	frame := lispFrame(base, func(*lispSpec) {})
	return []leaveCase{
		{name: "old-epoch", frame: frame, setup: func() error { return set(epoch + 1) }},
		{name: "off", frame: frame, setup: func() error { return set(0) }},
	}
}

// mod returns a copy of b changed by f.
func mod(b []byte, f func([]byte)) []byte {
	c := append([]byte(nil), b...)
	f(c)
	return c
}

// TestDecapSweep: a sweep sees every decap entry with its instance-ID,
// destination, epoch and hits, and deletes what it is told to.
func TestDecapSweep(t *testing.T) {
	p := loadCore(t)
	if err := p.SetOffload(2, 0); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		e := ring.DecapEntry{IID: 7777, Dst: [4]byte{10, 2, 0, byte(i)}, RLOC: decapRLOC, Epoch: uint32(1 + i%2), Ifindex: 1, Eth: decapEth}
		if err := p.PutDecap(&e); err != nil {
			t.Fatal(err)
		}
	}
	e := ring.DecapEntry{IID: 7777, Dst: decapDst, RLOC: decapRLOC, Epoch: 2, Ifindex: 1, Eth: decapEth}
	if err := p.PutDecap(&e); err != nil {
		t.Fatal(err)
	}
	redirectTimes(t, p, goodLISP(false), 3)
	seen, hits := 0, uint64(0)
	n, err := p.SweepDecap(func(e *ring.DecapEntry, h uint64) bool {
		seen++
		if e.IID != 7777 {
			t.Errorf("iid %d", e.IID)
		}
		if e.Dst == decapDst {
			hits = h
		}
		return e.Epoch == 2
	})
	if err != nil || seen != 7 || n != 3 || hits != 3 {
		t.Fatalf("sweep: %d seen, %d deleted, %d hits (%v)", seen, n, hits, err)
	}
	left := 0
	if _, err := p.SweepDecap(func(*ring.DecapEntry, uint64) bool { left++; return true }); err != nil || left != 4 {
		t.Fatalf("%d entries left (%v)", left, err)
	}
	// A listing returns each entry as it was put (over either outer
	// version), with its hits.
	six := decapEntry(true, 2)
	six.Dst = [4]byte{10, 2, 0, 99}
	eid6 := decapEntryFor(lispSpec{v6: true, inner6: true, iid: 7777}, 2) // an IPv6 EID over IPv6
	for _, x := range []*ring.DecapEntry{&six, &eid6} {
		if err := p.PutDecap(x); err != nil {
			t.Fatal(err)
		}
	}
	got := map[[16]byte]ring.DecapEntry{}
	if err := p.ListDecap(func(e *ring.DecapEntry, h uint64) bool {
		k := e.Dst6
		if !e.InnerV6 {
			k = netip.AddrFrom4(e.Dst).As16()
		}
		got[k] = *e
		if (e.Dst == decapDst) != (h == 3) {
			t.Errorf("entry %v: %d hits", e.Dst, h)
		}
		return true
	}); err != nil || len(got) != 6 {
		t.Fatalf("listed %d entries (%v), want 6", len(got), err)
	}
	as16 := func(a [4]byte) [16]byte { return netip.AddrFrom4(a).As16() }
	if got[as16(decapDst)] != e || got[as16(six.Dst)] != six || got[decapDst6] != eid6 {
		t.Fatalf("listed %+v, %+v and %+v\nwant %+v, %+v and %+v", got[as16(decapDst)], got[as16(six.Dst)], got[decapDst6], e, six, eid6)
	}
	// A sweep sees the IPv6 EIDs' entries too.
	if n, err := p.SweepDecap(func(e *ring.DecapEntry, _ uint64) bool { return !e.InnerV6 }); err != nil || n != 1 {
		t.Fatalf("a sweep of the IPv6 EIDs' entries deleted %d (%v), want 1", n, err)
	}
}

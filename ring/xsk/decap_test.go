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
	dst        [4]byte // outer destination (the RLOC)
	tos, ttl   uint8   // outer
	frag       uint16  // outer flags and fragment offset
	flags      uint8   // LISP flags
	iid        uint32
	innerTTL   uint8
	dport      uint16
	pad        int // bytes after the outer packet
	udpExtra   int // UDP length beyond the inner packet
	innerExtra int // inner total length beyond what it holds
}

var (
	decapRLOC = [4]byte{192, 0, 2, 1}
	decapDst  = [4]byte{10, 2, 0, 10}
	decapEth  = [14]byte{2, 0, 0, 0, 0, 0xcc, 2, 0, 0, 0, 0, 0xdd, 0x08, 0x00}
)

// coreFrame4 builds s's frame: Ethernet, outer IPv4, UDP, LISP header and an
// inner UDP packet from 10.1.0.10 to decapDst with 30 bytes of payload.
func coreFrame4(s lispSpec) (frame, inner []byte) {
	inner = siteFrame4([4]byte{10, 1, 0, 10}, decapDst, wire.ProtoUDP, s.innerTTL, [4]byte{4, 0, 0, 53}, 30, 0)[wire.EthernetLen:]
	if s.innerExtra != 0 {
		binary.BigEndian.PutUint16(inner[2:], uint16(len(inner)+s.innerExtra))
		inner[10], inner[11] = 0, 0
		binary.BigEndian.PutUint16(inner[10:], ^sum16(inner[:20]))
	}
	ul := wire.UDPLen + wire.HeaderLen + len(inner) + s.udpExtra
	tl := wire.IPv4MinLen + ul
	b := make([]byte, wire.EthernetLen+tl+s.pad)
	copy(b[0:12], []byte{2, 0, 0, 0, 0, 0xaa, 2, 0, 0, 0, 0, 0xbb})
	b[12], b[13] = 0x08, 0x00
	o := b[wire.EthernetLen:]
	o[0], o[1] = 0x45, s.tos
	binary.BigEndian.PutUint16(o[2:], uint16(tl))
	binary.BigEndian.PutUint16(o[6:], s.frag)
	o[8], o[9] = s.ttl, wire.ProtoUDP
	copy(o[12:16], []byte{192, 0, 2, 9})
	copy(o[16:20], s.dst[:])
	binary.BigEndian.PutUint16(o[10:], ^sum16(o[:20]))
	u := o[20:]
	binary.BigEndian.PutUint16(u[0:], 50000)
	binary.BigEndian.PutUint16(u[2:], s.dport)
	binary.BigEndian.PutUint16(u[4:], uint16(ul))
	u[8] = s.flags
	copy(u[9:12], []byte{0x12, 0x34, 0x56})
	binary.BigEndian.PutUint32(u[12:], s.iid<<8|0x01)
	copy(u[16:], inner)
	return b, inner
}

// goodLISP is a packet the decap entry of TestDecapOffload takes.
func goodLISP() lispSpec {
	return lispSpec{dst: decapRLOC, ttl: 64, flags: wire.FlagI, iid: 7777, innerTTL: 64, dport: wire.DataPort}
}

func loadCore(t testing.TB) *Program {
	t.Helper()
	p, err := LoadProgram(ProgramConfig{Mode: ModeCore})
	testkit.Require(t, "loading the XDP steering program (root, BPF)", err)
	t.Cleanup(func() { p.Close() })
	if err := p.AddLocal(netip.AddrFrom4(decapRLOC)); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDecapOffload runs the core program over LISP packets whose flow has a
// decap entry and checks what it redirects: the entry's Ethernet header
// and the inner packet, cut to its length, its TTL lowered to the outer
// one where that is lower (RFC 9300 §5.3) with a valid checksum, nothing
// else changed.
func TestDecapOffload(t *testing.T) {
	p := loadCore(t)
	const epoch = 4
	if err := p.SetOffload(epoch, 0); err != nil {
		t.Fatal(err)
	}
	e := ring.DecapEntry{IID: 7777, Dst: decapDst, RLOC: decapRLOC, Epoch: epoch, Ifindex: 1, Eth: decapEth, NonceOK: true}
	if err := p.PutDecap(&e); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*lispSpec)
	}{
		{"plain", func(*lispSpec) {}},
		{"outer-ttl-lower", func(s *lispSpec) { s.ttl = 5 }},
		{"outer-ttl-higher", func(s *lispSpec) { s.ttl = 200 }},
		{"nonce", func(s *lispSpec) { s.flags |= wire.FlagN }},
		{"map-version", func(s *lispSpec) { s.flags |= wire.FlagV }},
		{"df-and-padding", func(s *lispSpec) { s.frag, s.pad = 0x4000, 20 }},
		{"udp-longer-than-inner", func(s *lispSpec) { s.udpExtra = 6 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := goodLISP()
			tc.mod(&s)
			frame, inner := coreFrame4(s)
			before, _ := p.Stats()
			ret, out := run(t, p, frame)
			if ret != xdpRedirect {
				t.Fatalf("action %d, want XDP_REDIRECT", ret)
			}
			if after, _ := p.Stats(); after[StatOffload]-before[StatOffload] != 1 {
				t.Fatalf("offload counter moved by %d", after[StatOffload]-before[StatOffload])
			}
			if len(out) != wire.EthernetLen+len(inner) || string(out[:14]) != string(decapEth[:]) {
				t.Fatalf("out %d bytes (want %d), Ethernet % x", len(out), wire.EthernetLen+len(inner), out[:14])
			}
			in := out[wire.EthernetLen:]
			want := append([]byte(nil), inner...)
			if s.ttl < want[8] {
				want[8] = s.ttl
				want[10], want[11] = 0, 0
				binary.BigEndian.PutUint16(want[10:], ^sum16(want[:20]))
			}
			if string(in) != string(want) {
				t.Fatalf("inner packet\n% x\nwant\n% x", in, want)
			}
		})
	}
}

// TestDecapOffloadLeaves checks the packets the decap offload must leave to
// the socket (here: no socket, so XDP_PASS) unchanged: those the fast
// path's deliver4 does not take, those it reports to its slow path, and
// those without a current entry.
func TestDecapOffloadLeaves(t *testing.T) {
	p := loadCore(t)
	const epoch = 4
	if err := p.SetOffload(epoch, 0); err != nil {
		t.Fatal(err)
	}
	e := ring.DecapEntry{IID: 7777, Dst: decapDst, RLOC: decapRLOC, Epoch: epoch, Ifindex: 1, Eth: decapEth}
	if err := p.PutDecap(&e); err != nil {
		t.Fatal(err)
	}
	other := e
	other.RLOC, other.IID = [4]byte{192, 0, 2, 77}, 8888 // an entry for another RLOC
	if err := p.PutDecap(&other); err != nil {
		t.Fatal(err)
	}
	frame := func(mod func(*lispSpec)) []byte {
		s := goodLISP()
		mod(&s)
		b, _ := coreFrame4(s)
		return b
	}
	if ret, _ := run(t, p, frame(func(*lispSpec) {})); ret != xdpRedirect {
		t.Fatalf("the good frame: action %d", ret)
	}
	checkLeaves(t, p, []leaveCase{
		{name: "nonce-watched", frame: frame(func(s *lispSpec) { s.flags |= wire.FlagN })},
		{name: "nonce-and-version", frame: frame(func(s *lispSpec) { s.flags |= wire.FlagN | wire.FlagV })},
		{name: "echo-request", frame: frame(func(s *lispSpec) { s.flags |= wire.FlagE })},
		{name: "lsbs", frame: frame(func(s *lispSpec) { s.flags |= wire.FlagL })},
		{name: "no-instance-id", frame: frame(func(s *lispSpec) { s.flags = 0 })},
		{name: "other-instance-id", frame: frame(func(s *lispSpec) { s.iid = 7778 })},
		{name: "entry-for-another-rloc", frame: frame(func(s *lispSpec) { s.iid = 8888 })},
		{name: "ecn", frame: frame(func(s *lispSpec) { s.tos = 1 })},
		{name: "outer-ttl-0", frame: frame(func(s *lispSpec) { s.ttl = 0 })},
		{name: "inner-ttl-0", frame: frame(func(s *lispSpec) { s.innerTTL = 0 })},
		{name: "fragment", frame: frame(func(s *lispSpec) { s.frag = 0x2000 })},
		{name: "inner-longer-than-udp", frame: frame(func(s *lispSpec) { s.innerExtra = 1 })},
		{name: "udp-longer-than-ip", frame: mod(frame(func(*lispSpec) {}), func(b []byte) {
			binary.BigEndian.PutUint16(b[wire.EthernetLen+24:], binary.BigEndian.Uint16(b[wire.EthernetLen+24:])+1)
		})},
		{name: "bad-checksum", frame: mod(frame(func(*lispSpec) {}), func(b []byte) { b[wire.EthernetLen+10] ^= 1 })},
		{name: "inner-options", frame: mod(frame(func(*lispSpec) {}), func(b []byte) { b[wire.EthernetLen+36] = 0x46 })},
		{name: "truncated", frame: frame(func(*lispSpec) {})[:wire.EthernetLen+50]},
		{name: "old-epoch", frame: frame(func(*lispSpec) {}), setup: func() error { return p.SetOffload(epoch+1, 0) }},
		{name: "offload-off", frame: frame(func(*lispSpec) {}), setup: func() error { return p.SetOffload(0, 0) }},
	})
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
	for range 3 {
		b, _ := coreFrame4(goodLISP())
		if ret, _ := run(t, p, b); ret != xdpRedirect {
			t.Fatalf("action %d", ret)
		}
	}
	seen, hits := 0, uint64(0)
	n, err := p.SweepDecap(func(iid uint32, dst [4]byte, epoch uint32, h uint64) bool {
		seen++
		if iid != 7777 {
			t.Errorf("iid %d", iid)
		}
		if dst == decapDst {
			hits = h
		}
		return epoch == 2
	})
	if err != nil || seen != 7 || n != 3 || hits != 3 {
		t.Fatalf("sweep: %d seen, %d deleted, %d hits (%v)", seen, n, hits, err)
	}
	left := 0
	if _, err := p.SweepDecap(func(uint32, [4]byte, uint32, uint64) bool { left++; return true }); err != nil || left != 4 {
		t.Fatalf("%d entries left (%v)", left, err)
	}
}

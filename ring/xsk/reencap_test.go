package xsk

import (
	"encoding/binary"
	"testing"

	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/wire"
)

// reencapSeed and reencapEpoch are the core program's in the reencap tests.
const reencapSeed, reencapEpoch = 0x5eed, 6

// reencapEntryFor is the reencap entry (epoch reencapEpoch, our RLOC of the
// version s comes over: decapRLOC or decapRLOC6) for the flow of s's frame:
// its inner destination, instance-ID and the bucket of its inner packet's
// flow hash, with testFront's front (through an IPv6 RLOC with v6).
func reencapEntryFor(t *testing.T, s lispSpec, nonce, v6 bool) ring.ReencapEntry {
	t.Helper()
	_, inner := coreFrame(s)
	hash := wire.FlowHash(inner, reencapSeed)
	front, cs := testFront(nonce, v6)
	flen := ring.OffloadFront
	if v6 {
		flen = ring.OffloadFront6
	}
	e := ring.ReencapEntry{OffloadEntry: ring.OffloadEntry{Dst: decapDst, Bucket: uint8((hash * 0x9E3779B1) >> 24),
		Epoch: reencapEpoch, Ifindex: 1, Front: front, V6: v6, CsBase: cs, MaxInner: uint16(1500 - flen + wire.EthernetLen),
		Nonce: nonce}, IID: s.iid, RLOC: decapRLOC}
	if s.v6 {
		e.RLOC, e.Over6, e.RLOC6 = [4]byte{}, true, decapRLOC6
	}
	if s.inner6 {
		e.Dst, e.InnerV6, e.Dst6 = [4]byte{}, true, decapDst6
	}
	return e
}

// coreWithReencap is loadCore's program with reencap epoch reencapEpoch
// and the entry for the flow of goodLISP(over6) (to an IPv6 EID with
// inner6), which it returns.
func coreWithReencap(t *testing.T, nonceOK, over6, inner6, v6 bool) (*Program, ring.ReencapEntry) {
	t.Helper()
	p := loadCore(t)
	if err := p.SetReencap(reencapEpoch, reencapSeed); err != nil {
		t.Fatal(err)
	}
	s := goodLISP(over6)
	s.inner6 = inner6
	e := reencapEntryFor(t, s, false, v6)
	e.NonceOK = nonceOK
	if err := p.PutReencap(&e); err != nil {
		t.Fatal(err)
	}
	return p, e
}

// TestReencapOffload runs the core program over LISP packets whose flow has
// a reencap entry (an RTR's), over an IPv4 or an IPv6 outer header, to an
// IPv4 or an IPv6 EID, through an IPv4 and an IPv6 RLOC, and checks what it
// redirects: the entry's front, then the inner packet cut to its length,
// its TTL (hop limit) the lower of the outer and inner ones less one (RFC
// 9300 §5.3, then the hop; an IPv4 checksum updated), the outer header
// written as for an ITR's offload (TestOffloadEncap) from the inner TOS
// (traffic class) and new TTL.
func TestReencapOffload(t *testing.T) {
	for _, over6 := range []bool{false, true} {
		for _, inner6 := range []bool{false, true} {
			for _, v6 := range []bool{false, true} {
				name := map[bool]string{false: "over4/", true: "over6/"}[over6] + map[bool]string{false: "eid4/", true: "eid6/"}[inner6] +
					map[bool]string{false: "rloc4", true: "rloc6"}[v6]
				t.Run(name, func(t *testing.T) { reencapCases(t, over6, inner6, v6) })
			}
		}
	}
}

// reencapCases is TestReencapOffload for one outer version, EID version and
// RLOC version.
func reencapCases(t *testing.T, over6, inner6, v6 bool) {
	p, e := coreWithReencap(t, true, over6, inner6, v6)
	hl := wire.IPv4MinLen
	if v6 {
		hl = wire.IPv6Len
	}
	for _, tc := range lispTaken {
		t.Run(tc.name, func(t *testing.T) {
			s := goodLISP(over6)
			s.inner6 = inner6
			tc.mod(&s)
			frame, inner := coreFrame(s)
			hash := wire.FlowHash(inner, reencapSeed)
			out := runOffloaded(t, p, frame)
			flen := wire.EthernetLen + hl + wire.UDPLen + wire.HeaderLen
			if len(out) != flen+len(inner) || string(out[:14]) != string(e.Front[:14]) {
				t.Fatalf("out %d bytes (want %d), Ethernet % x", len(out), flen+len(inner), out[:14])
			}
			ttl := min(s.ttl, s.innerTTL) - 1
			want := append([]byte(nil), inner...)
			tos := inner[1]
			if inner6 {
				want[7] = ttl
				tos = inner[0]<<4 | inner[1]>>4
			} else {
				want[8] = ttl
				want[10], want[11] = 0, 0
				binary.BigEndian.PutUint16(want[10:], ^sum16(want[:20]))
			}
			if in := out[flen:]; string(in) != string(want) {
				t.Fatalf("inner packet\n% x\nwant\n% x", in, want)
			}
			o := out[wire.EthernetLen:]
			ul := uint16(wire.UDPLen + wire.HeaderLen + len(inner))
			if v6 {
				if w0 := binary.BigEndian.Uint32(o); w0 != 6<<28|uint32(tos)<<20|hash&0xfffff || binary.BigEndian.Uint16(o[4:]) != ul ||
					o[7] != ttl || string(o[8:40]) != string(e.Front[22:54]) {
					t.Fatalf("outer IPv6 header % x", o[:40])
				}
			} else if o[1] != tos || binary.BigEndian.Uint16(o[2:]) != 20+ul || o[8] != ttl || sum16(o[:20]) != 0xffff ||
				string(o[12:20]) != string(e.Front[26:34]) {
				t.Fatalf("outer IPv4 header % x (sum %#x)", o[:20], sum16(o[:20]))
			}
			u := o[hl:]
			if binary.BigEndian.Uint16(u) != wire.SourcePort(hash) || binary.BigEndian.Uint16(u[2:]) != wire.DataPort ||
				binary.BigEndian.Uint16(u[4:]) != ul || string(u[8:16]) != string(e.Front[14+hl+8:14+hl+16]) {
				t.Fatalf("UDP and LISP headers % x (source port want %d)", u[:16], wire.SourcePort(hash))
			}
		})
	}
}

// TestReencapOffloadLeaves checks the packets the reencap offload must leave
// to the socket unchanged: those the RTR's flow memo path does not take,
// those it reports to its slow path, those whose TTL ends here, and those
// without a current entry of their flow and RLOC.
func TestReencapOffloadLeaves(t *testing.T) {
	for _, over6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "over4", true: "over6"}[over6], func(t *testing.T) { reencapLeaves(t, over6) })
	}
}

func reencapLeaves(t *testing.T, over6 bool) {
	p, e := coreWithReencap(t, false, over6, false, false)
	base := goodLISP(over6)
	frame := func(mod func(*lispSpec)) []byte { return lispFrame(base, mod) }
	if ret, _ := run(t, p, frame(func(*lispSpec) {})); ret != xdpRedirect {
		t.Fatalf("the good frame: action %d", ret)
	}
	other := e
	other.IID, other.RLOC, other.RLOC6[15] = 8888, [4]byte{192, 0, 2, 77}, 77 // an entry for another RLOC of ours
	if err := p.PutReencap(&other); err != nil {
		t.Fatal(err)
	}
	across := reencapEntryFor(t, lispSpec{v6: !over6, iid: 9999}, false, false) // for our RLOC of the other version
	if err := p.PutReencap(&across); err != nil {
		t.Fatal(err)
	}
	short := reencapEntryFor(t, lispSpec{v6: over6, iid: 7000}, false, false)
	short.MaxInner = 53 // the inner packet is 54 bytes
	if err := p.PutReencap(&short); err != nil {
		t.Fatal(err)
	}
	ol := wire.EthernetLen + base.outerLen()
	cases := append(lispLeaves(base),
		leaveCase{name: "longer-than-the-path", frame: frame(func(s *lispSpec) { s.iid = 7000 })},
		leaveCase{name: "other-bucket", frame: mod(frame(func(*lispSpec) {}), func(b []byte) {
			in := b[ol+16:]
			in[20]++ // another source port: another flow hash
		})},
		leaveCase{name: "outer-ttl-1", frame: frame(func(s *lispSpec) { s.ttl = 1 })},
		leaveCase{name: "inner-ttl-1", frame: frame(func(s *lispSpec) { s.innerTTL = 1 })},
		leaveCase{name: "inner-ipv6", frame: frame(func(s *lispSpec) { s.inner6 = true })})
	checkLeaves(t, p, append(cases, epochLeaves(base, reencapEpoch, func(e uint32) error { return p.SetReencap(e, reencapSeed) })...))
}

// TestReencapBesideDecap: the reencap and decap entries of one core program
// keep their own epochs: each direction's packets are taken only while its
// epoch is current, and a decap entry of the same flow goes first.
func TestReencapBesideDecap(t *testing.T) {
	p, _ := coreWithReencap(t, true, false, false, false)
	frame, inner := coreFrame(goodLISP(false))
	n := len(inner)
	if ret, out := run(t, p, frame); ret != xdpRedirect || len(out) != ring.OffloadFront+n {
		t.Fatalf("reencap alone: action %d, %d bytes", ret, len(out))
	}
	if err := p.SetOffload(decapEpoch, reencapSeed); err != nil { // the decap epoch: no decap entry yet
		t.Fatal(err)
	}
	if ret, out := run(t, p, frame); ret != xdpRedirect || len(out) != ring.OffloadFront+n {
		t.Fatalf("reencap with decap on: action %d, %d bytes", ret, len(out))
	}
	d := decapEntry(false, decapEpoch)
	if err := p.PutDecap(&d); err != nil {
		t.Fatal(err)
	}
	if ret, out := run(t, p, frame); ret != xdpRedirect || len(out) != wire.EthernetLen+n {
		t.Fatalf("with a decap entry: action %d, %d bytes (want the delivery)", ret, len(out))
	}
	if err := p.SetOffload(0, reencapSeed); err != nil {
		t.Fatal(err)
	}
	if ret, out := run(t, p, frame); ret != xdpRedirect || len(out) != ring.OffloadFront+n {
		t.Fatalf("decap off again: action %d, %d bytes", ret, len(out))
	}
	if err := p.SetReencap(0, reencapSeed); err != nil {
		t.Fatal(err)
	}
	if ret, _ := run(t, p, frame); ret != xdpPass {
		t.Fatalf("both off: action %d, want XDP_PASS", ret)
	}
}

// TestReencapSweep: a sweep and a listing see every reencap entry with its
// flow, RLOC, epoch and hits; the sweep deletes what it is told to, and an
// entry the map cannot hold is refused.
func TestReencapSweep(t *testing.T) {
	p, good := coreWithReencap(t, true, false, false, false)
	for i := range 6 {
		e := good
		e.Dst, e.Epoch = [4]byte{10, 2, 0, byte(100 + i)}, uint32(reencapEpoch-1+i%2)
		if err := p.PutReencap(&e); err != nil {
			t.Fatal(err)
		}
	}
	eid6 := reencapEntryFor(t, lispSpec{inner6: true, iid: 7777}, false, true) // an IPv6 EID, through an IPv6 RLOC
	old6 := eid6
	old6.Dst6[15], old6.Epoch = 0x11, reencapEpoch-1
	for _, e := range []ring.ReencapEntry{eid6, old6} {
		if err := p.PutReencap(&e); err != nil {
			t.Fatal(err)
		}
	}
	redirectTimes(t, p, goodLISP(false), 3)
	listed := 0
	if err := p.ListReencap(func(e *ring.ReencapEntry, hits uint64) bool {
		listed++
		if e.Dst == good.Dst && !e.InnerV6 && (hits != 3 || *e != good) {
			t.Errorf("listed %+v with %d hits, want %+v with 3", *e, hits, good)
		}
		if e.InnerV6 && e.Dst6 == eid6.Dst6 && (hits != 0 || *e != eid6) {
			t.Errorf("listed %+v with %d hits, want %+v with 0", *e, hits, eid6)
		}
		return true
	}); err != nil || listed != 9 {
		t.Fatalf("listed %d entries (%v), want 9", listed, err)
	}
	n, err := p.SweepReencap(func(e *ring.ReencapEntry, _ uint64) bool { return e.Epoch == reencapEpoch })
	if err != nil || n != 4 {
		t.Fatalf("swept %d (%v), want the 4 of the past epoch", n, err)
	}
	left := 0
	if err := p.ListReencap(func(e *ring.ReencapEntry, _ uint64) bool { left++; return e.Epoch == reencapEpoch }); err != nil || left != 5 {
		t.Fatalf("%d entries left (%v), want 5", left, err)
	}
	for _, bad := range []ring.ReencapEntry{
		{OffloadEntry: ring.OffloadEntry{Dst: decapDst, Epoch: 1}},                           // no egress interface
		{OffloadEntry: ring.OffloadEntry{Dst: decapDst, Epoch: 1, Ifindex: 1}, IID: 1 << 24}, // a 25-bit instance-ID
	} {
		if err := p.PutReencap(&bad); err == nil {
			t.Errorf("PutReencap(%+v) took it", bad)
		}
	}
}

// TestOffloadBothOuterVersions: a flow that comes over IPv4 and over IPv6
// (to our RLOC of each version) has an entry for each in the decap and the
// reencap maps, side by side: each packet is taken through the entry of
// the version it came over (told apart here by their Ethernet headers), and
// a listing shows both.
func TestOffloadBothOuterVersions(t *testing.T) {
	for _, inner6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "eid4", true: "eid6"}[inner6], func(t *testing.T) {
			p := loadCore(t)
			if err := p.SetOffload(decapEpoch, 0); err != nil {
				t.Fatal(err)
			}
			if err := p.SetReencap(reencapEpoch, reencapSeed); err != nil {
				t.Fatal(err)
			}
			var d [2]ring.DecapEntry
			var r [2]ring.ReencapEntry
			for i, over6 := range []bool{false, true} {
				s := goodLISP(over6)
				s.inner6 = inner6
				d[i] = decapEntryFor(s, decapEpoch)
				d[i].NonceOK, d[i].Eth[5] = true, byte(0xd0+i)
				s.iid = 7778 // another instance-ID: no decap entry
				r[i] = reencapEntryFor(t, s, false, false)
				r[i].NonceOK, r[i].Front[5] = true, byte(0xe0+i)
				if err := p.PutDecap(&d[i]); err != nil {
					t.Fatal(err)
				}
				if err := p.PutReencap(&r[i]); err != nil {
					t.Fatal(err)
				}
			}
			for i, over6 := range []bool{false, true} {
				s := goodLISP(over6)
				s.inner6 = inner6
				frame, _ := coreFrame(s)
				if ret, out := run(t, p, frame); ret != xdpRedirect || out[5] != byte(0xd0+i) {
					t.Errorf("decap over6 %v: action %d, Ethernet % x, want the entry ending %#x", over6, ret, out[:14], 0xd0+i)
				}
				s.iid = 7778
				frame, _ = coreFrame(s)
				if ret, out := run(t, p, frame); ret != xdpRedirect || out[5] != byte(0xe0+i) {
					t.Errorf("reencap over6 %v: action %d, Ethernet % x, want the entry ending %#x", over6, ret, out[:14], 0xe0+i)
				}
			}
			var dl, rl []bool
			if err := p.ListDecap(func(e *ring.DecapEntry, _ uint64) bool { dl = append(dl, e.V6); return true }); err != nil {
				t.Fatal(err)
			}
			if err := p.ListReencap(func(e *ring.ReencapEntry, _ uint64) bool { rl = append(rl, e.Over6); return true }); err != nil {
				t.Fatal(err)
			}
			if len(dl) != 2 || dl[0] == dl[1] || len(rl) != 2 || rl[0] == rl[1] {
				t.Fatalf("listed decap entries over IPv6 %v, reencap %v: want one of each version", dl, rl)
			}
		})
	}
}

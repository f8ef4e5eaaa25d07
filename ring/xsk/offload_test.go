package xsk

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/wire"
)

// XDP action codes (enum xdp_action).
const (
	xdpPass     = 2
	xdpRedirect = 4
)

// sum16 is the one's complement sum of b, folded (RFC 1071).
func sum16(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// siteFrame4 is an Ethernet frame holding an IPv4 packet (no options) from
// src to dst with protocol proto, the 4 bytes l4 after the header, payload
// bytes of zeros, and pad bytes after the packet (Ethernet padding).
func siteFrame4(src, dst [4]byte, proto, ttl uint8, l4 [4]byte, payload, pad int) []byte {
	tl := wire.IPv4MinLen + 4 + payload
	b := make([]byte, wire.EthernetLen+tl+pad)
	copy(b[0:6], []byte{2, 0, 0, 0, 0, 1})
	copy(b[6:12], []byte{2, 0, 0, 0, 0, 2})
	b[12], b[13] = 0x08, 0x00
	ip := b[wire.EthernetLen:]
	ip[0], ip[1] = 0x45, 0x28
	binary.BigEndian.PutUint16(ip[2:], uint16(tl))
	binary.BigEndian.PutUint16(ip[4:], 0x1234)
	ip[8], ip[9] = ttl, proto
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	binary.BigEndian.PutUint16(ip[10:], ^sum16(ip[:20]))
	copy(ip[20:24], l4[:])
	return b
}

// siteFrame6 is siteFrame4 for an IPv6 packet (traffic class 0x28, hop
// limit hl, next header proto) from src to dst.
func siteFrame6(src, dst [16]byte, proto, hl uint8, l4 [4]byte, payload, pad int) []byte {
	pl := 4 + payload
	b := make([]byte, wire.EthernetLen+wire.IPv6Len+pl+pad)
	copy(b[0:6], []byte{2, 0, 0, 0, 0, 1})
	copy(b[6:12], []byte{2, 0, 0, 0, 0, 2})
	b[12], b[13] = 0x86, 0xdd
	ip := b[wire.EthernetLen:]
	binary.BigEndian.PutUint32(ip[0:], 6<<28|0x28<<20|0x12345)
	binary.BigEndian.PutUint16(ip[4:], uint16(pl))
	ip[6], ip[7] = proto, hl
	copy(ip[8:24], src[:])
	copy(ip[24:40], dst[:])
	copy(ip[40:44], l4[:])
	return b
}

// testFront is an Ethernet + outer IPv4 + UDP + LISP front (with v6: an
// outer IPv6 header) as the fast path's next-hop memo holds it: the fields
// the packet sets are zero, the rest the template's; csBase is the sum of
// the IPv4 template's fixed words.
func testFront(nonce, v6 bool) ([ring.OffloadFront6]byte, uint32) {
	var f [ring.OffloadFront6]byte
	copy(f[0:6], []byte{2, 0, 0, 0, 0, 0xaa})
	copy(f[6:12], []byte{2, 0, 0, 0, 0, 0xbb})
	f[12], f[13] = 0x08, 0x00
	o := f[wire.EthernetLen:]
	hl := wire.IPv4MinLen
	if v6 {
		f[12], f[13] = 0x86, 0xdd
		hl = wire.IPv6Len
		o[0], o[6] = 0x60, wire.ProtoUDP
		copy(o[8:24], []byte{0x20, 0x01, 0x0d, 0xb8, 15: 1})
		copy(o[24:40], []byte{0x20, 0x01, 0x0d, 0xb8, 15: 2})
	} else {
		o[0] = 0x45
		o[6] = 0x40 // DF
		copy(o[12:16], []byte{192, 0, 2, 1})
		copy(o[16:20], []byte{192, 0, 2, 2})
	}
	binary.BigEndian.PutUint16(o[hl+2:], wire.DataPort)
	if nonce {
		o[hl+8] = 0x88 // N, I
	} else {
		o[hl+8] = 0x08 // I
	}
	copy(o[hl+12:hl+15], []byte{0, 0x1e, 0x61}) // IID 7777
	var cs uint32
	for _, w := range [][]byte{o[6:8], o[12:14], o[14:16], o[16:18], o[18:20]} {
		cs += uint32(binary.BigEndian.Uint16(w))
	}
	return f, cs
}

func loadSite(t testing.TB) *Program {
	t.Helper()
	p, err := LoadProgram(ProgramConfig{Mode: ModeSite})
	testkit.Require(t, "loading the XDP steering program (root, BPF)", err)
	t.Cleanup(func() { p.Close() })
	return p
}

// siteAt is loadSite's program with offload epoch epoch and seed seed.
func siteAt(t testing.TB, epoch, seed uint32) *Program {
	t.Helper()
	p := loadSite(t)
	if err := p.SetOffload(epoch, seed); err != nil {
		t.Fatal(err)
	}
	return p
}

// The IPv6 site host and remote EID of the IPv6 cases.
var (
	siteSrc6 = [16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 15: 0x10}
	siteDst6 = [16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 2, 15: 0x10}
)

// runOffloaded runs p on frame, checks that the program redirected it and
// counted it offloaded, and returns what it left.
func runOffloaded(t *testing.T, p *Program, frame []byte) []byte {
	t.Helper()
	before, _ := p.Stats()
	ret, out := run(t, p, frame)
	if ret != xdpRedirect {
		t.Fatalf("action %d, want XDP_REDIRECT", ret)
	}
	if after, _ := p.Stats(); after[StatOffload]-before[StatOffload] != 1 {
		t.Fatalf("offload counter moved by %d", after[StatOffload]-before[StatOffload])
	}
	return out
}

func run(t *testing.T, p *Program, frame []byte) (uint32, []byte) {
	t.Helper()
	ret, out, err := p.TestRun(frame) // out: what the program left
	if err != nil {
		t.Fatal(err)
	}
	return ret, out
}

// TestOffloadEncap runs the site program over frames whose flows have an
// offload entry, through an IPv4 and an IPv6 RLOC, and checks the
// encapsulated frame byte by byte against the fast path's rules (RFC 9300
// §5.3: outer TTL and TOS from the inner header, UDP source port from the
// flow hash, lengths, checksums, nonce; the IPv6 flow label from the flow
// hash and a zero UDP checksum, as wire.PatchOuterIPv6 writes them).
func TestOffloadEncap(t *testing.T) {
	const seed, epoch = 0x5eed, 7
	p := siteAt(t, epoch, seed)
	src, dst := [4]byte{10, 1, 0, 10}, [4]byte{10, 2, 0, 10}
	src6, dst6 := siteSrc6, siteDst6
	for _, tc := range []struct {
		name    string
		proto   uint8
		l4      [4]byte
		payload int
		pad     int
		nonce   bool
		v6      bool // through an IPv6 RLOC
		in6     bool // an IPv6 EID
	}{
		{name: "udp-64B-padded", proto: wire.ProtoUDP, l4: [4]byte{4, 0, 0, 53}, payload: 4, pad: 18, nonce: true},
		{name: "tcp", proto: wire.ProtoTCP, l4: [4]byte{0x9c, 0x40, 0, 80}, payload: 100},
		{name: "icmp-no-ports", proto: 1, l4: [4]byte{8, 0, 1, 2}, payload: 60, nonce: true},
		{name: "v6-udp-64B-padded", proto: wire.ProtoUDP, l4: [4]byte{4, 0, 0, 53}, payload: 4, pad: 18, nonce: true, v6: true},
		{name: "v6-tcp", proto: wire.ProtoTCP, l4: [4]byte{0x9c, 0x40, 0, 80}, payload: 100, v6: true},
		{name: "eid6-udp-padded", proto: wire.ProtoUDP, l4: [4]byte{4, 0, 0, 53}, payload: 4, pad: 18, nonce: true, in6: true},
		{name: "eid6-icmpv6-no-ports", proto: 58, l4: [4]byte{128, 0, 1, 2}, payload: 60, in6: true},
		{name: "eid6-v6-tcp", proto: wire.ProtoTCP, l4: [4]byte{0x9c, 0x40, 0, 80}, payload: 100, v6: true, in6: true},
		{name: "eid6-v6-udp-no-payload", proto: wire.ProtoUDP, l4: [4]byte{4, 0, 0, 53}, payload: 0, nonce: true, v6: true, in6: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := siteFrame4(src, dst, tc.proto, 64, tc.l4, tc.payload, tc.pad)
			if tc.in6 {
				frame = siteFrame6(src6, dst6, tc.proto, 64, tc.l4, tc.payload, tc.pad)
			}
			inner := append([]byte(nil), frame[wire.EthernetLen:len(frame)-tc.pad]...)
			hash := wire.FlowHash(inner, seed)
			front, cs := testFront(tc.nonce, tc.v6)
			flen, hl := ring.OffloadFront, wire.IPv4MinLen
			if tc.v6 {
				flen, hl = ring.OffloadFront6, wire.IPv6Len
			}
			e := &ring.OffloadEntry{Dst: dst, Bucket: uint8((hash * 0x9E3779B1) >> 24), Epoch: epoch, Ifindex: 1,
				Front: front, V6: tc.v6, CsBase: cs, MaxInner: uint16(1500 - flen + wire.EthernetLen), Nonce: tc.nonce}
			if tc.in6 {
				e.Dst, e.InnerV6, e.Dst6 = [4]byte{}, true, dst6
			}
			if err := p.PutOffload(e); err != nil {
				t.Fatal(err)
			}
			out := runOffloaded(t, p, frame)
			if n := flen + len(inner); len(out) != n {
				t.Fatalf("out %d bytes, want %d (the Ethernet padding cut)", len(out), n)
			}
			if string(out[:14]) != string(front[:14]) {
				t.Fatalf("Ethernet header % x, want % x", out[:14], front[:14])
			}
			o := out[wire.EthernetLen:]
			// The inner packet: TTL (hop limit) one less, an IPv4
			// checksum still valid.
			in := o[hl+16:]
			want := append([]byte(nil), inner...)
			if tc.in6 {
				want[7]--
				if in[7] != 63 {
					t.Fatalf("inner hop limit %d", in[7])
				}
			} else {
				want[8]--
				if in[8] != 63 || sum16(in[:20]) != 0xffff {
					t.Fatalf("inner TTL %d, header sum %#x", in[8], sum16(in[:20]))
				}
				want[10], want[11] = in[10], in[11]
			}
			if string(in) != string(want) {
				t.Fatalf("inner packet changed beyond TTL and checksum:\n% x\n% x", in, want)
			}
			ul := uint16(16 + len(inner))
			if tc.v6 {
				// The outer IPv6 header.
				if w0 := binary.BigEndian.Uint32(o); w0 != 6<<28|0x28<<20|hash&0xfffff {
					t.Fatalf("version, traffic class, flow label %#x, want %#x", w0, 6<<28|0x28<<20|hash&0xfffff)
				}
				if binary.BigEndian.Uint16(o[4:]) != ul || o[6] != wire.ProtoUDP || o[7] != 63 ||
					string(o[8:40]) != string(front[22:54]) {
					t.Fatalf("outer IPv6 header % x", o[:40])
				}
			} else {
				if o[0] != 0x45 || o[1] != 0x28 || binary.BigEndian.Uint16(o[2:]) != uint16(36+len(inner)) ||
					o[6] != 0x40 || o[8] != 63 || o[9] != wire.ProtoUDP || sum16(o[:20]) != 0xffff {
					t.Fatalf("outer IPv4 header % x (sum %#x)", o[:20], sum16(o[:20]))
				}
				if string(o[12:20]) != string(front[26:34]) {
					t.Fatalf("outer addresses % x", o[12:20])
				}
			}
			u := o[hl:]
			if sp := binary.BigEndian.Uint16(u); sp != wire.SourcePort(hash) {
				t.Fatalf("UDP source port %d, want %d", sp, wire.SourcePort(hash))
			}
			if binary.BigEndian.Uint16(u[2:]) != wire.DataPort || binary.BigEndian.Uint16(u[4:]) != ul ||
				binary.BigEndian.Uint16(u[6:]) != 0 {
				t.Fatalf("UDP header % x", u[:8])
			}
			if u[8] != front[14+hl+8] || string(u[12:16]) != string(front[14+hl+12:14+hl+16]) {
				t.Fatalf("LISP header % x", u[8:16])
			}
			if !tc.nonce && string(u[9:12]) != "\x00\x00\x00" {
				t.Fatalf("nonce % x without N", u[9:12])
			}
		})
	}
}

// TestOffloadLeaves checks the frames the offload must leave to the socket
// (here: no socket, so XDP_PASS) unchanged.
func TestOffloadLeaves(t *testing.T) {
	const seed, epoch = 1, 3
	p := siteAt(t, epoch, seed)
	src, dst := [4]byte{10, 1, 0, 10}, [4]byte{10, 2, 0, 10}
	l4 := [4]byte{4, 0, 0, 53}
	good := siteFrame4(src, dst, wire.ProtoUDP, 64, l4, 10, 0)
	hash := wire.FlowHash(good[wire.EthernetLen:], seed)
	front, cs := testFront(true, false)
	e := ring.OffloadEntry{Dst: dst, Bucket: uint8((hash * 0x9E3779B1) >> 24), Epoch: epoch, Ifindex: 1,
		Front: front, CsBase: cs, MaxInner: 1464, Nonce: true}
	if err := p.PutOffload(&e); err != nil {
		t.Fatal(err)
	}
	if ret, _ := run(t, p, good); ret != xdpRedirect {
		t.Fatalf("the good frame: action %d", ret)
	}
	resum := func(b []byte) {
		ip := b[wire.EthernetLen:]
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], ^sum16(ip[:20]))
	}
	checkLeaves(t, p, []leaveCase{
		{name: "ttl-1", frame: mod(good, func(b []byte) { b[wire.EthernetLen+8] = 1; resum(b) })},
		{name: "bad-checksum", frame: mod(good, func(b []byte) { b[wire.EthernetLen+10] ^= 1 })},
		{name: "options", frame: mod(good, func(b []byte) { b[wire.EthernetLen] = 0x46; resum(b) })},
		{name: "total-length-beyond-frame", frame: mod(good, func(b []byte) {
			binary.BigEndian.PutUint16(b[wire.EthernetLen+2:], uint16(len(b)))
			resum(b)
		})},
		{name: "other-bucket", frame: mod(good, func(b []byte) { b[wire.EthernetLen+21]++ })},
		{name: "other-destination", frame: mod(good, func(b []byte) { b[wire.EthernetLen+19]++; resum(b) })},
		{name: "multicast", frame: mod(good, func(b []byte) { b[wire.EthernetLen+16] = 239; resum(b) })},
		{name: "truncated", frame: good[:wire.EthernetLen+12]},
		{name: "too-long-for-path", frame: good, setup: func() error {
			e2 := e
			e2.MaxInner = uint16(len(good) - wire.EthernetLen - 1)
			return p.PutOffload(&e2)
		}},
		{name: "too-long-for-path-v6", frame: good, setup: func() error {
			e2 := e
			e2.Front, _ = testFront(true, true)
			e2.V6, e2.MaxInner = true, uint16(len(good)-wire.EthernetLen-1)
			return p.PutOffload(&e2)
		}},
		{name: "old-epoch", frame: good, setup: func() error { return p.SetOffload(epoch+1, seed) }},
		{name: "offload-off", frame: good, setup: func() error { return p.SetOffload(0, seed) }},
	})
}

// TestOffloadLeaves6 is TestOffloadLeaves for IPv6 EIDs.
func TestOffloadLeaves6(t *testing.T) {
	const seed, epoch = 1, 3
	p := siteAt(t, epoch, seed)
	src6, dst6 := siteSrc6, siteDst6
	good := siteFrame6(src6, dst6, wire.ProtoUDP, 64, [4]byte{4, 0, 0, 53}, 10, 0)
	hash := wire.FlowHash(good[wire.EthernetLen:], seed)
	front, cs := testFront(true, false)
	e := ring.OffloadEntry{InnerV6: true, Dst6: dst6, Bucket: uint8((hash * 0x9E3779B1) >> 24), Epoch: epoch, Ifindex: 1,
		Front: front, CsBase: cs, MaxInner: 1464, Nonce: true}
	if err := p.PutOffload(&e); err != nil {
		t.Fatal(err)
	}
	v4 := e // an IPv4 EID's entry with the same bytes: not the IPv6 one's
	v4.InnerV6, v4.Dst = false, [4]byte(dst6[12:])
	if err := p.PutOffload(&v4); err != nil {
		t.Fatal(err)
	}
	if ret, _ := run(t, p, good); ret != xdpRedirect {
		t.Fatalf("the good frame: action %d", ret)
	}
	const ip = wire.EthernetLen
	checkLeaves(t, p, []leaveCase{
		{name: "hop-limit-1", frame: mod(good, func(b []byte) { b[ip+7] = 1 })},
		{name: "payload-beyond-frame", frame: mod(good, func(b []byte) { binary.BigEndian.PutUint16(b[ip+4:], 15) })},
		{name: "other-bucket", frame: mod(good, func(b []byte) { b[ip+41]++ })},
		{name: "other-destination", frame: mod(good, func(b []byte) { b[ip+39]++ })},
		{name: "multicast", frame: mod(good, func(b []byte) { b[ip+24], b[ip+25] = 0xff, 0x0e })},
		{name: "hop-by-hop", frame: mod(good, func(b []byte) { b[ip+6] = 0 })},
		{name: "truncated", frame: good[:ip+40]},
		{name: "too-long-for-path", frame: good, setup: func() error {
			e2 := e
			e2.MaxInner = uint16(len(good) - ip - 1)
			return p.PutOffload(&e2)
		}},
		{name: "old-epoch", frame: good, setup: func() error { return p.SetOffload(epoch+1, seed) }},
	})
}

// leaveCase is a frame a program must leave to the socket unchanged, after
// setup (nil: none).
type leaveCase struct {
	name  string
	frame []byte
	setup func() error
}

// checkLeaves runs p over each case's frame, in order, and fails unless it
// passes the frame (XDP_PASS: no socket here) unchanged.
func checkLeaves(t *testing.T, p *Program, cases []leaveCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				if err := tc.setup(); err != nil {
					t.Fatal(err)
				}
			}
			ret, out := run(t, p, tc.frame)
			if ret != xdpPass {
				t.Fatalf("action %d, want XDP_PASS (to the socket)", ret)
			}
			if string(out[:len(tc.frame)]) != string(tc.frame) {
				t.Fatalf("frame changed:\n% x\n% x", out[:len(tc.frame)], tc.frame)
			}
		})
	}
}

// TestOffloadSweep checks that a sweep sees every entry with its hits and
// deletes what it is told to, and that the table is bounded.
func TestOffloadSweep(t *testing.T) {
	p := siteAt(t, 1, 0)
	front, cs := testFront(false, false)
	for i := range 10 {
		e := ring.OffloadEntry{Dst: [4]byte{10, 2, 0, byte(i)}, Bucket: uint8(i), Epoch: uint32(1 + i%2), Ifindex: 1, Front: front, CsBase: cs, MaxInner: 1464}
		if err := p.PutOffload(&e); err != nil {
			t.Fatal(err)
		}
	}
	seen := 0
	n, err := p.SweepOffload(func(e *ring.OffloadEntry, hits uint64) bool {
		seen++
		if e.Dst[3] != e.Bucket || hits != 0 {
			t.Errorf("entry %v/%d hits %d", e.Dst, e.Bucket, hits)
		}
		return e.Epoch == 1
	})
	if err != nil || n != 5 || seen != 10 {
		t.Fatalf("sweep deleted %d of %d seen (%v), want 5 of 10", n, seen, err)
	}
	left := 0
	if _, err := p.SweepOffload(func(e *ring.OffloadEntry, _ uint64) bool {
		left++
		if e.Epoch != 1 {
			t.Errorf("epoch %d entry left", e.Epoch)
		}
		return true
	}); err != nil || left != 5 {
		t.Fatalf("%d entries left (%v)", left, err)
	}
	// A listing returns each entry as it was put, with its hits, and
	// stops when told to.
	var listed []ring.OffloadEntry
	if err := p.ListOffload(func(e *ring.OffloadEntry, hits uint64) bool {
		listed = append(listed, *e)
		if hits != 0 {
			t.Errorf("entry %v hits %d", e.Dst, hits)
		}
		return true
	}); err != nil || len(listed) != 5 {
		t.Fatalf("listed %d entries (%v), want 5", len(listed), err)
	}
	for _, e := range listed {
		want := ring.OffloadEntry{Dst: e.Dst, Bucket: e.Dst[3], Epoch: 1, Ifindex: 1, Front: front, CsBase: cs, MaxInner: 1464}
		if e != want || e.Dst[3]%2 != 0 {
			t.Fatalf("listed %+v\nwant %+v", e, want)
		}
	}
	calls := 0
	if err := p.ListOffload(func(*ring.OffloadEntry, uint64) bool { calls++; return calls < 2 }); err != nil || calls != 2 {
		t.Fatalf("a listing told to stop at the second entry made %d calls (%v)", calls, err)
	}
	// An IPv6 EID's entry is listed and swept too.
	six := ring.OffloadEntry{InnerV6: true, Dst6: [16]byte{0x20, 0x01, 15: 9}, Bucket: 9, Epoch: 2, Ifindex: 1, Front: front, CsBase: cs, MaxInner: 1464}
	if err := p.PutOffload(&six); err != nil {
		t.Fatal(err)
	}
	var got6 []ring.OffloadEntry
	if err := p.ListOffload(func(e *ring.OffloadEntry, _ uint64) bool {
		if e.InnerV6 {
			got6 = append(got6, *e)
		}
		return true
	}); err != nil || len(got6) != 1 || got6[0] != six {
		t.Fatalf("listed IPv6 EIDs' entries %+v (%v), want %+v", got6, err, six)
	}
	if n, err := p.SweepOffload(func(e *ring.OffloadEntry, _ uint64) bool { return !e.InnerV6 }); err != nil || n != 1 {
		t.Fatalf("a sweep of the IPv6 EIDs' entries deleted %d (%v), want 1", n, err)
	}
	if err := p.PutOffload(&ring.OffloadEntry{Epoch: 1}); err == nil {
		t.Fatal("an entry without an egress interface was accepted")
	}
	// The map is bounded: a put beyond 65536 flows fails with an error.
	var full error
	for i := 0; i < 65536+1 && full == nil; i++ {
		e := ring.OffloadEntry{Dst: [4]byte{10, 3, byte(i >> 8), byte(i)}, Bucket: uint8(i >> 16), Epoch: 1, Ifindex: 1}
		full = p.PutOffload(&e)
	}
	if full == nil || errors.Is(full, ebpf.ErrKeyNotExist) {
		t.Fatalf("no error once full: %v", full)
	}
}

// BenchmarkSweepOffload: one sweep over a three-quarters full offload map
// (what fastpath.Offload.Sweep meets at most before it starts a new epoch),
// in batches and key by key; every entry is kept.
func BenchmarkSweepOffload(b *testing.B) {
	p := loadSite(b)
	const entries = 49152
	for i := range entries {
		e := ring.OffloadEntry{Dst: [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}, Epoch: 1, Ifindex: 1}
		if err := p.PutOffload(&e); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		name  string
		sweep func(func(*steerOffloadKey, *steerOffloadVal) error) error
	}{{"batch", func(v func(*steerOffloadKey, *steerOffloadVal) error) error { return walkBatches(p.objs.Offload, v) }},
		{"keys", func(v func(*steerOffloadKey, *steerOffloadVal) error) error { return walkKeys(p.objs.Offload, v) }}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				n := 0
				if err := c.sweep(func(*steerOffloadKey, *steerOffloadVal) error { n++; return nil }); err != nil {
					b.Fatal(err)
				}
				if n != entries {
					b.Fatalf("visited %d of %d", n, entries)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/sweep")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/entries, "ns/entry")
		})
	}
}

// checkRedirects fails t unless tp's router-side veth takes XDP redirects
// exactly when want says.
func checkRedirects(t *testing.T, tp *topo, want bool) {
	t.Helper()
	var ok, known bool
	if err := tp.r.Do(func() (err error) { ok, known, err = AcceptsRedirects(tp.rif[0]); return err }); err != nil {
		t.Fatal(err)
	}
	if !known {
		testkit.Unavailable(t, "the kernel does not report xdp-features (Linux 6.3 or later)")
	}
	if ok != want {
		t.Fatalf("%s accepts redirects: %v, want %v", tp.rif[0], ok, want)
	}
}

// peerXDP attaches an XDP program to the peer of tp's first veth, calls
// then(true), detaches it and calls then(false).
func peerXDP(t *testing.T, tp *topo, then func(attached bool)) {
	t.Helper()
	p, err := LoadProgram(ProgramConfig{Mode: ModeOff})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := tp.p.Do(func() error { return p.Attach(tp.pif[0], XDPDriver) }); err != nil {
		t.Fatal(err)
	}
	then(true)
	if err := tp.p.Do(p.Detach); err != nil {
		t.Fatal(err)
	}
	then(false)
}

// TestAcceptsRedirects: a veth takes XDP redirects only while its peer runs
// an XDP program, and AcceptsRedirects says so.
func TestAcceptsRedirects(t *testing.T) {
	tp := newTopo(t, 1)
	check := func(want bool) { t.Helper(); checkRedirects(t, tp, want) }
	check(false)
	peerXDP(t, tp, check)
	err := tp.r.Do(func() error {
		_, _, err := AcceptsRedirects("nosuch0")
		return err
	})
	if err == nil {
		t.Fatal("no error for a missing interface")
	}
}

// TestWatchFeatures: a FeatureWatch in the router's namespace signals when
// the veth's peer attaches and detaches an XDP program, and each time
// AcceptsRedirects then reads the new answer.
func TestWatchFeatures(t *testing.T) {
	tp := newTopo(t, 1)
	var w *FeatureWatch
	if err := tp.r.Do(func() (err error) { w, err = WatchFeatures(); return err }); err != nil {
		testkit.Unavailable(t, "%v", err)
	}
	defer w.Close()
	select {
	case <-w.C(): // anything from before the test's changes
	default:
	}
	next := func(want bool) {
		t.Helper()
		select {
		case <-w.C():
		case <-time.After(10 * time.Second):
			t.Fatalf("no xdp-features notification in 10 s (err %v)", w.Err())
		}
		checkRedirects(t, tp, want)
	}
	peerXDP(t, tp, next)
	if err := w.Close(); err != nil || w.Err() != nil {
		t.Fatalf("close: %v, err %v", err, w.Err())
	}
}

// TestOffloadDelete: a deleted entry, of either EID version, no longer
// takes its flow's packets, and deleting an entry that is not there is no
// error; the reencap maps' deletes name the outer version too.
func TestOffloadDelete(t *testing.T) {
	const seed, epoch = 1, 3
	p := siteAt(t, epoch, seed)
	src6, dst6 := siteSrc6, siteDst6
	l4 := [4]byte{4, 0, 0, 53}
	front, cs := testFront(true, false)
	for _, in6 := range []bool{false, true} {
		frame := siteFrame4([4]byte{10, 1, 0, 10}, [4]byte{10, 2, 0, 10}, wire.ProtoUDP, 64, l4, 10, 0)
		if in6 {
			frame = siteFrame6(src6, dst6, wire.ProtoUDP, 64, l4, 10, 0)
		}
		hash := wire.FlowHash(frame[wire.EthernetLen:], seed)
		e := ring.OffloadEntry{Dst: [4]byte{10, 2, 0, 10}, Bucket: uint8((hash * 0x9E3779B1) >> 24), Epoch: epoch, Ifindex: 1,
			Front: front, CsBase: cs, MaxInner: 1464, Nonce: true}
		if in6 {
			e.Dst, e.InnerV6, e.Dst6 = [4]byte{}, true, dst6
		}
		if err := p.PutOffload(&e); err != nil {
			t.Fatal(err)
		}
		if ret, _ := run(t, p, frame); ret != xdpRedirect {
			t.Fatalf("in6 %v: the entry's frame: action %d", in6, ret)
		}
		del := ring.OffloadEntry{Dst: e.Dst, InnerV6: in6, Dst6: e.Dst6, Bucket: e.Bucket} // the key's fields
		for range 2 {
			if err := p.DeleteOffload(&del); err != nil {
				t.Fatalf("in6 %v: delete: %v", in6, err)
			}
		}
		if ret, _ := run(t, p, frame); ret != xdpPass {
			t.Fatalf("in6 %v: after the delete: action %d, want XDP_PASS", in6, ret)
		}
	}
	c, r4 := coreWithReencap(t, true, false, false, false)
	r6 := r4
	r6.Over6, r6.RLOC, r6.RLOC6 = true, [4]byte{}, decapRLOC6
	if err := c.PutReencap(&r6); err != nil {
		t.Fatal(err)
	}
	frame4, _ := coreFrame(goodLISP(false))
	frame6, _ := coreFrame(goodLISP(true))
	if ret6, _ := run(t, c, frame6); ret6 != xdpRedirect {
		t.Fatalf("over IPv6 before the delete: action %d, want XDP_REDIRECT", ret6)
	}
	if err := c.DeleteReencap(&ring.ReencapEntry{OffloadEntry: ring.OffloadEntry{Dst: r4.Dst, Bucket: r4.Bucket}, IID: r4.IID, Over6: true}); err != nil {
		t.Fatal(err)
	}
	if ret4, _ := run(t, c, frame4); ret4 != xdpRedirect {
		t.Fatalf("over IPv4 after the delete of the entry over IPv6: action %d, want XDP_REDIRECT", ret4)
	}
	if ret6, _ := run(t, c, frame6); ret6 != xdpPass {
		t.Fatalf("over IPv6 after its entry's delete: action %d, want XDP_PASS", ret6)
	}
}

package fastpath

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/fastpath/nexthop"
	"github.com/rloc-router/rloc/wire"
)

// reasmPieces is the number of fragments w's reassembly table holds.
func reasmPieces(w *Worker) int {
	n := 0
	for i := range w.reasm.ent {
		if e := &w.reasm.ent[i]; e.used {
			n += e.pieces
		}
	}
	return n
}

// splitIPv4 splits the Ethernet + IPv4 frame b into two fragments, the
// first carrying first payload bytes (a multiple of 8).
func splitIPv4(t testing.TB, b []byte, first int) [][]byte {
	t.Helper()
	ip := wire.IPv4(b[wire.EthernetLen:])
	hl := ip.HeaderLength()
	pl := int(ip.TotalLength()) - hl
	if first%8 != 0 || first >= pl {
		t.Fatalf("split at %d of %d", first, pl)
	}
	hdr := b[:wire.EthernetLen+hl]
	f0 := append(append([]byte(nil), hdr...), b[wire.EthernetLen+hl:wire.EthernetLen+hl+first]...)
	f1 := append(append([]byte(nil), hdr...), b[wire.EthernetLen+hl+first:wire.EthernetLen+hl+pl]...)
	setFrag(f0, wire.IPv4FlagMF, 0)
	setFrag(f1, 0, first)
	return [][]byte{f0, f1}
}

// setFrag rewrites the fragment fields and length of the IPv4 header of the
// frame b (flags, byte offset) and its checksum.
func setFrag(b []byte, flags uint16, off int) {
	ip := wire.IPv4(b[wire.EthernetLen:])
	ip.SetTotalLength(uint16(len(b) - wire.EthernetLen))
	ip.SetFlagsFragment(flags | uint16(off/8))
	ip.UpdateChecksum()
}

// fragRig returns an ETR rig, a LISP frame with an inner packet of payload
// UDP bytes, and what the ETR sends on the site port for that frame
// unfragmented.
func fragRig(t *testing.T, payload int) (*rig, []byte, []byte) {
	t.Helper()
	in := innerPacket(t, innerSpec{src: remote4, dst: hostA, payload: payload})
	full := lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: iidSite, inner: in})
	ref := newRig(t, nil)
	ref.fromCore(full)
	want := one(t, ref.site)
	return newRig(t, nil), full, want
}

func (r *rig) extraDelta(before [NumExtra]uint64) (d [NumExtra]uint64) {
	for i := range d {
		d[i] = r.w.Extra(Extra(i)) - before[i]
	}
	return d
}

func (r *rig) extras() (v [NumExtra]uint64) {
	for i := range v {
		v[i] = r.w.Extra(Extra(i))
	}
	return v
}

// TestReassembly: the ETR reassembles outer fragments, in order, out of
// order and across steps, and delivers exactly the inner packet the
// unfragmented frame gives; bad fragments are dropped with their counters.
func TestReassembly(t *testing.T) {
	r, full, want := fragRig(t, 1000)
	frags := splitIPv4(t, full, 512)
	deliver := func(name string, frames ...[]byte) {
		t.Helper()
		for _, f := range frames {
			r.fromCore(f)
		}
		got := drain(r.site)
		if len(got) != 1 || !bytes.Equal(got[0], want) {
			t.Errorf("%s: %d frames, want the decapsulated packet", name, len(got))
		}
		if r.w.reasm.live != 0 {
			t.Errorf("%s: %d entries left", name, r.w.reasm.live)
		}
	}
	t.Run("in order", func(t *testing.T) {
		before := r.extras()
		r.fromCore(frags...)
		got := drain(r.site)
		if len(got) != 1 || !bytes.Equal(got[0], want) {
			t.Fatalf("%d frames, want the decapsulated packet", len(got))
		}
		if d := r.extraDelta(before); d[ExtraReasmDone] != 1 {
			t.Errorf("reasm-done %d", d[ExtraReasmDone])
		}
	})
	t.Run("out of order", func(t *testing.T) {
		r.fromCore(frags[1], frags[0])
		got := drain(r.site)
		if len(got) != 1 || !bytes.Equal(got[0], want) {
			t.Fatalf("%d frames, want the decapsulated packet", len(got))
		}
		deliver("across steps", frags[1], frags[0])
	})
	t.Run("three pieces", func(t *testing.T) {
		a := splitIPv4(t, full, 256)
		b := splitIPv4(t, a[1], 512-256)
		setFrag(b[0], wire.IPv4FlagMF, 256)
		setFrag(b[1], 0, 512)
		deliver("three", b[1], a[0], b[0])
	})
	t.Run("duplicate", func(t *testing.T) {
		before, ex := r.counters(), r.extras()
		r.fromCore(frags[0], frags[0])
		expectDrop(t, before, r.counters(), DropFragment)
		deliver("after duplicate", frags[1])
		if d := r.extraDelta(ex); d[ExtraReasmDuplicate] != 1 {
			t.Errorf("reasm-duplicate %d", d[ExtraReasmDuplicate])
		}
	})
	t.Run("overlap", func(t *testing.T) {
		other := splitIPv4(t, full, 504)
		before, ex := r.counters(), r.extras()
		r.fromCore(frags[0], other[1])
		expectDrop(t, before, r.counters(), DropFragment)
		deliver("after overlap", frags[1])
		if d := r.extraDelta(ex); d[ExtraReasmOverlap] != 1 {
			t.Errorf("reasm-overlap %d", d[ExtraReasmOverlap])
		}
	})
	t.Run("oversize", func(t *testing.T) {
		far := append([]byte(nil), frags[1]...)
		setFrag(far, 0, 8000)
		before, ex := r.counters(), r.extras()
		r.fromCore(far)
		expectDrop(t, before, r.counters(), DropFragment)
		if d := r.extraDelta(ex); d[ExtraReasmOversize] != 1 || r.w.reasm.live != 0 {
			t.Errorf("reasm-oversize %d, live %d", d[ExtraReasmOversize], r.w.reasm.live)
		}
		deliver("after oversize", frags[0], frags[1])
	})
	t.Run("timeout", func(t *testing.T) {
		before, ex := r.counters(), r.extras()
		r.fromCore(frags[0])
		r.w.epoch = r.w.epoch.Add(-2*time.Second - 1) // the worker's clock jumps past the timeout
		r.w.Step()
		expectDrop(t, before, r.counters(), DropFragment)
		if d := r.extraDelta(ex); d[ExtraReasmTimeout] != 1 || r.w.reasm.live != 0 {
			t.Errorf("reasm-timeout %d, live %d", d[ExtraReasmTimeout], r.w.reasm.live)
		}
		r.fromCore(frags[1])
		if n := len(drain(r.site)); n != 0 || r.w.reasm.live != 1 {
			t.Errorf("second fragment alone: %d frames, %d entries", n, r.w.reasm.live)
		}
		deliver("after timeout", frags[0])
	})
	t.Run("table full", func(t *testing.T) {
		ex := r.extras()
		for i := 0; i <= reasmSlots; i++ {
			f := append([]byte(nil), frags[0]...)
			binary.BigEndian.PutUint16(f[wire.EthernetLen+4:], uint16(1000+i))
			setFrag(f, wire.IPv4FlagMF, 0)
			r.fromCore(f)
		}
		if d := r.extraDelta(ex); d[ExtraReasmFull] != 1 || r.w.reasm.live != reasmSlots {
			t.Errorf("reasm-full %d, live %d", d[ExtraReasmFull], r.w.reasm.live)
		}
		r.w.epoch = r.w.epoch.Add(-2*time.Second - 1)
		r.w.Step()
		if d := r.extraDelta(ex); d[ExtraReasmTimeout] != reasmSlots || r.w.reasm.live != 0 {
			t.Errorf("reasm-timeout %d, live %d", d[ExtraReasmTimeout], r.w.reasm.live)
		}
	})
}

// TestReassemblyFrameOversize: a datagram that reassembles to more than a
// frame holds is dropped and counted.
func TestReassemblyFrameOversize(t *testing.T) {
	in := innerPacket(t, innerSpec{src: remote4, dst: hostA, payload: 1726}) // 1770 bytes of outer payload: fit the buffer, not a frame
	full := lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: iidSite, inner: in})
	r := newRig(t, nil)
	frags := splitIPv4(t, full, 1000)
	before, ex := r.counters(), r.extras()
	r.fromCore(frags...)
	if n := len(drain(r.site)); n != 0 {
		t.Errorf("%d frames delivered", n)
	}
	after := r.counters()
	if d := r.extraDelta(ex); d[ExtraReasmOversize] != 1 || after.Dropped(DropFragment)-before.Dropped(DropFragment) != 2 {
		t.Errorf("reasm-oversize %d, fragment drops %d", d[ExtraReasmOversize],
			after.Dropped(DropFragment)-before.Dropped(DropFragment))
	}
}

// etrNextHops is testNextHops plus the EIDs of 10.2.0.0/16 behind the site
// port: the next hops of the ETR at rlocRemote4.
func etrNextHops() *nexthop.Snapshot {
	links := []nexthop.Link{
		{Index: 10, MAC: macSite, MTU: 1500, Port: 1, Up: true},
		{Index: 20, MAC: macCore, MTU: 1500, Port: 2, Up: true},
	}
	routes := []nexthop.Route{
		{Prefix: netip.MustParsePrefix("10.2.0.0/16"), IfIndex: 10},
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), IfIndex: 20},
	}
	neighs := []nexthop.Neighbour{
		{Addr: remote4, IfIndex: 10, MAC: macHostA, Valid: true},
		{Addr: rlocLocal4, IfIndex: 20, MAC: macUnderGW, Valid: true},
	}
	return nexthop.NewSnapshot(links, routes, neighs)
}

// TestFragmentRoundTrip: ITR worker → outer fragments → ETR worker → the
// inner packet, as the ITR forwarded it, on the ETR's site link.
func TestFragmentRoundTrip(t *testing.T) {
	itr := mtuRig(t, nil)
	etr := newRig(t, func(c *Config) { c.Outer.RLOC4 = rlocRemote4 })
	etr.nh.Store(etrNextHops())
	for _, payload := range []int{1400, 1337, 1700} {
		spec := innerSpec{src: hostA, dst: remote4, payload: payload, ttl: 30, seq: byte(payload)}
		want := innerPacket(t, spec)
		want[8]--
		wire.IPv4(want).UpdateChecksum()
		itr.fromSite(siteFrame(t, spec))
		frags := drain(itr.core)
		if len(frags) != 2 {
			t.Fatalf("payload %d: %d fragments", payload, len(frags))
		}
		etr.fromCore(frags[1], frags[0])
		got := drain(etr.site)
		if len(got) != 1 || !bytes.Equal(got[0][wire.EthernetLen:], want) {
			t.Fatalf("payload %d: %d frames, or not the inner packet", payload, len(got))
		}
	}
	if c := etr.counters(); c.Get(CounterDecap) != 3 || c.DroppedTotal() != 0 {
		t.Errorf("decap %d, drops %d", c.Get(CounterDecap), c.DroppedTotal())
	}
}

// TestFragmentNoAllocs: outer fragmentation (ITR) and reassembly (ETR)
// allocate nothing.
func TestFragmentNoAllocs(t *testing.T) {
	itr := mtuRig(t, nil)
	big := siteFrame(t, innerSpec{src: hostA, dst: remote4, payload: 1400})
	frag := func() {
		itr.site.Inject(big)
		itr.w.Step()
		itr.core.Drain(nil)
	}
	frag()
	if a := testing.AllocsPerRun(200, frag); a != 0 {
		t.Errorf("fragmentation: %v allocations per step", a)
	}
	r, full, _ := fragRig(t, 1000)
	frags := splitIPv4(t, full, 512)
	reasm := func() {
		r.core.Inject(frags[1])
		r.core.Inject(frags[0])
		r.w.Step()
		r.site.Drain(nil)
	}
	reasm()
	if a := testing.AllocsPerRun(200, reasm); a != 0 {
		t.Errorf("reassembly: %v allocations per step", a)
	}
	if itr.w.Extra(ExtraFragmented) < 200 || r.w.Extra(ExtraReasmDone) < 200 {
		t.Errorf("fragmented %d, reassembled %d", itr.w.Extra(ExtraFragmented), r.w.Extra(ExtraReasmDone))
	}
}

// TestReassembledControlToKernel: a fragmented datagram to our RLOC that is
// not LISP data (a large Map-Register to UDP 4342) is reassembled and handed
// to the kernel whole, since the XDP program steered its later fragment here.
func TestReassembledControlToKernel(t *testing.T) {
	var got [][]byte
	r := newRig(t, func(c *Config) {
		c.ToKernel = func(pkt []byte) bool { got = append(got, append([]byte(nil), pkt...)); return true }
	})
	in := innerPacket(t, innerSpec{src: remote4, dst: hostA, payload: 1000})
	full := lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: iidSite, inner: in})
	udp := wire.UDP(full[wire.EthernetLen+wire.IPv4MinLen:])
	udp.SetDstPort(wire.ControlPort)
	udp.SetChecksum(0)
	frags := splitIPv4(t, full, 512)
	r.fromCore(frags[1], frags[0])
	if len(got) != 1 || !bytes.Equal(got[0], full[wire.EthernetLen:]) {
		t.Fatalf("kernel got %d packets, want the reassembled datagram", len(got))
	}
	if n := len(drain(r.site)); n != 0 {
		t.Fatalf("%d frames delivered to the site", n)
	}
	if c := r.counters(); c.Get(CounterToKernel) != 1 {
		t.Fatalf("to-kernel %d", c.Get(CounterToKernel))
	}
}

package alt

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/gaissmai/bart"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/bgp"
	"github.com/rloc-router/rloc/wire"
)

// altPacket is a Map-Request for dst in instance-ID 0 as it travels the
// ALT: the inner IP and UDP packet of an ECM (RFC 6836).
func altPacket(t testing.TB, src, dst string) []byte {
	return altPacketIID(t, src, dst, 0, false)
}

// altPacketIID is a Map-Request for dst in iid, the EID in an
// instance-ID LCAF when lcaf is set.
func altPacketIID(t testing.TB, src, dst string, iid uint32, lcaf bool) []byte {
	t.Helper()
	eid := wire.IPAddress(netip.MustParseAddr(dst))
	if lcaf {
		eid = wire.IIDAddress(iid, netip.MustParseAddr(dst))
	}
	m := wire.MapRequest{Nonce: wire.Nonce{1, 2, 3, 4, 5, 6, 7, 8}, ITRRLOCs: []wire.Address{wire.IPAddress(netip.MustParseAddr(src))},
		Records: []wire.EIDRecord{{MaskLen: uint8(netip.MustParseAddr(dst).BitLen()), EID: eid}}}
	msg, err := m.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := wire.ECM{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), SrcPort: 40000, DstPort: wire.ControlPort, TTL: 64,
		Message: msg}
	b, err := e.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b[ecmHeaderLen:]
}

func TestMapRequest(t *testing.T) {
	for _, fam := range [][2]string{{"192.0.2.4", "10.2.0.10"}, {"2001:db8::4", "2001:db8:2::10"}} {
		p := altPacket(t, fam[0], fam[1])
		src, dst, sport, msg, ok := mapRequest(p)
		if !ok || src.String() != fam[0] || dst.String() != fam[1] || sport != 40000 || wire.MessageType(msg[0]>>4) != wire.TypeMapRequest {
			t.Fatalf("%v: %v %v %v %v", fam, src, dst, sport, ok)
		}
		// The IP and UDP headers and the message's type byte must be
		// there; the message itself is parsed later (requestIID).
		hdr := 20 + 8 + 1
		if p[0]>>4 == 6 {
			hdr = 40 + 8 + 1
		}
		for n := range hdr {
			if _, _, _, _, ok := mapRequest(p[:n]); ok {
				t.Fatalf("%v cut to %d accepted", fam, n)
			}
		}
	}
	p := altPacket(t, "192.0.2.4", "10.2.0.10")
	reply := append([]byte(nil), p...)
	reply[28] = byte(wire.TypeMapReply) << 4
	port := append([]byte(nil), p...)
	binary.BigEndian.PutUint16(port[22:], 53)
	tcp := append([]byte(nil), p...)
	tcp[9] = 6
	for name, b := range map[string][]byte{"map-reply": reply, "port 53": port, "tcp": tcp} {
		if _, _, _, _, ok := mapRequest(b); ok {
			t.Errorf("%s accepted as a Map-Request", name)
		}
	}
}

// TestDecTTL: the incremental checksum update equals a recomputation.
func TestDecTTL(t *testing.T) {
	p := altPacket(t, "192.0.2.4", "10.2.0.10")
	for ttl := 64; ttl > 1; ttl-- {
		if !decTTL(p) {
			t.Fatalf("TTL %d refused", ttl)
		}
		if p[8] != byte(ttl-1) || ipSum(p[:20]) != 0xffff {
			t.Fatalf("TTL %d: header %x does not verify", p[8], p[:20])
		}
	}
	if decTTL(p) {
		t.Fatal("TTL 1 forwarded")
	}
	p6 := altPacket(t, "2001:db8::4", "2001:db8:2::10")
	if !decTTL(p6) || p6[7] != 63 {
		t.Fatalf("hop limit %d", p6[7])
	}
}

// ipSum is the one's complement sum of b's 16-bit words (0xffff when an
// IPv4 header's checksum verifies).
func ipSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// FuzzMapRequest: the ALT's packet check never panics, and what it accepts
// has the addresses where the header says.
func FuzzMapRequest(f *testing.F) {
	f.Add(altPacket(f, "192.0.2.4", "10.2.0.10"))
	f.Add(altPacket(f, "2001:db8::4", "2001:db8:2::10"))
	f.Fuzz(func(t *testing.T, b []byte) {
		src, dst, _, _, ok := mapRequest(b)
		if ok && (!src.IsValid() || !dst.IsValid() || src.Is4() != (b[0]>>4 == 4)) {
			t.Fatalf("accepted %x as %v -> %v", b, src, dst)
		}
	})
}

// TestOnPacketDrops: packets on the ALT that are not Map-Requests, and
// Map-Requests for EIDs with no route or only an aggregate made here, are
// dropped and counted; one for a prefix this router originates is queued
// for the local Map-Server as an ECM with the M bit.
func TestOnPacketDrops(t *testing.T) {
	a := &ALT{deliver: make(chan deliverItem, 1)}
	tbl := new(bart.Table[*Entry])
	tbl.Insert(netip.MustParsePrefix("10.0.0.0/14"), &Entry{Prefix: netip.MustParsePrefix("10.0.0.0/14"), Aggregate: true})
	a.table.Store(&tables[*Entry]{0: tbl})
	local := new(bart.Table[struct{}])
	local.Insert(netip.MustParsePrefix("10.1.0.0/24"), struct{}{})
	a.local.Store(&tables[struct{}]{0: local})

	notMR := altPacket(t, "192.0.2.4", "10.1.0.10")
	notMR[9] = 6 // TCP
	a.onPacket(nil, notMR)
	a.onPacket(nil, altPacket(t, "192.0.2.4", "10.2.0.10")) // only the aggregate made here
	a.onPacket(nil, altPacket(t, "192.0.2.4", "10.9.0.10")) // no route at all
	bad := altPacket(t, "192.0.2.4", "10.1.0.10")
	bad = bad[:len(bad)-3] // the EID record cut short
	a.onPacket(nil, bad)
	a.onPacket(nil, altPacketIID(t, "192.0.2.4", "10.1.0.10", 7, true)) // the prefix is local in instance-ID 0 only
	if s := a.Stats(); s.NotMapRequest != 2 || s.NoRoute != 3 || s.Forwarded != 0 {
		t.Fatalf("counters %+v", s)
	}
	a.onPacket(nil, altPacket(t, "192.0.2.4", "10.1.0.10"))
	select {
	case it := <-a.deliver:
		var e wire.ECM
		if err := e.Parse(it.ecm); err != nil || !e.ToMapServer || e.Dst != netip.MustParseAddr("10.1.0.10") ||
			it.src != netip.MustParseAddrPort("192.0.2.4:40000") {
			t.Fatalf("delivered %+v from %v: %v", e, it.src, err)
		}
	default:
		t.Fatal("nothing delivered for a prefix originated here")
	}
	a.onPacket(nil, altPacket(t, "192.0.2.4", "10.1.0.10"))
	a.onPacket(nil, altPacket(t, "192.0.2.4", "10.1.0.10")) // the queue (1) is full
	if s := a.Stats(); s.QueueFull != 1 {
		t.Fatalf("queue full %d", s.QueueFull)
	}
}

// TestTablesByIID: with the L3VPN families the ALT table is keyed by
// instance-ID and prefix. The same prefix learnt in instance-IDs 5 and 7
// from two neighbours makes two routes; lookups, the EID space for
// negative replies and a withdrawal go by instance-ID; unicast routes
// on a VPN ALT are not EID routes. A Map-Request is delivered by the
// instance-ID of its EID record.
func TestTablesByIID(t *testing.T) {
	a := &ALT{cfg: &slowpath.ALTConfig{}, vpn: true, deliver: make(chan deliverItem, 4)}
	a.table.Store(&tables[*Entry]{})
	p := netip.MustParsePrefix("10.2.0.0/24")
	a.local.Store(localTables(a.cfg, map[slowpath.EIDPrefix]bool{{IID: 9, Prefix: p}: true}))
	pa, pb := netip.MustParseAddr("10.255.0.1"), netip.MustParseAddr("10.255.0.3")
	a.onBest(bgp.Route{Prefix: p, VPN: true, IID: 5, Neighbor: pa, ASPath: []uint32{65105}})
	a.onBest(bgp.Route{Prefix: p, VPN: true, IID: 7, Neighbor: pb, ASPath: []uint32{65107}})
	a.onBest(bgp.Route{Prefix: netip.MustParsePrefix("10.3.0.0/24"), Neighbor: pa}) // unicast: ignored
	eid := netip.MustParseAddr("10.2.0.10")
	for iid, want := range map[uint32]netip.Addr{5: pa, 7: pb} {
		e, ok := a.Lookup(iid, eid)
		if !ok || e.Peer != want || e.IID != iid || e.Prefix != p {
			t.Fatalf("instance-ID %d: %+v %v", iid, e, ok)
		}
		if len(a.Known(iid, nil)) != 1 {
			t.Fatalf("instance-ID %d: no known EID space", iid)
		}
	}
	for _, iid := range []uint32{0, 6} {
		if e, ok := a.Lookup(iid, eid); ok || len(a.Known(iid, nil)) != 0 {
			t.Fatalf("instance-ID %d has a route: %+v", iid, e)
		}
	}
	if e, ok := a.Lookup(0, netip.MustParseAddr("10.3.0.1")); ok {
		t.Fatalf("a unicast route in the VPN ALT's table: %+v", e)
	}
	if tb := a.Table(); len(tb) != 2 || tb[0].IID != 5 || tb[1].IID != 7 {
		t.Fatalf("table %+v", tb)
	}
	a.onBest(bgp.Route{Prefix: p, VPN: true, IID: 5, Withdrawn: true})
	if _, ok := a.Lookup(5, eid); ok {
		t.Fatal("instance-ID 5's route survived its withdrawal")
	}
	if e, ok := a.Lookup(7, eid); !ok || e.Peer != pb {
		t.Fatalf("instance-ID 7's route went with 5's: %+v", e)
	}

	// Instance-ID 9's prefix is originated here: its Map-Request is
	// delivered; the same EID in instance-ID 0 (no LCAF) has no route.
	a.onPacket(nil, altPacketIID(t, "192.0.2.4", "10.2.0.10", 9, true))
	select {
	case it := <-a.deliver:
		var e wire.ECM
		if err := e.Parse(it.ecm); err != nil || !e.ToMapServer {
			t.Fatalf("delivered %+v: %v", e, err)
		}
	default:
		t.Fatalf("instance-ID 9's request not delivered: %+v", a.Stats())
	}
	a.onPacket(nil, altPacket(t, "192.0.2.4", "10.2.0.10"))
	if s := a.Stats(); s.NoRoute != 1 || len(a.deliver) != 0 {
		t.Fatalf("counters %+v, %d delivered", s, len(a.deliver))
	}
}

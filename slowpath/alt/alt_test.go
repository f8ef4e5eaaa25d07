package alt

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/gaissmai/bart"

	"github.com/rloc-router/rloc/wire"
)

// altPacket is a Map-Request as it travels the ALT: the inner IP and UDP
// packet of an ECM (RFC 6836).
func altPacket(t testing.TB, src, dst string) []byte {
	t.Helper()
	e := wire.ECM{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), SrcPort: 40000, DstPort: wire.ControlPort, TTL: 64,
		Message: []byte{byte(wire.TypeMapRequest) << 4, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8}}
	b, err := e.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b[ecmHeaderLen:]
}

func TestMapRequest(t *testing.T) {
	for _, fam := range [][2]string{{"192.0.2.4", "10.2.0.10"}, {"2001:db8::4", "2001:db8:2::10"}} {
		p := altPacket(t, fam[0], fam[1])
		src, dst, sport, ok := mapRequest(p)
		if !ok || src.String() != fam[0] || dst.String() != fam[1] || sport != 40000 {
			t.Fatalf("%v: %v %v %v %v", fam, src, dst, sport, ok)
		}
		for n := range len(p) - 11 {
			if _, _, _, ok := mapRequest(p[:n]); ok {
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
		if _, _, _, ok := mapRequest(b); ok {
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
		src, dst, _, ok := mapRequest(b)
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
	a.table.Store(tbl)
	local := new(bart.Table[struct{}])
	local.Insert(netip.MustParsePrefix("10.1.0.0/24"), struct{}{})
	a.local.Store(local)

	notMR := altPacket(t, "192.0.2.4", "10.1.0.10")
	notMR[9] = 6 // TCP
	a.onPacket(nil, notMR)
	a.onPacket(nil, altPacket(t, "192.0.2.4", "10.2.0.10")) // only the aggregate made here
	a.onPacket(nil, altPacket(t, "192.0.2.4", "10.9.0.10")) // no route at all
	if s := a.Stats(); s.NotMapRequest != 1 || s.NoRoute != 2 || s.Forwarded != 0 {
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

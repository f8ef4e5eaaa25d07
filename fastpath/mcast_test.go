package fastpath

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/rloc-router/rloc/cache"
)

var mcGroup = netip.MustParseAddr("232.1.1.1")

func mcETR(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}) }

// installSG installs an (S,G) entry with the given RLE in instance iid.
func installSG(t *testing.T, r *rig, iid uint32, src netip.Addr, hops []cache.RLEHop) {
	t.Helper()
	res := r.c.Apply([]cache.Update{{Key: cache.MulticastKey(iid, netip.PrefixFrom(src, 32), netip.PrefixFrom(mcGroup, 32)),
		RLE: hops, TTL: 60}})
	if res.Err != nil || res.Inserted+res.Replaced != 1 {
		t.Fatalf("install (S,G): %+v", res)
	}
}

// decodeCopies decodes the frames the worker sent to the core: the outer
// destination of each, and checks the LISP payload is want.
func decodeCopies(t *testing.T, frames [][]byte, want []byte) map[netip.Addr]int {
	t.Helper()
	got := map[netip.Addr]int{}
	for _, fr := range frames {
		p := gopacket.NewPacket(fr, layers.LayerTypeEthernet, gopacket.Default)
		if p.ErrorLayer() != nil {
			t.Fatalf("gopacket: %v", p.ErrorLayer().Error())
		}
		eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if eth == nil || ip == nil || udp == nil || udp.DstPort != 4341 || !bytes.Equal(eth.DstMAC, macUnderGW[:]) {
			t.Fatalf("copy is not Ethernet/IPv4/UDP 4341 to the gateway: %v", p)
		}
		if !bytes.Equal(udp.Payload[8:], want) {
			t.Errorf("copy to %s: inner packet differs", ip.DstIP)
		}
		d, _ := netip.AddrFromSlice(ip.DstIP)
		got[d]++
	}
	return got
}

// TestReplicateITRPipeline: an ITR worker with an (S,G) entry whose RLE has
// 4 ETRs (and the ITR itself) sends exactly 4 copies of every packet.
func TestReplicateITRPipeline(t *testing.T) {
	r := newRig(t, nil)
	hops := []cache.RLEHop{{Addr: rlocLocal4, Level: 128}}
	for i := 1; i <= 4; i++ {
		hops = append(hops, cache.RLEHop{Addr: mcETR(i), Level: 128})
	}
	installSG(t, r, iidSite, hostA, hops)
	const packets = 25
	spec := innerSpec{src: hostA, dst: mcGroup, ttl: 9, payload: 22}
	want := innerPacket(t, innerSpec{src: hostA, dst: mcGroup, ttl: 8, payload: 22}) // TTL decremented
	var frames [][]byte
	for range packets {
		r.fromSite(siteFrame(t, spec))
		frames = append(frames, drain(r.core)...)
	}
	if len(frames) != 4*packets {
		t.Fatalf("%d copies for %d packets, want %d", len(frames), packets, 4*packets)
	}
	got := decodeCopies(t, frames, want)
	for i := 1; i <= 4; i++ {
		if got[mcETR(i)] != packets {
			t.Errorf("ETR %s got %d copies", mcETR(i), got[mcETR(i)])
		}
	}
	if got[rlocLocal4] != 0 {
		t.Errorf("the ITR sent copies to itself")
	}
	c := r.counters()
	if c.Get(CounterReplicate) != 4*packets || c.DroppedTotal() != 0 {
		t.Errorf("replicate counter %d, drops %d", c.Get(CounterReplicate), c.DroppedTotal())
	}
	// An RLE update takes effect on the next packet: a fifth ETR.
	installSG(t, r, iidSite, hostA, append(hops, cache.RLEHop{Addr: mcETR(5), Level: 128}))
	r.fromSite(siteFrame(t, spec))
	if n := len(drain(r.core)); n != 5 {
		t.Errorf("after the RLE update: %d copies", n)
	}
}

// TestReplicateRTRPipeline: an RTR at level 0 re-encapsulates to the level
// above (the two ETRs at 128), not to its level-0 peer.
func TestReplicateRTRPipeline(t *testing.T) {
	r := newRig(t, func(c *Config) { c.RTR = true })
	installSG(t, r, 300, hostA, []cache.RLEHop{
		{Addr: rlocLocal4, Level: 0}, {Addr: rlocOther4, Level: 0},
		{Addr: mcETR(1), Level: 128}, {Addr: mcETR(2), Level: 128},
	})
	inner := innerPacket(t, innerSpec{src: hostA, dst: mcGroup, ttl: 30, payload: 10})
	r.fromCore(lispFrame(t, lispSpec{src: rlocRemote4, dst: rlocLocal4, iid: 300, inner: inner}))
	got := decodeCopies(t, drain(r.core), innerPacket(t, innerSpec{src: hostA, dst: mcGroup, ttl: 29, payload: 10}))
	if len(got) != 2 || got[mcETR(1)] != 1 || got[mcETR(2)] != 1 {
		t.Errorf("RTR copies %v", got)
	}
}

// TestReplicateRefusedRLE: an RLE that lists an ETR twice is refused and
// its packets dropped as DropNoRoute, never replicated.
func TestReplicateRefusedRLE(t *testing.T) {
	r := newRig(t, nil)
	installSG(t, r, iidSite, hostA, []cache.RLEHop{{Addr: mcETR(1), Level: 128}, {Addr: mcETR(1), Level: 128}})
	before := r.counters()
	r.fromSite(siteFrame(t, innerSpec{src: hostA, dst: mcGroup, payload: 10}))
	if n := len(drain(r.core)); n != 0 {
		t.Errorf("%d copies sent for a refused RLE", n)
	}
	expectDrop(t, before, r.counters(), DropNoRoute)
	// No entry: held as a miss.
	r.fromSite(siteFrame(t, innerSpec{src: hostA, dst: netip.MustParseAddr("232.9.9.9"), payload: 10}))
	if c := r.counters(); c.Get(CounterMiss) != 1 {
		t.Errorf("miss counter %d", c.Get(CounterMiss))
	}
}

func TestReplicateNoAllocs(t *testing.T) {
	r := newRig(t, nil)
	var hops []cache.RLEHop
	for i := 1; i <= 8; i++ {
		hops = append(hops, cache.RLEHop{Addr: mcETR(i), Level: 128})
	}
	installSG(t, r, iidSite, hostA, hops)
	fr := siteFrame(t, innerSpec{src: hostA, dst: mcGroup, payload: 18})
	run := func() {
		for range 4 {
			r.site.Inject(fr)
		}
		r.w.Step()
		r.core.Drain(nil)
	}
	run()
	if a := testing.AllocsPerRun(200, run); a != 0 {
		t.Errorf("%v allocations per step", a)
	}
	if c := r.counters(); c.Get(CounterReplicate) != 8*4*202 {
		t.Errorf("replicate counter %d", c.Get(CounterReplicate))
	}
}

package fastpath

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/ip4defrag"
	"github.com/google/gopacket/layers"

	"github.com/rloc-router/rloc/wire"
)

const testPathMTU = 1400

func mtuRig(t *testing.T, mod func(*Config)) *rig {
	return newRig(t, func(c *Config) {
		c.Ports[1].MTU = testPathMTU
		if mod != nil {
			mod(c)
		}
	})
}

// TestMTUFragment: an IPv4 packet with DF clear that does not fit once
// encapsulated behind an IPv4 outer header leaves as exactly two outer
// fragments, each within the path MTU with a valid header checksum, that
// gopacket's defragmenter reassembles to the whole LISP packet (RFC 9300
// §7.1 stateless solution).
func TestMTUFragment(t *testing.T) {
	r := mtuRig(t, nil)
	spec := innerSpec{src: hostA, dst: remote4, payload: 1400, ttl: 30}
	want := innerPacket(t, spec)
	want[8]-- // the ITR decrements the TTL
	wire.IPv4(want).UpdateChecksum()
	r.fromSite(siteFrame(t, spec))
	out := drain(r.core)
	if len(out) != 2 {
		t.Fatalf("%d frames, want 2", len(out))
	}
	df := ip4defrag.NewIPv4Defragmenter()
	var whole *layers.IPv4
	var ids [2]uint16
	for i, b := range out {
		if len(b)-wire.EthernetLen > testPathMTU {
			t.Errorf("outer packet of %d bytes exceeds the path MTU %d", len(b)-wire.EthernetLen, testPathMTU)
		}
		ip := wire.IPv4(b[wire.EthernetLen:])
		if !ip.ChecksumValid() || ip.DontFragment() {
			t.Errorf("fragment %d: checksum valid %v, DF %v", i, ip.ChecksumValid(), ip.DontFragment())
		}
		ids[i] = ip.ID()
		p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
		l, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if !ok {
			t.Fatalf("fragment %d: no IPv4 layer", i)
		}
		if i == 0 && (l.Flags&layers.IPv4MoreFragments == 0 || l.FragOffset != 0) ||
			i == 1 && (l.Flags&layers.IPv4MoreFragments != 0 || int(l.FragOffset)*8 != len(out[0])-wire.EthernetLen-20) {
			t.Errorf("fragment %d: flags %v offset %d", i, l.Flags, l.FragOffset)
		}
		res, err := df.DefragIPv4(l)
		if err != nil {
			t.Fatal(err)
		}
		if res != nil {
			whole = res
		}
	}
	if ids[0] != ids[1] {
		t.Errorf("fragment IDs %d %d", ids[0], ids[1])
	}
	if whole == nil {
		t.Fatal("fragments did not reassemble")
	}
	p := gopacket.NewPacket(whole.Payload, layers.LayerTypeUDP, gopacket.Default)
	udp, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if !ok || udp.DstPort != wire.DataPort || int(udp.Length) != len(whole.Payload) {
		t.Fatalf("reassembled: %v", p)
	}
	h := wire.Header(udp.Payload)
	if h.Validate() != nil || h.InstanceID() != iidSite || !bytes.Equal(udp.Payload[wire.HeaderLen:], want) {
		t.Error("reassembled LISP packet does not carry the inner packet")
	}
	c := r.counters()
	if r.w.Extra(ExtraFragmented) != 1 || c.Get(CounterEncap) != 1 || c.Get(CounterTX) != 2 {
		t.Errorf("fragmented %d encap %d tx %d", r.w.Extra(ExtraFragmented), c.Get(CounterEncap), c.Get(CounterTX))
	}
	// Two fragments cannot carry it: dropped.
	r = newRig(t, func(c *Config) { c.Ports[1].MTU = 600 })
	before := r.counters()
	r.fromSite(siteFrame(t, spec))
	expectDrop(t, before, r.counters(), DropMTUExceeded)
}

// TestMTUFragmentIPv6Outer: behind an IPv6 outer header a DF-clear IPv4
// packet is fragmented itself and each fragment encapsulated (no outer IPv6
// Fragment header; see tooBig).
func TestMTUFragmentIPv6Outer(t *testing.T) {
	r := mtuRig(t, nil)
	spec := innerSpec{src: hostA, dst: remote4v6, payload: 1400, ttl: 30}
	in := innerPacket(t, spec)
	r.fromSite(siteFrame(t, spec))
	out := drain(r.core)
	if len(out) != 2 {
		t.Fatalf("%d frames, want 2", len(out))
	}
	var frags []*layers.IPv4
	for _, b := range out {
		if len(b)-wire.EthernetLen > testPathMTU {
			t.Errorf("outer packet of %d bytes exceeds the path MTU %d", len(b)-wire.EthernetLen, testPathMTU)
		}
		d := decodeLISP(t, b)
		ip, ok := d.inner.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if !ok {
			t.Fatal("inner not IPv4")
		}
		if !wire.IPv4(d.raw).ChecksumValid() {
			t.Error("fragment header checksum")
		}
		frags = append(frags, ip)
	}
	f0, f1 := frags[0], frags[1]
	if f0.Flags&layers.IPv4MoreFragments == 0 || f0.FragOffset != 0 ||
		f1.Flags&layers.IPv4MoreFragments != 0 || int(f1.FragOffset)*8 != len(f0.Payload) {
		t.Errorf("fragments: MF %v off %d len %d / MF %v off %d", f0.Flags, f0.FragOffset, len(f0.Payload),
			f1.Flags, f1.FragOffset)
	}
	if f0.Id != 7 || f1.Id != 7 || f0.TTL != 29 || f1.TTL != 29 {
		t.Errorf("IDs %d %d TTLs %d %d", f0.Id, f1.Id, f0.TTL, f1.TTL)
	}
	joined := append(append([]byte(nil), f0.Payload...), f1.Payload...)
	if !bytes.Equal(joined, in[20:]) {
		t.Error("fragments do not reassemble to the original payload")
	}
	c := r.counters()
	if r.w.Extra(ExtraFragmented) != 1 || c.Get(CounterEncap) != 2 {
		t.Errorf("fragmented %d encap %d", r.w.Extra(ExtraFragmented), c.Get(CounterEncap))
	}
}

// checksumOK verifies an ICMP (v4, pseudo zero) or ICMPv6 checksum.
func icmpChecksumOK(msg []byte, pseudo uint16) bool { return wire.Checksum(msg, pseudo) == 0xffff }

// TestMTUTooBig: DF set (IPv4) or IPv6 → ICMP too big back to the source out
// of the site port, with MTU L-H, rate-limited.
func TestMTUTooBig(t *testing.T) {
	t.Run("IPv4 DF", func(t *testing.T) {
		r := mtuRig(t, nil)
		spec := innerSpec{src: hostA, dst: remote4, payload: 1400, df: true}
		in := innerPacket(t, spec)
		before := r.counters()
		r.fromSite(siteFrame(t, spec))
		expectDrop(t, before, r.counters(), DropMTUExceeded)
		if n := len(drain(r.core)); n != 0 {
			t.Fatalf("%d frames to the core", n)
		}
		b := one(t, r.site)
		p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
		eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		ic, _ := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		if ip == nil || ic == nil {
			t.Fatalf("not ICMP: %v", p)
		}
		if !bytes.Equal(eth.DstMAC, macHostIn[:]) || !bytes.Equal(eth.SrcMAC, macSite[:]) {
			t.Errorf("Ethernet %v -> %v", eth.SrcMAC, eth.DstMAC)
		}
		if !ip.SrcIP.Equal(ip4(siteAddr4)) || !ip.DstIP.Equal(ip4(hostA)) || wire.Checksum(ip.Contents, 0) != 0xffff {
			t.Errorf("ICMP IP %v -> %v", ip.SrcIP, ip.DstIP)
		}
		if ic.TypeCode != layers.CreateICMPv4TypeCode(3, 4) {
			t.Errorf("type/code %v", ic.TypeCode)
		}
		msg := b[14+20:]
		if !icmpChecksumOK(msg, 0) {
			t.Error("ICMP checksum")
		}
		if mtu := binary.BigEndian.Uint16(msg[6:]); mtu != testPathMTU-wire.OuterIPv4Len {
			t.Errorf("next-hop MTU %d, want %d", mtu, testPathMTU-wire.OuterIPv4Len)
		}
		if quoted := msg[8:]; len(quoted) != 576-28 || !bytes.Equal(quoted[20:], in[20:len(quoted)]) {
			t.Errorf("quote of %d bytes", len(quoted))
		}
	})
	t.Run("IPv6", func(t *testing.T) {
		r := mtuRig(t, nil)
		spec := innerSpec{src: hostA6, dst: remote6v6, payload: 1400}
		r.fromSite(siteFrame(t, spec))
		b := one(t, r.site)
		p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
		ip, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		ic, _ := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
		if ip == nil || ic == nil {
			t.Fatalf("not ICMPv6: %v", p)
		}
		if ic.TypeCode != layers.CreateICMPv6TypeCode(2, 0) || !ip.DstIP.Equal(ip16(hostA6)) || !ip.SrcIP.Equal(ip16(siteAddr6)) {
			t.Errorf("ICMPv6 %v %v -> %v", ic.TypeCode, ip.SrcIP, ip.DstIP)
		}
		msg := b[14+40:]
		if len(b)-14 != 1280 {
			t.Errorf("ICMPv6 error of %d bytes, want 1280", len(b)-14)
		}
		if !icmpChecksumOK(msg, wire.PseudoHeaderChecksum(wire.ProtoICMPv6, siteAddr6, hostA6, uint32(len(msg)))) {
			t.Error("ICMPv6 checksum")
		}
		if mtu := binary.BigEndian.Uint32(msg[4:]); mtu != testPathMTU-wire.OuterIPv6Len {
			t.Errorf("MTU %d, want %d", mtu, testPathMTU-wire.OuterIPv6Len)
		}
	})
	t.Run("rate limit", func(t *testing.T) {
		r := mtuRig(t, func(c *Config) { c.ICMPRate = 1; c.ICMPBurst = 3 })
		spec := innerSpec{src: hostA, dst: remote4, payload: 1400, df: true}
		var fs [][]byte
		for i := 0; i < 8; i++ {
			fs = append(fs, siteFrame(t, spec))
		}
		r.fromSite(fs...)
		if n := len(drain(r.site)); n != 3 {
			t.Errorf("%d ICMP errors, want the burst of 3", n)
		}
		c := r.counters()
		if r.w.Extra(ExtraICMPSuppressed) != 5 || c.Dropped(DropMTUExceeded) != 8 {
			t.Errorf("suppressed %d, mtu drops %d", r.w.Extra(ExtraICMPSuppressed), c.Dropped(DropMTUExceeded))
		}
	})
	t.Run("fits", func(t *testing.T) {
		r := mtuRig(t, nil)
		// 1400 - 36 = 1364 bytes of inner packet fit exactly.
		spec := innerSpec{src: hostA, dst: remote4, payload: 1364 - 28, df: true}
		r.fromSite(siteFrame(t, spec))
		if b := one(t, r.core); len(b)-14 != testPathMTU {
			t.Errorf("outer %d bytes", len(b)-14)
		}
	})
}

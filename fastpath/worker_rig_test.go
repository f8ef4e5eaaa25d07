package fastpath

import (
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/fastpath/nexthop"
	"github.com/rloc-router/rloc/ring"
	"github.com/rloc-router/rloc/ring/mem"
	"github.com/rloc-router/rloc/wire"
)

// Test topology: one site port (instance-ID 100, nexthop.Table port 1, kernel
// ifindex 10) and one core port (port 2, ifindex 20). Site hosts live in
// 10.1.0.0/16 and 2001:db8:1::/48; the underlay gateway of the core port is
// 192.0.2.254 / 2001:db8:ff::fe.
var (
	macSite    = [6]byte{0x02, 0, 0, 0, 0, 0x10}
	macCore    = [6]byte{0x02, 0, 0, 0, 0, 0x20}
	macUnderGW = [6]byte{0x02, 0, 0, 0, 0, 0xfe}
	macHostA   = [6]byte{0x02, 0, 0, 0, 0, 0xa1}
	macHost6   = [6]byte{0x02, 0, 0, 0, 0, 0xa6}
	macHostIn  = [6]byte{0x02, 0, 0, 0, 0, 0x01} // source of frames the site sends

	rlocLocal4  = netip.MustParseAddr("192.0.2.1")
	rlocLocal6  = netip.MustParseAddr("2001:db8:ff::1")
	rlocRemote4 = netip.MustParseAddr("192.0.2.2")
	rlocOther4  = netip.MustParseAddr("192.0.2.3")
	rlocRemote6 = netip.MustParseAddr("2001:db8:ff::2")
	gw4         = netip.MustParseAddr("192.0.2.254")
	gw6         = netip.MustParseAddr("2001:db8:ff::fe")
	hostA       = netip.MustParseAddr("10.1.0.5")
	hostA6      = netip.MustParseAddr("2001:db8:1::5")
	remote4     = netip.MustParseAddr("10.2.0.7") // EID behind rlocRemote4
	remote6     = netip.MustParseAddr("2001:db8:2::7")
	remote4v6   = netip.MustParseAddr("10.3.0.7")      // IPv4 EID behind rlocRemote6
	remote6v6   = netip.MustParseAddr("2001:db8:3::7") // IPv6 EID behind rlocRemote6
	siteAddr4   = netip.MustParseAddr("10.1.0.1")
	siteAddr6   = netip.MustParseAddr("2001:db8:1::1")
)

const iidSite = 100

func testNextHops(extra ...nexthop.Route) *nexthop.Snapshot { return nextHopsWith(nil, extra...) }

// nextHopsWith is testNextHops with its neighbour entries passed through
// mod (when not nil) first.
func nextHopsWith(mod func(ns []nexthop.Neighbour) []nexthop.Neighbour, extra ...nexthop.Route) *nexthop.Snapshot {
	links := []nexthop.Link{
		{Index: 10, MAC: macSite, MTU: 1500, Port: 1, Up: true},
		{Index: 20, MAC: macCore, MTU: 1500, Port: 2, Up: true},
	}
	routes := []nexthop.Route{
		{Prefix: netip.MustParsePrefix("10.1.0.0/16"), IfIndex: 10},
		{Prefix: netip.MustParsePrefix("2001:db8:1::/48"), IfIndex: 10},
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), IfIndex: 20},
		{Prefix: netip.MustParsePrefix("2001:db8:ff::/48"), IfIndex: 20},
		{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Gateway: gw4, IfIndex: 20},
		{Prefix: netip.MustParsePrefix("::/0"), Gateway: gw6, IfIndex: 20},
	}
	routes = append(routes, extra...)
	neighs := []nexthop.Neighbour{
		{Addr: gw4, IfIndex: 20, MAC: macUnderGW, Valid: true},
		{Addr: gw6, IfIndex: 20, MAC: macUnderGW, Valid: true},
		{Addr: rlocRemote4, IfIndex: 20, MAC: macUnderGW, Valid: true},
		{Addr: rlocOther4, IfIndex: 20, MAC: macUnderGW, Valid: true},
		{Addr: rlocRemote6, IfIndex: 20, MAC: macUnderGW, Valid: true},
		{Addr: hostA, IfIndex: 10, MAC: macHostA, Valid: true},
		{Addr: hostA6, IfIndex: 10, MAC: macHost6, Valid: true},
	}
	if mod != nil {
		neighs = mod(neighs)
	}
	return nexthop.NewSnapshot(links, routes, neighs)
}

// rig is a worker between two in-memory links; site and core are the test's
// ends of them.
type rig struct {
	t     testing.TB
	w     *Worker
	site  *mem.Port
	core  *mem.Port
	c     *cache.Cache
	nh    *nexthop.Table
	outer OuterConfig
}

func defaultOuter() OuterConfig {
	return OuterConfig{RLOC4: rlocLocal4, RLOC6: rlocLocal6, Nonce: true}
}

// newRig builds a worker; mod may change the config before NewWorker.
func newRig(t testing.TB, mod func(*Config)) *rig {
	t.Helper()
	siteT, siteW, err := mem.NewPair(mem.Config{}, mem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	coreT, coreW, err := mem.NewPair(mem.Config{}, mem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, site: siteT, core: coreT, nh: new(nexthop.Table), outer: defaultOuter()}
	r.nh.Store(testNextHops())
	cfg := Config{
		ID: 1,
		Ports: []PortConfig{
			{Port: siteW, Index: 1, Site: true, IID: iidSite, Addr4: siteAddr4, Addr6: siteAddr6},
			{Port: coreW, Index: 2},
		},
		NextHops: r.nh,
		Outer:    r.outer,
	}
	if mod != nil {
		mod(&cfg)
	}
	r.outer = cfg.Outer
	if cfg.Cache == nil {
		cfg.Cache = cache.New(cache.Config{BuildTemplate: cfg.Outer.BuildTemplate})
	}
	r.c = cfg.Cache
	if r.w, err = NewWorker(cfg); err != nil {
		t.Fatal(err)
	}
	r.install([]StaticMapping{
		{IID: iidSite, Prefix: netip.MustParsePrefix("10.2.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocRemote4, Weight: 1}}},
		{IID: iidSite, Prefix: netip.MustParsePrefix("2001:db8:2::/48"), RLOCs: []StaticRLOC{{Addr: rlocRemote4, Weight: 1}}},
		{IID: iidSite, Prefix: netip.MustParsePrefix("10.3.0.0/16"), RLOCs: []StaticRLOC{{Addr: rlocRemote6, Weight: 1}}},
		{IID: iidSite, Prefix: netip.MustParsePrefix("2001:db8:3::/48"), RLOCs: []StaticRLOC{{Addr: rlocRemote6, Weight: 1}}},
	})
	return r
}

func (r *rig) install(ms []StaticMapping) {
	r.t.Helper()
	if err := InstallStatic(r.c, ms); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) counters() Counters {
	var c Counters
	r.w.Counters().Snapshot(&c)
	return c
}

// toSite injects frames on the site link and runs one step.
func (r *rig) fromSite(frames ...[]byte) {
	r.t.Helper()
	for _, f := range frames {
		if !r.site.Inject(f) {
			r.t.Fatal("inject on site link failed")
		}
	}
	r.w.Step()
}

func (r *rig) fromCore(frames ...[]byte) {
	r.t.Helper()
	for _, f := range frames {
		if !r.core.Inject(f) {
			r.t.Fatal("inject on core link failed")
		}
	}
	r.w.Step()
}

func drain(p *mem.Port) [][]byte {
	var out [][]byte
	p.Drain(func(b []byte) { out = append(out, append([]byte(nil), b...)) })
	return out
}

// expectDrop checks that exactly one drop, for reason want, was counted
// since before.
func expectDrop(t *testing.T, before, after Counters, want DropReason) {
	t.Helper()
	if d := after.Dropped(want) - before.Dropped(want); d != 1 {
		t.Errorf("drops for %v: got %d, want 1", want, d)
	}
	if d := after.DroppedTotal() - before.DroppedTotal(); d != 1 {
		t.Errorf("total drops: got %d, want 1", d)
	}
}

func ip4(a netip.Addr) net.IP       { b := a.As4(); return net.IP(b[:]) }
func ip16(a netip.Addr) net.IP      { b := a.As16(); return net.IP(b[:]) }
func hw(m [6]byte) net.HardwareAddr { return net.HardwareAddr(m[:]) }

// innerSpec describes an inner packet built by innerPacket.
type innerSpec struct {
	src, dst netip.Addr
	ttl      uint8
	tos      uint8
	df       bool
	sport    uint16
	dport    uint16
	payload  int // UDP payload bytes
	seq      byte
}

// innerLayers returns the IP and UDP layers of s.
func innerLayers(s innerSpec) []gopacket.SerializableLayer {
	if s.ttl == 0 {
		s.ttl = 64
	}
	if s.sport == 0 {
		s.sport = 1000
	}
	if s.dport == 0 {
		s.dport = 2000
	}
	pl := make([]byte, s.payload)
	for i := range pl {
		pl[i] = s.seq + byte(i)
	}
	udp := &layers.UDP{SrcPort: layers.UDPPort(s.sport), DstPort: layers.UDPPort(s.dport)}
	if s.src.Is4() {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: s.ttl, TOS: s.tos, Protocol: layers.IPProtocolUDP,
			SrcIP: ip4(s.src), DstIP: ip4(s.dst), Id: 7}
		if s.df {
			ip.Flags = layers.IPv4DontFragment
		}
		_ = udp.SetNetworkLayerForChecksum(ip)
		return []gopacket.SerializableLayer{ip, udp, gopacket.Payload(pl)}
	}
	ip := &layers.IPv6{Version: 6, HopLimit: s.ttl, TrafficClass: s.tos, NextHeader: layers.IPProtocolUDP,
		SrcIP: ip16(s.src), DstIP: ip16(s.dst)}
	_ = udp.SetNetworkLayerForChecksum(ip)
	return []gopacket.SerializableLayer{ip, udp, gopacket.Payload(pl)}
}

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// innerPacket returns the inner IP packet of s (no Ethernet).
func innerPacket(t testing.TB, s innerSpec) []byte {
	return serialize(t, innerLayers(s)...)
}

// siteFrame returns an Ethernet frame from a site host carrying s.
func siteFrame(t testing.TB, s innerSpec) []byte {
	et := layers.EthernetTypeIPv4
	if !s.src.Is4() {
		et = layers.EthernetTypeIPv6
	}
	eth := &layers.Ethernet{SrcMAC: hw(macHostIn), DstMAC: hw(macSite), EthernetType: et}
	return serialize(t, append([]gopacket.SerializableLayer{eth}, innerLayers(s)...)...)
}

// lispSpec describes an encapsulated frame arriving on the core link.
type lispSpec struct {
	src, dst netip.Addr // outer
	ttl, tos uint8
	dport    uint16
	flags    uint8
	iid      uint32
	nonce    uint32
	lsbs     uint32
	csum     bool // non-zero UDP checksum
	zeroTTL  bool // outer TTL 0 (ttl 0 means the default)
	inner    []byte
}

func lispFrame(t testing.TB, s lispSpec) []byte {
	if s.ttl == 0 && !s.zeroTTL {
		s.ttl = 60
	}
	if s.dport == 0 {
		s.dport = wire.DataPort
	}
	if s.flags == 0 {
		s.flags = wire.FlagI | wire.FlagN
	}
	hdr := wire.AppendHeader(nil, &wire.HeaderFields{Flags: s.flags, Nonce: s.nonce, InstanceID: s.iid, LSBs: s.lsbs})
	pl := append(hdr, s.inner...)
	udp := &layers.UDP{SrcPort: 50000, DstPort: layers.UDPPort(s.dport)}
	var ls []gopacket.SerializableLayer
	if s.src.Is4() {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: s.ttl, TOS: s.tos, Protocol: layers.IPProtocolUDP,
			SrcIP: ip4(s.src), DstIP: ip4(s.dst)}
		_ = udp.SetNetworkLayerForChecksum(ip)
		ls = []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: hw(macUnderGW), DstMAC: hw(macCore), EthernetType: layers.EthernetTypeIPv4}, ip}
	} else {
		ip := &layers.IPv6{Version: 6, HopLimit: s.ttl, TrafficClass: s.tos, NextHeader: layers.IPProtocolUDP,
			SrcIP: ip16(s.src), DstIP: ip16(s.dst)}
		_ = udp.SetNetworkLayerForChecksum(ip)
		ls = []gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: hw(macUnderGW), DstMAC: hw(macCore), EthernetType: layers.EthernetTypeIPv6}, ip}
	}
	b := serialize(t, append(ls, udp, gopacket.Payload(pl))...)
	if !s.csum {
		// Zero the UDP checksum, as LISP ITRs send it (RFC 9300 §5.3).
		off := wire.EthernetLen + wire.IPv4MinLen
		if !s.src.Is4() {
			off = wire.EthernetLen + wire.IPv6Len
		}
		b[off+6], b[off+7] = 0, 0
	}
	return b
}

// decoded is an encapsulated frame taken apart with gopacket.
type decoded struct {
	eth   *layers.Ethernet
	ip4   *layers.IPv4
	ip6   *layers.IPv6
	udp   *layers.UDP
	lisp  wire.Header
	inner gopacket.Packet
	raw   []byte // inner IP bytes
}

func decodeLISP(t testing.TB, b []byte) decoded {
	t.Helper()
	p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
	var d decoded
	var ok bool
	if d.eth, ok = p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet); !ok {
		t.Fatalf("no Ethernet layer: %v", p)
	}
	d.ip4, _ = p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	d.ip6, _ = p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if d.udp, ok = p.Layer(layers.LayerTypeUDP).(*layers.UDP); !ok {
		t.Fatalf("no UDP layer: %v", p)
	}
	if d.udp.DstPort != wire.DataPort {
		t.Fatalf("UDP dst port %d", d.udp.DstPort)
	}
	pl := d.udp.Payload
	if len(pl) < wire.HeaderLen+1 {
		t.Fatalf("UDP payload %d bytes", len(pl))
	}
	d.lisp = wire.Header(pl[:wire.HeaderLen])
	d.raw = pl[wire.HeaderLen:]
	lt := layers.LayerTypeIPv4
	if d.raw[0]>>4 == 6 {
		lt = layers.LayerTypeIPv6
	}
	d.inner = gopacket.NewPacket(d.raw, lt, gopacket.Default)
	if el := d.inner.ErrorLayer(); el != nil {
		t.Fatalf("inner packet: %v", el.Error())
	}
	return d
}

// one returns the single frame drained from p.
func one(t testing.TB, p *mem.Port) []byte {
	t.Helper()
	fs := drain(p)
	if len(fs) != 1 {
		t.Fatalf("got %d frames, want 1", len(fs))
	}
	return fs[0]
}

var _ ring.Port = (*mem.Port)(nil)

// memPair returns a new in-memory link: the test's end and the worker's.
func memPair(t testing.TB) (*mem.Port, *mem.Port) {
	t.Helper()
	a, b, err := mem.NewPair(mem.Config{}, mem.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

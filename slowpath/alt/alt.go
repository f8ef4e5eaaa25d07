// Package alt is the LISP+ALT router role (RFC 6836): an overlay of GRE
// tunnels (package gre, RFC 2784 in user space) between ALT routers with a
// BGP session over each (package bgp, the one BGP component), on which the
// EID prefixes are announced. The best paths make the ALT forwarding table,
// which lives here and never in the kernel: data traffic never follows an
// ALT route. Map-Requests travel the ALT as IP packets addressed to the
// EID (RFC 6836): a Map-Resolver sends one in (Route), ALT routers
// forward them hop by hop over the tunnels (TTL decremented) by the
// instance-ID of the Map-Request's EID record and the destination, and the
// router that originated the prefix delivers it to its Map-Server, which
// answers or forwards to the ETR as for any ECM. A Map-Server announces
// the prefixes its sites have registered (AnnounceRegistered) and
// withdraws them when the registration goes; configured aggregates are
// announced while a more specific route lies inside them. The prefixes
// travel in the L3VPN families with route distinguisher 0:<instance-ID>
// (every instance-ID), or in the unicast families (instance-ID 0 only).
package alt

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gaissmai/bart"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/alt/gre"
	"github.com/rloc-router/rloc/slowpath/bgp"
	"github.com/rloc-router/rloc/wire"
)

// Sites is what the ALT asks of the local Map-Server: the EID prefixes,
// with their instance-IDs, that have a live registration now (event loop
// only).
type Sites interface {
	Registered(out []slowpath.EIDPrefix) []slowpath.EIDPrefix
}

// Entry is one route of the ALT table.
type Entry struct {
	// IID is the instance-ID of the prefix (0 with the unicast families).
	IID uint32
	// Prefix is the EID prefix.
	Prefix netip.Prefix
	// Peer is the next ALT router (a neighbour's inner address); zero for
	// a prefix this router originates.
	Peer netip.Addr
	// ASPath is the best path's AS path.
	ASPath []uint32
	// Aggregate marks an aggregate (ATOMIC_AGGREGATE set).
	Aggregate bool
	// Local marks a prefix delivered to this router's Map-Server.
	Local bool
}

// Stats are the role's counters.
type Stats struct {
	// Sent counts the Map-Requests this Map-Resolver sent into the ALT.
	Sent uint64 `json:"sent"`
	// Forwarded counts the Map-Requests forwarded to the next ALT router.
	Forwarded uint64 `json:"forwarded"`
	// Delivered counts those handed to the local Map-Server.
	Delivered uint64 `json:"delivered"`
	// NoRoute counts Map-Requests for an EID with no ALT route, or only
	// an aggregate made here, or a prefix this node does not serve:
	// dropped.
	NoRoute uint64 `json:"no_route"`
	// TTLExpired counts Map-Requests dropped with an exhausted TTL.
	TTLExpired uint64 `json:"ttl_expired"`
	// NotMapRequest counts inner packets on the ALT that are not a
	// Map-Request to UDP 4342 (RFC 6836 carries nothing else there), or
	// whose first EID record is not an IP prefix (with or without an
	// instance-ID): dropped.
	NotMapRequest uint64 `json:"not_map_request"`
	// QueueFull counts Map-Requests for the local Map-Server dropped
	// because the event loop was behind.
	QueueFull uint64 `json:"queue_full"`
	// Announcements and Withdrawals count the prefixes this router put
	// into and took out of the ALT.
	Announcements uint64 `json:"announcements"`
	Withdrawals   uint64 `json:"withdrawals"`
}

// Neighbor is an ALT neighbour's tunnel and session state.
type Neighbor struct {
	// Remote is the underlay address; Peer the inner one.
	Remote, Peer netip.Addr
	// ASN is the neighbour's AS number.
	ASN uint32
	// State is the BGP session state.
	State bgp.SessionState
	// Received, Accepted and Advertised count prefixes.
	Received, Accepted, Advertised uint64
	// Uptime is how long the session has been established.
	Uptime time.Duration
	// Tunnel are the GRE tunnel's counters.
	Tunnel gre.TunnelStats
}

// ALT is the role.
type ALT struct {
	c     *slowpath.Core
	cfg   *slowpath.ALTConfig
	sites Sites
	dev   *gre.Device
	sp    *bgp.Speaker
	// vpn: the EID prefixes travel in the L3VPN families, every
	// instance-ID; otherwise in unicast, instance-ID 0 only.
	vpn bool

	// table is the forwarding table, one LPM table per instance-ID,
	// replaced whole (copy on write) by the BGP goroutine; local holds the
	// prefixes delivered here, replaced by the event loop. Both are read
	// by the GRE reader without a lock.
	table atomic.Pointer[tables[*Entry]]
	local atomic.Pointer[tables[struct{}]]

	// mu guards aggOn, announced between the BGP goroutine and the event
	// loop.
	mu        sync.Mutex
	aggOn     map[netip.Prefix]bool
	announced map[slowpath.EIDPrefix]bool // site prefixes announced (event loop)

	sendBuf, pktBuf []byte // event loop
	fwdBuf          []byte // GRE reader
	req             wire.MapRequest

	// deliver queues Map-Requests for the local Map-Server to the
	// goroutine that injects them into the core, so the GRE reader never
	// waits for the event loop.
	deliver chan deliverItem
	stop    chan struct{}

	sent, forwarded, delivered, noRoute, ttl, notMR, ann, wd, queueFull atomic.Uint64
}

// deliverItem is a Map-Request from the ALT, as an ECM, and its inner
// source.
type deliverItem struct {
	src netip.AddrPort
	ecm []byte
}

// deliverQueue bounds the Map-Requests waiting for the event loop.
const deliverQueue = 256

// tables are LPM tables by instance-ID, never changed once published.
type tables[V any] map[uint32]*bart.Table[V]

// lookup is the longest match of addr in iid.
func (t tables[V]) lookup(iid uint32, addr netip.Addr) (V, bool) {
	if tb := t[iid]; tb != nil {
		return tb.Lookup(addr)
	}
	var zero V
	return zero, false
}

// with returns a copy of t whose table for iid is tb (none when tb is
// empty).
func (t tables[V]) with(iid uint32, tb *bart.Table[V]) tables[V] {
	out := make(tables[V], len(t)+1)
	for k, v := range t {
		out[k] = v
	}
	if tb.Size() == 0 {
		delete(out, iid)
	} else {
		out[iid] = tb
	}
	return out
}

// table returns iid's table, an empty one when there is none.
func (t tables[V]) table(iid uint32) *bart.Table[V] {
	if tb := t[iid]; tb != nil {
		return tb
	}
	return new(bart.Table[V])
}

// localTables are the prefixes delivered here: the configured
// announcements and the announced site prefixes.
func localTables(cfg *slowpath.ALTConfig, sites map[slowpath.EIDPrefix]bool) *tables[struct{}] {
	t := tables[struct{}]{}
	add := func(iid uint32, p netip.Prefix) {
		if t[iid] == nil {
			t[iid] = new(bart.Table[struct{}])
		}
		t[iid].Insert(p, struct{}{})
	}
	for _, p := range cfg.Announce {
		add(0, p)
	}
	for _, e := range cfg.AnnounceIID {
		add(e.IID, e.Prefix)
	}
	for e := range sites {
		add(e.IID, e.Prefix)
	}
	return &t
}

// New builds the role on c: it opens the GRE device (a TUN with the inner
// addresses, a raw socket on the underlay address) and the BGP speaker,
// adds the neighbours and the static announcements. sites is the local
// Map-Server (nil when there is none). It needs CAP_NET_ADMIN and
// CAP_NET_RAW in the process's network namespace.
func New(c *slowpath.Core, cfg *slowpath.ALTConfig, sites Sites) (*ALT, error) {
	a := &ALT{c: c, cfg: cfg, sites: sites, aggOn: map[netip.Prefix]bool{}, announced: map[slowpath.EIDPrefix]bool{},
		deliver: make(chan deliverItem, deliverQueue), stop: make(chan struct{}),
		vpn: cfg.Families != slowpath.ALTFamiliesUnicast}
	a.table.Store(&tables[*Entry]{})
	a.local.Store(localTables(cfg, nil))
	gc := gre.Config{Name: cfg.Interface, Local: cfg.Underlay, MTU: cfg.MTU}
	for _, n := range cfg.Neighbors {
		gc.Tunnels = append(gc.Tunnels, gre.TunnelConfig{Remote: n.Remote, Inner: n.Inner, Peer: n.Peer,
			Checksum: n.Checksum, UseKey: n.Key != 0, Key: n.Key})
	}
	var err error
	if a.dev, err = gre.Open(gc); err != nil {
		return nil, fmt.Errorf("alt: %w", err)
	}
	a.dev.SetHandler(a.onPacket)
	bc := bgp.Config{ASN: cfg.ASN, RouterID: cfg.RouterID, Listen: innerAddrs(cfg), Logger: c.Log()}
	if cfg.SummaryOnly {
		bc.SummaryOnly = cfg.Aggregates
	}
	a.sp, err = bgp.Start(bc, bgp.Handlers{Best: a.onBest})
	if err != nil {
		a.dev.Close()
		return nil, fmt.Errorf("alt: %w", err)
	}
	for _, n := range cfg.Neighbors {
		// Both address families on every session: IPv4 and IPv6 EID
		// prefixes travel the ALT whatever the tunnel's inner family.
		err := a.sp.AddNeighbor(bgp.Neighbor{Address: n.Peer, ASN: n.ASN, Local: n.Inner.Addr(),
			HoldTime: cfg.HoldTime, ConnectRetry: cfg.ConnectRetry, IPv6: true, VPN: a.vpn})
		if err != nil {
			a.close()
			return nil, fmt.Errorf("alt: %w", err)
		}
	}
	for _, p := range cfg.Announce {
		if err := a.sp.Announce(a.route(0, p)); err != nil {
			a.close()
			return nil, fmt.Errorf("alt: %w", err)
		}
		a.ann.Add(1)
	}
	for _, e := range cfg.AnnounceIID {
		if err := a.sp.Announce(a.route(e.IID, e.Prefix)); err != nil {
			a.close()
			return nil, fmt.Errorf("alt: %w", err)
		}
		a.ann.Add(1)
	}
	if sites != nil && cfg.AnnounceRegistered {
		c.OnStart(func() { a.sync(c.Clock().Now()) })
	}
	c.OnStop(a.close)
	go a.deliverLoop()
	return a, nil
}

// route is the BGP route of prefix p of instance-ID iid in the ALT's
// families.
func (a *ALT) route(iid uint32, p netip.Prefix) bgp.Route {
	return bgp.Route{Prefix: p, VPN: a.vpn, IID: iid}
}

// deliverLoop injects the delivered Map-Requests into the core until the
// role or the core stops.
func (a *ALT) deliverLoop() {
	for {
		select {
		case it := <-a.deliver:
			if a.c.Inject(it.src, it.ecm) != nil {
				return
			}
			a.delivered.Add(1)
		case <-a.stop:
			return
		}
	}
}

func innerAddrs(cfg *slowpath.ALTConfig) []netip.Addr {
	var out []netip.Addr
	for _, n := range cfg.Neighbors {
		out = append(out, n.Inner.Addr())
	}
	return out
}

func (a *ALT) close() {
	select {
	case <-a.stop:
		return
	default:
	}
	close(a.stop)
	a.sp.Stop()
	a.dev.Close()
}

// sync announces the registered site prefixes not yet announced and
// withdraws those no longer registered, then schedules itself again
// (event loop).
func (a *ALT) sync(now time.Time) {
	want := map[slowpath.EIDPrefix]bool{}
	var buf [16]slowpath.EIDPrefix
	for _, p := range a.sites.Registered(buf[:0]) {
		if p.IID != 0 && !a.vpn {
			continue // the unicast families carry instance-ID 0 only
		}
		want[slowpath.EIDPrefix{IID: p.IID, Prefix: p.Prefix.Masked()}] = true
	}
	changed := false
	for p := range want {
		if !a.announced[p] {
			if err := a.sp.Announce(a.route(p.IID, p.Prefix)); err != nil {
				a.c.Log().Warn("alt: announce", "prefix", p, "err", err)
				continue
			}
			a.announced[p], changed = true, true
			a.ann.Add(1)
		}
	}
	for p := range a.announced {
		if !want[p] {
			if err := a.sp.WithdrawKey(a.route(p.IID, p.Prefix).Key()); err != nil {
				a.c.Log().Warn("alt: withdraw", "prefix", p, "err", err)
				continue
			}
			delete(a.announced, p)
			changed = true
			a.wd.Add(1)
		}
	}
	if changed {
		a.local.Store(localTables(a.cfg, a.announced))
	}
	a.c.Schedule(now.Add(a.cfg.SyncInterval), a.sync)
}

// onBest updates the forwarding table with a best-path change and the
// aggregates that depend on it (BGP goroutine).
// Routes in the other families (a neighbour's unicast routes on a VPN
// ALT) are not EID routes and are ignored.
func (a *ALT) onBest(r bgp.Route) {
	if r.VPN != a.vpn {
		return
	}
	all := *a.table.Load()
	t := all.table(r.IID)
	if r.Withdrawn {
		t = t.DeletePersist(r.Prefix)
	} else {
		_, local := (*a.local.Load()).table(r.IID).Get(r.Prefix)
		t = t.InsertPersist(r.Prefix, &Entry{IID: r.IID, Prefix: r.Prefix, Peer: r.Neighbor, ASPath: r.ASPath,
			Aggregate: r.AtomicAggregate, Local: local && !r.Neighbor.IsValid()})
	}
	all = all.with(r.IID, t)
	a.table.Store(&all)
	if r.IID == 0 {
		a.aggregate(t)
	}
}

// aggregate announces each configured aggregate (instance-ID 0) while a
// route learnt from a neighbour lies inside it in t, instance-ID 0's
// table, and withdraws it otherwise (BGP goroutine).
func (a *ALT) aggregate(t *bart.Table[*Entry]) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, agg := range a.cfg.Aggregates {
		on := false
		for p, e := range t.Subnets(agg) {
			if p != agg && e.Peer.IsValid() {
				on = true
				break
			}
		}
		if on == a.aggOn[agg] {
			continue
		}
		var err error
		if on {
			r := a.route(0, agg)
			r.AtomicAggregate = true
			err = a.sp.Announce(r)
			a.ann.Add(1)
		} else {
			err = a.sp.WithdrawKey(a.route(0, agg).Key())
			a.wd.Add(1)
		}
		if err != nil {
			a.c.Log().Warn("alt: aggregate", "prefix", agg, "err", err)
			continue
		}
		a.aggOn[agg] = on
	}
}

// next returns the tunnel toward dst in iid by the ALT table, or nil with
// whether the route ends here (a prefix delivered to this router).
func (a *ALT) next(iid uint32, dst netip.Addr) (*gre.Tunnel, bool) {
	if _, ok := a.local.Load().lookup(iid, dst); ok {
		return nil, true
	}
	e, ok := a.table.Load().lookup(iid, dst)
	if !ok || !e.Peer.IsValid() {
		return nil, false
	}
	return a.dev.TunnelTo(e.Peer), false
}

// Route sends the Map-Request of m for addr into the ALT, an IP packet to
// the EID from the ITR (RFC 6836), and reports whether it did: false
// when the ALT has no route for addr in iid (with the unicast families
// only instance-ID 0 is on the ALT) or the route ends here (event loop).
// The ALT routers on the way forward it by the instance-ID of its EID
// record.
func (a *ALT) Route(m *slowpath.Msg, iid uint32, addr netip.Addr) bool {
	t, _ := a.next(iid, addr)
	if t == nil {
		return false
	}
	e := wire.ECM{Src: slowpath.InnerSource(m.Request, m.Src.Addr(), addr), Dst: addr, SrcPort: m.Port,
		DstPort: wire.ControlPort, TTL: 64, Message: m.Raw}
	if m.ECM != nil {
		e.Src, e.SrcPort = m.ECM.Src, m.ECM.SrcPort
	}
	if e.Src.Is4() != addr.Is4() {
		return false
	}
	b, err := e.Append(a.pktBuf[:0])
	if err != nil {
		return false
	}
	a.pktBuf = b
	if a.sendBuf, err = a.dev.Send(t, b[ecmHeaderLen:], a.sendBuf); err != nil {
		return false
	}
	a.sent.Add(1)
	return true
}

// ecmHeaderLen is the ECM's LISP header without authentication data
// (RFC 9301 §5.8).
const ecmHeaderLen = 4

// onPacket handles an inner packet from a tunnel that is not addressed to
// this router's tunnel end (GRE reader): a Map-Request travelling the
// ALT. Its instance-ID is that of its first EID record (RFC 8060 §4.1
// LCAF, 0 without one). It is delivered to the local Map-Server when the
// EID is in a prefix this router originates in that instance-ID,
// forwarded by the instance-ID's ALT table otherwise, and dropped and
// counted when neither applies.
func (a *ALT) onPacket(_ *gre.Tunnel, pkt []byte) bool {
	src, dst, sport, msg, ok := mapRequest(pkt)
	if !ok {
		a.notMR.Add(1)
		return true
	}
	iid, ok := a.requestIID(msg)
	if !ok {
		a.notMR.Add(1)
		return true
	}
	t, here := a.next(iid, dst)
	switch {
	case here:
		// As an ECM marked for a Map-Server (RFC 9301 §5.8, M bit): the
		// Map-Server answers it or forwards it to the ETR, and nothing
		// sends it into the ALT again.
		ecm := append([]byte{byte(wire.TypeECM)<<4 | 0x01, 0, 0, 0}, pkt...)
		select {
		case a.deliver <- deliverItem{netip.AddrPortFrom(src, sport), ecm}:
		default:
			a.queueFull.Add(1)
		}
	case t == nil:
		a.noRoute.Add(1)
	case !decTTL(pkt):
		a.ttl.Add(1)
	default:
		var err error
		if a.fwdBuf, err = a.dev.Send(t, pkt, a.fwdBuf); err == nil {
			a.forwarded.Add(1)
		}
	}
	return true
}

// requestIID parses the Map-Request msg (GRE reader: a.req is reused)
// and returns the instance-ID of its first EID record; false when it does
// not parse or the record is not an IP prefix.
func (a *ALT) requestIID(msg []byte) (uint32, bool) {
	if a.req.Parse(msg) != nil || len(a.req.Records) == 0 {
		return 0, false
	}
	r := &a.req.Records[0]
	iid, _, ok := r.EID.Prefix(r.MaskLen)
	return iid, ok
}

// mapRequest checks that pkt is an IPv4 or IPv6 UDP packet to the LISP
// control port carrying a Map-Request (RFC 9301 §5.2, type 1) and returns
// its addresses, source port and the message (the UDP payload).
func mapRequest(pkt []byte) (src, dst netip.Addr, sport uint16, msg []byte, ok bool) {
	var udp []byte
	switch {
	case len(pkt) >= 20 && pkt[0]>>4 == 4:
		ihl := int(pkt[0]&0x0f) * 4
		if ihl < 20 || len(pkt) < ihl+8 || pkt[9] != 17 {
			return
		}
		src, dst = netip.AddrFrom4([4]byte(pkt[12:16])), netip.AddrFrom4([4]byte(pkt[16:20]))
		udp = pkt[ihl:]
	case len(pkt) >= 48 && pkt[0]>>4 == 6:
		if pkt[6] != 17 {
			return
		}
		src, dst = netip.AddrFrom16([16]byte(pkt[8:24])), netip.AddrFrom16([16]byte(pkt[24:40]))
		udp = pkt[40:]
	default:
		return
	}
	if len(udp) < 9 || binary.BigEndian.Uint16(udp[2:]) != wire.ControlPort || wire.MessageType(udp[8]>>4) != wire.TypeMapRequest {
		return
	}
	return src, dst, binary.BigEndian.Uint16(udp), udp[8:], true
}

// decTTL decrements the IPv4 TTL (updating the header checksum, RFC 1624)
// or the IPv6 hop limit of pkt; false when it is exhausted.
func decTTL(pkt []byte) bool {
	if pkt[0]>>4 == 6 {
		if pkt[7] <= 1 {
			return false
		}
		pkt[7]--
		return true
	}
	if pkt[8] <= 1 {
		return false
	}
	pkt[8]--
	// HC' = ~(~HC + ~m + m') with m the TTL/protocol word (RFC 1624 §3).
	sum := uint32(^binary.BigEndian.Uint16(pkt[10:])) + uint32(^(uint16(pkt[8]+1)<<8 | uint16(pkt[9]))) + uint32(uint16(pkt[8])<<8|uint16(pkt[9]))
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(pkt[10:], ^uint16(sum))
	return true
}

// Known appends iid's ALT table as EID space known in iid, for the
// prefixes of negative Map-Replies (RFC 6836: the resolver answers for
// what the ALT does not cover).
func (a *ALT) Known(iid uint32, out []slowpath.PrefixSet) []slowpath.PrefixSet {
	t := (*a.table.Load())[iid]
	if t == nil {
		return out
	}
	return append(out, slowpath.BartSet[*Entry]{Table: t})
}

// Lookup returns the ALT table's route for addr in iid, the one Route
// would send a Map-Request by.
func (a *ALT) Lookup(iid uint32, addr netip.Addr) (Entry, bool) {
	e, ok := a.table.Load().lookup(iid, addr)
	if !ok {
		return Entry{}, false
	}
	return *e, true
}

// Table returns the ALT forwarding table sorted by instance-ID, then
// prefix.
func (a *ALT) Table() []Entry {
	all := *a.table.Load()
	iids := make([]uint32, 0, len(all))
	for iid := range all {
		iids = append(iids, iid)
	}
	slices.Sort(iids)
	var out []Entry
	for _, iid := range iids {
		for _, e := range all[iid].AllSorted() {
			out = append(out, *e)
		}
	}
	return out
}

// Neighbors returns the neighbours' tunnel and session states in
// configuration order.
func (a *ALT) Neighbors() ([]Neighbor, error) {
	peers, err := a.sp.Peers()
	if err != nil {
		return nil, err
	}
	by := map[netip.Addr]bgp.Peer{}
	for _, p := range peers {
		by[p.Address] = p
	}
	st := a.dev.Stats()
	var out []Neighbor
	for i, n := range a.cfg.Neighbors {
		p := by[n.Peer]
		nb := Neighbor{Remote: n.Remote, Peer: n.Peer, ASN: n.ASN, State: p.State, Received: p.Received,
			Accepted: p.Accepted, Advertised: p.Advertised, Uptime: p.Uptime}
		if nb.State == "" {
			nb.State = bgp.StateIdle
		}
		if i < len(st.Tunnels) {
			nb.Tunnel = st.Tunnels[i]
		}
		out = append(out, nb)
	}
	return out, nil
}

// Stats returns the role's counters.
func (a *ALT) Stats() Stats {
	return Stats{Sent: a.sent.Load(), Forwarded: a.forwarded.Load(), Delivered: a.delivered.Load(),
		NoRoute: a.noRoute.Load(), TTLExpired: a.ttl.Load(), NotMapRequest: a.notMR.Load(),
		QueueFull: a.queueFull.Load(), Announcements: a.ann.Load(), Withdrawals: a.wd.Load()}
}

// GREDropped returns the GRE device's drop counters by reason.
func (a *ALT) GREDropped() map[string]uint64 { return a.dev.Stats().Dropped }

// Announced returns the prefixes this router originates with their
// instance-IDs, sorted by instance-ID, then address.
func (a *ALT) Announced() []slowpath.EIDPrefix {
	var out []slowpath.EIDPrefix
	for _, k := range a.sp.AnnouncedKeys() {
		if k.VPN == a.vpn {
			out = append(out, slowpath.EIDPrefix{IID: k.IID, Prefix: k.Prefix})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].IID != out[j].IID {
			return out[i].IID < out[j].IID
		}
		return out[i].Prefix.Addr().Less(out[j].Prefix.Addr())
	})
	return out
}

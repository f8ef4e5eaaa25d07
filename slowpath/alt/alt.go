// Package alt is the LISP+ALT router role (RFC 6836): an overlay of GRE
// tunnels (package gre, RFC 2784 in user space) between ALT routers with a
// BGP session over each (package bgp, the one BGP component), on which the
// EID prefixes are announced. The best paths make the ALT forwarding table,
// which lives here and never in the kernel: data traffic never follows an
// ALT route. Map-Requests travel the ALT as IP packets addressed to the
// EID (RFC 6836): a Map-Resolver sends one in (Route), ALT routers
// forward them hop by hop over the tunnels (TTL decremented), and the
// router that originated the prefix delivers it to its Map-Server, which
// answers or forwards to the ETR as for any ECM. A Map-Server announces
// the prefixes its sites have registered (AnnounceRegistered) and
// withdraws them when the registration goes; configured aggregates are
// announced while a more specific route lies inside them.
package alt

import (
	"encoding/binary"
	"fmt"
	"net/netip"
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

// Sites is what the ALT asks of the local Map-Server: the EID prefixes
// (instance-ID 0) that have a live registration now (event loop only).
type Sites interface {
	Registered(out []netip.Prefix) []netip.Prefix
}

// Entry is one route of the ALT table.
type Entry struct {
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
	// Map-Request to UDP 4342 (RFC 6836 carries nothing else there):
	// dropped.
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

	// table is the forwarding table, replaced whole (copy on write) by the
	// BGP goroutine; local holds the prefixes delivered here, replaced by
	// the event loop. Both are read by the GRE reader without a lock.
	table atomic.Pointer[bart.Table[*Entry]]
	local atomic.Pointer[bart.Table[struct{}]]

	// mu guards aggOn, announced between the BGP goroutine and the event
	// loop.
	mu        sync.Mutex
	aggOn     map[netip.Prefix]bool
	announced map[netip.Prefix]bool // site prefixes announced (event loop)

	sendBuf, pktBuf []byte // event loop
	fwdBuf          []byte // GRE reader

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

// New builds the role on c: it opens the GRE device (a TUN with the inner
// addresses, a raw socket on the underlay address) and the BGP speaker,
// adds the neighbours and the static announcements. sites is the local
// Map-Server (nil when there is none). It needs CAP_NET_ADMIN and
// CAP_NET_RAW in the process's network namespace.
func New(c *slowpath.Core, cfg *slowpath.ALTConfig, sites Sites) (*ALT, error) {
	a := &ALT{c: c, cfg: cfg, sites: sites, aggOn: map[netip.Prefix]bool{}, announced: map[netip.Prefix]bool{},
		deliver: make(chan deliverItem, deliverQueue), stop: make(chan struct{})}
	a.table.Store(new(bart.Table[*Entry]))
	local := new(bart.Table[struct{}])
	for _, p := range cfg.Announce {
		local.Insert(p, struct{}{})
	}
	a.local.Store(local)
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
		// Both families on every session: IPv4 and IPv6 EID prefixes
		// travel the ALT whatever the tunnel's inner family.
		err := a.sp.AddNeighbor(bgp.Neighbor{Address: n.Peer, ASN: n.ASN, Local: n.Inner.Addr(),
			HoldTime: cfg.HoldTime, ConnectRetry: cfg.ConnectRetry, IPv6: true})
		if err != nil {
			a.close()
			return nil, fmt.Errorf("alt: %w", err)
		}
	}
	for _, p := range cfg.Announce {
		if err := a.sp.Announce(bgp.Route{Prefix: p}); err != nil {
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
	want := map[netip.Prefix]bool{}
	var buf [16]netip.Prefix
	for _, p := range a.sites.Registered(buf[:0]) {
		want[p.Masked()] = true
	}
	changed := false
	for p := range want {
		if !a.announced[p] {
			if err := a.sp.Announce(bgp.Route{Prefix: p}); err != nil {
				a.c.Log().Warn("alt: announce", "prefix", p, "err", err)
				continue
			}
			a.announced[p], changed = true, true
			a.ann.Add(1)
		}
	}
	for p := range a.announced {
		if !want[p] {
			if err := a.sp.Withdraw(p); err != nil {
				a.c.Log().Warn("alt: withdraw", "prefix", p, "err", err)
				continue
			}
			delete(a.announced, p)
			changed = true
			a.wd.Add(1)
		}
	}
	if changed {
		local := new(bart.Table[struct{}])
		for _, p := range a.cfg.Announce {
			local.Insert(p, struct{}{})
		}
		for p := range a.announced {
			local.Insert(p, struct{}{})
		}
		a.local.Store(local)
	}
	a.c.Schedule(now.Add(a.cfg.SyncInterval), a.sync)
}

// onBest updates the forwarding table with a best-path change and the
// aggregates that depend on it (BGP goroutine).
func (a *ALT) onBest(r bgp.Route) {
	t := a.table.Load()
	if r.Withdrawn {
		t = t.DeletePersist(r.Prefix)
	} else {
		_, local := a.local.Load().Get(r.Prefix)
		t = t.InsertPersist(r.Prefix, &Entry{Prefix: r.Prefix, Peer: r.Neighbor, ASPath: r.ASPath,
			Aggregate: r.AtomicAggregate, Local: local && !r.Neighbor.IsValid()})
	}
	a.table.Store(t)
	a.aggregate(t)
}

// aggregate announces each configured aggregate while a route learnt from
// a neighbour lies inside it, and withdraws it otherwise (BGP goroutine).
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
			err = a.sp.Announce(bgp.Route{Prefix: agg, AtomicAggregate: true})
			a.ann.Add(1)
		} else {
			err = a.sp.Withdraw(agg)
			a.wd.Add(1)
		}
		if err != nil {
			a.c.Log().Warn("alt: aggregate", "prefix", agg, "err", err)
			continue
		}
		a.aggOn[agg] = on
	}
}

// next returns the tunnel toward dst by the ALT table, or nil with
// whether the route ends here (a prefix delivered to this router).
func (a *ALT) next(dst netip.Addr) (*gre.Tunnel, bool) {
	if _, ok := a.local.Load().Lookup(dst); ok {
		return nil, true
	}
	e, ok := a.table.Load().Lookup(dst)
	if !ok || !e.Peer.IsValid() {
		return nil, false
	}
	return a.dev.TunnelTo(e.Peer), false
}

// Route sends the Map-Request of m for addr into the ALT, an IP packet to
// the EID from the ITR (RFC 6836), and reports whether it did: false
// when the ALT has no route for addr in iid (only instance-ID 0 is on the
// ALT) or the route ends here (event loop).
func (a *ALT) Route(m *slowpath.Msg, iid uint32, addr netip.Addr) bool {
	if iid != 0 {
		return false
	}
	t, _ := a.next(addr)
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
// ALT. It is delivered to the local Map-Server when the EID is in a
// prefix this router originates, forwarded by the ALT table otherwise,
// and dropped and counted when neither applies.
func (a *ALT) onPacket(_ *gre.Tunnel, pkt []byte) bool {
	src, dst, sport, ok := mapRequest(pkt)
	if !ok {
		a.notMR.Add(1)
		return true
	}
	t, here := a.next(dst)
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

// mapRequest checks that pkt is an IPv4 or IPv6 UDP packet to the LISP
// control port carrying a Map-Request (RFC 9301 §5.2, type 1) and returns
// its addresses and source port.
func mapRequest(pkt []byte) (src, dst netip.Addr, sport uint16, ok bool) {
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
	return src, dst, binary.BigEndian.Uint16(udp), true
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

// Known appends the ALT table as EID space known in iid, for the prefixes
// of negative Map-Replies (RFC 6836: the resolver answers for what
// the ALT does not cover).
func (a *ALT) Known(iid uint32, out []slowpath.PrefixSet) []slowpath.PrefixSet {
	if iid != 0 {
		return out
	}
	return append(out, slowpath.BartSet[*Entry]{Table: a.table.Load()})
}

// Lookup returns the ALT table's route for addr in iid, the one Route
// would send a Map-Request by (only instance-ID 0 is on the ALT).
func (a *ALT) Lookup(iid uint32, addr netip.Addr) (Entry, bool) {
	if iid != 0 {
		return Entry{}, false
	}
	e, ok := a.table.Load().Lookup(addr)
	if !ok {
		return Entry{}, false
	}
	return *e, true
}

// Table returns the ALT forwarding table sorted by prefix.
func (a *ALT) Table() []Entry {
	var out []Entry
	for _, e := range a.table.Load().AllSorted() {
		out = append(out, *e)
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

// Announced returns the prefixes this router originates, sorted.
func (a *ALT) Announced() []netip.Prefix {
	p := a.sp.Announced()
	sort.Slice(p, func(i, j int) bool { return p[i].Addr().Less(p[j].Addr()) })
	return p
}

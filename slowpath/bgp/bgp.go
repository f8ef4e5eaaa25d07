// Package bgp is rloc's one BGP component: a speaker (GoBGP's server as a
// library, github.com/osrg/gobgp/v3) behind a small API in rloc's own
// types. A role starts a Speaker with its AS number, router ID and listen
// addresses, adds neighbours, announces and withdraws prefixes with their
// attributes (AS path, communities, extended communities, MED, local
// preference) and gets every best-path change and every session change
// through callbacks.
//
// It is a shared primitive (internal/archtest NonRoles), not a role: the
// ALT (RFC 6836, docs/alt.md) announces EID prefixes with it, and the
// mapping-system discovery by a BGP extended community
// (draft-boucadair-lisp-idr-ms-discovery) can tag prefixes with it.
//
// Sockets: GoBGP opens its listening and outgoing TCP sockets from its own
// goroutines, so a Speaker works in the network namespace of the process
// (rlocd run with `ip netns exec`), not of one locked thread.
package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"
)

// Config is a speaker.
type Config struct {
	// ASN is the local autonomous system number (4 octets, RFC 6793).
	ASN uint32
	// RouterID is the BGP Identifier (RFC 4271 §4.2), an IPv4 address.
	RouterID netip.Addr
	// Listen are the addresses to accept sessions on; empty: all.
	Listen []netip.Addr
	// Port is the TCP port to listen on: 0 means 179 (RFC 4271 §8.2.1),
	// -1 means do not listen (only connect out).
	Port int
	// Logger receives GoBGP's messages (nil: discarded).
	Logger *slog.Logger
	// SummaryOnly are prefixes whose more specifics are never advertised
	// to a neighbour (an export filter): with the prefix itself announced
	// as an aggregate, only the aggregate leaves this speaker.
	SummaryOnly []netip.Prefix
}

// Validate checks c; errors start with path.
func (c *Config) Validate(path string) error {
	switch {
	case c.ASN == 0:
		return fmt.Errorf("%s.asn: missing (1..4294967295)", path)
	case !c.RouterID.Is4():
		return fmt.Errorf("%s.router_id: %v: an IPv4 address (RFC 4271 §4.2)", path, c.RouterID)
	case c.Port < -1 || c.Port > 65535:
		return fmt.Errorf("%s.port: %d out of -1..65535", path, c.Port)
	}
	return nil
}

// Neighbor is a configured BGP neighbour.
type Neighbor struct {
	// Address is the neighbour's address (the session's remote end).
	Address netip.Addr
	// ASN is the neighbour's AS number; equal to the local one makes an
	// internal session.
	ASN uint32
	// Local is the local address to connect from (zero: the kernel's
	// choice).
	Local netip.Addr
	// Port is the neighbour's TCP port; 0 means 179.
	Port int
	// Passive waits for the neighbour to connect.
	Passive bool
	// HoldTime is the proposed hold time (RFC 4271 §4.2); 0 means 90 s.
	// The keepalive interval is a third of it.
	HoldTime time.Duration
	// ConnectRetry is the ConnectRetryTimer (RFC 4271 §8.2.2); 0 means
	// 5 s.
	ConnectRetry time.Duration
	// IPv6 also negotiates IPv6 unicast (RFC 4760) beside IPv4 unicast.
	IPv6 bool
	// VPN also negotiates the L3VPN families (RFC 4364 §4.3.4: AFI 1,
	// SAFI 128; with IPv6, RFC 4659: AFI 2, SAFI 128). Routes announced
	// with Route.VPN go only to neighbours with VPN set; a neighbour
	// without it never sees them.
	VPN bool
}

// Validate checks n; errors start with path.
func (n *Neighbor) Validate(path string) error {
	switch {
	case !n.Address.IsValid():
		return fmt.Errorf("%s.address: missing", path)
	case n.ASN == 0:
		return fmt.Errorf("%s.asn: missing", path)
	case n.Port < 0 || n.Port > 65535:
		return fmt.Errorf("%s.port: %d out of 0..65535", path, n.Port)
	case n.HoldTime != 0 && (n.HoldTime < 3*time.Second || n.HoldTime > 65535*time.Second):
		return fmt.Errorf("%s.hold_time: %v: 0 or 3 s to 65535 s (RFC 4271 §4.2)", path, n.HoldTime)
	}
	return nil
}

// ExtCommunity is one BGP extended community as its 8 octets (RFC 4360 §2:
// type, sub-type, value).
type ExtCommunity [8]byte

// VPNLabel is the one MPLS label of every L3VPN route this speaker
// originates (RFC 4364 §4.3.4 carries a label with each VPN-IPv4 prefix):
// 3, implicit NULL (RFC 3032 §2.1), "push no label". Nothing forwards by
// it: the families are used for their address space (a route
// distinguisher per instance-ID), not for MPLS, and a router that
// installs such a route (FRR's zebra on a kernel without MPLS) installs
// a plain IP route.
const VPNLabel = 3

// RD is the route distinguisher of instance-ID iid: type 0 (RFC 4364
// §4.2), administrator 0, assigned number iid, written 0:<iid>.
func RD(iid uint32) bgp.RouteDistinguisherInterface {
	return bgp.NewRouteDistinguisherTwoOctetAS(0, iid)
}

// Key identifies a route in a speaker's RIB: the prefix, and for an L3VPN
// route the instance-ID of its route distinguisher.
type Key struct {
	Prefix netip.Prefix
	VPN    bool
	IID    uint32
}

// Route is a path for one prefix: what Announce sends, or what the best-path
// callback and Best report.
type Route struct {
	// Prefix is the destination (NLRI, RFC 4271 §4.3; RFC 4760 for IPv6).
	Prefix netip.Prefix
	// VPN puts the prefix in the L3VPN family of its address family
	// (SAFI 128) with route distinguisher RD(IID) and label VPNLabel;
	// false: unicast (IID must be 0).
	VPN bool
	// IID is the instance-ID of a VPN route: the assigned number of its
	// type-0 route distinguisher. A received VPN route whose RD is not of
	// type 0 with administrator 0 is not reported.
	IID uint32
	// NextHop is the NEXT_HOP (RFC 4271 §5.1.3); zero on Announce: the
	// session's local address.
	NextHop netip.Addr
	// ASPath is the AS_PATH as one AS_SEQUENCE (RFC 4271 §5.1.2), nearest
	// AS first; the local AS is prepended when the route goes to an
	// external neighbour.
	ASPath []uint32
	// Communities are the COMMUNITIES (RFC 1997).
	Communities []uint32
	// ExtCommunities are the EXTENDED_COMMUNITIES (RFC 4360).
	ExtCommunities []ExtCommunity
	// MED is the MULTI_EXIT_DISC (RFC 4271 §5.1.4), when HasMED.
	MED    uint32
	HasMED bool
	// LocalPref is the LOCAL_PREF (RFC 4271 §5.1.5) of an internal
	// route, 0 when absent.
	LocalPref uint32
	// AtomicAggregate marks an aggregate that lost path detail (RFC 4271
	// §5.1.6).
	AtomicAggregate bool
	// Neighbor is the neighbour the route was learnt from; zero for a
	// route this speaker announces.
	Neighbor netip.Addr
	// Withdrawn, in a best-path callback, tells that the prefix has no
	// best path any more.
	Withdrawn bool
}

// SessionState is a neighbour's BGP FSM state (RFC 4271 §8.2.2).
type SessionState string

// The states of RFC 4271 §8.2.2.
const (
	StateIdle        SessionState = "idle"
	StateConnect     SessionState = "connect"
	StateActive      SessionState = "active"
	StateOpenSent    SessionState = "opensent"
	StateOpenConfirm SessionState = "openconfirm"
	StateEstablished SessionState = "established"
)

// Peer is a neighbour's state.
type Peer struct {
	// Address and ASN are the neighbour's.
	Address netip.Addr
	ASN     uint32
	// State is the session state.
	State SessionState
	// RouterID is the neighbour's BGP Identifier once known.
	RouterID netip.Addr
	// Received and Accepted count the prefixes the neighbour sent and
	// those in the RIB after policy; Advertised those sent to it.
	Received, Accepted, Advertised uint64
	// Uptime is how long the session has been established (0 if not).
	Uptime time.Duration
}

// Handlers are the callbacks of a speaker. They run on one goroutine of
// the speaker's, in the order of events; they must not block for long.
type Handlers struct {
	// Best gets every change of best path: the new best route of a
	// prefix, or the prefix with Withdrawn set.
	Best func(Route)
	// Session gets every session state change.
	Session func(Peer)
}

// Speaker is a running BGP speaker.
type Speaker struct {
	s      *server.BgpServer
	cfg    Config
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	uuids  map[Key][]byte
	events chan func()
}

// Start starts a speaker and its watchers.
func Start(cfg Config, h Handlers) (*Speaker, error) {
	if err := cfg.Validate("bgp"); err != nil {
		return nil, err
	}
	s := server.NewBgpServer(server.LoggerOption(newLogger(cfg.Logger)))
	go s.Serve()
	g := &api.Global{Asn: cfg.ASN, RouterId: cfg.RouterID.String(), ListenPort: int32(cfg.Port)}
	if cfg.Port == 0 {
		g.ListenPort = 179
	}
	for _, a := range cfg.Listen {
		g.ListenAddresses = append(g.ListenAddresses, a.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: g}); err != nil {
		cancel()
		s.Stop()
		return nil, fmt.Errorf("bgp: start: %w", err)
	}
	if err := summaryOnly(ctx, s, cfg.SummaryOnly); err != nil {
		cancel()
		s.Stop()
		return nil, fmt.Errorf("bgp: summary-only filter: %w", err)
	}
	sp := &Speaker{s: s, cfg: cfg, cancel: cancel, done: make(chan struct{}),
		uuids: map[Key][]byte{}, events: make(chan func(), 1024)}
	// GoBGP calls the watch function from its own goroutine per watcher;
	// both watchers feed one queue so the handlers see one order.
	go sp.dispatch()
	req := &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
			{Type: api.WatchEventRequest_Table_Filter_BEST, Init: true}}}}
	err := s.WatchEvent(ctx, req, func(r *api.WatchEventResponse) {
		if p := r.GetPeer(); p != nil && h.Session != nil {
			peer := peerOf(p.GetPeer())
			sp.post(func() { h.Session(peer) })
		}
		if t := r.GetTable(); t != nil && h.Best != nil {
			for _, p := range t.Paths {
				if r, ok := routeOf(p); ok {
					sp.post(func() { h.Best(r) })
				}
			}
		}
	})
	if err != nil {
		sp.Stop()
		return nil, fmt.Errorf("bgp: watch: %w", err)
	}
	return sp, nil
}

func (sp *Speaker) post(f func()) {
	select {
	case sp.events <- f:
	case <-sp.done:
	}
}

func (sp *Speaker) dispatch() {
	for {
		select {
		case f := <-sp.events:
			f()
		case <-sp.done:
			return
		}
	}
}

// summaryOnly installs the export filter of Config.SummaryOnly: one
// prefix set with every more specific of each prefix, rejected on export
// to all neighbours.
func summaryOnly(ctx context.Context, s *server.BgpServer, ps []netip.Prefix) error {
	if len(ps) == 0 {
		return nil
	}
	const name = "rloc-summary-only"
	set := &api.DefinedSet{DefinedType: api.DefinedType_PREFIX, Name: name}
	for _, p := range ps {
		p = p.Masked()
		if p.Bits() == p.Addr().BitLen() {
			continue
		}
		set.Prefixes = append(set.Prefixes, &api.Prefix{IpPrefix: p.String(),
			MaskLengthMin: uint32(p.Bits() + 1), MaskLengthMax: uint32(p.Addr().BitLen())})
	}
	if err := s.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: set}); err != nil {
		return err
	}
	pol := &api.Policy{Name: name, Statements: []*api.Statement{{Name: name,
		Conditions: &api.Conditions{PrefixSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: name}},
		Actions:    &api.Actions{RouteAction: api.RouteAction_REJECT}}}}
	if err := s.AddPolicy(ctx, &api.AddPolicyRequest{Policy: pol}); err != nil {
		return err
	}
	return s.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_EXPORT, Policies: []*api.Policy{{Name: name}},
		DefaultAction: api.RouteAction_ACCEPT}})
}

// Stop closes every session and stops the speaker.
func (sp *Speaker) Stop() {
	select {
	case <-sp.done:
		return
	default:
	}
	close(sp.done)
	sp.cancel()
	sp.s.Stop()
}

// AddNeighbor configures a neighbour; the session starts at once.
func (sp *Speaker) AddNeighbor(n Neighbor) error {
	if err := n.Validate("neighbor"); err != nil {
		return err
	}
	hold := n.HoldTime
	if hold == 0 {
		hold = 90 * time.Second
	}
	retry := n.ConnectRetry
	if retry == 0 {
		retry = 5 * time.Second
	}
	p := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: n.Address.String(), PeerAsn: n.ASN},
		Timers: &api.Timers{Config: &api.TimersConfig{HoldTime: uint64(hold / time.Second),
			KeepaliveInterval: uint64(hold / time.Second / 3), ConnectRetry: uint64(retry / time.Second),
			IdleHoldTimeAfterReset: 1}},
		Transport: &api.Transport{PassiveMode: n.Passive, RemotePort: uint32(n.Port)},
		AfiSafis:  []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: famV4, Enabled: true}}},
	}
	if n.Local.IsValid() {
		p.Transport.LocalAddress = n.Local.String()
	}
	if n.IPv6 {
		p.AfiSafis = append(p.AfiSafis, &api.AfiSafi{Config: &api.AfiSafiConfig{Family: famV6, Enabled: true}})
	}
	if n.VPN {
		p.AfiSafis = append(p.AfiSafis, &api.AfiSafi{Config: &api.AfiSafiConfig{Family: famVPNv4, Enabled: true}})
		if n.IPv6 {
			p.AfiSafis = append(p.AfiSafis, &api.AfiSafi{Config: &api.AfiSafiConfig{Family: famVPNv6, Enabled: true}})
		}
	}
	if err := sp.s.AddPeer(context.Background(), &api.AddPeerRequest{Peer: p}); err != nil {
		return fmt.Errorf("bgp: neighbor %v: %w", n.Address, err)
	}
	return nil
}

// DeleteNeighbor removes a neighbour, closing its session.
func (sp *Speaker) DeleteNeighbor(addr netip.Addr) error {
	return sp.s.DeletePeer(context.Background(), &api.DeletePeerRequest{Address: addr.String()})
}

var (
	famV4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	famV6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
	// The L3VPN families (RFC 4364, RFC 4659): SAFI 128.
	famVPNv4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_MPLS_VPN}
	famVPNv6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_MPLS_VPN}
)

// Key returns r's key.
func (r Route) Key() Key {
	return Key{Prefix: r.Prefix.Masked(), VPN: r.VPN, IID: r.IID}
}

// Announce originates r (replacing an earlier announcement of its prefix).
func (sp *Speaker) Announce(r Route) error {
	p, err := pathOf(r, false)
	if err != nil {
		return err
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	res, err := sp.s.AddPath(context.Background(), &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p})
	if err != nil {
		return fmt.Errorf("bgp: announce %v: %w", r.Key(), err)
	}
	sp.uuids[r.Key()] = res.GetUuid()
	return nil
}

// Withdraw withdraws the announcement of the unicast prefix; withdrawing a
// prefix not announced is not an error.
func (sp *Speaker) Withdraw(prefix netip.Prefix) error {
	return sp.WithdrawKey(Key{Prefix: prefix})
}

// WithdrawKey withdraws the announcement of k (a unicast prefix, or a VPN
// prefix of an instance-ID); withdrawing one not announced is not an
// error.
func (sp *Speaker) WithdrawKey(k Key) error {
	k.Prefix = k.Prefix.Masked()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	id, ok := sp.uuids[k]
	if !ok {
		return nil
	}
	if err := sp.s.DeletePath(context.Background(), &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Uuid: id}); err != nil {
		return fmt.Errorf("bgp: withdraw %v: %w", k, err)
	}
	delete(sp.uuids, k)
	return nil
}

// String is the prefix, with [RD] before it for a VPN route.
func (k Key) String() string {
	if k.VPN {
		return fmt.Sprintf("[0:%d]%v", k.IID, k.Prefix)
	}
	return k.Prefix.String()
}

// Announced returns the unicast prefixes this speaker originates, sorted.
func (sp *Speaker) Announced() []netip.Prefix {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	out := make([]netip.Prefix, 0, len(sp.uuids))
	for k := range sp.uuids {
		if !k.VPN {
			out = append(out, k.Prefix)
		}
	}
	sortPrefixes(out)
	return out
}

// AnnouncedKeys returns every route this speaker originates (unicast and
// VPN), sorted by instance-ID, then prefix, unicast first.
func (sp *Speaker) AnnouncedKeys() []Key {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	out := make([]Key, 0, len(sp.uuids))
	for k := range sp.uuids {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return keyLess(out[i], out[j]) })
	return out
}

func keyLess(a, b Key) bool {
	if a.VPN != b.VPN {
		return !a.VPN
	}
	if a.IID != b.IID {
		return a.IID < b.IID
	}
	return prefixLess(a.Prefix, b.Prefix)
}

// Peers returns the neighbours' states, sorted by address.
func (sp *Speaker) Peers() ([]Peer, error) {
	var out []Peer
	err := sp.s.ListPeer(context.Background(), &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		out = append(out, peerOf(p))
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Address.Less(out[j].Address) })
	return out, err
}

// Best returns the best route of every prefix in the RIB (unicast and
// VPN, both address families), sorted as AnnouncedKeys.
func (sp *Speaker) Best() ([]Route, error) {
	var out []Route
	for _, f := range []*api.Family{famV4, famV6, famVPNv4, famVPNv6} {
		err := sp.s.ListPath(context.Background(), &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: f, EnableOnlyBinary: false},
			func(d *api.Destination) {
				for _, p := range d.Paths {
					if !p.Best {
						continue
					}
					if r, ok := routeOf(p); ok {
						out = append(out, r)
					}
				}
			})
		if err != nil {
			return nil, fmt.Errorf("bgp: list: %w", err)
		}
	}
	sort.Slice(out, func(i, j int) bool { return keyLess(out[i].Key(), out[j].Key()) })
	return out, nil
}

func prefixLess(a, b netip.Prefix) bool {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c < 0
	}
	return a.Bits() < b.Bits()
}

func sortPrefixes(p []netip.Prefix) {
	sort.Slice(p, func(i, j int) bool { return prefixLess(p[i], p[j]) })
}

// pathOf builds GoBGP's path for r.
func pathOf(r Route, withdraw bool) (*api.Path, error) {
	if !r.Prefix.IsValid() {
		return nil, errors.New("bgp: route without a prefix")
	}
	pfx := r.Prefix.Masked()
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	var nlri bgp.AddrPrefixInterface
	switch {
	case !r.VPN && r.IID != 0:
		return nil, fmt.Errorf("bgp: %v: instance-ID %d on a unicast route", pfx, r.IID)
	case r.VPN && r.IID > 0xffffff:
		return nil, fmt.Errorf("bgp: %v: instance-ID %d out of 24 bits", pfx, r.IID)
	case r.VPN:
		nh := "0.0.0.0"
		if pfx.Addr().Is6() {
			nh = "::"
		}
		if r.NextHop.IsValid() {
			nh = r.NextHop.String()
		}
		labels := *bgp.NewMPLSLabelStack(VPNLabel)
		if pfx.Addr().Is4() {
			nlri = bgp.NewLabeledVPNIPAddrPrefix(uint8(pfx.Bits()), pfx.Addr().String(), labels, RD(r.IID))
		} else {
			nlri = bgp.NewLabeledVPNIPv6AddrPrefix(uint8(pfx.Bits()), pfx.Addr().String(), labels, RD(r.IID))
		}
		attrs = append(attrs, bgp.NewPathAttributeMpReachNLRI(nh, []bgp.AddrPrefixInterface{nlri}))
	case pfx.Addr().Is4():
		nh := "0.0.0.0"
		if r.NextHop.IsValid() {
			nh = r.NextHop.String()
		}
		nlri = bgp.NewIPAddrPrefix(uint8(pfx.Bits()), pfx.Addr().String())
		attrs = append(attrs, bgp.NewPathAttributeNextHop(nh))
	default:
		nh := "::"
		if r.NextHop.IsValid() {
			nh = r.NextHop.String()
		}
		nlri = bgp.NewIPv6AddrPrefix(uint8(pfx.Bits()), pfx.Addr().String())
		attrs = append(attrs, bgp.NewPathAttributeMpReachNLRI(nh, []bgp.AddrPrefixInterface{nlri}))
	}
	if len(r.ASPath) > 0 {
		attrs = append(attrs, bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{
			bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, r.ASPath)}))
	}
	if r.HasMED {
		attrs = append(attrs, bgp.NewPathAttributeMultiExitDisc(r.MED))
	}
	if r.LocalPref != 0 {
		attrs = append(attrs, bgp.NewPathAttributeLocalPref(r.LocalPref))
	}
	if r.AtomicAggregate {
		attrs = append(attrs, bgp.NewPathAttributeAtomicAggregate())
	}
	if len(r.Communities) > 0 {
		attrs = append(attrs, bgp.NewPathAttributeCommunities(r.Communities))
	}
	if len(r.ExtCommunities) > 0 {
		var ecs []bgp.ExtendedCommunityInterface
		for _, e := range r.ExtCommunities {
			ec, err := bgp.ParseExtended(e[:])
			if err != nil {
				return nil, fmt.Errorf("bgp: extended community %x: %w", e, err)
			}
			ecs = append(ecs, ec)
		}
		attrs = append(attrs, bgp.NewPathAttributeExtendedCommunities(ecs))
	}
	return apiutil.NewPath(nlri, withdraw, attrs, time.Now())
}

// routeOf converts GoBGP's path; ok is false for what is not an IPv4 or
// IPv6 unicast or L3VPN prefix (an End-of-RIB marker), and for a VPN
// prefix whose route distinguisher is not 0:<instance-ID>.
func routeOf(p *api.Path) (r Route, ok bool) {
	nlri, err := apiutil.GetNativeNlri(p)
	if err != nil {
		return Route{}, false
	}
	switch n := nlri.(type) {
	case *bgp.IPAddrPrefix:
		a, _ := netip.AddrFromSlice(n.Prefix.To4())
		r.Prefix = netip.PrefixFrom(a, int(n.Length))
	case *bgp.IPv6AddrPrefix:
		a, _ := netip.AddrFromSlice(n.Prefix.To16())
		r.Prefix = netip.PrefixFrom(a, int(n.Length))
	case *bgp.LabeledVPNIPAddrPrefix:
		if r.Prefix, r.IID, ok = vpnPrefix(&n.IPAddrPrefixDefault, n.Labels, n.RD, true); !ok {
			return Route{}, false
		}
		r.VPN = true
	case *bgp.LabeledVPNIPv6AddrPrefix:
		if r.Prefix, r.IID, ok = vpnPrefix(&n.IPAddrPrefixDefault, n.Labels, n.RD, false); !ok {
			return Route{}, false
		}
		r.VPN = true
	default:
		return Route{}, false
	}
	if !r.Prefix.IsValid() {
		return Route{}, false
	}
	r.Withdrawn = p.IsWithdraw
	if p.NeighborIp != "" {
		if a, err := netip.ParseAddr(p.NeighborIp); err == nil && !a.IsUnspecified() {
			r.Neighbor = a
		}
	}
	attrs, err := apiutil.GetNativePathAttributes(p)
	if err != nil {
		return r, true
	}
	for _, a := range attrs {
		switch a := a.(type) {
		case *bgp.PathAttributeNextHop:
			r.NextHop, _ = netip.AddrFromSlice(a.Value.To4())
		case *bgp.PathAttributeMpReachNLRI:
			r.NextHop, _ = netip.AddrFromSlice(a.Nexthop)
			r.NextHop = r.NextHop.Unmap()
		case *bgp.PathAttributeAsPath:
			for _, seg := range a.Value {
				r.ASPath = append(r.ASPath, seg.GetAS()...)
			}
		case *bgp.PathAttributeMultiExitDisc:
			r.MED, r.HasMED = a.Value, true
		case *bgp.PathAttributeLocalPref:
			r.LocalPref = a.Value
		case *bgp.PathAttributeAtomicAggregate:
			r.AtomicAggregate = true
		case *bgp.PathAttributeCommunities:
			r.Communities = append(r.Communities, a.Value...)
		case *bgp.PathAttributeExtendedCommunities:
			for _, e := range a.Value {
				b, err := e.Serialize()
				if err == nil && len(b) == 8 {
					r.ExtCommunities = append(r.ExtCommunities, ExtCommunity(b))
				}
			}
		}
	}
	return r, true
}

// vpnPrefix is the IP prefix and instance-ID of an L3VPN NLRI: its
// length counts the labels and the route distinguisher (RFC 4364 §4.3.4);
// ok is false when the RD is not type 0 with administrator 0.
func vpnPrefix(n *bgp.IPAddrPrefixDefault, labels bgp.MPLSLabelStack, rd bgp.RouteDistinguisherInterface, v4 bool) (netip.Prefix, uint32, bool) {
	t, ok := rd.(*bgp.RouteDistinguisherTwoOctetAS)
	if !ok || t.Admin != 0 {
		return netip.Prefix{}, 0, false
	}
	bits := int(n.Length) - 8*(labels.Len()+rd.Len())
	var a netip.Addr
	if v4 {
		a, _ = netip.AddrFromSlice(n.Prefix.To4())
	} else {
		a, _ = netip.AddrFromSlice(n.Prefix.To16())
	}
	p := netip.PrefixFrom(a, bits)
	return p, t.Assigned, p.IsValid()
}

// peerOf converts GoBGP's peer.
func peerOf(p *api.Peer) Peer {
	var out Peer
	if c := p.GetConf(); c != nil {
		out.Address, _ = netip.ParseAddr(c.NeighborAddress)
		out.ASN = c.PeerAsn
	}
	st := p.GetState()
	if st == nil {
		return out
	}
	if a, err := netip.ParseAddr(st.NeighborAddress); err == nil {
		out.Address = a
	}
	if st.PeerAsn != 0 {
		out.ASN = st.PeerAsn
	}
	out.State = stateOf(st.SessionState)
	if a, err := netip.ParseAddr(st.RouterId); err == nil && !a.IsUnspecified() {
		out.RouterID = a
	}
	for _, af := range p.AfiSafis {
		if s := af.GetState(); s != nil {
			out.Received += s.Received
			out.Accepted += s.Accepted
			out.Advertised += s.Advertised
		}
	}
	if out.State == StateEstablished {
		if up := p.GetTimers().GetState().GetUptime(); up != nil {
			out.Uptime = time.Since(up.AsTime()).Truncate(time.Second)
		}
	}
	return out
}

func stateOf(s api.PeerState_SessionState) SessionState {
	switch s {
	case api.PeerState_CONNECT:
		return StateConnect
	case api.PeerState_ACTIVE:
		return StateActive
	case api.PeerState_OPENSENT:
		return StateOpenSent
	case api.PeerState_OPENCONFIRM:
		return StateOpenConfirm
	case api.PeerState_ESTABLISHED:
		return StateEstablished
	}
	return StateIdle
}

// Package control assembles a LISP control plane: the core (package
// slowpath: sockets, event loop, timers, dispatch, counters) and the roles
// a slowpath.Config asks for, each in its own package (mapserver,
// resolver, xtr, mcast), wired in the order their handlers must see the
// messages. Engine is the API the router uses.
package control

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/rloc-router/rloc/fastpath"
	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/alt"
	"github.com/rloc-router/rloc/slowpath/cpnp"
	"github.com/rloc-router/rloc/slowpath/ddt"
	"github.com/rloc-router/rloc/slowpath/discovery"
	"github.com/rloc-router/rloc/slowpath/mapserver"
	"github.com/rloc-router/rloc/slowpath/mcast"
	"github.com/rloc-router/rloc/slowpath/msx"
	"github.com/rloc-router/rloc/slowpath/regstore/regdb"
	"github.com/rloc-router/rloc/slowpath/resolver"
	"github.com/rloc-router/rloc/slowpath/xtr"
	"github.com/rloc-router/rloc/wire"
)

// Registration is one xTR's registration of an EID prefix, as listed by
// Engine.Registrations.
type Registration = mapserver.Registration

// RegistrationCursor is where a page of registrations ends
// (Engine.RegistrationsPage).
type RegistrationCursor = mapserver.RegistrationCursor

// McastTreeInfo is one router's view of the replication tree of an (S,G),
// as Engine.McastTree returns it.
type McastTreeInfo = mcast.McastTreeInfo

// Engine runs the LISP control plane: one goroutine (the core's event
// loop) owns all protocol state (registrations, pending requests, timers),
// fed by one reader goroutine per socket; there is no goroutine per entry.
type Engine struct {
	cfg slowpath.Config
	c   *slowpath.Core
	ms  *mapserver.MapServer
	mr  *resolver.Resolver
	etr *xtr.ETR
	itr *xtr.ITR
	mc  *mcast.Mcast
	// state keeps the Map-Server's registrations across restarts
	// (MapServerConfig.StateFile).
	state *regdb.DB
	ddt   *ddt.Node
	alt   *alt.ALT
	// disc is OSPF discovery (discovery.go); nil without.
	disc *discovery.Discovery
	// bgpDisc is BGP discovery (discovery_bgp.go); nil without.
	bgpDisc *discovery.BGP
	msx     *msx.MSX
	// cpnp negotiates interconnect agreements (cpnp.go); nil without.
	cpnp *cpnp.Role
}

// DDTListing is a DDT node's configuration and counters, as
// Engine.DDTDelegations returns them.
type DDTListing = ddt.Listing

// New validates cfg, opens the sockets and starts the engine. inst
// receives the mappings the ITR learns; it may be nil when there is no ITR
// role.
func New(cfg slowpath.Config, inst slowpath.Installer) (*Engine, error) {
	return NewWithOptions(cfg, inst, slowpath.Options{})
}

// NewWithOptions is New with the core's options (a fake clock in tests).
func NewWithOptions(cfg slowpath.Config, inst slowpath.Installer, opt slowpath.Options) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("slowpath config: %w", err)
	}
	if cfg.ITR != nil && inst == nil {
		return nil, errors.New("slowpath config: itr: an Installer is required")
	}
	cfg = cfg.WithDefaults()
	c, err := slowpath.NewCore(&cfg, opt)
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, c: c}
	if err := e.build(inst); err != nil {
		c.Close()
		if e.state != nil {
			e.state.Close()
		}
		return nil, err
	}
	c.Start()
	if err := e.startDiscovery(); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// build makes the roles. The order is the order in which their handlers
// see a message: multicast takes its own business first (tree joins,
// (S,G) notifies, replies and probes, multicast misses), the ETR answers
// for its own EIDs before the Map-Server and Map-Resolver, which answer the
// rest; a DDT node takes the DDT Map-Requests before them. The start and
// stop hooks run ETR, ITR, multicast.
func (e *Engine) build(inst slowpath.Installer) error {
	cfg, c := &e.cfg, e.c
	var err error
	e.trustPeers()
	if cfg.Multicast != nil {
		if e.mc, err = mcast.New(c, cfg.Multicast, cfg.ITR, inst); err != nil {
			return err
		}
	}
	if cfg.MSX != nil {
		// Before the ITR: it takes only its peers' Map-Notifies, the ITR
		// every other one.
		e.msx = msx.New(c, cfg.MSX)
	}
	if err := e.buildCPNP(); err != nil {
		return err
	}
	if cfg.ETR != nil {
		e.etr = xtr.NewETR(c, cfg.ETR, cfg.MapServer == nil && cfg.MapResolver == nil)
	}
	if cfg.ITR != nil {
		e.itr = xtr.NewITR(c, cfg.ITR, inst)
	}
	if e.mc != nil {
		c.OnStart(e.mc.Start)
		c.OnStop(e.mc.Stop)
	}
	if cfg.DDT != nil {
		// Before the Map-Server and Map-Resolver: the node takes the ECMs
		// with the DDT bit (a Map-Server answers those outside its
		// authority), and plain Map-Requests only when both are absent.
		opt := ddt.Options{Plain: cfg.MapServer == nil && cfg.MapResolver == nil, MapServer: cfg.MapServer != nil}
		if e.ddt, err = ddt.New(c, cfg.DDT, opt); err != nil {
			return err
		}
	}
	if cfg.MapServer != nil {
		mcfg := cfg.Multicast
		if mcfg == nil {
			mcfg = slowpath.MulticastConfig{}.WithDefaults(cfg)
		}
		if e.ms, err = mapserver.New(c, cfg.MapServer, mcfg); err != nil {
			return err
		}
		if err := e.restore(cfg.MapServer.StateFile); err != nil {
			return err
		}
	}
	if err := e.buildALT(); err != nil {
		return err
	}
	if cfg.MapServer != nil || cfg.MapResolver != nil {
		var db resolver.Database
		if e.ms != nil {
			db = e.ms
		}
		e.mr = resolver.New(c, cfg.MapResolver, db)
		if e.alt != nil {
			e.mr.SetALT(altResolver{e.alt})
		}
	}
	if e.msx != nil {
		if e.ms != nil {
			e.msx.Serve(e.ms)
			e.ms.Publish(e.msx) // the copies' changes reach RFC 9437 subscribers
		}
		if e.state != nil {
			// The copies live in the Map-Server's state file too.
			n, dropped, err := e.msx.Persist(e.state)
			if err != nil {
				return fmt.Errorf("map_server.state_file: %w", err)
			}
			e.c.Log().Info("interconnect copies restored", "file", e.state.Path(), "restored", n, "dropped", dropped)
		}
		e.mr.SetInterconnect(e.msx)
	}
	return nil
}

// Buckets of the state file, one per store of the Map-Server.
const (
	stateUnicast = "unicast"
	stateSG      = "sg"
)

// restore opens the Map-Server's state file, when one is configured, and
// registers again what it holds.
func (e *Engine) restore(path string) error {
	if path == "" {
		return nil
	}
	var err error
	if e.state, err = regdb.Open(path, 0, e.c.Log()); err != nil {
		return fmt.Errorf("map_server.state_file: %w", err)
	}
	uni, err := e.state.Load(stateUnicast)
	if err != nil {
		return fmt.Errorf("map_server.state_file: %w", err)
	}
	sg, err := e.state.Load(stateSG)
	if err != nil {
		return fmt.Errorf("map_server.state_file: %w", err)
	}
	n, dropped := e.ms.Persist(e.state.Journal(stateUnicast), e.state.Journal(stateSG), uni, sg)
	e.c.Log().Info("registrations restored", "file", path, "restored", n, "dropped", dropped)
	return nil
}

// Core returns the engine's core (tests feed it datagrams through
// Core.Inject and let fake time pass through Core.Tick).
func (e *Engine) Core() *slowpath.Core { return e.c }

// Addrs returns the local addresses of the engine's sockets.
func (e *Engine) Addrs() []netip.AddrPort { return e.c.Addrs() }

// Addr returns the local address of the IPv4 socket, or the IPv6 one when
// there is no IPv4 socket.
func (e *Engine) Addr() netip.AddrPort { return e.c.Addr() }

// Miss queues a miss event for the ITR without blocking; it returns false
// when the queue is full (counted) or there is no ITR role.
func (e *Engine) Miss(ev fastpath.MissEvent) bool {
	if e.itr == nil {
		return false
	}
	return e.c.Miss(ev)
}

// Close deregisters (when configured), closes the sockets and stops the
// engine goroutines, then writes what the state file has pending. It is
// safe to call more than once.
func (e *Engine) Close() error {
	e.stopDiscovery()
	err := e.c.Close()
	if e.state != nil {
		if serr := e.state.Close(); err == nil {
			err = serr
		}
	}
	return err
}

// Stats returns a snapshot of the counters: the core's and every role's.
func (e *Engine) Stats() slowpath.Stats {
	var s slowpath.Stats
	if err := e.c.Do(func() { s = e.c.Snapshot(); e.addRoleStats(&s) }); err != nil {
		// Closed: the event loop has ended, nothing changes any more.
		s = e.c.Stats()
		e.addRoleStats(&s)
	}
	return s
}

// addRoleStats adds the counters the roles keep to s.
func (e *Engine) addRoleStats(s *slowpath.Stats) {
	var parts []slowpath.Stats
	if e.ms != nil {
		ms := e.ms.Stats()
		if e.state != nil {
			st := e.state.Stats()
			ms.StateFlushes, ms.StateErrors, ms.StateWritten = st.Flushes, st.Errors, st.Written
		}
		parts = append(parts, ms)
	}
	if e.mr != nil {
		parts = append(parts, e.mr.Stats())
	}
	if e.etr != nil {
		parts = append(parts, e.etr.Stats())
	}
	if e.itr != nil {
		parts = append(parts, e.itr.Stats())
	}
	if e.mc != nil {
		parts = append(parts, e.mc.UnicastStats())
	}
	for i := range parts {
		s.Add(&parts[i])
	}
}

// DDTDelegations returns the DDT node's authoritative prefixes,
// delegations and counters; ok is false when the router is no DDT node.
func (e *Engine) DDTDelegations() (l DDTListing, ok bool) {
	if e.ddt == nil {
		return l, false
	}
	if err := e.c.Do(func() { l = e.ddt.List() }); err != nil {
		l = e.ddt.List() // closed: nothing changes any more
	}
	return l, true
}

// DDTResolverStats returns the DDT Map-Resolver's counters and the size of
// its referral cache; ok is false when no DDT roots are configured.
func (e *Engine) DDTResolverStats() (st resolver.DDTStats, cached int, ok bool) {
	if e.mr == nil || e.mr.ReferralCache() == nil {
		return st, 0, false
	}
	get := func() { st, cached = e.mr.DDTStats(), e.mr.ReferralCache().Len() }
	if err := e.c.Do(get); err != nil {
		get() // closed: nothing changes any more
	}
	return st, cached, true
}

// DDTReferrals returns the DDT Map-Resolver's counters, its configured
// roots and at most max learned referral-cache entries (oldest first) with
// the number of entries; ok is false when no DDT roots are configured.
func (e *Engine) DDTReferrals(max int) (st resolver.DDTStats, roots []netip.AddrPort, refs []resolver.Referral, total int, ok bool) {
	if e.mr == nil || e.mr.ReferralCache() == nil {
		return st, nil, nil, 0, false
	}
	get := func() {
		rc := e.mr.ReferralCache()
		st, total = e.mr.DDTStats(), rc.Len()
		refs = rc.All(nil)
		if len(refs) > max {
			refs = refs[:max]
		}
	}
	if err := e.c.Do(get); err != nil {
		get() // closed: nothing changes any more
	}
	return st, slices.Clone(e.cfg.MapResolver.DDTRoots), refs, total, true
}

// Registrations lists the Map-Server's live registrations.
func (e *Engine) Registrations() []Registration {
	var out []Registration
	if e.ms != nil {
		_ = e.c.Do(func() { out = e.ms.Registrations() })
	}
	return out
}

// RegistrationsPage lists at most limit registrations after the cursor
// (nil: from the first) and reports whether more follow
// (mapserver.MapServer.RegistrationsPage).
func (e *Engine) RegistrationsPage(after *mapserver.RegistrationCursor, limit int) (out []Registration, more bool) {
	if e.ms != nil {
		_ = e.c.Do(func() { out, more = e.ms.RegistrationsPage(after, limit) })
	}
	return out, more
}

// MergedRLOCs returns the locators the Map-Server answers with for the
// registered prefix covering addr in iid (for listings and tests).
func (e *Engine) MergedRLOCs(iid uint32, addr netip.Addr) []wire.Locator {
	var out []wire.Locator
	if e.ms != nil {
		_ = e.c.Do(func() { out = e.ms.MergedRLOCs(iid, addr) })
	}
	return out
}

// SetSites replaces the Map-Server's sites. Registrations whose prefix is no
// longer allowed to their site are dropped; the others stay.
func (e *Engine) SetSites(sites []slowpath.SiteConfig) error {
	if e.ms == nil {
		return fmt.Errorf("slowpath: no Map-Server role")
	}
	c := slowpath.Config{MapServer: &slowpath.MapServerConfig{Sites: sites}}
	if err := c.Validate(); err != nil {
		return err
	}
	var err error
	if derr := e.c.Do(func() { err = e.ms.SetSites(sites) }); derr != nil {
		return derr
	}
	return err
}

// SetMappings replaces the ETR's database mappings: they are registered at
// once and the ITRs that recently asked for them get SMRs.
func (e *Engine) SetMappings(ms []slowpath.Mapping) error {
	if e.etr == nil {
		return fmt.Errorf("slowpath: no ETR role")
	}
	for i := range ms {
		if err := ms[i].Validate(fmt.Sprintf("etr.mappings[%d]", i)); err != nil {
			return err
		}
	}
	ms = slices.Clone(ms)
	return e.c.Do(func() { e.etr.SetMappings(ms) })
}

// McastRLE returns the merged RLE the Map-Server holds for an (S,G) or
// (*,G) (src invalid), for listings and tests.
func (e *Engine) McastRLE(iid uint32, src, group netip.Prefix) []replicate.Entry {
	var out []replicate.Entry
	if e.ms != nil {
		_ = e.c.Do(func() { out = e.ms.McastRLE(iid, src, group) })
	}
	return out
}

// McastStats returns the multicast counters (zero without multicast).
func (e *Engine) McastStats() slowpath.McastStats {
	var s slowpath.McastStats
	if e.mc == nil {
		return s
	}
	_ = e.c.Do(func() {
		s = e.mc.Stats()
		if e.ms != nil {
			n := e.ms.NotifyStats()
			s.NotifiesSent += n.NotifiesSent
			s.NotifyRetries += n.NotifyRetries
			s.NotifyAcked += n.NotifyAcked
			s.NotifyGaveUp += n.NotifyGaveUp
		}
	})
	return s
}

// McastStopProbeReplies makes the router ignore the (S,G) RLOC-probes of
// its tree children (stop true) or answer them again: a failure as children
// see it, for tests and drills.
func (e *Engine) McastStopProbeReplies(stop bool) {
	if e.mc != nil {
		e.mc.StopProbeReplies(stop)
	}
}

// McastDepart makes this RTR leave the tree of (S,G) gracefully,
// make-before-break: its children join their new parents first, then leave
// it, then it withdraws its registration.
func (e *Engine) McastDepart(iid uint32, src, group netip.Prefix) error {
	if e.mc == nil {
		if err := e.c.Do(func() {}); err != nil {
			return err
		}
		return fmt.Errorf("slowpath: no multicast configured")
	}
	var err error
	if derr := e.c.Do(func() { err = e.mc.Depart(iid, src, group) }); derr != nil {
		return derr
	}
	return err
}

// McastTree returns this router's view of the tree of (S,G) (src invalid:
// (*,G)); ok is false when the router knows nothing of it. A Map-Server
// that is no node of the tree describes it from its merged RLE (role
// "map-server", the ITR unknown).
func (e *Engine) McastTree(iid uint32, src, group netip.Prefix) (info McastTreeInfo, ok bool) {
	_ = e.c.Do(func() { info, ok = e.mcastTree(slowpath.NewSGKey(iid, src, group)) })
	return info, ok
}

// McastTrees returns this router's view of every tree it knows: those it
// is a node of, then those only its Map-Server holds an RLE for.
func (e *Engine) McastTrees() []McastTreeInfo {
	var out []McastTreeInfo
	_ = e.c.Do(func() {
		var ks []slowpath.SGKey
		if e.mc != nil {
			ks = e.mc.TreeKeys()
		}
		if e.ms != nil {
			for _, k := range e.ms.McastKeys() {
				if !slices.Contains(ks, k) {
					ks = append(ks, k)
				}
			}
		}
		slices.SortFunc(ks, slowpath.SGKey.Compare)
		for _, k := range ks {
			if info, ok := e.mcastTree(k); ok {
				out = append(out, info)
			}
		}
	})
	return out
}

// mcastTree is McastTree on the event loop.
func (e *Engine) mcastTree(k slowpath.SGKey) (McastTreeInfo, bool) {
	if e.mc != nil {
		if info, ok := e.mc.Tree(k.IID, k.Src, k.Group); ok {
			return info, true
		}
	}
	if e.ms == nil {
		return McastTreeInfo{}, false
	}
	merged := e.ms.McastRLE(k.IID, k.Src, k.Group)
	if len(merged) == 0 {
		return McastTreeInfo{}, false
	}
	t := mcast.TreeOf(k, netip.IPv4Unspecified(), merged, nil)
	return McastTreeInfo{IID: k.IID, Source: k.Src, Group: k.Group, Role: "map-server", Level: -1, Merged: merged,
		Tree: t.String(), Graph: t.Graph()}, true
}

// UnderlayGroupFor returns the underlay group the ETR registered for an
// (S,G) (src invalid: (*,G)), invalid when none.
func (e *Engine) UnderlayGroupFor(iid uint32, src, group netip.Prefix) netip.Addr {
	var g netip.Addr
	if e.mc != nil {
		_ = e.c.Do(func() { g = e.mc.UnderlayGroupFor(iid, src, group) })
	}
	return g
}

// ReceivedOnUnderlayGroup tells the ETR that decapsulated multicast traffic
// arrived with the underlay group g as outer destination (see
// mcast.Mcast.ReceivedOnUnderlayGroup). Safe to call from any goroutine;
// it does not block or allocate.
func (e *Engine) ReceivedOnUnderlayGroup(g netip.Addr) {
	if e.mc != nil {
		e.mc.ReceivedOnUnderlayGroup(g)
	}
}

// ProbeSuppressed reports whether the U-RLOC currently leaves (S,G)
// RLOC-probes unanswered: the ETR registered its U-RLOC with a G-RLOC and
// heard of G-RLOC traffic within UnderlayConfig.SuppressHold.
func (e *Engine) ProbeSuppressed() bool {
	return e.mc != nil && e.mc.ProbeSuppressed()
}

// Memberships lists the receiver memberships the ETR has learned.
func (e *Engine) Memberships() []slowpath.Membership {
	var out []slowpath.Membership
	if e.mc != nil {
		_ = e.c.Do(func() { out = e.mc.Memberships() })
	}
	return out
}

// trustPeers exempts the configured peers (the Map-Servers registered
// with, the Map-Resolvers asked, the remote Map-Servers requests are
// forwarded to) from the rate limit's total budgets: a flood from many
// addresses must not starve them (slowpath.RateLimitConfig).
func (e *Engine) trustPeers() {
	cfg := &e.cfg
	var peers []netip.AddrPort
	if cfg.ETR != nil {
		for _, p := range cfg.ETR.MapServers {
			peers = append(peers, p.Addr)
		}
	}
	if cfg.ITR != nil {
		peers = append(peers, cfg.ITR.MapResolvers...)
		if cfg.ITR.Solicit != nil {
			for _, p := range cfg.ITR.Solicit.Peers {
				peers = append(peers, p.Addr)
			}
		}
	}
	if cfg.MapResolver != nil {
		for _, p := range cfg.MapResolver.MapServers {
			peers = append(peers, p.Addr)
		}
		peers = append(peers, cfg.MapResolver.DDTRoots...)
	}
	if m := cfg.Multicast; m != nil {
		for _, p := range m.MapServers {
			peers = append(peers, p.Addr)
		}
		if m.Underlay != nil {
			peers = append(peers, m.Underlay.MapResolvers...)
		}
	}
	for _, p := range peers {
		e.c.TrustAlways(p.Addr())
	}
}

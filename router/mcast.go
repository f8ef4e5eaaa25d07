package router

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/rloc-router/rloc/slowpath/mcast"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/fastpath"
	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/ring/xsk"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// MulticastOptions enables signal-free LISP multicast (RFC 8378) and
// replication trees (draft-coras-lisp-re) on the router; docs/multicast.md.
// What runs follows from the roles: an ETR with Receivers learns IGMP/MLD
// listeners on its site interfaces and registers (S,G)/(*,G) with the merge
// bit; an ITR resolves (S,G) misses and replicates head-end; a Map-Server
// merges the registrations and notifies the ITRs; an RTR with Trees
// registers and replicates for those (S,G) at its level.
type MulticastOptions struct {
	// Enabled turns multicast on.
	Enabled bool `mapstructure:"enabled"`
	// Key is shared by the domain's multicast routers (unsolicited
	// Map-Notifies, their acks, tree joins; RFC 9301 §5.7).
	Key slowpath.AuthKey `mapstructure:"key"`
	// RLOC is this router's RLOC in RLE entries; invalid takes the first
	// IPv4 RLOC, else the IPv6 one.
	RLOC netip.Addr `mapstructure:"rloc"`
	// Receivers makes the ETR listen for IGMP/MLD reports on every site
	// interface (AF_PACKET, needs CAP_NET_RAW).
	Receivers bool `mapstructure:"receivers"`
	// RegisterInterval refreshes (S,G) registrations and joins (0: the
	// ETR's register interval, or 60 s).
	RegisterInterval time.Duration `mapstructure:"register_interval"`
	// RetryInterval is the first retransmission wait (0: 1 s).
	RetryInterval time.Duration `mapstructure:"retry_interval"`
	// Retries bounds retransmissions (0: 3).
	Retries int `mapstructure:"retries"`
	// MaxRLE bounds accepted RLEs (0: replicate.DefaultMaxEntries).
	MaxRLE int `mapstructure:"max_rle"`
	// Level is the ETR's RLE level (0: 128).
	Level uint8 `mapstructure:"level"`
	// MembershipInterval, LastMemberQueryTime, FastLeave and
	// QueryInterval tune receiver learning (RFC 3376 §8).
	MembershipInterval  time.Duration `mapstructure:"membership_interval"`
	LastMemberQueryTime time.Duration `mapstructure:"last_member_query_time"`
	FastLeave           bool          `mapstructure:"fast_leave"`
	QueryInterval       time.Duration `mapstructure:"query_interval"`
	// Underlay makes the ETR use a multicast-capable underlay; nil
	// registers its unicast RLOC only.
	Underlay *UnderlayOptions `mapstructure:"underlay"`
	// Trees are the (S,G) an RTR replicates for, each at a level.
	Trees []slowpath.RTRGroup `mapstructure:"trees"`
	// ProbeInterval, ProbeMisses and JoinHold tune tree failure detection.
	ProbeInterval time.Duration `mapstructure:"probe_interval"`
	ProbeMisses   int           `mapstructure:"probe_misses"`
	JoinHold      time.Duration `mapstructure:"join_hold"`
	// SubscribeWindow is how long a Map-Server notifies an ITR that asked
	// for an (S,G) (0: 10 minutes).
	SubscribeWindow time.Duration `mapstructure:"subscribe_window"`
}

// UnderlayOptions is an ETR's multicast-capable underlay
// (draft-ietf-lisp-group-mapping).
type UnderlayOptions struct {
	// Method is "hash" or "lookup".
	Method string `mapstructure:"method"`
	// Range is the underlay group range of the hash method.
	Range netip.Prefix `mapstructure:"range"`
	// LookupIID is the instance-ID of the group-<G-EID> names.
	LookupIID uint32 `mapstructure:"lookup_iid"`
	// RegisterURLOC also registers the unicast RLOC.
	RegisterURLOC bool `mapstructure:"register_urloc"`
	// SuppressHold is how long the U-RLOC leaves (S,G) RLOC-probes
	// unanswered after G-RLOC traffic last arrived (duplicate suppression;
	// 0: slowpath.DefaultSuppressHold, 3 s).
	SuppressHold time.Duration `mapstructure:"suppress_hold"`
	// Interface is the core interface the underlay groups are joined on
	// ("" takes the first core interface).
	Interface string `mapstructure:"interface"`
}

// mcastRLOC is the RLOC the router puts in RLE entries.
func (c *Config) mcastRLOC() netip.Addr {
	if m := c.Multicast; m.RLOC.IsValid() {
		return m.RLOC.Unmap()
	}
	var v6 netip.Addr
	for _, a := range c.RLOCs {
		if a.Unmap().Is4() {
			return a.Unmap()
		}
		v6 = a
	}
	return v6
}

// underlayIface is the core interface underlay groups are joined on.
func (c *Config) underlayIface() string {
	if u := c.Multicast.Underlay; u != nil && u.Interface != "" {
		return u.Interface
	}
	for _, ifc := range c.Interfaces {
		if ifc.Side == SideCore {
			return ifc.Name
		}
	}
	return ""
}

// mcastConfig builds the control plane's multicast configuration (nil when
// multicast is off). It opens nothing: the underlay joiner is added by
// start.
func (c *Config) mcastConfig() (*slowpath.MulticastConfig, error) {
	o := &c.Multicast
	if !o.Enabled {
		if o.Receivers || o.Underlay != nil || len(o.Trees) > 0 {
			return nil, errors.New("multicast.enabled: multicast options given but multicast is not enabled")
		}
		return nil, nil
	}
	if !c.Roles.ITR && !c.Roles.ETR && !c.Roles.RTR && !c.Roles.MapServer {
		return nil, errors.New("multicast.enabled: needs the itr, etr, rtr or map-server role")
	}
	mc := &slowpath.MulticastConfig{RLOC: c.mcastRLOC(), Key: o.Key,
		RegisterInterval: o.RegisterInterval, RetryInterval: o.RetryInterval, Retries: o.Retries, MaxRLE: o.MaxRLE,
		Level: o.Level, MembershipInterval: o.MembershipInterval, LastMemberQueryTime: o.LastMemberQueryTime,
		FastLeave: o.FastLeave, QueryInterval: o.QueryInterval, RTRs: o.Trees, ProbeInterval: o.ProbeInterval,
		ProbeMisses: o.ProbeMisses, JoinHold: o.JoinHold, SubscribeWindow: o.SubscribeWindow, MapServers: c.MapServers}
	if o.Receivers {
		if !c.Roles.ETR {
			return nil, errors.New("multicast.receivers: needs the etr role")
		}
		for _, ifc := range c.Interfaces {
			if ifc.Side == SideSite {
				mc.SiteInterfaces = append(mc.SiteInterfaces, slowpath.SiteInterface{Name: ifc.Name, IID: ifc.IID})
			}
		}
		if len(mc.SiteInterfaces) == 0 {
			return nil, errors.New("multicast.receivers: no site interface to listen on")
		}
	}
	if len(o.Trees) > 0 && !c.Roles.RTR {
		return nil, errors.New("multicast.trees: needs the rtr role")
	}
	if u := o.Underlay; u != nil {
		if !o.Receivers {
			return nil, errors.New("multicast.underlay: only receivers' ETRs use an underlay group")
		}
		uc := &slowpath.UnderlayConfig{Range: u.Range, LookupIID: u.LookupIID, RegisterURLOC: u.RegisterURLOC,
			SuppressHold: u.SuppressHold}
		switch u.Method {
		case "hash":
			uc.Method = slowpath.UnderlayHash
		case "lookup":
			uc.Method = slowpath.UnderlayLookup
		default:
			return nil, fmt.Errorf("multicast.underlay.method: %q (want hash or lookup)", u.Method)
		}
		if c.underlayIface() == "" {
			return nil, errors.New("multicast.underlay.interface: no core interface to join groups on")
		}
		mc.Underlay = uc
	}
	return mc, nil
}

// InstallMulticast implements slowpath.MulticastInstaller: it writes the
// (S,G)/(*,G) entry with its RLE (RFC 8060 §4.9) into the map-cache, where
// the workers' replication picks it up, and releases the packets held for
// the group.
func (in installer) InstallMulticast(m *slowpath.ResolvedMulticast) {
	r := in.r
	u := cache.Update{Key: cache.MulticastKey(m.IID, m.Source, m.Group), TTL: ttlMinutes(m.TTL)}
	for _, e := range m.RLE {
		u.RLE = append(u.RLE, cache.RLEHop{Addr: e.Addr.Unmap(), Level: e.Level})
	}
	if len(u.RLE) == 0 {
		u.Action = wire.ActionDrop
	}
	if res := r.cache.Apply([]cache.Update{u}); res.Rejected > 0 {
		r.log.Warn("map-cache rejected a multicast mapping", "iid", m.IID, "source", m.Source, "group", m.Group, "err", res.Err)
	}
	r.release(fastpath.Release{IID: m.IID, Prefix: m.Group.Masked(), Negative: len(u.RLE) == 0, Action: u.Action})
	if r.events.active() {
		ev := Event{Kind: EventMappingInstalled, IID: m.IID, EID: u.Key.String(), Detail: "multicast"}
		for _, e := range m.RLE {
			ev.RLOCs = append(ev.RLOCs, e.Addr.String())
		}
		r.events.publish(ev)
	}
}

// RemoveMulticast implements slowpath.MulticastInstaller.
func (in installer) RemoveMulticast(iid uint32, src, group netip.Prefix) {
	k := cache.MulticastKey(iid, src, group)
	in.r.cache.Apply([]cache.Update{{Key: k, Delete: true}})
	in.r.log.Debug("multicast mapping removed", "entry", k.String())
}

var _ slowpath.MulticastInstaller = installer{}

// McastTreeView is the management API's view of one (S,G) replication tree.
type McastTreeView struct {
	IID      uint32            `json:"iid"`
	Source   string            `json:"source"`
	Group    string            `json:"group"`
	Role     string            `json:"role"`
	Level    int               `json:"level"`
	Parent   string            `json:"parent,omitempty"`
	Joining  string            `json:"joining,omitempty"`
	Leaving  string            `json:"leaving,omitempty"`
	Upstream []string          `json:"upstream,omitempty"`
	Failed   []string          `json:"failed,omitempty"`
	Children []string          `json:"children,omitempty"`
	Merged   []replicate.Entry `json:"merged,omitempty"`
	Tree     string            `json:"tree"`
	Text     string            `json:"text"`
	// Graph is the tree as nodes and edges (mcast_graph.go); Self is this
	// router's node in it, when it is one.
	Graph TreeGraphView `json:"graph"`
	Self  string        `json:"self,omitempty"`
}

func addrStrings(as []netip.Addr) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

func addrOrEmpty(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// McastTree returns the view of (S,G) in iid (src invalid or /0 for (*,G)).
func (r *Router) McastTree(iid uint32, src, group netip.Prefix) (McastTreeView, bool) {
	if r.engine == nil {
		return McastTreeView{}, false
	}
	t, ok := r.engine.McastTree(iid, src, group)
	if !ok {
		return McastTreeView{}, false
	}
	return r.treeView(t), true
}

// parseSGQuery reads iid, source ("*" or empty for (*,G)) and group from a
// request's query; addresses without a length are host prefixes.
func parseSGQuery(req *http.Request) (iid uint32, src, group netip.Prefix, err error) {
	q := req.URL.Query()
	if s := q.Get("iid"); s != "" {
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil || v > 1<<24-1 {
			return 0, src, group, fmt.Errorf("iid: %q is not a 24-bit instance-ID", s)
		}
		iid = uint32(v)
	}
	if group, err = hostPrefix(q.Get("group")); err != nil || !group.Addr().IsMulticast() {
		return 0, src, group, fmt.Errorf("group: %q is not a multicast address or prefix", q.Get("group"))
	}
	if s := q.Get("source"); s != "" && s != "*" {
		if src, err = hostPrefix(s); err != nil {
			return 0, src, group, fmt.Errorf("source: %q is not an address or prefix", s)
		}
	}
	return iid, src, group, nil
}

func hostPrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (r *Router) apiMcastTree(w http.ResponseWriter, req *http.Request) {
	iid, src, group, err := parseSGQuery(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	v, ok := r.McastTree(iid, src, group)
	if !ok {
		http.Error(w, "no multicast state for that (S,G)", http.StatusNotFound)
		return
	}
	writeJSON(w, v)
}

// apiMcastRLE returns a Map-Server's merged RLE of an (S,G) ([] when it
// has none).
func (r *Router) apiMcastRLE(w http.ResponseWriter, req *http.Request) {
	iid, src, group, err := parseSGQuery(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	out := []replicate.Entry{}
	if r.engine != nil {
		out = append(out, r.engine.McastRLE(iid, src, group)...)
	}
	writeJSON(w, out)
}

// apiMcastStats returns the control plane's multicast counters.
func (r *Router) apiMcastStats(w http.ResponseWriter, _ *http.Request) {
	if r.engine == nil {
		writeJSON(w, slowpath.McastStats{})
		return
	}
	writeJSON(w, r.engine.McastStats())
}

// apiMcastDepart retires this RTR gracefully from the tree of the (S,G)
// given in the query (Engine.McastDepart: make-before-break for its
// children, then its registration is withdrawn).
func (r *Router) apiMcastDepart(w http.ResponseWriter, req *http.Request) {
	iid, src, group, err := parseSGQuery(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.engine == nil {
		http.Error(w, "no control plane", http.StatusNotFound)
		return
	}
	if err := r.engine.McastDepart(iid, src, group); err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	writeJSON(w, map[string]string{"status": "departing"})
}

// mcastRoutes adds the multicast endpoints to the management API.
func (r *Router) mcastRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/mcast/tree", r.apiMcastTree)
	mux.HandleFunc("GET /v1/mcast/trees", r.apiMcastTrees)
	mux.HandleFunc("POST /v1/mcast/depart", r.apiMcastDepart)
	mux.HandleFunc("GET /v1/mcast/stats", r.apiMcastStats)
	mux.HandleFunc("GET /v1/mcast/rle", r.apiMcastRLE)
}

// mcastOpen opens what the multicast configuration needs outside the
// engine: the underlay joiner on the core interface (closed on Stop). The
// engine opens the IGMP/MLD listeners itself.
func (r *Router) mcastOpen(ec *slowpath.Config) error {
	mc := ec.Multicast
	if mc != nil && r.localGroups != nil {
		m := *mc
		m.ReceiverGroups = r.setLocalGroups
		ec.Multicast, mc = &m, &m
	}
	if mc == nil || mc.Underlay == nil {
		return nil
	}
	ifname := r.cfg.underlayIface()
	j, err := mcast.NewSocketJoiner(ifname, wire.DataPort)
	if err != nil {
		return fmt.Errorf("multicast.underlay.interface: %s: %w", ifname, err)
	}
	u := *mc.Underlay
	u.Joiner = &steerJoiner{j: j, r: r}
	m := *mc
	m.Underlay = &u
	ec.Multicast = &m
	if c, ok := j.(interface{ Close() error }); ok {
		r.closers = append(r.closers, c.Close)
	}
	return nil
}

// steerJoiner joins underlay groups through the kernel and adds each joined
// group to the core-side steering programs' local addresses, so that LISP
// data sent to the G-RLOC reaches the fast path (ring/xsk core mode
// redirects UDP 4341 to local addresses only).
type steerJoiner struct {
	j slowpath.UnderlayJoiner
	r *Router
}

// coreProgs are the steering programs of the core interfaces.
func (s *steerJoiner) coreProgs() []*xsk.Program {
	var out []*xsk.Program
	for i, p := range s.r.progs {
		if i < len(s.r.cfg.Interfaces) && s.r.cfg.Interfaces[i].Side == SideCore {
			out = append(out, p)
		}
	}
	return out
}

// Join implements slowpath.UnderlayJoiner.
func (s *steerJoiner) Join(group, source netip.Addr) error {
	for _, p := range s.coreProgs() {
		if err := p.AddLocal(group); err != nil {
			return fmt.Errorf("steering %s to the fast path: %w", group, err)
		}
	}
	return s.j.Join(group, source)
}

// Leave implements slowpath.UnderlayJoiner.
func (s *steerJoiner) Leave(group, source netip.Addr) error {
	for _, p := range s.coreProgs() {
		_ = p.RemoveLocal(group)
	}
	return s.j.Leave(group, source)
}

// setLocalGroups is the engine's MulticastConfig.ReceiverGroups: it
// publishes the groups with site receivers to the workers.
func (r *Router) setLocalGroups(gs []slowpath.ReceiverGroup) {
	lg := make([]fastpath.LocalGroup, len(gs))
	for i, g := range gs {
		lg[i] = fastpath.LocalGroup{IID: g.IID, Source: g.Source, Group: g.Group}
	}
	r.localGroups.Set(lg)
}

// receivedOnUnderlayGroup is the workers' fastpath.Config.UnderlayGroup.
func (r *Router) receivedOnUnderlayGroup(g netip.Addr) bool {
	e := r.ugEngine.Load()
	if e == nil {
		return false // the engine is not running yet: tell it later
	}
	e.ReceivedOnUnderlayGroup(g)
	return true
}

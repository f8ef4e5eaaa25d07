package router

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/rloc-router/rloc/fastpath"
	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// xtrID derives a stable 128-bit xTR-ID from the router's name
// (RFC 9301 §5.6).
func xtrID(name string) wire.XTRID {
	sum := sha256.Sum256([]byte("rloc xtr-id " + name))
	var id wire.XTRID
	copy(id[:], sum[:16])
	return id
}

// Roles says which LISP roles the router plays (any combination).
type Roles struct {
	// ITR encapsulates site traffic to the RLOCs it resolves (RFC 9300 §3).
	ITR bool
	// ETR registers the database mappings and decapsulates (RFC 9300 §3).
	ETR bool
	// PITR encapsulates traffic from non-LISP sites (RFC 6832 §3).
	PITR bool
	// PETR decapsulates traffic for non-LISP destinations (RFC 6832 §4).
	PETR bool
	// RTR re-encapsulates between RLOC spaces (RFC 9300 §3).
	RTR bool
	// MapServer accepts Map-Registers from the configured sites
	// (RFC 9301 §8.2).
	MapServer bool
	// MapResolver answers ECM Map-Requests (RFC 9301 §8.1).
	MapResolver bool
}

// any reports whether at least one role is set.
func (r Roles) any() bool {
	return r.ITR || r.ETR || r.PITR || r.PETR || r.RTR || r.MapServer || r.MapResolver
}

// resolves reports whether the router sends Map-Requests for misses.
func (r Roles) resolves() bool { return r.ITR || r.PITR || r.RTR }

// dataPlane reports whether the router runs a fast path.
func (r Roles) dataPlane() bool { return r.ITR || r.ETR || r.PITR || r.PETR || r.RTR }

// Side says which way an interface faces.
type Side string

// Interface sides.
const (
	// SideSite faces a LISP site (or, on a PITR/PETR, the non-LISP
	// network): inner traffic of one instance-ID.
	SideSite Side = "site"
	// SideCore faces the RLOC underlay: LISP data packets.
	SideCore Side = "core"
)

// XDPMode is how the steering program attaches to an interface.
type XDPMode string

// XDP attachment modes.
const (
	// XDPDriver is native XDP (the default).
	XDPDriver XDPMode = "driver"
	// XDPGeneric is the generic (skb) XDP path.
	XDPGeneric XDPMode = "generic"
)

// Interface is one interface the fast path owns.
type Interface struct {
	// Name is the interface name in the router's network namespace.
	Name string
	// Side is site or core.
	Side Side
	// IID is the instance-ID of a site interface (RFC 9300 §5.3, 24 bits).
	IID uint32
	// Queues is the number of receive queues to open sockets on (default
	// 1); every fast-path interface must have the same number, one worker
	// serves queue q of every interface.
	Queues int
	// XDPMode is driver (default) or generic.
	XDPMode XDPMode
	// MTU bounds the outer packets sent towards the core through a core
	// interface; 0 takes the interface MTU.
	MTU int
	// Glean enables gleaning on a site interface (RFC 9300 §9): the ETR
	// installs a short-lived mapping from the source EID of packets it
	// decapsulates for this instance-ID to the RLOC they came from, and
	// verifies it with a Map-Request. Off by default: gleaning trusts data
	// packets and has no policy control.
	Glean bool
}

// ETROptions tunes the ETR role.
type ETROptions struct {
	// RegisterInterval is the Map-Register period (0: 60 s, RFC 9301 §8.2).
	RegisterInterval time.Duration
	// ProxyReply sets the P bit of Map-Registers (RFC 9301 §5.6).
	ProxyReply bool
	// DeregisterOnStop sends Map-Registers with TTL 0 on a graceful stop.
	DeregisterOnStop bool
	// SiteID is sent with the xTR-ID (RFC 9301 §5.6); the xTR-ID is
	// derived from the router's name when set.
	SiteID uint64
}

// ITROptions tunes the ITR role.
type ITROptions struct {
	// ProbeInterval is the RLOC-probing period (0: no probing, RFC 9301 §7.1).
	ProbeInterval time.Duration
	// ProbeMisses is how many unanswered probes mark an RLOC down (0: 3).
	ProbeMisses int
	// RetransmitInterval is the first Map-Request retransmission timeout
	// (0: 1 s).
	RetransmitInterval time.Duration
	// MaxTries bounds the Map-Requests per miss (0: 5).
	MaxTries int
}

// MapServerOptions tunes the Map-Server role.
type MapServerOptions struct {
	// RegistrationTimeout is the life of an unrefreshed registration (0:
	// 3 minutes).
	RegistrationTimeout time.Duration
	// GroupMappings are the overlay-group to underlay-group mappings the
	// Map-Server answers group-name lookups with
	// (slowpath.MapServerConfig.GroupMappings).
	GroupMappings []replicate.GroupMapping
}

// MapResolverOptions tunes the Map-Resolver role.
type MapResolverOptions struct {
	// Aggregates are EID prefixes known to be LISP space (negative replies
	// inside them say send-map-request).
	Aggregates []slowpath.EIDPrefix
	// MapServers are remote Map-Servers requests are forwarded to.
	MapServers []slowpath.RemoteMapServer
	// NegativeTTL is the TTL of native-forward negative replies (0: 15 min).
	NegativeTTL time.Duration
}

// CacheOptions bounds the map-cache.
type CacheOptions struct {
	// MaxEntries bounds the entries (0: cache default).
	MaxEntries int
	// MaxNegative bounds the negative entries (0: MaxEntries/16).
	MaxNegative int
}

// Config is everything a Router is built from. Zero optional fields take
// the defaults of the packages they are passed to.
type Config struct {
	// Name names the router in logs and derives its xTR-ID.
	Name string
	// Roles are the LISP roles.
	Roles Roles
	// Interfaces are the fast path's interfaces.
	Interfaces []Interface
	// XDP sizes the AF_XDP sockets of the interfaces.
	XDP XDPOptions
	// CPUs are the cores workers are pinned to, worker q on CPUs[q %
	// len(CPUs)]; empty leaves them unpinned.
	CPUs []int
	// RLOCs are the local RLOCs, at most one IPv4 and one IPv6.
	RLOCs []netip.Addr
	// Listen are the control sockets (default 0.0.0.0:4342 and [::]:4342).
	Listen []netip.AddrPort
	// RateLimit bounds the control messages per source.
	RateLimit slowpath.RateLimitConfig
	// Database are the ETR's EID-to-RLOC mappings.
	Database []slowpath.Mapping
	// MapServers are what the ETR registers with.
	MapServers []slowpath.MapServerPeer
	// MapResolvers are what the ITR/PITR/RTR send Map-Requests to.
	MapResolvers []netip.AddrPort
	// PETRs are Proxy-ETRs used for negative mappings (RFC 6832 §4), at
	// most one per family.
	PETRs []netip.Addr
	// Advertise are the EID aggregates a PITR attracts traffic for (RFC 6832
	// §3): rloc installs a kernel route for each (protocol RouteProtocol)
	// for a routing daemon to announce into the underlay, and removes them
	// on Stop.
	Advertise []netip.Prefix
	// Static are map-cache entries from configuration.
	Static []fastpath.StaticMapping
	// Sites are the Map-Server's sites.
	Sites []slowpath.SiteConfig
	// ETR, ITR, MapServer and MapResolver tune the roles.
	ETR         ETROptions
	ITR         ITROptions
	MapServer   MapServerOptions
	MapResolver MapResolverOptions
	// Multicast enables LISP multicast (router/mcast.go).
	Multicast MulticastOptions
	// Hold sizes the hold-on-miss queues.
	Hold fastpath.HoldConfig
	// Cache bounds the map-cache.
	Cache CacheOptions
	// Nonce sets the N bit and a nonce in every data packet (RFC 9300 §5.3).
	Nonce bool
	// MgmtSocket is the management API's Unix socket path ("" disables it).
	MgmtSocket string
	// MetricsAddr is the TCP address /metrics is served on ("" disables it).
	MetricsAddr string
	// Logger receives the router's logs (nil discards them).
	Logger *slog.Logger
}

// XDPOptions sizes the AF_XDP rings and UMEM. The receive ring absorbs the
// packets that arrive while a worker is not running (descheduled, a
// hypervisor stealing its core): RingSize packets, e.g. 0.4 s at 5 kpps with
// the default.
type XDPOptions struct {
	// RingSize is the size of each socket's fill, receive, transmit and
	// completion rings (a power of two, 64..16384; 0 means 2048).
	RingSize int
	// Frames is the number of 2 KiB UMEM chunks per interface and queue
	// (at least RingSize; 0 means 2 × RingSize).
	Frames int
	// BusyPoll makes the workers poll their sockets without ever sleeping:
	// the lowest latency, at the price of a whole core per worker even
	// when idle. Off by default: an idle worker sleeps in poll(2).
	BusyPoll bool
}

// sizes returns the ring size and frames with defaults applied.
func (o XDPOptions) sizes() (ring, frames int) {
	ring, frames = o.RingSize, o.Frames
	if ring == 0 {
		ring = 2048
	}
	if frames == 0 {
		frames = 2 * ring
	}
	return ring, frames
}

// Validate checks cfg and returns the first problem, naming the field by
// its configuration-file key.
func (c *Config) Validate() error {
	if !c.Roles.any() {
		return errors.New("roles: no role configured")
	}
	var r4, r6 bool
	for i, a := range c.RLOCs {
		switch {
		case !a.IsValid() || a.IsUnspecified() || a.IsMulticast():
			return fmt.Errorf("rlocs[%d]: %v is not a unicast address", i, a)
		case a.Unmap().Is4():
			if r4 {
				return fmt.Errorf("rlocs[%d]: a second IPv4 RLOC", i)
			}
			r4 = true
		default:
			if r6 {
				return fmt.Errorf("rlocs[%d]: a second IPv6 RLOC", i)
			}
			r6 = true
		}
	}
	if c.Roles.dataPlane() {
		if len(c.RLOCs) == 0 {
			return errors.New("rlocs: a data-plane role needs at least one local RLOC")
		}
		if len(c.Interfaces) == 0 {
			return errors.New("interfaces: a data-plane role needs interfaces")
		}
	}
	names := map[string]bool{}
	var site, core bool
	queues := 0
	for i, ifc := range c.Interfaces {
		f := fmt.Sprintf("interfaces[%d]", i)
		if ifc.Name == "" || len(ifc.Name) > 15 {
			return fmt.Errorf("%s.name: %q is not an interface name", f, ifc.Name)
		}
		if names[ifc.Name] {
			return fmt.Errorf("%s.name: %s listed twice", f, ifc.Name)
		}
		names[ifc.Name] = true
		switch ifc.Side {
		case SideSite:
			site = true
		case SideCore:
			core = true
			if ifc.IID != 0 {
				return fmt.Errorf("%s.iid: only site interfaces have an instance-ID", f)
			}
			if ifc.Glean {
				return fmt.Errorf("%s.glean: only site interfaces glean", f)
			}
		default:
			return fmt.Errorf("%s.side: %q (want site or core)", f, ifc.Side)
		}
		if ifc.Glean && !c.Roles.resolves() {
			return fmt.Errorf("%s.glean: gleaning needs the itr, pitr or rtr role to verify what it gleans", f)
		}
		if ifc.IID > 1<<24-1 {
			return fmt.Errorf("%s.iid: %d does not fit in 24 bits", f, ifc.IID)
		}
		q := max(ifc.Queues, 1)
		if ifc.Queues < 0 || ifc.Queues > 64 {
			return fmt.Errorf("%s.queues: %d (1..64)", f, ifc.Queues)
		}
		if queues != 0 && q != queues {
			return fmt.Errorf("%s.queues: %d, but other interfaces have %d (all must match)", f, q, queues)
		}
		queues = q
		switch ifc.XDPMode {
		case "", XDPDriver, XDPGeneric:
		default:
			return fmt.Errorf("%s.xdp_mode: %q (want driver or generic)", f, ifc.XDPMode)
		}
		if ifc.MTU < 0 || (ifc.MTU > 0 && ifc.MTU < 576) {
			return fmt.Errorf("%s.mtu: %d (0 or at least 576)", f, ifc.MTU)
		}
	}
	if r := c.XDP.RingSize; r != 0 && (r < 64 || r > 16384 || r&(r-1) != 0) {
		return fmt.Errorf("xdp.ring_size: %d (a power of two, 64..16384)", r)
	}
	if ring, frames := c.XDP.sizes(); frames < ring || frames > 1<<20 {
		return fmt.Errorf("xdp.frames: %d (at least the ring size %d, at most 1048576)", frames, ring)
	}
	if len(c.Interfaces) > 0 && (!site || !core) {
		return errors.New("interfaces: need at least one site and one core interface")
	}
	for i, cpu := range c.CPUs {
		if cpu < 0 || cpu > 4095 {
			return fmt.Errorf("cpus[%d]: %d is not a CPU number", i, cpu)
		}
	}
	if c.Roles.ETR && len(c.Database) == 0 {
		return errors.New("database: the etr role needs database mappings")
	}
	if !c.Roles.ETR && len(c.MapServers) > 0 && len(c.Multicast.Trees) == 0 {
		return errors.New("map_servers: only the etr role (or an rtr with multicast.trees) registers with Map-Servers")
	}
	if c.Roles.resolves() && len(c.MapResolvers) == 0 {
		return errors.New("map_resolvers: the itr/pitr/rtr roles need a Map-Resolver")
	}
	if c.Roles.MapServer && len(c.Sites) == 0 {
		return errors.New("sites: the map-server role needs sites")
	}
	if !c.Roles.MapServer && len(c.Sites) > 0 {
		return errors.New("sites: only the map-server role has sites")
	}
	for i, p := range c.Advertise {
		if !p.IsValid() {
			return fmt.Errorf("advertise[%d]: invalid prefix", i)
		}
		if !c.Roles.PITR {
			return fmt.Errorf("advertise[%d]: only the pitr role advertises EID aggregates", i)
		}
	}
	var p4, p6 bool
	for i, a := range c.PETRs {
		switch {
		case !a.IsValid() || a.IsUnspecified():
			return fmt.Errorf("petrs[%d]: invalid address", i)
		case a.Unmap().Is4():
			if p4 {
				return fmt.Errorf("petrs[%d]: a second IPv4 PETR", i)
			}
			p4 = true
		default:
			if p6 {
				return fmt.Errorf("petrs[%d]: a second IPv6 PETR", i)
			}
			p6 = true
		}
	}
	if _, err := fastpath.StaticUpdates(c.Static); err != nil {
		return fmt.Errorf("map_cache: %w", err)
	}
	if c.ITR.ProbeInterval < 0 || c.ITR.RetransmitInterval < 0 || c.ITR.ProbeMisses < 0 || c.ITR.MaxTries < 0 {
		return errors.New("itr: negative interval or count")
	}
	if c.ETR.RegisterInterval < 0 {
		return errors.New("etr.register_interval: negative")
	}
	if c.Cache.MaxEntries < 0 || c.Cache.MaxNegative < 0 {
		return errors.New("cache: negative bound")
	}
	// The control plane checks the rest (keys, prefixes, peers).
	_, err := c.engineConfig()
	if err != nil {
		return err
	}
	return nil
}

// engineConfig builds the slow path's configuration.
func (c *Config) engineConfig() (slowpath.Config, error) {
	ec := slowpath.Config{Listen: c.Listen, RateLimit: c.RateLimit, Logger: c.Logger}
	if c.Roles.MapServer {
		ec.MapServer = &slowpath.MapServerConfig{Sites: c.Sites, RegistrationTimeout: c.MapServer.RegistrationTimeout,
			GroupMappings: c.MapServer.GroupMappings}
	}
	if c.Roles.MapResolver {
		ec.MapResolver = &slowpath.MapResolverConfig{MapServers: c.MapResolver.MapServers,
			Aggregates: c.MapResolver.Aggregates, NegativeTTL: c.MapResolver.NegativeTTL}
	}
	if c.Roles.ETR {
		e := &slowpath.ETRConfig{MapServers: c.MapServers, Mappings: c.Database,
			RegisterInterval: c.ETR.RegisterInterval, ProxyReply: c.ETR.ProxyReply,
			DeregisterOnStop: c.ETR.DeregisterOnStop, SiteID: c.ETR.SiteID}
		if c.Name != "" {
			e.XTRID = xtrID(c.Name)
		}
		ec.ETR = e
	}
	if c.Roles.resolves() {
		ec.ITR = &slowpath.ITRConfig{MapResolvers: c.MapResolvers, ITRRLOCs: c.RLOCs,
			ProbeInterval: c.ITR.ProbeInterval, ProbeMisses: c.ITR.ProbeMisses,
			RetransmitInterval: c.ITR.RetransmitInterval, MaxTries: c.ITR.MaxTries}
	}
	mc, err := c.mcastConfig()
	if err != nil {
		return ec, err
	}
	ec.Multicast = mc
	if ec.MapServer == nil && ec.MapResolver == nil && ec.ETR == nil && ec.ITR == nil {
		return ec, nil // a pure PETR: no control role
	}
	if err := ec.Validate(); err != nil {
		return ec, errors.New(engineKeys.Replace(err.Error()))
	}
	return ec, nil
}

// engineKeys renames the control plane's field paths to the router's
// configuration keys.
var engineKeys = strings.NewReplacer(
	"etr.mappings", "database",
	"etr.map_servers", "map_servers",
	"map_server.sites", "sites",
	"itr.map_resolvers", "map_resolvers",
	"itr.itr_rlocs", "rlocs",
	"multicast.rtrs", "multicast.trees",
	"multicast.site_interfaces", "multicast.receivers",
	"listen[", "control.listen[",
)

package router

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"time"

	"github.com/rloc-router/rloc/fastpath"
	"github.com/rloc-router/rloc/fastpath/nexthop"
	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/ring/xsk"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/regstore/regdb"
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

// Roles says which LISP roles the router plays (any combination). A
// configuration file lists them by name (roles: [itr, etr]).
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
	// DDTNode answers DDT Map-Requests with Map-Referrals for the
	// delegations of section ddt (RFC 8111 §7.1, docs/ddt.md).
	DDTNode bool
	// ALT routes Map-Requests over a BGP overlay of GRE tunnels (RFC 6836,
	// section alt, docs/alt.md).
	ALT bool
}

// String lists the roles as the configuration file names them.
func (r Roles) String() string {
	var names []string
	for _, x := range []struct {
		on   bool
		name string
	}{{r.ITR, "itr"}, {r.ETR, "etr"}, {r.PITR, "pitr"}, {r.PETR, "petr"}, {r.RTR, "rtr"},
		{r.MapServer, "map-server"}, {r.MapResolver, "map-resolver"}, {r.DDTNode, "ddt-node"}, {r.ALT, "alt"}} {
		if x.on {
			names = append(names, x.name)
		}
	}
	return "[" + strings.Join(names, ", ") + "]"
}

// any reports whether at least one role is set.
func (r Roles) any() bool {
	return r.ITR || r.ETR || r.PITR || r.PETR || r.RTR || r.MapServer || r.MapResolver || r.DDTNode || r.ALT
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
	Name string `mapstructure:"name"`
	// Side is site or core.
	Side Side `mapstructure:"side"`
	// IID is the instance-ID of a site interface (RFC 9300 §5.3, 24 bits).
	IID uint32 `mapstructure:"iid"`
	// Queues is the number of receive queues to open sockets on (default
	// 1); every fast-path interface must have the same number, one worker
	// serves queue q of every interface. It must match the receive queues
	// the NIC spreads traffic over (ethtool -l), or rlocd refuses to start
	// (see partial_queues).
	Queues int `mapstructure:"queues"`
	// PartialQueues lets queues be fewer than the receive queues the NIC
	// spreads traffic over, for a NIC whose RSS indirection or flow rules
	// keep what the fast path must forward on the first queues. Without it
	// rlocd refuses to start on such an interface; with it, what arrives on
	// the other queues goes to the kernel, counted as pass_no_xsk.
	PartialQueues bool `mapstructure:"partial_queues"`
	// XDPMode is driver (default) or generic.
	XDPMode XDPMode `mapstructure:"xdp_mode"`
	// MTU bounds the outer packets sent towards the core through a core
	// interface; 0 takes the interface MTU.
	MTU int `mapstructure:"mtu"`
	// Glean enables gleaning on a site interface (RFC 9300 §9): the ETR
	// installs a short-lived mapping from the source EID of packets it
	// decapsulates for this instance-ID to the RLOC they came from, and
	// verifies it with a Map-Request. Off by default: gleaning trusts data
	// packets and has no policy control.
	Glean bool `mapstructure:"glean"`
}

// ETROptions tunes the ETR role.
type ETROptions struct {
	// RegisterInterval is the Map-Register period (0: 60 s, RFC 9301 §8.2).
	RegisterInterval time.Duration `mapstructure:"register_interval"`
	// ProxyReply sets the P bit of Map-Registers (RFC 9301 §5.6).
	ProxyReply bool `mapstructure:"proxy_reply"`
	// DeregisterOnStop sends Map-Registers with TTL 0 on a graceful stop.
	DeregisterOnStop bool `mapstructure:"deregister_on_stop"`
	// SiteID is sent with the xTR-ID (RFC 9301 §5.6); the xTR-ID is
	// derived from the router's name when set.
	SiteID uint64 `mapstructure:"site_id"`
}

// ITROptions tunes the ITR role.
type ITROptions struct {
	// ProbeInterval is the RLOC-probing period (0: no probing, RFC 9301 §7.1).
	ProbeInterval time.Duration `mapstructure:"probe_interval"`
	// ProbeMisses is how many unanswered probes mark an RLOC down (0: 3).
	ProbeMisses int `mapstructure:"probe_misses"`
	// RetransmitInterval is the first Map-Request retransmission timeout
	// (0: 1 s).
	RetransmitInterval time.Duration `mapstructure:"retransmit_interval"`
	// MaxTries bounds the Map-Requests per miss (0: 5).
	MaxTries int `mapstructure:"max_tries"`
	// Subscribe subscribes to the resolved mappings (RFC 9437,
	// docs/pubsub.md).
	Subscribe SubscribeOptions `mapstructure:"subscribe"`
	// ReplySources are Map-Servers that proxy-reply, when they are neither
	// map_resolvers nor map_servers: a Map-Reply is refused unless it
	// comes from one of those, the Map-Resolver asked, or one of its own
	// locators.
	ReplySources []netip.Addr `mapstructure:"reply_sources"`
	// LispSec asks for LISP-SEC on the ITR's lookups (RFC 9303,
	// docs/lisp-sec.md).
	LispSec LispSecOptions `mapstructure:"lisp_sec"`
	// Solicit copies the map-caches of peer ITRs at start and answers
	// theirs (docs/solicit.md).
	Solicit slowpath.SolicitConfig `mapstructure:"solicit"`
}

// MapServerOptions tunes the Map-Server role.
type MapServerOptions struct {
	// RegistrationTimeout is the life of an unrefreshed registration (0:
	// 3 minutes).
	RegistrationTimeout time.Duration `mapstructure:"registration_timeout"`
	// GroupMappings are the overlay-group to underlay-group mappings the
	// Map-Server answers group-name lookups with
	// (slowpath.MapServerConfig.GroupMappings).
	GroupMappings []replicate.GroupMapping `mapstructure:"group_mappings"`
	// PubSub bounds and authorises the ITRs' subscriptions (RFC 9437,
	// docs/pubsub.md).
	PubSub PubSubOptions `mapstructure:"pubsub"`
	// LispSecKey unwraps the one-time keys of LISP-SEC Map-Requests (RFC
	// 9303): the ITRs' itr.lisp_sec.key. LISP-SEC is served whenever an ITR
	// asks; without this key only unwrapped keys are (docs/lisp-sec.md).
	LispSecKey string `mapstructure:"lisp_sec_key"`
	// Limits bound what the sites register
	// (slowpath.RegistrationLimits, docs/operating.md).
	Limits slowpath.RegistrationLimits `mapstructure:"limits"`
	// StateFile is the file the registrations are kept in across
	// restarts, so that a restarted Map-Server answers from them at once
	// (docs/operating.md), and the interconnect's copies of peer mapping
	// systems (msx, docs/interconnect.md); empty (the default) keeps them
	// in memory only. The Debian package provides /var/lib/rloc for it
	// (StateDirectory).
	StateFile string `mapstructure:"state_file"`
	// DDT tunes the answers to DDT Map-Resolvers: TTLs, peers (the
	// referral set), signing key (RFC 8111 §7.2, docs/ddt.md).
	DDT slowpath.DDTMapServerConfig `mapstructure:"ddt"`
}

// MapResolverOptions tunes the Map-Resolver role.
type MapResolverOptions struct {
	// Aggregates are EID prefixes known to be LISP space (negative replies
	// inside them say send-map-request).
	Aggregates []slowpath.EIDPrefix `mapstructure:"aggregates"`
	// MapServers are remote Map-Servers requests are forwarded to.
	MapServers []slowpath.RemoteMapServer `mapstructure:"map_servers"`
	// NegativeTTL is the TTL of native-forward negative replies (0: 15 min).
	NegativeTTL time.Duration `mapstructure:"negative_ttl"`
	// LispSecKey signs the negative replies to LISP-SEC Map-Requests (RFC
	// 9303) with the ITRs' itr.lisp_sec.key; empty: map_server.lisp_sec_key
	// when this router is also the Map-Server (docs/lisp-sec.md).
	LispSecKey string `mapstructure:"lisp_sec_key"`
	// DDTRoots are the DDT root nodes the referral cache starts from
	// (RFC 8111 §7.3, docs/ddt.md).
	DDTRoots []netip.AddrPort `mapstructure:"ddt_roots"`
	// DDT tunes the DDT resolution: hop bound, retransmission, tries per
	// target, referral-cache size (docs/ddt.md).
	DDT slowpath.DDTResolverConfig `mapstructure:"ddt"`
	// DDTKeys are the public keys referral signatures are verified with
	// (RFC 8111 §6.4.1, docs/ddt.md).
	DDTKeys []slowpath.DDTKey `mapstructure:"ddt_keys"`
}

// CacheOptions bounds the map-cache.
type CacheOptions struct {
	// MaxEntries bounds the entries (0: cache default).
	MaxEntries int `mapstructure:"max_entries"`
	// MaxNegative bounds the negative entries (0: MaxEntries/16).
	MaxNegative int `mapstructure:"max_negative"`
}

// ControlOptions are the control plane's sockets.
type ControlOptions struct {
	// Listen are the control sockets (default 0.0.0.0:4342 and [::]:4342);
	// a configuration file may omit the port (4342).
	Listen []netip.AddrPort `mapstructure:"listen"`
	// RateLimit bounds the control messages per source address and in
	// total, per message class (on by default).
	RateLimit slowpath.RateLimitConfig `mapstructure:"rate_limit"`
}

// MgmtOptions is the management API (router/mgmt.go).
type MgmtOptions struct {
	// Socket is the management API's Unix socket path ("" disables it).
	Socket string `mapstructure:"socket"`
}

// MetricsOptions is the Prometheus endpoint (router/metrics.go).
type MetricsOptions struct {
	// Listen is the TCP address /metrics is served on ("" disables it).
	Listen string `mapstructure:"listen"`
}

// StatusOptions is the read-only status page (router/status.go): roles,
// interfaces, map-cache, registrations, multicast trees drawn as SVG and
// counters, for a browser. It has no authentication and shows no keys.
type StatusOptions struct {
	// Listen is the TCP address (host:port) the page is served on; ""
	// disables it (the default). A host other than a loopback address
	// needs remote.
	Listen string `mapstructure:"listen"`
	// Remote allows a listen address beyond loopback: the page is then
	// readable by anyone who reaches it (put it behind an authenticating
	// proxy).
	Remote bool `mapstructure:"remote"`
}

// Config is everything a Router is built from, and the schema of rlocd's
// configuration file: each field's key in the file is its mapstructure tag,
// and Validate names fields by those keys (e.g. "sites[1].prefixes[0].eid").
// Zero optional fields take the defaults of the packages they are passed
// to.
type Config struct {
	// Name names the router in logs and derives its xTR-ID.
	Name string `mapstructure:"name"`
	// Roles are the LISP roles.
	Roles Roles `mapstructure:"roles"`
	// Interfaces are the fast path's interfaces.
	Interfaces []Interface `mapstructure:"interfaces"`
	// XDP sizes the AF_XDP sockets of the interfaces.
	XDP XDPOptions `mapstructure:"xdp"`
	// NextHops tunes the watcher that mirrors the kernel's routes,
	// neighbours and links into the fast path's next-hop table.
	NextHops NextHopOptions `mapstructure:"next_hops"`
	// CPUs are the cores workers are pinned to, worker q on CPUs[q %
	// len(CPUs)]; empty leaves them unpinned.
	CPUs []int `mapstructure:"cpus"`
	// RLOCs are the local RLOCs, at most one IPv4 and one IPv6.
	RLOCs []netip.Addr `mapstructure:"rlocs"`
	// Control are the control sockets and their rate limit.
	Control ControlOptions `mapstructure:"control"`
	// Database are the ETR's EID-to-RLOC mappings.
	Database []slowpath.Mapping `mapstructure:"database"`
	// MapServers are what the ETR registers with.
	MapServers []slowpath.MapServerPeer `mapstructure:"map_servers"`
	// MapResolvers are what the ITR/PITR/RTR send Map-Requests to.
	MapResolvers []netip.AddrPort `mapstructure:"map_resolvers"`
	// PETRs are Proxy-ETRs used for negative mappings (RFC 6832 §4), at
	// most one per family.
	PETRs []netip.Addr `mapstructure:"petrs"`
	// Advertise are the EID aggregates a PITR attracts traffic for (RFC 6832
	// §3): rloc installs a kernel route for each (protocol RouteProtocol)
	// for a routing daemon to announce into the underlay, and removes them
	// on Stop.
	Advertise []netip.Prefix `mapstructure:"advertise"`
	// Static are map-cache entries from configuration.
	Static []fastpath.StaticMapping `mapstructure:"map_cache"`
	// Sites are the Map-Server's sites.
	Sites []slowpath.SiteConfig `mapstructure:"sites"`
	// ETR, ITR, MapServer and MapResolver tune the roles.
	ETR         ETROptions         `mapstructure:"etr"`
	ITR         ITROptions         `mapstructure:"itr"`
	MapServer   MapServerOptions   `mapstructure:"map_server"`
	MapResolver MapResolverOptions `mapstructure:"map_resolver"`
	// DDT is the DDT node's authority and delegations (role ddt-node,
	// docs/ddt.md).
	DDT slowpath.DDTNodeConfig `mapstructure:"ddt"`
	// ALT is the ALT router's tunnels, BGP and announcements (role alt,
	// docs/alt.md).
	ALT slowpath.ALTConfig `mapstructure:"alt"`
	// Discovery is OSPF discovery of Map-Resolvers and Map-Servers
	// (docs/discovery.md).
	Discovery slowpath.DiscoveryConfig `mapstructure:"discovery"`
	// MSX is the mapping-system interconnect: agreements with peer
	// mapping systems (roles map-server and/or map-resolver,
	// docs/interconnect.md). Empty: no interconnect.
	MSX slowpath.MSXConfig `mapstructure:"msx"`
	// CPNP negotiates interconnect agreements with peer mapping systems
	// found by configuration or BGP discovery (RFC 8921, docs/cpnp.md);
	// an agreed one provisions the interconnect. Empty: no negotiation.
	CPNP slowpath.CPNPConfig `mapstructure:"cpnp"`
	// Multicast enables LISP multicast (router/mcast.go).
	Multicast MulticastOptions `mapstructure:"multicast"`
	// Hold sizes the hold-on-miss queues.
	Hold fastpath.HoldConfig `mapstructure:"hold"`
	// Cache bounds the map-cache.
	Cache CacheOptions `mapstructure:"cache"`
	// Nonce sets the N bit and a nonce in every data packet (RFC 9300 §5.3).
	Nonce bool `mapstructure:"nonce"`
	// Mgmt is the management API.
	Mgmt MgmtOptions `mapstructure:"mgmt"`
	// Metrics is the /metrics endpoint.
	Metrics MetricsOptions `mapstructure:"metrics"`
	// Status is the read-only status page.
	Status StatusOptions `mapstructure:"status"`
	// Logger receives the router's logs (nil discards them).
	Logger *slog.Logger `mapstructure:"-"`
}

// XDPOptions sizes the AF_XDP rings and UMEM. The receive ring absorbs the
// packets that arrive while a worker is not running (descheduled, a
// hypervisor stealing its core): RingSize packets, e.g. 0.4 s at 5 kpps with
// the default.
type XDPOptions struct {
	// RingSize is the size of each socket's fill, receive, transmit and
	// completion rings (a power of two, 64..16384; 0 means 2048).
	RingSize int `mapstructure:"ring_size"`
	// Frames is the number of 2 KiB UMEM chunks per interface and queue
	// (at least RingSize; 0 means 2 × RingSize).
	Frames int `mapstructure:"frames"`
	// BusyPoll makes the workers poll their sockets without ever sleeping:
	// the lowest latency, at the price of a whole core per worker even
	// when idle (an idle worker yields its core to any other thread that
	// waits for it, then polls again). Off by default: an idle worker
	// sleeps in poll(2).
	BusyPoll bool `mapstructure:"busy_poll"`
	// KickDelay lets a worker hold the transmit wake-up of its sockets
	// (in copy mode, one sendto(2) per wake-up) until 32 frames wait or
	// the oldest waited this long, and always kicks before it sleeps:
	// fewer system calls for up to this much added latency (at most 1ms).
	// On veth (copy mode) it did not lower the CPU per packet, which the
	// kernel's per-frame copy dominates. 0, the default, wakes the kernel
	// at the end of every worker step.
	KickDelay time.Duration `mapstructure:"kick_delay"`
	// Offload hands steady flows of the site interfaces (IPv4 and IPv6
	// EIDs, over IPv4 or IPv6 RLOCs) to their XDP programs: once a flow's first packets went through a worker, the
	// program encapsulates the next ones itself (the same bytes the worker
	// writes) and redirects them to the core interface, so they never cross
	// the AF_XDP sockets. Every map-cache or next-hop change makes the
	// workers offer the flows again. The core interfaces must take XDP
	// redirects (a native-XDP driver; a veth whose peer runs an XDP
	// program or has GRO on): with a site interface in driver mode, rlocd
	// refuses to start when the kernel says one does not, and pauses the
	// offload while one stops taking them (xdp_offload_paused). The
	// kernel's packets are counted as xdp_offloaded, not as encap. On an
	// rtr, the core interfaces' programs likewise re-encapsulate the steady
	// flows (IPv4 and IPv6 EIDs, over IPv4 or IPv6 RLOCs; xdp_offloaded, not
	// reencap), and the core interfaces must take redirects too. Off by
	// default (docs/offload.md).
	Offload bool `mapstructure:"offload"`
	// OffloadDecap hands the deliveries of steady flows (IPv4 and IPv6
	// EIDs, over IPv4 or IPv6 RLOCs) to the XDP programs of the core
	// interfaces: once a flow's first packets went
	// through a worker, the program decapsulates the next LISP packets
	// itself (the same bytes the worker delivers) and redirects them to
	// the site interface. The site interfaces must take XDP redirects: with
	// a core interface in driver mode, rlocd refuses to start when the
	// kernel says one does not, and pauses the offload while one stops
	// taking them. Counted as xdp_offloaded, not as decap. Off by default
	// (docs/offload.md).
	OffloadDecap bool `mapstructure:"offload_decap"`
}

// NextHopOptions tunes the next-hop watcher (fastpath/nexthop), which
// mirrors the kernel's main routing table, neighbours and links for the
// workers.
type NextHopOptions struct {
	// ReceiveBufferMiB is the receive buffer of each of the watcher's
	// netlink subscriptions, in MiB (1..1024; 0 means 4): events the kernel
	// sends while the watcher is busy wait there, and a storm that
	// overflows it makes the watcher start over from a dump
	// (rloc_nexthop_events_total{event="resyncs"}). The kernel takes
	// memory for queued events only. A kernel holding an Internet table
	// that a routing daemon changes fast needs more: while a million
	// routes were withdrawn at about 25,000 a second, 4 MiB started over
	// 11 to 15 times and 64 MiB not once.
	ReceiveBufferMiB int `mapstructure:"receive_buffer_mib"`
	// PublishGap is the least time between two snapshots of the next-hop
	// table while changes keep coming (0 means 10ms; at most 1s), or the
	// time the last one took to make when longer: a change after a quiet
	// spell is published at once, one during a storm of them waits up to
	// this long.
	PublishGap time.Duration `mapstructure:"publish_gap"`
}

// watcherConfig is the part of the next-hop watcher's configuration the
// options set.
func (o NextHopOptions) watcherConfig() nexthop.WatcherConfig {
	return nexthop.WatcherConfig{ReceiveBuffer: o.ReceiveBufferMiB << 20, PublishGap: o.PublishGap}
}

// nativeSite reports whether a site interface attaches in native (driver)
// XDP mode, whose redirects need the target's ndo_xdp_xmit.
func (c *Config) nativeSite() bool { return c.native(SideSite) }

// nativeCore reports whether a core interface's program runs in driver
// mode (its decap offload's redirects need the site interfaces to take
// them).
func (c *Config) nativeCore() bool { return c.native(SideCore) }

func (c *Config) native(side Side) bool {
	for _, ifc := range c.Interfaces {
		if ifc.Side == side && ifc.XDPMode != XDPGeneric {
			return true
		}
	}
	return false
}

// XSK returns the options of one queue's UMEM (an xsk.Group) shared by the
// sockets of interfaces interfaces: its chunks are Frames per interface, and
// every ring is RingSize.
func (o XDPOptions) XSK(interfaces int) xsk.Options {
	rs, frames := o.sizes()
	return xsk.Options{NumFrames: frames * interfaces,
		FillRingSize: rs, RxRingSize: rs, TxRingSize: rs, CompletionRingSize: rs}
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

// Validate checks c and returns the first problem, naming the field by its
// key in the configuration file (the mapstructure tags of Config).
func (c *Config) Validate() error {
	for _, check := range []func() error{
		c.validateRoles, c.validateRLOCs, c.validateInterfaces, c.validateXDP, c.validateNextHops, c.validateRoleSections,
		c.validatePITR, c.validateStatic, c.validateBounds, c.validateControl, c.validateETR,
		c.validateMapServer, c.validateMapResolver, c.validateMulticast, c.validateStatus, c.validatePubSub, c.validateLispSec, c.validateSolicit,
		c.validateDDT, c.validateALT, c.validateDiscovery, c.validateMSX,
		c.validateCPNP,
	} {
		if err := check(); err != nil {
			return err
		}
	}
	// The checks above name every key; the control plane's own check
	// stays as a backstop.
	if _, err := c.engineConfig(); err != nil {
		return fmt.Errorf("control plane: %w", err)
	}
	return nil
}

// validateRoles checks that a role is set and what the data-plane roles
// need.
func (c *Config) validateRoles() error {
	if !c.Roles.any() {
		return errors.New("roles: no role configured")
	}
	if c.Roles.dataPlane() {
		if len(c.RLOCs) == 0 {
			return errors.New("rlocs: a data-plane role needs at least one local RLOC")
		}
		if len(c.Interfaces) == 0 {
			return errors.New("interfaces: a data-plane role needs interfaces")
		}
	}
	return nil
}

// oneper checks addrs, configured under key: valid (unicast with
// unicastOnly), at most one IPv4 and one IPv6 address (what names them).
func oneper(key, what string, addrs []netip.Addr, unicastOnly bool) error {
	var have4, have6 bool
	for i, a := range addrs {
		switch {
		case !a.IsValid() || a.IsUnspecified() || (unicastOnly && a.IsMulticast()):
			if unicastOnly {
				return fmt.Errorf("%s[%d]: %v is not a unicast address", key, i, a)
			}
			return fmt.Errorf("%s[%d]: invalid address", key, i)
		case a.Unmap().Is4():
			if have4 {
				return fmt.Errorf("%s[%d]: a second IPv4 %s", key, i, what)
			}
			have4 = true
		default:
			if have6 {
				return fmt.Errorf("%s[%d]: a second IPv6 %s", key, i, what)
			}
			have6 = true
		}
	}
	return nil
}

// validateRLOCs checks rlocs and petrs.
func (c *Config) validateRLOCs() error {
	if err := oneper("rlocs", "RLOC", c.RLOCs, true); err != nil {
		return err
	}
	return oneper("petrs", "PETR", c.PETRs, false)
}

// validateInterfaces checks interfaces and cpus.
func (c *Config) validateInterfaces() error {
	names := map[string]bool{}
	var site, core bool
	queues := 0
	for i := range c.Interfaces {
		ifc := &c.Interfaces[i]
		f := fmt.Sprintf("interfaces[%d]", i)
		if err := ifc.validate(f, c.Roles); err != nil {
			return err
		}
		if names[ifc.Name] {
			return fmt.Errorf("%s.name: %s listed twice", f, ifc.Name)
		}
		names[ifc.Name] = true
		site, core = site || ifc.Side == SideSite, core || ifc.Side == SideCore
		q := max(ifc.Queues, 1)
		if queues != 0 && q != queues {
			return fmt.Errorf("%s.queues: %d, but other interfaces have %d (all must match)", f, q, queues)
		}
		queues = q
	}
	if len(c.Interfaces) > 0 && (!site || !core) {
		return errors.New("interfaces: need at least one site and one core interface")
	}
	for i, cpu := range c.CPUs {
		if cpu < 0 || cpu > 4095 {
			return fmt.Errorf("cpus[%d]: %d is not a CPU number", i, cpu)
		}
	}
	return nil
}

// validate checks one interface, configured under path.
func (ifc *Interface) validate(path string, roles Roles) error {
	if ifc.Name == "" || len(ifc.Name) > 15 {
		return fmt.Errorf("%s.name: %q is not an interface name", path, ifc.Name)
	}
	switch ifc.Side {
	case SideSite:
	case SideCore:
		if ifc.IID != 0 {
			return fmt.Errorf("%s.iid: only site interfaces have an instance-ID", path)
		}
		if ifc.Glean {
			return fmt.Errorf("%s.glean: only site interfaces glean", path)
		}
	default:
		return fmt.Errorf("%s.side: %q (want site or core)", path, ifc.Side)
	}
	if ifc.Glean && !roles.resolves() {
		return fmt.Errorf("%s.glean: gleaning needs the itr, pitr or rtr role to verify what it gleans", path)
	}
	if ifc.IID > wire.MaxInstanceID {
		return fmt.Errorf("%s.iid: %d does not fit in 24 bits", path, ifc.IID)
	}
	if ifc.Queues < 0 || ifc.Queues > 64 {
		return fmt.Errorf("%s.queues: %d (1..64)", path, ifc.Queues)
	}
	switch ifc.XDPMode {
	case "", XDPDriver, XDPGeneric:
	default:
		return fmt.Errorf("%s.xdp_mode: %q (want driver or generic)", path, ifc.XDPMode)
	}
	if ifc.MTU < 0 || (ifc.MTU > 0 && ifc.MTU < 576) {
		return fmt.Errorf("%s.mtu: %d (0 or at least 576)", path, ifc.MTU)
	}
	return nil
}

// validateXDP checks the ring and UMEM sizes.
func (c *Config) validateXDP() error {
	if r := c.XDP.RingSize; r != 0 && (r < 64 || r > 16384 || r&(r-1) != 0) {
		return fmt.Errorf("xdp.ring_size: %d (a power of two, 64..16384)", r)
	}
	if ring, frames := c.XDP.sizes(); frames < ring || frames > 1<<20 {
		return fmt.Errorf("xdp.frames: %d (at least the ring size %d, at most 1048576)", frames, ring)
	}
	if d := c.XDP.KickDelay; d < 0 || d > time.Millisecond {
		return fmt.Errorf("xdp.kick_delay: %v (0 to 1ms: how long a transmit wake-up may wait for more frames)", d)
	}
	return nil
}

// validateNextHops checks the next-hop watcher's options.
func (c *Config) validateNextHops() error {
	if m := c.NextHops.ReceiveBufferMiB; m < 0 || m > 1024 {
		return fmt.Errorf("next_hops.receive_buffer_mib: %d (1 to 1024 MiB, 0 for the default 4)", m)
	}
	if d := c.NextHops.PublishGap; d < 0 || d > time.Second {
		return fmt.Errorf("next_hops.publish_gap: %v (0 to 1s: the least time between two snapshots of the next-hop table)", d)
	}
	return nil
}

// validateRoleSections checks that each role has the sections it needs
// and that no section is given for a role the router does not play.
func (c *Config) validateRoleSections() error {
	switch {
	case c.Roles.ETR && len(c.Database) == 0:
		return errors.New("database: the etr role needs database mappings")
	case !c.Roles.ETR && len(c.MapServers) > 0 && len(c.Multicast.Trees) == 0:
		return errors.New("map_servers: only the etr role (or an rtr with multicast.trees) registers with Map-Servers")
	case c.Roles.resolves() && len(c.MapResolvers) == 0 && !c.Discovery.MapResolvers:
		return errors.New("map_resolvers: the itr/pitr/rtr roles need a Map-Resolver")
	case c.Roles.MapServer && len(c.Sites) == 0:
		return errors.New("sites: the map-server role needs sites")
	case !c.Roles.MapServer && len(c.Sites) > 0:
		return errors.New("sites: only the map-server role has sites")
	case !c.Roles.ETR && len(c.Database) > 0:
		return errors.New("database: only the etr role has database mappings (add etr to roles, or remove database)")
	}
	// A section for a role the router does not run would be ignored: say so.
	for _, s := range []struct {
		key  string
		v    any
		role bool
		want string
	}{
		{"etr", c.ETR, c.Roles.ETR, "the etr role"},
		{"itr", c.ITR, c.Roles.resolves(), "the itr, pitr or rtr role"},
		{"map_server", c.MapServer, c.Roles.MapServer, "the map-server role"},
		{"map_resolver", c.MapResolver, c.Roles.MapResolver, "the map-resolver role"},
		{"ddt", c.DDT, c.Roles.DDTNode, "the ddt-node role"},
		{"alt", c.ALT, c.Roles.ALT, "the alt role"},
		{"msx", c.MSX, c.Roles.MapServer || c.Roles.MapResolver, "the map-server or map-resolver role"},
		{"cpnp", c.CPNP, c.Roles.MapServer || c.Roles.MapResolver, "the map-server or map-resolver role"},
	} {
		if !s.role && !reflect.ValueOf(s.v).IsZero() {
			return fmt.Errorf("%s: set, but only %s uses it (roles: %v)", s.key, s.want, c.Roles)
		}
	}
	for i, a := range c.MapResolvers {
		if !a.IsValid() {
			return fmt.Errorf("map_resolvers[%d]: invalid address", i)
		}
	}
	return nil
}

// validatePITR checks advertise.
func (c *Config) validatePITR() error {
	for i, p := range c.Advertise {
		if !p.IsValid() {
			return fmt.Errorf("advertise[%d]: invalid prefix", i)
		}
		if !c.Roles.PITR {
			return fmt.Errorf("advertise[%d]: only the pitr role advertises EID aggregates", i)
		}
	}
	return nil
}

// validateStatic checks map_cache.
func (c *Config) validateStatic() error {
	for i := range c.Static {
		f := fmt.Sprintf("map_cache[%d]", i)
		if err := (&slowpath.EIDPrefix{IID: c.Static[i].IID, Prefix: c.Static[i].Prefix}).Validate(f); err != nil {
			return err
		}
		if _, err := fastpath.StaticUpdates(c.Static[i : i+1]); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	return nil
}

// validateBounds checks the intervals and counts of itr, etr, cache and
// hold.
func (c *Config) validateBounds() error {
	switch {
	case c.ITR.ProbeInterval < 0 || c.ITR.RetransmitInterval < 0 || c.ITR.ProbeMisses < 0 || c.ITR.MaxTries < 0:
		return errors.New("itr: negative interval or count")
	case c.ETR.RegisterInterval < 0:
		return errors.New("etr.register_interval: negative")
	case c.Cache.MaxEntries < 0 || c.Cache.MaxNegative < 0:
		return errors.New("cache: negative bound")
	case c.Hold.PerEID < 0 || c.Hold.MaxPackets < 0 || c.Hold.MaxEIDs < 0:
		return errors.New("hold: negative bound")
	}
	return nil
}

// validateControl checks control and metrics.
func (c *Config) validateControl() error {
	if err := slowpath.ValidateListen("control.listen", c.Control.Listen); err != nil {
		return err
	}
	if l := c.Metrics.Listen; l != "" {
		if _, err := net.ResolveTCPAddr("tcp", l); err != nil {
			return fmt.Errorf("metrics.listen: %q: %v (want host:port, e.g. 127.0.0.1:9100)", l, err)
		}
	}
	return c.Control.RateLimit.Validate("control.rate_limit")
}

// validateETR checks database and map_servers.
func (c *Config) validateETR() error {
	for i := range c.Database {
		if err := c.Database[i].Validate(fmt.Sprintf("database[%d]", i)); err != nil {
			return err
		}
	}
	for i := range c.MapServers {
		if err := c.MapServers[i].Validate(fmt.Sprintf("map_servers[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

// validateMapServer checks sites and map_server.
func (c *Config) validateMapServer() error {
	if err := slowpath.ValidateSites("sites", c.Sites); err != nil {
		return err
	}
	if c.MapServer.RegistrationTimeout < 0 {
		return errors.New("map_server.registration_timeout: negative")
	}
	if err := c.MapServer.Limits.Validate("map_server.limits"); err != nil {
		return err
	}
	seen := map[slowpath.EIDPrefix]bool{}
	for i := range c.MapServer.GroupMappings {
		m := &c.MapServer.GroupMappings[i]
		f := fmt.Sprintf("map_server.group_mappings[%d]", i)
		if err := slowpath.CheckPrefix(f+".eid", m.GEID); err != nil {
			return err
		}
		if _, err := m.Record(1, 1, 100); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		k := slowpath.EIDPrefix{IID: m.IID, Prefix: m.GEID}
		if seen[k] {
			return fmt.Errorf("%s.eid: %v in IID %d configured twice", f, m.GEID, m.IID)
		}
		seen[k] = true
	}
	return nil
}

// validateMapResolver checks map_resolver.
func (c *Config) validateMapResolver() error {
	mr := &c.MapResolver
	if mr.NegativeTTL < 0 {
		return errors.New("map_resolver.negative_ttl: negative")
	}
	for i := range mr.Aggregates {
		if err := mr.Aggregates[i].Validate(fmt.Sprintf("map_resolver.aggregates[%d]", i)); err != nil {
			return err
		}
	}
	for i := range mr.MapServers {
		if err := mr.MapServers[i].Validate(fmt.Sprintf("map_resolver.map_servers[%d]", i)); err != nil {
			return err
		}
	}
	for i, a := range mr.DDTRoots {
		if !a.IsValid() || a.Addr().IsUnspecified() {
			return fmt.Errorf("map_resolver.ddt_roots[%d]: invalid address", i)
		}
	}
	return c.validateDDTResolver()
}

// validateMSX checks msx.
func (c *Config) validateMSX() error {
	if reflect.ValueOf(c.MSX).IsZero() || !(c.Roles.MapServer || c.Roles.MapResolver) {
		return nil
	}
	return c.MSX.Validate("msx")
}

// validateDDT checks ddt.
func (c *Config) validateDDT() error {
	if !c.Roles.DDTNode {
		return nil
	}
	return c.DDT.Validate("ddt")
}

// validateMulticast checks multicast.
func (c *Config) validateMulticast() error {
	mc, err := c.mcastConfig()
	if err != nil || mc == nil {
		return err
	}
	o := &c.Multicast
	if o.Key.Alg != 0 || o.Key.Secret != "" {
		if err := o.Key.Validate("multicast.key"); err != nil {
			return err
		}
	}
	members := len(mc.SiteInterfaces) > 0 || len(mc.RTRs) > 0
	if members && (!mc.RLOC.IsValid() || mc.RLOC.Is4In6()) {
		return errors.New("multicast.rloc: required for receivers or trees")
	}
	if members && len(c.MapServers) == 0 {
		return errors.New("map_servers: multicast receivers and trees register with the Map-Servers; none configured")
	}
	if err := mc.ValidateBounds("multicast"); err != nil {
		return err
	}
	if u := mc.Underlay; u != nil {
		if err := u.Validate("multicast.underlay"); err != nil {
			return err
		}
		if u.Method == slowpath.UnderlayLookup && (!c.Roles.resolves() || len(c.MapResolvers) == 0) {
			return errors.New("multicast.underlay.method: the lookup method needs the itr role and map_resolvers")
		}
	}
	return slowpath.ValidateRTRGroups("multicast.trees", o.Trees)
}

// CheckStateFile checks the Map-Server's state file as start-up will open
// it, without changing it (rlocd --check; regdb.Check).
func (c *Config) CheckStateFile() error {
	if !c.Roles.MapServer || c.MapServer.StateFile == "" {
		return nil
	}
	if err := regdb.Check(c.MapServer.StateFile); err != nil {
		return fmt.Errorf("map_server.state_file: %w", err)
	}
	return nil
}

// engineConfig builds the slow path's configuration and checks it.
func (c *Config) engineConfig() (slowpath.Config, error) {
	ec := slowpath.Config{Listen: c.Control.Listen, RateLimit: c.Control.RateLimit, Logger: c.Logger}
	if c.Roles.MapServer {
		pc, err := c.pubsubConfig()
		if err != nil {
			return ec, err
		}
		ec.MapServer = &slowpath.MapServerConfig{Sites: c.Sites, RegistrationTimeout: c.MapServer.RegistrationTimeout,
			GroupMappings: c.MapServer.GroupMappings, PubSub: pc, LispSecKey: c.MapServer.LispSecKey, Limits: c.MapServer.Limits,
			StateFile: c.MapServer.StateFile, DDT: c.MapServer.DDT}
	}
	if c.Roles.MapResolver {
		ec.MapResolver = &slowpath.MapResolverConfig{MapServers: c.MapResolver.MapServers,
			Aggregates: c.MapResolver.Aggregates, NegativeTTL: c.MapResolver.NegativeTTL, LispSecKey: c.MapResolver.LispSecKey,
			DDTRoots: c.MapResolver.DDTRoots, DDT: c.MapResolver.DDT}
		keys, err := slowpath.LoadDDTKeys("map_resolver.ddt_keys", c.MapResolver.DDTKeys)
		if err != nil {
			return ec, err
		}
		ec.MapResolver.DDTKeys = keys
	}
	if c.Roles.ETR {
		e := &slowpath.ETRConfig{MapServers: c.MapServers, Mappings: c.Database,
			RegisterInterval: c.ETR.RegisterInterval, ProxyReply: c.ETR.ProxyReply,
			DeregisterOnStop: c.ETR.DeregisterOnStop, SiteID: c.ETR.SiteID, LocalRLOCs: c.RLOCs}
		if c.Name != "" {
			e.XTRID = xtrID(c.Name)
		}
		ec.ETR = e
	}
	if c.Roles.resolves() {
		ec.ITR = &slowpath.ITRConfig{MapResolvers: c.MapResolvers, ITRRLOCs: c.RLOCs,
			ProbeInterval: c.ITR.ProbeInterval, ProbeMisses: c.ITR.ProbeMisses,
			RetransmitInterval: c.ITR.RetransmitInterval, MaxTries: c.ITR.MaxTries, Subscribe: c.subscribeConfig(),
			ReplySources: c.replySources(), LispSec: c.lispSecConfig(), Solicit: c.solicitConfig()}
	}
	if c.Roles.DDTNode {
		d := c.DDT
		ec.DDT = &d
	}
	if c.Roles.ALT {
		a := c.ALT
		ec.ALT = &a
	}
	if len(c.MSX.Agreements) > 0 && (ec.MapServer != nil || ec.MapResolver != nil) {
		x := c.MSX
		ec.MSX = &x
	}
	c.applyCPNP(&ec)
	mc, err := c.mcastConfig()
	if err != nil {
		return ec, err
	}
	ec.Multicast = mc
	c.applyDiscovery(&ec)
	if ec.MapServer == nil && ec.MapResolver == nil && ec.ETR == nil && ec.ITR == nil && ec.DDT == nil && ec.ALT == nil {
		return ec, nil // a pure PETR: no control role
	}
	return ec, ec.Validate()
}

// replySources are the addresses Map-Replies may come from besides the
// Map-Resolvers and the replies' own locators: the Map-Servers this router
// registers with and itr.reply_sources.
func (c *Config) replySources() []netip.Addr {
	var out []netip.Addr
	for _, m := range c.MapServers {
		out = append(out, m.Addr.Addr().Unmap())
	}
	for _, a := range c.ITR.ReplySources {
		out = append(out, a.Unmap())
	}
	return out
}

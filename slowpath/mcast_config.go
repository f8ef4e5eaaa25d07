package slowpath

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/wire"
)

// MulticastConfig configures signal-free LISP multicast (RFC 8378) and
// replication engineering (draft-coras-lisp-re) on an Engine. Which parts
// run follows from the roles: an ETR with SiteInterfaces learns receivers
// and registers (S,G)/(*,G); an ITR resolves (S,G) misses; a Map-Server
// merges (S,G) registrations and notifies; RTRs registers the groups it
// replicates for. Docs: docs/multicast.md.
type MulticastConfig struct {
	// RLOC is this router's RLOC in RLE entries (ETR and RTR roles).
	RLOC netip.Addr
	// Key signs and verifies what the multicast routers of a domain send
	// each other outside registrations: the Map-Server's unsolicited
	// Map-Notifies and their Map-Notify-Acks (RFC 9301 §5.7), and tree
	// joins between ETRs/RTRs (docs/multicast.md).
	Key AuthKey
	// MapServers are registered with; empty means the ETR role's.
	MapServers []MapServerPeer
	// RegisterInterval is the refresh period of (S,G) registrations and
	// tree joins; 0 means the ETR's RegisterInterval, or 60 s.
	RegisterInterval time.Duration
	// RetryInterval is the first retransmission wait for registrations,
	// joins and unsolicited Map-Notifies (doubled per try); 0 means 1 s.
	RetryInterval time.Duration
	// Retries bounds the retransmissions; 0 means 3.
	Retries int
	// MaxRLE bounds the entries of an RLE accepted anywhere (registration,
	// merge, reply, notify); 0 means replicate.DefaultMaxEntries.
	MaxRLE int

	// SiteInterfaces are the ETR's site interfaces receivers are learned
	// on, each in its instance-ID.
	SiteInterfaces []SiteInterface
	// Listeners deliver the IGMP/MLD reports; nil opens raw sockets on
	// SiteInterfaces (OpenMembershipListeners, needs CAP_NET_RAW). Tests
	// inject reports through their own Listener.
	Listeners []MembershipListener
	// Level is the ETR's RLE level; 0 means 128 (RFC 8060 §4.9: ETRs
	// register at 128).
	Level uint8
	// MembershipInterval is how long a learned membership lives without a
	// report (Group Membership Interval, RFC 3376 §8.4, RFC 3810 §9.4);
	// 0 means 260 s.
	MembershipInterval time.Duration
	// LastMemberQueryTime is how long a leave waits for another listener to
	// report (RFC 3376 §8.8 LMQT); 0 means 2 s. FastLeave drops at once.
	LastMemberQueryTime time.Duration
	// FastLeave removes a membership on a leave without waiting.
	FastLeave bool
	// QueryInterval is the period of general queries sent on the site
	// interfaces (RFC 3376 §8.2); 0 means 125 s, negative disables them.
	QueryInterval time.Duration
	// ReceiverGroups, when set, is told every (S,G)/(*,G) with receivers
	// on the site interfaces each time that set changes (on the engine's
	// goroutine; it must not block): the fast path delivers decapsulated
	// multicast only for those (fastpath.LocalGroups).
	ReceiverGroups func(groups []ReceiverGroup)

	// Underlay makes the ETR use a multicast-capable underlay
	// (draft-ietf-lisp-group-mapping); nil registers the ETR's RLOC only.
	Underlay *UnderlayConfig

	// RTRs are the (S-EID,G) trees this router replicates for, each at a
	// level (draft-coras-lisp-re).
	RTRs []RTRGroup
	// ProbeInterval is how often an ETR or RTR RLOC-probes its tree parent;
	// 0 means 1 s.
	ProbeInterval time.Duration
	// ProbeMisses is how many unanswered probes in a row mean the parent
	// failed; 0 means 3.
	ProbeMisses int
	// JoinHold is how long an RTR keeps a child that stopped refreshing its
	// join; 0 means 3 × RegisterInterval.
	JoinHold time.Duration

	// SubscribeWindow is how long the Map-Server keeps notifying an ITR
	// that Map-Requested an (S,G) (RFC 8378 §5); 0 means 10 minutes.
	SubscribeWindow time.Duration
	// ControlAddr maps an RLOC to where its control messages go (joins,
	// probes); nil means port 4342 on the RLOC. Tests map RLOCs to
	// loopback sockets.
	ControlAddr func(rloc netip.Addr) netip.AddrPort
}

// SiteInterface is a site interface receivers are learned on.
type SiteInterface struct {
	// Name is the interface name (as in ip link).
	Name string
	// IID is the instance-ID of the site behind the interface.
	IID uint32
}

// UnderlayMethod is how an ETR picks the underlay group (G-RLOC) of an
// overlay group (draft-ietf-lisp-group-mapping).
type UnderlayMethod uint8

// Underlay group selection methods.
const (
	// UnderlayHash: SHA-256 over (S-EID,G-EID), or G-EID, into Range.
	UnderlayHash UnderlayMethod = iota + 1
	// UnderlayLookup: Map-Request the name group-<G-EID> in LookupIID.
	UnderlayLookup
)

// UnderlayJoiner joins and leaves underlay groups on the core interface.
// The socket implementation (NewSocketJoiner) makes the kernel send the
// IGMP/MLD joins; tests record the calls.
type UnderlayJoiner interface {
	// Join joins group (and source, for source-specific underlays).
	Join(group, source netip.Addr) error
	// Leave leaves it.
	Leave(group, source netip.Addr) error
}

// UnderlayConfig is an ETR's multicast-capable underlay.
type UnderlayConfig struct {
	// Method selects the G-RLOC.
	Method UnderlayMethod
	// Range is the underlay group range of the hash method.
	Range netip.Prefix
	// LookupIID is the instance-ID the group-<G-EID> names live in.
	LookupIID uint32
	// MapResolvers answer the lookups; empty means the ITR role's.
	MapResolvers []netip.AddrPort
	// RegisterURLOC also registers the ETR's unicast RLOC, for ITRs off
	// the multicast underlay.
	RegisterURLOC bool
	// SuppressHold is how long, with RegisterURLOC, the U-RLOC keeps
	// leaving (S,G) RLOC-probes unanswered after LISP data last arrived on
	// an underlay group (duplicate suppression); when the G-RLOC traffic
	// stops for longer, the U-RLOC answers again and ITRs resume unicast
	// copies. The fast path renews the news about once a second while the
	// traffic lasts, so it should be well above 1 s; 0 means 3 s.
	SuppressHold time.Duration
	// Joiner joins the chosen groups; nil joins nothing (tests, or a
	// router that joins by other means).
	Joiner UnderlayJoiner
}

// RTRGroup is one (S-EID,G) tree an RTR replicates for.
type RTRGroup struct {
	// IID is the instance-ID.
	IID uint32 `mapstructure:"iid"`
	// Source is the S-EID; an invalid prefix means (*,G).
	Source netip.Prefix `mapstructure:"source"`
	// Group is the G-EID.
	Group netip.Prefix `mapstructure:"group"`
	// Level is the RTR's level, below 128.
	Level uint8 `mapstructure:"level"`
}

// validate checks c, a section of top, naming fields by their keys in
// this package's configuration ("multicast.rtrs"...).
func (c *MulticastConfig) validate(top *Config) error {
	if c.Key.Alg != 0 || c.Key.Secret != "" {
		if err := c.Key.Validate("multicast.key"); err != nil {
			return err
		}
	}
	if err := c.validateMembers(top); err != nil {
		return err
	}
	if err := c.ValidateBounds("multicast"); err != nil {
		return err
	}
	if u := c.Underlay; u != nil {
		if err := u.Validate("multicast.underlay"); err != nil {
			return err
		}
		if u.Method == UnderlayLookup && len(u.MapResolvers) == 0 && (top.ITR == nil || len(top.ITR.MapResolvers) == 0) {
			return errors.New("multicast.underlay.map_resolvers: the lookup method needs a Map-Resolver")
		}
	}
	return ValidateRTRGroups("multicast.rtrs", c.RTRs)
}

// validateMembers checks what receivers and RTRs need: an RLOC, the ETR
// role, Map-Servers to register with.
func (c *MulticastConfig) validateMembers(top *Config) error {
	etr := len(c.SiteInterfaces) > 0 || len(c.Listeners) > 0
	if (etr || len(c.RTRs) > 0) && (!c.RLOC.IsValid() || c.RLOC.Is4In6()) {
		return errors.New("multicast.rloc: required for receivers or RTRs")
	}
	if etr && top.ETR == nil {
		return errors.New("multicast.site_interfaces: needs the ETR role")
	}
	if (etr || len(c.RTRs) > 0) && len(c.MapServers) == 0 && (top.ETR == nil || len(top.ETR.MapServers) == 0) {
		return errors.New("multicast.map_servers: none to register with")
	}
	for i := range c.MapServers {
		if err := c.MapServers[i].Key.Validate(fmt.Sprintf("multicast.map_servers[%d].key", i)); err != nil {
			return err
		}
	}
	return nil
}

// ValidateBounds checks the level, intervals and counts of the multicast
// section configured under path.
func (c *MulticastConfig) ValidateBounds(path string) error {
	if c.Level >= replicate.ETRLevel && c.Level != replicate.ETRLevel {
		return fmt.Errorf("%s.level: %d (ETRs are at 1..128)", path, c.Level)
	}
	if c.MembershipInterval < 0 || c.LastMemberQueryTime < 0 || c.RegisterInterval < 0 || c.RetryInterval < 0 ||
		c.Retries < 0 || c.MaxRLE < 0 || c.ProbeInterval < 0 || c.ProbeMisses < 0 || c.JoinHold < 0 || c.SubscribeWindow < 0 {
		return fmt.Errorf("%s: negative interval or count", path)
	}
	return nil
}

// Validate checks the underlay configured under path: the hold, the
// method and its group range.
func (u *UnderlayConfig) Validate(path string) error {
	if u.SuppressHold < 0 {
		return fmt.Errorf("%s.suppress_hold: negative", path)
	}
	if u.Range.IsValid() && u.Range != u.Range.Masked() {
		return fmt.Errorf("%s.range: %v has host bits set (want %v)", path, u.Range, u.Range.Masked())
	}
	switch u.Method {
	case UnderlayHash:
		if err := replicate.CheckRange(u.Range); err != nil {
			return fmt.Errorf("%s.range: %w", path, err)
		}
	case UnderlayLookup:
	default:
		return fmt.Errorf("%s.method: %d (hash or lookup)", path, u.Method)
	}
	return nil
}

// ValidateRTRGroups checks the trees configured under path: multicast
// groups, RTR levels, no (S,G) twice.
func ValidateRTRGroups(path string, rs []RTRGroup) error {
	seen := map[sgKey]bool{}
	for i, r := range rs {
		f := fmt.Sprintf("%s[%d]", path, i)
		if !r.Group.IsValid() || !r.Group.Addr().IsMulticast() {
			return fmt.Errorf("%s.group: %v is not a multicast prefix", f, r.Group)
		}
		if err := CheckPrefix(f+".group", r.Group); err != nil {
			return err
		}
		if r.Source.IsValid() {
			if err := CheckPrefix(f+".source", r.Source); err != nil {
				return err
			}
		}
		if r.Level >= replicate.ETRLevel {
			return fmt.Errorf("%s.level: %d (RTRs are at 0..127)", f, r.Level)
		}
		k := newSGKey(r.IID, r.Source, r.Group)
		if seen[k] {
			return fmt.Errorf("%s: duplicate (S,G) %v", f, k)
		}
		seen[k] = true
	}
	return nil
}

// WithDefaults returns a copy of c with zero values replaced by defaults,
// some taken from top (the ETR's Map-Servers and register interval, the
// ITR's Map-Resolvers).
func (c MulticastConfig) WithDefaults(top *Config) *MulticastConfig {
	if len(c.MapServers) == 0 && top.ETR != nil {
		c.MapServers = top.ETR.MapServers
	}
	if c.RegisterInterval == 0 {
		c.RegisterInterval = 60 * time.Second
		if top.ETR != nil && top.ETR.RegisterInterval > 0 {
			c.RegisterInterval = top.ETR.RegisterInterval
		}
	}
	if c.RetryInterval == 0 {
		c.RetryInterval = time.Second
	}
	if c.Retries == 0 {
		c.Retries = 3
	}
	if c.MaxRLE == 0 {
		c.MaxRLE = replicate.DefaultMaxEntries
	}
	if c.Level == 0 {
		c.Level = replicate.ETRLevel
	}
	if c.MembershipInterval == 0 {
		c.MembershipInterval = 260 * time.Second
	}
	if c.LastMemberQueryTime == 0 {
		c.LastMemberQueryTime = 2 * time.Second
	}
	if c.QueryInterval == 0 {
		c.QueryInterval = 125 * time.Second
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = time.Second
	}
	if c.ProbeMisses == 0 {
		c.ProbeMisses = 3
	}
	if c.JoinHold == 0 {
		c.JoinHold = 3 * c.RegisterInterval
	}
	if c.SubscribeWindow == 0 {
		c.SubscribeWindow = 10 * time.Minute
	}
	if c.ControlAddr == nil {
		c.ControlAddr = func(a netip.Addr) netip.AddrPort { return netip.AddrPortFrom(a, wire.ControlPort) }
	}
	if u := c.Underlay; u != nil {
		uc := *u
		if len(uc.MapResolvers) == 0 && top.ITR != nil {
			uc.MapResolvers = top.ITR.MapResolvers
		}
		if uc.SuppressHold == 0 {
			uc.SuppressHold = DefaultSuppressHold
		}
		c.Underlay = &uc
	}
	return &c
}

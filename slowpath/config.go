package slowpath

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/wire"
)

// Config configures an Engine: its sockets, the per-source rate limit and
// the roles it plays. A nil role pointer disables the role.
type Config struct {
	// Listen holds the local addresses of the control sockets, at most one
	// IPv4 and one IPv6 address. Empty means 0.0.0.0:4342 and [::]:4342
	// (RFC 9301 §5.1). Port 0 picks an ephemeral port (tests).
	Listen []netip.AddrPort
	// RateLimit bounds what one source, and all together, may send (on
	// unless Off).
	RateLimit RateLimitConfig
	// MapServer enables the Map-Server role (RFC 9301 §8.2).
	MapServer *MapServerConfig
	// MapResolver enables the Map-Resolver role (RFC 9301 §8.1).
	MapResolver *MapResolverConfig
	// ETR enables the ETR role (RFC 9301 §6).
	ETR *ETRConfig
	// ITR enables the ITR role (RFC 9301 §6).
	ITR *ITRConfig
	// Logger receives the engine's structured logs; nil discards them.
	Logger *slog.Logger
	// Events, if set, receives registration events. It is called on the
	// engine goroutine and must not block.
	Events func(Event)
	// Multicast enables signal-free multicast and replication trees
	// (mcast_config.go).
	Multicast *MulticastConfig
	// DDT enables the DDT node role (RFC 8111 §7.1, ddt_config.go).
	DDT *DDTNodeConfig
	// MSX enables the mapping-system interconnect role (msx_config.go,
	// docs/interconnect.md); it needs a Map-Server or a Map-Resolver.
	MSX *MSXConfig
	// CPNP enables the negotiation of interconnect agreements
	// (cpnp_config.go, docs/cpnp.md); it needs a Map-Server or a
	// Map-Resolver, and provisions the msx role (built without agreements
	// when MSX is nil).
	CPNP *CPNPConfig
	// ALT enables the LISP+ALT router role (RFC 6836, alt_config.go).
	ALT *ALTConfig
	// Discovery enables OSPF discovery of Map-Resolvers and Map-Servers
	// (discovery_config.go, docs/discovery.md).
	Discovery *DiscoveryConfig
}

// RateLimitConfig bounds the control messages the router takes in, so
// that neither one source nor many can take the control plane or turn the
// router into a reflector: per message class (Map-Requests and ECMs,
// Map-Registers, the rest) a token bucket per source address (whatever its
// port) and one for all sources together, which the peers known to be
// good skip (configured Map-Servers and Map-Resolvers, and the sources of
// accepted registrations for trustFor). Refused messages are counted per
// type (rate_limited) and per budget.
type RateLimitConfig struct {
	// Off disables rate limiting (on by default).
	Off bool `mapstructure:"off"`
	// MapRequest is the budget of Map-Requests and ECMs (default 100/s per
	// source, burst 200, in total 20000/s on a Map-Server or Map-Resolver
	// and 1000/s otherwise: an xTR answers only for its own EIDs, and must
	// not become a reflector).
	MapRequest RateBudget `mapstructure:"map_request"`
	// MapRegister is the budget of Map-Registers (default 100/s per
	// source, burst 100, 10000/s in total).
	MapRegister RateBudget `mapstructure:"map_register"`
	// Other is the budget of every other message: Map-Replies,
	// Map-Notifies, acks, referrals (default 2000/s per source, burst
	// 2000, 50000/s in total).
	Other RateBudget `mapstructure:"other"`
	// MaxSources bounds the table of buckets; 0 means 65536. Sources beyond
	// the bound share one set of buckets.
	MaxSources int `mapstructure:"max_sources"`
}

// RateBudget is one class's budget, in messages per second.
type RateBudget struct {
	// PerSource is the sustained rate one source address may send; 0
	// takes the class's default, -1 means no per-source limit.
	PerSource float64 `mapstructure:"per_source"`
	// Burst is a source's bucket size; 0 means the class's default.
	Burst int `mapstructure:"burst"`
	// Total is the sustained rate of all sources together but the trusted
	// ones; 0 takes the class's default, -1 means no total limit.
	Total float64 `mapstructure:"total"`
}

// defaultBudgets are the budgets of RateLimitConfig's doc comment.
var defaultBudgets = [numClasses]RateBudget{
	classRequest:  {PerSource: 100, Burst: 200, Total: 20000},
	classRegister: {PerSource: 100, Burst: 100, Total: 10000},
	classOther:    {PerSource: 2000, Burst: 2000, Total: 50000},
}

// xtrRequestTotal is the default total Map-Request budget of a router
// that is no Map-Server or Map-Resolver.
const xtrRequestTotal = 1000

// WithDefaults returns r with every zero budget value set to its default;
// mappingSystem is set for a Map-Server or Map-Resolver.
func (r RateLimitConfig) WithDefaults(mappingSystem bool) RateLimitConfig {
	for i, b := range []*RateBudget{&r.MapRequest, &r.MapRegister, &r.Other} {
		d := defaultBudgets[i]
		if rateClass(i) == classRequest && !mappingSystem {
			d.Total = xtrRequestTotal
		}
		if b.PerSource == 0 {
			b.PerSource = d.PerSource
		}
		if b.Burst == 0 {
			b.Burst = d.Burst
			if b.PerSource != d.PerSource {
				b.Burst = max(1, int(b.PerSource))
			}
		}
		if b.Total == 0 {
			b.Total = d.Total
		}
	}
	if r.MaxSources == 0 {
		r.MaxSources = 65536
	}
	return r
}

// AuthKey is a shared key of a site or of a Map-Server (RFC 9301 §5.6),
// with how messages are signed with it. Whatever these say, received
// messages are accepted in every length and coverage that verifies with the
// key. docs/interop.md gives the settings for OOR, lispers.net and
// RFC-strict peers.
type AuthKey struct {
	// KeyID is the 8-bit Key ID the key is selected by. A peer that sends
	// the old 16-bit Key ID field (OOR's 0x0001 is Key ID 0 + algorithm 1)
	// needs id 0.
	KeyID uint8 `mapstructure:"id"`
	// Alg is the HMAC algorithm: hmac-sha256-128 (2), hmac-sha1-96 (1) or
	// hmac-sha256-128-hkdf (3, RFC 9301's per-message HKDF-SHA256 key).
	Alg wire.AuthAlg `mapstructure:"alg"`
	// Secret is the password; its bytes are the HMAC key.
	Secret string `mapstructure:"secret"`
	// Layout is the Key ID layout: "rfc9301" (8-bit Key ID + 8-bit
	// algorithm, the default) or "legacy" (the old 16-bit Key ID holding the
	// algorithm; requires id 0, and then reads the same on the wire).
	Layout string `mapstructure:"layout"`
	// HMACLength is the length of the HMAC sent: "full" (20 or 32 bytes,
	// which OOR 1.3 and lispers.net require) or "truncated" (RFC 9301's 12
	// or 16). Empty: full for what an ETR sends its Map-Server; a
	// Map-Server answers a register in the length it verified with.
	HMACLength string `mapstructure:"hmac_length"`
	// Coverage is what the HMAC covers: "message" (the whole message,
	// xTR-ID/site-ID included, as OOR and lispers.net compute it) or
	// "records" (RFC 9301 §5.6: through the last record). Empty: message
	// for what an ETR sends; a Map-Server answers a register with the
	// coverage it verified with.
	Coverage string `mapstructure:"coverage"`
}

// Values of AuthKey's Layout, HMACLength and Coverage.
const (
	LayoutRFC9301       = "rfc9301"
	LayoutLegacy        = "legacy"
	HMACLengthFull      = "full"
	HMACLengthTruncated = "truncated"
	CoverageMessage     = "message"
	CoverageRecords     = "records"
)

// Validate checks the key configured under path (e.g. "sites[0].keys[1]").
func (k *AuthKey) Validate(path string) error {
	if k.Alg != wire.AuthHMACSHA1_96 && k.Alg != wire.AuthHMACSHA256128 && k.Alg != wire.AuthHMACSHA256128HKDF {
		return fmt.Errorf("%s.alg: unsupported algorithm %v (use hmac-sha256-128, hmac-sha1-96 or hmac-sha256-128-hkdf)", path, k.Alg)
	}
	if k.Secret == "" {
		return fmt.Errorf("%s.secret: empty", path)
	}
	switch k.Layout {
	case "", LayoutRFC9301:
	case LayoutLegacy:
		if k.KeyID != 0 {
			return fmt.Errorf("%s.id: key ID %d cannot be sent in the legacy 16-bit Key ID layout, whose value is the algorithm (use id 0, or layout rfc9301)", path, k.KeyID)
		}
	default:
		return fmt.Errorf("%s.layout: %q (want rfc9301 or legacy)", path, k.Layout)
	}
	switch k.HMACLength {
	case "", HMACLengthFull, HMACLengthTruncated:
	default:
		return fmt.Errorf("%s.hmac_length: %q (want full or truncated)", path, k.HMACLength)
	}
	switch k.Coverage {
	case "", CoverageMessage, CoverageRecords:
	default:
		return fmt.Errorf("%s.coverage: %q (want message or records)", path, k.Coverage)
	}
	return nil
}

// EIDPrefix is an EID prefix in an instance-ID.
type EIDPrefix struct {
	// IID is the instance-ID (RFC 8060 §4.1).
	IID uint32 `mapstructure:"iid"`
	// Prefix is the IPv4 or IPv6 EID prefix.
	Prefix netip.Prefix `mapstructure:"eid"`
}

// Validate checks the prefix configured under path; errors name its key,
// path + ".eid".
func (p *EIDPrefix) Validate(path string) error {
	if p.IID > wire.MaxInstanceID {
		return fmt.Errorf("%s.iid: %d does not fit in 24 bits (0..%d): the data header carries 24 bits (RFC 9300 §5.3)", path, p.IID, wire.MaxInstanceID)
	}
	return CheckPrefix(path+".eid", p.Prefix)
}

// CheckPrefix checks a configured prefix, named key in errors: valid, no
// host bits, not IPv4-mapped.
func CheckPrefix(key string, p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return fmt.Errorf("%s: invalid prefix", key)
	case p != p.Masked():
		return fmt.Errorf("%s: %v has host bits set (want %v)", key, p, p.Masked())
	case p.Addr().Is4In6():
		return fmt.Errorf("%s: %v is an IPv4-mapped IPv6 prefix", key, p)
	}
	return nil
}

// SitePrefix is an EID prefix a site may register.
type SitePrefix struct {
	EIDPrefix `mapstructure:",squash"`
	// AcceptMoreSpecifics lets the site register prefixes inside Prefix, not
	// only Prefix itself.
	AcceptMoreSpecifics bool `mapstructure:"accept_more_specifics"`
}

// SiteConfig is one site of a Map-Server.
type SiteConfig struct {
	// Name identifies the site in logs and listings.
	Name string `mapstructure:"name"`
	// Keys are the site's keys; a Map-Register is verified with the key of
	// its Key ID.
	Keys []AuthKey `mapstructure:"keys"`
	// Prefixes are the EID prefixes the site may register.
	Prefixes []SitePrefix `mapstructure:"prefixes"`
	// Names are the distinguished-name EIDs (AFI 17) the site may
	// register: exact names, or "*." and a suffix (SiteName); at most
	// MaxSiteNames.
	Names []SiteName `mapstructure:"names"`
	// ProxyReply makes the Map-Server answer for the site even when its
	// registrations do not set the P bit.
	ProxyReply bool `mapstructure:"proxy_reply"`
	// RequireXTRID rejects Map-Registers without xTR-ID and site-ID (I bit,
	// RFC 9301 §5.6).
	RequireXTRID bool `mapstructure:"require_xtr_id"`
}

// Validate checks the site configured under path (e.g. "sites[0]").
func (s *SiteConfig) Validate(path string) error {
	if s.Name == "" {
		return fmt.Errorf("%s.name: empty", path)
	}
	if len(s.Keys) == 0 {
		return fmt.Errorf("%s.keys: no key", path)
	}
	ids := map[uint8]bool{}
	for j := range s.Keys {
		if err := s.Keys[j].Validate(fmt.Sprintf("%s.keys[%d]", path, j)); err != nil {
			return err
		}
		if ids[s.Keys[j].KeyID] {
			return fmt.Errorf("%s.keys[%d].id: duplicate key ID %d", path, j, s.Keys[j].KeyID)
		}
		ids[s.Keys[j].KeyID] = true
	}
	if len(s.Prefixes) == 0 && len(s.Names) == 0 {
		return fmt.Errorf("%s.prefixes: no EID prefix (and no names)", path)
	}
	for j := range s.Prefixes {
		if err := s.Prefixes[j].Validate(fmt.Sprintf("%s.prefixes[%d]", path, j)); err != nil {
			return err
		}
	}
	if len(s.Names) > MaxSiteNames {
		return fmt.Errorf("%s.names: %d names, at most %d", path, len(s.Names), MaxSiteNames)
	}
	for j := range s.Names {
		if err := s.Names[j].Validate(fmt.Sprintf("%s.names[%d]", path, j)); err != nil {
			return err
		}
	}
	return nil
}

// ValidateSites checks the sites configured under path (e.g. "sites"):
// each site, that no two share a name and that no prefix is listed twice.
func ValidateSites(path string, sites []SiteConfig) error {
	names := map[string]bool{}
	owner := map[EIDPrefix]string{}
	nameOwner := map[SiteName]string{}
	for i := range sites {
		s := &sites[i]
		f := fmt.Sprintf("%s[%d]", path, i)
		if err := s.Validate(f); err != nil {
			return err
		}
		if names[s.Name] {
			return fmt.Errorf("%s.name: duplicate site %q", f, s.Name)
		}
		names[s.Name] = true
		for j, p := range s.Prefixes {
			if other, ok := owner[p.EIDPrefix]; ok {
				return fmt.Errorf("%s.prefixes[%d].eid: %v in IID %d already belongs to site %q", f, j, p.Prefix, p.IID, other)
			}
			owner[p.EIDPrefix] = s.Name
		}
		for j, n := range s.Names {
			if other, ok := nameOwner[n]; ok {
				return fmt.Errorf("%s.names[%d].name: %q in IID %d already belongs to site %q", f, j, n.Name, n.IID, other)
			}
			nameOwner[n] = s.Name
		}
	}
	return nil
}

// MapServerConfig configures the Map-Server role.
type MapServerConfig struct {
	// Sites are the sites allowed to register.
	Sites []SiteConfig
	// RegistrationTimeout is how long a registration lives without being
	// refreshed, unless it sets the T bit; 0 means 3 minutes (3 × the
	// default 60 s register interval, RFC 9301 §8.2).
	RegistrationTimeout time.Duration
	// GroupMappings are overlay-group to underlay-group mappings of the
	// mapping-system method (draft-ietf-lisp-group-mapping) that the
	// underlay's provider configures on its Map-Server: a Map-Request for
	// the name "group-<G-EID>" in a mapping's instance-ID is answered with
	// the most specific range covering G-EID, exactly as for a registered
	// group name (a Map-Register whose EID is such a name, allowed by a
	// site prefix covering the range in that instance-ID).
	GroupMappings []replicate.GroupMapping
	// PubSub bounds and authorises the ITRs' subscriptions (RFC 9437).
	PubSub PubSubConfig
	// LispSecKey unwraps the ITR-OTKs of LISP-SEC Map-Requests (RFC 9303)
	// sent with AES-KEY-WRAP-128+HKDF-SHA256: the ITRs' lisp_sec key. The
	// MS-OTK given to an ETR is wrapped with its site's key. Empty: only
	// unwrapped OTKs (NULL-KEY-WRAP-128) are served.
	LispSecKey string
	// Limits bound what the sites register (docs/operating.md).
	Limits RegistrationLimits
	// StateFile, when set, is the bbolt file the registrations are kept
	// in across restarts (package regdb, docs/operating.md); empty keeps
	// them in memory only.
	StateFile string
	// DDT tunes the answers to DDT Map-Resolvers (RFC 8111 §7.2,
	// ddt_ms_config.go).
	DDT DDTMapServerConfig
}

// RegistrationLimits bound a Map-Server's registrations, so that one site
// with a valid key can neither exhaust its memory nor stall it; a record
// beyond a bound is refused and counted (registrations_limited), its log
// line rate-limited per site. Each bound applies to the unicast
// registrations and to the (S,G) ones separately; 0 takes the default.
type RegistrationLimits struct {
	// RegistrantsPerPrefix bounds the registrants (xTR-IDs, or sources
	// when they send none) of one EID prefix (default 32, at most 255).
	RegistrantsPerPrefix int `mapstructure:"registrants_per_prefix"`
	// PrefixesPerSite bounds the prefixes one site registers (default
	// 10000).
	PrefixesPerSite int `mapstructure:"prefixes_per_site"`
	// RecordsPerRegister bounds the records of one Map-Register; a longer
	// one is refused whole (default 255, the most a message can carry).
	RecordsPerRegister int `mapstructure:"records_per_register"`
	// RLOCsPerRecord bounds the locators of one registered record
	// (default 32, at most 255).
	RLOCsPerRecord int `mapstructure:"rlocs_per_record"`
	// Registrations bounds the registrations of the Map-Server, all
	// sites together (default 200000).
	Registrations int `mapstructure:"registrations"`
}

// Validate checks the bounds; path is the YAML key they sit under.
func (l *RegistrationLimits) Validate(path string) error {
	for _, f := range []struct {
		v   int
		key string
		max int
	}{
		{l.RegistrantsPerPrefix, "registrants_per_prefix", 255}, {l.PrefixesPerSite, "prefixes_per_site", 0},
		{l.RecordsPerRegister, "records_per_register", 255}, {l.RLOCsPerRecord, "rlocs_per_record", 255},
		{l.Registrations, "registrations", 0},
	} {
		switch {
		case f.v < 0:
			return fmt.Errorf("%s.%s: negative", path, f.key)
		case f.max > 0 && f.v > f.max:
			return fmt.Errorf("%s.%s: %d is more than %d", path, f.key, f.v, f.max)
		}
	}
	return nil
}

// Defaults of PubSubConfig.
const (
	// DefaultMaxSubscriptionsPerSubscriber bounds one xTR-ID's subscriptions.
	DefaultMaxSubscriptionsPerSubscriber = 1024
	// DefaultMaxSubscriptions bounds a Map-Server's subscriptions.
	DefaultMaxSubscriptions = 65536
)

// PubSubConfig configures the Map-Server's side of publish/subscribe
// (RFC 9437): which subscriptions it accepts, how many it keeps, and how
// its Map-Notifies to subscribers are retransmitted. A subscription is
// accepted from an xTR-ID that is registered with this Map-Server (its
// site's first key signs the Map-Notifies) or that is listed in
// Subscribers (with its own key); others are refused and counted
// (RFC 9437 §7: only authenticated subscribers are notified).
type PubSubConfig struct {
	// Subscribers are xTRs allowed to subscribe without registering here.
	Subscribers []SubscriberConfig
	// MaxPerSubscriber bounds the subscriptions of one xTR-ID; 0 means
	// DefaultMaxSubscriptionsPerSubscriber.
	MaxPerSubscriber int
	// MaxTotal bounds all subscriptions; 0 means DefaultMaxSubscriptions.
	MaxTotal int
	// NotifyInterval is the first wait for a Map-Notify-Ack before the
	// Map-Notify is resent, doubled each time; 0 means 1 s.
	NotifyInterval time.Duration
	// NotifyTries bounds the sends of one Map-Notify; when the last goes
	// unacknowledged the subscription is removed; 0 means 4.
	NotifyTries int
}

// SubscriberConfig is an xTR allowed to subscribe (RFC 9437 §7) by its
// xTR-ID, with the key its Map-Notifies are signed with.
type SubscriberConfig struct {
	// XTRID is the subscriber's xTR-ID (RFC 9437 §4).
	XTRID wire.XTRID
	// Key signs the Map-Notifies to it and checks its Map-Notify-Acks.
	Key AuthKey
}

// validate checks the pub/sub configuration under path.
func (p *PubSubConfig) validate(path string) error {
	if p.MaxPerSubscriber < 0 || p.MaxTotal < 0 || p.NotifyInterval < 0 || p.NotifyTries < 0 {
		return fmt.Errorf("%s: negative bound, interval or count", path)
	}
	seen := map[wire.XTRID]bool{}
	for i := range p.Subscribers {
		s := &p.Subscribers[i]
		f := fmt.Sprintf("%s.subscribers[%d]", path, i)
		if s.XTRID == (wire.XTRID{}) {
			return fmt.Errorf("%s.xtr_id: missing", f)
		}
		if seen[s.XTRID] {
			return fmt.Errorf("%s.xtr_id: %s listed twice", f, s.XTRID)
		}
		seen[s.XTRID] = true
		if err := s.Key.Validate(f + ".key"); err != nil {
			return err
		}
	}
	return nil
}

// WithDefaults returns p with zero bounds and retransmission settings
// replaced by their defaults.
func (p PubSubConfig) WithDefaults() PubSubConfig {
	if p.MaxPerSubscriber == 0 {
		p.MaxPerSubscriber = DefaultMaxSubscriptionsPerSubscriber
	}
	if p.MaxTotal == 0 {
		p.MaxTotal = DefaultMaxSubscriptions
	}
	if p.NotifyInterval == 0 {
		p.NotifyInterval = time.Second
	}
	if p.NotifyTries == 0 {
		p.NotifyTries = 4
	}
	return p
}

// RemoteMapServer is a Map-Server a Map-Resolver forwards requests to.
type RemoteMapServer struct {
	// Addr is the Map-Server's control address.
	Addr netip.AddrPort `mapstructure:"addr"`
	// Prefixes are the EID prefixes the Map-Server is responsible for.
	Prefixes []EIDPrefix `mapstructure:"prefixes"`
}

// Validate checks the Map-Server configured under path.
func (r *RemoteMapServer) Validate(path string) error {
	if !r.Addr.IsValid() {
		return fmt.Errorf("%s.addr: invalid address", path)
	}
	if len(r.Prefixes) == 0 {
		return fmt.Errorf("%s.prefixes: no EID prefix", path)
	}
	return validatePrefixes(path+".prefixes", r.Prefixes)
}

// validatePrefixes checks the prefixes configured under path.
func validatePrefixes(path string, ps []EIDPrefix) error {
	for i := range ps {
		if err := ps[i].Validate(fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	return nil
}

// MapResolverConfig configures the Map-Resolver role.
type MapResolverConfig struct {
	// MapServers are remote Map-Servers; requests for EIDs inside their
	// prefixes that the local Map-Server (if any) does not hold are
	// forwarded to them in an ECM (RFC 9301 §5.8, M bit).
	MapServers []RemoteMapServer
	// Aggregates are EID prefixes known to be LISP EID space. An
	// unregistered EID inside one gets a negative Map-Reply with action
	// send-map-request instead of native-forward.
	Aggregates []EIDPrefix
	// NegativeTTL is the TTL of native-forward negative Map-Replies;
	// 0 means 15 minutes (RFC 9301 §8.1).
	NegativeTTL time.Duration
	// AggregateTTL is the TTL of send-map-request negative Map-Replies;
	// 0 means 1 minute.
	AggregateTTL time.Duration
	// LispSecKey unwraps the ITR-OTKs of LISP-SEC Map-Requests (RFC 9303)
	// the Map-Resolver answers negatively itself; empty: the local
	// Map-Server's key.
	LispSecKey string
	// DDTRoots are the DDT root nodes (RFC 8111 §7.3) the referral cache
	// is seeded with; empty: no DDT resolution.
	DDTRoots []netip.AddrPort
	// DDTPort is the control port of the DDT nodes and Map-Servers a
	// referral names (0: 4342); tests run them all on one other port.
	DDTPort uint16
	// DDTCacheSize bounds the referral cache (0: DDT.CacheSize, else
	// DefaultReferralCacheSize).
	DDTCacheSize int
	// DDT tunes the DDT resolution (ddt_resolver_config.go).
	DDT DDTResolverConfig
	// DDTKeys are the public keys referral signatures are verified with
	// (RFC 8111 §6.4.1, ddt_resolver_config.go).
	DDTKeys []DDTPublicKey
}

// DefaultReferralCacheSize is the referral cache's bound when
// MapResolverConfig.DDTCacheSize is 0.
const DefaultReferralCacheSize = 10000

// MapServerPeer is a Map-Server an ETR registers with.
type MapServerPeer struct {
	// Addr is the Map-Server's control address.
	Addr netip.AddrPort `mapstructure:"addr"`
	// Key signs the Map-Registers.
	Key AuthKey `mapstructure:"key"`
}

// Validate checks the Map-Server configured under path.
func (p *MapServerPeer) Validate(path string) error {
	if !p.Addr.IsValid() {
		return fmt.Errorf("%s.addr: invalid address", path)
	}
	return p.Key.Validate(path + ".key")
}

// RLOCConfig is one locator of a database mapping.
type RLOCConfig struct {
	// Addr is the RLOC.
	Addr netip.Addr `mapstructure:"addr"`
	// Priority and Weight are the unicast priority and weight (RFC 9301 §5.4).
	Priority uint8 `mapstructure:"priority"`
	Weight   uint8 `mapstructure:"weight"`
	// MPriority and MWeight are the multicast priority and weight; zero
	// values mean 255 and 0 (multicast unused).
	MPriority uint8 `mapstructure:"-"`
	MWeight   uint8 `mapstructure:"-"`
}

// Mapping is a database mapping of an ETR.
type Mapping struct {
	EIDPrefix `mapstructure:",squash"`
	// RLOCs are the locators, at least one.
	RLOCs []RLOCConfig `mapstructure:"rlocs"`
	// TTL is the record TTL sent in Map-Replies and Map-Registers; 0 means
	// 24 hours. It is rounded down to whole minutes (RFC 9301 §5.4).
	TTL time.Duration `mapstructure:"ttl"`
}

// Validate checks the mapping configured under path (e.g. "database[0]").
func (m *Mapping) Validate(path string) error {
	if err := m.EIDPrefix.Validate(path); err != nil {
		return err
	}
	if len(m.RLOCs) == 0 || len(m.RLOCs) > 255 {
		return fmt.Errorf("%s.rlocs: %d locators (1..255)", path, len(m.RLOCs))
	}
	for i, r := range m.RLOCs {
		if !r.Addr.IsValid() || r.Addr.Is4In6() {
			return fmt.Errorf("%s.rlocs[%d].addr: invalid address", path, i)
		}
	}
	if m.TTL < 0 {
		return fmt.Errorf("%s.ttl: negative", path)
	}
	return nil
}

// ETRConfig configures the ETR role.
type ETRConfig struct {
	// MapServers are registered with, each with its key.
	MapServers []MapServerPeer
	// Mappings are the database mappings registered and answered for.
	Mappings []Mapping
	// RegisterInterval is the period of Map-Registers; 0 means 60 s
	// (RFC 9301 §8.2).
	RegisterInterval time.Duration
	// RetryInterval is the first wait for a Map-Notify before a register is
	// resent (doubling each time); 0 means 1 s.
	RetryInterval time.Duration
	// Retries is how many times a register without Map-Notify is resent
	// before the next period; 0 means 3.
	Retries int
	// NoMapNotify clears the M bit: no Map-Notify is asked for or expected.
	NoMapNotify bool
	// ProxyReply sets the P bit: the Map-Server answers for the ETR.
	ProxyReply bool
	// Merge sets the merge bit (RFC 9301 §5.6, RFC 8378).
	Merge bool
	// XTRID and SiteID are sent in every Map-Register (I bit) when XTRID is
	// not all zeros (RFC 9301 §5.6).
	XTRID wire.XTRID
	// SiteID identifies the site (RFC 9301 §5.6).
	SiteID uint64
	// DeregisterOnStop sends Map-Registers with TTL 0 when the engine closes.
	DeregisterOnStop bool
	// SMRWindow is how long a requesting ITR is remembered for SMRs; 0
	// means 10 minutes.
	SMRWindow time.Duration
	// LocalRLOCs are the router's own RLOCs: the ETR sets the L bit on
	// these locators in its Map-Replies (RFC 9301 §5.4).
	LocalRLOCs []netip.Addr
}

// ITRConfig configures the ITR role.
type ITRConfig struct {
	// MapResolvers are tried in order; the next is used when one does not
	// answer.
	MapResolvers []netip.AddrPort
	// Discover allows MapResolvers to be empty: the Map-Resolvers come
	// from discovery (DiscoveryConfig.MapResolvers, ITR.SetDiscovered).
	Discover bool
	// ReplySources are the addresses besides the Map-Resolvers that a
	// Map-Reply may come from without being one of its own locators:
	// Map-Servers that proxy-reply (the router's own Map-Servers and
	// itr.reply_sources). Any other reply is refused and counted.
	ReplySources []netip.Addr
	// ITRRLOCs are the addresses put in the ITR-RLOC field of Map-Requests
	// (RFC 9301 §5.2); replies come back to them. At least one.
	ITRRLOCs []netip.Addr
	// RetransmitInterval is the first retransmission timeout, doubled on
	// each try; 0 means 1 s.
	RetransmitInterval time.Duration
	// MaxTries bounds the Map-Requests sent for one miss; 0 means 5.
	MaxTries int
	// MinRequestInterval is the rate limit of resolutions per EID: a miss
	// for an EID resolved or resolving less than this ago is ignored; 0
	// means 1 s.
	MinRequestInterval time.Duration
	// RefreshBefore is how long before a mapping's TTL expiry an active
	// mapping is refreshed; 0 means 1 minute (capped at half the TTL).
	RefreshBefore time.Duration
	// ProbeInterval is the RLOC-probing period; 0 disables probing.
	ProbeInterval time.Duration
	// ProbeMisses is how many probes in a row may go unanswered before an
	// RLOC is marked down; 0 means 3.
	ProbeMisses int
	// ProbePort is the UDP port RLOC-probes are sent to; 0 means 4342
	// (RFC 9301 §7.1). Tests set it to reach ETRs on ephemeral ports.
	ProbePort uint16
	// Subscribe, when set, subscribes the ITR to the mappings it resolves
	// (RFC 9437); nil resolves and refreshes them by TTL only.
	Subscribe *SubscribeConfig
	// LispSec, when set, asks for LISP-SEC (RFC 9303) on the ITR's
	// Map-Requests (docs/lisp-sec.md); nil asks for none.
	LispSec *LispSecConfig
	// Solicit, when set, exchanges map-caches with peer ITRs
	// (solicit_config.go, docs/solicit.md); nil does not.
	Solicit *SolicitConfig
}

// LispSecMode is how an ITR uses LISP-SEC (RFC 9303).
type LispSecMode uint8

// LISP-SEC modes of an ITR.
const (
	// LispSecOff sends Map-Requests without LISP-SEC.
	LispSecOff LispSecMode = iota
	// LispSecOn asks for LISP-SEC and checks every reply that carries it;
	// a reply without it is accepted (a mapping system that does not
	// support LISP-SEC) and counted.
	LispSecOn
	// LispSecRequired asks for LISP-SEC and refuses every reply without
	// valid LISP-SEC data (RFC 9303 §6.6).
	LispSecRequired
)

// String names the mode as configured.
func (m LispSecMode) String() string {
	switch m {
	case LispSecOn:
		return "on"
	case LispSecRequired:
		return "required"
	}
	return "off"
}

// LispSecConfig is the ITR's side of LISP-SEC (RFC 9303).
type LispSecConfig struct {
	// Mode is on or required.
	Mode LispSecMode
	// Key wraps each Map-Request's ITR-OTK (AES-KEY-WRAP-128+HKDF-SHA256)
	// for the Map-Resolvers and Map-Servers, which know it as their
	// lisp_sec key; empty sends the OTK unwrapped (NULL-KEY-WRAP-128),
	// for a path protected otherwise.
	Key string
	// IIDs are the instance-IDs whose lookups use LISP-SEC; empty means
	// every instance-ID.
	IIDs []uint32
	// MapResolvers, when not empty, limits LISP-SEC to lookups sent to
	// these Map-Resolvers: with others first in map_resolvers the ITR
	// asks them without it.
	MapResolvers []netip.AddrPort
}

// validate checks the LISP-SEC section under path.
func (l *LispSecConfig) validate(path string, mrs []netip.AddrPort) error {
	if l.Mode != LispSecOn && l.Mode != LispSecRequired {
		return fmt.Errorf("%s.mode: %v (on or required)", path, l.Mode)
	}
	for i, a := range l.MapResolvers {
		if !slices.Contains(mrs, a) {
			return fmt.Errorf("%s.map_resolvers[%d]: %v is not one of map_resolvers", path, i, a)
		}
	}
	for i, iid := range l.IIDs {
		if iid > 0xffffff {
			return fmt.Errorf("%s.iids[%d]: %d is beyond 24 bits", path, i, iid)
		}
	}
	return nil
}

// DefaultResubscribe is how often, at most, a subscribed ITR renews its
// subscriptions by default.
const DefaultResubscribe = 5 * time.Minute

// SubscribeConfig is the ITR's side of publish/subscribe (RFC 9437): its
// Map-Requests for the mappings of the chosen instance-IDs set the N bit on
// the record and the I bit with the xTR-ID and site-ID; the Map-Server
// then sends a Map-Notify whenever the mapping changes, which the ITR
// verifies with Keys, installs and acknowledges.
type SubscribeConfig struct {
	// IIDs are the instance-IDs whose mappings are subscribed to; empty
	// means every instance-ID.
	IIDs []uint32
	// Keys verify the Map-Servers' Map-Notifies (by Key ID and algorithm)
	// and sign the Map-Notify-Acks with the key that verified. At least
	// one.
	Keys []AuthKey
	// XTRID and SiteID identify the subscriber (RFC 9437 §4); XTRID must
	// not be all zeros.
	XTRID wire.XTRID
	// SiteID is sent with the xTR-ID.
	SiteID uint64
	// Resubscribe is the longest time between two subscribing
	// Map-Requests for a mapping in use: they renew the subscription at a
	// Map-Server that restarted or dropped it. 0 means DefaultResubscribe;
	// the mapping's TTL refresh comes first when sooner.
	Resubscribe time.Duration
}

// Covers reports whether the ITR subscribes to mappings of iid.
func (s *SubscribeConfig) Covers(iid uint32) bool {
	if s == nil {
		return false
	}
	if len(s.IIDs) == 0 {
		return true
	}
	for _, i := range s.IIDs {
		if i == iid {
			return true
		}
	}
	return false
}

// validate checks the subscription configured under path.
func (s *SubscribeConfig) validate(path string) error {
	if s.XTRID == (wire.XTRID{}) {
		return fmt.Errorf("%s: no xTR-ID (give the router a name)", path)
	}
	if len(s.Keys) == 0 {
		return fmt.Errorf("%s.keys: no key to verify Map-Notifies with", path)
	}
	for i := range s.Keys {
		if err := s.Keys[i].Validate(fmt.Sprintf("%s.keys[%d]", path, i)); err != nil {
			return err
		}
	}
	if s.Resubscribe < 0 {
		return fmt.Errorf("%s.resubscribe: negative", path)
	}
	return nil
}

// validate checks c and returns the first problem, naming the field by
// its key in this package's configuration (role sections by their
// field names: "map_server", "etr"...).
func (c *Config) validate() error {
	if err := ValidateListen("listen", c.Listen); err != nil {
		return err
	}
	if err := c.RateLimit.Validate("rate_limit"); err != nil {
		return err
	}
	if c.MapServer == nil && c.MapResolver == nil && c.ETR == nil && c.ITR == nil && c.Multicast == nil && c.DDT == nil && c.ALT == nil {
		return errors.New("roles: no role configured")
	}
	if ms := c.MapServer; ms != nil {
		if err := ms.validate("map_server"); err != nil {
			return err
		}
	}
	if mr := c.MapResolver; mr != nil {
		if err := mr.validate("map_resolver"); err != nil {
			return err
		}
	}
	if e := c.ETR; e != nil {
		if err := e.validate("etr"); err != nil {
			return err
		}
	}
	if c.Multicast != nil {
		if err := c.Multicast.validate(c); err != nil {
			return err
		}
	}
	if it := c.ITR; it != nil {
		if err := it.validate("itr"); err != nil {
			return err
		}
	}
	if d := c.DDT; d != nil {
		if err := d.Validate("ddt"); err != nil {
			return err
		}
	}
	if a := c.ALT; a != nil {
		if err := a.Validate("alt"); err != nil {
			return err
		}
	}
	if d := c.Discovery; d != nil {
		if err := d.Validate("discovery"); err != nil {
			return err
		}
	}
	if x := c.MSX; x != nil {
		if c.MapServer == nil && c.MapResolver == nil {
			return errors.New("msx: the interconnect needs a Map-Server or a Map-Resolver")
		}
		if err := x.Validate("msx"); err != nil {
			return err
		}
	}
	if x := c.CPNP; x != nil {
		if c.MapServer == nil && c.MapResolver == nil {
			return errors.New("cpnp: the negotiation needs a Map-Server or a Map-Resolver")
		}
		if err := x.Validate("cpnp"); err != nil {
			return err
		}
	}
	return nil
}

// ValidateListen checks the control socket addresses configured under
// path: valid, at most one IPv4 and one IPv6.
func ValidateListen(path string, listen []netip.AddrPort) error {
	var have4, have6 bool
	for i, a := range listen {
		f := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case !a.IsValid():
			return fmt.Errorf("%s: invalid address", f)
		case a.Addr().Is4() || a.Addr().Is4In6():
			if have4 {
				return fmt.Errorf("%s: a second IPv4 address", f)
			}
			have4 = true
		default:
			if have6 {
				return fmt.Errorf("%s: a second IPv6 address", f)
			}
			have6 = true
		}
	}
	return nil
}

// Validate checks the rate limit configured under path.
func (r RateLimitConfig) Validate(path string) error {
	if r.MaxSources < 0 {
		return fmt.Errorf("%s.max_sources: negative", path)
	}
	for _, b := range []struct {
		key string
		b   RateBudget
	}{{"map_request", r.MapRequest}, {"map_register", r.MapRegister}, {"other", r.Other}} {
		switch {
		case b.b.PerSource < 0 && b.b.PerSource != -1:
			return fmt.Errorf("%s.%s.per_source: %v (a rate, 0 for the default or -1 for none)", path, b.key, b.b.PerSource)
		case b.b.Total < 0 && b.b.Total != -1:
			return fmt.Errorf("%s.%s.total: %v (a rate, 0 for the default or -1 for none)", path, b.key, b.b.Total)
		case b.b.Burst < 0:
			return fmt.Errorf("%s.%s.burst: negative", path, b.key)
		}
	}
	return nil
}

// validate checks the Map-Server role configured under path.
func (ms *MapServerConfig) validate(path string) error {
	if ms.RegistrationTimeout < 0 {
		return fmt.Errorf("%s.registration_timeout: negative", path)
	}
	if err := ms.DDT.Validate(path + ".ddt"); err != nil {
		return err
	}
	if err := ms.PubSub.validate(path + ".pubsub"); err != nil {
		return err
	}
	return ValidateSites(path+".sites", ms.Sites)
}

// validate checks the Map-Resolver role configured under path.
func (mr *MapResolverConfig) validate(path string) error {
	if mr.NegativeTTL < 0 || mr.AggregateTTL < 0 {
		return fmt.Errorf("%s.negative_ttl: negative", path)
	}
	for i := range mr.MapServers {
		if err := mr.MapServers[i].Validate(fmt.Sprintf("%s.map_servers[%d]", path, i)); err != nil {
			return err
		}
	}
	if err := mr.DDT.Validate(path + ".ddt"); err != nil {
		return err
	}
	return validatePrefixes(path+".aggregates", mr.Aggregates)
}

// validate checks the ETR role configured under path.
func (e *ETRConfig) validate(path string) error {
	if len(e.Mappings) == 0 {
		return fmt.Errorf("%s.mappings: no database mapping", path)
	}
	for i := range e.Mappings {
		if err := e.Mappings[i].Validate(fmt.Sprintf("%s.mappings[%d]", path, i)); err != nil {
			return err
		}
	}
	for i := range e.MapServers {
		if err := e.MapServers[i].Validate(fmt.Sprintf("%s.map_servers[%d]", path, i)); err != nil {
			return err
		}
	}
	if e.RegisterInterval < 0 || e.RetryInterval < 0 || e.Retries < 0 || e.SMRWindow < 0 {
		return fmt.Errorf("%s.register_interval: negative interval or count", path)
	}
	return nil
}

// validate checks the ITR role configured under path.
func (it *ITRConfig) validate(path string) error {
	if len(it.MapResolvers) == 0 && !it.Discover {
		return fmt.Errorf("%s.map_resolvers: no Map-Resolver", path)
	}
	for i, a := range it.MapResolvers {
		if !a.IsValid() {
			return fmt.Errorf("%s.map_resolvers[%d]: invalid address", path, i)
		}
	}
	if len(it.ITRRLOCs) == 0 || len(it.ITRRLOCs) > 32 {
		return fmt.Errorf("%s.itr_rlocs: %d addresses (1..32)", path, len(it.ITRRLOCs))
	}
	for i, a := range it.ITRRLOCs {
		if !a.IsValid() {
			return fmt.Errorf("%s.itr_rlocs[%d]: invalid address", path, i)
		}
	}
	if it.RetransmitInterval < 0 || it.MaxTries < 0 || it.MinRequestInterval < 0 ||
		it.RefreshBefore < 0 || it.ProbeInterval < 0 || it.ProbeMisses < 0 {
		return fmt.Errorf("%s: negative interval or count", path)
	}
	if it.LispSec != nil {
		if err := it.LispSec.validate(path+".lisp_sec", it.MapResolvers); err != nil {
			return err
		}
	}
	if it.Solicit != nil {
		if err := it.Solicit.Validate(path + ".solicit"); err != nil {
			return err
		}
	}
	if it.Subscribe != nil {
		return it.Subscribe.validate(path + ".subscribe")
	}
	return nil
}

// WithDefaults returns a copy of c with zero values replaced by defaults,
// as control.New applies them.
func (c Config) WithDefaults() Config {
	if len(c.Listen) == 0 {
		c.Listen = []netip.AddrPort{
			netip.AddrPortFrom(netip.IPv4Unspecified(), wire.ControlPort),
			netip.AddrPortFrom(netip.IPv6Unspecified(), wire.ControlPort),
		}
	}
	c.RateLimit = c.RateLimit.WithDefaults(c.MapServer != nil || c.MapResolver != nil || c.DDT != nil)
	if c.MapServer != nil {
		ms := *c.MapServer
		if ms.RegistrationTimeout == 0 {
			ms.RegistrationTimeout = 3 * time.Minute
		}
		ms.PubSub = ms.PubSub.WithDefaults()
		ms.DDT = ms.DDT.WithDefaults()
		c.MapServer = &ms
	}
	if c.MapResolver != nil {
		mr := *c.MapResolver
		if mr.NegativeTTL == 0 {
			mr.NegativeTTL = 15 * time.Minute
		}
		if mr.AggregateTTL == 0 {
			mr.AggregateTTL = time.Minute
		}
		c.MapResolver = &mr
	}
	if c.ETR != nil {
		e := *c.ETR
		if e.RegisterInterval == 0 {
			e.RegisterInterval = 60 * time.Second
		}
		if e.RetryInterval == 0 {
			e.RetryInterval = time.Second
		}
		if e.Retries == 0 {
			e.Retries = 3
		}
		if e.SMRWindow == 0 {
			e.SMRWindow = 10 * time.Minute
		}
		c.ETR = &e
	}
	if c.ITR != nil {
		it := *c.ITR
		if it.RetransmitInterval == 0 {
			it.RetransmitInterval = time.Second
		}
		if it.MaxTries == 0 {
			it.MaxTries = 5
		}
		if it.MinRequestInterval == 0 {
			it.MinRequestInterval = time.Second
		}
		if it.RefreshBefore == 0 {
			it.RefreshBefore = time.Minute
		}
		if it.ProbeMisses == 0 {
			it.ProbeMisses = 3
		}
		if it.ProbePort == 0 {
			it.ProbePort = wire.ControlPort
		}
		if it.Subscribe != nil {
			sub := *it.Subscribe
			if sub.Resubscribe == 0 {
				sub.Resubscribe = DefaultResubscribe
			}
			it.Subscribe = &sub
		}
		if it.Solicit != nil {
			sol := it.Solicit.WithDefaults()
			it.Solicit = &sol
		}
		c.ITR = &it
	}
	if c.DDT != nil {
		d := c.DDT.WithDefaults()
		c.DDT = &d
	}
	if c.ALT != nil {
		a := c.ALT.WithDefaults()
		c.ALT = &a
	}
	if c.MSX != nil {
		x := c.MSX.WithDefaults()
		c.MSX = &x
	}
	if c.CPNP != nil {
		x := c.CPNP.WithDefaults()
		c.CPNP = &x
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Multicast != nil {
		c.Multicast = c.Multicast.WithDefaults(&c)
	}
	return c
}

// Validate checks c as New would and returns the first problem, naming the
// field, so that a daemon can check a configuration before it starts.
func (c *Config) Validate() error { return c.validate() }

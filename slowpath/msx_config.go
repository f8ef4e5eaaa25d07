package slowpath

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// MSXConfig configures the mapping-system interconnect role (LISP-MSX,
// shared/REFERENCES.md item 3; docs/interconnect.md): the agreements this
// mapping system has with its peers. Its YAML section is msx. The role runs
// beside a Map-Server (it serves that Map-Server's registrations to peers)
// and/or a Map-Resolver (it answers, or invokes the peer, for the peer's
// EIDs).
type MSXConfig struct {
	// Agreements are the interconnect agreements, one per peer mapping
	// system (names unique).
	Agreements []MSXAgreement `mapstructure:"agreements"`
	// PageBytes bounds a Map-Bulk-Reply page (the records it carries stop
	// before it would exceed this); 0 means 1400, one unfragmented
	// datagram on an Ethernet path. At most 65000.
	PageBytes int `mapstructure:"page_bytes"`
	// CookieLifetime is how long a continuation cookie stays valid after it
	// is issued; 0 means 30 s.
	CookieLifetime time.Duration `mapstructure:"cookie_lifetime"`
	// RetransmitInterval is the first wait before a bulk page request, a
	// Map-Subscribe or a notification is sent again (it doubles); 0 means
	// 1 s.
	RetransmitInterval time.Duration `mapstructure:"retransmit_interval"`
	// MaxTries bounds the sends of one of them; 0 means 5.
	MaxTries int `mapstructure:"max_tries"`
}

// MSXAgreement is one interconnect agreement with a peer mapping system:
// who the peer is, the key both sides share, what each side may ask of the
// other, over which EID space, and how fast.
type MSXAgreement struct {
	// Name identifies the agreement (in listings, logs and counters).
	Name string `mapstructure:"name"`
	// Peers are the peer's Map-Server/Map-Resolver control addresses. The
	// first one is asked (bulk, subscribe, invocation); the others are
	// tried when it does not answer. Requests from any of them are
	// accepted under this agreement.
	Peers []netip.AddrPort `mapstructure:"peers"`
	// Key is the shared key: it signs and verifies every Map-Subscribe,
	// Map-Subscribe-Ack, Map-Bulk-Request, Map-Bulk-Reply and Map-Notify
	// of the agreement (RFC 9301 §5.6 field, same conventions as a site
	// key).
	Key AuthKey `mapstructure:"key"`
	// Mode is how this side resolves the peer's EIDs: "copy" (hold a copy
	// of the peer's table, by bulk and subscription, and answer from it),
	// "invoke" (forward each Map-Request for the peer's EIDs to the peer's
	// Map-Server) or "none" (this side only serves the peer). Default
	// copy.
	Mode string `mapstructure:"mode"`
	// Allow lists the primitives the peer may use with this side:
	// "subscribe", "bulk", "invocation". Default: all three.
	Allow []string `mapstructure:"allow"`
	// Filters are the EID space of this side the peer may retrieve and
	// subscribe to (a wider scope is clipped to them and counted). Empty:
	// only what InstanceIDs allows; both empty: everything.
	Filters []EIDPrefix `mapstructure:"filters"`
	// InstanceIDs are instance-IDs this side shares whole with the peer.
	InstanceIDs []uint32 `mapstructure:"instance_ids"`
	// Names are the distinguished-name EIDs (AFI 17) of this side the
	// peer may retrieve and subscribe to: exact names or "*." suffixes
	// (SiteName), filtering as Filters does. A whole instance-ID shares its
	// names too.
	Names []SiteName `mapstructure:"names"`
	// PeerPrefixes are the peer's EID space this side asks for (copy) or
	// invokes the peer for (invoke). Empty in copy mode: everything the
	// peer shares (bulk with the A bit).
	PeerPrefixes []EIDPrefix `mapstructure:"peer_prefixes"`
	// PeerNames are the peer's distinguished names this side asks for
	// (copy mode), exact or "*." suffixes; with PeerPrefixes they make the
	// bulk and subscription scope. Both empty: everything.
	PeerNames []SiteName `mapstructure:"peer_names"`
	// Rate is how many bulk and subscribe requests per second the peer
	// may send (a token bucket of Burst); 0 means 2000/s.
	Rate float64 `mapstructure:"rate"`
	// Burst is the bucket's depth; 0 means max(Rate, 100).
	Burst int `mapstructure:"burst"`
	// MaxSubscriptions bounds the peer's subscriptions held here; 0 means 16.
	MaxSubscriptions int `mapstructure:"max_subscriptions"`
	// MaxPending bounds the notifications to the peer awaiting their Ack;
	// beyond it the subscription is flagged for a resync (the peer is told
	// at its next renewal). 0 means 4096.
	MaxPending int `mapstructure:"max_pending"`
	// Lifetime is the subscription lifetime asked for (renewed at a third
	// of it); 0 means 60 s.
	Lifetime time.Duration `mapstructure:"lifetime"`
	// PeerTimeout is how long the copy outlives the peer's silence (no
	// authenticated message from it); 0 means 3 × Lifetime.
	PeerTimeout time.Duration `mapstructure:"peer_timeout"`
}

// Agreement modes (MSXAgreement.Mode).
const (
	MSXModeCopy   = "copy"
	MSXModeInvoke = "invoke"
	MSXModeNone   = "none"
)

// Interconnect primitives (MSXAgreement.Allow).
const (
	MSXSubscribe  = "subscribe"
	MSXBulk       = "bulk"
	MSXInvocation = "invocation"
)

// Allows reports whether the agreement lets the peer use primitive p.
func (a *MSXAgreement) Allows(p string) bool {
	if len(a.Allow) == 0 {
		return true
	}
	for _, x := range a.Allow {
		if x == p {
			return true
		}
	}
	return false
}

// WithDefaults returns c with its zero values replaced by the defaults.
func (c MSXConfig) WithDefaults() MSXConfig {
	if c.PageBytes == 0 {
		c.PageBytes = 1400
	}
	if c.CookieLifetime == 0 {
		c.CookieLifetime = 30 * time.Second
	}
	if c.RetransmitInterval == 0 {
		c.RetransmitInterval = time.Second
	}
	if c.MaxTries == 0 {
		c.MaxTries = 5
	}
	ags := make([]MSXAgreement, len(c.Agreements))
	for i, a := range c.Agreements {
		if a.Mode == "" {
			a.Mode = MSXModeCopy
		}
		if a.Rate == 0 {
			a.Rate = 2000
		}
		if a.Burst == 0 {
			a.Burst = max(int(a.Rate), 100)
		}
		if a.MaxSubscriptions == 0 {
			a.MaxSubscriptions = 16
		}
		if a.MaxPending == 0 {
			a.MaxPending = 4096
		}
		if a.Lifetime == 0 {
			a.Lifetime = time.Minute
		}
		if a.PeerTimeout == 0 {
			a.PeerTimeout = 3 * a.Lifetime
		}
		ags[i] = a
	}
	c.Agreements = ags
	return c
}

// Validate checks the interconnect configured under path; errors name the
// key.
func (c *MSXConfig) Validate(path string) error {
	if len(c.Agreements) == 0 {
		return fmt.Errorf("%s.agreements: no agreement", path)
	}
	if c.PageBytes < 0 || c.PageBytes > 65000 || (c.PageBytes > 0 && c.PageBytes < 200) {
		return fmt.Errorf("%s.page_bytes: %d (want 200..65000, 0 for 1400)", path, c.PageBytes)
	}
	for _, d := range []struct {
		k string
		v time.Duration
	}{{"cookie_lifetime", c.CookieLifetime}, {"retransmit_interval", c.RetransmitInterval}} {
		if d.v < 0 {
			return fmt.Errorf("%s.%s: negative", path, d.k)
		}
	}
	if c.MaxTries < 0 {
		return fmt.Errorf("%s.max_tries: negative", path)
	}
	peers := map[netip.AddrPort]int{}
	for i := range c.Agreements {
		a := &c.Agreements[i]
		f := fmt.Sprintf("%s.agreements[%d]", path, i)
		if a.Name == "" {
			return fmt.Errorf("%s.name: empty", f)
		}
		for j := range i {
			if c.Agreements[j].Name == a.Name {
				return fmt.Errorf("%s.name: %q used twice (agreements[%d])", f, a.Name, j)
			}
		}
		if len(a.Peers) == 0 {
			return fmt.Errorf("%s.peers: no peer address", f)
		}
		for j, p := range a.Peers {
			if !p.IsValid() || p.Port() == 0 {
				return fmt.Errorf("%s.peers[%d]: invalid address (want address:port)", f, j)
			}
			if o, ok := peers[p]; ok {
				return fmt.Errorf("%s.peers[%d]: %v is a peer of agreements[%d] too", f, j, p, o)
			}
			peers[p] = i
		}
		if err := a.Key.Validate(f + ".key"); err != nil {
			return err
		}
		if a.Key.Secret == "" {
			return fmt.Errorf("%s.key.secret: empty", f)
		}
		if a.Key.Alg == wire.AuthHMACSHA256128HKDF {
			return fmt.Errorf("%s.key.alg: %v derives its key per message type, which the interconnect messages have none for (use hmac-sha256-128)", f, a.Key.Alg)
		}
		switch a.Mode {
		case "", MSXModeCopy, MSXModeInvoke, MSXModeNone:
		default:
			return fmt.Errorf("%s.mode: %q (want %s, %s or %s)", f, a.Mode, MSXModeCopy, MSXModeInvoke, MSXModeNone)
		}
		for j, p := range a.Allow {
			if p != MSXSubscribe && p != MSXBulk && p != MSXInvocation {
				return fmt.Errorf("%s.allow[%d]: %q (want %s, %s or %s)", f, j, p, MSXSubscribe, MSXBulk, MSXInvocation)
			}
		}
		if err := validatePrefixes(f+".filters", a.Filters); err != nil {
			return err
		}
		if err := validatePrefixes(f+".peer_prefixes", a.PeerPrefixes); err != nil {
			return err
		}
		if a.Mode == MSXModeInvoke && len(a.PeerPrefixes) == 0 {
			return fmt.Errorf("%s.peer_prefixes: invoke mode needs the peer's EID prefixes", f)
		}
		if len(a.PeerPrefixes)+len(a.PeerNames) > 255 {
			return fmt.Errorf("%s.peer_prefixes: %d prefixes and names (a bulk scope holds 255)", f, len(a.PeerPrefixes)+len(a.PeerNames))
		}
		for _, l := range []struct {
			key   string
			names []SiteName
		}{{"names", a.Names}, {"peer_names", a.PeerNames}} {
			if len(l.names) > MaxSiteNames {
				return fmt.Errorf("%s.%s: %d names, at most %d", f, l.key, len(l.names), MaxSiteNames)
			}
			for j := range l.names {
				if err := l.names[j].Validate(fmt.Sprintf("%s.%s[%d]", f, l.key, j)); err != nil {
					return err
				}
			}
		}
		for j, iid := range a.InstanceIDs {
			if iid > wire.MaxInstanceID {
				return fmt.Errorf("%s.instance_ids[%d]: %d does not fit in 24 bits", f, j, iid)
			}
		}
		if a.Rate < 0 || a.Burst < 0 {
			return fmt.Errorf("%s.rate: negative", f)
		}
		if a.MaxSubscriptions < 0 || a.MaxPending < 0 {
			return fmt.Errorf("%s.max_subscriptions: negative", f)
		}
		if a.Lifetime < 0 || a.PeerTimeout < 0 {
			return fmt.Errorf("%s.lifetime: negative", f)
		}
		if a.Lifetime > 0 && a.Lifetime < time.Second {
			return fmt.Errorf("%s.lifetime: %v (at least 1s)", f, a.Lifetime)
		}
	}
	return nil
}

package slowpath

import (
	"fmt"
	"net/netip"
	"time"
)

// ALTConfig configures the LISP+ALT router role (RFC 6836, docs/alt.md):
// GRE tunnels (RFC 2784, in user space) to the configured ALT neighbours,
// one BGP session over each tunnel, the EID prefixes this router
// announces into the ALT and the aggregates it makes, and the ALT
// forwarding table built from the best paths, kept apart from the host's
// routing. EID prefixes travel in the L3VPN families, one route
// distinguisher per instance-ID (Families "vpn"), or in the unicast
// families, instance-ID 0 only ("unicast"). Its YAML section is alt.
type ALTConfig struct {
	// ASN is this ALT router's AS number (RFC 6836: the ALT is a BGP
	// overlay of its own, typically with private AS numbers).
	ASN uint32 `mapstructure:"asn"`
	// RouterID is the BGP Identifier (RFC 4271 §4.2), an IPv4 address.
	RouterID netip.Addr `mapstructure:"router_id"`
	// Underlay is the local underlay address: the outer source of the GRE
	// packets and where the peers send theirs.
	Underlay netip.Addr `mapstructure:"underlay"`
	// Interface is the TUN carrying the tunnels' inner packets (BGP over
	// TCP); default "alt0".
	Interface string `mapstructure:"interface"`
	// MTU is the TUN's MTU; 0 means 1440.
	MTU int `mapstructure:"mtu"`
	// HoldTime is the BGP hold time proposed to every neighbour (RFC 4271
	// §4.2); a dead tunnel peer is noticed within it. Default 30 s.
	HoldTime time.Duration `mapstructure:"hold_time"`
	// ConnectRetry is the BGP ConnectRetryTimer (RFC 4271 §8.2.2);
	// default 5 s.
	ConnectRetry time.Duration `mapstructure:"connect_retry"`
	// Neighbors are the ALT neighbours, one GRE tunnel and one BGP session
	// each.
	Neighbors []ALTNeighbor `mapstructure:"neighbors"`
	// Announce are EID prefixes always announced into the ALT (a
	// Map-Server's configured aggregate of the sites it serves).
	Announce []netip.Prefix `mapstructure:"announce"`
	// AnnounceIID are EID prefixes of any instance-ID always announced
	// (families vpn only; Announce is instance-ID 0).
	AnnounceIID []EIDPrefix `mapstructure:"announce_iid"`
	// Aggregates are announced (with ATOMIC_AGGREGATE, RFC 4271 §5.1.6)
	// while the ALT table holds a more specific prefix inside them learnt
	// from a neighbour: EID prefixes aggregate as they travel up (RFC 6836).
	// A Map-Request that reaches an aggregate and no more specific
	// route is dropped and counted.
	Aggregates []netip.Prefix `mapstructure:"aggregates"`
	// SummaryOnly keeps the more specifics inside the aggregates from
	// every neighbour (an export filter): only the aggregate goes out, and
	// requests for those EIDs reach this router by it. Off: the
	// aggregates are announced beside the more specifics.
	SummaryOnly bool `mapstructure:"summary_only"`
	// AnnounceRegistered makes a Map-Server announce the EID prefixes of
	// its sites while they are registered, and withdraw them when the
	// registration goes (RFC 6836: the Map-Server is the ALT's
	// origin of the prefixes it serves).
	AnnounceRegistered bool `mapstructure:"announce_registered"`
	// SyncInterval is how often the registered prefixes are compared with
	// the announced ones; default 1 s.
	SyncInterval time.Duration `mapstructure:"sync_interval"`
	// Families are the BGP address families the EID prefixes travel in
	// (docs/alt.md): "vpn" (the default, also when empty) puts them in the
	// L3VPN families (AFI 1/2, SAFI 128) with route distinguisher
	// 0:<IID>, so every instance-ID is on the ALT and EID routes stay out
	// of any unicast RIB; "unicast" in IPv4/IPv6 unicast, instance-ID 0
	// only. Every router of one ALT must use the same.
	Families string `mapstructure:"families"`
}

// The values of ALTConfig.Families.
const (
	ALTFamiliesVPN     = "vpn"
	ALTFamiliesUnicast = "unicast"
)

// ALTNeighbor is one ALT neighbour: its GRE tunnel and BGP session.
type ALTNeighbor struct {
	// Remote is the neighbour's underlay address (the GRE outer
	// destination).
	Remote netip.Addr `mapstructure:"remote"`
	// Inner is this end's inner address with the tunnel's /30 or /31
	// (/126, /127 for IPv6).
	Inner netip.Prefix `mapstructure:"inner"`
	// Peer is the neighbour's inner address, the BGP session's remote end.
	Peer netip.Addr `mapstructure:"peer"`
	// ASN is the neighbour's AS number.
	ASN uint32 `mapstructure:"asn"`
	// Checksum negotiates the GRE checksum (RFC 2784 §2.5); both ends
	// must agree.
	Checksum bool `mapstructure:"checksum"`
	// Key, when not 0, is the GRE key (RFC 2890 §2.1) both ends use.
	Key uint32 `mapstructure:"key"`
}

// Validate checks the section configured under path ("alt"); errors name
// the key.
func (c *ALTConfig) Validate(path string) error {
	switch {
	case c.ASN == 0:
		return fmt.Errorf("%s.asn: missing", path)
	case !c.RouterID.Is4():
		return fmt.Errorf("%s.router_id: %v: an IPv4 address (RFC 4271 §4.2)", path, c.RouterID)
	case !c.Underlay.IsValid():
		return fmt.Errorf("%s.underlay: missing", path)
	case len(c.Interface) > 15:
		return fmt.Errorf("%s.interface: %q longer than 15 bytes", path, c.Interface)
	case c.MTU != 0 && (c.MTU < 576 || c.MTU > 65000):
		return fmt.Errorf("%s.mtu: %d out of 576..65000", path, c.MTU)
	case c.HoldTime != 0 && c.HoldTime < 3*time.Second:
		return fmt.Errorf("%s.hold_time: %v: at least 3 s (RFC 4271 §4.2)", path, c.HoldTime)
	case c.ConnectRetry < 0 || c.SyncInterval < 0:
		return fmt.Errorf("%s: negative connect_retry or sync_interval", path)
	case c.Families != "" && c.Families != ALTFamiliesVPN && c.Families != ALTFamiliesUnicast:
		return fmt.Errorf("%s.families: %q: %q (L3VPN, every instance-ID) or %q (instance-ID 0 only)",
			path, c.Families, ALTFamiliesVPN, ALTFamiliesUnicast)
	}
	peers := map[netip.Addr]bool{}
	remotes := map[netip.Addr]bool{}
	for i, n := range c.Neighbors {
		p := fmt.Sprintf("%s.neighbors[%d]", path, i)
		switch {
		case !n.Remote.IsValid() || n.Remote.Is4() != c.Underlay.Is4():
			return fmt.Errorf("%s.remote: %v: an underlay address of the family of %v", p, n.Remote, c.Underlay)
		case remotes[n.Remote]:
			return fmt.Errorf("%s.remote: %v: a second tunnel to the same neighbour", p, n.Remote)
		case !n.Inner.IsValid() || n.Inner.Bits() < n.Inner.Addr().BitLen()-2:
			return fmt.Errorf("%s.inner: %v: an address with a /30 or /31 (/126, /127)", p, n.Inner)
		case !n.Peer.IsValid() || !n.Inner.Contains(n.Peer) || n.Peer == n.Inner.Addr() || peers[n.Peer]:
			return fmt.Errorf("%s.peer: %v: the other address of %v", p, n.Peer, n.Inner.Masked())
		case n.ASN == 0:
			return fmt.Errorf("%s.asn: missing", p)
		}
		peers[n.Peer], remotes[n.Remote] = true, true
	}
	for i, pf := range c.Announce {
		if !pf.IsValid() || pf != pf.Masked() {
			return fmt.Errorf("%s.announce[%d]: %v: a prefix with no host bits", path, i, pf)
		}
	}
	for i, e := range c.AnnounceIID {
		p := fmt.Sprintf("%s.announce_iid[%d]", path, i)
		if err := e.Validate(p); err != nil {
			return err
		}
		if e.IID != 0 && c.Families == ALTFamiliesUnicast {
			return fmt.Errorf("%s.iid: %d: the unicast families carry instance-ID 0 only (alt.families: %s)", p, e.IID, ALTFamiliesVPN)
		}
	}
	for i, pf := range c.Aggregates {
		if !pf.IsValid() || pf != pf.Masked() {
			return fmt.Errorf("%s.aggregates[%d]: %v: a prefix with no host bits", path, i, pf)
		}
	}
	return nil
}

// WithDefaults returns c with its defaults filled in.
func (c ALTConfig) WithDefaults() ALTConfig {
	if c.Interface == "" {
		c.Interface = "alt0"
	}
	if c.HoldTime == 0 {
		c.HoldTime = 30 * time.Second
	}
	if c.ConnectRetry == 0 {
		c.ConnectRetry = 5 * time.Second
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = time.Second
	}
	if c.Families == "" {
		c.Families = ALTFamiliesVPN
	}
	return c
}

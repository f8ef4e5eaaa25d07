package slowpath

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/slowpath/bgp"
)

// DiscoveryBGP configures the discovery of mapping systems across domains
// through BGP (draft-boucadair-lisp-idr-ms-discovery, docs/discovery.md):
// a mapping system's border speaker advertises the EID prefixes it
// services tagged with the Mapping System extended community carrying its
// contact address, and learns from its neighbours which mapping system
// services which prefixes. Its YAML section is discovery.bgp.
type DiscoveryBGP struct {
	// ASN is the speaker's AS number (4 octets, RFC 6793).
	ASN uint32 `mapstructure:"asn"`
	// RouterID is the BGP Identifier (RFC 4271 §4.2), an IPv4 address.
	RouterID netip.Addr `mapstructure:"router_id"`
	// Listen are the addresses to accept sessions on (TCP port 179);
	// empty: the speaker only connects out.
	Listen []netip.Addr `mapstructure:"listen"`
	// Neighbors are the BGP neighbours.
	Neighbors []DiscoveryBGPNeighbor `mapstructure:"neighbors"`
	// Advertise are the EID prefixes this mapping system services,
	// advertised with the community naming Contact.
	Advertise []netip.Prefix `mapstructure:"advertise"`
	// Contact is the mapping system's contact address (its Map-Resolver),
	// an IPv4 address and a port (0 means 4342); required with Advertise.
	Contact netip.AddrPort `mapstructure:"contact"`
	// MaxLearned bounds the prefixes learned; 0 means 65536.
	MaxLearned int `mapstructure:"max_learned"`
}

// DiscoveryBGPNeighbor is one BGP neighbour of discovery.bgp.
type DiscoveryBGPNeighbor struct {
	// Address is the neighbour's address.
	Address netip.Addr `mapstructure:"address"`
	// ASN is the neighbour's AS number.
	ASN uint32 `mapstructure:"asn"`
	// Local is the local address to connect from (empty: the kernel's
	// choice).
	Local netip.Addr `mapstructure:"local"`
	// Port is the neighbour's TCP port; 0 means 179.
	Port int `mapstructure:"port"`
	// HoldTime is the proposed hold time (RFC 4271 §4.2); 0 means 90 s.
	HoldTime time.Duration `mapstructure:"hold_time"`
	// ConnectRetry is the ConnectRetryTimer (RFC 4271 §8.2.2); 0 means
	// 5 s.
	ConnectRetry time.Duration `mapstructure:"connect_retry"`
}

// Neighbor is n as the BGP component's neighbour.
func (n DiscoveryBGPNeighbor) Neighbor() bgp.Neighbor {
	return bgp.Neighbor{Address: n.Address, ASN: n.ASN, Local: n.Local, Port: n.Port,
		HoldTime: n.HoldTime, ConnectRetry: n.ConnectRetry}
}

// Validate checks the section; errors start with path.
func (b *DiscoveryBGP) Validate(path string) error {
	switch {
	case b.ASN == 0:
		return fmt.Errorf("%s.asn: missing (1..4294967295)", path)
	case !b.RouterID.Is4():
		return fmt.Errorf("%s.router_id: %v: an IPv4 address (RFC 4271 §4.2)", path, b.RouterID)
	case len(b.Neighbors) == 0:
		return fmt.Errorf("%s.neighbors: none", path)
	case len(b.Advertise) > 0 && !b.Contact.IsValid():
		return fmt.Errorf("%s.contact: missing (the mapping system's address, advertised with the prefixes)", path)
	case b.Contact.IsValid() && (!b.Contact.Addr().Is4() || b.Contact.Addr().IsUnspecified() || b.Contact.Addr().IsMulticast()):
		return fmt.Errorf("%s.contact: %v: an IPv4 unicast address (the community carries IPv4)", path, b.Contact)
	case b.MaxLearned < 0:
		return fmt.Errorf("%s.max_learned: negative", path)
	}
	for i, n := range b.Neighbors {
		bn := n.Neighbor()
		if err := bn.Validate(fmt.Sprintf("%s.neighbors[%d]", path, i)); err != nil {
			return err
		}
	}
	for i, p := range b.Advertise {
		if !p.IsValid() {
			return fmt.Errorf("%s.advertise[%d]: not a prefix", path, i)
		}
	}
	return nil
}

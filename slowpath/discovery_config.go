package slowpath

import (
	"fmt"
	"net/netip"
	"time"
)

// DiscoveryConfig configures OSPF-based discovery of Map-Resolvers and
// Map-Servers inside a domain (draft-boucadair-lisp-function-discovery,
// docs/discovery.md): through the local FRR ospfd's OSPF API, a
// Map-Resolver or Map-Server node floods an MSFD TLV in an area-scope
// opaque LSA, and xTRs learn the functions from the TLVs they receive.
// Its YAML section is discovery.
type DiscoveryConfig struct {
	// OSPFAPI is the local ospfd's OSPF API server (ospfd -a); the
	// unspecified value means 127.0.0.1:2607.
	OSPFAPI netip.AddrPort `mapstructure:"ospf_api"`
	// Area is the OSPF area the TLV is flooded in and learned from; the
	// unspecified value means the backbone, 0.0.0.0.
	Area netip.Addr `mapstructure:"area"`
	// OpaqueType is the opaque type (RFC 5250 §3) of the area-scope LSA
	// carrying the TLV; 0 means 4, the Router Information LSA (RFC 7770),
	// as the draft says. ospfd lets an API client originate type 4 only
	// while its own Router Information module is off (no router-info, no
	// segment routing in its configuration); otherwise choose a type from
	// the private range (e.g. 232). TLVs received in type-4 LSAs are
	// learned whatever this says.
	OpaqueType uint8 `mapstructure:"opaque_type"`
	// MapResolvers makes the ITR use the Map-Resolvers it learns, after
	// the configured ones (map_resolvers may then be empty).
	MapResolvers bool `mapstructure:"map_resolvers"`
	// MapServerKey, when set, makes the ETR register with the Map-Servers
	// it learns, after the configured ones, with this key (the key cannot
	// travel in OSPF: it is the site's key at the domain's Map-Servers).
	MapServerKey *AuthKey `mapstructure:"map_server_key"`
	// Advertise is what a Map-Resolver or Map-Server node floods; the
	// function comes from the node's roles.
	Advertise DiscoveryAdvertise `mapstructure:"advertise"`
	// RetryInterval is the wait before connecting again to ospfd after a
	// failure; 0 means 1 s.
	RetryInterval time.Duration `mapstructure:"retry_interval"`
	// BGP is the discovery of mapping systems across domains through BGP
	// (draft-boucadair-lisp-idr-ms-discovery); nil: none. It runs without
	// the OSPF part when no other key of the section is set.
	BGP *DiscoveryBGP `mapstructure:"bgp"`

	// Functions are the functions advertised (MSFD function bits), set by
	// the assembly from the roles; zero advertises nothing.
	Functions uint8 `mapstructure:"-"`
}

// DiscoveryAdvertise is the content of the MSFD TLV a node floods
// (draft-boucadair-lisp-function-discovery §3).
type DiscoveryAdvertise struct {
	// Locators are the addresses xTRs reach the function at; empty means
	// the router's RLOCs.
	Locators []netip.Addr `mapstructure:"locators"`
	// Port is the control port advertised; 0 means the port of the first
	// control listen address.
	Port uint16 `mapstructure:"port"`
	// Status is enabled (the default) or disabled.
	Status string `mapstructure:"status"`
	// UnavailableTimer announces planned unavailability: the function
	// stops serving this long after the LSA is flooded (0: none; whole
	// seconds, at most 65535).
	UnavailableTimer time.Duration `mapstructure:"unavailable_timer"`
	// RebootTimer announces a reboot this long after the LSA is flooded
	// (0: none; whole seconds, at most 65535).
	RebootTimer time.Duration `mapstructure:"reboot_timer"`
	// Capabilities are the optional primitives advertised: bulk,
	// subscribe.
	Capabilities []string `mapstructure:"capabilities"`
}

// Enabled reports whether the section is set at all.
func (d *DiscoveryConfig) Enabled() bool {
	return d != nil && (d.BGP != nil || d.OSPFEnabled())
}

// OSPFEnabled reports whether the section asks for OSPF discovery (any
// key but bgp).
func (d *DiscoveryConfig) OSPFEnabled() bool {
	return d != nil && (d.OSPFAPI.IsValid() || d.Area.IsValid() || d.OpaqueType != 0 || d.MapResolvers || d.MapServerKey != nil ||
		d.RetryInterval != 0 || d.Functions != 0 || len(d.Advertise.Locators) > 0 || d.Advertise.Port != 0 ||
		d.Advertise.Status != "" || d.Advertise.UnavailableTimer != 0 || d.Advertise.RebootTimer != 0 ||
		len(d.Advertise.Capabilities) > 0)
}

// Validate checks the section; errors start with path.
func (d *DiscoveryConfig) Validate(path string) error {
	if d.OSPFAPI.IsValid() && !d.OSPFAPI.Addr().Is4() {
		return fmt.Errorf("%s.ospf_api: %v: ospfd's API server is IPv4", path, d.OSPFAPI)
	}
	if d.Area.IsValid() && !d.Area.Is4() {
		return fmt.Errorf("%s.area: %v: an area ID is a dotted quad", path, d.Area)
	}
	if d.MapServerKey != nil {
		if err := d.MapServerKey.Validate(path + ".map_server_key"); err != nil {
			return err
		}
	}
	if d.RetryInterval < 0 {
		return fmt.Errorf("%s.retry_interval: negative", path)
	}
	if d.BGP != nil {
		if err := d.BGP.Validate(path + ".bgp"); err != nil {
			return err
		}
	}
	a := &d.Advertise
	switch a.Status {
	case "", "enabled", "disabled":
	default:
		return fmt.Errorf("%s.advertise.status: %q (enabled or disabled)", path, a.Status)
	}
	for _, t := range []struct {
		key string
		v   time.Duration
	}{{"unavailable_timer", a.UnavailableTimer}, {"reboot_timer", a.RebootTimer}} {
		if t.v < 0 || t.v > 65535*time.Second || t.v%time.Second != 0 {
			return fmt.Errorf("%s.advertise.%s: %v (whole seconds, 0..65535 s)", path, t.key, t.v)
		}
	}
	for i, c := range a.Capabilities {
		if c != "bulk" && c != "subscribe" {
			return fmt.Errorf("%s.advertise.capabilities[%d]: %q (bulk or subscribe)", path, i, c)
		}
	}
	if len(a.Locators) > 16 {
		return fmt.Errorf("%s.advertise.locators: %d locators (at most 16)", path, len(a.Locators))
	}
	for i, l := range a.Locators {
		if !l.IsValid() || l.IsUnspecified() || l.IsMulticast() || l.Is4In6() {
			return fmt.Errorf("%s.advertise.locators[%d]: %v is not a unicast address", path, i, l)
		}
	}
	return nil
}

// WithDefaults returns d with the defaults of its zero values.
func (d DiscoveryConfig) WithDefaults() DiscoveryConfig {
	if !d.OSPFAPI.IsValid() || d.OSPFAPI.Addr().IsUnspecified() {
		d.OSPFAPI = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 2607)
	}
	if !d.Area.IsValid() {
		d.Area = netip.IPv4Unspecified()
	}
	if d.OpaqueType == 0 {
		d.OpaqueType = 4
	}
	if d.RetryInterval == 0 {
		d.RetryInterval = time.Second
	}
	if d.Advertise.Status == "" {
		d.Advertise.Status = "enabled"
	}
	return d
}

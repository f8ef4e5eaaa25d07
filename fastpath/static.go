package fastpath

import (
	"fmt"
	"net/netip"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/wire"
)

// StaticRLOC is one locator of a configured mapping.
type StaticRLOC struct {
	// Addr is the RLOC address.
	Addr netip.Addr `mapstructure:"addr"`
	// Priority and Weight are the unicast priority (lower preferred, 255 =
	// do not use) and weight (RFC 9301 §5.4 Locator record).
	Priority uint8 `mapstructure:"priority"`
	Weight   uint8 `mapstructure:"weight"`
}

// StaticMapping is a mapping from configuration, installed so the data plane
// runs before (or without) the control plane. With RLOCs it is a positive
// mapping; without, a negative one whose Action applies (RFC 9301 §5.4).
type StaticMapping struct {
	// IID is the instance-ID (RFC 8060 §4.1; at most 24 bits travel in the
	// data header, RFC 9300 §5.3).
	IID uint32 `mapstructure:"iid"`
	// Prefix is the EID prefix (IPv4 or IPv6).
	Prefix netip.Prefix `mapstructure:"eid"`
	// RLOCs are the locators; empty for a negative mapping.
	RLOCs []StaticRLOC `mapstructure:"rlocs"`
	// Action is the ACT of a negative mapping: no-action or
	// natively-forward (forwarded by Config.Negative), send-map-request
	// (treated like a miss) or one of the drop actions.
	Action wire.Action `mapstructure:"action"`
}

// StaticUpdates turns configured mappings into map-cache updates marked
// Static (never expire, never evicted). It checks each mapping and reports
// the first bad one.
func StaticUpdates(ms []StaticMapping) ([]cache.Update, error) {
	ups := make([]cache.Update, 0, len(ms))
	for i := range ms {
		m := &ms[i]
		if !m.Prefix.IsValid() || m.Prefix.Addr().Is4In6() || m.Prefix.Addr().Zone() != "" {
			return nil, fmt.Errorf("fastpath: static mapping %d: invalid EID prefix %v", i, m.Prefix)
		}
		if m.IID > wire.MaxInstanceID {
			return nil, fmt.Errorf("fastpath: static mapping %d: instance-ID %d does not fit in 24 bits", i, m.IID)
		}
		if len(m.RLOCs) > 255 {
			return nil, fmt.Errorf("fastpath: static mapping %d: %d RLOCs (at most 255)", i, len(m.RLOCs))
		}
		if len(m.RLOCs) > 0 && m.Action != wire.ActionNoAction {
			return nil, fmt.Errorf("fastpath: static mapping %d: action %v on a mapping with RLOCs", i, m.Action)
		}
		if m.Action > wire.ActionDropAuthFailure {
			return nil, fmt.Errorf("fastpath: static mapping %d: unknown action %d", i, m.Action)
		}
		u := cache.Update{
			Key:    cache.IPKey(m.IID, m.Prefix),
			TTL:    wire.TTLReceiverDecides,
			Action: m.Action,
			Static: true,
		}
		if len(m.RLOCs) > 0 {
			u.RLOCs = make([]cache.RLOC, len(m.RLOCs))
		}
		for j, r := range m.RLOCs {
			a := r.Addr.Unmap()
			if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
				return nil, fmt.Errorf("fastpath: static mapping %d: bad RLOC %v", i, r.Addr)
			}
			u.RLOCs[j] = cache.RLOC{Addr: a, Priority: r.Priority, Weight: r.Weight,
				Reachable: true, Source: cache.ReachConfig}
		}
		ups = append(ups, u)
	}
	return ups, nil
}

// InstallStatic installs configured mappings into c and reports the first
// update the cache rejected.
func InstallStatic(c *cache.Cache, ms []StaticMapping) error {
	ups, err := StaticUpdates(ms)
	if err != nil {
		return err
	}
	if res := c.Apply(ups); res.Rejected > 0 {
		return fmt.Errorf("fastpath: %d static mappings rejected: %w", res.Rejected, res.Err)
	}
	return nil
}

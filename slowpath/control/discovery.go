package control

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/rloc-router/rloc/slowpath/discovery"
)

// DiscoveryEntry is one function learned by OSPF discovery, as
// Engine.Discovered lists it.
type DiscoveryEntry = discovery.Entry

// DiscoveryStats are the OSPF discovery's counters.
type DiscoveryStats = discovery.Stats

// startDiscovery builds and starts OSPF discovery when configured
// (docs/discovery.md): a Map-Resolver or Map-Server floods its MSFD TLV,
// and an ITR that learns Map-Resolvers gets each new usable set on the
// event loop.
func (e *Engine) startDiscovery() error {
	cfg := e.cfg.Discovery
	if cfg == nil {
		return nil
	}
	if err := e.startBGPDiscovery(cfg.BGP); err != nil {
		return err
	}
	e.watchBGPForCPNP()
	if !cfg.OSPFEnabled() {
		return nil
	}
	dc := *cfg
	if e.cfg.MapResolver != nil {
		dc.Functions |= uint8(discovery.FunctionMapResolver)
	}
	if e.cfg.MapServer != nil {
		dc.Functions |= uint8(discovery.FunctionMapServer)
	}
	// Without configured locators: the specific control addresses.
	var locs []netip.Addr
	for _, a := range e.c.Addrs() {
		if !a.Addr().IsUnspecified() {
			locs = append(locs, a.Addr().Unmap())
		}
	}
	if dc.Functions != 0 && len(dc.Advertise.Locators) == 0 && len(locs) == 0 {
		return errors.New("discovery.advertise.locators: none configured and the control sockets listen on wildcard addresses")
	}
	advert, err := discovery.Advert(&dc, locs, e.c.Addr().Port())
	if err != nil {
		return err
	}
	opt := discovery.Options{Log: e.c.Log()}
	learnMRs := dc.MapResolvers && e.itr != nil
	learnMSs := dc.MapServerKey != nil && e.etr != nil
	if learnMRs || learnMSs {
		opt.OnChange = func(mrs, mss []netip.AddrPort) {
			_ = e.c.Do(func() {
				if learnMRs {
					e.itr.SetDiscovered(mrs)
				}
				if learnMSs {
					e.etr.SetDiscovered(mss, *dc.MapServerKey)
				}
			})
		}
	}
	e.disc = discovery.New(dc, advert, opt)
	e.disc.Start()
	return nil
}

// Discovered lists the functions OSPF discovery learned; nil without
// discovery.
func (e *Engine) Discovered() []DiscoveryEntry {
	if e.disc == nil {
		return nil
	}
	return e.disc.Entries()
}

// DiscoveryStats returns OSPF discovery's counters; false without
// discovery.
func (e *Engine) DiscoveryStats() (DiscoveryStats, bool) {
	if e.disc == nil {
		return DiscoveryStats{}, false
	}
	return e.disc.Stats(), true
}

// SetDiscoveryStatus changes the status this router's MSFD TLV floods:
// "enabled" or "disabled".
func (e *Engine) SetDiscoveryStatus(status string) error {
	if e.disc == nil {
		return errors.New("discovery: not configured")
	}
	switch status {
	case "enabled":
		return e.disc.SetStatus(discovery.StatusEnabled)
	case "disabled":
		return e.disc.SetStatus(discovery.StatusDisabled)
	}
	return fmt.Errorf("discovery: status %q (enabled or disabled)", status)
}

// ITRMapResolvers returns the Map-Resolvers the ITR asks now, configured
// and discovered; nil without an ITR.
func (e *Engine) ITRMapResolvers() []netip.AddrPort {
	if e.itr == nil {
		return nil
	}
	var out []netip.AddrPort
	if err := e.c.Do(func() { out = e.itr.MapResolvers() }); err != nil {
		return nil
	}
	return out
}

// ETRMapServers returns the Map-Servers the ETR registers with now,
// configured and discovered; nil without an ETR.
func (e *Engine) ETRMapServers() []netip.AddrPort {
	if e.etr == nil {
		return nil
	}
	var out []netip.AddrPort
	if err := e.c.Do(func() { out = e.etr.MapServers() }); err != nil {
		return nil
	}
	return out
}

// stopDiscovery stops OSPF discovery (ospfd flushes this router's TLV).
func (e *Engine) stopDiscovery() {
	if e.disc != nil {
		e.disc.Close()
	}
	if e.bgpDisc != nil {
		e.bgpDisc.Close()
	}
}

package router

import (
	"net/netip"
	"sync"
	"time"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/fastpath"
)

// gleanTTL is the record TTL, in minutes, of a gleaned mapping: it only
// carries return traffic until the Map-Request sent to verify it is
// answered (RFC 9300 §9).
const gleanTTL = 1

// gleaner installs gleaned mappings (RFC 9300 §9) from the workers'
// gleaning reports and removes them when a mapping from the mapping system
// covers them. It is used by the miss-drain goroutine and the installer.
type gleaner struct {
	mu   sync.Mutex
	keys map[cache.Key]time.Time // gleaned entries we installed, by expiry
}

// observe handles one gleaning report: unless the map-cache already holds
// a mapping for the EID from the mapping system (or configuration), it
// installs EID/32 (or /128) → RLOC with a short TTL, and asks the ITR to
// resolve the EID so that the gleaned guess is verified and replaced.
func (g *gleaner) observe(c *cache.Cache, o *fastpath.Observation, now time.Time, resolve func(fastpath.MissEvent) bool) bool {
	if !o.Glean || !o.EID.IsValid() || !o.RLOC.IsValid() {
		return false
	}
	eid := o.EID.Unmap()
	key := cache.IPKey(o.IID, netip.PrefixFrom(eid, eid.BitLen()))
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := c.Get(key); ok || g.keys[key].After(now) {
		return false // already gleaned, or a host mapping exists
	}
	if e, ok := c.Lookup(o.IID, eid); ok && !e.Negative() {
		return false // the mapping system already told us where it is
	}
	u := cache.Update{Key: key, TTL: gleanTTL, RLOCs: []cache.RLOC{{Addr: o.RLOC.Unmap(), Priority: 1, Weight: 100,
		MPriority: 255, Reachable: true, Source: cache.ReachConfig}}}
	if res := c.Apply([]cache.Update{u}); res.Rejected > 0 {
		return false
	}
	if g.keys == nil {
		g.keys = make(map[cache.Key]time.Time)
	}
	g.keys[key] = now.Add(gleanTTL * time.Minute)
	if resolve != nil {
		resolve(fastpath.MissEvent{IID: o.IID, Dst: eid})
	}
	return true
}

// covered removes the gleaned entries inside a prefix the mapping system
// has just answered for (iid, p), so that its mapping takes over.
func (g *gleaner) covered(c *cache.Cache, iid uint32, p netip.Prefix, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var del []cache.Update
	for k, exp := range g.keys {
		if exp.Before(now) {
			delete(g.keys, k)
			continue
		}
		if k.IID == iid && k.Prefix != p && p.Contains(k.Prefix.Addr()) {
			del = append(del, cache.Update{Key: k, Delete: true})
			delete(g.keys, k)
		}
	}
	if len(del) > 0 {
		c.Apply(del)
	}
}

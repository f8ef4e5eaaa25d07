package router

import (
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/fastpath"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// activeWindow is how recently a mapping must have carried traffic to be
// refreshed before its TTL runs out.
const activeWindow = 2 * time.Minute

// installer is the slow path's slowpath.Installer: it writes mappings into
// the map-cache (templates come from cache.Config.BuildTemplate, i.e. the
// fast path's OuterConfig) and hands the workers' held packets back.
type installer struct {
	r *Router
}

var _ slowpath.Installer = installer{}

// ttlMinutes converts a duration to a record TTL in minutes, at least 1.
func ttlMinutes(d time.Duration) uint32 {
	m := uint32(d / time.Minute)
	if d >= 24*time.Hour*365 {
		return wire.TTLReceiverDecides
	}
	return max(m, 1)
}

// Install implements slowpath.Installer.
func (in installer) Install(m *slowpath.Resolved) {
	u := cache.Update{
		Key:           cache.IPKey(m.IID, m.Prefix),
		TTL:           ttlMinutes(m.TTL),
		MapVersion:    m.MapVersion,
		Authoritative: m.Authoritative,
	}
	src := cache.ReachMapReply
	if m.Solicited {
		src = cache.ReachSolicit
	}
	for _, l := range m.RLOCs {
		u.RLOCs = append(u.RLOCs, cache.RLOC{Addr: l.Addr.Unmap(), Priority: l.Priority, Weight: l.Weight,
			MPriority: l.MPriority, MWeight: l.MWeight, Reachable: l.Reachable, Source: src})
	}
	if len(u.RLOCs) == 0 {
		in.InstallNegative(m.EIDPrefix, m.TTL, wire.ActionNativelyForward)
		return
	}
	r := in.r
	res := r.cache.Apply([]cache.Update{u})
	if res.Rejected > 0 {
		r.log.Warn("map-cache rejected a mapping", "iid", m.IID, "eid", m.Prefix, "err", res.Err)
	}
	r.glean.covered(r.cache, m.IID, m.Prefix, time.Now())
	r.release(fastpath.Release{IID: m.IID, Prefix: m.Prefix})
	if r.events.active() {
		ev := Event{Kind: EventMappingInstalled, IID: m.IID, EID: m.Prefix.String()}
		for _, l := range u.RLOCs {
			ev.RLOCs = append(ev.RLOCs, l.Addr.String())
		}
		r.events.publish(ev)
	}
}

// InstallNegative implements slowpath.Installer.
func (in installer) InstallNegative(p slowpath.EIDPrefix, ttl time.Duration, action wire.Action) {
	r := in.r
	u := cache.Update{Key: cache.IPKey(p.IID, p.Prefix), TTL: ttlMinutes(ttl), Action: action}
	if res := r.cache.Apply([]cache.Update{u}); res.Rejected > 0 {
		r.log.Warn("map-cache rejected a negative mapping", "iid", p.IID, "eid", p.Prefix, "err", res.Err)
	}
	r.release(fastpath.Release{IID: p.IID, Prefix: p.Prefix, Negative: true, Action: action})
	r.events.publish(Event{Kind: EventNegativeInstalled, IID: p.IID, EID: p.Prefix.String(), Detail: actionName(action)})
}

// SetRLOCReachable implements slowpath.Installer: it republishes the entry
// with the RLOC's reachability changed and its remaining TTL kept.
func (in installer) SetRLOCReachable(p slowpath.EIDPrefix, rloc netip.Addr, up bool) {
	r := in.r
	e := r.exact(p.IID, p.Prefix)
	if e == nil {
		return
	}
	u := cache.Update{Key: e.Key(), MapVersion: e.MapVersion(), Authoritative: e.Authoritative(), Static: e.Static()}
	if exp := e.Expiry(); !exp.IsZero() {
		u.TTL = ttlMinutes(time.Until(exp) + time.Minute - 1)
	} else {
		u.TTL = wire.TTLReceiverDecides
	}
	changed := false
	rloc = rloc.Unmap()
	for _, l := range e.RLOCs() {
		l.Template = nil
		if l.Addr == rloc && l.Reachable != up {
			l.Reachable, l.Source, changed = up, cache.ReachProbe, true
		}
		u.RLOCs = append(u.RLOCs, l)
	}
	if !changed {
		return
	}
	r.cache.Apply([]cache.Update{u})
	r.log.Info("RLOC reachability changed", "iid", p.IID, "eid", p.Prefix, "rloc", rloc, "up", up)
	r.events.publish(Event{Kind: EventRLOCReachability, IID: p.IID, EID: p.Prefix.String(), RLOC: rloc.String(), Up: up})
}

// Active implements slowpath.Installer.
func (in installer) Active(p slowpath.EIDPrefix) bool {
	e := in.r.exact(p.IID, p.Prefix)
	if e == nil {
		return false
	}
	return time.Since(in.r.cache.LastUsed(e)) < activeWindow
}

// exact returns the map-cache entry for exactly (iid, p), or nil.
func (r *Router) exact(iid uint32, p netip.Prefix) *cache.Entry {
	e, ok := r.cache.Get(cache.IPKey(iid, p))
	if !ok {
		return nil
	}
	return e
}

// release tells every worker that a mapping for rel arrived.
func (r *Router) release(rel fastpath.Release) {
	for _, w := range r.workers {
		if !w.Releases().Push(rel) {
			r.releaseDropped.Add(1)
		}
	}
}

// actionName names a negative mapping's action (RFC 9301 §5.4).
func actionName(a wire.Action) string {
	switch a {
	case wire.ActionNoAction:
		return "no-action"
	case wire.ActionNativelyForward:
		return "natively-forward"
	case wire.ActionSendMapRequest:
		return "send-map-request"
	case wire.ActionDrop:
		return "drop"
	case wire.ActionDropPolicyDenied:
		return "drop-policy-denied"
	case wire.ActionDropAuthFailure:
		return "drop-auth-failure"
	}
	return "action-?"
}

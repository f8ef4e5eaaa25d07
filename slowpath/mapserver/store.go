package mapserver

import (
	"errors"
	"log/slog"
	"net/netip"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/wire"
)

// The Map-Server keeps its registrations in regstore stores, one per kind
// of record; this file maps the configuration to the store's sites and
// keys, and the stores' results and events to the core's counters and
// events.

// storeSites indexes the configured sites for the stores.
func storeSites(cfg []slowpath.SiteConfig) (*regstore.Sites, error) {
	sites := make([]*regstore.Site, len(cfg))
	for i := range cfg {
		c := &cfg[i]
		s := &regstore.Site{Name: c.Name, RequireXTRID: c.RequireXTRID, ProxyReply: c.ProxyReply}
		for _, k := range c.Keys {
			s.Keys = append(s.Keys, k.RegKey())
		}
		for _, p := range c.Prefixes {
			s.Prefixes = append(s.Prefixes, regstore.SitePrefix{IID: p.IID, Prefix: p.Prefix, MoreSpecifics: p.AcceptMoreSpecifics})
		}
		for _, n := range c.Names {
			sn := regstore.SiteName{IID: n.IID, Name: n.Name}
			if suffix, ok := n.Suffix(); ok {
				sn.Name, sn.Suffix = suffix, true
			}
			s.Names = append(s.Names, sn)
		}
		sites[i] = s
	}
	return regstore.NewSites(sites)
}

// storeConfig is the stores' policy from the Map-Server's configuration.
func storeConfig(cfg *slowpath.MapServerConfig) regstore.Config {
	l := &cfg.Limits
	return regstore.Config{Timeout: cfg.RegistrationTimeout, MaxRegistrants: l.RegistrantsPerPrefix,
		MaxSiteKeys: l.PrefixesPerSite, MaxRecords: l.RecordsPerRegister, MaxRLOCs: l.RLOCsPerRecord,
		MaxRegistrations: l.Registrations}
}

// authFailed reports whether a store refused a message by its
// authentication.
func authFailed(err error) bool {
	return errors.Is(err, regstore.ErrAuth) || errors.Is(err, regstore.ErrUnknownKey) || errors.Is(err, regstore.ErrNoAuth)
}

// count adds what a store did with a Map-Register from src to the
// counters: the message is refused for its authentication (BadAuth) or by
// policy (Rejected), its records are registered (withdrawals included) or
// refused by site policy; a message that verified counts its
// authentication variant, and an accepted one is logged at debug.
func (ms *MapServer) count(src netip.AddrPort, res regstore.Result) {
	st := ms.c.Msg(wire.TypeMapRegister)
	if res.Verified {
		st.Auth.Count(res.Auth)
		if res.Accepted+res.Withdrawn > 0 {
			ms.log.Debug("Map-Register accepted", "site", res.Site.Name, "src", src,
				"records", res.Accepted, "withdrawn", res.Withdrawn, "key_id", res.Key.KeyID,
				"alg", res.Auth.Alg.String(), "hmac_length", res.Auth.Length(), "coverage", res.Auth.Coverage())
		}
	}
	switch {
	case authFailed(res.Err):
		st.BadAuth++
		return
	case errors.Is(res.Err, regstore.ErrXTRIDRequired):
		st.Rejected++
		return
	case res.Err != nil:
		st.Rejected++
	}
	ms.stats.RegistrationsAccepted += uint64(res.Accepted + res.Withdrawn)
	ms.stats.RegistrationsRejected += uint64(res.Rejected)
	ms.stats.RegistrationsLimited += uint64(res.Limited)
	ms.stats.RegistrationsReplayed += uint64(res.Replayed)
	ms.stats.RegistrationsRetransmitted += uint64(res.Retransmitted)
}

// trust spares the source of an accepted (authenticated) registration the
// rate limit's total budgets, so a flood cannot starve registered ETRs.
func (ms *MapServer) trust(kind regstore.EventKind, src netip.AddrPort) {
	if kind == regstore.Accepted {
		ms.c.Trust(src.Addr())
	}
}

// quiet reports whether an event of kind has nowhere to go: acceptances
// are only reported to Config.Events (refusals and expiries are also
// logged and counted).
func (ms *MapServer) quiet(kind regstore.EventKind) bool {
	return (kind == regstore.Accepted || kind == regstore.Withdrawn) && !ms.c.EventsOn()
}

// report turns a store's event into the core's event and log line; what
// names the key in the log.
func (ms *MapServer) report(kind regstore.EventKind, site string, eid slowpath.EIDPrefix, what string, src netip.AddrPort, reason error) {
	ev := slowpath.Event{Site: site, EID: eid, Source: src}
	switch kind {
	case regstore.Accepted, regstore.Withdrawn:
		if !ms.c.EventsOn() {
			return
		}
		ev.Kind = slowpath.EventRegistrationAccepted
	case regstore.Rejected:
		ev.Kind, ev.Reason = slowpath.EventRegistrationRejected, reasonOf(reason, eid, what)
		who := site
		if who == "" {
			who = src.Addr().String()
		}
		if reason != nil {
			who += "\x00" + reasonKey(reason)
		}
		ms.refused.log(ms.log, ms.c.Now(), who, "Map-Register refused", "site", site, "src", src, "eid", what, "reason", reason)
	case regstore.Expired:
		ev.Kind = slowpath.EventRegistrationExpired
		ms.stats.RegistrationsExpired++
		// One line a minute per site: a site's mass expiry is one line
		// and a count, not one line per registration.
		ms.refused.logAt(ms.log, slog.LevelInfo, ms.c.Now(), site+"\x00expired", "registration expired",
			"site", site, "eid", what, "src", src)
	default:
		return
	}
	ms.c.Event(ev)
}

// reasonKey names a refusal's reason for the log's rate limit: the
// store's own error whatever numbers it carries, so that one site's
// excess is one line whatever the counts.
func reasonKey(err error) string {
	for _, e := range []error{regstore.ErrTooManyRegistrants, regstore.ErrSiteFull, regstore.ErrTooManyRecords,
		regstore.ErrTooManyRLOCs, regstore.ErrStoreFull, regstore.ErrReplayed} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return err.Error()
}

// reasonOf words a store's refusal as the Map-Server's events always have;
// eid and what name the key when the store had one.
func reasonOf(err error, eid slowpath.EIDPrefix, what string) string {
	switch {
	case errors.Is(err, regstore.ErrNoSite), errors.Is(err, regstore.ErrNotThisKind):
		if !eid.Prefix.IsValid() {
			return "no site may register the record"
		}
		return "no site may register " + what
	case errors.Is(err, regstore.ErrUnknownKey), errors.Is(err, regstore.ErrNoAuth):
		return "unknown key"
	case errors.Is(err, regstore.ErrAuth):
		return "authentication failed"
	case errors.Is(err, regstore.ErrXTRIDRequired):
		return "xTR-ID required"
	case errors.Is(err, regstore.ErrOutsideSite):
		return "EID outside the site's prefixes"
	}
	return err.Error()
}

package control

import "github.com/rloc-router/rloc/slowpath/resolver"

// DDTPending returns at most max of the DDT Map-Resolver's resolutions in
// progress (oldest first) and their number; ok is false when no DDT roots
// are configured.
func (e *Engine) DDTPending(max int) (l []resolver.DDTPending, total int, ok bool) {
	if e.mr == nil || e.mr.ReferralCache() == nil {
		return nil, 0, false
	}
	get := func() { l, total = e.mr.DDTPending(nil, max) }
	if err := e.c.Do(get); err != nil {
		get() // closed: nothing changes any more
	}
	return l, total, true
}

// DDTMapServerSigned returns the signatures the Map-Server made for its
// DDT answers and its signing errors; ok is false without a Map-Server
// signing key (map_server.ddt.signing).
func (e *Engine) DDTMapServerSigned() (signed, errors uint64, ok bool) {
	if e.ms == nil || e.cfg.MapServer == nil || e.cfg.MapServer.DDT.Signing.KeyFile == "" {
		return 0, 0, false
	}
	get := func() { signed, errors = e.ms.DDTSigned() }
	if err := e.c.Do(get); err != nil {
		get() // closed: nothing changes any more
	}
	return signed, errors, true
}

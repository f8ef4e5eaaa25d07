package xtr

import (
	"net/netip"
	"slices"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/regstore"
)

// SetDiscovered sets the Map-Servers discovery learned
// (draft-boucadair-lisp-function-discovery, docs/discovery.md): the ETR
// registers with each new one at once, with key, and keeps registering
// every register interval; one that leaves the set is no longer registered
// with (its round in flight is cancelled). Configured Map-Servers are never
// touched. Event loop only.
func (t *ETR) SetDiscovered(mss []netip.AddrPort, key slowpath.AuthKey) {
	kept := t.peers[:0]
	for _, p := range t.peers {
		if p.discovered && !slices.Contains(mss, p.cfg.Addr) {
			t.tr.Cancel(p.round)
			p.round = nil
			if p.period != nil {
				p.period.Stop()
			}
			t.c.Log().Info("discovered Map-Server no longer registered with", "ms", p.cfg.Addr)
			continue
		}
		kept = append(kept, p)
	}
	clear(t.peers[len(kept):])
	t.peers = kept
	for _, a := range mss {
		if slices.ContainsFunc(t.peers, func(p *msPeer) bool { return p.cfg.Addr == a }) {
			continue
		}
		p := &msPeer{cfg: slowpath.MapServerPeer{Addr: a, Key: key}, key: [1]regstore.Key{key.RegKey()}, discovered: true}
		t.peers = append(t.peers, p)
		t.c.TrustAlways(a.Addr())
		p.period = t.c.Schedule(t.c.Now(), func(time.Time) { t.register(p) })
		t.c.Log().Info("registering with discovered Map-Server", "ms", a)
	}
}

// MapServers returns the Map-Servers the ETR registers with now,
// configured and discovered (event loop only).
func (t *ETR) MapServers() []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(t.peers))
	for _, p := range t.peers {
		out = append(out, p.cfg.Addr)
	}
	return out
}

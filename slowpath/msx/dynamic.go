package msx

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/request"
)

// Agreements added, replaced and removed at run time: the ones a CPNP
// negotiation provisions (slowpath/cpnp, docs/cpnp.md). They live beside
// the configured ones and work the same; removing one stops its requests,
// drops the peer's subscriptions and its copy at once.

// addAgreement builds the state of agreement cfg (defaults applied) and
// indexes its peers.
func (x *MSX) addAgreement(cfg *slowpath.MSXAgreement) *agreement {
	c := x.c
	rc := request.Config{Interval: x.cfg.RetransmitInterval, MaxTries: x.cfg.MaxTries, MaxInterval: 8 * x.cfg.RetransmitInterval}
	a := &agreement{x: x, cfg: cfg, key: cfg.Key.RegKey()}
	a.share = agreementScope(a.cfg)
	a.in.tokens = float64(a.cfg.Burst)
	a.req.out.tokens = float64(a.cfg.Burst)
	a.prov.init()
	a.prov.notify = request.New(c.Clock(), c, rc)
	a.req.tr = request.New(c.Clock(), c, rc)
	a.req.init(a)
	x.ags = append(x.ags, a)
	x.reindex()
	for _, p := range a.cfg.Peers {
		c.TrustAlways(p.Addr().Unmap())
	}
	return a
}

// index rebuilds the peer and EID-space indexes from the agreements.
func (x *MSX) reindex() {
	clear(x.byPeer)
	clear(x.byAddr)
	clear(x.space)
	for _, a := range x.ags {
		for _, p := range a.cfg.PeerPrefixes {
			t := x.space[p.IID]
			if t == nil {
				t = new(bart.Table[struct{}])
				x.space[p.IID] = t
			}
			t.Insert(p.Prefix.Masked(), struct{}{})
		}
		for _, p := range a.cfg.Peers {
			p = netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
			x.byPeer[p] = a
			if o, ok := x.byAddr[p.Addr()]; ok && o != a {
				x.byAddr[p.Addr()] = nil
			} else {
				x.byAddr[p.Addr()] = a
			}
		}
	}
}

// SetAgreement adds agreement cfg at run time, or replaces the one of the
// same name (its copy and the peer's subscriptions are dropped and built
// again under the new terms). Defaults are applied as for configured
// agreements; an agreement that would not validate, or whose peers belong
// to another agreement, is refused. Event loop only, after the core
// started.
func (x *MSX) SetAgreement(cfg slowpath.MSXAgreement) error {
	one := slowpath.MSXConfig{Agreements: []slowpath.MSXAgreement{cfg}}
	if err := one.Validate("msx"); err != nil {
		return err
	}
	cfg = one.WithDefaults().Agreements[0]
	for _, a := range x.ags {
		if a.cfg.Name == cfg.Name {
			continue
		}
		for _, p := range cfg.Peers {
			if slices.Contains(a.cfg.Peers, p) {
				return fmt.Errorf("msx: peer %v belongs to agreement %q", p, a.cfg.Name)
			}
		}
	}
	x.RemoveAgreement(cfg.Name)
	a := x.addAgreement(&cfg)
	a.req.start(a)
	x.c.Flush()
	x.log.Info("agreement set", "agreement", cfg.Name, "peers", cfg.Peers, "mode", cfg.Mode)
	return nil
}

// RemoveAgreement removes the agreement named name: its outstanding
// requests are cancelled, its periodic work stops, the peer's
// subscriptions and the copy are dropped. It reports whether there was
// one. Event loop only.
func (x *MSX) RemoveAgreement(name string) bool {
	i := slices.IndexFunc(x.ags, func(a *agreement) bool { return a.cfg.Name == name })
	if i < 0 {
		return false
	}
	a := x.ags[i]
	a.gone = true
	q := &a.req
	q.tr.Cancel(q.subReq)
	if q.pull != nil {
		q.tr.Cancel(q.pull.r)
		q.pull = nil
	}
	q.drop()
	for _, s := range a.prov.subs {
		x.dropSub(s)
	}
	x.ags = slices.Delete(x.ags, i, i+1)
	x.reindex()
	x.log.Info("agreement removed", "agreement", name)
	return true
}

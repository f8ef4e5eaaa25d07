package mcast

import (
	"errors"
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/slowpath"

	"github.com/rloc-router/rloc/wire"
)

// rxKey is a membership on one site interface: (S,G), or (*,G) with an
// invalid source.
type rxKey struct {
	ifname string
	iid    uint32
	src    netip.Addr
	group  netip.Addr
}

type rxState struct {
	expires time.Time
	t       *slowpath.Timer
}

// receivers is the ETR's receiver learning (RFC 3376 §6, RFC 3810 §7, as
// a multicast router keeps it, simplified to what LISP can signal: per
// interface, (*,G) for exclude-mode groups and (S,G) for included
// sources, each with a timer).
type receivers struct {
	m      *Mcast
	ls     []slowpath.MembershipListener
	states map[rxKey]*rxState
	count  map[slowpath.SGKey]int
	memb   wire.Membership
	done   chan struct{}
}

func newReceivers(m *Mcast) *receivers {
	return &receivers{m: m, ls: m.cfg.Listeners, states: map[rxKey]*rxState{}, count: map[slowpath.SGKey]int{}, done: make(chan struct{})}
}

// start runs on the engine goroutine: it starts a reader per listener and
// the general queries.
func (r *receivers) start() {
	if r.ls == nil {
		for _, si := range r.m.cfg.SiteInterfaces {
			l, err := OpenMembershipListener(si)
			if err != nil {
				r.m.c.Log().Error("cannot listen for IGMP/MLD", "interface", si.Name, "err", err)
				continue
			}
			r.ls = append(r.ls, l)
		}
	}
	for _, l := range r.ls {
		go r.read(l)
	}
	if r.m.cfg.QueryInterval > 0 {
		var q func(now time.Time)
		q = func(now time.Time) {
			for _, l := range r.ls {
				if err := l.Query(netip.Addr{}); err != nil {
					r.m.c.Log().Debug("general query failed", "interface", l.Interface().Name, "err", err)
				}
			}
			r.m.c.Schedule(now.Add(r.m.cfg.QueryInterval), q)
		}
		r.m.c.Schedule(r.m.c.Now(), q)
	}
}

func (r *receivers) stop() {
	close(r.done)
	for _, l := range r.ls {
		_ = l.Close()
	}
}

// read passes one listener's messages to the engine goroutine.
func (r *receivers) read(l slowpath.MembershipListener) {
	si := l.Interface()
	buf := make([]byte, 65536)
	for {
		n, src, dst, mld, err := l.Read(buf)
		if err != nil {
			select {
			case <-r.done:
				return
			default:
			}
			if errors.Is(err, slowpath.ErrClosed) {
				return
			}
			r.m.c.Log().Warn("IGMP/MLD listener stopped", "interface", si.Name, "err", err)
			return
		}
		msg := append([]byte(nil), buf[:n]...)
		if r.m.c.Do(func() { r.onMessage(si, msg, src, dst, mld) }) != nil {
			return
		}
	}
}

// onMessage handles one IGMP or MLD message heard on si.
func (r *receivers) onMessage(si slowpath.SiteInterface, b []byte, src, dst netip.Addr, mld bool) {
	m := r.m
	var err error
	if mld {
		err = r.memb.ParseMLD(b, src, dst)
	} else {
		err = r.memb.ParseIGMP(b)
	}
	if err != nil {
		m.stats.BadReports++
		r.m.c.Log().Debug("bad IGMP/MLD message", "interface", si.Name, "src", src, "err", err)
		return
	}
	if r.memb.Query {
		return
	}
	for _, rec := range r.memb.Records {
		g := rec.Group
		if !overlayGroup(g) {
			// Link-local and interface-local groups (224.0.0.0/24, ff01::/16,
			// ff02::/16: ND solicited-node, all-routers...) never leave the
			// link (RFC 5771 §4, RFC 4291 §2.7), so they are not registered.
			m.stats.LocalGroups++
			continue
		}
		switch rec.Type {
		case wire.ModeIsExclude, wire.ChangeToExclude:
			// Exclude mode: every source but the listed ones; LISP signals
			// that as (*,G).
			r.refresh(rxKey{si.Name, si.IID, netip.Addr{}, g})
		case wire.ModeIsInclude, wire.AllowNewSources:
			for _, s := range rec.Sources {
				r.refresh(rxKey{si.Name, si.IID, s, g})
			}
		case wire.ChangeToInclude:
			for _, s := range rec.Sources {
				r.refresh(rxKey{si.Name, si.IID, s, g})
			}
			r.leaving(rxKey{si.Name, si.IID, netip.Addr{}, g})
		case wire.BlockOldSources:
			for _, s := range rec.Sources {
				r.leaving(rxKey{si.Name, si.IID, s, g})
			}
		}
	}
}

// overlayGroup reports whether g is a multicast group that may be carried
// across sites: not link-local or interface-local in scope.
func overlayGroup(g netip.Addr) bool {
	return g.IsMulticast() && !g.IsLinkLocalMulticast() && !g.IsInterfaceLocalMulticast()
}

func (k rxKey) sg() slowpath.SGKey {
	g := netip.PrefixFrom(k.group, k.group.BitLen())
	if !k.src.IsValid() {
		return slowpath.NewSGKey(k.iid, netip.Prefix{}, g)
	}
	return slowpath.NewSGKey(k.iid, netip.PrefixFrom(k.src, k.src.BitLen()), g)
}

// refresh (re)starts a membership for the Group Membership Interval.
func (r *receivers) refresh(k rxKey) {
	if k.src.IsValid() && k.src.Is4() != k.group.Is4() {
		return
	}
	at := r.m.c.Now().Add(r.m.cfg.MembershipInterval)
	st := r.states[k]
	if st != nil {
		st.expires = at
		st.t.Reset(at)
		return
	}
	st = &rxState{expires: at}
	st.t = r.m.c.Schedule(at, func(now time.Time) { r.expire(k, st, now) })
	r.states[k] = st
	sk := k.sg()
	r.count[sk]++
	if r.count[sk] == 1 {
		r.m.joinLocal(sk)
	}
}

// leaving handles a leave: the membership ends after the Last Member Query
// Time unless a report refreshes it (a group-specific query asks for
// one), or at once with FastLeave.
func (r *receivers) leaving(k rxKey) {
	st := r.states[k]
	if st == nil {
		return
	}
	if r.m.cfg.FastLeave {
		r.remove(k, st)
		return
	}
	at := r.m.c.Now().Add(r.m.cfg.LastMemberQueryTime)
	if at.Before(st.expires) {
		st.expires = at
		st.t.Reset(at)
	}
	for _, l := range r.ls {
		if l.Interface().Name == k.ifname {
			_ = l.Query(k.group)
		}
	}
}

func (r *receivers) expire(k rxKey, st *rxState, now time.Time) {
	if r.states[k] != st {
		return
	}
	if now.Before(st.expires) {
		st.t.Reset(st.expires)
		return
	}
	r.remove(k, st)
}

func (r *receivers) remove(k rxKey, st *rxState) {
	st.t.Stop()
	delete(r.states, k)
	sk := k.sg()
	r.count[sk]--
	if r.count[sk] <= 0 {
		delete(r.count, sk)
		r.m.leaveLocal(sk)
	}
}

// publishReceivers tells slowpath.MulticastConfig.ReceiverGroups the groups with
// receivers now.
func (m *Mcast) publishReceivers() {
	if m.cfg.ReceiverGroups == nil {
		return
	}
	gs := make([]slowpath.ReceiverGroup, 0, len(m.local))
	for k, l := range m.local {
		if l.receivers {
			gs = append(gs, slowpath.ReceiverGroup{IID: k.IID, Source: k.SrcAddr(), Group: k.Group.Addr()})
		}
	}
	m.cfg.ReceiverGroups(gs)
}

// joinLocal starts registering an (S,G) the first receiver joined.
func (m *Mcast) joinLocal(k slowpath.SGKey) {
	m.stats.Joins++
	l := m.localFor(k)
	l.receivers = true
	m.publishReceivers()
	m.c.Log().Info("receivers joined", "sg", k.String())
	if m.cfg.Underlay != nil && !l.ug.Group.IsValid() {
		m.chooseUnderlay(l)
	}
	m.register(l, false)
}

// leaveLocal withdraws an (S,G) the last receiver left.
func (m *Mcast) leaveLocal(k slowpath.SGKey) {
	m.stats.Leaves++
	l := m.local[k]
	if l == nil {
		return
	}
	l.receivers = false
	m.publishReceivers()
	m.c.Log().Info("receivers left", "sg", k.String())
	if !l.rtr {
		m.drop(l)
	}
}

// Memberships lists the receiver memberships the ETR has learned.
// (event loop only).
func (m *Mcast) Memberships() []slowpath.Membership {
	if m.rx == nil {
		return nil
	}
	var out []slowpath.Membership
	for k, st := range m.rx.states {
		out = append(out, slowpath.Membership{Interface: k.ifname, IID: k.iid, Source: k.src, Group: k.group, Expires: st.expires})
	}
	return out
}

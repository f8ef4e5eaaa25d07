package slowpath

import (
	"errors"
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// MembershipListener delivers the IGMP and MLD messages heard on one site
// interface and sends queries there. The raw-socket implementation is
// OpenMembershipListener; tests inject reports through their own.
type MembershipListener interface {
	// Interface is the site interface listened on, with its instance-ID.
	Interface() SiteInterface
	// Read blocks for the next IGMP message (mld false: the IPv4 payload)
	// or MLD message (mld true: the ICMPv6 message), with the packet's IP
	// source and destination. It returns an error once closed.
	Read(b []byte) (n int, src, dst netip.Addr, mld bool, err error)
	// Query sends a membership query on the interface: a general query
	// (IGMP and MLD) when group is invalid, else a group-specific one.
	Query(group netip.Addr) error
	// Close makes Read return.
	Close() error
}

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
	t       *timer
}

// receivers is the ETR's receiver learning (RFC 3376 §6, RFC 3810 §7, as
// a multicast router keeps it, simplified to what LISP can signal: per
// interface, (*,G) for exclude-mode groups and (S,G) for included
// sources, each with a timer).
type receivers struct {
	m      *mcast
	ls     []MembershipListener
	states map[rxKey]*rxState
	count  map[sgKey]int
	memb   wire.Membership
	done   chan struct{}
}

func newReceivers(m *mcast) *receivers {
	return &receivers{m: m, ls: m.cfg.Listeners, states: map[rxKey]*rxState{}, count: map[sgKey]int{}, done: make(chan struct{})}
}

// start runs on the engine goroutine: it starts a reader per listener and
// the general queries.
func (r *receivers) start() {
	e := r.m.e
	if r.ls == nil {
		for _, si := range r.m.cfg.SiteInterfaces {
			l, err := OpenMembershipListener(si)
			if err != nil {
				e.log.Error("cannot listen for IGMP/MLD", "interface", si.Name, "err", err)
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
					e.log.Debug("general query failed", "interface", l.Interface().Name, "err", err)
				}
			}
			e.timers.schedule(now.Add(r.m.cfg.QueryInterval), q)
		}
		e.timers.schedule(e.now, q)
	}
}

func (r *receivers) stop() {
	close(r.done)
	for _, l := range r.ls {
		_ = l.Close()
	}
}

// read passes one listener's messages to the engine goroutine.
func (r *receivers) read(l MembershipListener) {
	e := r.m.e
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
			if errors.Is(err, ErrClosed) {
				return
			}
			e.log.Warn("IGMP/MLD listener stopped", "interface", si.Name, "err", err)
			return
		}
		msg := append([]byte(nil), buf[:n]...)
		if e.do(func() { r.onMessage(si, msg, src, dst, mld) }) != nil {
			return
		}
	}
}

// onMessage handles one IGMP or MLD message heard on si.
func (r *receivers) onMessage(si SiteInterface, b []byte, src, dst netip.Addr, mld bool) {
	m := r.m
	var err error
	if mld {
		err = r.memb.ParseMLD(b, src, dst)
	} else {
		err = r.memb.ParseIGMP(b)
	}
	if err != nil {
		m.stats.BadReports++
		m.e.log.Debug("bad IGMP/MLD message", "interface", si.Name, "src", src, "err", err)
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

func (k rxKey) sg() sgKey {
	g := netip.PrefixFrom(k.group, k.group.BitLen())
	if !k.src.IsValid() {
		return newSGKey(k.iid, netip.Prefix{}, g)
	}
	return newSGKey(k.iid, netip.PrefixFrom(k.src, k.src.BitLen()), g)
}

// refresh (re)starts a membership for the Group Membership Interval.
func (r *receivers) refresh(k rxKey) {
	e := r.m.e
	if k.src.IsValid() && k.src.Is4() != k.group.Is4() {
		return
	}
	at := e.now.Add(r.m.cfg.MembershipInterval)
	st := r.states[k]
	if st != nil {
		st.expires = at
		e.timers.reset(st.t, at)
		return
	}
	st = &rxState{expires: at}
	st.t = e.timers.schedule(at, func(now time.Time) { r.expire(k, st, now) })
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
	e := r.m.e
	st := r.states[k]
	if st == nil {
		return
	}
	if r.m.cfg.FastLeave {
		r.remove(k, st)
		return
	}
	at := e.now.Add(r.m.cfg.LastMemberQueryTime)
	if at.Before(st.expires) {
		st.expires = at
		e.timers.reset(st.t, at)
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
		r.m.e.timers.reset(st.t, st.expires)
		return
	}
	r.remove(k, st)
}

func (r *receivers) remove(k rxKey, st *rxState) {
	r.m.e.timers.stop(st.t)
	delete(r.states, k)
	sk := k.sg()
	r.count[sk]--
	if r.count[sk] <= 0 {
		delete(r.count, sk)
		r.m.leaveLocal(sk)
	}
}

// ReceiverGroup is an (S,G), or with Source invalid a (*,G), that has
// receivers on a site interface of instance-ID IID.
type ReceiverGroup struct {
	IID    uint32
	Source netip.Addr
	Group  netip.Addr
}

// publishReceivers tells MulticastConfig.ReceiverGroups the groups with
// receivers now.
func (m *mcast) publishReceivers() {
	if m.cfg.ReceiverGroups == nil {
		return
	}
	gs := make([]ReceiverGroup, 0, len(m.local))
	for k, l := range m.local {
		if l.receivers {
			gs = append(gs, ReceiverGroup{IID: k.iid, Source: k.srcAddr(), Group: k.group.Addr()})
		}
	}
	m.cfg.ReceiverGroups(gs)
}

// joinLocal starts registering an (S,G) the first receiver joined.
func (m *mcast) joinLocal(k sgKey) {
	m.stats.Joins++
	l := m.localFor(k)
	l.receivers = true
	m.publishReceivers()
	m.e.log.Info("receivers joined", "sg", k.String())
	if m.cfg.Underlay != nil && !l.ug.Group.IsValid() {
		m.chooseUnderlay(l)
	}
	m.register(l, false)
}

// leaveLocal withdraws an (S,G) the last receiver left.
func (m *mcast) leaveLocal(k sgKey) {
	m.stats.Leaves++
	l := m.local[k]
	if l == nil {
		return
	}
	l.receivers = false
	m.publishReceivers()
	m.e.log.Info("receivers left", "sg", k.String())
	if !l.rtr {
		m.drop(l)
	}
}

// Membership is one receiver membership learned on a site interface.
type Membership struct {
	// Interface is the site interface.
	Interface string
	// IID is its instance-ID.
	IID uint32
	// Source is the source, invalid for (*,G).
	Source netip.Addr
	// Group is the group.
	Group netip.Addr
	// Expires is when it times out without a report.
	Expires time.Time
}

// Memberships lists the receiver memberships the ETR has learned.
func (e *Engine) Memberships() []Membership {
	var out []Membership
	_ = e.do(func() {
		if e.mc == nil || e.mc.rx == nil {
			return
		}
		for k, st := range e.mc.rx.states {
			out = append(out, Membership{Interface: k.ifname, IID: k.iid, Source: k.src, Group: k.group, Expires: st.expires})
		}
	})
	return out
}

package mcast

import (
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/request"

	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/wire"
)

// Overlay group to underlay group (draft-ietf-lisp-group-mapping): an ETR
// on a multicast-capable underlay picks the G-RLOC of an overlay (S,G) by
// hash or by a mapping-system lookup of group-<G-EID>, registers it in its
// RLE entry (with its U-RLOC when RegisterURLOC is set) and joins the
// underlay group on its core interface.

// chooseUnderlay picks l's underlay group: at once with the hash method,
// after the reply with the lookup method (the registration waits for it).
func (m *Mcast) chooseUnderlay(l *sgLocal) {
	u := m.cfg.Underlay
	switch u.Method {
	case slowpath.UnderlayHash:
		g, err := replicate.HashGroup(l.key.SrcAddr(), l.key.Group.Addr(), u.Range)
		if err != nil {
			m.c.Log().Warn("cannot hash an underlay group", "sg", l.key.String(), "err", err)
			return
		}
		m.useUnderlay(l, replicate.UnderlayGroup{Group: g})
	case slowpath.UnderlayLookup:
		l.ugPending = true
		m.lookup(l)
	}
}

// lookup sends the group-name Map-Request for l (RFC 9301 §5.8 ECM to a
// Map-Resolver, the next one on each retry); after Retries unanswered
// retransmissions the ETR registers its unicast RLOC instead.
func (m *Mcast) lookup(l *sgLocal) {
	u := m.cfg.Underlay
	req := &wire.MapRequest{
		Nonce:    m.lk.NewNonce(),
		ITRRLOCs: []wire.Address{wire.IPAddress(m.cfg.RLOC)},
		Records:  []wire.EIDRecord{{EID: replicate.GroupNameEID(u.LookupIID, l.key.Group.Addr())}},
	}
	m.lk.Cancel(l.lookup)
	l.lookup = nil
	if m.ask(m.lk, req, u.MapResolvers, m.cfg.RLOC, l, m.lookupDone) {
		l.lookup = m.lk.Lookup(req.Nonce)
	}
}

// lookupDone runs when a group-name lookup ends; unanswered, the ETR
// registers its unicast RLOC.
func (m *Mcast) lookupDone(q *request.Request, o request.Outcome) {
	l := q.Value().(*sgLocal)
	if l.lookup == q {
		l.lookup = nil
	}
	if o != request.GaveUp || m.local[l.key] != l || !l.ugPending {
		return
	}
	m.c.Log().Warn("group-name lookup unanswered; registering the unicast RLOC", "sg", l.key.String())
	l.ugPending = false
	m.register(l, false)
}

// onLookupReply takes the G-RLOC from the reply to a group-name lookup.
func (m *Mcast) onLookupReply(l *sgLocal, src netip.AddrPort, rep *wire.MapReply) {
	if m.local[l.key] != l {
		return
	}
	l.ugPending = false
	for i := range rep.Records {
		gm, err := replicate.ParseGroupRecord(&rep.Records[i])
		if err != nil {
			m.c.Log().Warn("bad group-name reply", "sg", l.key.String(), "from", src, "err", err)
			continue
		}
		if ug, ok := gm.Pick(l.key.SrcAddr(), l.key.Group.Addr()); ok {
			m.useUnderlay(l, ug)
			break
		}
	}
	if !l.ug.Group.IsValid() {
		m.c.Log().Warn("no underlay group for overlay group; registering the unicast RLOC", "sg", l.key.String())
	}
	m.register(l, false)
}

// useUnderlay records l's underlay group and joins it on the core side.
func (m *Mcast) useUnderlay(l *sgLocal, ug replicate.UnderlayGroup) {
	l.ug = ug
	m.underlay[ug]++
	if m.underlay[ug] == 1 && m.cfg.Underlay.Joiner != nil {
		if err := m.cfg.Underlay.Joiner.Join(ug.Group, ug.Source); err != nil {
			m.c.Log().Warn("cannot join underlay group", "group", ug.Group, "source", ug.Source, "err", err)
		}
	}
	m.c.Log().Info("underlay group chosen", "sg", l.key.String(), "g_rloc", ug.Group)
}

func (m *Mcast) leaveUnderlay(ug replicate.UnderlayGroup) {
	m.underlay[ug]--
	if m.underlay[ug] > 0 {
		return
	}
	delete(m.underlay, ug)
	if m.cfg.Underlay != nil && m.cfg.Underlay.Joiner != nil {
		_ = m.cfg.Underlay.Joiner.Leave(ug.Group, ug.Source)
	}
}

// UnderlayGroupFor returns the underlay group the ETR registered for an
// (S,G) (src invalid: (*,G)), invalid when none.
// (event loop only).
func (m *Mcast) UnderlayGroupFor(iid uint32, src, group netip.Prefix) netip.Addr {
	if l := m.local[slowpath.NewSGKey(iid, src, group)]; l != nil {
		return l.ug.Group
	}
	return netip.Addr{}
}

// ReceivedOnUnderlayGroup tells the ETR that decapsulated multicast traffic
// arrived with the underlay group g as outer destination (the fast path
// tells it about once a second while such traffic lasts). When the ETR
// registered both a G-RLOC and its U-RLOC, it then leaves (S,G)
// RLOC-probes on the U-RLOC unanswered for UnderlayConfig.SuppressHold, so
// that ITRs on the multicast underlay stop sending it unicast copies too
// (duplicate suppression); without news for that long it answers them
// again. Safe to call from any goroutine; it does not block or allocate.
func (m *Mcast) ReceivedOnUnderlayGroup(g netip.Addr) {
	if m.cfg.Underlay == nil || !m.cfg.Underlay.RegisterURLOC || !g.IsMulticast() {
		return
	}
	m.heardUnderlay(time.Since(m.ugEpoch))
}

// heardUnderlay records G-RLOC traffic at at (time since ugEpoch).
func (m *Mcast) heardUnderlay(at time.Duration) {
	m.ugHeard.Store(int64(max(at, 1))) // 0 is "never"
}

// suppressedAt reports whether the U-RLOC leaves (S,G) probes unanswered
// at now (time since ugEpoch): G-RLOC traffic was heard within
// SuppressHold. A report newer than now (stored by another goroutine after
// now was read) counts as fresh.
func (m *Mcast) suppressedAt(now time.Duration) bool {
	u := m.cfg.Underlay
	if u == nil || !u.RegisterURLOC {
		return false
	}
	h := m.ugHeard.Load()
	return h != 0 && now-time.Duration(h) <= u.SuppressHold
}

// probeSuppressed is suppressedAt for the engine's clock; it runs on the
// engine goroutine (for each (S,G) probe) and logs when suppression starts
// and when it ends.
func (m *Mcast) probeSuppressed() bool {
	on := m.suppressedAt(m.c.Now().Sub(m.ugEpoch))
	if on != m.suppressing {
		m.suppressing = on
		if on {
			m.c.Log().Info("receiving through the underlay group: leaving (S,G) probes on the U-RLOC unanswered",
				"rloc", m.cfg.RLOC, "hold", m.cfg.Underlay.SuppressHold)
		} else {
			m.c.Log().Info("no underlay group traffic within the hold: answering (S,G) probes on the U-RLOC again",
				"rloc", m.cfg.RLOC, "hold", m.cfg.Underlay.SuppressHold)
		}
	}
	return on
}

// ProbeSuppressed reports whether the U-RLOC currently leaves (S,G)
// RLOC-probes unanswered: the ETR registered its U-RLOC with a G-RLOC and
// heard of G-RLOC traffic within UnderlayConfig.SuppressHold.
func (m *Mcast) ProbeSuppressed() bool {
	return m.suppressedAt(time.Since(m.ugEpoch))
}

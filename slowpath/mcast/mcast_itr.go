package mcast

import (
	"net/netip"
	"slices"
	"time"

	"github.com/rloc-router/rloc/fastpath"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/request"

	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/wire"
)

// sgRes is one (S,G) Map-Request in flight from the ITR; the tracker
// retransmits it.
type sgRes struct {
	key   slowpath.SGKey
	start time.Time
}

// itrSG is an (S,G) mapping the ITR installed: kept fresh so that the
// Map-Server keeps it subscribed (RFC 8378 §5).
type itrSG struct {
	rle     []replicate.Entry
	ttl     time.Duration
	refresh *slowpath.Timer
	// U-RLOCs of an RLE that also has underlay groups are RLOC-probed;
	// those that stop answering (an ETR receiving through the G-RLOC,
	// draft-ietf-lisp-group-mapping) are left out of what is installed.
	probe map[netip.Addr]*urlocProbe
}

type urlocProbe struct {
	out    bool
	misses int
	down   bool
}

// itrProbe is an (S,G) RLOC-probe of an RLE entry in flight.
type itrProbe struct {
	key  slowpath.SGKey
	addr netip.Addr
}

// onMiss resolves a fast-path miss for a multicast destination: a
// Map-Request for (S,G) (RFC 8378 §5: the ITR asks the mapping system for
// (S-EID,G-EID); the Map-Server answers with the merged RLE and keeps the
// ITR subscribed to changes).
// It leaves misses for unicast destinations to the ITR.
func (m *Mcast) onMiss(ev fastpath.MissEvent, at time.Time) bool {
	g := ev.Dst.Unmap()
	if !g.IsMulticast() {
		return false
	}
	s := ev.Src.Unmap()
	if !s.IsValid() || s.Is4() != g.Is4() {
		return true
	}
	k := slowpath.NewSGKey(ev.IID, netip.PrefixFrom(s, s.BitLen()), netip.PrefixFrom(g, g.BitLen()))
	if m.byKey[k] != nil {
		return true
	}
	if _, ok := m.itrMaps[k]; ok {
		return true // installed already (a miss raced the install)
	}
	start := at
	if start.IsZero() || start.After(m.c.Now()) {
		start = m.c.Now()
	}
	m.resolve(k, start)
	return true
}

// resolve sends the (S,G) Map-Request in an ECM to the Map-Resolvers in
// turn (RFC 9301 §5.8); the EID record is the multicast-info LCAF
// (RFC 8060 §4.5), the source EID the S-EID.
func (m *Mcast) resolve(k slowpath.SGKey, start time.Time) {
	n := m.res.NewNonce()
	req := &wire.MapRequest{
		Nonce:    n,
		ITRRLOCs: m.itrRLOCs,
		Records:  []wire.EIDRecord{{MaskLen: uint8(k.Group.Bits()), EID: k.Address()}},
	}
	if !k.Star() {
		req.SourceEID = slowpath.EIDAddress(k.IID, k.Src.Addr())
	}
	r := &sgRes{key: k, start: start}
	if m.ask(m.res, req, m.itr.MapResolvers, k.Group.Addr(), r, m.resDone) {
		m.byKey[k] = r
	}
}

// resDone runs when an (S,G) resolution ends.
func (m *Mcast) resDone(q *request.Request, o request.Outcome) {
	r := q.Value().(*sgRes)
	if m.byKey[r.key] == r {
		delete(m.byKey, r.key)
	}
	if o == request.GaveUp {
		m.c.Log().Warn("(S,G) Map-Request unanswered", "sg", r.key.String(), "tries", q.Tries())
	}
}

// ask sends req in an ECM whose inner destination is inner to the
// Map-Resolvers mrs in turn, retransmitted by tr; v is the request's
// context, done its end. It reports whether the request started.
func (m *Mcast) ask(tr *request.Tracker, req *wire.MapRequest, mrs []netip.AddrPort, inner netip.Addr, v any, done func(*request.Request, request.Outcome)) bool {
	msg, err := req.Append(m.wbuf2[:0])
	if err != nil {
		m.c.Msg(wire.TypeMapRequest).SendErrors++
		return false
	}
	m.wbuf2 = msg
	src := netip.IPv4Unspecified()
	if inner.Is6() {
		src = netip.IPv6Unspecified()
	}
	spec := request.Spec{Type: wire.TypeMapRequest, Targets: mrs, ECM: true,
		InnerSrc: slowpath.InnerSource(req, src, inner), InnerDst: inner, Value: v, Done: done}
	_, err = tr.Start(&spec, req.Nonce, msg)
	return err == nil
}

// installITR gives an (S,G) mapping to the installer and keeps it
// subscribed: it is re-requested before the Map-Server's subscription
// window or the TTL runs out, whichever is first.
func (m *Mcast) installITR(k slowpath.SGKey, ttl time.Duration, es []replicate.Entry) {
	if m.inst == nil {
		return
	}
	ent := m.itrMaps[k]
	if ent == nil {
		ent = &itrSG{}
		m.itrMaps[k] = ent
	}
	ent.rle = slices.Clone(es)
	ent.ttl = ttl
	m.setProbed(ent)
	m.installActive(k, ent)
	if m.itr == nil {
		return
	}
	every := min(ttl, m.cfg.SubscribeWindow) / 2
	if ttl <= 0 {
		every = m.cfg.SubscribeWindow / 2
	}
	at := m.c.Now().Add(max(every, time.Second))
	if ent.refresh == nil {
		ent.refresh = m.c.Schedule(at, func(time.Time) {
			if m.itrMaps[k] == ent && m.byKey[k] == nil {
				m.resolve(k, m.c.Now())
			}
		})
	} else {
		ent.refresh.Reset(at)
	}
}

// setProbed picks the entries of ent's RLE to probe: its unicast entries
// when the RLE also holds an underlay group.
func (m *Mcast) setProbed(ent *itrSG) {
	hasGroup := slices.ContainsFunc(ent.rle, func(x replicate.Entry) bool { return x.Addr.IsMulticast() })
	old := ent.probe
	ent.probe = nil
	if !hasGroup {
		return
	}
	ent.probe = map[netip.Addr]*urlocProbe{}
	for _, x := range ent.rle {
		if !x.Addr.IsMulticast() {
			if p := old[x.Addr]; p != nil {
				ent.probe[x.Addr] = p
			} else {
				ent.probe[x.Addr] = &urlocProbe{}
			}
		}
	}
}

// installActive installs ent's RLE without the U-RLOCs found down.
func (m *Mcast) installActive(k slowpath.SGKey, ent *itrSG) {
	rle := ent.rle
	if len(ent.probe) > 0 {
		rle = slices.DeleteFunc(slices.Clone(ent.rle), func(x replicate.Entry) bool {
			p := ent.probe[x.Addr]
			return p != nil && p.down
		})
	}
	m.inst.InstallMulticast(&slowpath.ResolvedMulticast{IID: k.IID, Source: k.Src, Group: k.Group, TTL: ent.ttl, RLE: rle})
	m.stats.Installs++
}

// probeRLEs RLOC-probes the probed U-RLOCs of the installed (S,G)s and
// re-installs an RLE when one goes down or comes back.
func (m *Mcast) probeRLEs() {
	m.newProbeRound(&m.itrOut)
	for k, ent := range m.itrMaps {
		changed := false
		for a, p := range ent.probe {
			if p.out {
				p.misses++
				if p.misses >= m.cfg.ProbeMisses && !p.down {
					p.down, changed = true, true
					m.stats.URLOCsDown++
					m.c.Log().Info("U-RLOC stopped answering (S,G) probes; not replicating to it", "sg", k.String(), "rloc", a)
				}
			}
			n := m.probe.NewNonce()
			req := wire.MapRequest{Probe: true, Nonce: n, ITRRLOCs: m.itrRLOCs,
				Records: []wire.EIDRecord{{MaskLen: uint8(k.Group.Bits()), EID: k.Address()}}}
			b, err := req.Append(m.wbuf[:0])
			if err != nil {
				continue
			}
			m.wbuf = b
			if m.sendProbe(&m.itrOut, a, n, b, itrProbe{k, a}) {
				p.out = true
			}
		}
		if changed {
			m.installActive(k, ent)
		}
	}
}

// itrProbeAnswered handles the reply to an RLE entry probe.
func (m *Mcast) itrProbeAnswered(p itrProbe) {
	ent := m.itrMaps[p.key]
	if ent == nil {
		return
	}
	st := ent.probe[p.addr]
	if st == nil {
		return
	}
	st.out, st.misses = false, 0
	if st.down {
		st.down = false
		m.c.Log().Info("U-RLOC answers (S,G) probes again", "sg", p.key.String(), "rloc", p.addr)
		m.installActive(p.key, ent)
	}
}

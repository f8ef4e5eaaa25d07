package slowpath

import (
	"net/netip"
	"slices"
	"time"

	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/wire"
)

// sgRes is one (S,G) Map-Request in flight from the ITR.
type sgRes struct {
	key   sgKey
	nonce wire.Nonce
	tries int
	mr    int
	start time.Time
	t     *timer
}

// itrSG is an (S,G) mapping the ITR installed: kept fresh so that the
// Map-Server keeps it subscribed (RFC 8378 §5).
type itrSG struct {
	rle     []replicate.Entry
	ttl     time.Duration
	refresh *timer
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
	key  sgKey
	addr netip.Addr
}

// onMiss resolves a fast-path miss for a multicast destination: a
// Map-Request for (S,G) (RFC 8378 §5: the ITR asks the mapping system for
// (S-EID,G-EID); the Map-Server answers with the merged RLE and keeps the
// ITR subscribed to changes).
func (m *mcast) onMiss(ev MissEvent) {
	g := ev.Dst.Unmap()
	s := ev.Src.Unmap()
	if !g.IsMulticast() || !s.IsValid() || s.Is4() != g.Is4() {
		return
	}
	k := newSGKey(ev.IID, netip.PrefixFrom(s, s.BitLen()), netip.PrefixFrom(g, g.BitLen()))
	if m.byKey[k] != nil {
		return
	}
	if _, ok := m.itrMaps[k]; ok {
		return // installed already (a miss raced the install)
	}
	start := ev.Time
	if start.IsZero() || start.After(m.e.now) {
		start = m.e.now
	}
	m.resolve(k, start)
}

func (m *mcast) resolve(k sgKey, start time.Time) {
	r := &sgRes{key: k, nonce: newNonce(), start: start}
	m.pending[r.nonce] = r
	m.byKey[k] = r
	m.sendRes(r)
	r.t = m.e.timers.schedule(m.e.now.Add(m.e.cfg.ITR.RetransmitInterval), func(time.Time) { m.retransmitRes(r) })
}

// sendRes sends the (S,G) Map-Request in an ECM to a Map-Resolver
// (RFC 9301 §5.8); the EID record is the multicast-info LCAF (RFC 8060
// §4.5), the source EID the S-EID.
func (m *mcast) sendRes(r *sgRes) {
	e := m.e
	it := e.itr
	req := &wire.MapRequest{
		Nonce:    r.nonce,
		ITRRLOCs: it.itrRLOCs,
		Records:  []wire.EIDRecord{{MaskLen: uint8(r.key.group.Bits()), EID: r.key.address()}},
	}
	if !r.key.star() {
		req.SourceEID = eidAddress(r.key.iid, r.key.src.Addr())
	}
	m.sendECM(req, e.cfg.ITR.MapResolvers[r.mr%len(e.cfg.ITR.MapResolvers)], r.key.group.Addr())
}

// sendECM sends a Map-Request in an ECM to mr; inner is the inner
// destination address.
func (m *mcast) sendECM(req *wire.MapRequest, mr netip.AddrPort, inner netip.Addr) {
	e := m.e
	msg, err := req.Append(nil)
	if err != nil {
		e.stats.Msgs[wire.TypeMapRequest].SendErrors++
		return
	}
	s := e.sock4
	if mr.Addr().Unmap().Is6() {
		s = e.sock6
	}
	if s == nil {
		e.stats.Msgs[wire.TypeECM].SendErrors++
		return
	}
	src := netip.IPv4Unspecified()
	if inner.Is6() {
		src = netip.IPv6Unspecified()
	}
	for _, a := range req.ITRRLOCs {
		if (a.AFI == wire.AFIIPv4 || a.AFI == wire.AFIIPv6) && a.IP.Is4() == inner.Is4() {
			src = a.IP
			break
		}
	}
	ecm := wire.ECM{Src: src, Dst: inner, SrcPort: s.local.Port(), DstPort: wire.ControlPort, TTL: 64, Message: msg}
	b, err := ecm.Append(e.wbuf2[:0])
	if err != nil {
		e.stats.Msgs[wire.TypeECM].SendErrors++
		return
	}
	e.wbuf2 = b
	e.send(mr, b, wire.TypeECM)
	e.stats.Msgs[wire.TypeMapRequest].Sent++
}

func (m *mcast) retransmitRes(r *sgRes) {
	e := m.e
	if m.pending[r.nonce] != r {
		return
	}
	r.tries++
	if r.tries >= e.cfg.ITR.MaxTries {
		m.finishRes(r)
		e.stats.ResolveTimeouts++
		e.log.Warn("(S,G) Map-Request unanswered", "sg", r.key.String(), "tries", r.tries)
		return
	}
	r.mr++
	e.stats.Retransmits++
	m.sendRes(r)
	e.timers.reset(r.t, e.now.Add(e.cfg.ITR.RetransmitInterval<<r.tries))
}

func (m *mcast) finishRes(r *sgRes) {
	delete(m.pending, r.nonce)
	if m.byKey[r.key] == r {
		delete(m.byKey, r.key)
	}
	m.e.timers.stop(r.t)
}

// installITR gives an (S,G) mapping to the installer and keeps it
// subscribed: it is re-requested before the Map-Server's subscription
// window or the TTL runs out, whichever is first.
func (m *mcast) installITR(k sgKey, ttl time.Duration, es []replicate.Entry) {
	e := m.e
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
	if e.itr == nil {
		return
	}
	every := min(ttl, m.cfg.SubscribeWindow) / 2
	if ttl <= 0 {
		every = m.cfg.SubscribeWindow / 2
	}
	at := e.now.Add(max(every, time.Second))
	if ent.refresh == nil {
		ent.refresh = e.timers.schedule(at, func(time.Time) {
			if m.itrMaps[k] == ent && m.byKey[k] == nil {
				m.resolve(k, e.now)
			}
		})
	} else {
		e.timers.reset(ent.refresh, at)
	}
}

// setProbed picks the entries of ent's RLE to probe: its unicast entries
// when the RLE also holds an underlay group.
func (m *mcast) setProbed(ent *itrSG) {
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
func (m *mcast) installActive(k sgKey, ent *itrSG) {
	rle := ent.rle
	if len(ent.probe) > 0 {
		rle = slices.DeleteFunc(slices.Clone(ent.rle), func(x replicate.Entry) bool {
			p := ent.probe[x.Addr]
			return p != nil && p.down
		})
	}
	m.inst.InstallMulticast(&ResolvedMulticast{IID: k.iid, Source: k.src, Group: k.group, TTL: ent.ttl, RLE: rle})
	m.stats.Installs++
}

// probeRLEs RLOC-probes the probed U-RLOCs of the installed (S,G)s and
// re-installs an RLE when one goes down or comes back.
func (m *mcast) probeRLEs() {
	e := m.e
	clear(m.itrProbes)
	for k, ent := range m.itrMaps {
		changed := false
		for a, p := range ent.probe {
			if p.out {
				p.misses++
				if p.misses >= m.cfg.ProbeMisses && !p.down {
					p.down, changed = true, true
					m.stats.URLOCsDown++
					e.log.Info("U-RLOC stopped answering (S,G) probes; not replicating to it", "sg", k.String(), "rloc", a)
				}
			}
			n := newNonce()
			req := wire.MapRequest{Probe: true, Nonce: n, ITRRLOCs: e.itr.itrRLOCs,
				Records: []wire.EIDRecord{{MaskLen: uint8(k.group.Bits()), EID: k.address()}}}
			b, err := req.Append(e.wbuf[:0])
			if err != nil {
				continue
			}
			e.wbuf = b
			m.itrProbes[n] = itrProbe{k, a}
			p.out = true
			m.sendCtl(a, b, wire.TypeMapRequest)
			e.stats.ProbesSent++
		}
		if changed {
			m.installActive(k, ent)
		}
	}
}

// itrProbeAnswered handles the reply to an RLE entry probe.
func (m *mcast) itrProbeAnswered(p itrProbe) {
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
		m.e.log.Info("U-RLOC answers (S,G) probes again", "sg", p.key.String(), "rloc", p.addr)
		m.installActive(p.key, ent)
	}
}

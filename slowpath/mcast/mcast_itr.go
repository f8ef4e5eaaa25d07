package mcast

import (
	"net/netip"
	"slices"
	"time"

	"github.com/rloc-router/rloc/slowpath"

	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/wire"
)

// sgRes is one (S,G) Map-Request in flight from the ITR.
type sgRes struct {
	key   slowpath.SGKey
	nonce wire.Nonce
	tries int
	mr    int
	start time.Time
	t     *slowpath.Timer
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
func (m *Mcast) onMiss(ev slowpath.MissEvent) bool {
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
	start := ev.Time
	if start.IsZero() || start.After(m.c.Now()) {
		start = m.c.Now()
	}
	m.resolve(k, start)
	return true
}

func (m *Mcast) resolve(k slowpath.SGKey, start time.Time) {
	r := &sgRes{key: k, nonce: slowpath.NewNonce(), start: start}
	m.pending[r.nonce] = r
	m.byKey[k] = r
	m.sendRes(r)
	r.t = m.c.Schedule(m.c.Now().Add(m.itr.RetransmitInterval), func(time.Time) { m.retransmitRes(r) })
}

// sendRes sends the (S,G) Map-Request in an ECM to a Map-Resolver
// (RFC 9301 §5.8); the EID record is the multicast-info LCAF (RFC 8060
// §4.5), the source EID the S-EID.
func (m *Mcast) sendRes(r *sgRes) {
	req := &wire.MapRequest{
		Nonce:    r.nonce,
		ITRRLOCs: m.itrRLOCs,
		Records:  []wire.EIDRecord{{MaskLen: uint8(r.key.Group.Bits()), EID: r.key.Address()}},
	}
	if !r.key.Star() {
		req.SourceEID = slowpath.EIDAddress(r.key.IID, r.key.Src.Addr())
	}
	m.sendECM(req, m.itr.MapResolvers[r.mr%len(m.itr.MapResolvers)], r.key.Group.Addr())
}

// sendECM sends a Map-Request in an ECM to mr; inner is the inner
// destination address.
func (m *Mcast) sendECM(req *wire.MapRequest, mr netip.AddrPort, inner netip.Addr) {
	msg, err := req.Append(nil)
	if err != nil {
		m.c.Msg(wire.TypeMapRequest).SendErrors++
		return
	}
	port, ok := m.c.LocalPort(mr)
	if !ok {
		m.c.Msg(wire.TypeECM).SendErrors++
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
	ecm := wire.ECM{Src: src, Dst: inner, SrcPort: port, DstPort: wire.ControlPort, TTL: 64, Message: msg}
	b, err := ecm.Append(m.wbuf2[:0])
	if err != nil {
		m.c.Msg(wire.TypeECM).SendErrors++
		return
	}
	m.wbuf2 = b
	m.c.Send(mr, b, wire.TypeECM)
	m.c.Msg(wire.TypeMapRequest).Sent++
}

func (m *Mcast) retransmitRes(r *sgRes) {
	if m.pending[r.nonce] != r {
		return
	}
	r.tries++
	if r.tries >= m.itr.MaxTries {
		m.finishRes(r)
		m.ustats.ResolveTimeouts++
		m.c.Log().Warn("(S,G) Map-Request unanswered", "sg", r.key.String(), "tries", r.tries)
		return
	}
	r.mr++
	m.ustats.Retransmits++
	m.sendRes(r)
	r.t.Reset(m.c.Now().Add(m.itr.RetransmitInterval << r.tries))
}

func (m *Mcast) finishRes(r *sgRes) {
	delete(m.pending, r.nonce)
	if m.byKey[r.key] == r {
		delete(m.byKey, r.key)
	}
	r.t.Stop()
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
	clear(m.itrProbes)
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
			n := slowpath.NewNonce()
			req := wire.MapRequest{Probe: true, Nonce: n, ITRRLOCs: m.itrRLOCs,
				Records: []wire.EIDRecord{{MaskLen: uint8(k.Group.Bits()), EID: k.Address()}}}
			b, err := req.Append(m.wbuf[:0])
			if err != nil {
				continue
			}
			m.wbuf = b
			m.itrProbes[n] = itrProbe{k, a}
			p.out = true
			m.sendCtl(a, b, wire.TypeMapRequest)
			m.ustats.ProbesSent++
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

// Package xtr is the tunnel router role (RFC 9301 §6): the ETR registers
// its database mappings, answers Map-Requests and RLOC-probes for them and
// sends SMRs when they change; the ITR resolves the fast path's misses
// through the Map-Resolvers (request.Tracker), refreshes active mappings,
// follows SMRs and probes RLOCs.
package xtr

import (
	"net/netip"
	"slices"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/slowpath/request"

	"github.com/rloc-router/rloc/wire"
)

// maxRecentITRs bounds the ITRs an ETR remembers for SMRs.
const maxRecentITRs = 4096

// ETR is the ETR role (RFC 9301 §6): it registers its database mappings
// with Map-Servers, answers Map-Requests and RLOC-probes for them, and
// solicits Map-Requests (SMR) from ITRs when they change.
type ETR struct {
	c     *slowpath.Core
	tr    *request.Tracker // rounds of Map-Registers
	stats slowpath.Stats
	wbuf  []byte
	rep   wire.MapReply
	// ecmAll: answer every ECM Map-Request, not only those with the E bit
	// (there is no Map-Server or Map-Resolver on this router).
	ecmAll bool
	cfg    *slowpath.ETRConfig
	maps   []slowpath.Mapping
	recs   []wire.Record
	peers  []*msPeer
	itrs   map[netip.AddrPort]time.Time
	locs   []wire.Locator
	sec    etrSec   // LISP-SEC state of the request being answered (lispsec.go)
	secMAC [32]byte // the PKT HMAC's place while signing
}

// msPeer is the registration state with one Map-Server.
type msPeer struct {
	cfg    slowpath.MapServerPeer
	key    [1]regstore.Key  // cfg.Key, to sign and to verify its Map-Notifies
	round  *request.Request // the Map-Registers awaiting a Map-Notify
	period *slowpath.Timer
	// sent is set once a round asking for a Map-Notify went out, confirmed
	// when its Map-Notify verified; warned once the lack of one was
	// logged, until the next confirmation.
	sent, confirmed, warned bool
	// discovered: learned through discovery (etr_discovered.go), removed
	// when it leaves the discovered set.
	discovered bool
}

// NewETR builds the ETR role of cfg (defaults applied) on c and registers
// its handlers: Map-Requests and RLOC-probes for its EIDs, Map-Requests in
// an ECM (those with the E bit, or all of them when ecmAll is set because
// no Map-Server or Map-Resolver runs here) and Map-Notifies. It registers
// with its Map-Servers from the start, and deregisters on stop when
// configured to.
func NewETR(c *slowpath.Core, cfg *slowpath.ETRConfig, ecmAll bool) *ETR {
	t := &ETR{c: c, cfg: cfg, ecmAll: ecmAll, itrs: map[netip.AddrPort]time.Time{}}
	t.tr = request.New(c.Clock(), c, request.Config{Interval: cfg.RetryInterval, MaxTries: cfg.Retries + 1})
	t.setMappings(cfg.Mappings)
	for _, p := range cfg.MapServers {
		t.peers = append(t.peers, &msPeer{cfg: p, key: [1]regstore.Key{p.Key.RegKey()}})
	}
	c.Handle(slowpath.RouteMapRequest, t.onRequest)
	c.Handle(slowpath.RouteProbe, t.onRequest)
	c.Handle(slowpath.RouteECM, t.onECM)
	c.Handle(slowpath.RouteMapNotify, t.onMapNotify)
	c.OnStart(t.start)
	if cfg.DeregisterOnStop {
		c.OnStop(t.deregister)
	}
	return t
}

// Stats returns the ETR's counters (event loop only).
func (t *ETR) Stats() slowpath.Stats {
	s := t.stats
	s.RegisterRetries += t.tr.Stats().Retransmits
	return s
}

// onRequest answers a plain Map-Request or RLOC-probe for one of the
// ETR's EIDs; it leaves the others to the next handler.
func (t *ETR) onRequest(m *slowpath.Msg) bool {
	if !t.serves(m.Request) {
		return false
	}
	var local netip.Addr
	if m.Request.Probe {
		local = m.Local()
	}
	t.answer(m.Port, m.Src, m.Request, local, nil)
	return true
}

// onECM answers a Map-Request a Map-Server forwarded in an ECM
// (RFC 9301 §5.8, the E bit).
func (t *ETR) onECM(m *slowpath.Msg) bool {
	if !m.ECM.ToETR && !t.ecmAll {
		return false
	}
	if !t.serves(m.Request) {
		t.c.Msg(wire.TypeMapRequest).Ignored++
		return true
	}
	sec, ok := t.secFromECM(m.ECM, m.Src, m.Request.Nonce)
	if !ok {
		t.c.Msg(wire.TypeMapRequest).Rejected++
		return true
	}
	t.answer(m.Port, m.Src, m.Request, netip.Addr{}, sec)
	return true
}

func (t *ETR) setMappings(ms []slowpath.Mapping) {
	t.maps = slices.Clone(ms)
	t.recs = t.recs[:0]
	for i := range t.maps {
		t.recs = append(t.recs, mappingRecord(&t.maps[i]))
	}
}

// mappingRecord builds the mapping record of a database mapping.
func mappingRecord(m *slowpath.Mapping) wire.Record {
	ttl := m.TTL
	if ttl == 0 {
		ttl = 24 * time.Hour
	}
	r := wire.Record{
		TTL:           slowpath.TTLMinutes(ttl),
		MaskLen:       uint8(m.Prefix.Bits()),
		EID:           slowpath.EIDAddress(m.IID, m.Prefix.Addr()),
		Authoritative: true,
	}
	for _, l := range m.RLOCs {
		mp, mw := l.MPriority, l.MWeight
		if mp == 0 && mw == 0 {
			mp = 255
		}
		r.Locators = append(r.Locators, wire.Locator{
			Priority: l.Priority, Weight: l.Weight, MPriority: mp, MWeight: mw,
			Reachable: true, Address: wire.IPAddress(l.Addr.Unmap()),
		})
	}
	return r
}

func (t *ETR) start() {
	for _, p := range t.peers {
		p := p
		p.period = t.c.Schedule(t.c.Now(), func(now time.Time) { t.register(p) })
	}
}

// registers encodes the Map-Registers for peer p with nonce n: all records,
// 255 per message (RFC 9301 §5.6), TTL 0 when deregistering.
func (t *ETR) registers(p *msPeer, n wire.Nonce, deregister bool) [][]byte {
	var out [][]byte
	recs := t.recs
	if deregister {
		recs = slices.Clone(recs)
		for i := range recs {
			recs[i].TTL = 0
		}
	}
	for len(recs) > 0 {
		k := min(len(recs), 255)
		m := wire.MapRegister{
			ProxyReply:    t.cfg.ProxyReply,
			WantMapNotify: !t.cfg.NoMapNotify && !deregister,
			Merge:         t.cfg.Merge,
			XTRIDPresent:  t.cfg.XTRID != wire.XTRID{},
			XTRID:         t.cfg.XTRID,
			SiteID:        t.cfg.SiteID,
			Nonce:         n,
			Auth:          wire.NewAuthVariant(p.key[0].KeyID, p.key[0].Variant(nil)),
			Records:       recs[:k],
		}
		b, err := m.AppendSigned(nil, []byte(p.cfg.Key.Secret))
		if err != nil {
			t.c.Log().Error("cannot encode Map-Register", "ms", p.cfg.Addr, "err", err)
			return out
		}
		out = append(out, b)
		recs = recs[k:]
	}
	return out
}

// register sends a round of Map-Registers to p and schedules the next one.
// With Map-Notifies asked for, the round is a request of the tracker: the
// Map-Registers are resent with exponential backoff up to Retries times
// until a verified Map-Notify with their nonce; an unconfirmed round is
// replaced by the next.
func (t *ETR) register(p *msPeer) {
	c := t.c
	p.period.Reset(c.Now().Add(t.cfg.RegisterInterval))
	t.checkConfirmed(p)
	t.tr.Cancel(p.round)
	p.round = nil
	n := t.tr.NewNonce()
	msgs := t.registers(p, n, false)
	if t.cfg.NoMapNotify || len(msgs) == 0 {
		for _, b := range msgs {
			c.Send(p.cfg.Addr, b, wire.TypeMapRegister)
		}
		return
	}
	// MatchSource: a Map-Notify counts only from the Map-Server registered
	// with, whoever else saw the nonce.
	spec := request.Spec{Type: wire.TypeMapRegister, Targets: []netip.AddrPort{p.cfg.Addr}, MatchSource: true, Value: p, Done: t.roundDone}
	p.round, _ = t.tr.Start(&spec, n, msgs...)
	p.sent, p.confirmed = true, false
}

// checkConfirmed runs one register interval after a round was sent: a
// round that no verified Map-Notify confirmed is logged at warn, once
// until a registration is confirmed again, with what was sent so that an
// operator can compare it with the Map-Server's settings.
func (t *ETR) checkConfirmed(p *msPeer) {
	if !p.sent || p.confirmed || p.warned {
		return
	}
	p.warned = true
	k := &p.key[0]
	v := k.Variant(nil)
	t.c.Log().Warn("registration not confirmed: no verified Map-Notify within the register interval",
		"ms", p.cfg.Addr, "key_id", k.KeyID, "alg", v.Alg.String(), "hmac_length", v.Length(),
		"layout", k.Layout.String(), "coverage", v.Coverage(), "interval", t.cfg.RegisterInterval)
}

// roundDone runs when a round of Map-Registers ends: confirmed, given up
// or replaced by the next round unconfirmed.
func (t *ETR) roundDone(q *request.Request, o request.Outcome) {
	p := q.Value().(*msPeer)
	if p.round == q {
		p.round = nil
	}
	switch o {
	case request.Answered:
		t.stats.RegisterNotified++
		p.confirmed = true
		if p.warned {
			p.warned = false
			t.c.Log().Info("registration confirmed", "ms", p.cfg.Addr)
		}
	case request.GaveUp:
		// Logged once per outage by checkConfirmed, at the next interval.
		t.stats.RegisterUnconfirmed++
		t.c.Log().Debug("no Map-Notify from Map-Server", "ms", p.cfg.Addr, "tries", q.Tries())
	default:
		t.stats.RegisterUnconfirmed++
	}
}

// onMapNotify checks a Map-Notify against the pending registers: the nonce
// must match and the authentication verify with that Map-Server's key.
func (t *ETR) onMapNotify(m *slowpath.Msg) bool {
	c := t.c
	st := c.Msg(wire.TypeMapNotify)
	n, err := m.MapNotify()
	if err != nil {
		st.BadParse++
		return true
	}
	if !t.tr.Knows(n.Nonce) {
		// Not an answer to a register of ours: an ITR's subscription
		// (RFC 9437) may take it.
		return false
	}
	q, status := t.tr.Match(m.Src, n.Nonce)
	if status != request.Matched {
		st.Ignored++
		return true
	}
	p := q.Value().(*msPeer)
	_, v, err := regstore.Verify(m.Raw, &n.Auth, p.key[:])
	if err != nil {
		st.BadAuth++
		c.Log().Warn("Map-Notify authentication failed", "src", m.Src, "ms", p.cfg.Addr, "err", err)
		return true
	}
	st.Auth.Count(v)
	c.Log().Debug("Map-Notify accepted", "ms", p.cfg.Addr, "src", m.Src, "records", len(n.Records),
		"key_id", n.Auth.KeyID, "alg", v.Alg.String(), "hmac_length", v.Length(), "coverage", v.Coverage())
	t.tr.Complete(q)
	return true
}

// mappingFor returns the index of the most specific database mapping that
// covers the first EID record of req, or -1.
func (t *ETR) mappingFor(req *wire.MapRequest) int {
	if len(req.Records) == 0 {
		return -1
	}
	iid, p, ok := req.Records[0].Prefix()
	if !ok {
		return -1
	}
	best := -1
	for i := range t.maps {
		m := &t.maps[i]
		if m.IID == iid && m.Prefix.Contains(p.Addr()) && m.Prefix.Bits() <= p.Bits() &&
			(best < 0 || m.Prefix.Bits() > t.maps[best].Prefix.Bits()) {
			best = i
		}
	}
	return best
}

// own reports whether ip is one of the router's RLOCs.
func (t *ETR) own(ip netip.Addr) bool {
	return slices.ContainsFunc(t.cfg.LocalRLOCs, func(a netip.Addr) bool { return a.Unmap() == ip })
}

// serves reports whether the ETR is authoritative for the request's EID.
func (t *ETR) serves(req *wire.MapRequest) bool { return t.mappingFor(req) >= 0 }

// answer sends the authoritative Map-Reply (RFC 9301 §6.1) or, for an
// RLOC-probe, the probe reply with the P bit and the p bit on the probed
// locator, local the address the probe was sent to (RFC 9301 §7.1). With
// sec, the reply carries LISP-SEC data (RFC 9303 §6.8).
func (t *ETR) answer(port uint16, src netip.AddrPort, req *wire.MapRequest, local netip.Addr, sec *etrSec) {
	c := t.c
	i := t.mappingFor(req)
	if i < 0 {
		c.Msg(wire.TypeMapRequest).Ignored++
		return
	}
	dst := c.ReplyTarget(req.ITRRLOCs, port, src)
	t.remember(dst)
	if req.DontMapReply {
		return
	}
	rec := t.recs[i]
	t.locs = append(t.locs[:0], rec.Locators...)
	for j := range t.locs {
		// L marks the ETR's own locators (RFC 9301 §5.4); p the one a
		// probe was sent to (RFC 9301 §7.1).
		ip := t.locs[j].Address.IP
		t.locs[j].Local = t.own(ip) || (req.Probe && ip == local)
		t.locs[j].Probed = req.Probe && ip == local
	}
	rec.Locators = t.locs
	rep := &t.rep
	rep.Probe = req.Probe
	rep.EchoNonce = false
	rep.Security = false
	rep.Nonce = req.Nonce
	rep.Records = append(rep.Records[:0], rec)
	var b []byte
	var err error
	if sec != nil {
		b, err = t.secSign(t.wbuf[:0], rep, sec)
	} else {
		b, err = rep.Append(t.wbuf[:0])
	}
	if err != nil {
		c.Msg(wire.TypeMapReply).SendErrors++
		return
	}
	t.wbuf = b
	c.Send(dst, b, wire.TypeMapReply)
}

// remember notes an ITR that asked for the ETR's mappings, for SMRs.
func (t *ETR) remember(itr netip.AddrPort) {
	now := t.c.Now()
	if _, ok := t.itrs[itr]; !ok && len(t.itrs) >= maxRecentITRs {
		for k, at := range t.itrs {
			if now.Sub(at) > t.cfg.SMRWindow {
				delete(t.itrs, k)
			}
		}
		if len(t.itrs) >= maxRecentITRs {
			return
		}
	}
	t.itrs[itr] = now
}

// update replaces the database mappings, registers them at once and sends
// SMRs (RFC 9301 §6.6.2) for every changed EID prefix to the ITRs that
// asked recently.
func (t *ETR) update(ms []slowpath.Mapping) {
	c := t.c
	old := t.maps
	t.setMappings(ms)
	var changed []slowpath.Mapping
	for _, m := range ms {
		j := slices.IndexFunc(old, func(o slowpath.Mapping) bool { return o.EIDPrefix == m.EIDPrefix })
		if j < 0 || !slices.Equal(old[j].RLOCs, m.RLOCs) || old[j].TTL != m.TTL {
			changed = append(changed, m)
		}
	}
	for _, o := range old {
		if !slices.ContainsFunc(ms, func(m slowpath.Mapping) bool { return m.EIDPrefix == o.EIDPrefix }) {
			changed = append(changed, o)
		}
	}
	for _, p := range t.peers {
		t.register(p)
	}
	for itr, at := range t.itrs {
		if c.Now().Sub(at) > t.cfg.SMRWindow {
			delete(t.itrs, itr)
			continue
		}
		for _, m := range changed {
			t.sendSMR(itr, &m)
		}
	}
}

// sendSMR sends a solicit-Map-Request for m to an ITR: the S bit set, the
// changed EID prefix as source EID and as EID record (RFC 9301 §6.6.2).
func (t *ETR) sendSMR(itr netip.AddrPort, m *slowpath.Mapping) {
	c := t.c
	eid := slowpath.EIDAddress(m.IID, m.Prefix.Addr())
	rloc := m.RLOCs[0].Addr
	for _, l := range m.RLOCs {
		if l.Addr.Is4() == itr.Addr().Is4() {
			rloc = l.Addr
			break
		}
	}
	req := wire.MapRequest{
		SMR:       true,
		Nonce:     slowpath.NewNonce(),
		SourceEID: eid,
		ITRRLOCs:  []wire.Address{wire.IPAddress(rloc)},
		Records:   []wire.EIDRecord{{MaskLen: uint8(m.Prefix.Bits()), EID: eid}},
	}
	b, err := req.Append(t.wbuf[:0])
	if err != nil {
		c.Msg(wire.TypeMapRequest).SendErrors++
		return
	}
	t.wbuf = b
	c.Send(itr, b, wire.TypeMapRequest)
	t.stats.SMRsSent++
}

// deregister sends every Map-Server the mappings with TTL 0.
func (t *ETR) deregister() {
	for _, p := range t.peers {
		for _, b := range t.registers(p, slowpath.NewNonce(), true) {
			t.c.Send(p.cfg.Addr, b, wire.TypeMapRegister)
		}
	}
}

// SetMappings replaces the ETR's database mappings (validated by the
// caller): they are registered at once and the ITRs that recently asked
// for them get SMRs (event loop only).
func (t *ETR) SetMappings(ms []slowpath.Mapping) { t.update(ms) }

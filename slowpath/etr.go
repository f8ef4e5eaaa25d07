package slowpath

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// maxRecentITRs bounds the ITRs an ETR remembers for SMRs.
const maxRecentITRs = 4096

// etr is the ETR role (RFC 9301 §6): it registers its database mappings
// with Map-Servers, answers Map-Requests and RLOC-probes for them, and
// solicits Map-Requests (SMR) from ITRs when they change.
type etr struct {
	e     *Engine
	cfg   *ETRConfig
	maps  []Mapping
	recs  []wire.Record
	peers []*msPeer
	itrs  map[netip.AddrPort]time.Time
	locs  []wire.Locator
}

// msPeer is the registration state with one Map-Server.
type msPeer struct {
	cfg     MapServerPeer
	nonce   wire.Nonce
	pending bool
	tries   int
	msgs    [][]byte
	retry   *timer
	period  *timer
}

func newETR(e *Engine, c *ETRConfig) *etr {
	t := &etr{e: e, cfg: c, itrs: map[netip.AddrPort]time.Time{}}
	t.setMappings(c.Mappings)
	for _, p := range c.MapServers {
		t.peers = append(t.peers, &msPeer{cfg: p})
	}
	return t
}

func (t *etr) setMappings(ms []Mapping) {
	t.maps = slices.Clone(ms)
	t.recs = t.recs[:0]
	for i := range t.maps {
		t.recs = append(t.recs, mappingRecord(&t.maps[i]))
	}
}

// mappingRecord builds the mapping record of a database mapping.
func mappingRecord(m *Mapping) wire.Record {
	ttl := m.TTL
	if ttl == 0 {
		ttl = 24 * time.Hour
	}
	r := wire.Record{
		TTL:           ttlMinutes(ttl),
		MaskLen:       uint8(m.Prefix.Bits()),
		EID:           eidAddress(m.IID, m.Prefix.Addr()),
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

func (t *etr) start() {
	for _, p := range t.peers {
		p := p
		p.period = t.e.timers.schedule(t.e.now, func(now time.Time) { t.register(p) })
	}
}

// registers encodes the Map-Registers for peer p with nonce n: all records,
// 255 per message (RFC 9301 §5.6), TTL 0 when deregistering.
func (t *etr) registers(p *msPeer, n wire.Nonce, deregister bool) [][]byte {
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
			Auth:          wire.NewAuth(p.cfg.Key.KeyID, p.cfg.Key.Alg, false),
			Records:       recs[:k],
		}
		b, err := m.AppendSigned(nil, []byte(p.cfg.Key.Secret))
		if err != nil {
			t.e.log.Error("cannot encode Map-Register", "ms", p.cfg.Addr, "err", err)
			return out
		}
		out = append(out, b)
		recs = recs[k:]
	}
	return out
}

// register sends a round of Map-Registers to p and schedules the next one.
func (t *etr) register(p *msPeer) {
	e := t.e
	p.nonce = newNonce()
	p.msgs = t.registers(p, p.nonce, false)
	for _, b := range p.msgs {
		e.send(p.cfg.Addr, b, wire.TypeMapRegister)
	}
	e.timers.reset(p.period, e.now.Add(t.cfg.RegisterInterval))
	if t.cfg.NoMapNotify {
		return
	}
	if p.pending {
		e.stats.RegisterUnconfirmed++
	}
	p.pending = true
	p.tries = 0
	if p.retry == nil {
		p.retry = e.timers.schedule(e.now.Add(t.cfg.RetryInterval), func(time.Time) { t.retry(p) })
	} else {
		e.timers.reset(p.retry, e.now.Add(t.cfg.RetryInterval))
	}
}

// retry resends the Map-Registers that got no Map-Notify, with exponential
// backoff, up to Retries times before the next period.
func (t *etr) retry(p *msPeer) {
	e := t.e
	if !p.pending {
		return
	}
	if p.tries >= t.cfg.Retries {
		p.pending = false
		e.stats.RegisterUnconfirmed++
		e.log.Warn("no Map-Notify from Map-Server", "ms", p.cfg.Addr, "tries", p.tries+1)
		return
	}
	p.tries++
	e.stats.RegisterRetries++
	for _, b := range p.msgs {
		e.send(p.cfg.Addr, b, wire.TypeMapRegister)
	}
	e.timers.reset(p.retry, e.now.Add(t.cfg.RetryInterval<<p.tries))
}

// onMapNotify checks a Map-Notify against the pending registers: the nonce
// must match and the authentication verify with that Map-Server's key.
func (t *etr) onMapNotify(src netip.AddrPort, b []byte) {
	e := t.e
	st := &e.stats.Msgs[wire.TypeMapNotify]
	n := &e.notify
	if err := n.Parse(b); err != nil {
		st.BadParse++
		return
	}
	for _, p := range t.peers {
		if !p.pending || p.nonce != n.Nonce {
			continue
		}
		k := p.cfg.Key
		if n.Auth.Alg != k.Alg || n.Auth.KeyID != k.KeyID ||
			wire.VerifyAuth(b, authDataOff, len(n.Auth.Data), n.Auth.Alg, []byte(k.Secret)) != nil {
			st.BadAuth++
			e.log.Warn("Map-Notify authentication failed", "src", src, "ms", p.cfg.Addr)
			return
		}
		p.pending = false
		e.timers.stop(p.retry)
		e.stats.RegisterNotified++
		return
	}
	st.Ignored++
}

// mappingFor returns the index of the most specific database mapping that
// covers the first EID record of req, or -1.
func (t *etr) mappingFor(req *wire.MapRequest) int {
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

// serves reports whether the ETR is authoritative for the request's EID.
func (t *etr) serves(req *wire.MapRequest) bool { return t.mappingFor(req) >= 0 }

// answer sends the authoritative Map-Reply (RFC 9301 §6.1) or, for an
// RLOC-probe, the probe reply with the P bit and the p bit on the probed
// locator, local the address the probe was sent to (RFC 9301 §7.1).
func (t *etr) answer(port uint16, src netip.AddrPort, req *wire.MapRequest, local netip.Addr) {
	e := t.e
	i := t.mappingFor(req)
	if i < 0 {
		e.stats.Msgs[wire.TypeMapRequest].Ignored++
		return
	}
	dst := e.replyTarget(req.ITRRLOCs, port, src)
	t.remember(dst)
	if req.DontMapReply {
		return
	}
	rec := t.recs[i]
	t.locs = append(t.locs[:0], rec.Locators...)
	if req.Probe {
		for j := range t.locs {
			if t.locs[j].Address.IP == local {
				t.locs[j].Probed = true
				t.locs[j].Local = true
			}
		}
	}
	rec.Locators = t.locs
	rep := &e.rep
	rep.Probe = req.Probe
	rep.EchoNonce = false
	rep.Security = false
	rep.Nonce = req.Nonce
	rep.Records = append(rep.Records[:0], rec)
	b, err := rep.Append(e.wbuf[:0])
	if err != nil {
		e.stats.Msgs[wire.TypeMapReply].SendErrors++
		return
	}
	e.wbuf = b
	e.send(dst, b, wire.TypeMapReply)
}

// remember notes an ITR that asked for the ETR's mappings, for SMRs.
func (t *etr) remember(itr netip.AddrPort) {
	now := t.e.now
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
func (t *etr) update(ms []Mapping) {
	e := t.e
	old := t.maps
	t.setMappings(ms)
	var changed []Mapping
	for _, m := range ms {
		j := slices.IndexFunc(old, func(o Mapping) bool { return o.EIDPrefix == m.EIDPrefix })
		if j < 0 || !slices.Equal(old[j].RLOCs, m.RLOCs) || old[j].TTL != m.TTL {
			changed = append(changed, m)
		}
	}
	for _, o := range old {
		if !slices.ContainsFunc(ms, func(m Mapping) bool { return m.EIDPrefix == o.EIDPrefix }) {
			changed = append(changed, o)
		}
	}
	for _, p := range t.peers {
		t.register(p)
	}
	for itr, at := range t.itrs {
		if e.now.Sub(at) > t.cfg.SMRWindow {
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
func (t *etr) sendSMR(itr netip.AddrPort, m *Mapping) {
	e := t.e
	eid := eidAddress(m.IID, m.Prefix.Addr())
	rloc := m.RLOCs[0].Addr
	for _, l := range m.RLOCs {
		if l.Addr.Is4() == itr.Addr().Is4() {
			rloc = l.Addr
			break
		}
	}
	req := wire.MapRequest{
		SMR:       true,
		Nonce:     newNonce(),
		SourceEID: eid,
		ITRRLOCs:  []wire.Address{wire.IPAddress(rloc)},
		Records:   []wire.EIDRecord{{MaskLen: uint8(m.Prefix.Bits()), EID: eid}},
	}
	b, err := req.Append(e.wbuf[:0])
	if err != nil {
		e.stats.Msgs[wire.TypeMapRequest].SendErrors++
		return
	}
	e.wbuf = b
	e.send(itr, b, wire.TypeMapRequest)
	e.stats.SMRsSent++
}

// deregister sends every Map-Server the mappings with TTL 0.
func (t *etr) deregister() {
	for _, p := range t.peers {
		for _, b := range t.registers(p, newNonce(), true) {
			t.e.send(p.cfg.Addr, b, wire.TypeMapRegister)
		}
	}
}

// SetMappings replaces the ETR's database mappings: they are registered at
// once and the ITRs that recently asked for them get SMRs.
func (e *Engine) SetMappings(ms []Mapping) error {
	if e.etr == nil {
		return fmt.Errorf("slowpath: no ETR role")
	}
	for i := range ms {
		if err := ms[i].validate(fmt.Sprintf("etr.mappings[%d]", i)); err != nil {
			return err
		}
	}
	ms = slices.Clone(ms)
	return e.do(func() { e.etr.update(ms) })
}

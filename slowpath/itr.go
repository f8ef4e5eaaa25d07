package slowpath

import (
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// receiverDecidesTTL is how long a mapping whose record TTL says "the
// receiver decides" (RFC 9301 §5.4) is kept.
const receiverDecidesTTL = 24 * time.Hour

// ResolvedRLOC is one locator of a resolved mapping.
type ResolvedRLOC struct {
	// Addr is the RLOC.
	Addr netip.Addr
	// Priority, Weight, MPriority and MWeight are the record's values
	// (RFC 9301 §5.4).
	Priority, Weight, MPriority, MWeight uint8
	// Reachable is the R bit of the locator (RFC 9301 §5.4).
	Reachable bool
}

// Resolved is a positive mapping learned from a Map-Reply.
type Resolved struct {
	EIDPrefix
	// TTL is the record TTL; "receiver decides" becomes 24 hours.
	TTL time.Duration
	// Authoritative is the record's A bit (RFC 9301 §5.4).
	Authoritative bool
	// MapVersion is the record's map-version (RFC 9301 §5.4).
	MapVersion uint16
	// RLOCs are the locators that are plain IP addresses.
	RLOCs []ResolvedRLOC
	// Record is the whole record, LCAF locators (RLE, ELP) included. It is
	// only valid during the Install call.
	Record *wire.Record
}

// Installer receives what the ITR learns; the daemon wires it to the
// map-cache (cache.Apply) and the fast path's hold queues. Its methods are
// called from the engine goroutine and must not block for long.
type Installer interface {
	// Install installs or replaces a positive mapping.
	Install(m *Resolved)
	// InstallNegative installs a negative mapping with its action
	// (RFC 9301 §5.4).
	InstallNegative(p EIDPrefix, ttl time.Duration, action wire.Action)
	// SetRLOCReachable marks rloc of the mapping for p up or down, as
	// RLOC-probing found it.
	SetRLOCReachable(p EIDPrefix, rloc netip.Addr, up bool)
	// Active reports whether the mapping for p carried traffic recently, so
	// that it is worth refreshing before its TTL runs out.
	Active(p EIDPrefix) bool
}

// itr is the ITR role (RFC 9301 §6): it resolves misses through the
// Map-Resolvers, refreshes active mappings, follows SMRs and probes RLOCs.
type itr struct {
	e        *Engine
	cfg      *ITRConfig
	inst     Installer
	itrRLOCs []wire.Address
	pending  map[wire.Nonce]*resolution
	byEID    map[EIDPrefix]*resolution
	recent   map[EIDPrefix]time.Time
	entries  map[EIDPrefix]*itrEntry
	rlocs    map[netip.Addr]*probeState
	probes   map[wire.Nonce]netip.Addr
	msgBuf   []byte
	res      Resolved
}

// resolution is one Map-Request in flight, with its retransmissions.
type resolution struct {
	key     EIDPrefix
	src     netip.Addr
	nonce   wire.Nonce
	tries   int
	mr      int
	start   time.Time
	smr     bool
	refresh bool
	t       *timer
}

// itrEntry is a mapping the ITR installed and keeps fresh.
type itrEntry struct {
	key     EIDPrefix
	rlocs   []netip.Addr
	refresh *timer
}

// probeState is the RLOC-probing state of one RLOC, shared by every mapping
// that uses it.
type probeState struct {
	users       map[EIDPrefix]struct{}
	up          bool
	misses      int
	outstanding bool
}

func newITR(e *Engine, c *ITRConfig) *itr {
	t := &itr{
		e: e, cfg: c, inst: e.inst,
		pending: map[wire.Nonce]*resolution{},
		byEID:   map[EIDPrefix]*resolution{},
		recent:  map[EIDPrefix]time.Time{},
		entries: map[EIDPrefix]*itrEntry{},
		rlocs:   map[netip.Addr]*probeState{},
		probes:  map[wire.Nonce]netip.Addr{},
	}
	for _, a := range c.ITRRLOCs {
		t.itrRLOCs = append(t.itrRLOCs, wire.IPAddress(a.Unmap()))
	}
	return t
}

func (t *itr) start() {
	e := t.e
	var sweep func(now time.Time)
	sweepEvery := max(t.cfg.MinRequestInterval, time.Second)
	sweep = func(now time.Time) {
		for k, at := range t.recent {
			if now.Sub(at) >= t.cfg.MinRequestInterval {
				delete(t.recent, k)
			}
		}
		e.timers.schedule(now.Add(sweepEvery), sweep)
	}
	e.timers.schedule(e.now.Add(sweepEvery), sweep)
	if t.cfg.ProbeInterval > 0 {
		var probe func(now time.Time)
		probe = func(now time.Time) {
			t.probeRound()
			e.timers.schedule(now.Add(t.cfg.ProbeInterval), probe)
		}
		e.timers.schedule(e.now.Add(t.cfg.ProbeInterval), probe)
	}
}

// onMiss starts resolving a missed destination unless it is being resolved
// or was asked for less than MinRequestInterval ago.
func (t *itr) onMiss(ev MissEvent) {
	dst := ev.Dst.Unmap()
	if !dst.IsValid() {
		return
	}
	key := EIDPrefix{IID: ev.IID, Prefix: netip.PrefixFrom(dst, dst.BitLen())}
	if t.byEID[key] != nil {
		return
	}
	if at, ok := t.recent[key]; ok && t.e.now.Sub(at) < t.cfg.MinRequestInterval {
		return
	}
	start := ev.Time
	if start.IsZero() || start.After(t.e.now) {
		start = t.e.now
	}
	t.request(key, ev.Src.Unmap(), start, false, false)
}

func (t *itr) request(key EIDPrefix, src netip.Addr, start time.Time, smr, refresh bool) {
	e := t.e
	r := &resolution{key: key, src: src, nonce: newNonce(), start: start, smr: smr, refresh: refresh}
	t.pending[r.nonce] = r
	t.byEID[key] = r
	t.recent[key] = e.now
	t.send(r)
	r.t = e.timers.schedule(e.now.Add(t.cfg.RetransmitInterval), func(time.Time) { t.retransmit(r) })
}

// send sends r's Map-Request in an ECM to the current Map-Resolver
// (RFC 9301 §5.8).
func (t *itr) send(r *resolution) {
	e := t.e
	eid := r.key.Prefix.Addr()
	req := &wire.MapRequest{
		SMRInvoked: r.smr,
		Nonce:      r.nonce,
		ITRRLOCs:   t.itrRLOCs,
		Records:    []wire.EIDRecord{{MaskLen: uint8(r.key.Prefix.Bits()), EID: eidAddress(r.key.IID, eid)}},
	}
	if r.src.IsValid() {
		req.SourceEID = eidAddress(r.key.IID, r.src)
	}
	msg, err := req.Append(t.msgBuf[:0])
	if err != nil {
		e.stats.Msgs[wire.TypeMapRequest].SendErrors++
		return
	}
	t.msgBuf = msg
	mr := t.cfg.MapResolvers[r.mr%len(t.cfg.MapResolvers)]
	s := e.sock4
	if mr.Addr().Unmap().Is6() {
		s = e.sock6
	}
	if s == nil {
		e.stats.Msgs[wire.TypeECM].SendErrors++
		return
	}
	ecm := wire.ECM{Src: innerSource(req, r.src, eid), Dst: eid, SrcPort: s.local.Port(), DstPort: wire.ControlPort, TTL: 64, Message: msg}
	b, err := ecm.Append(e.wbuf2[:0])
	if err != nil {
		e.stats.Msgs[wire.TypeECM].SendErrors++
		return
	}
	e.wbuf2 = b
	e.send(mr, b, wire.TypeECM)
	e.stats.Msgs[wire.TypeMapRequest].Sent++
}

// retransmit resends an unanswered Map-Request to the next Map-Resolver,
// doubling the wait, until MaxTries requests have been sent.
func (t *itr) retransmit(r *resolution) {
	e := t.e
	if t.pending[r.nonce] != r {
		return
	}
	r.tries++
	if r.tries >= t.cfg.MaxTries {
		t.finish(r)
		e.stats.ResolveTimeouts++
		e.log.Warn("Map-Request unanswered", "iid", r.key.IID, "eid", r.key.Prefix, "tries", r.tries)
		if r.refresh {
			t.forget(r.key)
		}
		return
	}
	r.mr = (r.mr + 1) % len(t.cfg.MapResolvers)
	e.stats.Retransmits++
	t.send(r)
	e.timers.reset(r.t, e.now.Add(t.cfg.RetransmitInterval<<r.tries))
}

func (t *itr) finish(r *resolution) {
	delete(t.pending, r.nonce)
	if t.byEID[r.key] == r {
		delete(t.byEID, r.key)
	}
	t.e.timers.stop(r.t)
}

// onMapReply matches a Map-Reply to a pending request or probe by nonce and
// installs its records.
func (t *itr) onMapReply(src netip.AddrPort, b []byte) {
	e := t.e
	st := &e.stats.Msgs[wire.TypeMapReply]
	rep := &e.rep
	if err := rep.Parse(b); err != nil {
		st.BadParse++
		return
	}
	if addr, ok := t.probes[rep.Nonce]; ok {
		delete(t.probes, rep.Nonce)
		t.probeAnswered(addr)
		return
	}
	r := t.pending[rep.Nonce]
	if r == nil {
		st.Ignored++
		return
	}
	t.finish(r)
	installed := false
	for i := range rep.Records {
		rec := &rep.Records[i]
		iid, p, ok := rec.Prefix()
		// A record must cover what was asked: a reply cannot claim
		// unrelated EID space.
		if !ok || iid != r.key.IID || !p.Contains(r.key.Prefix.Addr()) || p.Bits() > r.key.Prefix.Bits() {
			st.Rejected++
			continue
		}
		key := EIDPrefix{IID: iid, Prefix: p}
		ttl := ttlDuration(rec.TTL, receiverDecidesTTL)
		if len(rec.Locators) == 0 {
			t.inst.InstallNegative(key, ttl, rec.Action)
			t.track(key, ttl, nil)
		} else {
			m := &t.res
			*m = Resolved{EIDPrefix: key, TTL: ttl, Authoritative: rec.Authoritative, MapVersion: rec.MapVersion, RLOCs: m.RLOCs[:0], Record: rec}
			for _, l := range rec.Locators {
				if l.Address.AFI == wire.AFIIPv4 || l.Address.AFI == wire.AFIIPv6 {
					m.RLOCs = append(m.RLOCs, ResolvedRLOC{Addr: l.Address.IP.Unmap(), Priority: l.Priority, Weight: l.Weight,
						MPriority: l.MPriority, MWeight: l.MWeight, Reachable: l.Reachable})
				}
			}
			t.inst.Install(m)
			var addrs []netip.Addr
			for _, l := range m.RLOCs {
				addrs = append(addrs, l.Addr)
			}
			m.Record = nil
			t.track(key, ttl, addrs)
		}
		installed = true
	}
	if installed {
		e.stats.Resolutions++
		if !r.refresh {
			e.stats.ResolveLatency.observe(e.now.Sub(r.start))
		}
	}
}

// track remembers an installed mapping: a refresh before its TTL runs out,
// and its RLOCs for probing.
func (t *itr) track(key EIDPrefix, ttl time.Duration, rlocs []netip.Addr) {
	e := t.e
	if ttl <= 0 {
		t.forget(key)
		return
	}
	ent := t.entries[key]
	if ent == nil {
		ent = &itrEntry{key: key}
		t.entries[key] = ent
	}
	for _, a := range ent.rlocs {
		if ps := t.rlocs[a]; ps != nil {
			delete(ps.users, key)
		}
	}
	ent.rlocs = rlocs
	for _, a := range rlocs {
		ps := t.rlocs[a]
		if ps == nil {
			ps = &probeState{users: map[EIDPrefix]struct{}{}, up: true}
			t.rlocs[a] = ps
		}
		ps.users[key] = struct{}{}
	}
	at := e.now.Add(ttl - min(t.cfg.RefreshBefore, ttl/2))
	if ent.refresh == nil {
		ent.refresh = e.timers.schedule(at, func(time.Time) { t.refresh(ent) })
	} else {
		e.timers.reset(ent.refresh, at)
	}
}

// forget stops tracking a mapping.
func (t *itr) forget(key EIDPrefix) {
	ent := t.entries[key]
	if ent == nil {
		return
	}
	delete(t.entries, key)
	t.e.timers.stop(ent.refresh)
	for _, a := range ent.rlocs {
		if ps := t.rlocs[a]; ps != nil {
			delete(ps.users, key)
			if len(ps.users) == 0 {
				delete(t.rlocs, a)
			}
		}
	}
}

// refresh re-resolves a mapping before its TTL runs out when the Installer
// says it still carries traffic; idle mappings are left to expire.
func (t *itr) refresh(ent *itrEntry) {
	if t.entries[ent.key] != ent {
		return
	}
	if !t.inst.Active(ent.key) {
		t.forget(ent.key)
		return
	}
	if t.byEID[ent.key] == nil {
		t.request(ent.key, netip.Addr{}, t.e.now, false, true)
	}
}

// onSMR answers a solicit-Map-Request (RFC 9301 §6.6.2) for a mapping the
// ITR holds with an SMR-invoked Map-Request (s bit) to the mapping system.
func (t *itr) onSMR(src netip.AddrPort, req *wire.MapRequest) {
	e := t.e
	st := &e.stats.Msgs[wire.TypeMapRequest]
	eid := &req.SourceEID
	ml := uint8(0)
	if eid.IsZero() {
		eid, ml = &req.Records[0].EID, req.Records[0].MaskLen
	}
	iid, in, ok := eid.Unwrap()
	if !ok || (in.AFI != wire.AFIIPv4 && in.AFI != wire.AFIIPv6) {
		st.Ignored++
		return
	}
	_ = ml
	addr := in.IP.Unmap()
	var key EIDPrefix
	found := false
	for k := range t.entries {
		if k.IID == iid && k.Prefix.Contains(addr) && (!found || k.Prefix.Bits() > key.Prefix.Bits()) {
			key, found = k, true
		}
	}
	if !found {
		st.Ignored++
		return
	}
	if t.byEID[key] != nil {
		return
	}
	if at, ok := t.recent[key]; ok && e.now.Sub(at) < t.cfg.MinRequestInterval {
		return
	}
	e.stats.SMRInvoked++
	t.request(key, netip.Addr{}, e.now, true, true)
}

// probeRound counts unanswered probes of the last round, marks RLOCs down
// after ProbeMisses in a row, and sends the next probes (RFC 9301 §7.1):
// Map-Requests with the P bit sent straight to the RLOC.
func (t *itr) probeRound() {
	e := t.e
	clear(t.probes)
	for addr, ps := range t.rlocs {
		if len(ps.users) == 0 {
			delete(t.rlocs, addr)
			continue
		}
		if ps.outstanding {
			ps.misses++
			if ps.misses >= t.cfg.ProbeMisses && ps.up {
				ps.up = false
				e.stats.RLOCDown++
				e.log.Info("RLOC unreachable", "rloc", addr, "missed_probes", ps.misses)
				for u := range ps.users {
					t.inst.SetRLOCReachable(u, addr, false)
				}
			}
		}
		var user EIDPrefix
		for u := range ps.users {
			user = u
			break
		}
		n := newNonce()
		req := wire.MapRequest{
			Probe:    true,
			Nonce:    n,
			ITRRLOCs: t.itrRLOCs,
			Records:  []wire.EIDRecord{{MaskLen: uint8(user.Prefix.Bits()), EID: eidAddress(user.IID, user.Prefix.Addr())}},
		}
		b, err := req.Append(e.wbuf[:0])
		if err != nil {
			continue
		}
		e.wbuf = b
		t.probes[n] = addr
		ps.outstanding = true
		e.send(netip.AddrPortFrom(addr, t.cfg.ProbePort), b, wire.TypeMapRequest)
		e.stats.ProbesSent++
	}
}

func (t *itr) probeAnswered(addr netip.Addr) {
	e := t.e
	ps := t.rlocs[addr]
	if ps == nil {
		return
	}
	ps.outstanding = false
	ps.misses = 0
	if !ps.up {
		ps.up = true
		e.stats.RLOCUp++
		e.log.Info("RLOC reachable again", "rloc", addr)
		for u := range ps.users {
			t.inst.SetRLOCReachable(u, addr, true)
		}
	}
}

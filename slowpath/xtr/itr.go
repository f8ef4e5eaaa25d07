package xtr

import (
	"net/netip"
	"slices"
	"time"

	"github.com/rloc-router/rloc/fastpath"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/request"

	"github.com/rloc-router/rloc/wire"
)

// ITR is the ITR role (RFC 9301 §6): it resolves misses through the
// Map-Resolvers, refreshes active mappings, follows SMRs and probes RLOCs.
type ITR struct {
	c        *slowpath.Core
	stats    slowpath.Stats
	wbuf     []byte
	cfg      *slowpath.ITRConfig
	inst     slowpath.Installer
	itrRLOCs []wire.Address
	tr       *request.Tracker // the Map-Requests in flight
	byEID    map[slowpath.EIDPrefix]*resolution
	recent   map[slowpath.EIDPrefix]time.Time
	entries  map[slowpath.EIDPrefix]*itrEntry
	rlocs    map[netip.Addr]*probeState
	probes   *request.Tracker // the RLOC-probes in flight, one per RLOC
	msgBuf   []byte
	res      slowpath.Resolved
	sub      *subState // RFC 9437 subscriptions (subscribe.go); nil without
	sol      *solState // map-cache solicitation (solicit.go); nil without
	// configured are the configured Map-Resolvers, kept when discovery
	// sets the list (discovered.go); nil until it does.
	configured []netip.AddrPort
}

// resolution is one Map-Request in flight; the tracker retransmits it.
type resolution struct {
	key     slowpath.EIDPrefix
	src     netip.Addr
	start   time.Time
	smr     bool
	refresh bool
	sec     *itrSec // LISP-SEC (lispsec.go); nil when not asked for
}

// itrEntry is a mapping the ITR installed and keeps fresh.
type itrEntry struct {
	key     slowpath.EIDPrefix
	rlocs   []netip.Addr
	refresh *slowpath.Timer
	// expires is when its TTL runs out; solicited marks a copy from a
	// peer ITR not yet refreshed from the mapping system (solicit.go).
	expires   time.Time
	solicited bool
	// installed is when the mapping was last installed (track).
	installed time.Time
}

// probeState is the RLOC-probing state of one RLOC, shared by every mapping
// that uses it.
type probeState struct {
	addr   netip.Addr
	users  map[slowpath.EIDPrefix]struct{}
	up     bool
	misses int
	// probe is the probe of the current round until it is answered or
	// the round ends.
	probe *request.Request
}

// NewITR builds the ITR role of cfg (defaults applied) on c and registers
// its handlers: misses, Map-Replies and SMRs, after those registered before
// (multicast takes its own). inst receives what it learns.
func NewITR(c *slowpath.Core, cfg *slowpath.ITRConfig, inst slowpath.Installer) *ITR {
	t := &ITR{
		c: c, cfg: cfg, inst: inst,
		byEID:   map[slowpath.EIDPrefix]*resolution{},
		recent:  map[slowpath.EIDPrefix]time.Time{},
		entries: map[slowpath.EIDPrefix]*itrEntry{},
		rlocs:   map[netip.Addr]*probeState{},
	}
	t.tr = request.New(c.Clock(), c, request.Config{Interval: cfg.RetransmitInterval, MaxTries: cfg.MaxTries})
	// A probe is sent once and waits one probe interval for its reply.
	t.probes = request.New(c.Clock(), c, request.Config{Interval: max(cfg.ProbeInterval, time.Millisecond), MaxTries: 1})
	t.itrRLOCs = RLOCAddresses(cfg.ITRRLOCs)
	t.stats.ResolveLatency = slowpath.NewHistogram()
	c.HandleMiss(t.onMiss)
	c.Handle(slowpath.RouteMapReply, t.onMapReply)
	c.Handle(slowpath.RouteSMR, t.onSMR)
	if cfg.Subscribe != nil {
		t.newSubState(cfg.Subscribe)
	}
	if cfg.Solicit.Enabled() {
		t.newSolState(cfg.Solicit)
	}
	c.OnStart(t.start)
	return t
}

// RLOCAddresses returns the ITR-RLOCs of a Map-Request (RFC 9301 §5.2) for
// the configured addresses.
func RLOCAddresses(as []netip.Addr) []wire.Address {
	var out []wire.Address
	for _, a := range as {
		out = append(out, wire.IPAddress(a.Unmap()))
	}
	return out
}

// Tracked returns how many installed mappings the ITR keeps fresh and
// probes (event loop only).
func (t *ITR) Tracked() int { return len(t.entries) }

// Stats returns the ITR's counters (event loop only).
func (t *ITR) Stats() slowpath.Stats {
	s := t.stats
	s.ResolveLatency = t.stats.ResolveLatency.Clone()
	rs := t.tr.Stats()
	s.Msgs[wire.TypeMapRequest].Sent += rs.Sent
	s.Retransmits += rs.Retransmits
	s.ResolveTimeouts += rs.GaveUp
	s.Msgs[wire.TypeECM].SendErrors += rs.SendErrors
	return s
}

func (t *ITR) start() {
	c := t.c
	var sweep func(now time.Time)
	sweepEvery := max(t.cfg.MinRequestInterval, time.Second)
	sweep = func(now time.Time) {
		for k, at := range t.recent {
			if now.Sub(at) >= t.cfg.MinRequestInterval {
				delete(t.recent, k)
			}
		}
		c.Schedule(now.Add(sweepEvery), sweep)
	}
	c.Schedule(c.Now().Add(sweepEvery), sweep)
	if t.cfg.ProbeInterval > 0 {
		var probe func(now time.Time)
		probe = func(now time.Time) {
			t.probeRound()
			c.Schedule(now.Add(t.cfg.ProbeInterval), probe)
		}
		c.Schedule(c.Now().Add(t.cfg.ProbeInterval), probe)
	}
}

// staleMissWindow is how long after a positive mapping is installed a miss
// it covers is taken for one the fast path raised before the mapping
// reached it (the miss pump and the event loop queue misses) and ignored.
// Later such misses are resolved as usual.
const staleMissWindow = time.Second

// covering returns the most specific installed mapping that covers the
// host key, or nil.
func (t *ITR) covering(key slowpath.EIDPrefix) *itrEntry {
	a := key.Prefix.Addr()
	for bits := key.Prefix.Bits(); bits >= 0; bits-- {
		p, err := a.Prefix(bits)
		if err != nil {
			return nil
		}
		if ent := t.entries[slowpath.EIDPrefix{IID: key.IID, Prefix: p}]; ent != nil {
			return ent
		}
	}
	return nil
}

// onMiss starts resolving a missed destination unless it is being resolved
// or was asked for less than MinRequestInterval ago.
func (t *ITR) onMiss(ev fastpath.MissEvent, at time.Time) bool {
	c := t.c
	dst := ev.Dst.Unmap()
	if !dst.IsValid() {
		return true
	}
	key := slowpath.EIDPrefix{IID: ev.IID, Prefix: netip.PrefixFrom(dst, dst.BitLen())}
	if t.byEID[key] != nil {
		return true
	}
	if at, ok := t.recent[key]; ok && c.Now().Sub(at) < t.cfg.MinRequestInterval {
		return true
	}
	if t.holdMiss(key, ev.Src.Unmap()) {
		return true // until the peers' map-caches are copied (solicit.go)
	}
	if ent := t.covering(key); ent != nil && len(ent.rlocs) > 0 && c.Now().Sub(ent.installed) < staleMissWindow {
		// The fast path saw the packet before the mapping reached it.
		t.stats.MissesStale++
		return true
	}
	start := at
	if start.IsZero() || start.After(c.Now()) {
		start = c.Now()
	}
	t.request(key, ev.Src.Unmap(), start, false, false)
	return true
}

func (t *ITR) request(key slowpath.EIDPrefix, src netip.Addr, start time.Time, smr, refresh bool) {
	c := t.c
	r := &resolution{key: key, src: src, start: start, smr: smr, refresh: refresh}
	t.byEID[key] = r
	t.recent[key] = c.Now()
	n := t.tr.NewNonce()
	eid := key.Prefix.Addr()
	req := &wire.MapRequest{
		SMRInvoked: smr,
		Nonce:      n,
		ITRRLOCs:   t.itrRLOCs,
		Records:    []wire.EIDRecord{{MaskLen: uint8(key.Prefix.Bits()), EID: slowpath.EIDAddress(key.IID, eid)}},
	}
	if src.IsValid() {
		req.SourceEID = slowpath.EIDAddress(key.IID, src)
	}
	if t.subscribes(key) {
		t.markSubscribe(req, key, n)
	}
	msg, err := req.Append(t.msgBuf[:0])
	if err != nil {
		c.Msg(wire.TypeMapRequest).SendErrors++
		delete(t.byEID, key)
		return
	}
	t.msgBuf = msg
	// In an ECM to the Map-Resolvers in turn (RFC 9301 §5.8).
	spec := request.Spec{Type: wire.TypeMapRequest, Targets: t.cfg.MapResolvers, ECM: true,
		InnerSrc: slowpath.InnerSource(req, src, eid), InnerDst: eid, Value: r, Done: t.done}
	if t.secApplies(key) {
		if r.sec, err = t.secRequest(n); err != nil {
			c.Msg(wire.TypeMapRequest).SendErrors++
			delete(t.byEID, key)
			return
		}
		spec.ECMAuth, spec.Targets = &r.sec.auth, t.secTargets()
	}
	if _, err = t.tr.Start(&spec, n, msg); err != nil {
		delete(t.byEID, key)
	}
}

// done runs when a resolution ends: answered, or unanswered after
// MaxTries Map-Requests.
func (t *ITR) done(q *request.Request, o request.Outcome) {
	r := q.Value().(*resolution)
	if t.byEID[r.key] == r {
		delete(t.byEID, r.key)
	}
	if o != request.GaveUp {
		return
	}
	t.c.Log().Warn("Map-Request unanswered", "iid", r.key.IID, "eid", r.key.Prefix, "tries", q.Tries())
	if r.refresh {
		t.forget(r.key)
	}
}

// onMapReply matches a Map-Reply to a pending request or probe by nonce and
// installs its records.
func (t *ITR) onMapReply(m *slowpath.Msg) bool {
	c := t.c
	st := c.Msg(wire.TypeMapReply)
	rep, err := m.MapReply()
	if err != nil {
		st.BadParse++
		return true
	}
	if t.probes.Knows(rep.Nonce) {
		// A probe reply counts only for the probed RLOC, while its
		// probe is outstanding (RFC 9301 §7.1), and only with the P bit.
		// A reply without the P bit is not a probe reply (RFC 9301 §5.4).
		if q, status := t.probes.Match(probedFrom(rep, m.Src), rep.Nonce); status == request.Matched && rep.Probe {
			t.probes.Complete(q)
		} else {
			st.Ignored++
		}
		return true
	}
	q, status := t.tr.Match(m.Src, rep.Nonce)
	if status != request.Matched {
		st.Ignored++
		return true
	}
	if !t.plausible(m.Src, q, rep) {
		// Whoever saw the nonce (a resolver, a Map-Server, the ETR it was
		// forwarded to) cannot answer from elsewhere; the request stays
		// outstanding for the genuine reply.
		st.Rejected++
		t.stats.RepliesWrongSource++
		c.Log().Debug("Map-Reply from an address the request could not be answered from", "src", m.Src)
		return true
	}
	r := q.Value().(*resolution)
	if err := t.secCheck(r.sec, m.Raw, rep); err != nil {
		// Not proven to come from the ETR the Map-Server authorised: the
		// request stays outstanding for a reply that is.
		st.Rejected++
		c.Log().Debug("Map-Reply refused by LISP-SEC", "src", m.Src, "eid", r.key.Prefix, "err", err)
		return true
	}
	t.tr.Complete(q)
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
		key := slowpath.EIDPrefix{IID: iid, Prefix: p}
		t.moveSub(r.key, key)
		t.installRecord(rec, key, false)
		installed = true
	}
	if installed {
		t.stats.Resolutions++
		if !r.refresh {
			t.stats.ResolveLatency.Observe(c.Now().Sub(r.start))
		}
	}
	return true
}

// plausible reports whether a Map-Reply to q may come from src: a target
// of the request (a Map-Resolver, or the RLOC asked directly), a
// configured reply source (a proxy-replying Map-Server), or, with
// locators, one of the reply's own locators (the ETR answering from its
// RLOC). A negative reply comes from the mapping system only.
func (t *ITR) plausible(src netip.AddrPort, q *request.Request, rep *wire.MapReply) bool {
	a := src.Addr().Unmap()
	if q.FromTarget(src) || slices.Contains(t.cfg.ReplySources, a) {
		return true
	}
	for i := range rep.Records {
		for j := range rep.Records[i].Locators {
			if l := &rep.Records[i].Locators[j]; l.Address.IP.Unmap() == a {
				return true
			}
		}
	}
	return false
}

// installRecord installs rec, a Map-Reply's or a subscription's
// Map-Notify's record for key, or with solicited a peer ITR's copy
// (solicit.go), and tracks it.
func (t *ITR) installRecord(rec *wire.Record, key slowpath.EIDPrefix, solicited bool) {
	ttl := slowpath.TTLDuration(rec.TTL, slowpath.ReceiverDecidesTTL)
	if len(rec.Locators) == 0 {
		t.inst.InstallNegative(key, ttl, rec.Action)
		t.track(key, ttl, nil)
		return
	}
	m := &t.res
	*m = slowpath.Resolved{EIDPrefix: key, TTL: ttl, Authoritative: rec.Authoritative, MapVersion: rec.MapVersion, RLOCs: m.RLOCs[:0], Record: rec,
		Solicited: solicited}
	for _, l := range rec.Locators {
		if l.Address.AFI == wire.AFIIPv4 || l.Address.AFI == wire.AFIIPv6 {
			m.RLOCs = append(m.RLOCs, slowpath.ResolvedRLOC{Addr: l.Address.IP.Unmap(), Priority: l.Priority, Weight: l.Weight,
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
	if ent := t.entries[key]; ent != nil {
		ent.solicited = solicited
	}
}

// track remembers an installed mapping: a refresh before its TTL runs out,
// and its RLOCs for probing.
func (t *ITR) track(key slowpath.EIDPrefix, ttl time.Duration, rlocs []netip.Addr) {
	c := t.c
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
	ent.rlocs, ent.expires, ent.solicited, ent.installed = rlocs, c.Now().Add(ttl), false, c.Now()
	for _, a := range rlocs {
		ps := t.rlocs[a]
		if ps == nil {
			ps = &probeState{addr: a, users: map[slowpath.EIDPrefix]struct{}{}, up: true}
			t.rlocs[a] = ps
		}
		ps.users[key] = struct{}{}
	}
	at := c.Now().Add(ttl - min(t.cfg.RefreshBefore, ttl/2))
	if t.subscribes(key) {
		// Renew the subscription at the latest Resubscribe from now.
		at = minTime(at, c.Now().Add(t.sub.cfg.Resubscribe))
	}
	if ent.refresh == nil {
		ent.refresh = c.Schedule(at, func(time.Time) { t.refresh(ent) })
	} else {
		ent.refresh.Reset(at)
	}
}

// forget stops tracking a mapping.
func (t *ITR) forget(key slowpath.EIDPrefix) {
	ent := t.entries[key]
	if ent == nil {
		return
	}
	delete(t.entries, key)
	ent.refresh.Stop()
	t.dropSub(key)
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
func (t *ITR) refresh(ent *itrEntry) {
	if t.entries[ent.key] != ent {
		return
	}
	if !t.inst.Active(ent.key) {
		t.unsubscribe(ent.key)
		t.forget(ent.key)
		return
	}
	if t.byEID[ent.key] == nil {
		t.request(ent.key, netip.Addr{}, t.c.Now(), false, true)
	}
}

// onSMR answers a solicit-Map-Request (RFC 9301 §6.6.2) for a mapping the
// ITR holds with an SMR-invoked Map-Request (s bit) to the mapping system.
func (t *ITR) onSMR(m *slowpath.Msg) bool {
	c := t.c
	req := m.Request
	st := c.Msg(wire.TypeMapRequest)
	eid := &req.SourceEID
	ml := uint8(0)
	if eid.IsZero() {
		eid, ml = &req.Records[0].EID, req.Records[0].MaskLen
	}
	iid, in, ok := eid.Unwrap()
	if !ok || (in.AFI != wire.AFIIPv4 && in.AFI != wire.AFIIPv6) {
		st.Ignored++
		return true
	}
	_ = ml
	addr := in.IP.Unmap()
	var key slowpath.EIDPrefix
	found := false
	for k := range t.entries {
		if k.IID == iid && k.Prefix.Contains(addr) && (!found || k.Prefix.Bits() > key.Prefix.Bits()) {
			key, found = k, true
		}
	}
	if !found {
		st.Ignored++
		return true
	}
	if t.byEID[key] != nil {
		return true
	}
	if at, ok := t.recent[key]; ok && c.Now().Sub(at) < t.cfg.MinRequestInterval {
		return true
	}
	t.stats.SMRInvoked++
	t.request(key, netip.Addr{}, c.Now(), true, true)
	return true
}

// probeRound counts the probes of the last round still unanswered as
// misses, marks RLOCs down after ProbeMisses in a row, and sends the next
// probes (RFC 9301 §7.1): Map-Requests with the P bit sent straight to the
// RLOC, each a request whose reply must come from that RLOC.
func (t *ITR) probeRound() {
	for addr, ps := range t.rlocs {
		if len(ps.users) == 0 {
			delete(t.rlocs, addr)
			continue
		}
		if q := ps.probe; q != nil {
			// Unanswered through the whole round: a reply after this
			// counts as late.
			t.probes.Cancel(q)
			t.probeMissed(ps)
		}
		var user slowpath.EIDPrefix
		for u := range ps.users {
			user = u
			break
		}
		n := t.probes.NewNonce()
		req := wire.MapRequest{
			Probe:    true,
			Nonce:    n,
			ITRRLOCs: t.itrRLOCs,
			Records:  []wire.EIDRecord{{MaskLen: uint8(user.Prefix.Bits()), EID: slowpath.EIDAddress(user.IID, user.Prefix.Addr())}},
		}
		b, err := req.Append(t.wbuf[:0])
		if err != nil {
			continue
		}
		t.wbuf = b
		spec := request.Spec{Type: wire.TypeMapRequest, Targets: []netip.AddrPort{netip.AddrPortFrom(addr, t.cfg.ProbePort)},
			MatchSource: true, Value: ps, Done: t.probeDone}
		q, err := t.probes.Start(&spec, n, b)
		if err != nil {
			continue
		}
		ps.probe = q
		t.stats.ProbesSent++
	}
}

// probedFrom returns the RLOC a probe reply answers for: the locator its
// p bit marks as the one the probe was sent to (RFC 9301 §5.4), else the
// reply's source. The source alone would not do: the ETR sends the reply
// to one of the ITR-RLOCs (RFC 9301 §5.4), so the reply to a probe of an
// IPv6 RLOC may come over IPv4, from another of its addresses.
func probedFrom(rep *wire.MapReply, src netip.AddrPort) netip.AddrPort {
	for i := range rep.Records {
		for _, l := range rep.Records[i].Locators {
			if l.Probed && (l.Address.AFI == wire.AFIIPv4 || l.Address.AFI == wire.AFIIPv6) {
				return netip.AddrPortFrom(l.Address.IP.Unmap(), src.Port())
			}
		}
	}
	return src
}

// probeDone runs when a probe ends: answered, cancelled by the next round
// (which counted the miss), or timed out (a miss).
func (t *ITR) probeDone(q *request.Request, o request.Outcome) {
	ps := q.Value().(*probeState)
	if ps.probe != q {
		return
	}
	ps.probe = nil
	if t.rlocs[ps.addr] != ps {
		return // no mapping uses the RLOC any more
	}
	switch o {
	case request.Answered:
		t.probeAnswered(ps)
	case request.GaveUp:
		t.probeMissed(ps)
	}
}

// probeMissed counts an unanswered probe of ps and marks its RLOC down
// after ProbeMisses in a row.
func (t *ITR) probeMissed(ps *probeState) {
	ps.misses++
	if ps.misses >= t.cfg.ProbeMisses && ps.up {
		ps.up = false
		t.stats.RLOCDown++
		t.c.Log().Info("RLOC unreachable", "rloc", ps.addr, "missed_probes", ps.misses)
		for u := range ps.users {
			t.inst.SetRLOCReachable(u, ps.addr, false)
		}
	}
}

// probeAnswered resets the misses of ps and marks its RLOC up again.
func (t *ITR) probeAnswered(ps *probeState) {
	ps.misses = 0
	if !ps.up {
		ps.up = true
		t.stats.RLOCUp++
		t.c.Log().Info("RLOC reachable again", "rloc", ps.addr)
		for u := range ps.users {
			t.inst.SetRLOCReachable(u, ps.addr, true)
		}
	}
}

// minTime returns the earlier of a and b.
func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

package mapserver

import (
	"net/netip"
	"slices"
	"time"

	"github.com/rloc-router/rloc/slowpath"

	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/wire"
)

// The Map-Server's (S,G) registrations (RFC 8378 §5, RFC 9301 §8.2 merge
// semantics). Every ETR or RTR registering an (S,G) or (*,G) with the merge
// bit contributes RLE entries; the Map-Server answers with the union (one
// RLE) and notifies every change to the ITRs that asked for the (S,G)
// recently, with unsolicited Map-Notifies retransmitted until
// acknowledged (RFC 9301 §5.7). RTRs registered for the entry are notified
// too of every change while the entry has RTRs, so that trees re-form.

// maxSubscribers bounds the ITRs subscribed to one (S,G).
const maxSubscribers = 4096

// msSG is the Map-Server's multicast state.
type msSG struct {
	ents    map[slowpath.SGKey]*sgEntry
	pending map[wire.Nonce]*sgNotify
}

// sgEntry is one registered (S,G) with each registrant's entries.
type sgEntry struct {
	key    slowpath.SGKey
	site   *site
	regs   []*sgReg
	merged []wire.RLENode
	subs   map[netip.AddrPort]time.Time // ITRs that asked, with when
	notes  map[netip.AddrPort]*sgNotify // unacknowledged notifications
}

type sgReg struct {
	id      regID
	src     netip.AddrPort
	nodes   []wire.RLENode
	expires time.Time
	t       *slowpath.Timer
}

// sgNotify is an unsolicited Map-Notify waiting for its Map-Notify-Ack.
type sgNotify struct {
	ent   *sgEntry
	dst   netip.AddrPort
	nonce wire.Nonce
	msg   []byte
	tries int
	t     *slowpath.Timer
}

func (ms *MapServer) sgState() *msSG {
	if ms.sg == nil {
		ms.sg = &msSG{ents: map[slowpath.SGKey]*sgEntry{}, pending: map[wire.Nonce]*sgNotify{}}
	}
	return ms.sg
}

// isSGRegister reports whether a parsed Map-Register is an (S,G)
// registration (its first record's EID is a multicast-info LCAF).
func isSGRegister(reg *wire.MapRegister) bool {
	if len(reg.Records) == 0 {
		return false
	}
	_, ok := slowpath.SGKeyOf(&reg.Records[0].EID)
	return ok
}

// onRegisterSG handles a parsed (S,G) Map-Register: the site is the one
// allowed to register the group prefix; records must all be (S,G).
func (ms *MapServer) onRegisterSG(src netip.AddrPort, b []byte, reg *wire.MapRegister) {
	c := ms.c
	st := c.Msg(wire.TypeMapRegister)
	k0, _ := slowpath.SGKeyOf(&reg.Records[0].EID)
	sp := ms.allowedFor(k0.IID, k0.Group)
	if sp == nil {
		st.Rejected++
		ms.stats.RegistrationsRejected += uint64(len(reg.Records))
		c.Log().Warn("(S,G) Map-Register for a group no site may register", "src", src, "sg", k0.String())
		return
	}
	s := sp.site
	key, ok := s.keys[reg.Auth.KeyID]
	if !ok || key.Alg != reg.Auth.Alg ||
		wire.VerifyAuth(b, slowpath.AuthDataOff, len(reg.Auth.Data), reg.Auth.Alg, []byte(key.Secret)) != nil {
		st.BadAuth++
		c.Log().Warn("(S,G) Map-Register authentication failed", "site", s.cfg.Name, "src", src)
		return
	}
	id := regID{src: src}
	if reg.XTRIDPresent {
		id = regID{xtr: reg.XTRID}
	}
	cfg := ms.mcfg
	sg := ms.sgState()
	ms.recs = ms.recs[:0]
	for i := range reg.Records {
		r := &reg.Records[i]
		k, ok := slowpath.SGKeyOf(&r.EID)
		if !ok || ms.allowedFor(k.IID, k.Group) == nil || ms.allowedFor(k.IID, k.Group).site != s {
			ms.stats.RegistrationsRejected++
			c.Log().Warn("(S,G) Map-Register record refused: not an (S,G) of the site", "site", s.cfg.Name, "src", src, "eid", r.EID.String())
			continue
		}
		if r.TTL == 0 {
			ms.removeSG(k, id)
		} else {
			nodes, err := slowpath.RecordRLE(r)
			if err == nil {
				err = checkRegisteredRLE(nodes, cfg.MaxRLE)
			}
			if err != nil {
				ms.stats.RegistrationsRejected++
				c.Log().Warn("(S,G) Map-Register refused: bad RLE", "site", s.cfg.Name, "src", src, "sg", k.String(), "err", err)
				continue
			}
			life := ms.timeout
			if reg.UseTTL && r.TTL != wire.TTLReceiverDecides {
				life = time.Duration(r.TTL) * time.Minute
			}
			if !ms.storeSG(k, s, id, src, nodes, life, cfg.MaxRLE) {
				ms.stats.RegistrationsRejected++
				continue
			}
		}
		ms.stats.RegistrationsAccepted++
		ms.recs = append(ms.recs, *r)
		if ent := sg.ents[k]; ent != nil {
			ms.recs[len(ms.recs)-1] = slowpath.SGRecord(k, r.TTL, ent.merged)
		}
	}
	if len(ms.recs) == 0 {
		st.Rejected++
		return
	}
	if reg.WantMapNotify {
		ms.sendNotifyRecords(src, reg, key)
	}
}

// checkRegisteredRLE refuses what one registrant may not contribute:
// too many entries, addresses that are not RLOCs or usable groups,
// duplicates.
func checkRegisteredRLE(nodes []wire.RLENode, max int) error {
	if len(nodes) > max {
		return replicate.ErrRLETooLarge
	}
	es, err := replicate.EntriesFromRLE(nodes)
	if err != nil {
		return err
	}
	_, err = replicate.ValidateRLE(es, replicate.PlanConfig{Role: replicate.RoleITR, MaxEntries: max})
	return err
}

// sendNotifyRecords answers a Map-Register with a Map-Notify echoing its
// nonce, with ms.recs as the records.
func (ms *MapServer) sendNotifyRecords(dst netip.AddrPort, reg *wire.MapRegister, key slowpath.AuthKey) {
	c := ms.c
	n := &ms.notify
	n.XTRIDPresent, n.XTRID, n.SiteID, n.RTR = reg.XTRIDPresent, reg.XTRID, reg.SiteID, false
	n.Nonce = reg.Nonce
	ms.authBuf = append(ms.authBuf[:0], make([]byte, len(reg.Auth.Data))...)
	n.Auth = wire.Auth{KeyID: reg.Auth.KeyID, Alg: reg.Auth.Alg, Data: ms.authBuf}
	n.Records = ms.recs
	out, err := n.AppendSigned(ms.wbuf[:0], []byte(key.Secret))
	if err != nil {
		c.Msg(wire.TypeMapNotify).SendErrors++
		c.Log().Error("cannot encode (S,G) Map-Notify", "err", err)
		return
	}
	ms.wbuf = out
	c.Send(dst, out, wire.TypeMapNotify)
}

// storeSG adds or refreshes one registrant's entries for k. It reports false
// (logged) when the merged RLE would exceed max entries.
func (ms *MapServer) storeSG(k slowpath.SGKey, s *site, id regID, src netip.AddrPort, nodes []wire.RLENode, life time.Duration, max int) bool {
	c := ms.c
	sg := ms.sgState()
	ent := sg.ents[k]
	if ent == nil {
		ent = &sgEntry{key: k, site: s, subs: map[netip.AddrPort]time.Time{}, notes: map[netip.AddrPort]*sgNotify{}}
		sg.ents[k] = ent
	}
	var r *sgReg
	for _, x := range ent.regs {
		if x.id == id {
			r = x
		}
	}
	if n := mergedLen(ent, r, nodes); n > max {
		c.Log().Warn("(S,G) Map-Register refused: merged RLE too large", "sg", k.String(), "src", src, "entries", n, "max", max)
		if len(ent.regs) == 0 {
			delete(sg.ents, k)
		}
		return false
	}
	if r == nil {
		r = &sgReg{id: id}
		ent.regs = append(ent.regs, r)
		ms.nregs++
		r.t = c.Schedule(c.Now().Add(life), func(now time.Time) { ms.expireSG(ent, r, now) })
	} else {
		r.t.Reset(c.Now().Add(life))
	}
	r.src = src
	r.expires = c.Now().Add(life)
	r.nodes = r.nodes[:0]
	for _, n := range nodes {
		r.nodes = append(r.nodes, wire.RLENode{Level: n.Level, Address: n.Address.Clone()})
	}
	ms.mergeSG(ent)
	return true
}

// mergedLen is the size of ent's merged RLE with r's entries replaced by
// nodes.
func mergedLen(ent *sgEntry, r *sgReg, nodes []wire.RLENode) int {
	seen := map[netip.Addr]bool{}
	for _, x := range ent.regs {
		if x == r {
			continue
		}
		for _, n := range x.nodes {
			seen[n.Address.IP] = true
		}
	}
	for _, n := range nodes {
		seen[n.Address.IP] = true
	}
	return len(seen)
}

func (ms *MapServer) expireSG(ent *sgEntry, r *sgReg, now time.Time) {
	if now.Before(r.expires) {
		r.t.Reset(r.expires)
		return
	}
	ms.stats.RegistrationsExpired++
	ms.log.Info("(S,G) registration expired", "sg", ent.key.String(), "src", r.src)
	ms.dropSG(ent, r)
}

func (ms *MapServer) removeSG(k slowpath.SGKey, id regID) {
	ent := ms.sgState().ents[k]
	if ent == nil {
		return
	}
	for _, r := range ent.regs {
		if r.id == id {
			r.t.Stop()
			ms.dropSG(ent, r)
			return
		}
	}
}

func (ms *MapServer) dropSG(ent *sgEntry, r *sgReg) {
	i := slices.Index(ent.regs, r)
	if i < 0 {
		return
	}
	ent.regs = slices.Delete(ent.regs, i, i+1)
	ms.nregs--
	ms.mergeSG(ent)
	if len(ent.regs) == 0 && len(ent.subs) == 0 && len(ent.notes) == 0 {
		delete(ms.sgState().ents, ent.key)
	}
}

// mergeSG recomputes ent's merged RLE (entries deduplicated by address,
// sorted by level then address so every Map-Server orders them alike) and
// notifies the change.
func (ms *MapServer) mergeSG(ent *sgEntry) {
	var merged []wire.RLENode
	seen := make(map[netip.Addr]bool)
	for _, r := range ent.regs {
		for _, n := range r.nodes {
			// Registered entries are plain IPv4/IPv6 RLOCs (checked on
			// registration), so the address identifies them.
			if !seen[n.Address.IP] {
				seen[n.Address.IP] = true
				merged = append(merged, n)
			}
		}
	}
	sortRLE(merged)
	if slices.EqualFunc(merged, ent.merged, func(a, b wire.RLENode) bool { return a.Level == b.Level && slowpath.AddrEqual(&a.Address, &b.Address) }) {
		return
	}
	// Registrants are told when the tree's RTRs change, and of every change
	// while there are RTRs (ETRs compute their parents from the whole RLE).
	registrants := len(rtrSet(merged)) > 0 || len(rtrSet(ent.merged)) > 0
	ent.merged = merged
	ms.notifyChange(ent, registrants)
}

// sortRLE orders RLE entries by level, then address.
func sortRLE(ns []wire.RLENode) {
	slices.SortFunc(ns, func(a, b wire.RLENode) int {
		if a.Level != b.Level {
			return int(a.Level) - int(b.Level)
		}
		return a.Address.IP.Compare(b.Address.IP)
	})
}

// effectiveRLE is the RLE ITRs subscribed to ent are given: for an (S,G)
// its own merged RLE joined with the (*,G) one of the same group, since
// receivers that joined the group for any source want S's traffic too
// (RFC 8378 §4); for a (*,G) its own.
func (ms *MapServer) effectiveRLE(ent *sgEntry) []wire.RLENode {
	if ent.key.Star() {
		return ent.merged
	}
	star := ms.sgState().ents[slowpath.NewSGKey(ent.key.IID, netip.Prefix{}, ent.key.Group)]
	if star == nil || len(star.merged) == 0 {
		return ent.merged
	}
	out := slices.Clone(ent.merged)
	for _, n := range star.merged {
		if !slices.ContainsFunc(out, func(x wire.RLENode) bool { return x.Address.IP == n.Address.IP }) {
			out = append(out, n)
		}
	}
	sortRLE(out)
	return out
}

// rtrSet lists the entries below the ETR level (the RTRs).
func rtrSet(ns []wire.RLENode) []netip.Addr {
	var out []netip.Addr
	for _, n := range ns {
		if n.Level < replicate.ETRLevel {
			out = append(out, n.Address.IP)
		}
	}
	return out
}

// notifyChange sends the merged mapping to the subscribed ITRs and, when
// the RTRs changed, to every registrant.
func (ms *MapServer) notifyChange(ent *sgEntry, registrants bool) {
	c := ms.c
	cfg := ms.mcfg
	if cfg.Key.Secret == "" {
		return // no key to sign unsolicited Map-Notifies with
	}
	ms.notifySubscribers(ent)
	if ent.key.Star() {
		// Every (S,G) of the group answers with the (*,G) entries too.
		for _, o := range ms.sgState().ents {
			if o != ent && !o.key.Star() && o.key.IID == ent.key.IID && o.key.Group == ent.key.Group && len(o.subs) > 0 {
				ms.notifySubscribers(o)
			}
		}
	} else if star := ms.sgState().ents[slowpath.NewSGKey(ent.key.IID, netip.Prefix{}, ent.key.Group)]; star != nil {
		// ITRs answered for (*,G) learn the (S,G), which now differs.
		rle := ms.effectiveRLE(ent)
		for dst, at := range star.subs {
			if _, sub := ent.subs[dst]; !sub && c.Now().Sub(at) <= cfg.SubscribeWindow {
				ent.subs[dst] = at
				ms.sendUnsolicited(ent, dst, rle)
			}
		}
	}
	if registrants {
		for _, r := range ent.regs {
			if _, sub := ent.subs[r.src]; !sub {
				ms.sendUnsolicited(ent, r.src, ent.merged)
			}
		}
	}
}

// notifySubscribers sends ent's effective RLE to the ITRs subscribed to it
// within the subscription window, forgetting the others.
func (ms *MapServer) notifySubscribers(ent *sgEntry) {
	c := ms.c
	cfg := ms.mcfg
	rle := ms.effectiveRLE(ent)
	for dst, at := range ent.subs {
		if c.Now().Sub(at) > cfg.SubscribeWindow {
			delete(ent.subs, dst)
			continue
		}
		ms.sendUnsolicited(ent, dst, rle)
	}
}

// sendUnsolicited sends ent's mapping with the RLE rle to dst in an
// unsolicited Map-Notify with a fresh nonce, replacing an unacknowledged
// older one, and retransmits it until the Map-Notify-Ack (RFC 9301 §5.7).
func (ms *MapServer) sendUnsolicited(ent *sgEntry, dst netip.AddrPort, rle []wire.RLENode) {
	c := ms.c
	cfg := ms.mcfg
	sg := ms.sgState()
	if old := ent.notes[dst]; old != nil {
		delete(sg.pending, old.nonce)
		old.t.Stop()
	}
	k := cfg.Key
	n := wire.MapNotify{
		Nonce:   slowpath.NewNonce(),
		Auth:    wire.NewAuth(k.KeyID, k.Alg, false),
		Records: []wire.Record{slowpath.SGRecord(ent.key, slowpath.TTLMinutes(ms.timeout), rle)},
	}
	msg, err := n.AppendSigned(nil, []byte(k.Secret))
	if err != nil {
		c.Log().Error("cannot encode unsolicited Map-Notify", "sg", ent.key.String(), "err", err)
		return
	}
	note := &sgNotify{ent: ent, dst: dst, nonce: n.Nonce, msg: msg}
	ent.notes[dst] = note
	sg.pending[note.nonce] = note
	c.Send(dst, msg, wire.TypeMapNotify)
	ms.mstats.NotifiesSent++
	note.t = c.Schedule(c.Now().Add(cfg.RetryInterval), func(time.Time) { ms.retryNotify(note) })
}

func (ms *MapServer) retryNotify(note *sgNotify) {
	c := ms.c
	cfg := ms.mcfg
	sg := ms.sgState()
	if sg.pending[note.nonce] != note {
		return
	}
	if note.tries >= cfg.Retries {
		delete(sg.pending, note.nonce)
		delete(note.ent.notes, note.dst)
		ms.mstats.NotifyGaveUp++
		c.Log().Warn("unsolicited Map-Notify never acknowledged", "sg", note.ent.key.String(), "dst", note.dst, "tries", note.tries+1)
		return
	}
	note.tries++
	ms.mstats.NotifyRetries++
	c.Send(note.dst, note.msg, wire.TypeMapNotify)
	note.t.Reset(c.Now().Add(cfg.RetryInterval << note.tries))
}

// onNotifyAck matches a Map-Notify-Ack to an unsolicited Map-Notify.
func (ms *MapServer) onNotifyAck(m *slowpath.Msg) bool {
	c := ms.c
	src, b := m.Src, m.Raw
	st := c.Msg(wire.TypeMapNotifyAck)
	nonce, ok := m.Nonce()
	if !ok || ms.sg == nil {
		st.Ignored++
		return true
	}
	note := ms.sg.pending[nonce]
	if note == nil {
		st.Ignored++
		return true
	}
	var a wire.MapNotifyAck
	k := ms.mcfg.Key
	if err := a.Parse(b); err != nil {
		st.BadParse++
		return true
	}
	if a.Auth.Alg != k.Alg || a.Auth.KeyID != k.KeyID || wire.VerifyAuth(b, slowpath.AuthDataOff, len(a.Auth.Data), a.Auth.Alg, []byte(k.Secret)) != nil {
		st.BadAuth++
		c.Log().Warn("Map-Notify-Ack authentication failed", "src", src)
		return true
	}
	delete(ms.sg.pending, nonce)
	delete(note.ent.notes, note.dst)
	note.t.Stop()
	ms.mstats.NotifyAcked++
	return true
}

// answerSG answers an (S,G) Map-Request as the Map-Server: a proxy reply
// for the (S,G) entry with its effective RLE (its own receivers and the
// (*,G) ones) when it has registrations, else for the (*,G) entry, else a
// record with no locators; the requester (its ITR-RLOC and port) is
// subscribed to the entry answered (RFC 8378 §5). An ITR answered for
// (*,G) hears of (S,G) registrations that come later through the (*,G)
// subscription (notifyChange). It reports false, answering nothing, when
// no site may register the group.
func (ms *MapServer) AnswerSG(m *slowpath.Msg, k slowpath.SGKey) bool {
	c := ms.c
	port, src, req := m.Port, m.Src, m.Request
	sg := ms.sgState()
	ent := sg.ents[k]
	if ent == nil || len(ent.regs) == 0 {
		if star := sg.ents[slowpath.NewSGKey(k.IID, netip.Prefix{}, k.Group)]; star != nil && len(star.regs) > 0 {
			ent = star
		}
	}
	if ent == nil {
		if ms.allowedFor(k.IID, k.Group) == nil {
			return false
		}
		ent = &sgEntry{key: k, subs: map[netip.AddrPort]time.Time{}, notes: map[netip.AddrPort]*sgNotify{}}
		sg.ents[k] = ent
	}
	dst := c.ReplyTarget(req.ITRRLOCs, port, src)
	if len(ent.subs) < maxSubscribers {
		ent.subs[dst] = c.Now()
	}
	rle := ms.effectiveRLE(ent)
	rep := wire.MapReply{Nonce: req.Nonce, Records: []wire.Record{slowpath.SGRecord(ent.key, slowpath.TTLMinutes(ms.timeout), rle)}}
	rep.Records[0].Authoritative = false
	if len(rle) == 0 {
		rep.Records[0].TTL = 1
	}
	b, err := rep.Append(ms.wbuf[:0])
	if err != nil {
		c.Msg(wire.TypeMapReply).SendErrors++
		return true
	}
	ms.wbuf = b
	c.Send(dst, b, wire.TypeMapReply)
	ms.stats.ProxyReplies++
	return true
}

// McastRLE returns the merged RLE the Map-Server holds for an (S,G) or
// (*,G) (src invalid), for listings and tests (event loop only).
func (ms *MapServer) McastRLE(iid uint32, src, group netip.Prefix) []replicate.Entry {
	if ms.sg == nil {
		return nil
	}
	var out []replicate.Entry
	if ent := ms.sg.ents[slowpath.NewSGKey(iid, src, group)]; ent != nil {
		out, _ = replicate.EntriesFromRLE(ent.merged)
	}
	return out
}

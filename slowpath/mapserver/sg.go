package mapserver

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/regstore"

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

// msSG is the Map-Server's multicast state: the registration store of
// (S,G) registrations and, by (S,G), the merged RLEs and the subscribed
// ITRs (an entry may have subscribers before it has registrants).
type msSG struct {
	store *regstore.Store[slowpath.SGKey, []wire.RLENode]
	ents  map[slowpath.SGKey]*sgEntry
}

// sgEntry is the merged RLE of one (S,G) and its subscribers.
type sgEntry struct {
	key    slowpath.SGKey
	merged []wire.RLENode
	subs   map[netip.AddrPort]time.Time // ITRs that asked, with when
}

// newSG makes the (S,G) registration store, authorised by sites, with
// the bounds of base.
func (ms *MapServer) newSG(sites *regstore.Sites, base regstore.Config) *msSG {
	sg := &msSG{ents: map[slowpath.SGKey]*sgEntry{}}
	cfg := ms.mcfg
	base.Notify = regstore.NotifyConfig{Key: cfg.Key.RegKey(), Interval: cfg.RetryInterval, MaxTries: cfg.Retries + 1}
	sg.store = regstore.New(ms.c.Clock(), ms.c, regstore.Kind[slowpath.SGKey, []wire.RLENode](sgKind{ms}), sites,
		regstore.Sink[slowpath.SGKey](sgSink{ms}), base)
	return sg
}

// entry returns the role's state of k, creating it.
func (sg *msSG) entry(k slowpath.SGKey) *sgEntry {
	ent := sg.ents[k]
	if ent == nil {
		ent = &sgEntry{key: k, subs: map[netip.AddrPort]time.Time{}}
		sg.ents[k] = ent
	}
	return ent
}

// registered reports whether k has registrants.
func (sg *msSG) registered(k slowpath.SGKey) bool { return sg.store.Entry(k) != nil }

// isSGRegister reports whether a parsed Map-Register is an (S,G)
// registration (its first record's EID is a multicast-info LCAF).
func isSGRegister(reg *wire.MapRegister) bool {
	if len(reg.Records) == 0 {
		return false
	}
	_, ok := slowpath.SGKeyOf(&reg.Records[0].EID)
	return ok
}

// sgKind tells the registration store about (S,G) records (RFC 8378 §5):
// keyed by (S,G), authorised by the group prefix, each registrant
// contributing RLE entries, merged into one RLE.
type sgKind struct{ ms *MapServer }

func (sgKind) Key(rec *wire.Record) (slowpath.SGKey, bool) { return slowpath.SGKeyOf(&rec.EID) }

func (sgKind) Scope(k slowpath.SGKey) (uint32, netip.Prefix) { return k.IID, k.Group }

// Value refuses what one registrant may not contribute (too many entries,
// addresses that are not RLOCs or usable groups, duplicates) and a merged
// RLE that would grow beyond MaxRLE.
func (sk sgKind) Value(e *regstore.Entry[slowpath.SGKey, []wire.RLENode], r *regstore.Registrant[slowpath.SGKey, []wire.RLENode], rec *wire.Record, v *[]wire.RLENode) error {
	max := sk.ms.mcfg.MaxRLE
	nodes, err := slowpath.RecordRLE(rec)
	if err == nil {
		err = checkRegisteredRLE(nodes, max)
	}
	if err != nil {
		return fmt.Errorf("bad RLE: %w", err)
	}
	if n := mergedLen(e, r, nodes); n > max {
		return fmt.Errorf("merged RLE too large: %d entries, the maximum is %d", n, max)
	}
	*v = (*v)[:0]
	for _, n := range nodes {
		*v = append(*v, wire.RLENode{Level: n.Level, Address: n.Address.Clone()})
	}
	return nil
}

func (sk sgKind) Changed(e *regstore.Entry[slowpath.SGKey, []wire.RLENode]) { sk.ms.mergeSG(e) }

// Unchanged reports false: every refresh merges the RLE again (bounded
// by MaxRLE).
func (sgKind) Unchanged(*regstore.Entry[slowpath.SGKey, []wire.RLENode], *regstore.Registrant[slowpath.SGKey, []wire.RLENode], *wire.Record) bool {
	return false
}

// Confirm answers a registration with the merged RLE of its (S,G).
func (sk sgKind) Confirm(_ *regstore.Entry[slowpath.SGKey, []wire.RLENode], rec *wire.Record, _ *wire.MapRegister) wire.Record {
	k, _ := slowpath.SGKeyOf(&rec.EID)
	if ent := sk.ms.sg.ents[k]; ent != nil {
		return slowpath.SGRecord(k, rec.TTL, ent.merged)
	}
	return *rec
}

// sgSink reports (S,G) registration events as the core's events, under
// the group prefix.
type sgSink struct{ ms *MapServer }

func (s sgSink) RegistrationEvent(ev *regstore.Event[slowpath.SGKey]) {
	s.ms.trust(ev.Kind, ev.Source)
	if s.ms.quiet(ev.Kind) {
		return
	}
	var eid slowpath.EIDPrefix
	if ev.HasKey {
		eid = slowpath.EIDPrefix{IID: ev.Key.IID, Prefix: ev.Key.Group}
	}
	s.ms.report(ev.Kind, ev.Site, eid, ev.Key.String(), ev.Source, ev.Reason)
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

// mergedLen is the size of e's merged RLE with r's entries replaced by
// nodes.
func mergedLen(e *regstore.Entry[slowpath.SGKey, []wire.RLENode], r *regstore.Registrant[slowpath.SGKey, []wire.RLENode], nodes []wire.RLENode) int {
	seen := map[netip.Addr]bool{}
	if e != nil {
		for _, x := range e.Registrants() {
			if x == r {
				continue
			}
			for _, n := range x.Value {
				seen[n.Address.IP] = true
			}
		}
	}
	for _, n := range nodes {
		seen[n.Address.IP] = true
	}
	return len(seen)
}

// mergeSG recomputes the merged RLE of e's (S,G) (entries deduplicated by
// address, sorted by level then address so every Map-Server orders them
// alike) and notifies the change.
func (ms *MapServer) mergeSG(e *regstore.Entry[slowpath.SGKey, []wire.RLENode]) {
	var merged []wire.RLENode
	seen := make(map[netip.Addr]bool)
	for _, r := range e.Registrants() {
		for _, n := range r.Value {
			// Registered entries are plain IPv4/IPv6 RLOCs (checked on
			// registration), so the address identifies them.
			if !seen[n.Address.IP] {
				seen[n.Address.IP] = true
				merged = append(merged, n)
			}
		}
	}
	sortRLE(merged)
	ent := ms.sg.entry(e.Key)
	if !slices.EqualFunc(merged, ent.merged, func(a, b wire.RLENode) bool { return a.Level == b.Level && slowpath.AddrEqual(&a.Address, &b.Address) }) {
		// Registrants are told when the tree's RTRs change, and of every
		// change while there are RTRs (ETRs compute their parents from the
		// whole RLE).
		registrants := len(rtrSet(merged)) > 0 || len(rtrSet(ent.merged)) > 0
		ent.merged = merged
		ms.notifyChange(ent, e, registrants)
	}
	if len(e.Registrants()) == 0 && len(ent.subs) == 0 {
		delete(ms.sg.ents, e.Key)
	}
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
	star := ms.sg.ents[slowpath.NewSGKey(ent.key.IID, netip.Prefix{}, ent.key.Group)]
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
// the RTRs changed, to every registrant of e.
func (ms *MapServer) notifyChange(ent *sgEntry, e *regstore.Entry[slowpath.SGKey, []wire.RLENode], registrants bool) {
	c := ms.c
	cfg := ms.mcfg
	if cfg.Key.Secret == "" {
		return // no key to sign unsolicited Map-Notifies with
	}
	ms.notifySubscribers(ent)
	if ent.key.Star() {
		// Every (S,G) of the group answers with the (*,G) entries too.
		for _, o := range ms.sg.ents {
			if o != ent && !o.key.Star() && o.key.IID == ent.key.IID && o.key.Group == ent.key.Group && len(o.subs) > 0 {
				ms.notifySubscribers(o)
			}
		}
	} else if star := ms.sg.ents[slowpath.NewSGKey(ent.key.IID, netip.Prefix{}, ent.key.Group)]; star != nil {
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
		for _, r := range e.Registrants() {
			if _, sub := ent.subs[r.Source]; !sub {
				ms.sendUnsolicited(ent, r.Source, ent.merged)
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
	rec := [1]wire.Record{slowpath.SGRecord(ent.key, slowpath.TTLMinutes(ms.timeout), rle)}
	if err := ms.sg.store.Notify(ent.key, dst, rec[:]); err != nil {
		ms.log.Error("cannot send unsolicited Map-Notify", "sg", ent.key.String(), "dst", dst, "err", err)
	}
}

// onNotifyAck matches a Map-Notify-Ack to an unsolicited Map-Notify.
func (ms *MapServer) onNotifyAck(m *slowpath.Msg) bool {
	st := ms.c.Msg(wire.TypeMapNotifyAck)
	if err := ms.ack.Parse(m.Raw); err != nil {
		st.BadParse++
		return true
	}
	if ms.ps.ack(m, &ms.ack) {
		return true
	}
	v, err := ms.sg.store.Ack(m.Src, m.Raw, &ms.ack)
	switch {
	case errors.Is(err, regstore.ErrUnmatchedAck):
		st.Ignored++
	case err != nil:
		st.BadAuth++
		ms.log.Warn("Map-Notify-Ack authentication failed", "src", m.Src, "err", err)
	default:
		st.Auth.Count(v)
	}
	return true
}

// AnswerSG answers an (S,G) Map-Request as the Map-Server: a proxy reply
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
	sg := ms.sg
	ent := sg.ents[k]
	if ent == nil || !sg.registered(k) {
		if star := slowpath.NewSGKey(k.IID, netip.Prefix{}, k.Group); sg.registered(star) {
			ent = sg.ents[star]
		}
	}
	if ent == nil {
		if ms.rsites.For(k.IID, k.Group) == nil {
			return false
		}
		ent = sg.entry(k)
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

// McastKeys lists the (S,G) and (*,G) that have a merged RLE, sorted
// (event loop only).
func (ms *MapServer) McastKeys() []slowpath.SGKey {
	var ks []slowpath.SGKey
	for k, ent := range ms.sg.ents {
		if len(ent.merged) > 0 {
			ks = append(ks, k)
		}
	}
	slices.SortFunc(ks, slowpath.SGKey.Compare)
	return ks
}

// McastRLE returns the merged RLE the Map-Server holds for an (S,G) or
// (*,G) (src invalid), for listings and tests (event loop only).
func (ms *MapServer) McastRLE(iid uint32, src, group netip.Prefix) []replicate.Entry {
	var out []replicate.Entry
	if ent := ms.sg.ents[slowpath.NewSGKey(iid, src, group)]; ent != nil {
		out, _ = replicate.EntriesFromRLE(ent.merged)
	}
	return out
}

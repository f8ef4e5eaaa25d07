// Package mapserver is the Map-Server role (RFC 9301 §8.2): it keeps the
// registrations of EID prefixes, group names
// (draft-ietf-lisp-group-mapping) and (S,G)s (RFC 8378) in regstore
// stores, builds the merged answers, and answers the requests the
// Map-Resolver front end hands it (resolver.Database): proxy Map-Replies or
// forwards to a registered ETR. Unsolicited Map-Notifies tell subscribed
// ITRs and the registrants of trees when a merged RLE changes.
package mapserver

import (
	"bytes"
	"cmp"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/gaissmai/bart"

	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/regstore"
	"github.com/rloc-router/rloc/wire"
)

// staticGroupTTL is the record TTL of configured group mappings.
const staticGroupTTL = 24 * time.Hour

// maxMergedLocators is what one record can carry: its Locator Count is
// 8 bits (RFC 9301 §5.4). A merged answer encodes the first ones.
const maxMergedLocators = 255

// MapServer is the Map-Server role (RFC 9301 §8.2): site registrations,
// proxy Map-Replies and forwarding of Map-Requests to ETRs. Its
// registrations live in regstore stores (authentication, site policy,
// merge by xTR-ID, expiry, Map-Notify); it keeps the answers.
type MapServer struct {
	c       *slowpath.Core
	log     *slog.Logger
	stats   slowpath.Stats
	mcfg    *slowpath.MulticastConfig
	wbuf    []byte
	ddt     ddtAnswers // RFC 8111 §7.2 (ddt.go)
	timeout time.Duration
	// rsites authorise the records of the stores; allowed are the sites'
	// prefixes as EID space the mapping system knows.
	rsites  *regstore.Sites
	allowed map[uint32]*bart.Table[struct{}]
	// uni holds the registrations of EID prefixes and group names.
	uni     *regstore.Store[uniKey, wire.Record]
	statics int
	// regs index the registered EID prefixes for longest-prefix lookups,
	// names the registered group names (draft-ietf-lisp-group-mapping,
	// "group-<G-EID prefix>"), by instance-ID and overlay group range.
	regs  map[uint32]*bart.Table[*regEntry]
	names map[uint32]*bart.Table[*regEntry]
	// dns index the registered distinguished-name EIDs (AFI 17, other
	// than group names) by instance-ID and name (names.go).
	dns map[slowpath.EIDName]*regEntry
	sg  *msSG // (S,G) registrations, sg.go
	ack wire.MapNotifyAck
	ps  *pubsub // RFC 9437 subscriptions, pubsub.go
	// secKey unwraps the ITR-OTKs of LISP-SEC requests; sec is the state
	// of the one being answered (lispsec.go).
	secKey string
	sec    slowpath.SecAnswer
	// refused rate-limits the log of refused registrations (refuselog.go).
	refused refuseLog
	// seen indexes the merged locators by address during rebuild.
	seen map[netip.Addr]int
	// watch are told of every change of an EID mapping (msx.go).
	watch []func(slowpath.EIDPrefix, *wire.Record)
	// watchNames are told of every change of a name's mapping (names.go).
	watchNames []func(slowpath.EIDName, *wire.Record)
	// pubs are the other sources of mappings the subscribers hear of
	// (msx.go).
	pubs []Publisher
}

// uniKey is what a unicast record is registered under: an EID prefix or,
// with name set, the overlay group range of a group name, or with dn set
// the distinguished name dn in IID (Prefix invalid).
type uniKey struct {
	slowpath.EIDPrefix
	name bool
	dn   string
}

// regEntry is the answer for one registered key: the union of its
// registrants' locators.
type regEntry struct {
	key slowpath.EIDPrefix
	// name: key.Prefix is the overlay group range of a group name, not an
	// EID prefix.
	name bool
	// dn is the distinguished name when the key is one (key.Prefix is
	// then invalid).
	dn    string
	e     *regstore.Entry[uniKey, wire.Record]
	rr    int
	merge bool
	proxy bool
	// merged is the record answered with: the union of the xTRs' locators;
	// enc is its encoding, prebuilt for proxy Map-Replies.
	merged wire.Record
	enc    []byte
	// prev is enc before the latest rebuild: subscribers hear of a
	// registration only when the answer changed (pubsub.go).
	prev []byte
	// dropped is how many locators the latest rebuild left out of merged
	// (maxMergedLocators); logged when it starts, not at every rebuild.
	dropped int
}

// recordKey returns what a registered record is stored under: its EID
// prefix, or for a group name (draft-ietf-lisp-group-mapping) the overlay
// group range it names.
func recordKey(r *wire.Record) (uniKey, bool) {
	if iid, p, ok := r.Prefix(); ok {
		return uniKey{EIDPrefix: slowpath.EIDPrefix{IID: iid, Prefix: p}}, true
	}
	iid, p, err := replicate.ParseGroupNameEID(&r.EID)
	if err != nil {
		if iid, n, ok := slowpath.NameEID(&r.EID); ok {
			return uniKey{EIDPrefix: slowpath.EIDPrefix{IID: iid}, dn: n}, true
		}
		return uniKey{}, false
	}
	return uniKey{EIDPrefix: slowpath.EIDPrefix{IID: iid, Prefix: p}, name: true}, true
}

// table returns the index of iid, for group names or EID prefixes,
// creating it when add is set.
func (ms *MapServer) table(iid uint32, name, add bool) *bart.Table[*regEntry] {
	m := ms.regs
	if name {
		m = ms.names
	}
	t := m[iid]
	if t == nil && add {
		t = new(bart.Table[*regEntry])
		m[iid] = t
	}
	return t
}

// New builds the Map-Server role of cfg (defaults applied) on c and
// registers its handlers: Map-Registers and Map-Notify-Acks. mcfg is the
// multicast configuration with its defaults (the (S,G) merge and its
// unsolicited Map-Notifies use its key, retries and subscription window).
// Requests reach it through the Map-Resolver front end (Answer, AnswerName,
// AnswerSG). Handlers that must see Map-Registers first (tree joins)
// register before it.
func New(c *slowpath.Core, cfg *slowpath.MapServerConfig, mcfg *slowpath.MulticastConfig) (*MapServer, error) {
	ms := &MapServer{
		c: c, log: c.Log(), mcfg: mcfg,
		timeout: cfg.RegistrationTimeout,
		secKey:  cfg.LispSecKey,
		regs:    map[uint32]*bart.Table[*regEntry]{},
		names:   map[uint32]*bart.Table[*regEntry]{},
		dns:     map[slowpath.EIDName]*regEntry{},
		seen:    map[netip.Addr]int{},
	}
	var err error
	if ms.rsites, ms.allowed, err = buildSites(cfg.Sites); err != nil {
		return nil, err
	}
	ms.uni = regstore.New(c.Clock(), c, regstore.Kind[uniKey, wire.Record](uniKind{ms}), ms.rsites,
		regstore.Sink[uniKey](uniSink{ms}), storeConfig(cfg))
	ms.sg = ms.newSG(ms.rsites, storeConfig(cfg))
	ms.ps = ms.newPubSub(cfg.PubSub)
	if err := ms.addGroupMappings(cfg.GroupMappings); err != nil {
		return nil, err
	}
	if ms.ddt, err = newDDTAnswers(cfg.DDT); err != nil {
		return nil, err
	}
	c.Handle(slowpath.RouteMapRegister, ms.onRegister)
	c.Handle(slowpath.RouteMapNotifyAck, ms.onNotifyAck)
	c.Handle(slowpath.RouteECM, ms.onDDTRequest) // RFC 8111 §7.2, ddt.go
	return ms, nil
}

// Persist makes the stores report their changes to the journals (one per
// store: unicast and (S,G)) and registers again what the journals saved,
// each until its saved deadline (regstore.Store.Restore). It runs before
// the event loop starts and reports how many registrations were restored
// and how many dropped (expired, or no longer allowed).
func (ms *MapServer) Persist(uni, sg regstore.Journal, savedUni, savedSG []regstore.Saved) (restored, dropped int) {
	ms.uni.SetJournal(uni)
	ms.sg.store.SetJournal(sg)
	r1, d1 := ms.uni.Restore(savedUni)
	r2, d2 := ms.sg.store.Restore(savedSG)
	// Their sources registered with a valid key: spared the rate limit's
	// totals while the registrations live, as if they had just registered.
	for _, saved := range [][]regstore.Saved{savedUni, savedSG} {
		for i := range saved {
			if saved[i].Source.IsValid() {
				ms.c.TrustUntil(saved[i].Source.Addr(), saved[i].Expires)
			}
		}
	}
	return r1 + r2, d1 + d2
}

// buildSites indexes the configured sites: for the stores, and their
// prefixes as known EID space.
func buildSites(cfg []slowpath.SiteConfig) (*regstore.Sites, map[uint32]*bart.Table[struct{}], error) {
	allowed := map[uint32]*bart.Table[struct{}]{}
	owner := map[slowpath.EIDPrefix]string{}
	for i := range cfg {
		for j, p := range cfg[i].Prefixes {
			if other, ok := owner[p.EIDPrefix]; ok {
				return nil, nil, fmt.Errorf("slowpath config: map_server.sites[%d].prefixes[%d]: %v in IID %d already belongs to site %q", i, j, p.Prefix, p.IID, other)
			}
			owner[p.EIDPrefix] = cfg[i].Name
			t := allowed[p.IID]
			if t == nil {
				t = new(bart.Table[struct{}])
				allowed[p.IID] = t
			}
			t.Insert(p.Prefix, struct{}{})
		}
	}
	sites, err := storeSites(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("slowpath config: map_server.sites: %w", err)
	}
	return sites, allowed, nil
}

// addGroupMappings registers the configured group mappings as static
// registrations of a site "group-mappings" that asks for proxy replies.
func (ms *MapServer) addGroupMappings(gms []replicate.GroupMapping) error {
	prov := &regstore.Site{Name: "group-mappings", ProxyReply: true}
	for i := range gms {
		m := &gms[i]
		r, err := m.Record(slowpath.TTLMinutes(staticGroupTTL), 1, 100)
		if err != nil {
			return fmt.Errorf("slowpath config: map_server.group_mappings[%d]: %w", i, err)
		}
		k := uniKey{EIDPrefix: slowpath.EIDPrefix{IID: m.IID, Prefix: m.GEID.Masked()}, name: true}
		if ms.uni.Entry(k) != nil {
			return fmt.Errorf("slowpath config: map_server.group_mappings[%d]: %s in IID %d configured twice", i, replicate.GroupName(k.Prefix), k.IID)
		}
		if err := ms.uni.AddStatic(k, prov, r); err != nil {
			return fmt.Errorf("slowpath config: map_server.group_mappings[%d]: %w", i, err)
		}
		ms.statics++
	}
	return nil
}

// uniKind tells the registration store about unicast records (RFC 9301
// §8.2): EID prefixes and group names, each registrant contributing its
// record, merged into one answer.
type uniKind struct{ ms *MapServer }

func (uniKind) Key(rec *wire.Record) (uniKey, bool) { return recordKey(rec) }

func (uniKind) Scope(k uniKey) (uint32, netip.Prefix) { return k.IID, k.Prefix }

// NameScope authorises distinguished names by the sites' names
// (regstore.NameKind).
func (uniKind) NameScope(k uniKey) (uint32, string, bool) { return k.IID, k.dn, k.dn != "" }

func (uniKind) Value(_ *regstore.Entry[uniKey, wire.Record], _ *regstore.Registrant[uniKey, wire.Record], rec *wire.Record, v *wire.Record) error {
	*v = slowpath.CloneRecord(rec, *v)
	return nil
}

// Unchanged reports whether refreshing r with rec leaves the answer as
// it is: the same record as r's, and r's TTL and map version those of
// the answer (the latest registration's, which r becomes).
func (uniKind) Unchanged(e *regstore.Entry[uniKey, wire.Record], r *regstore.Registrant[uniKey, wire.Record], rec *wire.Record) bool {
	ent, _ := e.Aux.(*regEntry)
	if ent == nil || ent.merged.TTL != rec.TTL || ent.merged.MapVersion != rec.MapVersion {
		return false
	}
	return sameRecord(&r.Value, rec)
}

// sameRecord reports whether two records register the same: TTL, action,
// flags, map version and locators.
func sameRecord(a, b *wire.Record) bool {
	if a.TTL != b.TTL || a.Action != b.Action || a.Authoritative != b.Authoritative || a.MapVersion != b.MapVersion ||
		len(a.Locators) != len(b.Locators) {
		return false
	}
	for i := range a.Locators {
		x, y := &a.Locators[i], &b.Locators[i]
		if x.Priority != y.Priority || x.Weight != y.Weight || x.MPriority != y.MPriority || x.MWeight != y.MWeight ||
			x.Local != y.Local || x.Probed != y.Probed || x.Reachable != y.Reachable || x.Unused != y.Unused ||
			!slowpath.AddrEqual(&x.Address, &y.Address) {
			return false
		}
	}
	return true
}

// Changed keeps the index and the answer of e's key in step with its
// registrants.
func (u uniKind) Changed(e *regstore.Entry[uniKey, wire.Record]) {
	ms := u.ms
	ent, _ := e.Aux.(*regEntry)
	if e.Key.dn != "" {
		ms.nameChanged(e, ent)
		return
	}
	if len(e.Registrants()) == 0 {
		if t := ms.table(e.Key.IID, e.Key.name, false); t != nil {
			t.Delete(e.Key.Prefix)
		}
		if !e.Key.name {
			ms.ps.changed(e.Key.EIDPrefix, nil)
			ms.watched(e.Key.EIDPrefix, nil)
		}
		return
	}
	if ent == nil {
		ent = &regEntry{key: e.Key.EIDPrefix, name: e.Key.name, e: e}
		e.Aux = ent
		ms.table(e.Key.IID, e.Key.name, true).Insert(e.Key.Prefix, ent)
	}
	ent.prev = append(ent.prev[:0], ent.enc...)
	ms.rebuild(ent)
	if !e.Key.name && !bytes.Equal(ent.prev, ent.enc) {
		// A new registration, a new RLOC set or new priorities: tell
		// the subscribers (RFC 9437 §5); a refresh changes nothing.
		ms.ps.changed(e.Key.EIDPrefix, &ent.merged)
		ms.watched(e.Key.EIDPrefix, &ent.merged)
	}
}

// Confirm answers a merge registration with the merged mapping
// (RFC 9301 §5.6), others with the record itself.
func (u uniKind) Confirm(e *regstore.Entry[uniKey, wire.Record], rec *wire.Record, reg *wire.MapRegister) wire.Record {
	if e == nil || !reg.Merge {
		return *rec
	}
	if ent, ok := e.Aux.(*regEntry); ok {
		return ent.merged
	}
	return *rec
}

// uniSink reports unicast registration events as the core's events.
type uniSink struct{ ms *MapServer }

func (s uniSink) RegistrationEvent(ev *regstore.Event[uniKey]) {
	s.ms.trust(ev.Kind, ev.Source)
	if ev.HasXTRID && ev.HasKey {
		switch ev.Kind {
		case regstore.Accepted:
			s.ms.ps.registered(ev.XTRID, ev.Key)
		case regstore.Expired, regstore.Withdrawn:
			s.ms.ps.unregistered(ev.XTRID, ev.Key)
		}
	}
	if s.ms.quiet(ev.Kind) {
		return
	}
	what := slowpath.EIDAddress(ev.Key.IID, ev.Key.Prefix.Addr()).String()
	switch {
	case ev.Key.name:
		what = replicate.GroupName(ev.Key.Prefix)
	case ev.Key.dn != "":
		what = ev.Key.dn
	}
	s.ms.report(ev.Kind, ev.Site, ev.Key.EIDPrefix, what, ev.Source, ev.Reason)
}

// onRegister verifies and stores a Map-Register (RFC 9301 §8.2) and answers
// with a Map-Notify when asked.
func (ms *MapServer) onRegister(m *slowpath.Msg) bool {
	st := ms.c.Msg(wire.TypeMapRegister)
	reg, err := m.MapRegister()
	if err != nil {
		st.BadParse++
		return true
	}
	if len(reg.Records) == 0 {
		st.Rejected++
		return true
	}
	if isSGRegister(reg) {
		ms.count(m.Src, ms.sg.store.Register(m.Src, m.Raw, reg))
		return true
	}
	ms.count(m.Src, ms.uni.Register(m.Src, m.Raw, reg))
	return true
}

// rebuild recomputes the answer of ent from its registrations: the union of
// every xTR's locators (deduplicated by address, the latest registration's
// values winning). With the merge bit (RFC 9301 §5.6, RFC 8378) the RLE
// locators of all xTRs are combined into one RLE, so that every registrant
// of an (S,G) becomes a hop of one replication list.
//
// A configured group mapping counts as a registration with the P and merge
// bits.
func (ms *MapServer) rebuild(ent *regEntry) {
	m := &ent.merged
	m.Locators = m.Locators[:0]
	ent.proxy = ent.e.Site.ProxyReply
	ent.merge = false
	var ttl uint32
	regs := ent.e.Registrants()
	latest := regs[0]
	for _, er := range regs {
		ent.proxy = ent.proxy || er.ProxyReply || er.Static
		ent.merge = ent.merge || er.Merge || er.Static
		if er.Expires.After(latest.Expires) {
			latest = er
		}
	}
	ttl = latest.Value.TTL
	rle := -1
	clear(ms.seen)
	dropped := 0
	for _, er := range regs {
		for _, l := range er.Value.Locators {
			if ent.merge && l.Address.AFI == wire.AFILCAF && l.Address.LCAF.Type == wire.LCAFRLE {
				if rle < 0 {
					rle = len(m.Locators)
					m.Locators = append(m.Locators, slowpath.CloneLocator(&l))
					continue
				}
				mergeRLE(&m.Locators[rle].Address.LCAF, &l.Address.LCAF)
				continue
			}
			// Plain addresses are found by the index, others (LCAFs) by
			// a search of the few that are not plain.
			ip := l.Address.AFI == wire.AFIIPv4 || l.Address.AFI == wire.AFIIPv6
			j, ok := ms.seen[l.Address.IP]
			if !ip {
				j = slices.IndexFunc(m.Locators, func(x wire.Locator) bool { return slowpath.AddrEqual(&x.Address, &l.Address) })
				ok = j >= 0
			}
			switch {
			case !ok && len(m.Locators) >= maxMergedLocators:
				dropped++
			case !ok:
				if ip {
					ms.seen[l.Address.IP] = len(m.Locators)
				}
				m.Locators = append(m.Locators, slowpath.CloneLocator(&l))
			case er == latest:
				m.Locators[j] = slowpath.CloneLocator(&l)
			}
		}
	}
	if dropped > 0 && ent.dropped == 0 {
		ms.stats.MergeTruncated++
		ms.refused.log(ms.log, ms.c.Now(), ent.e.Site.Name+"\x00merge", "merged mapping truncated to what a record can carry",
			"site", ent.e.Site.Name, "eid", ent.key.Prefix, "iid", ent.key.IID, "registrants", len(regs),
			"locators", maxMergedLocators, "dropped", dropped)
	}
	ent.dropped = dropped
	m.TTL = ttl
	m.MaskLen = uint8(ent.key.Prefix.Bits())
	m.EID = slowpath.EIDAddress(ent.key.IID, ent.key.Prefix.Addr())
	switch {
	case ent.name:
		m.MaskLen, m.EID = 0, replicate.GroupRangeEID(ent.key.IID, ent.key.Prefix)
	case ent.dn != "":
		m.MaskLen, m.EID = 0, slowpath.NameAddress(ent.key.IID, ent.dn)
	}
	for i := range m.Locators {
		m.Locators[i].Local = false // no locator is the Map-Server's own (RFC 9301 §5.4)
	}
	m.Action = wire.ActionNoAction
	m.Authoritative = false // a proxy reply is not the ETR's own answer
	m.MapVersion = latest.Value.MapVersion
	var err error
	ent.enc, err = m.Append(ent.enc[:0])
	if err != nil {
		ms.log.Error("cannot encode a registered mapping", "eid", ent.key.Prefix, "err", err)
		ent.enc = ent.enc[:0]
	}
}

// mergeRLE adds to dst the RLE entries of src whose address it does not
// have (RFC 8060 §4.9 entries, compared by address).
func mergeRLE(dst, src *wire.LCAF) {
	for i := range src.RLE {
		n := &src.RLE[i]
		if !slices.ContainsFunc(dst.RLE, func(h wire.RLENode) bool { return slowpath.AddrEqual(&h.Address, &n.Address) }) {
			dst.RLE = append(dst.RLE, wire.RLENode{Level: n.Level, Address: n.Address.Clone(), Name: n.Name, Rsvd: n.Rsvd})
		}
	}
}

// nextETR returns the registrant the next forwarded request goes to,
// round-robin.
func (ent *regEntry) nextETR() *regstore.Registrant[uniKey, wire.Record] {
	regs := ent.e.Registrants()
	er := regs[ent.rr%len(regs)]
	ent.rr++
	return er
}

// lookup returns the registration covering addr in iid.
func (ms *MapServer) lookup(iid uint32, addr netip.Addr) *regEntry {
	t := ms.regs[iid]
	if t == nil {
		return nil
	}
	ent, _ := t.Lookup(addr)
	return ent
}

// Answer handles a Map-Request for a registered EID: a proxy Map-Reply when
// the registration asked for one, otherwise the request is forwarded in an
// ECM to one of the registered ETRs, round-robin (RFC 9301 §8.2). It reports
// false when the EID is not registered.
func (ms *MapServer) Answer(m *slowpath.Msg, iid uint32, addr netip.Addr) bool {
	if ms.ps.onRequest(m) {
		return true // an unsubscription (RFC 9437 §5) is not answered
	}
	ent := ms.lookup(iid, addr)
	if ent == nil || len(ent.enc) == 0 {
		return false
	}
	ms.answerEntry(m, ent, addr, ms.secFor(m, ent))
	return true
}

// answerEntry answers m's request for the registered ent: a proxy
// Map-Reply when the registration asked for one, otherwise the request
// forwarded in an ECM to the next ETR, round-robin, with dst as the ECM's
// inner destination (invalid: that ETR's address) and sec's LISP-SEC data
// when not nil.
func (ms *MapServer) answerEntry(m *slowpath.Msg, ent *regEntry, dst netip.Addr, sec *slowpath.SecAnswer) {
	if ent.proxy {
		ms.proxyReply(ent, m, sec)
		return
	}
	er := ent.nextETR()
	var auth *wire.ECMAuth
	if sec != nil {
		auth = ms.secForward(sec, ent)
	}
	if !dst.IsValid() {
		dst = er.Source.Addr()
	}
	if ms.c.ForwardAuth(er.Source, m, dst, true, auth) {
		ms.stats.Forwarded++
	}
}

// proxyReply answers m's request with ent's merged mapping, with the
// LISP-SEC data of sec when not nil.
func (ms *MapServer) proxyReply(ent *regEntry, m *slowpath.Msg, sec *slowpath.SecAnswer) {
	c := ms.c
	b := slowpath.AppendReplyHeader(ms.wbuf[:0], m.Request.Nonce)
	b = append(b, ent.enc...)
	if sec != nil {
		var err error
		if b, err = ms.secProxyReply(b, sec); err != nil {
			c.Msg(wire.TypeMapReply).SendErrors++
			return
		}
	}
	ms.wbuf = b
	c.Send(c.ReplyTarget(m.Request.ITRRLOCs, m.Port, m.Src), b, wire.TypeMapReply)
	ms.stats.ProxyReplies++
}

// AnswerName answers a lookup of the group name "group-<G-EID prefix>" in
// iid (draft-ietf-lisp-group-mapping): a proxy reply with the mapping of the
// most specific configured or registered range that covers all of g. It
// reports false when none does. The registrant of a group name is the
// underlay's provider, not an ETR that answers Map-Requests, so the
// Map-Server always answers for it.
func (ms *MapServer) AnswerName(m *slowpath.Msg, iid uint32, g netip.Prefix) bool {
	t := ms.names[iid]
	if t == nil {
		return false
	}
	_, ent, ok := t.LookupPrefixLPM(g)
	if !ok || len(ent.enc) == 0 {
		return false
	}
	ms.proxyReply(ent, m, nil)
	ms.stats.GroupNameReplies++
	return true
}

// Known appends the prefix sets that are EID space the Map-Server knows
// in iid, for negative Map-Replies (RFC 9301 §8.1): its registrations,
// then its sites' configured prefixes.
func (ms *MapServer) Known(iid uint32, out []slowpath.PrefixSet) []slowpath.PrefixSet {
	if t := ms.regs[iid]; t != nil {
		out = append(out, slowpath.BartSet[*regEntry]{Table: t})
	}
	if t := ms.allowed[iid]; t != nil {
		out = append(out, slowpath.BartSet[struct{}]{Table: t})
	}
	return out
}

// Registration is one xTR's registration of an EID prefix, as listed by
// Registrations.
type Registration struct {
	// Site is the site name.
	Site string
	// EID is the registered prefix; for a group name the overlay group
	// range it names.
	EID slowpath.EIDPrefix
	// Name is the registered distinguished name ("group-<G-EID prefix>"
	// for a group name, else a distinguished-name EID: EID then holds only
	// the instance-ID), empty for an EID prefix.
	Name string
	// Static marks a configured group mapping (Source is invalid).
	Static bool
	// Source is where the Map-Register came from.
	Source netip.AddrPort
	// XTRID and SiteID are the registrant's identifiers, when it sent them.
	XTRID wire.XTRID
	// SiteID is the registrant's site-ID.
	SiteID uint64
	// RLOCs are the registered locators that are plain addresses.
	RLOCs []netip.Addr
	// ProxyReply and Merge are the P and merge bits of the registration.
	ProxyReply, Merge bool
	// Expires is when the registration times out.
	Expires time.Time
	// Cursor is where it sits in the listing's order (RegistrationsPage).
	Cursor RegistrationCursor
}

// Registrations lists the Map-Server's live registrations (event loop
// only).
func (ms *MapServer) Registrations() []Registration {
	out, _ := ms.RegistrationsPage(nil, -1)
	return out
}

// RegistrationCursor is where a page of registrations ends: the next page
// starts after it. The order is EID prefixes, then group names, then
// distinguished names; within them instance-ID, prefix (address, then
// length) or name, and registrant.
type RegistrationCursor struct {
	// Name, IID and Prefix are the key: a group name's range when Name.
	Name   bool
	IID    uint32
	Prefix netip.Prefix
	// DN is the distinguished name when the key is one.
	DN string
	// ID names the registrant (regstore.ID.String; "" for a configured
	// mapping).
	ID string
}

// compareKey orders keys as RegistrationCursor says.
func (c *RegistrationCursor) compareKey(name bool, iid uint32, p netip.Prefix) int {
	switch {
	case c.Name != name:
		if name {
			return 1
		}
		return -1
	case c.IID != iid:
		return cmp.Compare(iid, c.IID)
	}
	if d := p.Addr().Compare(c.Prefix.Addr()); d != 0 {
		return d
	}
	return cmp.Compare(p.Bits(), c.Prefix.Bits())
}

// RegistrationsPage lists at most limit registrations (all for a negative
// limit) after the cursor (nil: from the first), in the cursor's order,
// and reports whether more follow (event loop only). A page costs a walk
// of the keys up to it, not a copy of them all.
func (ms *MapServer) RegistrationsPage(after *RegistrationCursor, limit int) (out []Registration, more bool) {
	if after != nil && after.DN != "" {
		return ms.nameRegistrations(out, after, limit)
	}
	for _, name := range []bool{false, true} {
		m := ms.regs
		if name {
			m = ms.names
		}
		for _, iid := range slices.Sorted(maps.Keys(m)) {
			if after != nil && (after.Name && !name || after.Name == name && iid < after.IID) {
				continue // a table wholly before the cursor
			}
			for p, ent := range m[iid].AllSorted() {
				c := 1
				if after != nil {
					if c = after.compareKey(name, iid, p); c < 0 {
						continue
					}
				}
				var full bool
				if out, full = ms.appendRegistrants(out, ent, c == 0, after, limit); full {
					return out, true
				}
			}
		}
	}
	return ms.nameRegistrations(out, after, limit)
}

// appendRegistrants appends ent's registrants in ID order, those after
// the cursor's ID only when at (ent is the cursor's key), and reports
// full when limit stopped it with registrants left.
func (ms *MapServer) appendRegistrants(out []Registration, ent *regEntry, at bool, after *RegistrationCursor, limit int) ([]Registration, bool) {
	regs := slices.Clone(ent.e.Registrants())
	slices.SortFunc(regs, func(a, b *regstore.Registrant[uniKey, wire.Record]) int {
		return strings.Compare(registrantName(a), registrantName(b))
	})
	for _, er := range regs {
		id := registrantName(er)
		if at && id <= after.ID {
			continue
		}
		if limit >= 0 && len(out) == limit {
			return out, true
		}
		out = append(out, ms.registration(ent, er, id))
	}
	return out, false
}

// registrantName is a registrant's ID as a cursor names it.
func registrantName(er *regstore.Registrant[uniKey, wire.Record]) string {
	if er.Static {
		return ""
	}
	return er.ID.String()
}

// registration is er's registration of ent as listed.
func (ms *MapServer) registration(ent *regEntry, er *regstore.Registrant[uniKey, wire.Record], id string) Registration {
	r := Registration{Site: ent.e.Site.Name, EID: ent.key, Source: er.Source, SiteID: er.SiteID,
		ProxyReply: er.ProxyReply || er.Static, Merge: er.Merge || er.Static, Expires: er.Expires, Static: er.Static,
		Cursor: RegistrationCursor{Name: ent.name, IID: ent.key.IID, Prefix: ent.key.Prefix, DN: ent.dn, ID: id}}
	switch {
	case ent.name:
		r.Name = replicate.GroupName(ent.key.Prefix)
	case ent.dn != "":
		r.Name = ent.dn
	}
	if er.HasXTRID {
		r.XTRID = er.ID.XTRID
	}
	for _, l := range er.Value.Locators {
		if l.Address.AFI == wire.AFIIPv4 || l.Address.AFI == wire.AFIIPv6 {
			r.RLOCs = append(r.RLOCs, l.Address.IP)
		}
	}
	return r
}

// MergedRLOCs returns the locators the Map-Server answers with for the
// registered prefix covering addr in iid (listings and tests; event loop
// only).
func (ms *MapServer) MergedRLOCs(iid uint32, addr netip.Addr) []wire.Locator {
	var out []wire.Locator
	if ent := ms.lookup(iid, addr); ent != nil {
		for i := range ent.merged.Locators {
			out = append(out, slowpath.CloneLocator(&ent.merged.Locators[i]))
		}
	}
	return out
}

// Stats returns the Map-Server's counters (event loop only).
func (ms *MapServer) Stats() slowpath.Stats {
	s := ms.stats
	s.Registrations = ms.uni.Stats().Registrants - ms.statics + ms.sg.store.Stats().Registrants
	return s
}

// NotifyStats returns the counters of the unsolicited Map-Notifies of the
// (S,G) registrations (event loop only).
func (ms *MapServer) NotifyStats() slowpath.McastStats {
	n := ms.sg.store.NotifyStats()
	return slowpath.McastStats{NotifiesSent: n.Started, NotifyRetries: n.Retransmits, NotifyAcked: n.Answered, NotifyGaveUp: n.GaveUp}
}

// SetSites replaces the sites (validated by the caller). Registrations
// whose prefix is no longer allowed to their site are dropped; the others
// stay (event loop only).
func (ms *MapServer) SetSites(sites []slowpath.SiteConfig) error {
	rsites, allowed, err := buildSites(sites)
	if err != nil {
		return err
	}
	ms.rsites, ms.allowed = rsites, allowed
	ms.uni.SetSites(rsites)
	ms.sg.store.SetSites(rsites)
	return nil
}

package mapserver

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/regstore"

	"github.com/gaissmai/bart"

	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/wire"
)

// staticGroupTTL is the record TTL of configured group mappings.
const staticGroupTTL = 24 * time.Hour

// MapServer is the Map-Server role (RFC 9301 §8.2): site registrations,
// proxy Map-Replies and forwarding of Map-Requests to ETRs.
type MapServer struct {
	c       *slowpath.Core
	log     *slog.Logger
	stats   slowpath.Stats
	mcfg    *slowpath.MulticastConfig
	wbuf    []byte
	notify  wire.MapNotify
	timeout time.Duration
	sites   []*site
	allowed map[uint32]*bart.Table[*sitePrefix]
	regs    map[uint32]*bart.Table[*regEntry]
	// names are the registered group names (draft-ietf-lisp-group-mapping,
	// "group-<G-EID prefix>"), by instance-ID and overlay group range.
	names   map[uint32]*bart.Table[*regEntry]
	nregs   int
	authBuf []byte
	recs    []wire.Record
	sg      *msSG // (S,G) registrations, sg.go
	// sites authorise the records of the registration stores.
	rsites *regstore.Sites
	ack    wire.MapNotifyAck
}

type site struct {
	cfg  slowpath.SiteConfig
	keys map[uint8]slowpath.AuthKey
}

type sitePrefix struct {
	site *site
	p    slowpath.SitePrefix
}

// regEntry is one registered EID prefix with the registrations of every xTR
// that registered it.
type regEntry struct {
	key slowpath.EIDPrefix
	// name: key.Prefix is the overlay group range of a group name, not an
	// EID prefix.
	name  bool
	site  *site
	etrs  []*etrReg
	rr    int
	merge bool
	proxy bool
	// merged is the record answered with: the union of the xTRs' locators;
	// enc is its encoding, prebuilt for proxy Map-Replies.
	merged wire.Record
	enc    []byte
}

// regID distinguishes the xTRs registering one EID: by xTR-ID when they send
// one (RFC 9301 §5.6), else by source address.
type regID struct {
	xtr wire.XTRID
	src netip.AddrPort
}

type etrReg struct {
	id      regID
	src     netip.AddrPort
	rec     wire.Record
	proxy   bool
	merge   bool
	hasXTR  bool
	siteID  uint64
	expires time.Time
	t       *slowpath.Timer
	// static: configured, not registered; never expires.
	static bool
}

// recordKey returns what a registered record is stored under: its EID
// prefix, or for a group name (draft-ietf-lisp-group-mapping) the overlay
// group range it names (name true).
func recordKey(r *wire.Record) (k slowpath.EIDPrefix, name, ok bool) {
	if iid, p, ok := r.Prefix(); ok {
		return slowpath.EIDPrefix{IID: iid, Prefix: p}, false, true
	}
	iid, p, err := replicate.ParseGroupNameEID(&r.EID)
	if err != nil {
		return slowpath.EIDPrefix{}, false, false
	}
	return slowpath.EIDPrefix{IID: iid, Prefix: p}, true, true
}

// table returns the registration table of iid, for group names or EID
// prefixes, creating it when add is set.
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
	ms, err := build(cfg)
	if err != nil {
		return nil, err
	}
	ms.c, ms.log, ms.mcfg = c, c.Log(), mcfg
	ms.sg = ms.newSG(ms.rsites)
	c.Handle(slowpath.RouteMapRegister, ms.onRegister)
	c.Handle(slowpath.RouteMapNotifyAck, ms.onNotifyAck)
	return ms, nil
}

// build makes the sites and the configured group mappings of cfg.
func build(c *slowpath.MapServerConfig) (*MapServer, error) {
	ms := &MapServer{
		log:     slog.New(slog.DiscardHandler),
		timeout: c.RegistrationTimeout,
		allowed: map[uint32]*bart.Table[*sitePrefix]{},
		regs:    map[uint32]*bart.Table[*regEntry]{},
		names:   map[uint32]*bart.Table[*regEntry]{},
	}
	for i := range c.Sites {
		s := &site{cfg: c.Sites[i], keys: map[uint8]slowpath.AuthKey{}}
		for _, k := range s.cfg.Keys {
			s.keys[k.KeyID] = k
		}
		ms.sites = append(ms.sites, s)
		for j, p := range s.cfg.Prefixes {
			t := ms.allowed[p.IID]
			if t == nil {
				t = new(bart.Table[*sitePrefix])
				ms.allowed[p.IID] = t
			}
			if other, ok := t.Get(p.Prefix); ok {
				return nil, fmt.Errorf("slowpath config: map_server.sites[%d].prefixes[%d]: %v in IID %d already belongs to site %q", i, j, p.Prefix, p.IID, other.site.cfg.Name)
			}
			t.Insert(p.Prefix, &sitePrefix{site: s, p: p})
		}
	}
	if len(c.GroupMappings) > 0 {
		prov := &site{cfg: slowpath.SiteConfig{Name: "group-mappings", ProxyReply: true}}
		for i := range c.GroupMappings {
			m := &c.GroupMappings[i]
			r, err := m.Record(slowpath.TTLMinutes(staticGroupTTL), 1, 100)
			if err != nil {
				return nil, fmt.Errorf("slowpath config: map_server.group_mappings[%d]: %w", i, err)
			}
			k := slowpath.EIDPrefix{IID: m.IID, Prefix: m.GEID.Masked()}
			t := ms.table(k.IID, true, true)
			if _, dup := t.Get(k.Prefix); dup {
				return nil, fmt.Errorf("slowpath config: map_server.group_mappings[%d]: %s in IID %d configured twice", i, replicate.GroupName(k.Prefix), k.IID)
			}
			ent := &regEntry{key: k, name: true, site: prov}
			ent.etrs = []*etrReg{{static: true, proxy: true, merge: true, rec: r}}
			t.Insert(k.Prefix, ent)
			ms.rebuild(ent)
		}
	}
	var err error
	if ms.rsites, err = storeSites(c.Sites); err != nil {
		return nil, fmt.Errorf("slowpath config: map_server.sites: %w", err)
	}
	return ms, nil
}

// allowedFor returns the most specific configured site prefix that permits
// registering p in iid.
func (ms *MapServer) allowedFor(iid uint32, p netip.Prefix) *sitePrefix {
	t := ms.allowed[iid]
	if t == nil {
		return nil
	}
	_, sp, ok := t.LookupPrefixLPM(p)
	if !ok {
		return nil
	}
	if sp.p.Prefix != p && !sp.p.AcceptMoreSpecifics {
		return nil
	}
	return sp
}

// onRegister verifies and stores a Map-Register (RFC 9301 §8.2) and answers
// with a Map-Notify when asked.
func (ms *MapServer) onRegister(m *slowpath.Msg) bool {
	c := ms.c
	st := c.Msg(wire.TypeMapRegister)
	reg, err := m.MapRegister()
	if err != nil {
		st.BadParse++
		return true
	}
	if len(reg.Records) == 0 {
		st.Rejected++
		return true
	}
	src, b := m.Src, m.Raw
	if isSGRegister(reg) {
		ms.onRegisterSG(src, b, reg)
		return true
	}
	ms.register(src, b, reg)
	return true
}

// register handles a Map-Register of EID prefixes and group names.
func (ms *MapServer) register(src netip.AddrPort, b []byte, reg *wire.MapRegister) {
	c := ms.c
	st := c.Msg(wire.TypeMapRegister)
	// The site is found from the first record; the key from its Key ID.
	k0, _, ok := recordKey(&reg.Records[0])
	var sp *sitePrefix
	if ok {
		sp = ms.allowedFor(k0.IID, k0.Prefix)
	}
	if sp == nil {
		st.Rejected++
		ms.stats.RegistrationsRejected += uint64(len(reg.Records))
		c.Log().Warn("Map-Register for an EID no site may register", "src", src, "eid", reg.Records[0].EID.String(), "masklen", reg.Records[0].MaskLen)
		c.Event(slowpath.Event{Kind: slowpath.EventRegistrationRejected, Source: src, Reason: "no site may register " + reg.Records[0].EID.String()})
		return
	}
	s := sp.site
	key, ok := s.keys[reg.Auth.KeyID]
	if !ok || key.Alg != reg.Auth.Alg {
		st.BadAuth++
		c.Log().Warn("Map-Register with unknown key", "site", s.cfg.Name, "src", src, "key_id", reg.Auth.KeyID, "alg", reg.Auth.Alg.String())
		c.Event(slowpath.Event{Kind: slowpath.EventRegistrationRejected, Site: s.cfg.Name, Source: src, Reason: "unknown key"})
		return
	}
	if err := wire.VerifyAuth(b, slowpath.AuthDataOff, len(reg.Auth.Data), reg.Auth.Alg, []byte(key.Secret)); err != nil {
		st.BadAuth++
		c.Log().Warn("Map-Register authentication failed", "site", s.cfg.Name, "src", src, "key_id", reg.Auth.KeyID)
		c.Event(slowpath.Event{Kind: slowpath.EventRegistrationRejected, Site: s.cfg.Name, Source: src, Reason: "authentication failed"})
		return
	}
	if s.cfg.RequireXTRID && !reg.XTRIDPresent {
		st.Rejected++
		c.Log().Warn("Map-Register without xTR-ID refused", "site", s.cfg.Name, "src", src)
		c.Event(slowpath.Event{Kind: slowpath.EventRegistrationRejected, Site: s.cfg.Name, Source: src, Reason: "xTR-ID required"})
		return
	}
	id := regID{src: src}
	if reg.XTRIDPresent {
		id = regID{xtr: reg.XTRID}
	}
	ms.recs = ms.recs[:0]
	for i := range reg.Records {
		r := &reg.Records[i]
		k, name, ok := recordKey(r)
		var rsp *sitePrefix
		if ok {
			rsp = ms.allowedFor(k.IID, k.Prefix)
		}
		if rsp == nil || rsp.site != s {
			ms.stats.RegistrationsRejected++
			c.Log().Warn("Map-Register record outside the site's prefixes", "site", s.cfg.Name, "src", src, "eid", r.EID.String(), "masklen", r.MaskLen)
			c.Event(slowpath.Event{Kind: slowpath.EventRegistrationRejected, Site: s.cfg.Name, Source: src, Reason: "EID outside the site's prefixes"})
			continue
		}
		if r.TTL == 0 {
			ms.remove(k, name, id)
		} else {
			life := ms.timeout
			if reg.UseTTL && r.TTL != wire.TTLReceiverDecides {
				life = time.Duration(r.TTL) * time.Minute
			}
			ms.store(k, name, s, id, src, reg, r, life)
		}
		if c.EventsOn() {
			c.Event(slowpath.Event{Kind: slowpath.EventRegistrationAccepted, Site: s.cfg.Name, EID: k, Source: src})
		}
		ms.stats.RegistrationsAccepted++
		ms.recs = append(ms.recs, *r)
	}
	if len(ms.recs) == 0 {
		st.Rejected++
		return
	}
	if reg.WantMapNotify {
		ms.sendNotify(src, reg, key)
	}
}

// store adds or refreshes the registration of xTR id for k.
func (ms *MapServer) store(k slowpath.EIDPrefix, name bool, s *site, id regID, src netip.AddrPort, reg *wire.MapRegister, r *wire.Record, life time.Duration) {
	c := ms.c
	t := ms.table(k.IID, name, true)
	ent, ok := t.Get(k.Prefix)
	if !ok {
		ent = &regEntry{key: k, name: name, site: s}
		t.Insert(k.Prefix, ent)
	}
	var er *etrReg
	for _, x := range ent.etrs {
		if x.id == id {
			er = x
			break
		}
	}
	if er == nil {
		er = &etrReg{id: id}
		ent.etrs = append(ent.etrs, er)
		ms.nregs++
		er.t = c.Schedule(c.Now().Add(life), func(now time.Time) { ms.expire(ent, er, now) })
	} else if er.expires.Before(c.Now().Add(life)) {
		// The timer fires at the old deadline and moves itself.
	} else {
		er.t.Reset(c.Now().Add(life))
	}
	er.src = src
	er.expires = c.Now().Add(life)
	er.proxy = reg.ProxyReply
	er.merge = reg.Merge
	er.hasXTR = reg.XTRIDPresent
	er.siteID = reg.SiteID
	er.rec = slowpath.CloneRecord(r, er.rec)
	ms.rebuild(ent)
}

func (ms *MapServer) expire(ent *regEntry, er *etrReg, now time.Time) {
	if now.Before(er.expires) {
		er.t.Reset(er.expires)
		return
	}
	ms.stats.RegistrationsExpired++
	c := ms.c
	c.Log().Info("registration expired", "site", ent.site.cfg.Name, "iid", ent.key.IID, "eid", ent.key.Prefix, "src", er.src)
	c.Event(slowpath.Event{Kind: slowpath.EventRegistrationExpired, Site: ent.site.cfg.Name, EID: ent.key, Source: er.src})
	ms.drop(ent, er)
}

// remove deletes the registration of xTR id for k (a TTL 0 record).
func (ms *MapServer) remove(k slowpath.EIDPrefix, name bool, id regID) {
	t := ms.table(k.IID, name, false)
	if t == nil {
		return
	}
	ent, ok := t.Get(k.Prefix)
	if !ok {
		return
	}
	for _, er := range ent.etrs {
		if er.id == id {
			er.t.Stop()
			ms.drop(ent, er)
			return
		}
	}
}

func (ms *MapServer) drop(ent *regEntry, er *etrReg) {
	i := slices.Index(ent.etrs, er)
	if i < 0 {
		return
	}
	ent.etrs = slices.Delete(ent.etrs, i, i+1)
	ms.nregs--
	if len(ent.etrs) == 0 {
		ms.table(ent.key.IID, ent.name, false).Delete(ent.key.Prefix)
		return
	}
	ms.rebuild(ent)
}

// rebuild recomputes the answer of ent from its registrations: the union of
// every xTR's locators (deduplicated by address, the latest registration's
// values winning). With the merge bit (RFC 9301 §5.6, RFC 8378) the RLE
// locators of all xTRs are combined into one RLE, so that every registrant
// of an (S,G) becomes a hop of one replication list.
func (ms *MapServer) rebuild(ent *regEntry) {
	m := &ent.merged
	m.Locators = m.Locators[:0]
	ent.proxy = ent.site.cfg.ProxyReply
	ent.merge = false
	var ttl uint32
	latest := ent.etrs[0]
	for _, er := range ent.etrs {
		ent.proxy = ent.proxy || er.proxy
		ent.merge = ent.merge || er.merge
		if er.expires.After(latest.expires) {
			latest = er
		}
	}
	ttl = latest.rec.TTL
	rle := -1
	for _, er := range ent.etrs {
		for _, l := range er.rec.Locators {
			if ent.merge && l.Address.AFI == wire.AFILCAF && l.Address.LCAF.Type == wire.LCAFRLE {
				if rle < 0 {
					rle = len(m.Locators)
					m.Locators = append(m.Locators, slowpath.CloneLocator(&l))
					continue
				}
				mergeRLE(&m.Locators[rle].Address.LCAF, &l.Address.LCAF)
				continue
			}
			j := slices.IndexFunc(m.Locators, func(x wire.Locator) bool { return slowpath.AddrEqual(&x.Address, &l.Address) })
			if j < 0 {
				m.Locators = append(m.Locators, slowpath.CloneLocator(&l))
			} else if er == latest {
				m.Locators[j] = slowpath.CloneLocator(&l)
			}
		}
	}
	m.TTL = ttl
	m.MaskLen = uint8(ent.key.Prefix.Bits())
	m.EID = slowpath.EIDAddress(ent.key.IID, ent.key.Prefix.Addr())
	if ent.name {
		m.MaskLen, m.EID = 0, replicate.GroupRangeEID(ent.key.IID, ent.key.Prefix)
	}
	m.Action = wire.ActionNoAction
	m.Authoritative = false // a proxy reply is not the ETR's own answer
	m.MapVersion = latest.rec.MapVersion
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

func (ms *MapServer) sendNotify(dst netip.AddrPort, reg *wire.MapRegister, key slowpath.AuthKey) {
	c := ms.c
	n := &ms.notify
	n.XTRIDPresent = reg.XTRIDPresent
	n.XTRID = reg.XTRID
	n.SiteID = reg.SiteID
	n.RTR = false
	n.Nonce = reg.Nonce
	ms.authBuf = append(ms.authBuf[:0], make([]byte, len(reg.Auth.Data))...)
	n.Auth = wire.Auth{KeyID: reg.Auth.KeyID, Alg: reg.Auth.Alg, Data: ms.authBuf}
	n.Records = ms.recs
	if reg.Merge {
		// A merge registration is confirmed with the merged mapping.
		for i := range n.Records {
			k, name, ok := recordKey(&n.Records[i])
			if t := ms.table(k.IID, name, false); ok && t != nil {
				if ent, ok := t.Get(k.Prefix); ok {
					n.Records[i] = ent.merged
				}
			}
		}
	}
	out, err := n.AppendSigned(ms.wbuf[:0], []byte(key.Secret))
	if err != nil {
		c.Msg(wire.TypeMapNotify).SendErrors++
		c.Log().Error("cannot encode Map-Notify", "err", err)
		return
	}
	ms.wbuf = out
	c.Send(dst, out, wire.TypeMapNotify)
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
	ent := ms.lookup(iid, addr)
	if ent == nil || len(ent.etrs) == 0 || len(ent.enc) == 0 {
		return false
	}
	if ent.proxy {
		ms.proxyReply(ent, m)
		return true
	}
	er := ent.etrs[ent.rr%len(ent.etrs)]
	ent.rr++
	if ms.c.Forward(er.src, m, addr, true) {
		ms.stats.Forwarded++
	}
	return true
}

// proxyReply answers m's request with ent's merged mapping.
func (ms *MapServer) proxyReply(ent *regEntry, m *slowpath.Msg) {
	c := ms.c
	b := slowpath.AppendReplyHeader(ms.wbuf[:0], m.Request.Nonce)
	b = append(b, ent.enc...)
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
	if !ok || len(ent.etrs) == 0 || len(ent.enc) == 0 {
		return false
	}
	ms.proxyReply(ent, m)
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
		out = append(out, slowpath.BartSet[*sitePrefix]{Table: t})
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
	// Name is the registered distinguished name ("group-<G-EID prefix>"),
	// empty for an EID prefix.
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
}

// Registrations lists the Map-Server's live registrations (event loop
// only).
func (ms *MapServer) Registrations() []Registration {
	var out []Registration
	for _, t := range ms.allTables() {
		for _, ent := range t.All() {
			for _, er := range ent.etrs {
				r := Registration{Site: ent.site.cfg.Name, EID: ent.key, Source: er.src, SiteID: er.siteID,
					ProxyReply: er.proxy, Merge: er.merge, Expires: er.expires, Static: er.static}
				if ent.name {
					r.Name = replicate.GroupName(ent.key.Prefix)
				}
				if er.hasXTR {
					r.XTRID = er.id.xtr
				}
				for _, l := range er.rec.Locators {
					if l.Address.AFI == wire.AFIIPv4 || l.Address.AFI == wire.AFIIPv6 {
						r.RLOCs = append(r.RLOCs, l.Address.IP)
					}
				}
				out = append(out, r)
			}
		}
	}
	return out
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
	s.Registrations = ms.nregs + ms.sg.store.Stats().Registrants
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
	nms, err := build(&slowpath.MapServerConfig{Sites: sites})
	if err != nil {
		return err
	}
	ms.sites, ms.allowed, ms.rsites = nms.sites, nms.allowed, nms.rsites
	ms.sg.store.SetSites(ms.rsites)
	for _, t := range ms.allTables() {
		for _, ent := range t.All() {
			sp := ms.allowedFor(ent.key.IID, ent.key.Prefix)
			if sp == nil || sp.site.cfg.Name != ent.site.cfg.Name {
				for _, er := range append([]*etrReg(nil), ent.etrs...) {
					if !er.static {
						er.t.Stop()
						ms.drop(ent, er)
					}
				}
				continue
			}
			ent.site = sp.site
			ms.rebuild(ent)
		}
	}
	return nil
}

// allTables returns the registration tables, EID prefixes and group names.
func (ms *MapServer) allTables() []*bart.Table[*regEntry] {
	out := make([]*bart.Table[*regEntry], 0, len(ms.regs)+len(ms.names))
	for _, t := range ms.regs {
		out = append(out, t)
	}
	for _, t := range ms.names {
		out = append(out, t)
	}
	return out
}

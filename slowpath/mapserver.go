package slowpath

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/gaissmai/bart"

	"github.com/rloc-router/rloc/replicate"
	"github.com/rloc-router/rloc/wire"
)

// staticGroupTTL is the record TTL of configured group mappings.
const staticGroupTTL = 24 * time.Hour

// authDataOff is where the authentication data starts in a Map-Register or
// Map-Notify: first word, nonce, Key ID, Algorithm ID, length (RFC 9301 §5.6).
const authDataOff = 4 + 8 + 4

// mapServer is the Map-Server role (RFC 9301 §8.2): site registrations,
// proxy Map-Replies and forwarding of Map-Requests to ETRs.
type mapServer struct {
	e       *Engine
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
	sg      *msSG // (S,G) registrations, mcast_ms.go
}

type site struct {
	cfg  SiteConfig
	keys map[uint8]AuthKey
}

type sitePrefix struct {
	site *site
	p    SitePrefix
}

// regEntry is one registered EID prefix with the registrations of every xTR
// that registered it.
type regEntry struct {
	key EIDPrefix
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
	t       *timer
	// static: configured, not registered; never expires.
	static bool
}

// recordKey returns what a registered record is stored under: its EID
// prefix, or for a group name (draft-ietf-lisp-group-mapping) the overlay
// group range it names (name true).
func recordKey(r *wire.Record) (k EIDPrefix, name, ok bool) {
	if iid, p, ok := r.Prefix(); ok {
		return EIDPrefix{IID: iid, Prefix: p}, false, true
	}
	iid, p, err := replicate.ParseGroupNameEID(&r.EID)
	if err != nil {
		return EIDPrefix{}, false, false
	}
	return EIDPrefix{IID: iid, Prefix: p}, true, true
}

// table returns the registration table of iid, for group names or EID
// prefixes, creating it when add is set.
func (ms *mapServer) table(iid uint32, name, add bool) *bart.Table[*regEntry] {
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

func newMapServer(e *Engine, c *MapServerConfig) (*mapServer, error) {
	ms := &mapServer{
		e:       e,
		timeout: c.RegistrationTimeout,
		allowed: map[uint32]*bart.Table[*sitePrefix]{},
		regs:    map[uint32]*bart.Table[*regEntry]{},
		names:   map[uint32]*bart.Table[*regEntry]{},
	}
	for i := range c.Sites {
		s := &site{cfg: c.Sites[i], keys: map[uint8]AuthKey{}}
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
		prov := &site{cfg: SiteConfig{Name: "group-mappings", ProxyReply: true}}
		for i := range c.GroupMappings {
			m := &c.GroupMappings[i]
			r, err := m.Record(ttlMinutes(staticGroupTTL), 1, 100)
			if err != nil {
				return nil, fmt.Errorf("slowpath config: map_server.group_mappings[%d]: %w", i, err)
			}
			k := EIDPrefix{IID: m.IID, Prefix: m.GEID.Masked()}
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
	return ms, nil
}

// allowedFor returns the most specific configured site prefix that permits
// registering p in iid.
func (ms *mapServer) allowedFor(iid uint32, p netip.Prefix) *sitePrefix {
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
func (ms *mapServer) onRegister(src netip.AddrPort, b []byte) {
	e := ms.e
	st := &e.stats.Msgs[wire.TypeMapRegister]
	reg := &e.reg
	if err := reg.Parse(b); err != nil {
		st.BadParse++
		return
	}
	if len(reg.Records) == 0 {
		st.Rejected++
		return
	}
	if isSGRegister(reg) {
		ms.onRegisterSG(src, b, reg)
		return
	}
	// The site is found from the first record; the key from its Key ID.
	k0, _, ok := recordKey(&reg.Records[0])
	var sp *sitePrefix
	if ok {
		sp = ms.allowedFor(k0.IID, k0.Prefix)
	}
	if sp == nil {
		st.Rejected++
		e.stats.RegistrationsRejected += uint64(len(reg.Records))
		e.log.Warn("Map-Register for an EID no site may register", "src", src, "eid", reg.Records[0].EID.String(), "masklen", reg.Records[0].MaskLen)
		e.event(Event{Kind: EventRegistrationRejected, Source: src, Reason: "no site may register " + reg.Records[0].EID.String()})
		return
	}
	s := sp.site
	key, ok := s.keys[reg.Auth.KeyID]
	if !ok || key.Alg != reg.Auth.Alg {
		st.BadAuth++
		e.log.Warn("Map-Register with unknown key", "site", s.cfg.Name, "src", src, "key_id", reg.Auth.KeyID, "alg", reg.Auth.Alg.String())
		e.event(Event{Kind: EventRegistrationRejected, Site: s.cfg.Name, Source: src, Reason: "unknown key"})
		return
	}
	if err := wire.VerifyAuth(b, authDataOff, len(reg.Auth.Data), reg.Auth.Alg, []byte(key.Secret)); err != nil {
		st.BadAuth++
		e.log.Warn("Map-Register authentication failed", "site", s.cfg.Name, "src", src, "key_id", reg.Auth.KeyID)
		e.event(Event{Kind: EventRegistrationRejected, Site: s.cfg.Name, Source: src, Reason: "authentication failed"})
		return
	}
	if s.cfg.RequireXTRID && !reg.XTRIDPresent {
		st.Rejected++
		e.log.Warn("Map-Register without xTR-ID refused", "site", s.cfg.Name, "src", src)
		e.event(Event{Kind: EventRegistrationRejected, Site: s.cfg.Name, Source: src, Reason: "xTR-ID required"})
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
			e.stats.RegistrationsRejected++
			e.log.Warn("Map-Register record outside the site's prefixes", "site", s.cfg.Name, "src", src, "eid", r.EID.String(), "masklen", r.MaskLen)
			e.event(Event{Kind: EventRegistrationRejected, Site: s.cfg.Name, Source: src, Reason: "EID outside the site's prefixes"})
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
		if e.cfg.Events != nil {
			e.event(Event{Kind: EventRegistrationAccepted, Site: s.cfg.Name, EID: k, Source: src})
		}
		e.stats.RegistrationsAccepted++
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
func (ms *mapServer) store(k EIDPrefix, name bool, s *site, id regID, src netip.AddrPort, reg *wire.MapRegister, r *wire.Record, life time.Duration) {
	e := ms.e
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
		er.t = e.timers.schedule(e.now.Add(life), func(now time.Time) { ms.expire(ent, er, now) })
	} else if er.expires.Before(e.now.Add(life)) {
		// The timer fires at the old deadline and moves itself.
	} else {
		e.timers.reset(er.t, e.now.Add(life))
	}
	er.src = src
	er.expires = e.now.Add(life)
	er.proxy = reg.ProxyReply
	er.merge = reg.Merge
	er.hasXTR = reg.XTRIDPresent
	er.siteID = reg.SiteID
	er.rec = cloneRecord(r, er.rec)
	ms.rebuild(ent)
}

func (ms *mapServer) expire(ent *regEntry, er *etrReg, now time.Time) {
	if now.Before(er.expires) {
		ms.e.timers.reset(er.t, er.expires)
		return
	}
	ms.e.stats.RegistrationsExpired++
	ms.e.log.Info("registration expired", "site", ent.site.cfg.Name, "iid", ent.key.IID, "eid", ent.key.Prefix, "src", er.src)
	ms.e.event(Event{Kind: EventRegistrationExpired, Site: ent.site.cfg.Name, EID: ent.key, Source: er.src})
	ms.drop(ent, er)
}

// remove deletes the registration of xTR id for k (a TTL 0 record).
func (ms *mapServer) remove(k EIDPrefix, name bool, id regID) {
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
			ms.e.timers.stop(er.t)
			ms.drop(ent, er)
			return
		}
	}
}

func (ms *mapServer) drop(ent *regEntry, er *etrReg) {
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
func (ms *mapServer) rebuild(ent *regEntry) {
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
					m.Locators = append(m.Locators, cloneLocator(&l))
					continue
				}
				mergeRLE(&m.Locators[rle].Address.LCAF, &l.Address.LCAF)
				continue
			}
			j := slices.IndexFunc(m.Locators, func(x wire.Locator) bool { return addrEqual(&x.Address, &l.Address) })
			if j < 0 {
				m.Locators = append(m.Locators, cloneLocator(&l))
			} else if er == latest {
				m.Locators[j] = cloneLocator(&l)
			}
		}
	}
	m.TTL = ttl
	m.MaskLen = uint8(ent.key.Prefix.Bits())
	m.EID = eidAddress(ent.key.IID, ent.key.Prefix.Addr())
	if ent.name {
		m.MaskLen, m.EID = 0, replicate.GroupRangeEID(ent.key.IID, ent.key.Prefix)
	}
	m.Action = wire.ActionNoAction
	m.Authoritative = false // a proxy reply is not the ETR's own answer
	m.MapVersion = latest.rec.MapVersion
	var err error
	ent.enc, err = m.Append(ent.enc[:0])
	if err != nil {
		ms.e.log.Error("cannot encode a registered mapping", "eid", ent.key.Prefix, "err", err)
		ent.enc = ent.enc[:0]
	}
}

// mergeRLE adds to dst the RLE entries of src whose address it does not
// have (RFC 8060 §4.9 entries, compared by address).
func mergeRLE(dst, src *wire.LCAF) {
	for i := range src.RLE {
		n := &src.RLE[i]
		if !slices.ContainsFunc(dst.RLE, func(h wire.RLENode) bool { return addrEqual(&h.Address, &n.Address) }) {
			dst.RLE = append(dst.RLE, wire.RLENode{Level: n.Level, Address: n.Address.Clone(), Name: n.Name, Rsvd: n.Rsvd})
		}
	}
}

func (ms *mapServer) sendNotify(dst netip.AddrPort, reg *wire.MapRegister, key AuthKey) {
	e := ms.e
	n := &e.notify
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
	out, err := n.AppendSigned(e.wbuf[:0], []byte(key.Secret))
	if err != nil {
		e.stats.Msgs[wire.TypeMapNotify].SendErrors++
		e.log.Error("cannot encode Map-Notify", "err", err)
		return
	}
	e.wbuf = out
	e.send(dst, out, wire.TypeMapNotify)
}

// lookup returns the registration covering addr in iid.
func (ms *mapServer) lookup(iid uint32, addr netip.Addr) *regEntry {
	t := ms.regs[iid]
	if t == nil {
		return nil
	}
	ent, _ := t.Lookup(addr)
	return ent
}

// answer handles a Map-Request for a registered EID: a proxy Map-Reply when
// the registration asked for one, otherwise the request is forwarded in an
// ECM to one of the registered ETRs, round-robin (RFC 9301 §8.2). It reports
// false when the EID is not registered.
func (ms *mapServer) answer(port uint16, src netip.AddrPort, req *wire.MapRequest, raw []byte, ecm *wire.ECM, iid uint32, addr netip.Addr) bool {
	ent := ms.lookup(iid, addr)
	if ent == nil || len(ent.etrs) == 0 || len(ent.enc) == 0 {
		return false
	}
	e := ms.e
	if ent.proxy {
		ms.proxyReply(ent, port, src, req)
		return true
	}
	er := ent.etrs[ent.rr%len(ent.etrs)]
	ent.rr++
	e.forward(er.src, raw, ecm, req, port, src, addr, true)
	return true
}

// proxyReply answers req with ent's merged mapping.
func (ms *mapServer) proxyReply(ent *regEntry, port uint16, src netip.AddrPort, req *wire.MapRequest) {
	e := ms.e
	b := e.wbuf[:0]
	b = binary.BigEndian.AppendUint32(b, uint32(wire.TypeMapReply)<<28|1)
	b = append(b, req.Nonce[:]...)
	b = append(b, ent.enc...)
	e.wbuf = b
	e.send(e.replyTarget(req.ITRRLOCs, port, src), b, wire.TypeMapReply)
	e.stats.ProxyReplies++
}

// answerName answers a lookup of the group name "group-<G-EID prefix>" in
// iid (draft-ietf-lisp-group-mapping): a proxy reply with the mapping of the
// most specific configured or registered range that covers all of g. It
// reports false when none does. The registrant of a group name is the
// underlay's provider, not an ETR that answers Map-Requests, so the
// Map-Server always answers for it.
func (ms *mapServer) answerName(port uint16, src netip.AddrPort, req *wire.MapRequest, iid uint32, g netip.Prefix) bool {
	t := ms.names[iid]
	if t == nil {
		return false
	}
	_, ent, ok := t.LookupPrefixLPM(g)
	if !ok || len(ent.etrs) == 0 || len(ent.enc) == 0 {
		return false
	}
	ms.proxyReply(ent, port, src, req)
	ms.e.stats.GroupNameReplies++
	return true
}

// Registration is one xTR's registration of an EID prefix, as listed by
// Engine.Registrations.
type Registration struct {
	// Site is the site name.
	Site string
	// EID is the registered prefix; for a group name the overlay group
	// range it names.
	EID EIDPrefix
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

// Registrations lists the Map-Server's live registrations.
func (e *Engine) Registrations() []Registration {
	var out []Registration
	_ = e.do(func() {
		if e.ms == nil {
			return
		}
		for _, t := range e.ms.allTables() {
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
	})
	return out
}

// MergedRLOCs returns the locators the Map-Server answers with for the
// registered prefix covering addr in iid (for listings and tests).
func (e *Engine) MergedRLOCs(iid uint32, addr netip.Addr) []wire.Locator {
	var out []wire.Locator
	_ = e.do(func() {
		if e.ms == nil {
			return
		}
		if ent := e.ms.lookup(iid, addr); ent != nil {
			for i := range ent.merged.Locators {
				out = append(out, cloneLocator(&ent.merged.Locators[i]))
			}
		}
	})
	return out
}

// allTables returns the registration tables, EID prefixes and group names.
func (ms *mapServer) allTables() []*bart.Table[*regEntry] {
	out := make([]*bart.Table[*regEntry], 0, len(ms.regs)+len(ms.names))
	for _, t := range ms.regs {
		out = append(out, t)
	}
	for _, t := range ms.names {
		out = append(out, t)
	}
	return out
}

// cloneRecord deep-copies r, reusing dst's locator slice.
func cloneRecord(r *wire.Record, dst wire.Record) wire.Record {
	locs := dst.Locators[:0]
	dst = *r
	dst.EID = cloneAddress(&r.EID)
	for i := range r.Locators {
		locs = append(locs, cloneLocator(&r.Locators[i]))
	}
	dst.Locators = locs
	return dst
}

func cloneLocator(l *wire.Locator) wire.Locator {
	c := *l
	c.Address = cloneAddress(&l.Address)
	return c
}

func cloneAddress(a *wire.Address) wire.Address { return a.Clone() }

// addrEqual compares two addresses by their encoding.
func addrEqual(a, b *wire.Address) bool {
	if a.AFI != b.AFI {
		return false
	}
	switch a.AFI {
	case wire.AFIIPv4, wire.AFIIPv6:
		return a.IP == b.IP
	case wire.AFIMAC, wire.AFIMAC48:
		return a.MAC == b.MAC
	case wire.AFIDistName:
		return a.Name == b.Name
	}
	var x, y [256]byte
	ea, err1 := a.Append(x[:0])
	eb, err2 := b.Append(y[:0])
	return err1 == nil && err2 == nil && string(ea) == string(eb)
}

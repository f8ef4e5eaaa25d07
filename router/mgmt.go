package router

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/fastpath"
	"github.com/rloc-router/rloc/ring/xsk"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/control"
	"github.com/rloc-router/rloc/wire"
	"golang.org/x/sys/unix"
)

// The management API: HTTP+JSON on a Unix socket (Config.MgmtSocket).
//
//	GET    /v1/map-cache                     list entries ([]MapCacheEntry)
//	GET    /v1/map-cache?iid=N&eid=PREFIX     one entry (exact match)
//	POST   /v1/map-cache                     add a static entry (MapCacheEntry)
//	DELETE /v1/map-cache?iid=N&eid=PREFIX     delete an entry
//	GET    /v1/database                      the ETR's mappings ([]DatabaseMapping)
//	POST   /v1/database                      add or replace a mapping (DatabaseMapping)
//	DELETE /v1/database?iid=N&eid=PREFIX      remove a mapping
//	GET    /v1/registrations?limit=N&after=K  the Map-Server's registrations, a page of at most N
//	                                         (default 1000) after the cursor K; the header
//	                                         X-Rloc-Next carries the cursor of the next page
//	GET    /v1/subscriptions                 RFC 9437 subscriptions and counters (SubscriptionsInfo)
//	GET    /v1/ddt/delegations               a DDT node's authority and delegations (DDTInfo)
//	GET    /v1/msx/agreements                the interconnect agreements, state and counters (MSXAgreementInfo)
//	GET    /v1/cpnp                          CPNP negotiation: identity, agreements, contacts, counters (CPNPInfo)
//	POST   /v1/cpnp/withdraw                 withdraw an agreed CPNP agreement (CPNPWithdrawal)
//	GET    /v1/ddt/referrals                 a DDT Map-Resolver's roots, referral cache, counters (DDTResolverInfo)
//	GET    /v1/ddt/pending                   a DDT Map-Resolver's resolutions in progress (DDTPendingList)
//	GET    /v1/alt                           an ALT router's neighbours, sessions, ALT table, counters (ALTView)
//	GET    /v1/stats                         counters (Stats)
//	GET    /v1/events                        event stream, one JSON Event per line

// RLOCInfo is one locator in API listings.
type RLOCInfo struct {
	Addr      string `json:"addr"`
	Priority  uint8  `json:"priority"`
	Weight    uint8  `json:"weight"`
	Reachable bool   `json:"reachable"`
	Source    string `json:"source,omitempty"`
}

// MapCacheEntry is a map-cache entry in API listings and requests.
type MapCacheEntry struct {
	IID      uint32     `json:"iid"`
	EID      string     `json:"eid"`
	RLOCs    []RLOCInfo `json:"rlocs,omitempty"`
	Negative bool       `json:"negative,omitempty"`
	Action   string     `json:"action,omitempty"`
	TTL      uint32     `json:"ttl_minutes"`
	Expires  time.Time  `json:"expires,omitzero"`
	Static   bool       `json:"static,omitempty"`
	LastUsed time.Time  `json:"last_used,omitzero"`
}

// DatabaseMapping is an ETR database mapping in the API.
type DatabaseMapping struct {
	IID   uint32     `json:"iid"`
	EID   string     `json:"eid"`
	RLOCs []RLOCInfo `json:"rlocs"`
	TTL   string     `json:"ttl,omitempty"`
}

// RegistrationInfo is one Map-Server registration in the API.
type RegistrationInfo struct {
	Site    string    `json:"site"`
	IID     uint32    `json:"iid"`
	EID     string    `json:"eid"`
	Source  string    `json:"source"`
	XTRID   string    `json:"xtr_id,omitempty"`
	SiteID  uint64    `json:"site_id,omitempty"`
	RLOCs   []string  `json:"rlocs"`
	Proxy   bool      `json:"proxy_reply,omitempty"`
	Expires time.Time `json:"expires"`
}

// MsgCount is the control-message counters of one type.
type MsgCount struct {
	Type string `json:"type"`
	slowpath.MsgStats
}

// Stats is the API's counter snapshot.
type Stats struct {
	Name    string `json:"name"`
	Uptime  string `json:"uptime"`
	Workers int    `json:"workers"`
	// PerWorker holds each worker's packet counters (rx, tx, encap,
	// decap), indexed by worker (= receive queue).
	PerWorker []map[string]uint64 `json:"per_worker,omitempty"`
	Fastpath  map[string]uint64   `json:"fastpath,omitempty"`
	Drops     map[string]uint64   `json:"drops,omitempty"`
	Messages  []MsgCount          `json:"messages,omitempty"`
	Control   map[string]uint64   `json:"control,omitempty"`
	Cache     cache.Stats         `json:"cache"`
	LatencyMS map[string]string   `json:"resolve_latency,omitempty"`
}

func (r *Router) startMgmt() error {
	path := r.cfg.Mgmt.Socket
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("mgmt.socket: %w", err)
	}
	// A socket file left by a crashed run is removed; a live one is not.
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return fmt.Errorf("mgmt.socket: %s is in use by another process", path)
	}
	// Only a stale socket is replaced: never a file or a directory an
	// operator pointed the option at by mistake.
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return fmt.Errorf("mgmt.socket: %s exists and is not a socket (%v); refusing to replace it", path, fi.Mode().Type())
		}
		_ = os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("mgmt.socket: %w", err)
	}
	_ = os.Chmod(path, 0o660)
	r.mgmtLn = ln
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/map-cache", r.apiMapCache)
	mux.HandleFunc("POST /v1/map-cache", r.apiMapCacheAdd)
	mux.HandleFunc("DELETE /v1/map-cache", r.apiMapCacheDelete)
	mux.HandleFunc("GET /v1/database", r.apiDatabase)
	mux.HandleFunc("POST /v1/database", r.apiDatabaseAdd)
	mux.HandleFunc("DELETE /v1/database", r.apiDatabaseDelete)
	mux.HandleFunc("GET /v1/registrations", r.apiRegistrations)
	mux.HandleFunc("GET /v1/subscriptions", r.apiSubscriptions)
	mux.HandleFunc("GET /v1/solicit", r.apiSolicit)
	mux.HandleFunc("GET /v1/ddt/delegations", r.apiDDTDelegations)
	mux.HandleFunc("GET /v1/ddt/referrals", ddtResolverAPI(r.DDTReferrals))
	mux.HandleFunc("DELETE /v1/ddt/referrals", r.apiDDTReferralsFlush)
	mux.HandleFunc("GET /v1/ddt/pending", ddtResolverAPI(r.DDTPending))
	mux.HandleFunc("GET /v1/alt", r.handleALT)
	mux.HandleFunc("GET /v1/discovery", r.apiDiscovery)
	mux.HandleFunc("POST /v1/discovery/status", r.apiDiscoveryStatus)
	mux.HandleFunc("GET /v1/msx/agreements", r.apiMSXAgreements)
	mux.HandleFunc("GET /v1/cpnp", r.apiCPNP)
	mux.HandleFunc("POST /v1/cpnp/withdraw", r.apiCPNPWithdraw)
	mux.HandleFunc("GET /v1/offload", r.apiOffload)
	mux.HandleFunc("GET /v1/stats", r.apiStats)
	mux.HandleFunc("GET /v1/events", r.apiEvents)
	r.mcastRoutes(mux)
	r.mgmtSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.mgmtSrv.Serve(ln) }()
	return nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func apiError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// keyArgs reads ?iid=N&eid=PREFIX.
func keyArgs(req *http.Request) (uint32, netip.Prefix, error) {
	q := req.URL.Query()
	var iid uint64
	if s := q.Get("iid"); s != "" {
		var err error
		if iid, err = strconv.ParseUint(s, 10, 24); err != nil {
			return 0, netip.Prefix{}, fmt.Errorf("iid: %q is not a 24-bit number", s)
		}
	}
	p, err := parseEID(q.Get("eid"))
	return uint32(iid), p, err
}

// parseEID parses a prefix or a host address.
func parseEID(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("eid: %q is not a prefix", s)
	}
	return p.Masked(), nil
}

func reachSource(s cache.ReachSource) string {
	switch s {
	case cache.ReachConfig:
		return "config"
	case cache.ReachMapReply:
		return "map-reply"
	case cache.ReachProbe:
		return "probe"
	case cache.ReachEchoNonce:
		return "echo-nonce"
	case cache.ReachLSB:
		return "lsb"
	case cache.ReachRouting:
		return "routing"
	case cache.ReachSolicit:
		return "solicit"
	}
	return ""
}

func (r *Router) entryInfo(e *cache.Entry) MapCacheEntry {
	k := e.Key()
	m := MapCacheEntry{IID: k.IID, EID: k.String(), TTL: e.TTL(), Expires: e.Expiry(), Static: e.Static(),
		Negative: e.Negative()}
	if k.Kind == cache.KindIP {
		m.EID = k.Prefix.String()
	}
	if e.Negative() {
		m.Action = actionName(e.Action())
	}
	for _, l := range e.RLOCs() {
		m.RLOCs = append(m.RLOCs, RLOCInfo{Addr: l.Addr.String(), Priority: l.Priority, Weight: l.Weight,
			Reachable: l.Reachable, Source: reachSource(l.Source)})
	}
	if !e.Static() {
		m.LastUsed = r.cache.LastUsed(e)
	}
	return m
}

// MapCache lists the map-cache.
func (r *Router) MapCache() []MapCacheEntry {
	var out []MapCacheEntry
	r.cache.Walk(func(e *cache.Entry) bool {
		out = append(out, r.entryInfo(e))
		return true
	})
	slices.SortFunc(out, func(a, b MapCacheEntry) int {
		if a.IID != b.IID {
			return int(a.IID) - int(b.IID)
		}
		return strings.Compare(a.EID, b.EID)
	})
	return out
}

func (r *Router) apiMapCache(w http.ResponseWriter, req *http.Request) {
	if req.URL.Query().Get("eid") == "" {
		writeJSON(w, r.MapCache())
		return
	}
	iid, p, err := keyArgs(req)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	e := r.exact(iid, p)
	if e == nil {
		apiError(w, http.StatusNotFound, fmt.Errorf("no entry for %v in instance %d", p, iid))
		return
	}
	writeJSON(w, r.entryInfo(e))
}

func parseRLOCInfos(rs []RLOCInfo) ([]fastpath.StaticRLOC, error) {
	var out []fastpath.StaticRLOC
	for i, l := range rs {
		a, err := netip.ParseAddr(l.Addr)
		if err != nil {
			return nil, fmt.Errorf("rlocs[%d].addr: %q is not an address", i, l.Addr)
		}
		out = append(out, fastpath.StaticRLOC{Addr: a.Unmap(), Priority: l.Priority, Weight: l.Weight})
	}
	return out, nil
}

func parseActionName(s string) (wire.Action, error) {
	for a := wire.ActionNoAction; a <= wire.ActionDropAuthFailure; a++ {
		if actionName(a) == s {
			return a, nil
		}
	}
	if s == "" {
		return wire.ActionNoAction, nil
	}
	return 0, fmt.Errorf("action: unknown %q", s)
}

func (r *Router) apiMapCacheAdd(w http.ResponseWriter, req *http.Request) {
	var m MapCacheEntry
	if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 1<<20)).Decode(&m); err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	p, err := parseEID(m.EID)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	rl, err := parseRLOCInfos(m.RLOCs)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	act, err := parseActionName(m.Action)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	sm := fastpath.StaticMapping{IID: m.IID, Prefix: p, RLOCs: rl, Action: act}
	if err := fastpath.InstallStatic(r.cache, []fastpath.StaticMapping{sm}); err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	r.release(fastpath.Release{IID: m.IID, Prefix: p, Negative: len(rl) == 0, Action: act})
	e := r.exact(m.IID, p)
	if e == nil {
		apiError(w, http.StatusInternalServerError, errors.New("entry not found after install"))
		return
	}
	writeJSON(w, r.entryInfo(e))
}

func (r *Router) apiMapCacheDelete(w http.ResponseWriter, req *http.Request) {
	iid, p, err := keyArgs(req)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	res := r.cache.Apply([]cache.Update{{Key: cache.IPKey(iid, p), Delete: true}})
	if res.Deleted == 0 {
		apiError(w, http.StatusNotFound, fmt.Errorf("no entry for %v in instance %d", p, iid))
		return
	}
	writeJSON(w, map[string]int{"deleted": res.Deleted})
}

func dbInfo(m slowpath.Mapping) DatabaseMapping {
	d := DatabaseMapping{IID: m.IID, EID: m.Prefix.String()}
	if m.TTL > 0 {
		d.TTL = m.TTL.String()
	}
	for _, l := range m.RLOCs {
		d.RLOCs = append(d.RLOCs, RLOCInfo{Addr: l.Addr.String(), Priority: l.Priority, Weight: l.Weight, Reachable: true})
	}
	return d
}

// Database lists the ETR's database mappings.
func (r *Router) Database() []DatabaseMapping {
	var out []DatabaseMapping
	for _, m := range r.Config().Database {
		out = append(out, dbInfo(m))
	}
	return out
}

func (r *Router) apiDatabase(w http.ResponseWriter, _ *http.Request) { writeJSON(w, r.Database()) }

// setDatabase installs ms as the ETR's mappings.
func (r *Router) setDatabase(ms []slowpath.Mapping) error {
	if r.engine == nil || !r.cfg.Roles.ETR {
		return errors.New("this router has no ETR role")
	}
	if err := r.engine.SetMappings(ms); err != nil {
		return err
	}
	r.cfgMu.Lock()
	r.cfg.Database = ms
	r.cfgMu.Unlock()
	return nil
}

func (r *Router) apiDatabaseAdd(w http.ResponseWriter, req *http.Request) {
	var d DatabaseMapping
	if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, 1<<20)).Decode(&d); err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	p, err := parseEID(d.EID)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	m := slowpath.Mapping{EIDPrefix: slowpath.EIDPrefix{IID: d.IID, Prefix: p}}
	if d.TTL != "" {
		if m.TTL, err = time.ParseDuration(d.TTL); err != nil {
			apiError(w, http.StatusBadRequest, fmt.Errorf("ttl: %w", err))
			return
		}
	}
	for i, l := range d.RLOCs {
		a, err := netip.ParseAddr(l.Addr)
		if err != nil {
			apiError(w, http.StatusBadRequest, fmt.Errorf("rlocs[%d].addr: %q is not an address", i, l.Addr))
			return
		}
		m.RLOCs = append(m.RLOCs, slowpath.RLOCConfig{Addr: a.Unmap(), Priority: l.Priority, Weight: l.Weight})
	}
	ms := slices.DeleteFunc(slices.Clone(r.Config().Database), func(x slowpath.Mapping) bool { return x.EIDPrefix == m.EIDPrefix })
	if err := r.setDatabase(append(ms, m)); err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, dbInfo(m))
}

func (r *Router) apiDatabaseDelete(w http.ResponseWriter, req *http.Request) {
	iid, p, err := keyArgs(req)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	old := r.Config().Database
	k := slowpath.EIDPrefix{IID: iid, Prefix: p}
	ms := slices.DeleteFunc(slices.Clone(old), func(x slowpath.Mapping) bool { return x.EIDPrefix == k })
	if len(ms) == len(old) {
		apiError(w, http.StatusNotFound, fmt.Errorf("no mapping for %v in instance %d", p, iid))
		return
	}
	if len(ms) == 0 {
		apiError(w, http.StatusBadRequest, errors.New("an ETR keeps at least one mapping"))
		return
	}
	if err := r.setDatabase(ms); err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, map[string]int{"deleted": 1})
}

// Registrations lists the Map-Server's registrations.
func (r *Router) Registrations() []RegistrationInfo {
	out, _, _ := r.RegistrationsPage("", -1)
	return out
}

// Paging of the registrations' listing.
const (
	// DefaultRegistrationsPage is a page's size when the request names
	// none.
	DefaultRegistrationsPage = 1000
	// MaxRegistrationsPage bounds what one request may ask for.
	MaxRegistrationsPage = 10000
)

// RegistrationsPage lists at most limit of the Map-Server's registrations
// (all for a negative limit) after the cursor after ("": from the first),
// in the order of instance-ID, prefix and registrant (group names last),
// and returns the cursor of the next page, "" when this one is the last.
func (r *Router) RegistrationsPage(after string, limit int) ([]RegistrationInfo, string, error) {
	out := []RegistrationInfo{}
	if r.engine == nil {
		return out, "", nil
	}
	var cur *control.RegistrationCursor
	if after != "" {
		c, err := parseCursor(after)
		if err != nil {
			return nil, "", err
		}
		cur = &c
	}
	regs, more := r.engine.RegistrationsPage(cur, limit)
	for _, g := range regs {
		ri := RegistrationInfo{Site: g.Site, IID: g.EID.IID, EID: g.EID.Prefix.String(), Source: g.Source.String(),
			SiteID: g.SiteID, Proxy: g.ProxyReply, Expires: g.Expires}
		if g.Name != "" {
			ri.EID = g.Name // a group name (EID.Prefix is the range it names) or a distinguished name
		}
		if g.Static {
			ri.Source = "config"
		}
		if g.XTRID != (wire.XTRID{}) {
			ri.XTRID = fmt.Sprintf("%x", g.XTRID[:])
		}
		for _, a := range g.RLOCs {
			ri.RLOCs = append(ri.RLOCs, a.String())
		}
		out = append(out, ri)
	}
	next := ""
	if more && len(regs) > 0 {
		next = formatCursor(&regs[len(regs)-1].Cursor)
	}
	return out, next, nil
}

// formatCursor writes a cursor as the API passes it: "eid" or "name",
// instance-ID, prefix and registrant, separated by "|"; for a
// distinguished name "dn", instance-ID, registrant and the name last (it
// may hold "|").
func formatCursor(c *control.RegistrationCursor) string {
	if c.DN != "" {
		return fmt.Sprintf("dn|%d|%s|%s", c.IID, c.ID, c.DN)
	}
	kind := "eid"
	if c.Name {
		kind = "name"
	}
	return fmt.Sprintf("%s|%d|%s|%s", kind, c.IID, c.Prefix, c.ID)
}

// parseCursor reads what formatCursor wrote.
func parseCursor(s string) (control.RegistrationCursor, error) {
	var c control.RegistrationCursor
	f := strings.SplitN(s, "|", 4)
	if len(f) != 4 || f[0] != "eid" && f[0] != "name" && f[0] != "dn" {
		return c, fmt.Errorf("after: %q is not a cursor (kind|iid|prefix|registrant)", s)
	}
	iid, err := strconv.ParseUint(f[1], 10, 32)
	if err != nil {
		return c, fmt.Errorf("after: instance-ID %q: %w", f[1], err)
	}
	if f[0] == "dn" {
		if f[3] == "" {
			return c, fmt.Errorf("after: %q: empty name", s)
		}
		return control.RegistrationCursor{IID: uint32(iid), ID: f[2], DN: f[3]}, nil
	}
	p, err := netip.ParsePrefix(f[2])
	if err != nil {
		return c, fmt.Errorf("after: %w", err)
	}
	return control.RegistrationCursor{Name: f[0] == "name", IID: uint32(iid), Prefix: p, ID: f[3]}, nil
}

func (r *Router) apiRegistrations(w http.ResponseWriter, req *http.Request) {
	limit := DefaultRegistrationsPage
	if v := req.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxRegistrationsPage {
			apiError(w, http.StatusBadRequest, fmt.Errorf("limit: %q is not a number from 1 to %d", v, MaxRegistrationsPage))
			return
		}
		limit = n
	}
	out, next, err := r.RegistrationsPage(req.URL.Query().Get("after"), limit)
	if err != nil {
		apiError(w, http.StatusBadRequest, err)
		return
	}
	if next != "" {
		w.Header().Set("X-Rloc-Next", next)
	}
	writeJSON(w, out)
}

// msgTypeNames names the control message types counted by the engine.
var msgTypeNames = map[wire.MessageType]string{
	wire.TypeMapRequest: "map-request", wire.TypeMapReply: "map-reply", wire.TypeMapRegister: "map-register",
	wire.TypeMapNotify: "map-notify", wire.TypeECM: "ecm", wire.TypeMapReferral: "map-referral",
}

// fastpathCounters sums the workers' counters.
func (r *Router) fastpathCounters() fastpath.Counters {
	wc := make([]*fastpath.WorkerCounters, len(r.workers))
	for i, w := range r.workers {
		wc[i] = w.Counters()
	}
	return fastpath.Sum(wc)
}

// socketCounters adds the AF_XDP sockets' transmit batching (frames, kernel
// wake-ups and sendto calls: xsk-tx-frames / xsk-tx-sendto is the frames
// per system call) and each worker's packet counters to s.
func (r *Router) socketCounters(s *Stats) {
	var tx, kicks, wakeups uint64
	for _, p := range r.xsks {
		c := p.Published()
		tx, kicks, wakeups = tx+c.TxPackets, kicks+c.TxKicks, wakeups+c.TxWakeups
	}
	s.Fastpath["xsk_tx_frames"], s.Fastpath["xsk_tx_sendto"], s.Fastpath["xsk_tx_wakeups"] = tx, kicks, wakeups
	for _, w := range r.workers {
		var c fastpath.Counters
		w.Counters().Snapshot(&c)
		s.PerWorker = append(s.PerWorker, map[string]uint64{"rx": c.Get(fastpath.CounterRX),
			"tx": c.Get(fastpath.CounterTX), "encap": c.Get(fastpath.CounterEncap), "decap": c.Get(fastpath.CounterDecap)})
	}
}

// Stats returns a snapshot of every counter.
func (r *Router) Stats() Stats {
	s := Stats{Name: r.cfg.Name, Uptime: time.Since(r.started).Round(time.Second).String(), Workers: len(r.workers),
		Cache: r.cache.Stats()}
	if len(r.workers) > 0 {
		s.Fastpath, s.Drops = map[string]uint64{}, map[string]uint64{}
		c := r.fastpathCounters()
		c.Each(func(name, reason string, v uint64) {
			if reason == "" {
				s.Fastpath[name] = v
			} else if v > 0 {
				s.Drops[reason] = v
			}
		})
		for e := fastpath.Extra(0); e < fastpath.NumExtra; e++ {
			var v uint64
			for _, w := range r.workers {
				v += w.Extra(e)
			}
			s.Fastpath[e.String()] = v
		}
		// Frames the kernel could not hand to an AF_XDP socket never reach a
		// worker: its receive ring was full or its fill ring empty.
		var xs unix.XDPStatistics
		for _, p := range r.xsks {
			if st, err := p.Stats(); err == nil {
				xs.Rx_dropped += st.Rx_dropped
				xs.Rx_ring_full += st.Rx_ring_full
				xs.Rx_fill_ring_empty_descs += st.Rx_fill_ring_empty_descs
				xs.Rx_invalid_descs += st.Rx_invalid_descs
			}
		}
		for k, v := range map[string]uint64{"xsk_rx_dropped": xs.Rx_dropped, "xsk_rx_ring_full": xs.Rx_ring_full,
			"xsk_fill_ring_empty": xs.Rx_fill_ring_empty_descs, "xsk_rx_invalid": xs.Rx_invalid_descs} {
			if v > 0 {
				s.Drops[k] = v
			}
		}
		// What the steering programs passed to the kernel because no
		// socket serves the queue it arrived on (partial_queues).
		var noXSK, offloaded uint64
		for _, p := range r.progs {
			if st, err := p.Stats(); err == nil {
				noXSK += st[xsk.StatPassNoXSK]
				offloaded += st[xsk.StatOffload]
			}
		}
		s.Fastpath["xdp_pass_no_xsk"] = noXSK
		if r.offload != nil {
			// What the programs encapsulated (xdp.offload) or delivered
			// (xdp.offload_decap) themselves.
			s.Fastpath["xdp_offloaded"] = offloaded
			ost := r.offload.Stats()
			// Tables that refused a new epoch and were turned off.
			s.Fastpath["xdp_offload_errors"] = ost.Errors
			// 1 while a core interface does not take XDP redirects
			// (offloadPeers), and how often that began.
			s.Fastpath["xdp_offload_paused"] = 0
			if ost.PausedEncap || ost.PausedDecap {
				s.Fastpath["xdp_offload_paused"] = 1
			}
			s.Fastpath["xdp_offload_pauses"] = ost.Pauses
			// The flows the tables held at the last sweep, both directions.
			s.Fastpath["xdp_offload_flows"] = uint64(ost.FlowsEncap + ost.FlowsDecap)
		}
		r.socketCounters(&s)
		s.Fastpath["release_queue_full"] = r.releaseDropped.Load()
		s.Fastpath["misses_to_slowpath"] = r.missesSeen.Load()
	}
	if r.engine != nil {
		es := r.engine.Stats()
		for t := range es.Msgs {
			m := es.Msgs[t]
			if m == (slowpath.MsgStats{}) {
				continue
			}
			name, ok := msgTypeNames[wire.MessageType(t)]
			if !ok {
				name = "type-" + strconv.Itoa(t)
			}
			s.Messages = append(s.Messages, MsgCount{Type: name, MsgStats: m})
		}
		s.Control = map[string]uint64{
			"registrations":               uint64(es.Registrations),
			"registrations_accepted":      es.RegistrationsAccepted,
			"registrations_rejected":      es.RegistrationsRejected,
			"registrations_expired":       es.RegistrationsExpired,
			"registrations_limited":       es.RegistrationsLimited,
			"registrations_replayed":      es.RegistrationsReplayed,
			"registrations_retransmitted": es.RegistrationsRetransmitted,
			"merge_truncated":             es.MergeTruncated,
			"state_flushes":               es.StateFlushes,
			"state_errors":                es.StateErrors,
			"state_written":               es.StateWritten,
			"register_notified":           es.RegisterNotified,
			"register_retries":            es.RegisterRetries,
			"register_unconfirmed":        es.RegisterUnconfirmed,
			"forwarded":                   es.Forwarded,
			"proxy_replies":               es.ProxyReplies,
			"group_name_replies":          es.GroupNameReplies,
			"negative_replies":            es.NegativeReplies,
			"resolutions":                 es.Resolutions,
			"resolve_timeouts":            es.ResolveTimeouts,
			"retransmits":                 es.Retransmits,
			"probes_sent":                 es.ProbesSent,
			"rloc_down":                   es.RLOCDown,
			"rloc_up":                     es.RLOCUp,
			"misses_dropped":              es.MissesDropped,
			"misses_stale":                es.MissesStale,
			"short":                       es.Short,
			"oversize":                    es.Oversize,
			"smrs_sent":                   es.SMRsSent,
			"smr_invoked":                 es.SMRInvoked,
			"rate_limited_source":         es.RateLimitedSource,
			"replies_wrong_source":        es.RepliesWrongSource,
			"rate_limited_total":          es.RateLimitedTotal,
			"rate_table_full":             es.RateTableFull,
			"lisp_sec_verified":           es.LispSecVerified,
			"lisp_sec_refused":            es.LispSecRefused,
			"lisp_sec_unsigned":           es.LispSecUnsigned,
			"lisp_sec_signed":             es.LispSecSigned,
			"lisp_sec_unwrap_failed":      es.LispSecUnwrapFailed,
		}
		// Which authentication variant the verified messages used.
		auth := es.AuthTotals()
		auth.Each(func(name string, v uint64) { s.Control[name] = v })
		if h := es.ResolveLatency; h.Count > 0 {
			s.LatencyMS = map[string]string{
				"count": strconv.FormatUint(h.Count, 10),
				"mean":  (h.Sum / time.Duration(h.Count)).String(),
				"p50":   "<=" + h.Quantile(0.5).String(),
				"p99":   "<=" + h.Quantile(0.99).String(),
			}
		}
	}
	// One key style in all JSON (snake_case, as Prometheus names them): the
	// fast path names its counters and drop reasons with dashes.
	s.Fastpath, s.Drops = snakeKeys(s.Fastpath), snakeKeys(s.Drops)
	return s
}

// snakeKeys returns m with its keys in snake_case (metricName).
func snakeKeys(m map[string]uint64) map[string]uint64 {
	if m == nil {
		return nil
	}
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[metricName(k)] = v
	}
	return out
}

func (r *Router) apiStats(w http.ResponseWriter, _ *http.Request) { writeJSON(w, r.Stats()) }

func (r *Router) apiEvents(w http.ResponseWriter, req *http.Request) {
	enc := json.NewEncoder(w)
	r.streamEvents(w, req, "application/x-ndjson", func(ev Event) error { return enc.Encode(ev) })
}

// streamEvents writes each event of the router's hub to w with write, in
// contentType, until the client or the router goes away.
func (r *Router) streamEvents(w http.ResponseWriter, req *http.Request, contentType string, write func(Event) error) {
	fl, ok := w.(http.Flusher)
	if !ok {
		apiError(w, http.StatusInternalServerError, errors.New("streaming unsupported"))
		return
	}
	ch, cancel := r.events.subscribe()
	defer cancel()
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	for {
		select {
		case <-req.Context().Done():
			return
		case <-r.ctx.Done():
			return
		case ev := <-ch:
			if write(ev) != nil {
				return
			}
			fl.Flush()
		}
	}
}

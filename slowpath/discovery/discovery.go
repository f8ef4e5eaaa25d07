// Package discovery is the OSPF-based discovery of Map-Resolvers and
// Map-Servers inside a domain (draft-boucadair-lisp-function-discovery,
// docs/discovery.md). A Map-Resolver or Map-Server node floods its MSFD
// TLV (msfd.go) through its local FRR ospfd's OSPF API (ospfapi); every
// node follows the MSFD TLVs flooded in its area and keeps a table of the
// functions, their locators, status and timers. An xTR uses the usable
// Map-Resolvers of that table: one whose status turns to disabled, whose
// unavailability or reboot time comes, or whose LSA is flushed, leaves the
// set handed to the ITR.
//
// BGP discovery (bgp.go, mscomm.go; draft-boucadair-lisp-idr-ms-discovery)
// is the other half: a mapping system's border speaker advertises its EID
// prefixes tagged with the Mapping System extended community carrying its
// contact address, and learns prefix → contact from its neighbours.
//
// The package runs its own goroutine (the OSPF API is TCP, not the core's
// UDP sockets); it reaches the control plane only through the OnChange
// callback the assembly gives it.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/discovery/ospfapi"
	"github.com/rloc-router/rloc/wire"
)

// OpaqueTypeRI is the Router Information LSA's opaque type (RFC 7770 §2).
const OpaqueTypeRI = 4

// syncSettle is how long after a database sync the sets are handed over
// even if no LSA changed them (one that vanished while the connection was
// down); the sync's LSAs arrive within it.
const syncSettle = time.Second

// replaceGrace is how long a delete notification of an LSA younger than
// MaxAge waits before it withdraws what the LSA advertised. ospfd reports
// an LSA replaced by a newer instance (every refresh, every status change)
// as a delete of the old instance followed at once by an update of the new
// one (its LSDB's delete and add hooks, one after the other); applied at
// once, the delete would take the function away from the xTRs for an
// instant and make their ETRs drop and redo the registration. An update
// within the grace cancels the delete; a delete with MaxAge (the flush
// leaving the database) applies at once.
const replaceGrace = 200 * time.Millisecond

// maxLSAs bounds the learned LSAs; beyond it new ones are dropped and
// counted.
const maxLSAs = 4096

// maxPerLSA bounds the MSFD TLVs kept from one LSA; more are dropped and
// counted.
const maxPerLSA = 16

// Options are what the assembly gives the component besides its
// configuration.
type Options struct {
	// Log receives the component's logs (nil discards them).
	Log *slog.Logger
	// OnChange receives the usable Map-Resolvers and Map-Servers whenever
	// either set changes (from the component's goroutine; it may block
	// briefly).
	OnChange func(mapResolvers, mapServers []netip.AddrPort)
}

// Entry is one function learned from an MSFD TLV, as Discovery.Entries
// lists it.
type Entry struct {
	// Router is the advertising router's OSPF router ID.
	Router netip.Addr `json:"router"`
	// Area is the OSPF area of the LSA.
	Area netip.Addr `json:"area"`
	// OpaqueType and OpaqueID name the LSA (RFC 5250 §3).
	OpaqueType uint8  `json:"opaque_type"`
	OpaqueID   uint32 `json:"opaque_id"`
	// Self is set for the TLV this router floods.
	Self bool `json:"self"`
	// Function, Status, Capabilities, Port, Locators are the TLV's.
	Function     string       `json:"function"`
	Status       string       `json:"status"`
	Capabilities []string     `json:"capabilities,omitempty"`
	Port         uint16       `json:"port"`
	Locators     []netip.Addr `json:"locators"`
	// UnavailableAt and RebootAt are when the advertised timers run out
	// (zero: no timer).
	UnavailableAt time.Time `json:"unavailable_at,omitzero"`
	RebootAt      time.Time `json:"reboot_at,omitzero"`
	// Learned is when the current content was first received.
	Learned time.Time `json:"learned"`
	// Usable says whether xTRs use the function now.
	Usable bool `json:"usable"`
}

// Stats are the component's counters.
type Stats struct {
	// Connected is whether the API connection is up.
	Connected bool `json:"connected"`
	// Connects counts API connections made; ConnectErrors failed ones.
	Connects      uint64 `json:"connects"`
	ConnectErrors uint64 `json:"connect_errors"`
	// Updates and Deletes count the LSA notifications handled.
	Updates uint64 `json:"updates"`
	Deletes uint64 `json:"deletes"`
	// Malformed counts MSFD TLVs (and broken TLV framing) ignored.
	Malformed uint64 `json:"malformed"`
	// Dropped counts LSAs not kept because the table is full, and TLVs
	// beyond 16 in one LSA.
	Dropped uint64 `json:"dropped"`
	// Originated counts this router's TLV originations accepted by ospfd;
	// OriginateErrors the refused ones.
	Originated      uint64 `json:"originated"`
	OriginateErrors uint64 `json:"originate_errors"`
	// Changes counts changes of the usable Map-Resolver or Map-Server
	// set.
	Changes uint64 `json:"changes"`
}

type lsaKey struct {
	area, router netip.Addr
	otype        uint8
	oid          uint32
}

type learned struct {
	msfd     MSFD
	learned  time.Time
	unavail  time.Time
	reboot   time.Time
	self     bool
	function Function
}

// Discovery is the running component.
type Discovery struct {
	cfg  slowpath.DiscoveryConfig
	opt  Options
	log  *slog.Logger
	kick chan struct{}
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	lsas    map[lsaKey][]learned
	advert  *MSFD // nil: nothing to flood
	stats   Stats
	lastMRs []netip.AddrPort
	lastMSs []netip.AddrPort

	// deleting holds the LSAs whose delete waits out replaceGrace: when
	// it is applied.
	deleting map[lsaKey]time.Time
}

// New builds the component for cfg (defaults applied by New); advert is
// the TLV to flood, nil for a node that only learns. Start runs it.
func New(cfg slowpath.DiscoveryConfig, advert *MSFD, opt Options) *Discovery {
	cfg = cfg.WithDefaults()
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Discovery{cfg: cfg, opt: opt, log: log.With("component", "discovery"),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		lsas: map[lsaKey][]learned{}, deleting: map[lsaKey]time.Time{}}
	if advert != nil {
		a := advert.Clone()
		d.advert = &a
	}
	return d
}

// Advert builds the TLV a node floods from its configuration: functions
// from the roles, locators (the RLOCs when none are configured), the
// control port.
func Advert(cfg *slowpath.DiscoveryConfig, rlocs []netip.Addr, port uint16) (*MSFD, error) {
	if cfg.Functions == 0 {
		return nil, nil
	}
	a := cfg.Advertise
	m := &MSFD{Function: Function(cfg.Functions), Status: StatusEnabled, Port: a.Port,
		Unavailable: a.UnavailableTimer, Reboot: a.RebootTimer, Locators: a.Locators}
	if m.Port == 0 {
		m.Port = port
	}
	if len(m.Locators) == 0 {
		m.Locators = rlocs
	}
	if a.Status == "disabled" {
		m.Status = StatusDisabled
	}
	for _, c := range a.Capabilities {
		switch c {
		case "bulk":
			m.Capabilities |= CapBulk
		case "subscribe":
			m.Capabilities |= CapSubscribe
		}
	}
	if _, err := m.Append(nil); err != nil {
		return nil, fmt.Errorf("discovery.advertise: %w", err)
	}
	return m, nil
}

// Start runs the component's goroutine: it connects to ospfd (again after
// each failure), floods the TLV when ospfd is ready, and follows the
// TLVs of the area.
func (d *Discovery) Start() { go d.run() }

// Close stops the goroutine and closes the API connection (ospfd then
// flushes this router's TLV).
func (d *Discovery) Close() {
	select {
	case <-d.stop:
	default:
		close(d.stop)
	}
	<-d.done
}

// SetStatus changes the status this router floods; the new LSA goes out
// at once when ospfd is ready.
func (d *Discovery) SetStatus(s Status) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.advert == nil {
		return errors.New("discovery: this router advertises no function (not a Map-Resolver or Map-Server)")
	}
	if s != StatusEnabled && s != StatusDisabled {
		return fmt.Errorf("discovery: status %v", s)
	}
	d.advert.Status = s
	select {
	case d.kick <- struct{}{}:
	default:
	}
	return nil
}

// Stats returns the counters.
func (d *Discovery) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// Entries lists the functions learned, in a stable order.
func (d *Discovery) Entries() []Entry {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	var out []Entry
	for k, ls := range d.lsas {
		for _, l := range ls {
			out = append(out, Entry{Router: k.router, Area: k.area, OpaqueType: k.otype, OpaqueID: k.oid, Self: l.self,
				Function: l.msfd.Function.String(), Status: l.msfd.Status.String(), Capabilities: l.msfd.Capabilities.Names(),
				Port: l.msfd.Port, Locators: l.msfd.Locators, UnavailableAt: l.unavail, RebootAt: l.reboot,
				Learned: l.learned, Usable: l.usable(now)})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if c := out[i].Router.Compare(out[j].Router); c != 0 {
			return c < 0
		}
		if out[i].OpaqueID != out[j].OpaqueID {
			return out[i].OpaqueID < out[j].OpaqueID
		}
		return out[i].Function < out[j].Function
	})
	return out
}

func (l *learned) usable(now time.Time) bool {
	if l.msfd.Status != StatusEnabled {
		return false
	}
	if !l.unavail.IsZero() && !now.Before(l.unavail) {
		return false
	}
	return l.reboot.IsZero() || now.Before(l.reboot)
}

// MapResolvers returns the usable Map-Resolvers' locators with their
// ports, ordered by router ID then locator, without duplicates.
func (d *Discovery) MapResolvers() []netip.AddrPort {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.usable(time.Now(), FunctionMapResolver)
}

// MapServers returns the usable Map-Servers, as MapResolvers.
func (d *Discovery) MapServers() []netip.AddrPort {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.usable(time.Now(), FunctionMapServer)
}

// usable lists the locators of the usable functions fn.
func (d *Discovery) usable(now time.Time, fn Function) []netip.AddrPort {
	keys := make([]lsaKey, 0, len(d.lsas))
	for k := range d.lsas {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if c := keys[i].router.Compare(keys[j].router); c != 0 {
			return c < 0
		}
		return keys[i].oid < keys[j].oid
	})
	var out []netip.AddrPort
	for _, k := range keys {
		for _, l := range d.lsas[k] {
			if l.function&fn == 0 || !l.usable(now) {
				continue
			}
			port := l.msfd.Port
			if port == 0 {
				port = wire.ControlPort
			}
			for _, a := range l.msfd.Locators {
				ap := netip.AddrPortFrom(a, port)
				if !slices.Contains(out, ap) {
					out = append(out, ap)
				}
			}
		}
	}
	return out
}

// nextDeadline is the earliest timer still to run out, or delete still
// to apply (zero: none).
func (d *Discovery) nextDeadline(now time.Time) time.Time {
	var next time.Time
	for _, t := range d.deleting {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, ls := range d.lsas {
		for _, l := range ls {
			for _, t := range []time.Time{l.unavail, l.reboot} {
				if !t.IsZero() && t.After(now) && (next.IsZero() || t.Before(next)) {
					next = t
				}
			}
		}
	}
	return next
}

// notify hands the usable Map-Resolvers and Map-Servers to OnChange when
// they changed.
func (d *Discovery) notify() {
	d.mu.Lock()
	now := time.Now()
	mrs, mss := d.usable(now, FunctionMapResolver), d.usable(now, FunctionMapServer)
	changed := !slices.Equal(mrs, d.lastMRs) || !slices.Equal(mss, d.lastMSs)
	if changed {
		d.lastMRs, d.lastMSs = mrs, mss
		d.stats.Changes++
	}
	d.mu.Unlock()
	if changed {
		d.log.Info("discovered functions changed", "map_resolvers", mrs, "map_servers", mss)
		if d.opt.OnChange != nil {
			d.opt.OnChange(mrs, mss)
		}
	}
}

func (d *Discovery) run() {
	defer close(d.done)
	for {
		err := d.session()
		d.mu.Lock()
		d.stats.Connected = false
		d.mu.Unlock()
		select {
		case <-d.stop:
			return
		default:
		}
		d.log.Warn("OSPF API session ended; connecting again", "ospf_api", d.cfg.OSPFAPI, "err", err, "retry", d.cfg.RetryInterval)
		t := time.NewTimer(d.cfg.RetryInterval)
		select {
		case <-d.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// session is one API connection: register, sync, then follow.
func (d *Discovery) session() error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-d.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	c, err := ospfapi.Dial(dctx, d.cfg.OSPFAPI)
	dcancel()
	if err != nil {
		d.mu.Lock()
		d.stats.ConnectErrors++
		d.mu.Unlock()
		return err
	}
	defer c.Close()
	go func() { <-ctx.Done(); c.Close() }()
	d.mu.Lock()
	d.stats.Connects++
	d.stats.Connected = true
	// What was learned before belongs to the old session: start over from
	// the database sync. The sets handed over are not emptied meanwhile:
	// the sync's LSAs refill them, and a second after it whatever is gone
	// is dropped (settle below).
	clear(d.lsas)
	clear(d.deleting)
	advertising := d.advert != nil
	d.mu.Unlock()
	d.log.Info("connected to ospfd's OSPF API", "ospf_api", d.cfg.OSPFAPI, "area", d.cfg.Area)

	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	if advertising {
		if err := c.RegisterOpaqueType(rctx, ospfapi.LSATypeOpaqueArea, d.cfg.OpaqueType); err != nil {
			if ctx.Err() != nil || c.Err() != nil {
				return err
			}
			// Refused (the type is someone else's): this session learns
			// without flooding; the next one asks again.
			if d.cfg.OpaqueType == OpaqueTypeRI {
				err = fmt.Errorf("%w (ospfd's router-info or segment routing owns the Router Information LSA: set discovery.opaque_type to a private type such as 232 on every node)", err)
			}
			d.mu.Lock()
			d.stats.OriginateErrors++
			d.mu.Unlock()
			d.log.Error("MSFD TLV cannot be flooded: opaque type refused; learning only", "opaque_type", d.cfg.OpaqueType, "err", err)
			advertising = false
		}
	}
	f := ospfapi.Filter{Types: []uint8{ospfapi.LSATypeOpaqueArea}, Origin: ospfapi.AnyOrigin, Areas: []netip.Addr{d.cfg.Area}}
	if err := c.RegisterEvent(rctx, f); err != nil {
		return err
	}
	if err := c.SyncLSDB(rctx, f); err != nil {
		return err
	}
	rcancel()

	ready := false
	settle := time.NewTimer(syncSettle)
	defer settle.Stop()
	var timer *time.Timer
	var timerC <-chan time.Time
	for {
		d.mu.Lock()
		next := d.nextDeadline(time.Now())
		d.mu.Unlock()
		if timer != nil {
			timer.Stop()
			timer, timerC = nil, nil
		}
		if !next.IsZero() {
			timer = time.NewTimer(time.Until(next))
			timerC = timer.C
		}
		select {
		case <-d.stop:
			return nil
		case <-timerC:
			d.applyDeletes(time.Now())
			d.notify()
		case <-settle.C:
			d.notify()
		case <-d.kick:
			if ready {
				d.originate(ctx, c)
			}
		case ev, ok := <-c.Events():
			if !ok {
				return c.Err()
			}
			switch ev.Kind {
			case ospfapi.EventReady:
				if advertising && ev.LSAType == ospfapi.LSATypeOpaqueArea && ev.OpaqueType == d.cfg.OpaqueType && ev.Addr == d.cfg.Area {
					ready = true
					d.originate(ctx, c)
				}
			case ospfapi.EventLSAUpdate, ospfapi.EventLSADelete:
				d.onLSA(&ev)
			}
		}
	}
}

// originate floods (or refreshes) this router's TLV.
func (d *Discovery) originate(ctx context.Context, c *ospfapi.Client) {
	d.mu.Lock()
	body, err := d.advert.Append(nil)
	status := d.advert.Status
	d.mu.Unlock()
	if err == nil {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = c.Originate(octx, netip.Addr{}, d.cfg.Area, ospfapi.LSATypeOpaqueArea, d.cfg.OpaqueType, 0, body)
		cancel()
	}
	d.mu.Lock()
	if err != nil {
		d.stats.OriginateErrors++
	} else {
		d.stats.Originated++
	}
	d.mu.Unlock()
	if err != nil {
		// Not ready: ospfd says when it is (EventReady).
		d.log.Warn("MSFD TLV not originated", "err", err)
		return
	}
	d.log.Info("MSFD TLV originated", "area", d.cfg.Area, "opaque_type", d.cfg.OpaqueType, "status", status)
}

// onLSA applies an LSA update or delete of the area.
func (d *Discovery) onLSA(ev *ospfapi.Event) {
	h := &ev.Header
	if h.Type != ospfapi.LSATypeOpaqueArea || (h.OpaqueType() != OpaqueTypeRI && h.OpaqueType() != d.cfg.OpaqueType) {
		return
	}
	k := lsaKey{area: ev.Area, router: h.AdvRouter, otype: h.OpaqueType(), oid: h.OpaqueID()}
	now := time.Now()
	d.mu.Lock()
	if ev.Kind == ospfapi.EventLSADelete && h.Age < 3600 {
		// Replaced, or flushed: the update of a newer instance, if it
		// comes at once, says which (replaceGrace).
		d.stats.Deletes++
		if _, ok := d.lsas[k]; ok {
			if _, waiting := d.deleting[k]; !waiting {
				d.deleting[k] = now.Add(replaceGrace)
			}
		}
		d.mu.Unlock()
		return
	}
	if ev.Kind == ospfapi.EventLSADelete || h.Age >= 3600 { // MaxAge (RFC 2328 §B): a flush
		d.stats.Deletes++
		d.withdraw(k)
		d.mu.Unlock()
		d.notify()
		return
	}
	delete(d.deleting, k)
	d.stats.Updates++
	old := d.lsas[k]
	var fresh []learned
	// The origination time: the timers count from it.
	origin := now.Add(-time.Duration(h.Age) * time.Second)
	framing := ParseRIBody(ev.Body, func(m *MSFD) {
		if len(fresh) == maxPerLSA {
			d.stats.Dropped++
			return
		}
		l := learned{msfd: m.Clone(), learned: now, self: ev.Self, function: m.Function & functionMask}
		if m.Unavailable > 0 {
			l.unavail = origin.Add(m.Unavailable)
		}
		if m.Reboot > 0 {
			l.reboot = origin.Add(m.Reboot)
		}
		// The same content again (a refresh): keep when it was learned
		// and when its timers run out.
		for _, o := range old {
			if sameMSFD(&o.msfd, &l.msfd) {
				l.learned, l.unavail, l.reboot = o.learned, o.unavail, o.reboot
			}
		}
		fresh = append(fresh, l)
	}, func(err error) {
		d.stats.Malformed++
		d.log.Warn("malformed MSFD TLV ignored", "router", h.AdvRouter, "opaque_type", h.OpaqueType(), "opaque_id", h.OpaqueID(), "err", err)
	})
	if framing != nil {
		d.stats.Malformed++
		d.log.Warn("malformed Router Information TLVs ignored", "router", h.AdvRouter, "opaque_type", h.OpaqueType(), "err", framing)
	}
	switch {
	case len(fresh) == 0:
		delete(d.lsas, k)
	case old == nil && len(d.lsas) >= maxLSAs:
		d.stats.Dropped++
		d.log.Warn("MSFD LSA dropped: table full", "router", h.AdvRouter, "max", maxLSAs)
	default:
		if old == nil {
			d.log.Info("MSFD LSA learned", "router", k.router, "functions", len(fresh))
		}
		d.lsas[k] = fresh
	}
	d.mu.Unlock()
	d.notify()
}

// withdraw forgets LSA k (d.mu held).
func (d *Discovery) withdraw(k lsaKey) {
	delete(d.deleting, k)
	if _, ok := d.lsas[k]; ok {
		delete(d.lsas, k)
		d.log.Info("MSFD LSA withdrawn", "router", k.router, "opaque_type", k.otype, "opaque_id", k.oid)
	}
}

// applyDeletes withdraws the LSAs whose delete has waited out
// replaceGrace by now with no newer instance; the caller notifies.
func (d *Discovery) applyDeletes(now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, at := range d.deleting {
		if !now.Before(at) {
			d.withdraw(k)
		}
	}
}

func sameMSFD(a, b *MSFD) bool {
	return a.Function == b.Function && a.Status == b.Status && a.Capabilities == b.Capabilities &&
		a.Unavailable == b.Unavailable && a.Reboot == b.Reboot && a.Port == b.Port && slices.Equal(a.Locators, b.Locators)
}

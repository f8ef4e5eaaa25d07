package discovery

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/bgp"
)

// defaultMaxLearned bounds the prefixes BGP discovery keeps when the
// configuration does not.
const defaultMaxLearned = 65536

// BGPEntry is one EID prefix and the mapping system servicing it, as
// learned from BGP (draft-boucadair-lisp-idr-ms-discovery) or advertised
// by this router.
type BGPEntry struct {
	// Prefix is the EID prefix.
	Prefix netip.Prefix `json:"prefix"`
	// Contact is the mapping system's contact address and port, from the
	// Mapping System extended community.
	Contact netip.AddrPort `json:"contact"`
	// Neighbor is the BGP neighbour the best path came from (zero for
	// this router's own advertisements).
	Neighbor netip.Addr `json:"neighbor,omitzero"`
	// ASPath is the best path's AS_PATH, nearest AS first.
	ASPath []uint32 `json:"as_path,omitempty"`
	// Self is set for the prefixes this router advertises.
	Self bool `json:"self"`
}

// BGPStats are BGP discovery's counters.
type BGPStats struct {
	// Updates and Withdrawals count best-path changes received.
	Updates     uint64 `json:"updates"`
	Withdrawals uint64 `json:"withdrawals"`
	// Malformed counts Mapping System communities ignored because their
	// contact address is not usable.
	Malformed uint64 `json:"malformed"`
	// Untagged counts best paths without a usable Mapping System
	// community (not learned).
	Untagged uint64 `json:"untagged"`
	// Dropped counts prefixes not learned because the table was full.
	Dropped uint64 `json:"dropped"`
	// Learned is the number of prefixes learned now.
	Learned int `json:"learned"`
}

// BGP is the BGP discovery component: a speaker advertising this mapping
// system's EID prefixes with its Mapping System community, and a table of
// prefix → contact learned from the best paths of its neighbours.
type BGP struct {
	cfg slowpath.DiscoveryBGP
	log *slog.Logger
	sp  *bgp.Speaker
	max int

	mu      sync.Mutex
	learned map[netip.Prefix]BGPEntry
	stats   BGPStats
	watch   []func(e BGPEntry, gone bool)
}

// Watch has fn called with every prefix learned now and, from then on,
// with every prefix learned (gone false) or no longer learned, or learned
// with another contact (gone true for the old entry first). fn runs on
// BGP's goroutine, never with the table locked; it may block.
func (b *BGP) Watch(fn func(e BGPEntry, gone bool)) {
	b.mu.Lock()
	b.watch = append(b.watch, fn)
	now := make([]BGPEntry, 0, len(b.learned))
	for _, e := range b.learned {
		now = append(now, e)
	}
	b.mu.Unlock()
	for _, e := range now {
		fn(e, false)
	}
}

// newBGP builds the component's table without a speaker.
func newBGP(cfg slowpath.DiscoveryBGP, log *slog.Logger) *BGP {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Contact.IsValid() && cfg.Contact.Port() == 0 {
		cfg.Contact = netip.AddrPortFrom(cfg.Contact.Addr(), defaultControlPort)
	}
	m := cfg.MaxLearned
	if m == 0 {
		m = defaultMaxLearned
	}
	return &BGP{cfg: cfg, log: log, max: m, learned: map[netip.Prefix]BGPEntry{}}
}

// StartBGP validates cfg, starts the speaker, its neighbours and its
// advertisements.
func StartBGP(cfg slowpath.DiscoveryBGP, log *slog.Logger) (*BGP, error) {
	if err := cfg.Validate("discovery.bgp"); err != nil {
		return nil, err
	}
	var comm bgp.ExtCommunity
	if len(cfg.Advertise) > 0 {
		var err error
		if comm, err = EncodeMSComm(cfg.Contact); err != nil {
			return nil, fmt.Errorf("discovery.bgp.contact: %w", err)
		}
	}
	b := newBGP(cfg, log)
	port := 0
	if len(cfg.Listen) == 0 {
		port = -1
	}
	sp, err := bgp.Start(bgp.Config{ASN: cfg.ASN, RouterID: cfg.RouterID, Listen: cfg.Listen, Port: port, Logger: log},
		bgp.Handlers{Best: b.onBest})
	if err != nil {
		return nil, fmt.Errorf("discovery.bgp: %w", err)
	}
	b.sp = sp
	for i, n := range cfg.Neighbors {
		if err := sp.AddNeighbor(n.Neighbor()); err != nil {
			sp.Stop()
			return nil, fmt.Errorf("discovery.bgp.neighbors[%d]: %w", i, err)
		}
	}
	for _, p := range cfg.Advertise {
		if err := b.sp.Announce(bgp.Route{Prefix: p.Masked(), ExtCommunities: []bgp.ExtCommunity{comm}}); err != nil {
			sp.Stop()
			return nil, fmt.Errorf("discovery.bgp.advertise %v: %w", p, err)
		}
	}
	return b, nil
}

// Withdraw stops advertising prefix.
func (b *BGP) Withdraw(prefix netip.Prefix) error {
	b.mu.Lock()
	b.cfg.Advertise = slices.DeleteFunc(slices.Clone(b.cfg.Advertise), func(p netip.Prefix) bool { return p.Masked() == prefix.Masked() })
	b.mu.Unlock()
	return b.sp.Withdraw(prefix.Masked())
}

// Close stops the speaker.
func (b *BGP) Close() {
	if b.sp != nil {
		b.sp.Stop()
	}
}

// Peers returns the neighbours' session states.
func (b *BGP) Peers() ([]bgp.Peer, error) { return b.sp.Peers() }

// onBest follows one best-path change and tells the watchers what the
// learned table gained or lost.
func (b *BGP) onBest(r bgp.Route) {
	p := r.Prefix.Masked()
	b.mu.Lock()
	old, had := b.learned[p]
	b.learn(r, p)
	now, has := b.learned[p]
	watch := b.watch
	b.mu.Unlock()
	if had && (!has || now.Contact != old.Contact) {
		for _, fn := range watch {
			fn(old, true)
		}
	}
	if has && (!had || now.Contact != old.Contact) {
		for _, fn := range watch {
			fn(now, false)
		}
	}
}

// learn updates the learned table with one best-path change (b.mu held).
func (b *BGP) learn(r bgp.Route, p netip.Prefix) {
	if r.Withdrawn {
		b.stats.Withdrawals++
		delete(b.learned, p)
		return
	}
	if !r.Neighbor.IsValid() {
		delete(b.learned, p) // this speaker's own advertisement is the best path
		return
	}
	b.stats.Updates++
	var contact netip.AddrPort
	for _, e := range r.ExtCommunities {
		c, err := ParseMSComm(e)
		if errors.Is(err, errNotMSComm) {
			continue
		}
		if err != nil {
			b.stats.Malformed++
			b.log.Warn("malformed Mapping System community ignored", "prefix", p, "neighbor", r.Neighbor,
				"community", fmt.Sprintf("%x", e[:]), "reason", err)
			continue
		}
		if !contact.IsValid() {
			contact = c
		}
	}
	if !contact.IsValid() {
		b.stats.Untagged++
		delete(b.learned, p)
		return
	}
	if _, ok := b.learned[p]; !ok && len(b.learned) >= b.max {
		b.stats.Dropped++
		return
	}
	b.learned[p] = BGPEntry{Prefix: p, Contact: contact, Neighbor: r.Neighbor, ASPath: slices.Clone(r.ASPath)}
}

// Entries returns this router's advertisements and the prefixes learned,
// sorted by prefix (own first for a prefix both advertised and learned).
func (b *BGP) Entries() []BGPEntry {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]BGPEntry, 0, len(b.cfg.Advertise)+len(b.learned))
	for _, p := range b.cfg.Advertise {
		out = append(out, BGPEntry{Prefix: p.Masked(), Contact: b.cfg.Contact, Self: true})
	}
	for _, e := range b.learned {
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(x, y BGPEntry) int {
		if x.Prefix != y.Prefix {
			if prefixBefore(x.Prefix, y.Prefix) {
				return -1
			}
			return 1
		}
		if x.Self != y.Self {
			if x.Self {
				return -1
			}
			return 1
		}
		return 0
	})
	return out
}

// Lookup returns the contact of the mapping system servicing addr: the
// longest learned prefix holding it.
func (b *BGP) Lookup(addr netip.Addr) (netip.AddrPort, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	best, found := BGPEntry{}, false
	for p, e := range b.learned {
		if p.Contains(addr) && (!found || p.Bits() > best.Prefix.Bits()) {
			best, found = e, true
		}
	}
	return best.Contact, found
}

// Stats returns the counters.
func (b *BGP) Stats() BGPStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stats
	s.Learned = len(b.learned)
	return s
}

// prefixBefore orders prefixes by address, then length.
func prefixBefore(a, b netip.Prefix) bool {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c < 0
	}
	return a.Bits() < b.Bits()
}

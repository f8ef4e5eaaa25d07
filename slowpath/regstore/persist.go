package regstore

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/rloc-router/rloc/wire"
)

// Saved is one registration as a Journal keeps it: enough to register it
// again after a restart, through the store's Kind like a Map-Register.
type Saved struct {
	// Site is the name of the site it was registered for.
	Site string `json:"site"`
	// ID, Source, HasXTRID, SiteID, ProxyReply, Merge, Expires and
	// Nonces are the registrant's (Registrant).
	ID         ID             `json:"id"`
	Source     netip.AddrPort `json:"src"`
	HasXTRID   bool           `json:"has_xtr_id,omitempty"`
	SiteID     uint64         `json:"site_id,omitempty"`
	ProxyReply bool           `json:"proxy_reply,omitempty"`
	Merge      bool           `json:"merge,omitempty"`
	Expires    time.Time      `json:"expires"`
	Nonces     []wire.Nonce   `json:"nonces,omitempty"`
	// Record is the registered record in its wire encoding (RFC 9301
	// §5.4).
	Record []byte `json:"record"`
}

// Journal keeps a store's registrations across restarts. The store tells
// it every change on the event loop (a new, refreshed or changed
// registration: Save; a withdrawn or expired one: Delete); it must not
// block, and may write behind. key identifies a registration (its key and
// registrant) and stays the same for its life; s is only valid during the
// call.
type Journal interface {
	Save(key []byte, s *Saved)
	Delete(key []byte)
}

// SetJournal makes the store report its changes to j (nil: none). Static
// registrations are configuration and are not reported.
func (s *Store[K, V]) SetJournal(j Journal) { s.journal = j }

// journalKey is the key of r's registration of rec in the journal: the
// registrant's ID, then the record's mask length and EID.
func journalKey(id ID, rec *wire.Record) ([]byte, error) {
	a := id.Source.Addr().As16()
	b := append(append(make([]byte, 0, 64), id.XTRID[:]...), a[:]...)
	b = binary.BigEndian.AppendUint16(b, id.Source.Port())
	b = append(b, rec.MaskLen)
	return rec.EID.Append(b)
}

// save reports r's registration, whose record is rec when it changed (nil:
// the one saved last), to the journal.
func (s *Store[K, V]) save(r *Registrant[K, V], rec *wire.Record) {
	if s.journal == nil || r.Static {
		return
	}
	if rec != nil {
		var err error
		if r.saved, err = rec.Append(r.saved[:0]); err != nil {
			return
		}
		if r.jkey == nil {
			if r.jkey, err = journalKey(r.ID, rec); err != nil {
				return
			}
		}
	}
	if r.jkey == nil {
		return
	}
	s.sv = Saved{Site: r.entry.Site.Name, ID: r.ID, Source: r.Source, HasXTRID: r.HasXTRID, SiteID: r.SiteID,
		ProxyReply: r.ProxyReply, Merge: r.Merge, Expires: r.Expires, Nonces: r.Nonces, Record: r.saved}
	s.journal.Save(r.jkey, &s.sv)
}

// Restore registers again what a journal saved, as of the store's clock:
// a registration that expired meanwhile, whose record no longer parses,
// or that its site may no longer register (by name) is dropped (and
// deleted from the journal); the others live until their saved deadline,
// within the store's bounds. It reports how many were restored and
// dropped. Call it before the first Map-Register.
func (s *Store[K, V]) Restore(saved []Saved) (restored, dropped int) {
	now := s.clk.Now()
	for i := range saved {
		sv := &saved[i]
		if s.restore(sv, now) {
			restored++
			continue
		}
		dropped++
		if s.journal == nil {
			continue
		}
		var rec wire.Record
		if _, err := rec.Parse(sv.Record); err == nil {
			if k, err := journalKey(sv.ID, &rec); err == nil {
				s.journal.Delete(k)
			}
		}
	}
	return restored, dropped
}

// restore registers sv again, reporting false when it may not.
func (s *Store[K, V]) restore(sv *Saved, now time.Time) bool {
	if !sv.Expires.After(now) {
		return false
	}
	var rec wire.Record
	if n, err := rec.Parse(sv.Record); err != nil || n != len(sv.Record) {
		return false
	}
	k, ok := s.kind.Key(&rec)
	if !ok {
		return false
	}
	site := s.siteOf(s.sites, k)
	if site == nil || site.Name != sv.Site || len(rec.Locators) > s.cfg.MaxRLOCs {
		return false
	}
	e := s.entries[k]
	if s.byID[regKey[K]{k, sv.ID}] != nil || len(s.byID) >= s.cfg.MaxRegistrations ||
		e != nil && len(e.regs) >= s.cfg.MaxRegistrants || e == nil && s.siteKeys[site.Name] >= s.cfg.MaxSiteKeys {
		return false
	}
	if err := s.kind.Value(e, nil, &rec, &s.spare); err != nil {
		return false
	}
	if e == nil {
		e = s.newEntry(k, site)
	}
	r := &Registrant[K, V]{ID: sv.ID, entry: e, index: len(e.regs), Source: sv.Source, HasXTRID: sv.HasXTRID,
		SiteID: sv.SiteID, ProxyReply: sv.ProxyReply, Merge: sv.Merge, Expires: sv.Expires}
	e.regs = append(e.regs, r)
	s.byID[regKey[K]{k, sv.ID}] = r
	r.timer = s.clk.Schedule(sv.Expires, func(now time.Time) { s.expire(r, now) })
	for _, n := range sv.Nonces {
		s.remember(r, n)
	}
	r.Value, s.spare = s.spare, r.Value
	r.saved = append(r.saved[:0], sv.Record...)
	r.jkey, _ = journalKey(sv.ID, &rec)
	s.kind.Changed(e)
	return true
}

// String names a registrant in errors and logs.
func (id ID) String() string {
	if id.XTRID != (wire.XTRID{}) {
		return fmt.Sprintf("xtr-id %x", id.XTRID[:])
	}
	return id.Source.String()
}

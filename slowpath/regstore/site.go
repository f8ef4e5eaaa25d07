package regstore

import (
	"fmt"
	"net/netip"

	"github.com/gaissmai/bart"
)

// SitePrefix is a prefix a site may register in an instance-ID: an EID
// prefix, the overlay group range of a group name
// (draft-ietf-lisp-group-mapping) or the group of an (S,G) (RFC 8378).
type SitePrefix struct {
	// IID is the instance-ID (RFC 8060 §4.1).
	IID uint32
	// Prefix is the prefix.
	Prefix netip.Prefix
	// MoreSpecifics lets the site register prefixes inside Prefix, not
	// only Prefix itself.
	MoreSpecifics bool
}

// Site is a registering site: its keys, what it may register and its
// policy.
type Site struct {
	// Name identifies the site in events and listings.
	Name string
	// Keys are the site's keys; a message is verified with the key of its
	// Key ID and algorithm.
	Keys []Key
	// Prefixes are what the site may register (see Sites.For).
	Prefixes []SitePrefix
	// RequireXTRID refuses Map-Registers without xTR-ID and site-ID (I
	// bit, RFC 9301 §5.6).
	RequireXTRID bool
	// ProxyReply asks the Map-Server to answer for the site's registrations
	// even when they do not set the P bit (RFC 9301 §5.6); the store keeps
	// it for the role.
	ProxyReply bool
}

type sitePrefix struct {
	site *Site
	p    SitePrefix
}

// Sites authorises records: which site, if any, may register a prefix.
type Sites struct {
	open   *Site
	tables map[uint32]*bart.Table[*sitePrefix]
}

// NewSites indexes sites by their prefixes. A prefix given twice in one
// instance-ID is an error naming both sites.
func NewSites(sites []*Site) (*Sites, error) {
	ss := &Sites{tables: map[uint32]*bart.Table[*sitePrefix]{}}
	for i, s := range sites {
		for j, p := range s.Prefixes {
			if !p.Prefix.IsValid() {
				return nil, fmt.Errorf("regstore: sites[%d].prefixes[%d]: invalid prefix", i, j)
			}
			p.Prefix = p.Prefix.Masked()
			t := ss.tables[p.IID]
			if t == nil {
				t = new(bart.Table[*sitePrefix])
				ss.tables[p.IID] = t
			}
			if other, ok := t.Get(p.Prefix); ok {
				return nil, fmt.Errorf("regstore: sites[%d].prefixes[%d]: %v in IID %d already belongs to site %q", i, j, p.Prefix, p.IID, other.site.Name)
			}
			t.Insert(p.Prefix, &sitePrefix{site: s, p: p})
		}
	}
	return ss, nil
}

// OpenSite returns Sites in which s may register anything: for stores
// whose records are authorised by the role itself (an RTR accepting tree
// joins for the groups it replicates, with the multicast key).
func OpenSite(s *Site) *Sites { return &Sites{open: s} }

// For returns the site that may register p in iid: the one with the most
// specific configured prefix covering p, provided that prefix is p itself
// or accepts more-specifics. It returns nil when no site may.
func (ss *Sites) For(iid uint32, p netip.Prefix) *Site {
	if ss == nil {
		return nil
	}
	if ss.open != nil {
		return ss.open
	}
	t := ss.tables[iid]
	if t == nil || !p.IsValid() {
		return nil
	}
	_, sp, ok := t.LookupPrefixLPM(p)
	if !ok || sp.p.Prefix != p && !sp.p.MoreSpecifics {
		return nil
	}
	return sp.site
}

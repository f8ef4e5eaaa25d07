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
	// Names are the distinguished names the site may register (see
	// Sites.ForName).
	Names []SiteName
	// RequireXTRID refuses Map-Registers without xTR-ID and site-ID (I
	// bit, RFC 9301 §5.6).
	RequireXTRID bool
	// ProxyReply asks the Map-Server to answer for the site's registrations
	// even when they do not set the P bit (RFC 9301 §5.6); the store keeps
	// it for the role.
	ProxyReply bool
}

// SiteName is a distinguished name (AFI 17) a site may register in an
// instance-ID: exactly Name, or with Suffix every name that ends in Name
// after at least one more character (Name starts with the dot:
// ".example").
type SiteName struct {
	// IID is the instance-ID (RFC 8060 §4.1).
	IID uint32
	// Name is the name, or the suffix with its leading dot.
	Name string
	// Suffix makes Name a suffix.
	Suffix bool
}

// nameKey indexes site names by instance-ID.
type nameKey struct {
	iid  uint32
	name string
}

type sitePrefix struct {
	site *Site
	p    SitePrefix
}

// Sites authorises records: which site, if any, may register a prefix.
type Sites struct {
	open   *Site
	tables map[uint32]*bart.Table[*sitePrefix]
	// exact and suffix index the sites' names; suffixes are kept with
	// their leading dot.
	exact, suffix map[nameKey]*Site
}

// NewSites indexes sites by their prefixes. A prefix given twice in one
// instance-ID is an error naming both sites.
func NewSites(sites []*Site) (*Sites, error) {
	ss := &Sites{tables: map[uint32]*bart.Table[*sitePrefix]{}, exact: map[nameKey]*Site{}, suffix: map[nameKey]*Site{}}
	for i, s := range sites {
		for j, n := range s.Names {
			m := ss.exact
			if n.Suffix {
				m = ss.suffix
				if len(n.Name) < 2 || n.Name[0] != '.' {
					return nil, fmt.Errorf("regstore: sites[%d].names[%d]: suffix %q does not start with a dot", i, j, n.Name)
				}
			}
			if n.Name == "" {
				return nil, fmt.Errorf("regstore: sites[%d].names[%d]: empty name", i, j)
			}
			k := nameKey{n.IID, n.Name}
			if other := m[k]; other != nil {
				return nil, fmt.Errorf("regstore: sites[%d].names[%d]: %q in IID %d already belongs to site %q", i, j, n.Name, n.IID, other.Name)
			}
			m[k] = s
		}
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

// ForName returns the site that may register the distinguished name name
// in iid: the site listing it exactly, else the one with the longest
// suffix that ends it (a suffix never covers the name equal to it without
// its dot). It returns nil when no site may.
func (ss *Sites) ForName(iid uint32, name string) *Site {
	if ss == nil {
		return nil
	}
	if ss.open != nil {
		return ss.open
	}
	if s := ss.exact[nameKey{iid, name}]; s != nil {
		return s
	}
	if len(ss.suffix) == 0 {
		return nil
	}
	// Suffixes from the longest: each dot after the first character
	// starts one.
	for i := 1; i < len(name); i++ {
		if name[i] == '.' {
			if s := ss.suffix[nameKey{iid, name[i:]}]; s != nil {
				return s
			}
		}
	}
	return nil
}

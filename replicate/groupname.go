package replicate

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/rloc-router/rloc/wire"
)

// Overlay group to underlay group through the mapping system
// (draft-ietf-lisp-group-mapping, the mapping-system method): the provider
// of the underlay registers, in an instance-ID set aside for it, the
// distinguished-name EID "group-<G-EID>" (AFI 17,
// draft-ietf-lisp-name-encoding) with the underlay group(s) as RLOCs: a
// G-RLOC, an (S-RLOC,G-RLOC) multicast-info LCAF for source-specific
// underlays (RFC 8060 §4.5), unicast U-RLOCs, or an RLE of those. An ETR
// asks for "group-<G-EID>" of the overlay group it has receivers for.
//
// A registration may cover a power-of-two range of overlay groups: its
// name is "group-<prefix>/<length>", e.g. "group-224.1.0.0/16", and a
// Map-Server (GroupMap.LookupName) answers a request for any group in the
// range with it. Several ranges may name the same G-RLOC (many:1), one
// range may name several (1:many, the ETR picks with PickGroup), and both
// combine (m:n).

// GroupNamePrefix starts every group distinguished name.
const GroupNamePrefix = "group-"

// Errors of the mapping-system method.
var (
	// ErrNotGroupName: a name is not "group-<G-EID>" or
	// "group-<G-EID prefix>".
	ErrNotGroupName = errors.New("replicate: not a group name")
	// ErrNoGroupMapping: a reply or registration names no usable underlay
	// group or RLOC.
	ErrNoGroupMapping = errors.New("replicate: no underlay group in the mapping")
)

// GroupName returns the distinguished name for an overlay group or group
// range: "group-<address>" for a host prefix (/32, /128), and
// "group-<address>/<length>" otherwise. The prefix is masked first;
// addresses are in their canonical text form (RFC 5952 for IPv6).
func GroupName(g netip.Prefix) string {
	g = g.Masked()
	if g.IsSingleIP() {
		return GroupNamePrefix + g.Addr().String()
	}
	return GroupNamePrefix + g.String()
}

// GroupNameEID returns the EID an ETR looks up for overlay group g in the
// configured instance-ID iid: the distinguished name GroupName(g) (AFI 17)
// inside an instance-ID LCAF (RFC 8060 §4.1).
func GroupNameEID(iid uint32, g netip.Addr) wire.Address {
	return groupNameAddress(iid, netip.PrefixFrom(g.Unmap(), g.Unmap().BitLen()))
}

// GroupRangeEID returns the EID of the mapping for the overlay group range
// g in iid: the distinguished name GroupName(g) inside an instance-ID LCAF.
func GroupRangeEID(iid uint32, g netip.Prefix) wire.Address { return groupNameAddress(iid, g.Masked()) }

// ParseGroupNameEID reads a group-name EID (GroupNameEID, GroupRangeEID): a
// distinguished name "group-<G-EID>" or "group-<G-EID prefix>", possibly
// inside an instance-ID LCAF, and returns the instance-ID and the overlay
// group range it names.
func ParseGroupNameEID(eid *wire.Address) (iid uint32, p netip.Prefix, err error) {
	iid, in, ok := eid.Unwrap()
	if !ok || in.AFI != wire.AFIDistName {
		return 0, netip.Prefix{}, fmt.Errorf("%w: %s is not a distinguished name", ErrNotGroupName, eid)
	}
	p, err = ParseGroupName(in.Name)
	return iid, p, err
}

func groupNameAddress(iid uint32, p netip.Prefix) wire.Address {
	return wire.InInstance(iid, wire.NameAddress(GroupName(p)))
}

// ParseGroupName parses "group-<G-EID>" or "group-<G-EID prefix>" into the
// overlay group range it names (a host prefix for a single group). The
// address must be a multicast group and a prefix must be in its masked
// (canonical) form.
func ParseGroupName(name string) (netip.Prefix, error) {
	rest, ok := strings.CutPrefix(name, GroupNamePrefix)
	if !ok {
		return netip.Prefix{}, fmt.Errorf("%w: %q does not start with %q", ErrNotGroupName, name, GroupNamePrefix)
	}
	var p netip.Prefix
	if strings.Contains(rest, "/") {
		var err error
		if p, err = netip.ParsePrefix(rest); err != nil {
			return netip.Prefix{}, fmt.Errorf("%w: %q: %v", ErrNotGroupName, name, err)
		}
		if p != p.Masked() {
			return netip.Prefix{}, fmt.Errorf("%w: %q: prefix has host bits set", ErrNotGroupName, name)
		}
	} else {
		a, err := netip.ParseAddr(rest)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%w: %q: %v", ErrNotGroupName, name, err)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%w: %q: zone", ErrNotGroupName, name)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() || !p.Addr().IsMulticast() {
		return netip.Prefix{}, fmt.Errorf("%w: %q: %s is not a multicast group", ErrNotGroupName, name, p.Addr())
	}
	return p, nil
}

// UnderlayGroup is one underlay multicast group an overlay group maps to.
type UnderlayGroup struct {
	// Source is the S-RLOC of a source-specific underlay group; invalid for
	// any-source.
	Source netip.Addr
	// Group is the G-RLOC.
	Group netip.Addr
}

// String formats the group as "G" or "(S,G)".
func (u UnderlayGroup) String() string {
	if u.Source.IsValid() {
		return "(" + u.Source.String() + "," + u.Group.String() + ")"
	}
	return u.Group.String()
}

// GroupMapping is what an overlay group range maps to: underlay groups
// (G-RLOCs, several for 1:many) and unicast RLOCs (U-RLOCs, for ETRs off
// the multicast underlay).
type GroupMapping struct {
	// IID is the instance-ID the mapping was registered in.
	IID uint32 `mapstructure:"iid"`
	// GEID is the overlay group range it covers.
	GEID netip.Prefix `mapstructure:"eid"`
	// Groups are the underlay groups ("G" or "S,G" in a configuration
	// file).
	Groups []UnderlayGroup `mapstructure:"groups"`
	// Unicast are the U-RLOCs.
	Unicast []netip.Addr `mapstructure:"unicast"`
}

// String formats the mapping for logs and rlocctl.
func (m *GroupMapping) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%d]%s ->", m.IID, GroupName(m.GEID))
	for _, g := range m.Groups {
		b.WriteString(" " + g.String())
	}
	for _, u := range m.Unicast {
		b.WriteString(" u:" + u.String())
	}
	return b.String()
}

// Pick returns the underlay group an ETR joins for (S-EID,G-EID) or
// (*,G-EID) (src invalid): with several groups (1:many) the one PickGroup
// chooses. ok is false when the mapping has no group.
func (m *GroupMapping) Pick(src, group netip.Addr) (UnderlayGroup, bool) {
	i := PickGroup(src, group, len(m.Groups))
	if i < 0 {
		return UnderlayGroup{}, false
	}
	return m.Groups[i], true
}

// Record returns the mapping record a provider registers for m: the EID is
// the group name in m.IID, the locators the underlay groups (multicast-info
// LCAFs for source-specific ones) and U-RLOCs, each with multicast priority
// and weight mpri and mw (RFC 9301 §5.4).
func (m *GroupMapping) Record(ttl uint32, mpri, mw uint8) (wire.Record, error) {
	if err := m.check(); err != nil {
		return wire.Record{}, err
	}
	r := wire.Record{TTL: ttl, Authoritative: true, EID: groupNameAddress(m.IID, m.GEID)}
	for _, g := range m.Groups {
		a := wire.IPAddress(g.Group)
		if g.Source.IsValid() {
			a = wire.SGAddress(0, netip.PrefixFrom(g.Source, g.Source.BitLen()), netip.PrefixFrom(g.Group, g.Group.BitLen()))
		}
		r.Locators = append(r.Locators, wire.Locator{Priority: 255, MPriority: mpri, MWeight: mw, Reachable: true, Address: a})
	}
	for _, u := range m.Unicast {
		r.Locators = append(r.Locators, wire.Locator{Priority: 255, MPriority: mpri, MWeight: mw, Reachable: true, Address: wire.IPAddress(u)})
	}
	return r, nil
}

// check validates the mapping's addresses.
func (m *GroupMapping) check() error {
	if !m.GEID.IsValid() || !m.GEID.Addr().IsMulticast() || m.GEID.Addr().Is4In6() {
		return fmt.Errorf("%w: G-EID range %s", ErrNotGroup, m.GEID)
	}
	if len(m.Groups) == 0 && len(m.Unicast) == 0 {
		return fmt.Errorf("%w: %s", ErrNoGroupMapping, GroupName(m.GEID))
	}
	for _, g := range m.Groups {
		if err := checkAddr(g.Group); err != nil || !g.Group.IsMulticast() {
			return fmt.Errorf("%w: G-RLOC %s", ErrNotGroup, g.Group)
		}
		if g.Source.IsValid() && (checkAddr(g.Source) != nil || g.Source.IsMulticast() || g.Source.Is4() != g.Group.Is4()) {
			return fmt.Errorf("%w: S-RLOC %s of (S,G) %s", ErrRLEAddress, g.Source, g)
		}
	}
	for _, u := range m.Unicast {
		if err := checkAddr(u); err != nil || u.IsMulticast() {
			return fmt.Errorf("%w: U-RLOC %s", ErrRLEAddress, u)
		}
	}
	return nil
}

// ParseGroupRecord reads a mapping record that answers a group-name lookup
// (from a Map-Reply or a Map-Notify): the EID must be a group name, possibly
// inside an instance-ID LCAF; each locator is a G-RLOC (a multicast IP), an
// (S-RLOC,G-RLOC) multicast-info LCAF, a U-RLOC (a unicast IP), an
// instance-ID LCAF around one of those, or an RLE whose entries are. Locators
// with multicast priority 255 are not for multicast (RFC 9301 §5.4) and are
// skipped; locators of any other kind are refused.
func ParseGroupRecord(r *wire.Record) (GroupMapping, error) {
	var m GroupMapping
	iid, eid, ok := r.EID.Unwrap()
	if !ok || eid.AFI != wire.AFIDistName {
		return m, fmt.Errorf("%w: record EID %s is not a distinguished name", ErrNotGroupName, r.EID)
	}
	p, err := ParseGroupName(eid.Name)
	if err != nil {
		return m, err
	}
	m.IID, m.GEID = iid, p
	for i := range r.Locators {
		l := &r.Locators[i]
		if l.MPriority == 255 {
			continue
		}
		if err := m.addLocator(&l.Address, 0); err != nil {
			return GroupMapping{}, fmt.Errorf("%s locator %d: %w", GroupName(p), i, err)
		}
	}
	m.Groups = slices.Compact(m.Groups)
	if err := m.check(); err != nil {
		return GroupMapping{}, err
	}
	return m, nil
}

func (m *GroupMapping) addLocator(a *wire.Address, depth int) error {
	switch a.AFI {
	case wire.AFIIPv4, wire.AFIIPv6:
		ip := a.IP.Unmap()
		if ip.IsMulticast() {
			m.Groups = append(m.Groups, UnderlayGroup{Group: ip})
		} else {
			m.Unicast = append(m.Unicast, ip)
		}
		return nil
	case wire.AFILCAF:
		if depth > 1 {
			return fmt.Errorf("%w: nested too deep", ErrRLEAddress)
		}
		switch a.LCAF.Type {
		case wire.LCAFInstanceID:
			_, in, ok := a.Unwrap()
			if !ok {
				return fmt.Errorf("%w: empty instance-ID LCAF", ErrRLEAddress)
			}
			return m.addLocator(in, depth+1)
		case wire.LCAFMcastInfo:
			_, s, g, ok := a.SG()
			if !ok || !g.IsSingleIP() || (s.Bits() != 0 && !s.IsSingleIP()) {
				return fmt.Errorf("%w: multicast-info LCAF %s is not an (S-RLOC,G-RLOC)", ErrRLEAddress, a)
			}
			u := UnderlayGroup{Group: g.Addr()}
			if s.Bits() != 0 {
				u.Source = s.Addr()
			}
			m.Groups = append(m.Groups, u)
			return nil
		case wire.LCAFRLE:
			for j := range a.LCAF.RLE {
				if err := m.addLocator(&a.LCAF.RLE[j].Address, depth+1); err != nil {
					return fmt.Errorf("RLE entry %d: %w", j, err)
				}
			}
			return nil
		}
	}
	return fmt.Errorf("%w: %s is not a G-RLOC, (S,G) or U-RLOC", ErrRLEAddress, a)
}

// GroupMap holds group mappings by instance-ID and G-EID range and finds the
// most specific range covering a group: what a Map-Server answers
// group-name lookups from, and what an ETR caches replies in. It is not safe
// for concurrent use.
type GroupMap struct {
	m    map[groupKey]*GroupMapping
	lens map[uint32]*[2][129]int // per IID, per family: mappings of each length
}

type groupKey struct {
	iid uint32
	p   netip.Prefix
}

// NewGroupMap returns an empty GroupMap.
func NewGroupMap() *GroupMap {
	return &GroupMap{m: make(map[groupKey]*GroupMapping), lens: make(map[uint32]*[2][129]int)}
}

func fam(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// Add installs or replaces the mapping of m.GEID in m.IID (a copy of m).
func (t *GroupMap) Add(m GroupMapping) error {
	m.GEID = m.GEID.Masked()
	if err := m.check(); err != nil {
		return err
	}
	m.Groups = slices.Clone(m.Groups)
	m.Unicast = slices.Clone(m.Unicast)
	k := groupKey{m.IID, m.GEID}
	if _, ok := t.m[k]; !ok {
		l := t.lens[m.IID]
		if l == nil {
			l = new([2][129]int)
			t.lens[m.IID] = l
		}
		l[fam(m.GEID.Addr())][m.GEID.Bits()]++
	}
	t.m[k] = &m
	return nil
}

// Remove deletes the mapping of exactly the range p in iid and reports
// whether there was one.
func (t *GroupMap) Remove(iid uint32, p netip.Prefix) bool {
	k := groupKey{iid, p.Masked()}
	if _, ok := t.m[k]; !ok {
		return false
	}
	delete(t.m, k)
	t.lens[iid][fam(k.p.Addr())][k.p.Bits()]--
	return true
}

// Lookup returns the mapping of the most specific range covering group g in
// iid (read-only).
func (t *GroupMap) Lookup(iid uint32, g netip.Addr) (*GroupMapping, bool) {
	g = g.Unmap()
	l, ok := t.lens[iid]
	if !ok || !g.IsValid() {
		return nil, false
	}
	f := fam(g)
	for b := g.BitLen(); b >= 0; b-- {
		if l[f][b] == 0 {
			continue
		}
		p, _ := g.Prefix(b)
		if m, ok := t.m[groupKey{iid, p}]; ok {
			return m, true
		}
	}
	return nil, false
}

// LookupName answers a lookup of a group-name EID (GroupNameEID): the most
// specific range covering the named group, or for a range name the most
// specific range covering all of it.
func (t *GroupMap) LookupName(eid *wire.Address) (*GroupMapping, error) {
	iid, p, err := ParseGroupNameEID(eid)
	if err != nil {
		return nil, err
	}
	for b := p.Bits(); b >= 0; b-- {
		q, _ := p.Addr().Prefix(b)
		if m, ok := t.m[groupKey{iid, q}]; ok {
			return m, nil
		}
	}
	return nil, fmt.Errorf("%w: nothing registered for %s in instance-ID %d", ErrNoGroupMapping, GroupName(p), iid)
}

// Len returns the number of mappings.
func (t *GroupMap) Len() int { return len(t.m) }

package replicate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/wire"
)

// Errors NewPlan returns for RLEs it refuses; the returned error wraps one of
// them with the entry that failed, ready to be logged.
var (
	// ErrRLETooLarge: the RLE has more entries than PlanConfig.MaxEntries.
	ErrRLETooLarge = errors.New("replicate: RLE has too many entries")
	// ErrRLEDuplicate: an RLOC appears twice in the RLE.
	ErrRLEDuplicate = errors.New("replicate: RLE lists an RLOC twice")
	// ErrRLELoop: one of our own RLOCs appears at a level other than our
	// own, i.e. we would replicate to ourselves (be our own child or
	// ancestor).
	ErrRLELoop = errors.New("replicate: RLE would make us replicate to ourselves")
	// ErrRLEAddress: an entry's address is not one we can replicate to: not
	// an IP address, not unicast, or a multicast group (G-RLOC) at a level
	// where only routers (unicast RLOCs) may be.
	ErrRLEAddress = errors.New("replicate: RLE entry address not usable")
	// ErrNotInRLE: an RTR whose level comes from the RLE is not listed in
	// it.
	ErrNotInRLE = errors.New("replicate: our RLOC is not in the RLE")
	// ErrNoTemplate: the plan needs outer-header templates and
	// PlanConfig.Template is nil.
	ErrNoTemplate = errors.New("replicate: no template builder")
)

// DefaultMaxEntries is the RLE size bound used when PlanConfig.MaxEntries is
// zero.
const DefaultMaxEntries = 1024

// LevelFromRLE as PlanConfig.Level makes an RTR take its level from its own
// entry in the RLE.
const LevelFromRLE = -1

// Role says which replication rule applies (RFC 8060 §4.9,
// draft-coras-lisp-re).
type Role uint8

// Roles.
const (
	// RoleITR replicates to every entry of the lowest level present in the
	// RLE (head-end replication when all entries are ETRs).
	RoleITR Role = iota
	// RoleRTR at level n replicates to every entry of the next level up:
	// the lowest level above n present in the RLE.
	RoleRTR
)

// String names the role.
func (r Role) String() string {
	switch r {
	case RoleITR:
		return "itr"
	case RoleRTR:
		return "rtr"
	}
	return fmt.Sprintf("role-%d", uint8(r))
}

// Entry is one RLE entry in the form this package works on: an RLOC and its
// replication level (RFC 8060 §4.9).
type Entry struct {
	// Addr is the RTR's or ETR's RLOC, or an underlay multicast group
	// (G-RLOC) that ETRs joined.
	Addr netip.Addr
	// Level is the replication level (RFC 8060 §4.9).
	Level uint8
}

// EntriesFromRLE converts RLE nodes (RFC 8060 §4.9) to Entries. Nodes whose
// address is not a plain IPv4 or IPv6 address (AFI 1 or 2) are refused with
// ErrRLEAddress: an RLE lists underlay RLOCs.
func EntriesFromRLE(nodes []wire.RLENode) ([]Entry, error) {
	es := make([]Entry, len(nodes))
	for i := range nodes {
		n := &nodes[i]
		if n.Address.AFI != wire.AFIIPv4 && n.Address.AFI != wire.AFIIPv6 {
			return nil, fmt.Errorf("%w: entry %d (level %d) is %s, not an IPv4 or IPv6 RLOC", ErrRLEAddress, i, n.Level, n.Address)
		}
		es[i] = Entry{Addr: n.Address.IP.Unmap(), Level: n.Level}
	}
	return es, nil
}

// EntriesFromHops converts a map-cache RLE (cache.RLEHop) to Entries.
func EntriesFromHops(hops []cache.RLEHop) []Entry {
	es := make([]Entry, len(hops))
	for i := range hops {
		es[i] = Entry{Addr: hops[i].Addr.Unmap(), Level: hops[i].Level}
	}
	return es
}

// TemplateFunc builds the outer-header template (IPv4 or IPv6 + UDP + LISP,
// as wire.AppendOuter builds it) for copies to dst. It returns nil when the
// router cannot send to dst (no local RLOC of dst's family).
type TemplateFunc func(dst netip.Addr) []byte

// PlanConfig is what NewPlan needs besides the RLE.
type PlanConfig struct {
	// Role is the replication rule to apply.
	Role Role
	// Level is an RTR's own level; LevelFromRLE takes it from the RTR's own
	// entry in the RLE. Ignored for RoleITR.
	Level int
	// Self are this router's RLOCs: they never get a copy, and for an RTR
	// they must not appear at any level but its own.
	Self []netip.Addr
	// MaxEntries bounds the RLE size (default DefaultMaxEntries).
	MaxEntries int
	// Template builds the outer headers of the copies. NewPlanFromHops
	// uses a hop's own template when it has one.
	Template TemplateFunc
}

// Copy is one copy a Plan makes of each packet.
type Copy struct {
	// Dst is the copy's destination RLOC, the outer destination address.
	Dst netip.Addr
	// Level is the destination's replication level.
	Level uint8
	// Group marks an underlay multicast group (G-RLOC) destination.
	Group bool
	// Template is the prebuilt outer header (read-only).
	Template []byte

	// How Replicate makes the copy (see derive).
	mode copyMode
}

// copyMode says how Plan.Replicate makes one copy.
type copyMode uint8

const (
	// modePatch: copy the template and the inner packet, then
	// wire.PatchOuterIPv4/IPv6. The first copy of each family is made so.
	modePatch copyMode = iota
	// modeDerive4: the template differs from the family's first one only
	// in the destination (and so the IPv4 header checksum): copy the
	// first finished copy whole, write the destination and update the
	// template's checksum (RFC 1624 eqn. 3).
	modeDerive4
	// modeDerive6: as modeDerive4 for an IPv6 template with a zero UDP
	// checksum (the only field that depends on the destination then is
	// the destination).
	modeDerive6
)

// Plan is the precomputed replication of one multicast mapping for one
// router: the copies to make of every packet. It is immutable.
type Plan struct {
	copies     []Copy
	role       Role
	level      int // own level (RTR) or -1 (ITR)
	target     int // level replicated to, -1 when there is none
	entries    int // entries in the RLE
	unsendable []netip.Addr
	ref4, ref6 int // index of the copy others of the family derive from, or -1
}

// Copies returns the copies the plan makes, in RLE order (read-only).
func (p *Plan) Copies() []Copy { return p.copies }

// Len returns the number of copies per packet.
func (p *Plan) Len() int { return len(p.copies) }

// Role returns the role the plan was built for.
func (p *Plan) Role() Role { return p.role }

// Level returns the router's own level (RoleRTR), or -1 for an ITR.
func (p *Plan) Level() int { return p.level }

// TargetLevel returns the level the plan replicates to, -1 when it makes no
// copies.
func (p *Plan) TargetLevel() int { return p.target }

// Unsendable returns the destinations left out of the plan because the
// template builder had no template for them (no local RLOC of their family).
func (p *Plan) Unsendable() []netip.Addr { return p.unsendable }

// String summarises the plan for logs.
func (p *Plan) String() string {
	s := p.role.String()
	if p.role == RoleRTR {
		s += fmt.Sprintf(" level %d", p.level)
	}
	s += fmt.Sprintf(": %d of %d RLE entries", len(p.copies), p.entries)
	if p.target >= 0 {
		s += fmt.Sprintf(" at level %d", p.target)
	}
	if len(p.unsendable) > 0 {
		s += fmt.Sprintf(", %d unsendable", len(p.unsendable))
	}
	return s
}

// NewPlan validates the RLE nodes of a mapping (RFC 8060 §4.9) and computes
// the replication plan of a router with configuration cfg. See ValidateRLE
// for what is refused.
func NewPlan(nodes []wire.RLENode, cfg PlanConfig) (*Plan, error) {
	if max := cfg.maxEntries(); len(nodes) > max {
		return nil, fmt.Errorf("%w: %d entries, the maximum is %d", ErrRLETooLarge, len(nodes), max)
	}
	es, err := EntriesFromRLE(nodes)
	if err != nil {
		return nil, err
	}
	return newPlan(es, nil, cfg)
}

// NewPlanFromHops is NewPlan for the RLE of a map-cache entry; hops that
// carry a template (built by the cache's Config.BuildTemplate) keep it.
func NewPlanFromHops(hops []cache.RLEHop, cfg PlanConfig) (*Plan, error) {
	if max := cfg.maxEntries(); len(hops) > max {
		return nil, fmt.Errorf("%w: %d entries, the maximum is %d", ErrRLETooLarge, len(hops), max)
	}
	tpls := make([][]byte, len(hops))
	for i := range hops {
		tpls[i] = hops[i].Template
	}
	return newPlan(EntriesFromHops(hops), tpls, cfg)
}

// NewPlanFromEntries is NewPlan for Entries.
func NewPlanFromEntries(es []Entry, cfg PlanConfig) (*Plan, error) {
	return newPlan(es, nil, cfg)
}

func (c *PlanConfig) maxEntries() int {
	if c.MaxEntries <= 0 {
		return DefaultMaxEntries
	}
	return c.MaxEntries
}

func (c *PlanConfig) isSelf(a netip.Addr) bool {
	for _, s := range c.Self {
		if s.Unmap() == a {
			return true
		}
	}
	return false
}

// ValidateRLE checks an RLE as NewPlan does, for a router with cfg, and
// returns the router's own level (-1 for an ITR). It refuses:
//
//   - more than cfg.MaxEntries entries (ErrRLETooLarge);
//   - an address that is not a unicast RLOC (unspecified, loopback,
//     link-local, broadcast), or a multicast address that is not a usable
//     underlay group (link-local or interface-local scope), or an underlay
//     group (G-RLOC) below the highest level of the RLE, where only routers
//     may be (ErrRLEAddress);
//   - the same address twice, at any levels (ErrRLEDuplicate);
//   - for an RTR, one of its own RLOCs at a level other than its own
//     (ErrRLELoop), or, when its level comes from the RLE, none of its
//     RLOCs listed (ErrNotInRLE).
func ValidateRLE(es []Entry, cfg PlanConfig) (level int, err error) {
	if max := cfg.maxEntries(); len(es) > max {
		return -1, fmt.Errorf("%w: %d entries, the maximum is %d", ErrRLETooLarge, len(es), max)
	}
	top := -1
	for i := range es {
		top = max(top, int(es[i].Level))
	}
	seen := make(map[netip.Addr]int, len(es))
	for i := range es {
		e := &es[i]
		a := e.Addr.Unmap()
		if err := checkAddr(a); err != nil {
			return -1, fmt.Errorf("%w: entry %d (%s, level %d): %s", ErrRLEAddress, i, a, e.Level, err)
		}
		if a.IsMulticast() && int(e.Level) != top {
			return -1, fmt.Errorf("%w: entry %d (%s, level %d): an underlay group below the highest level %d, where only routers may be",
				ErrRLEAddress, i, a, e.Level, top)
		}
		if j, dup := seen[a]; dup {
			return -1, fmt.Errorf("%w: entry %d (%s, level %d) repeats entry %d (level %d)", ErrRLEDuplicate, i, a, e.Level, j, es[j].Level)
		}
		seen[a] = i
	}
	if cfg.Role != RoleRTR {
		return -1, nil
	}
	level = cfg.Level
	if level < 0 {
		for i := range es {
			if cfg.isSelf(es[i].Addr.Unmap()) {
				level = int(es[i].Level)
				break
			}
		}
		if level < 0 {
			return -1, fmt.Errorf("%w: none of %v among %d entries", ErrNotInRLE, cfg.Self, len(es))
		}
	}
	for i := range es {
		a := es[i].Addr.Unmap()
		if cfg.isSelf(a) && int(es[i].Level) != level {
			return -1, fmt.Errorf("%w: our RLOC %s is entry %d at level %d, but we replicate at level %d",
				ErrRLELoop, a, i, es[i].Level, level)
		}
	}
	return level, nil
}

// checkAddr says why a is not a usable RLE destination, or nil.
func checkAddr(a netip.Addr) error {
	switch {
	case !a.IsValid():
		return errors.New("no address")
	case a.IsMulticast():
		if a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() {
			return errors.New("link-local or interface-local multicast group")
		}
		return nil
	case !a.IsGlobalUnicast():
		return errors.New("not a unicast RLOC (unspecified, loopback, link-local or broadcast)")
	}
	return nil
}

func newPlan(es []Entry, tpls [][]byte, cfg PlanConfig) (*Plan, error) {
	level, err := ValidateRLE(es, cfg)
	if err != nil {
		return nil, err
	}
	p := &Plan{role: cfg.Role, level: level, target: -1, entries: len(es), ref4: -1, ref6: -1}
	// The target level: the lowest level present (ITR), or the lowest one
	// above our own (RTR). Our own entries never count.
	for i := range es {
		l := int(es[i].Level)
		if cfg.isSelf(es[i].Addr.Unmap()) || l <= level {
			continue
		}
		if p.target < 0 || l < p.target {
			p.target = l
		}
	}
	if p.target < 0 {
		return p, nil
	}
	n := 0
	for i := range es {
		if int(es[i].Level) == p.target && !cfg.isSelf(es[i].Addr.Unmap()) {
			n++
		}
	}
	p.copies = make([]Copy, 0, n)
	for i := range es {
		a := es[i].Addr.Unmap()
		if int(es[i].Level) != p.target || cfg.isSelf(a) {
			continue
		}
		var t []byte
		if tpls != nil {
			t = tpls[i]
		}
		if len(t) == 0 {
			if cfg.Template == nil {
				return nil, ErrNoTemplate
			}
			t = cfg.Template(a)
		}
		if err := checkTemplate(t, a); err != nil {
			if t == nil {
				p.unsendable = append(p.unsendable, a)
				continue
			}
			return nil, fmt.Errorf("replicate: template for %s: %w", a, err)
		}
		p.copies = append(p.copies, Copy{Dst: a, Level: es[i].Level, Group: a.IsMulticast(), Template: t})
	}
	p.derive()
	return p, nil
}

// derive marks the copies Replicate can derive from the first copy of their
// family, and precomputes their checksum adjustment.
func (p *Plan) derive() {
	p.ref4, p.ref6 = -1, -1
	ref4, ref6 := -1, -1
	defer func() { p.ref4, p.ref6 = ref4, ref6 }()
	for i := range p.copies {
		c := &p.copies[i]
		t := c.Template
		if len(t) == wire.OuterIPv4Len {
			if ref4 < 0 {
				ref4 = i
				continue
			}
			r := p.copies[ref4].Template
			// Equal but for the checksum (10:12) and the destination (16:20).
			if string(t[:10]) == string(r[:10]) && string(t[12:16]) == string(r[12:16]) && string(t[20:]) == string(r[20:]) {
				c.mode = modeDerive4
			}
			continue
		}
		if ref6 < 0 {
			ref6 = i
			continue
		}
		r := p.copies[ref6].Template
		// Equal but for the destination (24:40), with a zero UDP checksum.
		if string(t[:24]) == string(r[:24]) && string(t[40:]) == string(r[40:]) &&
			binary.BigEndian.Uint16(t[wire.IPv6Len+6:]) == 0 {
			c.mode = modeDerive6
		}
	}
}

// checkTemplate checks that t is an outer-header template to dst.
func checkTemplate(t []byte, dst netip.Addr) error {
	if len(t) == 0 {
		return errors.New("none")
	}
	switch t[0] >> 4 {
	case 4:
		if len(t) != wire.OuterIPv4Len || !dst.Is4() || wire.IPv4(t).Dst() != dst {
			return errors.New("not an IPv4 template to that address")
		}
	case 6:
		if len(t) != wire.OuterIPv6Len || !dst.Is6() || netip.AddrFrom16([16]byte(t[24:40])) != dst {
			return errors.New("not an IPv6 template to that address")
		}
	default:
		return errors.New("not an IP header")
	}
	return nil
}

package slowpath

import (
	"net/netip"

	"github.com/gaissmai/bart"
)

// PrefixSet is a set of EID prefixes as the negative-reply search sees it
// (RFC 9301 §8.1): the registrations and configured site prefixes of a
// Map-Server, the aggregates and remote Map-Servers of a Map-Resolver.
type PrefixSet interface {
	// LookupPrefixLPM returns the longest prefix of the set that
	// contains p.
	LookupPrefixLPM(p netip.Prefix) (netip.Prefix, bool)
	// HasSubnetOtherThan reports whether the set holds a prefix inside q
	// other than c.
	HasSubnetOtherThan(q, c netip.Prefix) bool
}

// BartSet adapts a bart table of any value type to PrefixSet.
type BartSet[V any] struct{ *bart.Table[V] }

// LookupPrefixLPM implements PrefixSet.
func (s BartSet[V]) LookupPrefixLPM(p netip.Prefix) (netip.Prefix, bool) {
	lpm, _, ok := s.Table.LookupPrefixLPM(p)
	return lpm, ok
}

// HasSubnetOtherThan implements PrefixSet.
func (s BartSet[V]) HasSubnetOtherThan(q, c netip.Prefix) bool {
	for k := range s.Subnets(q) {
		if k != c {
			return true
		}
	}
	return false
}

// NegativePrefix computes the prefix of a negative Map-Reply for addr, an
// EID no registration covers (RFC 9301 §8.1): the least specific prefix
// that contains addr and no known EID prefix. Known prefixes are the
// registrations, the sites' configured prefixes, the aggregates and the
// remote Map-Servers' prefixes. When a known prefix c contains addr (EID
// space that is not registered), the answer lies inside c and inside says
// so; the caller then uses send-map-request instead of native-forward (and
// a DDT Map-Server answers MS-NOT-REGISTERED for the same prefix, RFC 8111
// §7.2).
func NegativePrefix(sets []PrefixSet, addr netip.Addr) (p netip.Prefix, inside bool) {
	var c netip.Prefix
	full := netip.PrefixFrom(addr, addr.BitLen())
	for _, s := range sets {
		if lpm, ok := s.LookupPrefixLPM(full); ok && (!c.IsValid() || lpm.Bits() > c.Bits()) {
			c = lpm
		}
	}
	start := 0
	if c.IsValid() {
		start = c.Bits()
		inside = true
	}
	for l := start; l <= addr.BitLen(); l++ {
		q := netip.PrefixFrom(addr, l).Masked()
		clear := true
		for _, s := range sets {
			if s.HasSubnetOtherThan(q, c) {
				clear = false
				break
			}
		}
		if clear {
			return q, inside
		}
	}
	return full, inside
}

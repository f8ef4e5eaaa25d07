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

package msx

import (
	"slices"
)

// The provider's sorted index of the local table: bulk pages walk it in
// keyCompare order and a cookie says where the next page starts. Changes
// are noted in O(1) (a registration storm costs no sorting) and merged in
// O(n + a log a) before a page is served when some happened since.

// indexChanged notes that k was registered (present) or went.
func (x *MSX) indexChanged(k key, present bool) {
	_, had := x.present[k]
	switch {
	case present && !had:
		x.present[k] = struct{}{}
		x.added = append(x.added, k)
	case !present && had:
		delete(x.present, k)
		x.stale = true
	}
}

// index brings x.keys up to date.
func (x *MSX) index() {
	if len(x.added) == 0 && !x.stale {
		return
	}
	slices.SortFunc(x.added, keyCompare)
	merged := make([]key, 0, len(x.present))
	i, j := 0, 0
	for i < len(x.keys) || j < len(x.added) {
		var k key
		switch {
		case j == len(x.added) || i < len(x.keys) && keyCompare(x.keys[i], x.added[j]) <= 0:
			k = x.keys[i]
			i++
		default:
			k = x.added[j]
			j++
		}
		if _, ok := x.present[k]; !ok {
			continue
		}
		if n := len(merged); n > 0 && merged[n-1] == k {
			continue // removed and registered again
		}
		merged = append(merged, k)
	}
	x.keys, x.added, x.stale = merged, x.added[:0], false
}

package cache

import (
	"net/netip"
)

// refExtra adds Reader.Lookup (a worker's own handle) to BenchmarkLookupRef.
func refExtra(c *Cache, names []string, vs []blockLookups) ([]string, []blockLookups) {
	rd := c.NewReader()
	return append(names, "reader"), append(vs, func(q []netip.Addr, from, to int) (hits int) {
		mask := len(q) - 1
		for i := from + 2*len(q)/3; i < to+2*len(q)/3; i++ {
			if _, ok := rd.Lookup(benchIID, q[i&mask]); ok {
				hits++
			}
		}
		return hits
	})
}

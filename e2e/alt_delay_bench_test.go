package e2e

import (
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/bench/resolve"
)

// BenchmarkALTResolution is issue 17's figure: resolution latency of a
// domain-2 EID through the ALT on configs/lab/alt-delay.yaml, whose delays
// are the LISP-MSX experiment's (BenchmarkMSXResolution), from xtr1's
// namespace (a lig-style ECM to the Map-Resolver) to the ETR's Map-Reply,
// two ways: (alt) mr -> a1 -> a2 -> ms2 -> xtr2, the regional ALT routers
// joined in the city; (alt-up) mr-up -> up -> a2 -> ms2 -> xtr2, through the
// upper ALT router in another country. The ALT keeps no state per
// resolution (nothing to empty between them). The two take turns, one
// resolution each per round, msxExpN rounds, over 200 EIDs of domain 2's
// site; every reply is checked (positive, 10.2.0.0/24, from xtr2). It
// reports p50/p90/p99 of each (alt-p50-ms, ...) and the lost resolutions.
// Run with -benchtime 1x:
//
//	flock /tmp/rloc-heavy.lock go test ./e2e -run '^$' -bench ALTResolution -benchtime 1x -timeout 10m
func BenchmarkALTResolution(b *testing.B) {
	n := newALTDelayLab(b)
	eids := ddtBenchEIDs("10.2.0.%d")
	clients := make([]*resolve.Client, len(altDelayPaths))
	for i, ap := range altDelayPaths {
		clients[i] = n.msxExpClient(ap.msxExpPath)
		// One untimed resolution each: ARP, and the first use of every
		// daemon's path.
		if _, err := clients[i].Resolve(0, eids[0], 3*time.Second); err != nil {
			b.Fatalf("%s: warming up: %v", ap.name, err)
		}
	}
	samples := make([][]time.Duration, len(altDelayPaths))
	lost := 0
	b.ResetTimer()
	for range b.N {
		for round := range msxExpN {
			eid := eids[round%len(eids)]
			for i, ap := range altDelayPaths {
				o := resolve.Options{N: 1, EIDs: []netip.Addr{eid}, Timeout: 3 * time.Second,
					Check: func(_ int, r *resolve.Reply) error { return ap.check(r) }}
				s, err := resolve.Measure(clients[i], o)
				if err != nil {
					b.Fatal(err)
				}
				samples[i], lost = append(samples[i], s.Samples...), lost+s.Lost
			}
		}
	}
	b.StopTimer()
	for i, ap := range altDelayPaths {
		s := resolve.Summarize(samples[i])
		s.Report(b, ap.name)
		b.Logf("%-6s %s -> %v -> ms2 -> xtr2: %v", ap.name, ap.mr, ap.hops, s)
	}
	b.ReportMetric(float64(lost), "lost")
}

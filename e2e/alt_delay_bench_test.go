package e2e

import (
	"testing"

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
	paths := make([]msxExpPath, len(altDelayPaths))
	for i, ap := range altDelayPaths {
		paths[i] = ap.msxExpPath
	}
	samples, lost := n.resolveInTurns(b, paths, msxExpN)
	for i, ap := range altDelayPaths {
		s := resolve.Summarize(samples[i])
		s.Report(b, ap.name)
		b.Logf("%-6s %s -> %v -> ms2 -> xtr2: %v", ap.name, ap.mr, ap.hops, s)
	}
	b.ReportMetric(float64(lost), "lost")
}

package e2e

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rloc-router/rloc/bench/resolve"
)

// msxExpN is the number of resolutions of each scenario (as in the
// article's Fig. 6).
const msxExpN = 700

// BenchmarkMSXResolution is the LISP-MSX experiment (issue 15, the
// article's Fig. 6) on configs/lab/msx-exp.yaml: resolution latency of a
// domain-2 EID as domain 1's ITR sees it, from the Map-Request (ECM, sent
// from xtr1's namespace and an ephemeral port, as lig does) to the
// Map-Reply, through (1) the interconnect in invoke mode (mr-invoke -> ms2
// -> ETR), (2) DDT with the nearby root, down the deep tree (mr-ddt-near ->
// root-near -> ddt-region -> ddt-d2 -> ms2 -> ETR: ddt-near-deep) and the
// flat one (root-near -> ms2: ddt-near), (3) the same with the distant root
// (ddt-far-deep, ddt-far), and (4) the interconnected copy (mr-copy
// answers). DDT is measured cold: the resolver's referral cache is emptied
// before each of its resolutions (DELETE /v1/ddt/referrals, untimed), as in
// BenchmarkDDTResolution. The scenarios take turns, one resolution each per
// round, msxExpN rounds, so the machine's load falls on all alike; the EIDs
// are 200 addresses of the scenario's site prefix.
//
// It reports p50/p90/p99 per scenario (invoke-p50-ms, ...), the ratios of
// (1)'s median to each DDT scenario's, and the lost resolutions; the samples go
// to the CSV file named by MSX_EXP_SAMPLES (default: in the temporary
// directory), one line per resolution (scenario,i,rtt_ms), which
// bench/cdfplot draws (make msx-experiment). Run with -benchtime 1x:
//
//	MSX_EXP_SAMPLES=/tmp/msx.csv flock /tmp/rloc-heavy.lock go test ./e2e -run '^$' -bench MSXResolution -benchtime 1x -timeout 20m
func BenchmarkMSXResolution(b *testing.B) {
	n := newMSXExpLab(b)
	samples, lost := n.resolveInTurns(b, msxExpPaths, msxExpN)
	sums := make([]resolve.Summary, len(msxExpPaths))
	for i, p := range msxExpPaths {
		sums[i] = resolve.Summarize(samples[i])
		sums[i].Report(b, p.name)
		b.Logf("%-13s %v", p.name, sums[i])
	}
	invoke := sums[msxExpPathNamed("invoke")].P50
	for _, name := range []string{"ddt-near-deep", "ddt-far-deep", "ddt-near", "ddt-far"} {
		if d := sums[msxExpPathNamed(name)].P50; d > 0 {
			b.ReportMetric(float64(invoke)/float64(d), "invoke/"+name+"-p50")
		}
	}
	b.ReportMetric(float64(lost), "lost")
	copied := len(samples[msxExpPathNamed("copy")])
	if c := n.msxAgreement("mr-copy").Counters; c["answered"] < uint64(copied) {
		b.Errorf("mr-copy answered %d from its copy, want %d", c["answered"], copied)
	}
	out := os.Getenv("MSX_EXP_SAMPLES")
	if out == "" {
		out = filepath.Join(os.TempDir(), "msx-exp-samples.csv")
	}
	if err := writeMSXSamples(out, samples); err != nil {
		b.Fatal(err)
	}
	b.Logf("samples in %s", out)
}

// siteEIDs returns 200 addresses of site (.1 to .200).
func siteEIDs(site netip.Prefix) []netip.Addr {
	out := make([]netip.Addr, 0, 200)
	for a := site.Addr().Next(); len(out) < 200; a = a.Next() {
		out = append(out, a)
	}
	return out
}

// resolveInTurns measures the resolution of domain 2's EIDs (200
// addresses of each path's site prefix, in turn) through each of paths from xtr1's
// namespace, rounds times: one resolution of each path per round, so that
// the machine's load falls on all alike. Each path gets one untimed
// resolution first; the referral caches of DDT paths are emptied before
// each of their resolutions (untimed). It returns the samples of each path
// and the number of lost resolutions; the benchmark's timer runs only
// around the rounds.
func (n *network) resolveInTurns(b *testing.B, paths []msxExpPath, rounds int) ([][]time.Duration, int) {
	eids := make([][]netip.Addr, len(paths))
	clients := make([]*resolve.Client, len(paths))
	for i, p := range paths {
		eids[i] = siteEIDs(p.site)
		clients[i] = n.msxExpClient(p)
		// One untimed resolution each: ARP, and the first use of every
		// daemon's path.
		if _, err := clients[i].Resolve(0, eids[i][0], 3*time.Second); err != nil {
			b.Fatalf("%s: warming up: %v", p.name, err)
		}
	}
	samples := make([][]time.Duration, len(paths))
	lost := 0
	b.ResetTimer()
	for range b.N {
		for round := range rounds {
			for i, p := range paths {
				eid := eids[i][round%len(eids[i])]
				o := resolve.Options{N: 1, EIDs: []netip.Addr{eid}, Timeout: 3 * time.Second,
					Check: func(_ int, r *resolve.Reply) error { return p.check(r) }}
				if p.ddt() {
					o.Before = func(int) error { return n.flushReferrals(p.mr) }
				}
				s, err := resolve.Measure(clients[i], o)
				if err != nil {
					b.Fatal(err)
				}
				samples[i], lost = append(samples[i], s.Samples...), lost+s.Lost
			}
		}
	}
	b.StopTimer()
	return samples, lost
}

// writeMSXSamples writes the samples as CSV: scenario,i,rtt_ms.
func writeMSXSamples(path string, samples [][]time.Duration) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "scenario,i,rtt_ms")
	for i, p := range msxExpPaths {
		for j, d := range samples[i] {
			fmt.Fprintf(w, "%s,%d,%.4f\n", p.name, j, float64(d)/float64(time.Millisecond))
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

package e2e

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/rloc-router/rloc/bench/resolve"
)

// ddtBenchN is the number of resolutions of each series.
const ddtBenchN = 700

// BenchmarkDDTResolution measures DDT resolution latency on the DDT lab
// (configs/lab/ddt.yaml, delayed links) as an ITR sees it: the time from a
// Map-Request (ECM, sent from the ITR's namespace to its Map-Resolver, as lig
// does) to the ETR's Map-Reply, through root -> child DDT node -> Map-Server
// -> ETR. Two domains: iid 0 through mr1 (10.5 ms one way to the root) and
// iid 7 through mr2 (20.5 ms). Each has a cold series (the resolver's
// referral cache emptied before every resolution, DELETE
// /v1/ddt/referrals, untimed) and a warm one (the cache primed: the MS-REFERRAL
// sends the request straight to the Map-Server), ddtBenchN resolutions each,
// reported as p50/p90/p99 with the referral-cache hit rate (resolutions that
// started below the root, from the resolver's counters) and the configured
// one-way delays. Run with -benchtime 1x (each b.N is one series):
//
//	flock /tmp/rloc-heavy.lock go test ./e2e -run '^$' -bench DDTResolution -benchtime 1x -timeout 20m
func BenchmarkDDTResolution(b *testing.B) {
	n := newDDTLab(b)
	delay := map[string]time.Duration{}
	for i := range n.lab.Topology().Links {
		l := &n.lab.Topology().Links[i]
		delay[l.Name], _, _ = l.Shape()
	}
	domains := []struct {
		name, itr, mr, access, etr, root string
		iid                              uint32
		eids                             []netip.Addr
	}{
		{"iid0-mr1", "xtr1", "mr1", "a-mr1", "a-xtr2", "ra-root", 0, ddtBenchEIDs("10.1.17.%d")},
		{"iid7-mr2", "xtr3", "mr2", "b-mr2", "b-xtr4", "rb-root", 7, ddtBenchEIDs("10.7.2.%d")},
	}
	for _, d := range domains {
		c := n.resolver(d.itr, d.mr)
		toRoot := delay[d.access] + delay[d.root]
		inDomain := delay[d.access] + delay[d.etr]
		for _, cold := range []bool{true, false} {
			name := d.name + "/warm"
			if cold {
				name = d.name + "/cold"
			}
			b.Run(name, func(b *testing.B) {
				o := resolve.Options{N: ddtBenchN, IID: d.iid, EIDs: d.eids, Timeout: 3 * time.Second,
					Check: func(i int, r *resolve.Reply) error {
						if r.Negative() {
							return fmt.Errorf("negative reply for %v from %v", d.eids[i%len(d.eids)], r.From)
						}
						return nil
					}}
				if cold {
					o.Before = func(int) error { return n.flushReferrals(d.mr) }
				} else if _, err := c.Resolve(d.iid, d.eids[0], 3*time.Second); err != nil {
					b.Fatalf("priming the referral cache: %v", err)
				}
				var all []time.Duration
				lost := 0
				before, err := ddtCounters(n, d.mr)
				if err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					s, err := resolve.Measure(c, o)
					if err != nil {
						b.Fatal(err)
					}
					all, lost = append(all, s.Samples...), lost+s.Lost
				}
				b.StopTimer()
				after, err := ddtCounters(n, d.mr)
				if err != nil {
					b.Fatal(err)
				}
				sum := resolve.Summarize(all)
				sum.Report(b, "")
				res := after["resolutions"] - before["resolutions"]
				hits := after["cache_hits"] - before["cache_hits"]
				if res > 0 {
					b.ReportMetric(100*float64(hits)/float64(res), "hit-%")
				}
				b.ReportMetric(float64(lost), "lost")
				b.ReportMetric(float64(toRoot)/1e6, "mr-root-1way-ms")
				b.ReportMetric(float64(inDomain)/1e6, "mr-etr-1way-ms")
				b.Logf("%s: %v, lost %d; %d resolutions, %d from the referral cache; one way: MR-root %v, MR-ETR and ITR-MR %v",
					name, sum, lost, res, hits, toRoot, inDomain)
			})
		}
	}
}

// ddtBenchEIDs are 200 addresses of a registered /24 (format has one %d).
func ddtBenchEIDs(format string) []netip.Addr {
	var out []netip.Addr
	for i := 1; i <= 200; i++ {
		out = append(out, netip.MustParseAddr(fmt.Sprintf(format, i)))
	}
	return out
}

// ddtCounters is ddtReferrals without the test's Fatal (safe in a
// sub-benchmark).
func ddtCounters(n *network, mr string) (map[string]uint64, error) {
	var l struct {
		Counters map[string]uint64 `json:"counters"`
	}
	err := n.get(mr, "/v1/ddt/referrals", &l)
	return l.Counters, err
}

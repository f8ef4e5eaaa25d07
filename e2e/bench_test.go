package e2e

import (
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchEIDs is how many distinct destinations BenchmarkResolution resolves.
const benchEIDs = 200

var pingTime = regexp.MustCompile(`time=([0-9.]+) ms`)

// BenchmarkResolution measures resolution latency on the demo lab: xtr2
// registers 200 host EIDs (10.2.1.1-200/32, addresses of h2), and h1 pings
// each once with an empty map-cache entry for it at xtr1 (the first echo
// request waits in xtr1's hold queue while xtr1 resolves it through msmr
// and xtr2), then once more (mapping cached). The difference of the round
// trips is the resolution as a host sees it; xtr1's own miss-to-install
// histogram is reported beside it. Each iteration deletes xtr1's entries
// first. Run: go test -run '^$' -bench Resolution -benchtime 3x ./e2e
func BenchmarkResolution(b *testing.B) {
	if _, err := exec.LookPath("ping"); err != nil {
		b.Fatalf("no ping binary (scripts/deps.sh iputils-ping): %v", err)
	}
	n := newNetworkB(b)
	var sb strings.Builder
	sb.WriteString("  - {eid: 10.2.0.0/24, rlocs: [{addr: 192.0.2.2, priority: 1}]}\n")
	for i := 1; i <= benchEIDs; i++ {
		fmt.Fprintf(&sb, "  - {eid: 10.2.1.%d/32, rlocs: [{addr: 192.0.2.2, priority: 1}]}\n", i)
	}
	n.start("msmr", `name: msmr
roles: [map-server, map-resolver]
sites:
  - name: site1
    keys: [{id: 1, secret: key-one}]
    prefixes: [{eid: 10.1.0.0/24}, {eid: "2001:db8:1::/64"}]
  - name: site2
    keys: [{id: 1, secret: key-two}]
    prefixes: [{eid: 10.2.0.0/16, accept_more_specifics: true}]
`)
	n.start("xtr1", xtrYAML("xtr1", "1", "key-one", "0s")+"metrics: {listen: \"127.0.0.1:9100\"}\n")
	n.start("xtr2", `name: xtr2
roles: [itr, etr]
rlocs: [192.0.2.2, "2001:db8:ff::2"]
interfaces: [{name: site0, side: site}, {name: core0, side: core}]
database:
`+sb.String()+`map_servers: [{addr: 192.0.2.100, key: {id: 1, secret: key-two}}]
map_resolvers: [192.0.2.100]
etr: {register_interval: 5s}
`)
	for i := 1; i <= benchEIDs; i++ {
		if out, err := n.lab.Exec("h2", "ip", "addr", "add", fmt.Sprintf("10.2.1.%d/32", i), "dev", "eth0"); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
	if out, err := n.lab.Exec("xtr2", "ip", "route", "add", "10.2.1.0/24", "via", "10.2.0.10"); err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	n.waitFor(15*time.Second, "xtr2's registrations", func() bool { return len(n.registrations()) >= benchEIDs+3 })
	// Warm up the way back (xtr2 resolves h1 once) and the neighbours.
	if got, err := n.lab.Ping("h1", h2v4, 2, 2*time.Second); err != nil || got != 2 {
		b.Fatalf("h1 -> h2: %d/2, %v", got, err)
	}
	ping := func(dst string) float64 {
		out, err := n.lab.Exec("h1", "ping", "-c", "1", "-W", "3", "-n", dst)
		m := pingTime.FindStringSubmatch(string(out))
		if err != nil || m == nil {
			b.Fatalf("ping %s: %v\n%s", dst, err, out)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	var first, again []float64
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		for i := 1; i <= benchEIDs; i++ {
			var out map[string]int
			_ = n.do("xtr1", "DELETE", fmt.Sprintf("/v1/map-cache?iid=0&eid=10.2.1.%d/32", i), nil, &out)
		}
		time.Sleep(1100 * time.Millisecond) // the ITR asks for one EID at most once a second
		for i := 1; i <= benchEIDs; i++ {
			dst := fmt.Sprintf("10.2.1.%d", i)
			first = append(first, ping(dst))
			again = append(again, ping(dst))
		}
	}
	b.StopTimer()
	slices.Sort(first)
	slices.Sort(again)
	q := func(s []float64, p float64) float64 { return s[min(len(s)-1, int(p*float64(len(s))))] }
	b.ReportMetric(q(first, 0.5), "first-rtt-p50-ms")
	b.ReportMetric(q(first, 0.99), "first-rtt-p99-ms")
	b.ReportMetric(q(again, 0.5), "cached-rtt-p50-ms")
	b.ReportMetric(q(again, 0.99), "cached-rtt-p99-ms")
	st := n.stats("xtr1")
	m := n.scrape("xtr1", "127.0.0.1:9100")
	count := m["rloc_resolution_latency_seconds_count"]
	b.ReportMetric(1000*m["rloc_resolution_latency_seconds_sum"]/count, "router-mean-ms")
	b.ReportMetric(count, "resolutions")
	b.Logf("%d first pings: p50 %.3f ms, p90 %.3f, p99 %.3f, max %.3f; cached: p50 %.3f, p99 %.3f; xtr1 histogram %v; drops %v",
		len(first), q(first, 0.5), q(first, 0.9), q(first, 0.99), first[len(first)-1], q(again, 0.5), q(again, 0.99),
		st.LatencyMS, st.Drops)
	var buckets []string
	for k, v := range m {
		if strings.HasPrefix(k, "rloc_resolution_latency_seconds_bucket") {
			buckets = append(buckets, fmt.Sprintf("%s %v", strings.TrimPrefix(k, "rloc_resolution_latency_seconds_bucket"), v))
		}
	}
	slices.Sort(buckets)
	b.Logf("xtr1 histogram buckets (cumulative): %s", strings.Join(buckets, ", "))
}

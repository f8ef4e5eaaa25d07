package resolve

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Options is one series of resolutions.
type Options struct {
	// N is the number of resolutions.
	N int
	// IID is the instance-ID, EIDs the addresses resolved in turn
	// (resolution i asks for EIDs[i % len(EIDs)]).
	IID  uint32
	EIDs []netip.Addr
	// Timeout bounds each resolution (default 3 s); one without a reply
	// counts as lost and is not a sample.
	Timeout time.Duration
	// Before, if set, runs before resolution i and is not timed: for
	// example, empty a Map-Resolver's referral cache for a cold series.
	Before func(i int) error
	// Check, if set, judges each reply; an error ends the series.
	Check func(i int, r *Reply) error
}

// Series is the outcome of Measure.
type Series struct {
	// Samples are the round trips of the answered resolutions, in order.
	Samples []time.Duration
	// Lost counts resolutions without a reply in time.
	Lost int
}

// Measure runs o.N resolutions one after the other through c.
func Measure(c *Client, o Options) (Series, error) {
	var s Series
	if o.N < 1 || len(o.EIDs) == 0 {
		return s, errors.New("resolve: nothing to measure (N < 1 or no EIDs)")
	}
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Second
	}
	s.Samples = make([]time.Duration, 0, o.N)
	for i := range o.N {
		if o.Before != nil {
			if err := o.Before(i); err != nil {
				return s, fmt.Errorf("resolve: before resolution %d: %w", i, err)
			}
		}
		r, err := c.Resolve(o.IID, o.EIDs[i%len(o.EIDs)], o.Timeout)
		if errors.Is(err, ErrNoReply) {
			s.Lost++
			continue
		}
		if err != nil {
			return s, err
		}
		if o.Check != nil {
			if err := o.Check(i, &r); err != nil {
				return s, fmt.Errorf("resolve: resolution %d: %w", i, err)
			}
		}
		s.Samples = append(s.Samples, r.RTT)
	}
	return s, nil
}

// Summary is the distribution of a series' samples.
type Summary struct {
	N                       int
	Min, P50, P90, P99, Max time.Duration
}

// Summarize returns the nearest-rank percentiles of samples (which it does
// not modify).
func Summarize(samples []time.Duration) Summary {
	s := slices.Clone(samples)
	slices.Sort(s)
	if len(s) == 0 {
		return Summary{}
	}
	return Summary{N: len(s), Min: s[0], P50: Percentile(s, 50), P90: Percentile(s, 90), P99: Percentile(s, 99), Max: s[len(s)-1]}
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted: the smallest sample with at least p % of the samples at or below
// it; zero for no samples.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// String is the summary in milliseconds.
func (s Summary) String() string {
	return fmt.Sprintf("n=%d p50=%.2fms p90=%.2fms p99=%.2fms min=%.2fms max=%.2fms", s.N, ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Min), ms(s.Max))
}

// MetricReporter is what Report writes to (*testing.B has it).
type MetricReporter interface {
	ReportMetric(n float64, unit string)
}

// Report writes the p50, p90 and p99 in milliseconds as metrics named
// prefix-p50-ms etc. (a `go test -bench` line).
func (s Summary) Report(b MetricReporter, prefix string) {
	if prefix != "" && !strings.HasSuffix(prefix, "-") {
		prefix += "-"
	}
	b.ReportMetric(ms(s.P50), prefix+"p50-ms")
	b.ReportMetric(ms(s.P90), prefix+"p90-ms")
	b.ReportMetric(ms(s.P99), prefix+"p99-ms")
}

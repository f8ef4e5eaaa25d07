package router

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rloc-router/rloc/wire"
)

// ddtCollector exports the DDT counters to Prometheus at scrape time: the
// DDT Map-Resolver's (rloc_ddt_resolver_total by event, the referral
// cache's and pending list's sizes) and the DDT node's (Map-Referrals sent
// by type, signatures) and the Map-Server's DDT signatures. A router with
// none of them exports nothing here.
type ddtCollector struct {
	r                                             *Router
	events, cached, pending, node, signed, msSign *prometheus.Desc
}

func newDDTCollector(r *Router) *ddtCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("rloc_ddt_"+name, help, labels, nil)
	}
	return &ddtCollector{r: r,
		events:  d("resolver_total", "DDT Map-Resolver events (RFC 8111 §7.3), as GET /v1/ddt/referrals counts them.", "event"),
		cached:  d("referral_cache_entries", "Learned entries of the DDT Map-Resolver's referral cache."),
		pending: d("pending_resolutions", "DDT resolutions in progress."),
		node:    d("node_referrals_total", "Map-Referrals a DDT node sent, by referral type.", "type"),
		signed:  d("node_signatures_total", "Referral signatures a DDT node made, and failed to make.", "result"),
		msSign:  d("map_server_signatures_total", "Referral signatures the Map-Server made for its DDT answers, and failed to make.", "result"),
	}
}

// Describe implements prometheus.Collector.
func (c *ddtCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.events, c.cached, c.pending, c.node, c.signed, c.msSign} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *ddtCollector) Collect(ch chan<- prometheus.Metric) {
	e := c.r.engine
	if e == nil {
		return
	}
	if st, _, _, total, ok := e.DDTReferrals(0); ok {
		for k, v := range ddtResolverCounters(&st) {
			ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(v), k)
		}
		ch <- prometheus.MustNewConstMetric(c.cached, prometheus.GaugeValue, float64(total))
		if _, n, ok := e.DDTPending(0); ok {
			ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(n))
		}
	}
	if l, ok := e.DDTDelegations(); ok {
		for t, v := range l.Stats.Referrals {
			ch <- prometheus.MustNewConstMetric(c.node, prometheus.CounterValue, float64(v),
				strings.ToLower(metricName(wire.ReferralType(t).String())))
		}
		ch <- prometheus.MustNewConstMetric(c.signed, prometheus.CounterValue, float64(l.Stats.Signed), "signed")
		ch <- prometheus.MustNewConstMetric(c.signed, prometheus.CounterValue, float64(l.Stats.SignErrors), "error")
	}
	if signed, errs, ok := e.DDTMapServerSigned(); ok {
		ch <- prometheus.MustNewConstMetric(c.msSign, prometheus.CounterValue, float64(signed), "signed")
		ch <- prometheus.MustNewConstMetric(c.msSign, prometheus.CounterValue, float64(errs), "error")
	}
}

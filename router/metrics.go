package router

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rloc-router/rloc/fastpath"
	"github.com/rloc-router/rloc/ring/xsk"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// collector exports the router's counters to Prometheus at scrape time:
// nothing is counted twice and the fast path is not touched (it reads the
// workers' published counters).
type collector struct {
	r                                                     *Router
	fp, fpDrop, fpBad, fpExtra, msgs, cacheSize, cacheOps *prometheus.Desc
	regs, latency, resolutions                            *prometheus.Desc
	xskKernel, xskSocket, xdpSteer                        *prometheus.Desc
	offPaused, offEvents, offFlows                        *prometheus.Desc
	nhEvents, nhNoEgress                                  *prometheus.Desc
}

// xskSocket is one AF_XDP socket of the router and the interface it is on.
type xskSocket struct {
	*xsk.Port
	iface string
}

func newCollector(r *Router) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("rloc_"+name, help, labels, nil)
	}
	return &collector{r: r,
		fp:          d("fastpath_packets_total", "Fast-path events summed over workers.", "event"),
		fpDrop:      d("fastpath_dropped_total", "Packets the fast path dropped, by reason.", "reason"),
		fpBad:       d("fastpath_bad_packets_total", "Malformed packets the fast path dropped, by reason.", "reason"),
		fpExtra:     d("fastpath_extra_total", "Other fast-path events (ECN, fragmentation, ICMP).", "event"),
		msgs:        d("control_messages_total", "Control messages by type and result.", "type", "result"),
		cacheSize:   d("map_cache_entries", "Map-cache entries by kind.", "kind"),
		cacheOps:    d("map_cache_operations_total", "Map-cache changes by operation.", "op"),
		regs:        d("registrations", "Live Map-Server registrations."),
		latency:     d("resolution_latency_seconds", "Miss-to-mapping-installed latency."),
		resolutions: d("control_events_total", "Control-plane events.", "event"),
		xskKernel: d("xsk_kernel_total", "The kernel's counters of each AF_XDP socket (XDP_STATISTICS): frames it dropped or could not place, by counter.",
			"interface", "queue", "counter"),
		xskSocket: d("xsk_socket_total", "Each AF_XDP socket's frames received and sent, and the system calls and wake-ups that moved them.",
			"interface", "queue", "counter"),
		xdpSteer: d("xdp_steering_total", "What each interface's XDP steering program did with received frames: redirect to the fast path, or pass to the kernel and why (pass_no_xsk: a queue without a socket).",
			"interface", "action"),
		offPaused: d("xdp_offload_paused", "1 while a direction of the kernel offload of steady flows is paused (encap: xdp.offload, decap: xdp.offload_decap) because an interface its programs redirect to does not take XDP redirects.",
			"direction"),
		offFlows: d("xdp_offload_flows", "The flows the kernel offload's tables held in the current epoch at the last sweep (once a second), by direction (encap: the site programs encapsulate them; decap: the core programs deliver them).",
			"direction"),
		nhEvents: d("nexthop_events_total", "The next-hop watcher's events: kernel link, route and neighbour events applied (events), next-hop snapshots published to the workers (snapshots), netlink sessions started over with a fresh dump (resyncs), kernel neighbour entries marked used for the fast path's packets (neigh_marked), and marks that found the entry already deleted (neigh_mark_gone).",
			"event"),
		nhNoEgress: d("nexthop_routes_without_egress", "The kernel's unicast routes in the last next-hop snapshot that name neither an interface nor a nexthop object, which the kernel does not make: above 0, rlocd misreads a route message, and the fast path hands what goes by those routes to the kernel (rloc_fastpath_packets_total{event=\"to_kernel\"})."),
		offEvents: d("xdp_offload_events_total", "The kernel offload's events: epochs started, entries swept, epochs a table refused (errors), pauses, map-cache batches handled without an epoch (map_batches) and the entries they deleted (map_deleted), next-hop snapshots that lost neighbours alone, handled without an epoch (hop_batches), and the entries they deleted (hop_deleted), next-hop snapshots of a route or link change, handled without an epoch (route_batches), and the entries whose next hop they changed, deleted (route_deleted).",
			"event"),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.fp, c.fpDrop, c.fpBad, c.fpExtra, c.msgs, c.cacheSize, c.cacheOps, c.regs, c.latency, c.resolutions, c.xskKernel, c.xskSocket, c.xdpSteer,
		c.offPaused, c.offEvents, c.offFlows, c.nhEvents, c.nhNoEgress} {
		ch <- d
	}
}

func metricName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	r := c.r
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	if len(r.workers) > 0 {
		fc := r.fastpathCounters()
		fc.Each(func(name, reason string, v uint64) {
			switch {
			case reason == "":
				counter(c.fp, v, metricName(name))
			case name == "bad-packet":
				counter(c.fpBad, v, metricName(reason))
			default:
				counter(c.fpDrop, v, metricName(reason))
			}
		})
		for e := fastpath.Extra(0); e < fastpath.NumExtra; e++ {
			var v uint64
			for _, w := range r.workers {
				v += w.Extra(e)
			}
			counter(c.fpExtra, v, metricName(e.String()))
		}
		c.collectXSK(counter)
		c.collectSteering(counter)
	}
	if r.watcher != nil {
		st := r.watcher.Stats()
		for k, v := range map[string]uint64{"events": st.Events, "snapshots": st.Snapshots, "resyncs": st.Resyncs,
			"neigh_marked": st.Marked, "neigh_mark_gone": st.MarkGone} {
			counter(c.nhEvents, v, k)
		}
		ch <- prometheus.MustNewConstMetric(c.nhNoEgress, prometheus.GaugeValue, float64(st.RoutesWithoutEgress))
	}
	if r.offload != nil {
		st := r.offload.Stats()
		for d, p := range map[fastpath.OffloadDirection]bool{fastpath.OffloadEncap: st.PausedEncap, fastpath.OffloadDecap: st.PausedDecap} {
			paused := 0.0
			if p {
				paused = 1
			}
			ch <- prometheus.MustNewConstMetric(c.offPaused, prometheus.GaugeValue, paused, d.String())
		}
		ch <- prometheus.MustNewConstMetric(c.offFlows, prometheus.GaugeValue, float64(st.FlowsEncap), fastpath.OffloadEncap.String())
		ch <- prometheus.MustNewConstMetric(c.offFlows, prometheus.GaugeValue, float64(st.FlowsDecap), fastpath.OffloadDecap.String())
		for k, v := range map[string]uint64{"epochs": st.Invalidations, "swept": st.Swept, "errors": st.Errors, "pauses": st.Pauses,
			"map_batches": st.MapBatches, "map_deleted": st.MapDeleted, "hop_batches": st.HopBatches, "hop_deleted": st.HopDeleted,
			"route_batches": st.RouteBatches, "route_deleted": st.RouteDeleted} {
			counter(c.offEvents, v, k)
		}
	}
	cs := r.cache.Stats()
	for k, v := range map[string]int{"all": cs.Entries, "negative": cs.Negative, "static": cs.Static, "multicast": cs.Multicast} {
		ch <- prometheus.MustNewConstMetric(c.cacheSize, prometheus.GaugeValue, float64(v), k)
	}
	for k, v := range map[string]uint64{"inserted": cs.Inserted, "replaced": cs.Replaced, "deleted": cs.Deleted,
		"expired": cs.Expired, "evicted": cs.Evicted, "rejected": cs.Rejected} {
		counter(c.cacheOps, v, k)
	}
	if r.engine == nil {
		return
	}
	es := r.engine.Stats()
	for t := range es.Msgs {
		name, ok := msgTypeNames[wire.MessageType(t)]
		if !ok {
			continue
		}
		m := es.Msgs[t]
		for res, v := range map[string]uint64{"received": m.Received, "sent": m.Sent, "send_error": m.SendErrors,
			"bad_parse": m.BadParse, "bad_auth": m.BadAuth, "rate_limited": m.RateLimited,
			"rejected": m.Rejected, "ignored": m.Ignored} {
			counter(c.msgs, v, metricName(name), res)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.regs, prometheus.GaugeValue, float64(es.Registrations))
	for k, v := range map[string]uint64{"resolutions": es.Resolutions, "resolve_timeouts": es.ResolveTimeouts,
		"retransmits": es.Retransmits, "probes_sent": es.ProbesSent, "rloc_down": es.RLOCDown, "rloc_up": es.RLOCUp,
		"registrations_accepted": es.RegistrationsAccepted, "registrations_rejected": es.RegistrationsRejected,
		"registrations_expired": es.RegistrationsExpired, "negative_replies": es.NegativeReplies,
		"registrations_limited": es.RegistrationsLimited, "registrations_replayed": es.RegistrationsReplayed,
		"registrations_retransmitted": es.RegistrationsRetransmitted, "merge_truncated": es.MergeTruncated,
		"state_flushes": es.StateFlushes, "state_errors": es.StateErrors, "state_written": es.StateWritten,
		"misses_dropped": es.MissesDropped, "misses_stale": es.MissesStale, "rate_limited_source": es.RateLimitedSource,
		"rate_limited_total": es.RateLimitedTotal, "rate_table_full": es.RateTableFull,
		"lisp_sec_verified": es.LispSecVerified, "lisp_sec_refused": es.LispSecRefused, "lisp_sec_unsigned": es.LispSecUnsigned,
		"lisp_sec_signed": es.LispSecSigned, "lisp_sec_unwrap_failed": es.LispSecUnwrapFailed} {
		counter(c.resolutions, v, k)
	}
	// Messages whose authentication verified, by variant (auth_full, ...).
	auth := es.AuthTotals()
	auth.Each(func(name string, v uint64) { counter(c.resolutions, v, name) })
	discoveryMetrics(r.engine, func(name string, v uint64) { counter(c.resolutions, v, name) })
	cpnpMetrics(r.engine, func(name string, v uint64) { counter(c.resolutions, v, name) })
	ch <- histogram(c.latency, es.ResolveLatency)
}

// collectXSK exports every AF_XDP socket's counters, labelled with its
// interface and queue: the kernel's (a socket whose statistics cannot be read
// is left out of that family) and the socket's own, as of its worker's last
// publication.
func (c *collector) collectXSK(counter func(*prometheus.Desc, uint64, ...string)) {
	for _, p := range c.r.xsks {
		q := strconv.Itoa(p.Queue())
		if ks, err := p.Stats(); err == nil {
			for _, kv := range []struct {
				name string
				v    uint64
			}{{"rx_dropped", ks.Rx_dropped}, {"rx_invalid_descs", ks.Rx_invalid_descs}, {"tx_invalid_descs", ks.Tx_invalid_descs},
				{"rx_ring_full", ks.Rx_ring_full}, {"rx_fill_ring_empty_descs", ks.Rx_fill_ring_empty_descs},
				{"tx_ring_empty_descs", ks.Tx_ring_empty_descs}} {
				counter(c.xskKernel, kv.v, p.iface, q, kv.name)
			}
		}
		sc := p.Published()
		for _, kv := range []struct {
			name string
			v    uint64
		}{{"rx_frames", sc.RxPackets}, {"rx_wakeups", sc.RxWakeups}, {"fill_short", sc.FillShort}, {"tx_frames", sc.TxPackets},
			{"tx_sendto", sc.TxKicks}, {"tx_wakeups", sc.TxWakeups}, {"tx_kick_busy", sc.TxKickBusy}} {
			counter(c.xskSocket, kv.v, p.iface, q, kv.name)
		}
	}
}

// collectSteering exports each interface's steering program counters, by
// action (a program whose map cannot be read is left out).
func (c *collector) collectSteering(counter func(*prometheus.Desc, uint64, ...string)) {
	for i, p := range c.r.progs {
		if i >= len(c.r.cfg.Interfaces) {
			break
		}
		st, err := p.Stats()
		if err != nil {
			continue
		}
		for k := range xsk.NumStats {
			counter(c.xdpSteer, st[k], c.r.cfg.Interfaces[i].Name, k.String())
		}
	}
}

// histogram converts the engine's latency histogram.
func histogram(d *prometheus.Desc, h slowpath.Histogram) prometheus.Metric {
	buckets := map[float64]uint64{}
	var cum uint64
	for i, b := range h.Bounds {
		cum += h.Counts[i]
		buckets[b.Seconds()] = cum
	}
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum.Seconds(), buckets)
}

func (r *Router) startMetrics() error {
	ln, err := net.Listen("tcp", r.cfg.Metrics.Listen)
	if err != nil {
		return fmt.Errorf("metrics.listen: %w", err)
	}
	r.metricLn = ln
	reg := prometheus.NewRegistry()
	if err := reg.Register(newDDTCollector(r)); err != nil {
		ln.Close()
		return fmt.Errorf("metrics: %w", err)
	}
	if err := reg.Register(newCollector(r)); err != nil {
		ln.Close()
		return fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	r.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.metrics.Serve(ln) }()
	return nil
}

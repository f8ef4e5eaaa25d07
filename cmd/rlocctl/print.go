package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rloc-router/rloc/router"
)

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func rlocList(rs []router.RLOCInfo, reach bool) string {
	if len(rs) == 0 {
		return "-"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%s %d/%d", r.Addr, r.Priority, r.Weight)
		if reach {
			if r.Reachable {
				parts[i] += " up"
			} else {
				parts[i] += " DOWN"
			}
		}
	}
	return strings.Join(parts, ", ")
}

func printMapCache(out io.Writer, es []router.MapCacheEntry) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IID\tEID\tRLOCS (prio/weight state) / ACTION\tTTL\tEXPIRES\tFLAGS")
	for _, e := range es {
		what := rlocList(e.RLOCs, true)
		if e.Negative {
			what = "negative: " + e.Action
		}
		exp := "never"
		if !e.Expires.IsZero() {
			exp = time.Until(e.Expires).Round(time.Second).String()
		}
		ttl := strconv.FormatUint(uint64(e.TTL), 10) + "m"
		flags := ""
		if e.Static {
			flags = "static"
			ttl = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.IID, e.EID, what, ttl, exp, flags)
	}
	tw.Flush()
	fmt.Fprintf(out, "%d entries\n", len(es))
}

func printDatabase(out io.Writer, ds []router.DatabaseMapping) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IID\tEID\tRLOCS (prio/weight)\tTTL")
	for _, d := range ds {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", d.IID, d.EID, rlocList(d.RLOCs, false), dash(d.TTL))
	}
	tw.Flush()
}

func printRegistrations(out io.Writer, regs []router.RegistrationInfo) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tIID\tEID\tRLOCS\tFROM\tEXPIRES")
	for _, r := range regs {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", r.Site, r.IID, r.EID, strings.Join(r.RLOCs, ", "), r.Source,
			time.Until(r.Expires).Round(time.Second))
	}
	tw.Flush()
	fmt.Fprintf(out, "%d registrations\n", len(regs))
}

func sortedKeys(m map[string]uint64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func printStats(out io.Writer, s *router.Stats) {
	fmt.Fprintf(out, "router %s, up %s, %d workers\n", s.Name, s.Uptime, s.Workers)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if len(s.Fastpath) > 0 {
		fmt.Fprintln(tw, "\nFAST PATH\tPACKETS")
		for _, k := range sortedKeys(s.Fastpath) {
			if v := s.Fastpath[k]; v > 0 || k == "rx" || k == "tx" {
				fmt.Fprintf(tw, "%s\t%d\n", k, v)
			}
		}
		for _, k := range sortedKeys(s.Drops) {
			fmt.Fprintf(tw, "drop %s\t%d\n", k, s.Drops[k])
		}
	}
	if len(s.Messages) > 0 {
		fmt.Fprintln(tw, "\nCONTROL MESSAGE\tRECEIVED\tSENT\tBAD-PARSE\tBAD-AUTH\tRATE-LIMITED\tREJECTED\tIGNORED")
		for _, m := range s.Messages {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", m.Type, m.Received, m.Sent, m.BadParse, m.BadAuth,
				m.RateLimited, m.Rejected, m.Ignored)
		}
	}
	if len(s.Control) > 0 {
		fmt.Fprintln(tw, "\nCONTROL PLANE\tCOUNT")
		for _, k := range sortedKeys(s.Control) {
			if v := s.Control[k]; v > 0 {
				fmt.Fprintf(tw, "%s\t%d\n", k, v)
			}
		}
	}
	if len(s.LatencyMS) > 0 {
		fmt.Fprintf(tw, "\nresolution latency\tcount %s, mean %s, p50 %s, p99 %s\n", s.LatencyMS["count"],
			s.LatencyMS["mean"], s.LatencyMS["p50"], s.LatencyMS["p99"])
	}
	fmt.Fprintf(tw, "\nmap-cache\t%d entries (%d negative, %d static)\n", s.Cache.Entries, s.Cache.Negative, s.Cache.Static)
	tw.Flush()
}

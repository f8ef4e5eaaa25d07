package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/rloc-router/rloc/router"
)

// printBGPDiscovery prints BGP discovery's table
// (draft-boucadair-lisp-idr-ms-discovery): per EID prefix the mapping
// system's contact, the neighbour and AS path it came by (self for this
// router's advertisements), then the counters. Nothing without it.
func printBGPDiscovery(out io.Writer, b *router.BGPDiscoveryInfo) {
	if b == nil {
		return
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EID PREFIX\tMAPPING SYSTEM\tFROM\tAS PATH")
	for _, e := range b.Prefixes {
		from := "self"
		if !e.Self {
			from = e.Neighbor.String()
		}
		var path []string
		for _, a := range e.ASPath {
			path = append(path, fmt.Sprint(a))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Prefix, e.Contact, from, dash(strings.Join(path, " ")))
	}
	tw.Flush()
	s := b.Stats
	fmt.Fprintf(out, "bgp: %d prefixes learned; %d updates, %d withdrawals, %d without the community, %d malformed communities ignored, %d dropped (table full)\n",
		s.Learned, s.Updates, s.Withdrawals, s.Untagged, s.Malformed, s.Dropped)
}

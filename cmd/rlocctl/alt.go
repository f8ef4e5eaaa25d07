package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rloc-router/rloc/router"
)

// altCmd shows the ALT router (RFC 6836, docs/alt.md).
func altCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alt",
		Short: "Show the ALT router: neighbours, BGP sessions, ALT table (RFC 6836)",
		Long: `alt shows an ALT router (role alt) as GET /v1/alt returns it: each ALT
neighbour with its underlay and inner (tunnel) addresses, AS number, BGP session
state, prefixes received/accepted/advertised, uptime and GRE packets; the ALT
forwarding table (EID prefix, next ALT router or "local", AS path, aggregate);
the prefixes this router announces; the counters (Map-Requests sent into the
ALT, forwarded, delivered to the local Map-Server, dropped for want of a route
or TTL, non-Map-Request packets dropped) and the GRE packets dropped by reason.

-o dot prints the router's view of the ALT as Graphviz input, -o svg draws it:
the router, its neighbours (dashed when the session is down) and the routes
the ALT table sends to each.`,
		Example:     "  rlocctl alt\n  rlocctl alt -o json\n  rlocctl alt --watch\n  rlocctl alt -o svg > alt.svg",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{formatsAnnotation: fmtDot + " " + fmtSVG},
		RunE: func(*cobra.Command, []string) error {
			return list(o, "alt", "/v1/alt", func(w io.Writer, v router.ALTView) {
				if !o.picture(w, "alt", router.ALTPicture(v)) {
					printALT(w, v)
				}
			})
		},
	}
	addWatch(cmd, o)
	return cmd
}

func printALT(out io.Writer, v router.ALTView) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NEIGHBOR\tREMOTE\tASN\tSTATE\tRCVD/ACC/ADV\tUPTIME\tGRE RX/TX")
	for _, n := range v.Neighbors {
		fmt.Fprintf(tw, "%v\t%v\t%d\t%s\t%d/%d/%d\t%v\t%d/%d\n", n.Peer, n.Remote, n.ASN, n.State, n.Received, n.Accepted,
			n.Advertised, time.Duration(n.UptimeSec)*time.Second, n.RxPackets, n.TxPackets)
	}
	fmt.Fprintln(tw, "\nPREFIX\tNEXT HOP\tAS PATH\tFLAGS")
	for _, r := range v.Table {
		var path []string
		for _, a := range r.ASPath {
			path = append(path, fmt.Sprint(a))
		}
		var flags []string
		if r.Aggregate {
			flags = append(flags, "aggregate")
		}
		if r.Local {
			flags = append(flags, "local")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name(), r.Peer, strings.Join(path, " "), strings.Join(flags, ","))
	}
	tw.Flush()
	var ann []string
	for _, p := range v.Announced {
		ann = append(ann, p.String())
	}
	for _, p := range v.AnnouncedIIDs {
		ann = append(ann, p.Name())
	}
	fmt.Fprintf(out, "announced: %s\n", strings.Join(ann, ", "))
	s := v.Stats
	fmt.Fprintf(out, "map-requests: %d sent into the ALT, %d forwarded, %d delivered; dropped: %d no route, %d TTL, %d not a Map-Request, %d queue full\n",
		s.Sent, s.Forwarded, s.Delivered, s.NoRoute, s.TTLExpired, s.NotMapRequest, s.QueueFull)
	if len(v.Sent) > 0 {
		fmt.Fprintf(out, "\nlast %d Map-Requests sent into the ALT (oldest first):\n", len(v.Sent))
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tEID\tROUTE\tNEXT HOP\tAS PATH\tAFTER DDT")
		for _, r := range v.Sent {
			var path []string
			for _, a := range r.ASPath {
				path = append(path, fmt.Sprint(a))
			}
			ddt := "-"
			if r.DDT != "" {
				ddt = r.DDT + " " + r.DDTPrefix.String()
			}
			fmt.Fprintf(tw, "%s\t[%d]%v\t%v\t%v\t%s\t%s\n", r.Time.Format("15:04:05.000"), r.IID, r.EID, r.Route, r.NextHop,
				strings.Join(path, " "), ddt)
		}
		tw.Flush()
	}
	if len(v.GREDropped) > 0 {
		var d []string
		for _, k := range sortedKeys(v.GREDropped) {
			d = append(d, fmt.Sprintf("%s %d", k, v.GREDropped[k]))
		}
		fmt.Fprintf(out, "gre dropped: %s\n", strings.Join(d, ", "))
	}
}

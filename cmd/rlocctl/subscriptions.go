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

// subscriptionsCmd lists the RFC 9437 subscriptions a Map-Server holds and
// the publish/subscribe counters of both ends (GET /v1/subscriptions).
func subscriptionsCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "subscriptions",
		Aliases: []string{"subs"},
		Short:   "List the Map-Server's subscriptions (RFC 9437)",
		Long: `subscriptions lists the ITRs subscribed to mappings on this Map-Server: per
subscription the xTR-ID and site-ID, the instance-ID and EID prefix, where the
Map-Notifies go, how many were sent and whether one awaits its Ack; then the
Map-Server's and the ITR's publish/subscribe counters (refused subscribers,
bounds reached, unacknowledged and badly signed Map-Notifies).`,
		Example: "  rlocctl subscriptions\n  rlocctl subs -o json\n  rlocctl subscriptions --watch=2s",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return list(o, "subscriptions", "/v1/subscriptions", printSubscriptions)
		},
	}
	addWatch(cmd, o)
	return cmd
}

func printSubscriptions(out io.Writer, s router.SubscriptionsInfo) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "XTR-ID\tSITE-ID\tIID\tEID\tITR-RLOCS\tNOTIFY\tSENT\tPENDING\tRENEWED")
	for _, r := range s.Subscriptions {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%d\t%t\t%s ago\n", r.XTRID, r.SiteID, r.IID, r.EID,
			strings.Join(r.ITRRLOCs, ", "), r.Notify, r.Notifies, r.Pending, time.Since(r.Renewed).Round(time.Second))
	}
	tw.Flush()
	fmt.Fprintf(out, "%d subscriptions\n", len(s.Subscriptions))
	for _, part := range []struct {
		title string
		m     map[string]uint64
	}{{"MAP-SERVER", s.MapServer}, {"ITR", s.ITR}} {
		if len(part.m) == 0 {
			continue
		}
		fmt.Fprintf(tw, "\n%s\tCOUNT\n", part.title)
		for _, k := range sortedKeys(part.m) {
			fmt.Fprintf(tw, "%s\t%d\n", k, part.m[k])
		}
		tw.Flush()
	}
}

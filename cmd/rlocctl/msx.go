package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rloc-router/rloc/router"
)

// msxCmd groups the mapping-system interconnect commands
// (docs/interconnect.md).
func msxCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "msx",
		Short: "Show the mapping-system interconnect (LISP-MSX)",
		Args:  cobra.NoArgs,
	}
	ags := &cobra.Command{
		Use:   "agreements",
		Short: "List the interconnect agreements with their state and counters",
		Long: `agreements lists the interconnect agreements with peer mapping systems
(GET /v1/msx/agreements): the peer's Map-Server/Map-Resolver addresses, the
mode (copy: answer from a copy of the peer's table; invoke: forward to the
peer's Map-Server; none: only serve the peer), the primitives allowed, the
filters shared with the peer and the peer's prefixes asked for, the rate
limit, the key's ID and algorithm (never its secret); then the state: our
subscription at the peer, the peer's subscriptions here, the size of the copy
and whether a bulk transfer completed, and the counters of both sides.

-o dot prints the interconnect as Graphviz input, -o svg draws it: this
mapping system, a box per agreement, and the peer's addresses (dashed while
the peer has sent nothing authenticated).`,
		Example:     "  rlocctl msx agreements\n  rlocctl msx agreements -o json\n  rlocctl msx agreements -o svg > interconnect.svg",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{formatsAnnotation: fmtDot + " " + fmtSVG},
		RunE: func(*cobra.Command, []string) error {
			return list(o, "msx agreements", "/v1/msx/agreements", func(w io.Writer, l []router.MSXAgreementInfo) {
				if !o.picture(w, "msx agreements", router.MSXPicture(l)) {
					printMSXAgreements(w, l)
				}
			})
		},
	}
	addWatch(ags, o)
	cmd.AddCommand(ags)
	return cmd
}

func printMSXAgreements(out io.Writer, l []router.MSXAgreementInfo) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPEERS\tMODE\tALLOW\tFILTERS\tPEER PREFIXES\tKEY\tSUBSCRIPTION\tSUBSCRIBED BY\tCOPY\tCOMPLETE")
	for _, a := range l {
		filters := strings.Join(a.Filters, ",")
		for _, iid := range a.InstanceIDs {
			filters += fmt.Sprintf(" iid %d", iid)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d/%s\t%d\t%d\t%d\t%t\n", a.Name, strings.Join(a.Peers, ","), a.Mode,
			strings.Join(a.Allow, ","), dash(strings.TrimSpace(filters)), dash(strings.Join(a.PeerPrefixes, ",")), a.KeyID, a.Alg,
			a.Subscription, a.SubscribedBy, a.Copy, a.Complete)
	}
	for _, a := range l {
		fmt.Fprintf(tw, "\n%s COUNTER\tVALUE\n", strings.ToUpper(a.Name))
		for _, k := range sortedKeys(a.Counters) {
			if a.Counters[k] != 0 {
				fmt.Fprintf(tw, "%s\t%d\n", k, a.Counters[k])
			}
		}
	}
	tw.Flush()
}

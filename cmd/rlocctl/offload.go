package main

import (
	"cmp"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rloc-router/rloc/router"
)

// offloadCmd shows the kernel offload of steady flows (docs/offload.md).
func offloadCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "offload",
		Short: "Show the flows the kernel's XDP programs forward themselves",
		Long: `offload shows the kernel offload (xdp.offload, xdp.offload_decap) as GET
/v1/offload returns it: per direction whether it is on, its epoch and whether
it is paused (an interface it redirects to does not take XDP redirects), its
counters, then the flows the kernel tables hold, the busiest first (at most
1000): the direction (encap: a site interface's program encapsulates the
flow; decap: a core interface's program delivers it), the instance-ID, the
inner destination, the RLOC selection bucket (encap, reencap), the RLOC
(encap, reencap: the remote one; decap: ours), the outer IP version of the
packets the entry takes (decap, reencap: a flow has an entry per version),
the interface the kernel sends the flow out of, the
epoch the entry was put in, whether the kernel uses it (only entries of the
current epoch are used: the others wait for the next sweep) and the packets
it sent through the entry. The router answers 404 while the offload is off.`,
		Example: "  rlocctl offload\n  rlocctl offload --watch\n  rlocctl offload -o json",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return list(o, "offload", "/v1/offload", func(w io.Writer, l router.OffloadInfo) { printOffload(w, l) })
		},
	}
	addWatch(cmd, o)
	return cmd
}

func printOffload(out io.Writer, l router.OffloadInfo) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DIRECTION\tON\tEPOCH\tPAUSED")
	for _, d := range []struct {
		name string
		d    router.OffloadDirectionInfo
	}{{"encap", l.Encap}, {"decap", l.Decap}} {
		fmt.Fprintf(tw, "%s\t%t\t%d\t%t\n", d.name, d.d.On, d.d.Epoch, d.d.Paused)
	}
	fmt.Fprintln(tw, "\nCOUNTER\tVALUE")
	for _, k := range sortedKeys(l.Counters) {
		fmt.Fprintf(tw, "%s\t%d\n", k, l.Counters[k])
	}
	fmt.Fprintf(tw, "\n%d flows in the kernel tables", l.Total)
	if len(l.Flows) < l.Total {
		fmt.Fprintf(tw, ", the %d busiest:", len(l.Flows))
	}
	fmt.Fprintln(tw)
	if len(l.Flows) > 0 {
		fmt.Fprintln(tw, "DIRECTION\tIID\tEID\tBUCKET\tRLOC\tOVER\tINTERFACE\tEPOCH\tUSED\tPACKETS")
	}
	for _, f := range l.Flows {
		bkt, over := "-", cmp.Or(f.Over, "-")
		if f.Direction != "decap" {
			bkt = fmt.Sprint(f.Bucket)
		}
		used := "yes"
		if !f.Current {
			used = "no (past epoch)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d\n", f.Direction, f.IID, f.EID, bkt, f.RLOC, over, f.Interface, f.Epoch, used, f.Packets)
	}
	tw.Flush()
}

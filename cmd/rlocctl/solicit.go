package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rloc-router/rloc/router"
)

// solicitCmd shows the ITR-to-ITR map-cache solicitation (GET /v1/solicit,
// docs/solicit.md).
func solicitCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "solicit",
		Short: "Show the map-cache solicitation between peer ITRs",
		Long: `solicit shows, per peer ITR, this router's copy of the peer's map-cache (pulling,
done or failed; pages and mappings installed) and whether the peer is paging
through this router's map-cache; then the counters of both sides: pages and
records sent, requests refused (unknown peer, bad authentication, replayed or
unknown cookie, nonce replay, rate limit), mappings installed or kept, and the
misses that waited for the copy at start and whether it answered them.`,
		Example: "  rlocctl solicit\n  rlocctl solicit -o json\n  rlocctl solicit --watch=1s",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return list(o, "solicit", "/v1/solicit", printSolicit)
		},
	}
	addWatch(cmd, o)
	return cmd
}

func printSolicit(out io.Writer, s router.SolicitInfo) {
	if !s.Enabled {
		fmt.Fprintln(out, "solicitation not configured (itr.solicit.peers)")
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tPULL\tPAGES\tINSTALLED\tSESSION\tSESSION-PAGES\tSESSION-ENTRIES")
	for _, p := range s.Peers {
		pull := p.Pull
		if pull == "" {
			pull = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%t\t%d\t%d\n", p.Addr, pull, p.Pages, p.Installed, p.Session, p.SessionPages, p.SessionEntries)
	}
	tw.Flush()
	fmt.Fprintf(out, "%d copies held from peers, holding misses: %t\n", s.Copies, s.Holding)
	fmt.Fprintf(tw, "\nCOUNTER\tCOUNT\n")
	for _, k := range sortedKeys(s.Counters) {
		fmt.Fprintf(tw, "%s\t%d\n", k, s.Counters[k])
	}
	tw.Flush()
}

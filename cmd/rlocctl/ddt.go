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

// ddtCmd groups the LISP-DDT commands (RFC 8111, docs/ddt.md).
func ddtCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ddt",
		Short: "Show the DDT node (RFC 8111)",
		Args:  cobra.NoArgs,
	}
	dele := &cobra.Command{
		Use:   "delegations",
		Short: "List the DDT node's authoritative prefixes and delegations",
		Long: `delegations lists what this DDT node answers for (GET /v1/ddt/delegations):
the XEID-prefixes it is authoritative for, then per delegation the instance-ID
and EID prefix, the referral type requests for it get (NODE-REFERRAL to child
DDT nodes, MS-REFERRAL to Map-Servers), the targets with their priorities and
weights and the incomplete bit; then the referral TTLs, whether referrals are
signed (and the key tag) and the Map-Referrals sent by type.

-o dot prints the delegations as Graphviz input, -o svg draws them (no
Graphviz needed): the node, a box per delegation, and the child DDT nodes and
Map-Servers they refer to.`,
		Example:     "  rlocctl ddt delegations\n  rlocctl ddt delegations -o json\n  rlocctl ddt delegations -o svg > delegations.svg",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{formatsAnnotation: fmtDot + " " + fmtSVG},
		RunE: func(*cobra.Command, []string) error {
			return list(o, "ddt delegations", "/v1/ddt/delegations", func(w io.Writer, l router.DDTInfo) {
				if !o.picture(w, "ddt delegations", router.DDTDelegationsPicture(l)) {
					printDDTDelegations(w, l)
				}
			})
		},
	}
	addWatch(dele, o)
	refs := &cobra.Command{
		Use:   "referrals",
		Short: "Show the DDT Map-Resolver's referral cache and counters",
		Long: `referrals shows a DDT Map-Resolver (map_resolver.ddt_roots) as GET
/v1/ddt/referrals returns it: its roots, the referral cache (instance-ID, EID
prefix, referral type, targets, incomplete bit, expiry; at most 1000 entries,
oldest first) and its counters (resolutions, MS-ACKs, referrals by type, cache
hits, referrals that made no progress, chains cut, timeouts, referrals dropped
for a missing or bad signature or for a prefix without the EID, referrals not
cached for their I or A bit; the names are those of rloc_ddt_resolver_total in
/metrics).

-o dot prints the tree the resolver has learned as Graphviz input, -o svg
draws it: the roots, then each cached referral under the most specific cached
referral that covers it; negative referrals are dashed.`,
		Example:     "  rlocctl ddt referrals\n  rlocctl ddt referrals -o json\n  rlocctl ddt referrals --watch\n  rlocctl ddt referrals -o dot | dot -Tpng > ddt.png",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{formatsAnnotation: fmtDot + " " + fmtSVG},
		RunE: func(*cobra.Command, []string) error {
			return list(o, "ddt referrals", "/v1/ddt/referrals", func(w io.Writer, l router.DDTResolverInfo) {
				if !o.picture(w, "ddt referrals", router.DDTReferralsPicture(l)) {
					printDDTReferrals(w, l)
				}
			})
		},
	}
	addWatch(refs, o)
	pend := &cobra.Command{
		Use:   "pending",
		Short: "List the DDT Map-Resolver's resolutions in progress",
		Long: `pending lists the resolutions a DDT Map-Resolver has in progress (GET
/v1/ddt/pending), oldest first, at most 1000: the ITR's nonce and address,
the instance-ID and EID, the delegation whose referral is being followed
("root" while the roots are asked) and the referrals followed so far, the
node or Map-Server asked last with the tries at this hop, the hop's targets
in asking order, and the age of the resolution.`,
		Example: "  rlocctl ddt pending\n  rlocctl ddt pending -o json\n  rlocctl ddt pending --watch",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return list(o, "ddt pending", "/v1/ddt/pending", printDDTPending)
		},
	}
	addWatch(pend, o)
	cmd.AddCommand(pend)
	cmd.Short = "Show the DDT node and the DDT Map-Resolver (RFC 8111)"
	cmd.AddCommand(dele, refs)
	return cmd
}

func printDDTReferrals(out io.Writer, l router.DDTResolverInfo) {
	fmt.Fprintf(out, "roots: %s\n", strings.Join(l.Roots, ", "))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nIID\tEID\tREFERRAL\tTARGETS\tINCOMPLETE\tEXPIRES IN")
	for _, r := range l.Referrals {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%t\t%s\n", r.IID, r.EID, r.Type, strings.Join(r.Targets, ", "), r.Incomplete,
			time.Until(r.Expires).Round(time.Second))
	}
	fmt.Fprintln(tw, "\nCOUNTER\tVALUE")
	for _, k := range sortedKeys(l.Counters) {
		fmt.Fprintf(tw, "%s\t%d\n", k, l.Counters[k])
	}
	tw.Flush()
	fmt.Fprintf(out, "%d cached referrals (%d shown)\n", l.Cached, len(l.Referrals))
}

func printDDTPending(out io.Writer, l router.DDTPendingList) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NONCE\tITR\tIID\tEID\tDELEGATION\tHOPS\tASKING\tTRIES\tTARGETS\tAGE")
	for _, p := range l.Pending {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", p.Nonce, p.ITR, p.IID, p.EID, p.Delegation, p.Hops,
			p.Target, p.Tries, strings.Join(p.Targets, ", "), time.Since(p.Started).Round(time.Millisecond))
	}
	tw.Flush()
	fmt.Fprintf(out, "%d resolutions in progress (%d shown)\n", l.Total, len(l.Pending))
}

func printDDTDelegations(out io.Writer, l router.DDTInfo) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AUTHORITATIVE\tIID\tEID")
	for _, a := range l.Authoritative {
		fmt.Fprintf(tw, "\t%d\t%s\n", a.IID, a.Prefix)
	}
	fmt.Fprintln(tw, "\nIID\tEID\tREFERRAL\tTARGETS (priority/weight)\tINCOMPLETE")
	for _, d := range l.Delegations {
		var ts []string
		for _, t := range d.Targets {
			ts = append(ts, fmt.Sprintf("%s (%d/%d)", t.Addr, t.Priority, t.Weight))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%t\n", d.IID, d.Prefix, d.Referral, strings.Join(ts, ", "), d.Incomplete)
	}
	tw.Flush()
	fmt.Fprintf(out, "%d delegations; referral TTL %v, hole TTL %v, not-authoritative TTL %v\n",
		len(l.Delegations), l.ReferralTTL, l.HoleTTL, l.NotAuthoritativeTTL)
	if l.Signed {
		fmt.Fprintf(out, "referrals signed (RSA-SHA256, key tag %d)\n", l.KeyTag)
	} else {
		fmt.Fprintln(out, "referrals not signed")
	}
	s := l.Stats
	fmt.Fprintf(out, "sent: %d NODE-REFERRAL, %d MS-REFERRAL, %d DELEGATION-HOLE, %d NOT-AUTHORITATIVE; %d signatures made, %d signing errors, %d malformed requests dropped\n",
		s.NodeReferrals, s.MSReferrals, s.DelegationHoles, s.NotAuthoritative, s.Signed, s.SignErrors, s.Malformed)
}

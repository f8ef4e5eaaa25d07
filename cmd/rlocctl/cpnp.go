package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rloc-router/rloc/router"
)

// cpnpCmd groups the CPNP negotiation commands (docs/cpnp.md).
func cpnpCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cpnp",
		Short: "Show the interconnect agreements negotiated with CPNP (RFC 8921)",
		Long: `cpnp lists the negotiation of interconnect agreements (GET /v1/cpnp): this
mapping system's identity and public key (what peers put on their trust
lists), each agreement with its peer, this side's role (customer: it ordered;
provider: it offered), both identifiers, the state (quotation-sent,
offer-received, accept-sent, offer-sent, agreed, declined, withdrawn, ...),
the prefixes and primitives asked, offered or agreed, and the interconnect
agreement it provisioned (rlocctl msx agreements); then the contacts the
customer orders from (configured or learned from BGP discovery) and the
counters.`,
		Example: "  rlocctl cpnp\n  rlocctl cpnp -o json\n  rlocctl cpnp --watch",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return list(o, "cpnp", "/v1/cpnp", printCPNP)
		},
	}
	addWatch(cmd, o)
	withdraw := &cobra.Command{
		Use:   "withdraw PEER CUSTOMER-ID",
		Short: "Withdraw an agreed agreement (either side)",
		Long: `withdraw ends the agreed agreement CUSTOMER-ID with the peer at PEER (its
address:port as listed; POST /v1/cpnp/withdraw): a WITHDRAW goes to the peer
and both sides remove the interconnect it provisioned. A customer that still
wants the peer's prefixes orders again after cpnp.retry_interval.`,
		Example: "  rlocctl cpnp withdraw 192.0.2.50:4342 domain1-5faadc61-802516529",
		Args:    cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			return o.client().do(o.ctx, "POST", "/v1/cpnp/withdraw", router.CPNPWithdrawal{Peer: args[0], CustomerID: args[1]}, nil)
		},
	}
	keygen := &cobra.Command{
		Use:   "keygen",
		Short: "Make an Ed25519 identity key for cpnp.private_key",
		Long: `keygen prints a new Ed25519 identity: the private key (its seed, for
cpnp.private_key or cpnp.private_key_file) and the public key (for the
cpnp.peers[].public_key of the peers that trust this mapping system).`,
		Example: "  rlocctl cpnp keygen    # private_key into this config, public_key to the peers",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "private_key: %s\npublic_key:  %s\n",
				base64.StdEncoding.EncodeToString(priv.Seed()), base64.StdEncoding.EncodeToString(pub))
			return err
		},
	}
	cmd.AddCommand(withdraw, keygen)
	return cmd
}

func printCPNP(out io.Writer, l router.CPNPInfo) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "identity %s, public key %s\n\n", l.Identity, l.PublicKey)
	fmt.Fprintln(tw, "PEER\tNAME\tROLE\tCUSTOMER ID\tPROVIDER ID\tSTATE\tPREFIXES\tPRIMITIVES\tDURATION\tINTERCONNECT")
	for _, a := range l.Agreements {
		state := a.State
		if a.Updating {
			state += " (updating)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Peer, dash(a.PeerName), a.Role, a.CustomerID, dash(a.ProviderID),
			state, dash(strings.Join(a.Prefixes, ",")), dash(strings.Join(a.Primitives, ",")), dash(a.Duration), dash(a.Interconnect))
	}
	fmt.Fprintln(tw, "\nCONTACT\tSOURCE\tPREFIXES")
	for _, c := range l.Contacts {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Contact, c.Source, dash(strings.Join(c.Prefixes, ",")))
	}
	fmt.Fprintln(tw, "\nCOUNTER\tVALUE")
	for _, s := range []any{l.Stats, l.Negotiator} {
		v := reflect.ValueOf(s)
		for i := range v.NumField() {
			if f := v.Field(i); f.Kind() == reflect.Uint64 && f.Uint() != 0 {
				fmt.Fprintf(tw, "%s\t%d\n", strings.Split(v.Type().Field(i).Tag.Get("json"), ",")[0], f.Uint())
			}
		}
	}
	tw.Flush()
}

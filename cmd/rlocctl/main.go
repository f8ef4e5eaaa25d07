// Command rlocctl talks to a running rlocd over its management socket and
// prints tables, JSON or YAML:
//
//	rlocctl map-cache [IID EID]                        the map-cache, or one entry
//	rlocctl map-cache add IID EID [RLOC[/PRIO/WEIGHT]...] [--action A]
//	rlocctl map-cache del IID EID
//	rlocctl database [add IID EID RLOC[/PRIO/WEIGHT]... | del IID EID]
//	rlocctl registrations
//	rlocctl stats
//	rlocctl events [-n COUNT]                          stream events
//	rlocctl mcast tree [--iid IID] [S|* G] [-o dot|svg] an (S,G) replication tree, or all
//	rlocctl json PATH                                  raw GET of an API path
//	rlocctl version | completion SHELL | gen man DIR
//
// Every command takes -s/--socket (default $RLOC_MGMT_SOCKET or
// /run/rloc/rlocd.sock) and -o table|json|yaml; listings take
// --watch[=INTERVAL]. `rlocctl help COMMAND` has the details and examples.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rloc-router/rloc/internal/buildinfo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	o := &options{ctx: ctx, out: os.Stdout, clear: isTerminal(os.Stdout)}
	err := execute(o, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rlocctl:", err)
		os.Exit(1)
	}
}

func execute(o *options, args []string) error {
	root := newRoot(o)
	root.SetArgs(legacyFlags(root, args))
	return root.Execute()
}

// newRoot builds the command tree; o receives the parsed global flags.
func newRoot(o *options) *cobra.Command {
	root := &cobra.Command{
		Use:   "rlocctl",
		Short: "Inspect and change a running rlocd",
		Long: `rlocctl talks to a running rlocd over its management socket (a Unix socket,
by default $RLOC_MGMT_SOCKET or ` + defaultSocket + `; members of the rloc group
may use it). Every command prints a table, or JSON or YAML with -o.`,
		Example: `  rlocctl map-cache
  rlocctl map-cache -o json
  rlocctl stats --watch
  rlocctl -s /tmp/lab/xtr1.sock registrations`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return fmt.Errorf("no command given; see rlocctl --help")
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return checkFormatFor(cmd, o.output) },
	}
	root.SetOut(o.out)
	root.SetErr(o.out)
	pf := root.PersistentFlags()
	pf.StringVarP(&o.sock, "socket", "s", socketDefault(), "rlocd management `SOCKET`")
	pf.StringVarP(&o.output, "output", "o", fmtTable, "output `FORMAT`: table, json or yaml (mcast tree: also dot, svg)")
	_ = root.RegisterFlagCompletionFunc("output", completeFormats)
	root.AddCommand(mapCacheCmd(o), databaseCmd(o), registrationsCmd(o), subscriptionsCmd(o), solicitCmd(o), ddtCmd(o), altCmd(o), discoveryCmd(o), msxCmd(o), cpnpCmd(o), offloadCmd(o), statsCmd(o), eventsCmd(o), mcastCmd(o),
		jsonCmd(o), versionCmd(o), genCmd(root))
	return root
}

// legacyFlags rewrites the single-dash long flags of the old flag-package
// syntax (-action drop, -iid 5) to their double-dash form, so scripts
// written for it keep working.
func legacyFlags(root *cobra.Command, args []string) []string {
	long := map[string]bool{}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		add := func(f *pflag.Flag) {
			if len(f.Name) > 1 {
				long[f.Name] = true
			}
		}
		c.LocalFlags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if a == "--" {
			copy(out[i:], args[i:])
			break
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			if long[name] {
				out[i] = "-" + a
			}
		}
	}
	return out
}

func versionCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print rlocctl's version, commit and Go version",
		Example: "  rlocctl version\n  rlocctl version -o json",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			in := buildinfo.Read("rlocctl")
			return o.emit(in, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, in)
				return err
			})
		},
	}
}

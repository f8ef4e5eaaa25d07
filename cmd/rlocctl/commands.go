package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rloc-router/rloc/router"
)

func keyQuery(iid, eid string) (string, error) {
	if _, err := strconv.ParseUint(iid, 10, 24); err != nil {
		return "", fmt.Errorf("IID %q is not a 24-bit number", iid)
	}
	return "?iid=" + iid + "&eid=" + url.QueryEscape(eid), nil
}

func parseIID(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 24)
	if err != nil {
		return 0, fmt.Errorf("IID %q is not a 24-bit number", s)
	}
	return uint32(v), nil
}

// parseRLOCArgs reads RLOC[/PRIO/WEIGHT] arguments.
func parseRLOCArgs(args []string) ([]router.RLOCInfo, error) {
	var out []router.RLOCInfo
	for _, a := range args {
		parts := strings.Split(a, "/")
		r := router.RLOCInfo{Addr: parts[0], Priority: 1, Weight: 100}
		if len(parts) > 3 {
			return nil, fmt.Errorf("RLOC %q: want ADDR[/PRIORITY/WEIGHT]", a)
		}
		for i, p := range parts[1:] {
			v, err := strconv.ParseUint(p, 10, 8)
			if err != nil {
				return nil, fmt.Errorf("RLOC %q: %q is not 0..255", a, p)
			}
			if i == 0 {
				r.Priority = uint8(v)
			} else {
				r.Weight = uint8(v)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// result is the answer of a change in -o json/yaml.
type result struct {
	Result string `json:"result"`
	IID    string `json:"iid"`
	EID    string `json:"eid"`
}

// printResult prints a change's outcome: msg as a table, a result object
// otherwise.
func (o *options) printResult(msg, iid, eid string) error {
	return o.emit(result{Result: msg, IID: iid, EID: eid}, func(w io.Writer) error {
		_, err := fmt.Fprintln(w, msg)
		return err
	})
}

// list fetches path into a value of type T and shows it with table.
func list[T any](o *options, title, path string, table func(io.Writer, T)) error {
	return o.show(title, func(ctx context.Context) (any, func(io.Writer) error, error) {
		var v T
		if err := o.client().do(ctx, "GET", path, nil, &v); err != nil {
			return nil, nil, err
		}
		return v, func(w io.Writer) error { table(w, v); return nil }, nil
	})
}

func mapCacheCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "map-cache [IID EID]",
		Aliases: []string{"mc"},
		Short:   "List the map-cache, or show one entry",
		Long: `map-cache lists the router's map-cache: per entry the instance-ID, the EID
prefix, the RLOCs with priority, weight and reachability (or the action of a
negative entry), the TTL and the time to expiry. With IID and EID it shows the
entry that covers EID in that instance.`,
		Example: `  rlocctl map-cache
  rlocctl map-cache 0 10.1.0.7
  rlocctl mc -o yaml
  rlocctl map-cache --watch=1s`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 && len(args) != 2 {
				return fmt.Errorf("map-cache takes no argument, IID EID, or add/del (got %d arguments)", len(args))
			}
			return nil
		},
		ValidArgsFunction: o.completeKeys("/v1/map-cache"),
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 2 {
				q, err := keyQuery(args[0], args[1])
				if err != nil {
					return err
				}
				return o.show("map-cache "+args[0]+" "+args[1], func(ctx context.Context) (any, func(io.Writer) error, error) {
					var e router.MapCacheEntry
					if err := o.client().do(ctx, "GET", "/v1/map-cache"+q, nil, &e); err != nil {
						return nil, nil, err
					}
					return e, func(w io.Writer) error { printMapCache(w, []router.MapCacheEntry{e}); return nil }, nil
				})
			}
			return list(o, "map-cache", "/v1/map-cache", printMapCache)
		},
	}
	addWatch(cmd, o)
	var action string
	add := &cobra.Command{
		Use:   "add IID EID [RLOC[/PRIORITY/WEIGHT]...]",
		Short: "Add a static map-cache entry",
		Long: `add installs a static entry: EID (a prefix or an address) in instance IID
reaches the given RLOCs (priority 1 and weight 100 unless given). Without
RLOCs the entry is negative and --action says what to do with its packets.`,
		Example: `  rlocctl map-cache add 0 10.9.0.0/16 192.0.2.9 198.51.100.9/2/50
  rlocctl map-cache add --action drop 0 198.51.100.0/24`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			iid, err := parseIID(args[0])
			if err != nil {
				return err
			}
			rl, err := parseRLOCArgs(args[2:])
			if err != nil {
				return err
			}
			var e router.MapCacheEntry
			if err := o.client().do(o.ctx, "POST", "/v1/map-cache", router.MapCacheEntry{IID: iid, EID: args[1], RLOCs: rl, Action: action}, &e); err != nil {
				return err
			}
			return o.emit(e, func(w io.Writer) error { printMapCache(w, []router.MapCacheEntry{e}); return nil })
		},
	}
	add.Flags().StringVar(&action, "action", "", "`ACTION` of a negative entry: no-action, natively-forward, send-map-request, drop, drop-policy-denied, drop-auth-failure")
	_ = add.RegisterFlagCompletionFunc("action", fixed("no-action", "natively-forward", "send-map-request", "drop", "drop-policy-denied", "drop-auth-failure"))
	cmd.AddCommand(add, delCmd(o, "/v1/map-cache", "Delete a map-cache entry", "  rlocctl map-cache del 0 10.9.0.0/16"))
	return cmd
}

func databaseCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "database",
		Aliases: []string{"db"},
		Short:   "List the ETR's database mappings",
		Long: `database lists the local EID-prefixes this ETR registers and answers for, with
their RLOCs and TTL.`,
		Example: "  rlocctl database\n  rlocctl db -o json",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return list(o, "database", "/v1/database", printDatabase)
		},
	}
	addWatch(cmd, o)
	add := &cobra.Command{
		Use:   "add IID EID RLOC[/PRIORITY/WEIGHT]...",
		Short: "Add a database mapping and register it",
		Example: `  rlocctl database add 0 10.1.0.0/24 192.0.2.1
  rlocctl database add 7 2001:db8:a::/48 192.0.2.1/1/50 192.0.2.2/1/50`,
		Args: cobra.MinimumNArgs(3),
		RunE: func(_ *cobra.Command, args []string) error {
			iid, err := parseIID(args[0])
			if err != nil {
				return err
			}
			rl, err := parseRLOCArgs(args[2:])
			if err != nil {
				return err
			}
			if err := o.client().do(o.ctx, "POST", "/v1/database", router.DatabaseMapping{IID: iid, EID: args[1], RLOCs: rl}, nil); err != nil {
				return err
			}
			return o.printResult("added; registering", args[0], args[1])
		},
	}
	cmd.AddCommand(add, delCmd(o, "/v1/database", "Delete a database mapping", "  rlocctl database del 0 10.1.0.0/24"))
	return cmd
}

// delCmd is the "del IID EID" subcommand of a table of the API at path.
func delCmd(o *options, path, short, example string) *cobra.Command {
	return &cobra.Command{
		Use:               "del IID EID",
		Short:             short,
		Example:           example,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: o.completeKeys(path),
		RunE: func(_ *cobra.Command, args []string) error {
			q, err := keyQuery(args[0], args[1])
			if err != nil {
				return err
			}
			if err := o.client().do(o.ctx, "DELETE", path+q, nil, nil); err != nil {
				return err
			}
			return o.printResult("deleted", args[0], args[1])
		},
	}
}

func registrationsCmd(o *options) *cobra.Command {
	var limit, pageSize int
	var after string
	cmd := &cobra.Command{
		Use:     "registrations",
		Aliases: []string{"regs"},
		Short:   "List the Map-Server's registrations",
		Long: `registrations lists the EID-prefixes ETRs have registered with this Map-Server: site, instance, RLOCs, sender and time to expiry.
The router answers in pages (--page-size each); rlocctl fetches them all, or with --limit only the first
page after --after, printing the cursor of the next one on stderr.`,
		Example: "  rlocctl registrations\n  rlocctl regs -o yaml\n  rlocctl registrations --watch=5s\n  rlocctl regs --limit 100 --after 'eid|0|10.1.2.0/24|xtr-id 0a01'",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return o.show("registrations", func(ctx context.Context) (any, func(io.Writer) error, error) {
				regs, err := fetchRegistrations(ctx, o, limit, pageSize, after, o.stderr())
				if err != nil {
					return nil, nil, err
				}
				return regs, func(w io.Writer) error { printRegistrations(w, regs); return nil }, nil
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 0, "list at most this many (one page; 0: all, fetched page by page)")
	cmd.Flags().StringVar(&after, "after", "", "start after this cursor (printed by --limit)")
	cmd.Flags().IntVar(&pageSize, "page-size", 1000, "registrations per request when listing all (at most 10000)")
	addWatch(cmd, o)
	return cmd
}

// fetchRegistrations gets the registrations page by page: all of them, or
// with limit > 0 one page, whose next cursor goes to stderr.
func fetchRegistrations(ctx context.Context, o *options, limit, size int, after string, errw io.Writer) ([]router.RegistrationInfo, error) {
	all := []router.RegistrationInfo{}
	if limit > 0 {
		size = limit
	}
	for {
		q := url.Values{"limit": {strconv.Itoa(size)}}
		if after != "" {
			q.Set("after", after)
		}
		var page []router.RegistrationInfo
		h, err := o.client().doHeader(ctx, "GET", "/v1/registrations?"+q.Encode(), nil, &page)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		after = h.Get("X-Rloc-Next")
		if after == "" {
			return all, nil
		}
		if limit > 0 {
			fmt.Fprintf(errw, "more after: %s\n", after)
			return all, nil
		}
	}
}

func statsCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "stats",
		Short:   "Print the router's counters",
		Long:    "stats prints the fast-path packet and drop counters, the control messages by type and result, the control-plane events, the resolution latency and the map-cache size.",
		Example: "  rlocctl stats\n  rlocctl stats --watch\n  rlocctl stats -o json",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return list(o, "stats", "/v1/stats", func(w io.Writer, s router.Stats) { printStats(w, &s) })
		},
	}
	addWatch(cmd, o)
	return cmd
}

func eventsCmd(o *options) *cobra.Command {
	var n int
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Stream the router's events",
		Long: `events prints the router's events as they happen (registrations, mappings
installed and expired, RLOCs going up and down) until interrupted, or until
COUNT events with -n. -o json prints one JSON object per line.`,
		Example: "  rlocctl events\n  rlocctl events -n 10 -o json",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return o.events(n)
		},
	}
	cmd.Flags().IntVarP(&n, "count", "n", 0, "stop after `COUNT` events (0: run until interrupted)")
	return cmd
}

func (o *options) events(n int) error {
	resp, err := o.client().send(o.ctx, "GET", "/v1/events", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("events: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	seen := 0
	for sc.Scan() {
		var ev router.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("events: bad line: %w", err)
		}
		switch o.output {
		case fmtJSON:
			b, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			fmt.Fprintf(o.out, "%s\n", b)
		case fmtYAML:
			if seen > 0 {
				fmt.Fprintln(o.out, "---")
			}
			if err := o.emit(ev, nil); err != nil {
				return err
			}
		default:
			fmt.Fprintln(o.out, eventLine(ev))
		}
		if seen++; n > 0 && seen >= n {
			return nil
		}
	}
	if o.ctx.Err() != nil {
		return nil
	}
	return sc.Err()
}

func eventLine(ev router.Event) string {
	line := fmt.Sprintf("%s %-22s", ev.Time.Format("15:04:05.000"), ev.Kind)
	if ev.EID != "" {
		line += fmt.Sprintf(" iid %d %s", ev.IID, ev.EID)
	}
	if ev.RLOC != "" {
		state := "down"
		if ev.Up {
			state = "up"
		}
		line += " rloc " + ev.RLOC + " " + state
	}
	if len(ev.RLOCs) > 0 {
		line += " -> " + strings.Join(ev.RLOCs, ", ")
	}
	if ev.Source != "" {
		line += " from " + ev.Source
	}
	if ev.Detail != "" {
		line += " (" + ev.Detail + ")"
	}
	return line
}

// mcastCmd is "mcast tree": the router's view of an (S,G) replication tree
// (docs/multicast.md).
func mcastCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mcast",
		Short: "Multicast state",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return fmt.Errorf("mcast: want mcast tree [--iid IID] [S|* G]")
		},
	}
	var iid uint32
	tree := &cobra.Command{
		Use:   "tree [--iid IID] [S|* G]",
		Short: "Show this router's part of an (S,G) replication tree, or draw every tree",
		Long: `tree shows the router's role in the replication tree of source S (or * for
any source) and group G: its level, parent, children, the upstream and failed
replicators, and the merged replication list a Map-Server holds. Without S and
G it shows every tree the router knows (a Map-Server: every (S,G) registered).
-o dot prints the trees as Graphviz input, -o svg draws them (no Graphviz
needed): the ITR on top, one row per RTR level, the receivers' ETRs below.`,
		Example: `  rlocctl mcast tree '*' 239.1.1.1
  rlocctl mcast tree --iid 7 10.1.0.5 232.1.1.1 -o json
  rlocctl mcast tree -o svg > trees.svg
  rlocctl mcast tree '*' 239.1.1.1 -o dot | dot -Tpng > tree.png`,
		Annotations: map[string]string{formatsAnnotation: fmtDot + " " + fmtSVG},
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 0 && len(args) != 2 {
				return fmt.Errorf("mcast tree: want a source (or *) and a group, or nothing for every tree")
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error { return o.mcastTree(iid, args) },
	}
	tree.Flags().Uint32Var(&iid, "iid", 0, "instance-ID")
	_ = tree.RegisterFlagCompletionFunc("iid", o.completeIIDs("/v1/map-cache"))
	addWatch(tree, o)
	cmd.AddCommand(tree)
	return cmd
}

func jsonCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:     "json PATH",
		Short:   "Raw GET of a management API path",
		Example: "  rlocctl json /v1/stats\n  rlocctl json '/v1/map-cache?iid=0&eid=10.1.0.7'",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("json needs an API path, e.g. /v1/stats")
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			var b []byte
			if err := o.client().do(o.ctx, "GET", args[0], nil, &b); err != nil {
				return err
			}
			_, err := o.out.Write(b)
			return err
		},
	}
}

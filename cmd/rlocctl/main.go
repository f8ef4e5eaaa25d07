// Command rlocctl talks to a running rlocd over its management socket and
// prints readable tables:
//
//	rlocctl [-s SOCKET] map-cache [IID EID]        list the map-cache (or one entry)
//	rlocctl [-s SOCKET] map-cache add IID EID [RLOC[/PRIO/WEIGHT]...] [--action A]
//	rlocctl [-s SOCKET] map-cache del IID EID
//	rlocctl [-s SOCKET] database [add IID EID RLOC[/PRIO/WEIGHT]... | del IID EID]
//	rlocctl [-s SOCKET] registrations
//	rlocctl [-s SOCKET] stats
//	rlocctl [-s SOCKET] events [-n COUNT]           stream events (NDJSON → lines)
//	rlocctl [-s SOCKET] mcast tree [-iid IID] S|* G     an (S,G) replication tree
//	rlocctl [-s SOCKET] json PATH                   raw GET of an API path
//
// SOCKET defaults to $RLOC_MGMT_SOCKET or /run/rloc/rlocd.sock.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rloc-router/rloc/router"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rlocctl:", err)
		os.Exit(1)
	}
}

// client is an HTTP client over the Unix socket.
type client struct {
	hc *http.Client
}

func newClient(sock string) *client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	return &client{hc: &http.Client{Transport: tr}}
}

func (c *client) do(method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://rlocd"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = b
		return nil
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

const usage = `usage: rlocctl [-s SOCKET] COMMAND
  map-cache [IID EID]                         list the map-cache, or one entry
  map-cache add IID EID [RLOC[/PRIO/WEIGHT]...] [-action A]
  map-cache del IID EID
  database                                    the ETR's database mappings
  database add IID EID RLOC[/PRIO/WEIGHT]...
  database del IID EID
  registrations                               the Map-Server's registrations
  stats                                       counters
  events [-n COUNT]                           stream events
  mcast tree [-iid IID] S|* G                 an (S,G) replication tree
  json PATH                                   raw GET of an API path`

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("rlocctl", flag.ContinueOnError)
	def := os.Getenv("RLOC_MGMT_SOCKET")
	if def == "" {
		def = "/run/rloc/rlocd.sock"
	}
	sock := fs.String("s", def, "rlocd management socket")
	fs.Usage = func() { fmt.Fprintln(fs.Output(), usage) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	args = fs.Args()
	if len(args) == 0 {
		return errors.New("no command\n" + usage)
	}
	c := newClient(*sock)
	cmd, args := args[0], args[1:]
	switch cmd {
	case "map-cache", "mc":
		return mapCache(c, args, out)
	case "database", "db":
		return database(c, args, out)
	case "registrations", "regs":
		var regs []router.RegistrationInfo
		if err := c.do("GET", "/v1/registrations", nil, &regs); err != nil {
			return err
		}
		printRegistrations(out, regs)
		return nil
	case "stats":
		var s router.Stats
		if err := c.do("GET", "/v1/stats", nil, &s); err != nil {
			return err
		}
		printStats(out, &s)
		return nil
	case "events":
		efs := flag.NewFlagSet("events", flag.ContinueOnError)
		n := efs.Int("n", 0, "stop after COUNT events (0: run until interrupted)")
		if err := efs.Parse(args); err != nil {
			return err
		}
		return events(c, *n, out)
	case "mcast":
		return mcast(c, args, out)
	case "json":
		if len(args) != 1 {
			return errors.New("json needs an API path, e.g. /v1/stats")
		}
		var b []byte
		if err := c.do("GET", args[0], nil, &b); err != nil {
			return err
		}
		_, err := out.Write(b)
		return err
	case "help", "-h":
		fmt.Fprintln(out, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

func keyQuery(iid, eid string) (string, error) {
	if _, err := strconv.ParseUint(iid, 10, 24); err != nil {
		return "", fmt.Errorf("IID %q is not a 24-bit number", iid)
	}
	return "?iid=" + iid + "&eid=" + url.QueryEscape(eid), nil
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

func mapCache(c *client, args []string, out io.Writer) error {
	if len(args) > 0 && (args[0] == "add" || args[0] == "del") {
		op := args[0]
		afs := flag.NewFlagSet("map-cache "+op, flag.ContinueOnError)
		action := afs.String("action", "", "action of a negative entry (natively-forward, drop, ...)")
		if err := afs.Parse(args[1:]); err != nil {
			return err
		}
		rest := afs.Args()
		if len(rest) < 2 {
			return fmt.Errorf("map-cache %s needs IID and EID", op)
		}
		if op == "del" {
			q, err := keyQuery(rest[0], rest[1])
			if err != nil {
				return err
			}
			if err := c.do("DELETE", "/v1/map-cache"+q, nil, nil); err != nil {
				return err
			}
			fmt.Fprintln(out, "deleted")
			return nil
		}
		iid, err := strconv.ParseUint(rest[0], 10, 24)
		if err != nil {
			return fmt.Errorf("IID %q is not a 24-bit number", rest[0])
		}
		rl, err := parseRLOCArgs(rest[2:])
		if err != nil {
			return err
		}
		var e router.MapCacheEntry
		if err := c.do("POST", "/v1/map-cache", router.MapCacheEntry{IID: uint32(iid), EID: rest[1], RLOCs: rl, Action: *action}, &e); err != nil {
			return err
		}
		printMapCache(out, []router.MapCacheEntry{e})
		return nil
	}
	if len(args) == 2 {
		q, err := keyQuery(args[0], args[1])
		if err != nil {
			return err
		}
		var e router.MapCacheEntry
		if err := c.do("GET", "/v1/map-cache"+q, nil, &e); err != nil {
			return err
		}
		printMapCache(out, []router.MapCacheEntry{e})
		return nil
	}
	if len(args) != 0 {
		return errors.New("map-cache takes no argument, IID EID, or add/del")
	}
	var es []router.MapCacheEntry
	if err := c.do("GET", "/v1/map-cache", nil, &es); err != nil {
		return err
	}
	printMapCache(out, es)
	return nil
}

func database(c *client, args []string, out io.Writer) error {
	switch {
	case len(args) == 0:
		var ds []router.DatabaseMapping
		if err := c.do("GET", "/v1/database", nil, &ds); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "IID\tEID\tRLOCS (prio/weight)\tTTL")
		for _, d := range ds {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", d.IID, d.EID, rlocList(d.RLOCs, false), dash(d.TTL))
		}
		return tw.Flush()
	case args[0] == "add" && len(args) >= 4:
		iid, err := strconv.ParseUint(args[1], 10, 24)
		if err != nil {
			return fmt.Errorf("IID %q is not a 24-bit number", args[1])
		}
		rl, err := parseRLOCArgs(args[3:])
		if err != nil {
			return err
		}
		if err := c.do("POST", "/v1/database", router.DatabaseMapping{IID: uint32(iid), EID: args[2], RLOCs: rl}, nil); err != nil {
			return err
		}
		fmt.Fprintln(out, "added; registering")
		return nil
	case args[0] == "del" && len(args) == 3:
		q, err := keyQuery(args[1], args[2])
		if err != nil {
			return err
		}
		if err := c.do("DELETE", "/v1/database"+q, nil, nil); err != nil {
			return err
		}
		fmt.Fprintln(out, "deleted")
		return nil
	}
	return errors.New("database takes no argument, add IID EID RLOC..., or del IID EID")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func rlocList(rs []router.RLOCInfo, reach bool) string {
	if len(rs) == 0 {
		return "-"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%s %d/%d", r.Addr, r.Priority, r.Weight)
		if reach {
			if r.Reachable {
				parts[i] += " up"
			} else {
				parts[i] += " DOWN"
			}
		}
	}
	return strings.Join(parts, ", ")
}

func printMapCache(out io.Writer, es []router.MapCacheEntry) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IID\tEID\tRLOCS (prio/weight state) / ACTION\tTTL\tEXPIRES\tFLAGS")
	for _, e := range es {
		what := rlocList(e.RLOCs, true)
		if e.Negative {
			what = "negative: " + e.Action
		}
		exp := "never"
		if !e.Expires.IsZero() {
			exp = time.Until(e.Expires).Round(time.Second).String()
		}
		ttl := strconv.FormatUint(uint64(e.TTL), 10) + "m"
		flags := ""
		if e.Static {
			flags = "static"
			ttl = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.IID, e.EID, what, ttl, exp, flags)
	}
	tw.Flush()
	fmt.Fprintf(out, "%d entries\n", len(es))
}

func printRegistrations(out io.Writer, regs []router.RegistrationInfo) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tIID\tEID\tRLOCS\tFROM\tEXPIRES")
	for _, r := range regs {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", r.Site, r.IID, r.EID, strings.Join(r.RLOCs, ", "), r.Source,
			time.Until(r.Expires).Round(time.Second))
	}
	tw.Flush()
	fmt.Fprintf(out, "%d registrations\n", len(regs))
}

func sortedKeys(m map[string]uint64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func printStats(out io.Writer, s *router.Stats) {
	fmt.Fprintf(out, "router %s, up %s, %d workers\n", s.Name, s.Uptime, s.Workers)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if len(s.Fastpath) > 0 {
		fmt.Fprintln(tw, "\nFAST PATH\tPACKETS")
		for _, k := range sortedKeys(s.Fastpath) {
			if v := s.Fastpath[k]; v > 0 || k == "rx" || k == "tx" {
				fmt.Fprintf(tw, "%s\t%d\n", k, v)
			}
		}
		for _, k := range sortedKeys(s.Drops) {
			fmt.Fprintf(tw, "drop %s\t%d\n", k, s.Drops[k])
		}
	}
	if len(s.Messages) > 0 {
		fmt.Fprintln(tw, "\nCONTROL MESSAGE\tRECEIVED\tSENT\tBAD-PARSE\tBAD-AUTH\tRATE-LIMITED\tREJECTED\tIGNORED")
		for _, m := range s.Messages {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\n", m.Type, m.Received, m.Sent, m.BadParse, m.BadAuth,
				m.RateLimited, m.Rejected, m.Ignored)
		}
	}
	if len(s.Control) > 0 {
		fmt.Fprintln(tw, "\nCONTROL PLANE\tCOUNT")
		for _, k := range sortedKeys(s.Control) {
			if v := s.Control[k]; v > 0 {
				fmt.Fprintf(tw, "%s\t%d\n", k, v)
			}
		}
	}
	if len(s.LatencyMS) > 0 {
		fmt.Fprintf(tw, "\nresolution latency\tcount %s, mean %s, p50 %s, p99 %s\n", s.LatencyMS["count"],
			s.LatencyMS["mean"], s.LatencyMS["p50"], s.LatencyMS["p99"])
	}
	fmt.Fprintf(tw, "\nmap-cache\t%d entries (%d negative, %d static)\n", s.Cache.Entries, s.Cache.Negative, s.Cache.Static)
	tw.Flush()
}

func events(c *client, n int, out io.Writer) error {
	req, err := http.NewRequest("GET", "http://rlocd/v1/events", nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
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
		fmt.Fprintln(out, line)
		if seen++; n > 0 && seen >= n {
			return nil
		}
	}
	return sc.Err()
}

// mcast runs "mcast tree [-iid IID] S G": the router's view of the (S,G)
// replication tree (docs/multicast.md).
func mcast(c *client, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "tree" {
		return errors.New("mcast: want mcast tree [-iid IID] S|* G")
	}
	fs := flag.NewFlagSet("mcast tree", flag.ContinueOnError)
	iid := fs.Uint("iid", 0, "instance-ID")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return errors.New("mcast tree: want a source (or *) and a group")
	}
	q := url.Values{"iid": {strconv.FormatUint(uint64(*iid), 10)}, "source": {fs.Arg(0)}, "group": {fs.Arg(1)}}
	var v router.McastTreeView
	if err := c.do("GET", "/v1/mcast/tree?"+q.Encode(), nil, &v); err != nil {
		return err
	}
	_, err := io.WriteString(out, strings.TrimRight(v.Text, "\n")+"\n")
	return err
}

// Command lig, the LISP Internet Groper, asks a Map-Resolver for the mapping
// of an EID and prints the Map-Reply:
//
//	lig EID [--mr ADDR[:PORT]] [--iid N] [--count N] [--timeout D] [--source ADDR[:PORT]]
//	lig EID --ddt ROOT[:PORT] [--max-hops N] [--iid N] [--count N] [--timeout D] [--source ADDR[:PORT]]
//	lig EID --mr ADDR[:PORT] --alt-path SOCKET [...]
//	lig --version
//
// EID is an address or a prefix. The Map-Request travels in an Encapsulated
// Control Message to the Map-Resolver on UDP 4342 (RFC 9301 §5.8); its
// ITR-RLOC is the local address used to reach the Map-Resolver, so the
// Map-Reply may come from the Map-Resolver, a proxying Map-Server or the
// ETR itself. Without --mr the LISP_MAP_RESOLVER environment variable
// names the Map-Resolver. With --ddt, lig walks a LISP-DDT tree itself
// (RFC 8111) from the root given, following the Map-Referrals, and prints
// each hop (TraceDDT) before the Map-Reply or the negative answer. With
// --alt-path, lig then asks the Map-Resolver's management socket (rlocd's
// GET /v1/alt) which ALT route it sent the answered Map-Request by and
// prints the ALT path: the route's prefix, the next ALT router, the AS
// path toward the ALT router that originates the prefix, and what DDT
// answered first when it was asked (ALTPath, PrintALTPath); or that the
// request did not go into the ALT. lig exits 1 on error, 2 when no reply
// came.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/rloc-router/rloc/internal/buildinfo"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if buildinfo.Requested(args) {
		fmt.Fprintln(stdout, buildinfo.Read("lig"))
		return 0
	}
	q, err := parseArgs(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "lig:", err)
		return 1
	}
	if q.DDT {
		tr, err := TraceDDT(ctx, q, q.MaxHops)
		if tr != nil {
			if perr := PrintTrace(stdout, q, tr); perr != nil {
				fmt.Fprintln(stderr, "lig:", perr)
				return 1
			}
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			if errors.Is(err, ErrNoReply) || errors.Is(err, ErrNoAnswer) {
				return 2
			}
			return 1
		}
		return 0
	}
	r, err := Lookup(ctx, q)
	if err != nil {
		fmt.Fprintln(stderr, err)
		if errors.Is(err, ErrNoReply) {
			return 2
		}
		return 1
	}
	if err := Print(stdout, q, r); err != nil {
		fmt.Fprintln(stderr, "lig:", err)
		return 1
	}
	if q.ALTPath != "" {
		h, err := ALTPath(ctx, q.ALTPath, r.Reply.Nonce)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		if err := PrintALTPath(stdout, q, r, h); err != nil {
			fmt.Fprintln(stderr, "lig:", err)
			return 1
		}
	}
	return 0
}

func parseArgs(args []string, stderr io.Writer) (Query, error) {
	fs := flag.NewFlagSet("lig", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: lig EID [--mr ADDR[:PORT] [--alt-path SOCKET] | --ddt ROOT[:PORT] [--max-hops N]] [--iid N] [--count N] [--timeout D] [--source ADDR[:PORT]]")
		fs.PrintDefaults()
	}
	mr := fs.String("mr", os.Getenv("LISP_MAP_RESOLVER"), "Map-Resolver address (default $LISP_MAP_RESOLVER), port 4342 unless given")
	ddt := fs.String("ddt", "", "walk the DDT tree from this root (ADDR[:PORT]) instead of asking a Map-Resolver, printing each hop")
	altPath := fs.String("alt-path", "", "after the reply, show the ALT path: ask the Map-Resolver's management socket (rlocd's, e.g. /run/rloc/rlocd.sock) which ALT route it sent the request by")
	maxHops := fs.Int("max-hops", slowpath.DefaultDDTMaxHops, "with --ddt, referrals followed at most")
	iid := fs.String("iid", "", "instance-ID (sent in an instance-ID LCAF when given)")
	count := fs.Int("count", 3, "Map-Requests to send at most (one per timeout until a reply)")
	timeout := fs.Duration("timeout", 2*time.Second, "how long each Map-Request waits for its reply")
	source := fs.String("source", "", "local address (the ITR-RLOC) and optional port")
	fs.Bool("version", false, "print lig's version, commit and Go version and exit")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return Query{}, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 1 {
		fs.Usage()
		return Query{}, fmt.Errorf("want one EID, got %d arguments", len(pos))
	}
	var q Query
	var err error
	if q.EID, err = parseEID(pos[0]); err != nil {
		return q, err
	}
	switch {
	case *ddt != "":
		if q.MR, err = parseHostPort(*ddt, wire.ControlPort); err != nil {
			return q, fmt.Errorf("--ddt: %w", err)
		}
		if *maxHops < 1 || *maxHops > 64 {
			return q, fmt.Errorf("--max-hops: %d out of range 1..64", *maxHops)
		}
		q.DDT, q.MaxHops = true, *maxHops
		if *altPath != "" {
			return q, errors.New("--alt-path goes with --mr: it asks the Map-Resolver")
		}
	case *mr == "":
		return q, errors.New("no Map-Resolver: give --mr or set LISP_MAP_RESOLVER (or --ddt ROOT)")
	default:
		if q.MR, err = parseHostPort(*mr, wire.ControlPort); err != nil {
			return q, fmt.Errorf("--mr: %w", err)
		}
	}
	q.ALTPath = *altPath
	if *iid != "" {
		v, err := strconv.ParseUint(*iid, 0, 32)
		if err != nil {
			return q, fmt.Errorf("--iid: %q is not a 32-bit number", *iid)
		}
		q.IID, q.UseIID = uint32(v), true
	}
	if *count < 1 || *count > 100 {
		return q, fmt.Errorf("--count: %d out of range 1..100", *count)
	}
	q.Tries = *count
	if *timeout <= 0 {
		return q, fmt.Errorf("--timeout: %v is not positive", *timeout)
	}
	q.Timeout = *timeout
	if *source != "" {
		if q.Source, err = parseHostPort(*source, 0); err != nil {
			return q, fmt.Errorf("--source: %w", err)
		}
	}
	return q, nil
}

// parseEID accepts an address or a prefix.
func parseEID(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("EID %q is neither an address nor a prefix", s)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("EID %q: zones are not allowed", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// parseHostPort accepts ADDR, ADDR:PORT, [V6]:PORT and :PORT (unspecified
// address); def is the port when none is given.
func parseHostPort(s string, def uint16) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, def), nil
	}
	if len(s) > 1 && s[0] == ':' {
		p, err := strconv.ParseUint(s[1:], 10, 16)
		if err == nil {
			return netip.AddrPortFrom(netip.Addr{}, uint16(p)), nil
		}
	}
	return netip.AddrPort{}, fmt.Errorf("%q is not ADDR or ADDR:PORT", s)
}

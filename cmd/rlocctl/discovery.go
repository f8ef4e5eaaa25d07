package main

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rloc-router/rloc/router"
)

// discoveryCmd shows OSPF discovery and sets the advertised status
// (draft-boucadair-lisp-function-discovery, docs/discovery.md).
func discoveryCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "discovery",
		Short: "Show the Map-Resolvers and Map-Servers discovered through OSPF",
		Long: `discovery lists what OSPF discovery learned (GET /v1/discovery): per MSFD TLV
the advertising OSPF router, the function (map-resolver, map-server), its
status, locators and port, capabilities, the times its unavailability and
reboot timers run out, and whether xTRs use it now; then the Map-Resolvers the
ITR asks and the Map-Servers the ETR registers with (configured first, then
discovered) and the counters.`,
		Example: "  rlocctl discovery\n  rlocctl discovery -o json\n  rlocctl discovery --watch",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return list(o, "discovery", "/v1/discovery", printDiscovery)
		},
	}
	addWatch(cmd, o)
	status := &cobra.Command{
		Use:   "status enabled|disabled",
		Short: "Set the status of the MSFD TLV this Map-Resolver or Map-Server floods",
		Long: `status floods this router's MSFD TLV again with the given status (POST
/v1/discovery/status): disabled takes the Map-Resolver or Map-Server out of
service for the xTRs of the area, enabled puts it back.`,
		Example:   "  rlocctl discovery status disabled",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"enabled", "disabled"},
		RunE: func(_ *cobra.Command, args []string) error {
			return o.client().do(o.ctx, "POST", "/v1/discovery/status", router.DiscoveryStatus{Status: args[0]}, nil)
		},
	}
	cmd.AddCommand(status)
	return cmd
}

func printDiscovery(out io.Writer, d router.DiscoveryInfo) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTER\tFUNCTION\tSTATUS\tLOCATORS\tPORT\tCAPABILITIES\tTIMERS\tUSED")
	for _, f := range d.Functions {
		var locs []string
		for _, l := range f.Locators {
			locs = append(locs, l.String())
		}
		var timers []string
		if !f.UnavailableAt.IsZero() {
			timers = append(timers, "unavailable in "+time.Until(f.UnavailableAt).Round(time.Second).String())
		}
		if !f.RebootAt.IsZero() {
			timers = append(timers, "reboot in "+time.Until(f.RebootAt).Round(time.Second).String())
		}
		router := f.Router.String()
		if f.Self {
			router += " (self)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%t\n", router, f.Function, f.Status, strings.Join(locs, ", "), f.Port,
			dash(strings.Join(f.Capabilities, ",")), dash(strings.Join(timers, ", ")), f.Usable)
	}
	tw.Flush()
	fmt.Fprintf(out, "map-resolvers asked: %s\n", dash(joinAddrPorts(d.MapResolvers)))
	fmt.Fprintf(out, "map-servers registered with: %s\n", dash(joinAddrPorts(d.MapServers)))
	s := d.Stats
	fmt.Fprintf(out, "ospf api connected: %t (%d connects, %d failed); %d LSA updates, %d deletes, %d malformed TLVs ignored, %d dropped; %d originated, %d refused; %d changes of the sets used\n",
		s.Connected, s.Connects, s.ConnectErrors, s.Updates, s.Deletes, s.Malformed, s.Dropped, s.Originated, s.OriginateErrors, s.Changes)
	printBGPDiscovery(out, d.BGP)
}

func joinAddrPorts(as []netip.AddrPort) string {
	var s []string
	for _, a := range as {
		s = append(s, a.String())
	}
	return strings.Join(s, ", ")
}

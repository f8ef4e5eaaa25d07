package main

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/router"
)

// TestALTPrint prints an ALT view (as GET /v1/alt returns it; the e2e test
// TestALT reads it from real ALT routers): neighbours, table, announced
// prefixes and counters.
func TestALTPrint(t *testing.T) {
	v := router.ALTView{
		Neighbors: []router.ALTNeighborView{{Remote: netip.MustParseAddr("192.0.2.201"), Peer: netip.MustParseAddr("10.255.0.1"),
			ASN: 65001, State: "established", Received: 3, Accepted: 3, Advertised: 1, UptimeSec: 42, RxPackets: 10, TxPackets: 9}},
		Table: []router.ALTRouteView{{Prefix: netip.MustParsePrefix("10.0.0.0/14"), Peer: "10.255.0.1", ASPath: []uint32{65001}, Aggregate: true},
			{Prefix: netip.MustParsePrefix("10.1.0.0/24"), Peer: "local", Local: true}},
		Announced:  []netip.Prefix{netip.MustParsePrefix("10.1.0.0/24")},
		GREDropped: map[string]uint64{"key-not-negotiated": 2},
	}
	v.Stats.Delivered = 4
	v.Sent = []router.ALTSentView{{IID: 0, EID: netip.MustParseAddr("10.64.9.1"), Time: time.Date(2026, 12, 3, 21, 4, 5, 0, time.UTC),
		Route: netip.MustParsePrefix("10.64.8.0/21"), NextHop: netip.MustParseAddr("10.255.0.1"), ASPath: []uint32{65001, 65003},
		DDT: "DELEGATION-HOLE", DDTPrefix: netip.MustParsePrefix("10.64.0.0/10")}}
	var out bytes.Buffer
	printALT(&out, v)
	for _, want := range []string{"10.255.0.1  192.0.2.201  65001  established  3/3/1", "42s", "10.0.0.0/14  10.255.0.1  65001    aggregate",
		"10.1.0.0/24  local", "announced: 10.1.0.0/24", "4 delivered", "gre dropped: key-not-negotiated 2",
		"last 1 Map-Requests sent into the ALT", "21:04:05.000  [0]10.64.9.1  10.64.8.0/21  10.255.0.1  65001 65003  DELEGATION-HOLE 10.64.0.0/10"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
	// The L3VPN families: a route and an announcement of instance-ID 7
	// show it in brackets.
	v.Table = append(v.Table, router.ALTRouteView{IID: 7, Prefix: netip.MustParsePrefix("10.1.0.0/24"), Peer: "10.255.0.1", ASPath: []uint32{65001}})
	v.AnnouncedIIDs = []router.ALTAnnouncedView{{IID: 7, Prefix: netip.MustParsePrefix("10.7.0.0/24")}}
	out.Reset()
	printALT(&out, v)
	for _, want := range []string{"[7]10.1.0.0/24  10.255.0.1", "announced: 10.1.0.0/24, [7]10.7.0.0/24"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestALTCommandNoRole: a router without the alt role answers GET /v1/alt
// with an error that says so.
func TestALTCommandNoRole(t *testing.T) {
	cfg := router.Config{
		Name:    "mr",
		Roles:   router.Roles{MapResolver: true},
		Control: router.ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Mgmt:    router.MgmtOptions{Socket: filepath.Join(t.TempDir(), "mgmt.sock")},
	}
	r, err := router.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	var out bytes.Buffer
	err = run([]string{"-s", cfg.Mgmt.Socket, "alt"}, &out)
	if err == nil || !strings.Contains(err.Error(), "not an ALT router") {
		t.Fatalf("want an error naming the missing role, got %v\n%s", err, out.String())
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/router"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// TestDDTDelegationsCommand runs `rlocctl ddt delegations` against a DDT
// node: the table shows the authority and the delegation with its targets,
// -o json decodes to router.DDTInfo.
func TestDDTDelegationsCommand(t *testing.T) {
	cfg := router.Config{
		Name:    "ddt",
		Roles:   router.Roles{DDTNode: true},
		Control: router.ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Mgmt:    router.MgmtOptions{Socket: filepath.Join(t.TempDir(), "mgmt.sock")},
		DDT: slowpath.DDTNodeConfig{
			Authoritative: []slowpath.EIDPrefix{{IID: 5, Prefix: netip.MustParsePrefix("10.0.0.0/8")}},
			Delegations: []slowpath.DDTDelegation{{EIDPrefix: slowpath.EIDPrefix{IID: 5, Prefix: netip.MustParsePrefix("10.1.0.0/16")},
				Type: slowpath.DDTNode, Targets: []slowpath.DDTTarget{{Addr: netip.MustParseAddr("192.0.2.1"), Priority: 1, Weight: 60},
					{Addr: netip.MustParseAddr("192.0.2.2"), Priority: 2, Weight: 40}}}},
		},
	}
	r, err := router.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	var out bytes.Buffer
	if err := run([]string{"-s", cfg.Mgmt.Socket, "ddt", "delegations"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"10.0.0.0/8", "10.1.0.0/16", "NODE-REFERRAL", "192.0.2.1 (1/60), 192.0.2.2 (2/40)",
		"1 delegations; referral TTL 24h0m0s, hole TTL 15m0s", "referrals not signed"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := run([]string{"-s", cfg.Mgmt.Socket, "ddt", "delegations", "-o", "json"}, &out); err != nil {
		t.Fatal(err)
	}
	var l router.DDTInfo
	if err := json.Unmarshal(out.Bytes(), &l); err != nil || len(l.Delegations) != 1 || l.Delegations[0].IID != 5 {
		t.Fatalf("json %v: %s", err, out.String())
	}
	// -o svg: the node, its delegation and the two child nodes, drawn.
	out.Reset()
	if err := run([]string{"-s", cfg.Mgmt.Socket, "ddt", "delegations", "-o", "svg"}, &out); err != nil {
		t.Fatal(err)
	}
	nodes, edges := svgContent(t, out.Bytes())
	if !sameSet(nodes, []string{"self", "d/5/10.1.0.0/16", "DDT node/192.0.2.1", "DDT node/192.0.2.2"}) ||
		!sameSet(edges, []string{"self->d/5/10.1.0.0/16", "d/5/10.1.0.0/16->DDT node/192.0.2.1", "d/5/10.1.0.0/16->DDT node/192.0.2.2"}) {
		t.Errorf("ddt delegations -o svg: nodes %q edges %q", nodes, edges)
	}
	// -o dot: Graphviz reads it.
	out.Reset()
	if err := run([]string{"-s", cfg.Mgmt.Socket, "ddt", "delegations", "-o", "dot"}, &out); err != nil {
		t.Fatal(err)
	}
	dot := exec.Command(testkit.Tool(t, "dot"), "-Tsvg")
	dot.Stdin = &out
	if svg, err := dot.Output(); err != nil || strings.Count(string(svg), `class="node"`) != 4 || strings.Count(string(svg), `class="edge"`) != 3 {
		t.Errorf("ddt delegations -o dot | dot -Tsvg: %v\n%s", err, svg)
	}
}

// TestDDTReferralsCommand runs `rlocctl ddt referrals` against a DDT
// Map-Resolver: the table shows its roots, counters and the cache size;
// -o json decodes to router.DDTResolverInfo; a router without ddt_roots
// gives an error that says so.
func TestDDTReferralsCommand(t *testing.T) {
	cfg := router.Config{
		Name:        "ddt-mr",
		Roles:       router.Roles{MapResolver: true},
		Control:     router.ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Mgmt:        router.MgmtOptions{Socket: filepath.Join(t.TempDir(), "mgmt.sock")},
		MapResolver: router.MapResolverOptions{DDTRoots: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.9:4342")}},
	}
	r, err := router.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	var out bytes.Buffer
	if err := run([]string{"-s", cfg.Mgmt.Socket, "ddt", "referrals"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"roots: 127.0.0.9:4342", "REFERRAL", "resolutions", "referrals_ms_referral", "0 cached referrals (0 shown)"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := run([]string{"-s", cfg.Mgmt.Socket, "ddt", "referrals", "-o", "json"}, &out); err != nil {
		t.Fatal(err)
	}
	var l router.DDTResolverInfo
	if err := json.Unmarshal(out.Bytes(), &l); err != nil || len(l.Roots) != 1 || l.Referrals == nil {
		t.Fatalf("json %v: %s", err, out.String())
	}
	ms := router.Config{Name: "ms", Roles: router.Roles{MapResolver: true},
		Control: cfg.Control, Mgmt: router.MgmtOptions{Socket: filepath.Join(t.TempDir(), "ms.sock")}}
	r2, err := router.Start(ms)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r2.Stop)
	if err := run([]string{"-s", ms.Mgmt.Socket, "ddt", "referrals"}, &out); err == nil || !strings.Contains(err.Error(), "ddt_roots") {
		t.Fatalf("without roots: %v", err)
	}
	// -o svg: the resolver and its roots (nothing learned yet).
	out.Reset()
	if err := run([]string{"-s", cfg.Mgmt.Socket, "ddt", "referrals", "-o", "svg"}, &out); err != nil {
		t.Fatal(err)
	}
	if nodes, edges := svgContent(t, out.Bytes()); !sameSet(nodes, []string{"self", "roots"}) || !sameSet(edges, []string{"self->roots"}) ||
		!strings.Contains(out.String(), "127.0.0.9:4342") {
		t.Errorf("ddt referrals -o svg: nodes %q edges %q\n%s", nodes, edges, out.String())
	}
}

// TestDDTPendingCommand runs `rlocctl ddt pending` against a DDT
// Map-Resolver whose root is silent: the resolution of the EID asked is
// listed while the root is asked; -o json decodes to router.DDTPendingList;
// a router without ddt_roots gives an error that says so.
func TestDDTPendingCommand(t *testing.T) {
	probe, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	root := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.9"), probe.LocalAddr().(*net.UDPAddr).AddrPort().Port())
	probe.Close()
	cfg := router.Config{
		Name:    "ddt-mr",
		Roles:   router.Roles{MapResolver: true},
		Control: router.ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Mgmt:    router.MgmtOptions{Socket: filepath.Join(t.TempDir(), "mgmt.sock")},
		MapResolver: router.MapResolverOptions{DDTRoots: []netip.AddrPort{root},
			DDT: slowpath.DDTResolverConfig{RetransmitInterval: time.Minute}},
	}
	r, err := router.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	self := c.LocalAddr().(*net.UDPAddr).AddrPort()
	req := wire.MapRequest{Nonce: wire.Nonce{0xab, 0xcd}, ITRRLOCs: []wire.Address{wire.IPAddress(self.Addr())},
		Records: []wire.EIDRecord{{MaskLen: 32, EID: wire.IPAddress(netip.MustParseAddr("10.1.2.3"))}}}
	inner, _ := req.Append(nil)
	ecm := wire.ECM{Src: self.Addr(), Dst: netip.MustParseAddr("10.1.2.3"), SrcPort: self.Port(), DstPort: 4342, TTL: 64, Message: inner}
	b, _ := ecm.Append(nil)
	if _, err := c.WriteToUDPAddrPort(b, r.Engine().Addr()); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	testkit.WaitFor(t, "the resolution listed", func() error {
		out.Reset()
		if err := run([]string{"-s", cfg.Mgmt.Socket, "ddt", "pending"}, &out); err != nil {
			return err
		}
		if !strings.Contains(out.String(), "1 resolutions in progress") {
			return fmt.Errorf("%s", out.String())
		}
		return nil
	})
	for _, want := range []string{"abcd000000000000", "10.1.2.3", "root", root.String()} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := run([]string{"-s", cfg.Mgmt.Socket, "ddt", "pending", "-o", "json"}, &out); err != nil {
		t.Fatal(err)
	}
	var l router.DDTPendingList
	if err := json.Unmarshal(out.Bytes(), &l); err != nil || l.Total != 1 || l.Pending[0].Tries != 1 {
		t.Fatalf("json %v: %s", err, out.String())
	}
	plain := router.Config{Name: "mr", Roles: router.Roles{MapResolver: true},
		Control: cfg.Control, Mgmt: router.MgmtOptions{Socket: filepath.Join(t.TempDir(), "mr.sock")}}
	r2, err := router.Start(plain)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r2.Stop)
	if err := run([]string{"-s", plain.Mgmt.Socket, "ddt", "pending"}, &out); err == nil || !strings.Contains(err.Error(), "ddt_roots") {
		t.Fatalf("without roots: %v", err)
	}
}

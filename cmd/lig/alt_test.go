package main

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/rloc-router/rloc/internal/testkit/netnstest"
	"github.com/rloc-router/rloc/router"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// TestALTPath runs lig --alt-path against real routers on the ALT: the
// test binary runs itself again inside a new network namespace (the ALT
// role opens a TUN and a raw GRE socket, and BGP dials from any thread,
// so the whole process must be in it), where altPathInNetns does the
// work.
func TestALTPath(t *testing.T) {
	inALTNetns(t, "TestALTPath", altPathInNetns)
}

// inALTNetns runs body when the test binary runs inside the namespace,
// and otherwise runs the test named name again in a new namespace.
func inALTNetns(t *testing.T, name string, body func(*testing.T)) {
	if os.Getenv("LIG_ALT_NETNS") != "" {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetUp(lo); err != nil {
			t.Fatal(err)
		}
		body(t)
		return
	}
	ns := netnstest.New(t, "ligalt")
	cmd := ns.Command(os.Args[0], "-test.run=^"+name+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "LIG_ALT_NETNS=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatalf("in the namespace: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// startRouter starts a router stopped at the end of the test.
func startRouter(t *testing.T, cfg router.Config) *router.Router {
	t.Helper()
	r, err := router.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

// altRouter is the ALT section of a router on loopback address self
// (its underlay address and router ID) with short timers.
func altRouter(asn uint32, self string, nbs ...slowpath.ALTNeighbor) slowpath.ALTConfig {
	a := netip.MustParseAddr
	return slowpath.ALTConfig{ASN: asn, RouterID: a(self), Underlay: a(self), Interface: "alt" + self[len(self)-2:],
		HoldTime: 3 * time.Second, ConnectRetry: time.Second, Neighbors: nbs}
}

// altNeighbor is a tunnel to peer (underlay) with this end inner and the
// peer's end peerInner.
func altNeighbor(peer, inner, peerInner string, peerASN uint32) slowpath.ALTNeighbor {
	return slowpath.ALTNeighbor{Remote: netip.MustParseAddr(peer), Inner: netip.MustParsePrefix(inner),
		Peer: netip.MustParseAddr(peerInner), ASN: peerASN}
}

// waitALTTable waits until r's ALT table has n routes.
func waitALTTable(t *testing.T, r *router.Router, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := r.ALT()
		if err == nil && len(v.Table) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ALT table never got %d routes: %+v %v", n, v, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// altPathInNetns starts two routers in this (new) namespace, joined by
// one user-space GRE tunnel over loopback with a BGP session on it: mr, a
// Map-Resolver on the ALT (AS 65200), and ms, a Map-Server on the ALT (AS
// 65102) announcing 10.2.0.0/24 (no registration there: it answers
// negatively). lig asks mr for 10.2.0.10 with --alt-path on mr's
// management socket: the reply came through the ALT and lig shows the
// route mr sent it by (10.2.0.0/24, next hop ms's tunnel end 10.255.0.1,
// AS path 65102). An EID the ALT has no route for is answered by mr
// itself: lig says it was not sent into the ALT. Both routers carry the
// EID prefixes in the unicast families (alt.families: unicast;
// TestALTPathIID runs the default, vpn), so the same EID in instance-ID
// 5 is not on the ALT.
func altPathInNetns(t *testing.T) {
	dir := t.TempDir()
	msALT := altRouter(65102, "127.0.0.20", altNeighbor("127.0.0.10", "10.255.0.1/31", "10.255.0.0", 65200))
	msALT.Announce = []netip.Prefix{netip.MustParsePrefix("10.2.0.0/24")}
	msALT.Families = slowpath.ALTFamiliesUnicast
	startRouter(t, router.Config{Name: "ms", Roles: router.Roles{MapServer: true, ALT: true},
		Control: router.ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.20:4342")}},
		Mgmt:    router.MgmtOptions{Socket: filepath.Join(dir, "ms.sock")},
		Sites: []slowpath.SiteConfig{{Name: "site2", Keys: []slowpath.AuthKey{{KeyID: 1, Alg: wire.AuthHMACSHA256128, Secret: "key-2"}},
			Prefixes: []slowpath.SitePrefix{{EIDPrefix: slowpath.EIDPrefix{Prefix: netip.MustParsePrefix("10.2.0.0/24")}}}}},
		ALT: msALT})
	sock := filepath.Join(dir, "mr.sock")
	mrALT := altRouter(65200, "127.0.0.10", altNeighbor("127.0.0.20", "10.255.0.0/31", "10.255.0.1", 65102))
	mrALT.Families = slowpath.ALTFamiliesUnicast
	mr := startRouter(t, router.Config{Name: "mr", Roles: router.Roles{MapResolver: true, ALT: true},
		Control: router.ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.10:4342")}},
		Mgmt:    router.MgmtOptions{Socket: sock},
		ALT:     mrALT})
	waitALTTable(t, mr, 1)

	var out, errb bytes.Buffer
	args := []string{"10.2.0.10", "--mr", "127.0.0.10", "--alt-path", sock, "--source", "127.0.0.1:0", "--count", "3", "--timeout", "2s"}
	if code := run(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("lig %v: exit %d\n%s\n%s", args, code, out.String(), errb.String())
	}
	t.Logf("lig %s\n%s", strings.Join(args, " "), out.String())
	for _, want := range []string{"Received Map-Reply from 127.0.0.20:", "ALT path for nonce", "ALT ROUTE", "[0]10.2.0.0/24  10.255.0.1  65102"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("lig output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	args[0] = "10.9.0.1"
	if code := run(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("lig %v: exit %d\n%s\n%s", args, code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "not sent into the ALT") || strings.Contains(out.String(), "ALT ROUTE") {
		t.Fatalf("lig output for an EID off the ALT:\n%s", out.String())
	}
	out.Reset()
	args[0] = "10.2.0.10"
	args = append(args, "--iid", "5")
	if code := run(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("lig %v: exit %d\n%s\n%s", args, code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "not sent into the ALT") || !strings.Contains(out.String(), "Received Map-Reply from 127.0.0.10:") {
		t.Fatalf("lig output for instance-ID 5 on a unicast ALT:\n%s", out.String())
	}
}

// TestALTPathIID: instance-IDs on the ALT (the L3VPN families, route
// distinguisher 0:<IID>). Two Map-Servers hold the same EID prefix
// 10.2.0.0/24, ms5 in instance-ID 5 and ms7 in instance-ID 7, and
// announce it into the ALT; mr peers with both. lig asks mr for
// 10.2.0.10 in each instance-ID: the Map-Request travels the ALT to the
// Map-Server of its instance-ID, which answers (negatively: nothing is
// registered), and the ALT path shows the route of that instance-ID. In
// instance-IDs 0 and 6 mr has no ALT route and answers itself.
func TestALTPathIID(t *testing.T) {
	inALTNetns(t, "TestALTPathIID", altPathIIDInNetns)
}

func altPathIIDInNetns(t *testing.T) {
	dir := t.TempDir()
	eid := netip.MustParsePrefix("10.2.0.0/24")
	ms := func(name, self string, asn, iid uint32, inner, mrInner string) {
		cfg := altRouter(asn, self, altNeighbor("127.0.0.10", inner, mrInner, 65200))
		cfg.AnnounceIID = []slowpath.EIDPrefix{{IID: iid, Prefix: eid}}
		startRouter(t, router.Config{Name: name, Roles: router.Roles{MapServer: true, ALT: true},
			Control: router.ControlOptions{Listen: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr(self), 4342)}},
			Mgmt:    router.MgmtOptions{Socket: filepath.Join(dir, name+".sock")},
			Sites: []slowpath.SiteConfig{{Name: "site", Keys: []slowpath.AuthKey{{KeyID: 1, Alg: wire.AuthHMACSHA256128, Secret: "key"}},
				Prefixes: []slowpath.SitePrefix{{EIDPrefix: slowpath.EIDPrefix{IID: iid, Prefix: eid}}}}},
			ALT: cfg})
	}
	ms("ms5", "127.0.0.20", 65105, 5, "10.255.0.1/31", "10.255.0.0")
	ms("ms7", "127.0.0.30", 65107, 7, "10.255.0.3/31", "10.255.0.2")
	sock := filepath.Join(dir, "mr.sock")
	mr := startRouter(t, router.Config{Name: "mr", Roles: router.Roles{MapResolver: true, ALT: true},
		Control: router.ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.10:4342")}},
		Mgmt:    router.MgmtOptions{Socket: sock},
		ALT: altRouter(65200, "127.0.0.10", altNeighbor("127.0.0.20", "10.255.0.0/31", "10.255.0.1", 65105),
			altNeighbor("127.0.0.30", "10.255.0.2/31", "10.255.0.3", 65107))})
	waitALTTable(t, mr, 2)
	v, err := mr.ALT()
	if err != nil || len(v.Table) != 2 || v.Table[0].IID != 5 || v.Table[1].IID != 7 || v.Table[0].Prefix != eid || v.Table[1].Prefix != eid {
		t.Fatalf("mr's ALT table %+v %v", v.Table, err)
	}
	// Beside the prefix, mr's negative reply in instance-ID 5 stops short
	// of the ALT route of instance-ID 5; in 6 nothing is known.
	for _, c := range []struct {
		eid, iid string
		want     []string
	}{
		{"10.2.0.10", "5", []string{"Received Map-Reply from 127.0.0.20:", "[5]10.2.0.0/24  10.255.0.1  65105"}},
		{"10.2.0.10", "7", []string{"Received Map-Reply from 127.0.0.30:", "[7]10.2.0.0/24  10.255.0.3  65107"}},
		{"10.2.0.10", "6", []string{"Received Map-Reply from 127.0.0.10:", "EID [6]0.0.0.0/0,", "not sent into the ALT"}},
		{"10.2.0.10", "0", []string{"Received Map-Reply from 127.0.0.10:", "not sent into the ALT"}},
		{"10.3.0.1", "5", []string{"Received Map-Reply from 127.0.0.10:", "EID [5]10.3.0.0/16,", "not sent into the ALT"}},
	} {
		var out, errb bytes.Buffer
		args := []string{c.eid, "--iid", c.iid, "--mr", "127.0.0.10", "--alt-path", sock, "--source", "127.0.0.1:0", "--count", "3", "--timeout", "2s"}
		if code := run(context.Background(), args, &out, &errb); code != 0 {
			t.Fatalf("lig %v: exit %d\n%s\n%s", args, code, out.String(), errb.String())
		}
		t.Logf("lig %s\n%s", strings.Join(args, " "), out.String())
		for _, want := range c.want {
			if !strings.Contains(out.String(), want) {
				t.Fatalf("lig --iid %s: output lacks %q:\n%s", c.iid, want, out.String())
			}
		}
	}
}

// TestALTPathErrors: --alt-path goes with --mr only; a socket nobody
// listens on, or a router without the alt role, is an error (exit 1)
// after the reply was printed.
func TestALTPathErrors(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"10.2.0.10", "--ddt", "127.0.0.1", "--alt-path", "/nonexistent"}, &out, &errb); code != 1 {
		t.Errorf("--ddt with --alt-path: exit %d, want 1", code)
	}
	mr := newFakeMR(t, "udp4", "127.0.0.1", func(_ int, s *seen) [][]byte {
		return [][]byte{reply(t, s.req.Nonce, site2(s.iid))}
	})
	errb.Reset()
	if code := run(t.Context(), []string{"10.2.0.10", "--mr", mr.addr().String(), "--alt-path", filepath.Join(t.TempDir(), "none.sock")}, &out, &errb); code != 1 {
		t.Errorf("no socket: exit %d, want 1", code)
	}
	if !strings.Contains(errb.String(), "--alt-path") {
		t.Errorf("error %q does not name --alt-path", errb.String())
	}
	cfg := router.Config{Name: "mr", Roles: router.Roles{MapResolver: true},
		Control: router.ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Mgmt:    router.MgmtOptions{Socket: filepath.Join(t.TempDir(), "mgmt.sock")}}
	r, err := router.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	errb.Reset()
	if code := run(t.Context(), []string{"10.2.0.10", "--mr", mr.addr().String(), "--alt-path", cfg.Mgmt.Socket}, &out, &errb); code != 1 {
		t.Errorf("router without the alt role: exit %d, want 1", code)
	}
	if !strings.Contains(errb.String(), "not an ALT router") {
		t.Errorf("error %q does not say the router is not an ALT router", errb.String())
	}
}

// TestPrintALTPath: a request sent into the ALT after DDT's hole shows
// the hole in BEFORE, an aggregate route its flag.
func TestPrintALTPath(t *testing.T) {
	q := Query{MR: netip.MustParseAddrPort("192.0.2.100:4342")}
	r := &Result{Reply: wire.MapReply{Nonce: wire.Nonce{1, 2, 3, 4, 5, 6, 7, 8}}}
	h := &ALTHop{Route: netip.MustParsePrefix("10.64.0.0/14"), NextHop: netip.MustParseAddr("10.255.0.3"), ASPath: []uint32{65001, 65000, 65102},
		Aggregate: true, DDT: "DELEGATION-HOLE", DDTPrefix: netip.MustParsePrefix("10.64.0.0/10")}
	var out bytes.Buffer
	if err := PrintALTPath(&out, q, r, h); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ALT path for nonce 0102030405060708 at Map-Resolver 192.0.2.100:4342",
		"[0]10.64.0.0/14  10.255.0.3  65001 65000 65102  aggregate  DDT DELEGATION-HOLE for [0]10.64.0.0/10"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
}

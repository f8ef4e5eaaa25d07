package main

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/slowpath/control"
	"github.com/rloc-router/rloc/wire"
)

func lo(i byte) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 0, i}) }

// ddtTree starts a DDT tree on loopback, every node on one port: a root
// at 127.0.0.161 (signing with the test key) authoritative for 10.0.0.0/8
// delegating 10.1.0.0/16 to the child nodes .162 (preferred) and .163,
// which delegate 10.1.2.0/24 to the Map-Server .164; an ETR registered
// 10.1.2.0/25 there. It returns the root's address and the preferred
// child (to close).
func ddtTree(t *testing.T) (netip.AddrPort, *control.Engine) {
	t.Helper()
	probe, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	probe.Close()
	start := func(i byte, c slowpath.Config) *control.Engine {
		t.Helper()
		if i != 0 {
			c.Listen = []netip.AddrPort{netip.AddrPortFrom(lo(i), port)}
		} else {
			c.Listen = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}
		}
		e, err := control.New(c, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	pfx := func(s string) slowpath.EIDPrefix { return slowpath.EIDPrefix{Prefix: netip.MustParsePrefix(s)} }
	tg := func(i, prio byte) slowpath.DDTTarget {
		return slowpath.DDTTarget{Addr: lo(i), Priority: prio, Weight: 100}
	}
	start(161, slowpath.Config{DDT: &slowpath.DDTNodeConfig{Authoritative: []slowpath.EIDPrefix{pfx("10.0.0.0/8")},
		Delegations: []slowpath.DDTDelegation{{EIDPrefix: pfx("10.1.0.0/16"), Type: slowpath.DDTNode,
			Targets: []slowpath.DDTTarget{tg(162, 1), tg(163, 2)}}},
		Signing: slowpath.DDTSigning{KeyFile: "../../wire/testdata/ddt_rsa_key.pem"}}})
	child := func() *slowpath.DDTNodeConfig {
		return &slowpath.DDTNodeConfig{Authoritative: []slowpath.EIDPrefix{pfx("10.1.0.0/16")},
			Delegations: []slowpath.DDTDelegation{{EIDPrefix: pfx("10.1.2.0/24"), Type: slowpath.DDTMapServer,
				Targets: []slowpath.DDTTarget{tg(164, 1)}}}}
	}
	c1 := start(162, slowpath.Config{DDT: child()})
	start(163, slowpath.Config{DDT: child()})
	key := slowpath.AuthKey{KeyID: 1, Alg: wire.AuthHMACSHA256128, Secret: "lig-ddt"}
	ms := start(164, slowpath.Config{MapServer: &slowpath.MapServerConfig{Sites: []slowpath.SiteConfig{{Name: "a",
		Keys: []slowpath.AuthKey{key}, Prefixes: []slowpath.SitePrefix{{EIDPrefix: pfx("10.1.0.0/16"), AcceptMoreSpecifics: true}}}}}})
	etr := start(0, slowpath.Config{ETR: &slowpath.ETRConfig{MapServers: []slowpath.MapServerPeer{{Addr: ms.Addr(), Key: key}},
		Mappings: []slowpath.Mapping{{EIDPrefix: pfx("10.1.2.0/25"),
			RLOCs: []slowpath.RLOCConfig{{Addr: netip.MustParseAddr("192.0.2.1"), Priority: 1, Weight: 100}}}},
		RegisterInterval: time.Minute, RetryInterval: 50 * time.Millisecond}})
	deadline := time.Now().Add(5 * time.Second)
	for etr.Stats().RegisterNotified == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the ETR did not register")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return netip.AddrPortFrom(lo(161), port), c1
}

// TestTraceDDT: lig --ddt walks a real DDT tree on loopback and prints
// each hop: the root's signed NODE-REFERRAL, the child's MS-REFERRAL, the
// Map-Server's MS-ACK, then the ETR's Map-Reply; an unregistered EID ends
// with MS-NOT-REGISTERED, one outside the delegations with the root's
// DELEGATION-HOLE (exit 0, negative); with the preferred child closed the
// trace shows it silent and goes on through its sibling.
func TestTraceDDT(t *testing.T) {
	root, c1 := ddtTree(t)
	trace := func(eid string, extra ...string) (string, int) {
		t.Helper()
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{eid, "--ddt", root.String(), "--timeout", "300ms", "--count", "2"}, extra...), &out, &errb)
		return out.String() + errb.String(), code
	}
	want := func(out string, lines ...string) {
		t.Helper()
		for _, l := range lines {
			if !strings.Contains(out, l) {
				t.Fatalf("output lacks %q:\n%s", l, out)
			}
		}
	}
	out, code := trace("10.1.2.9")
	t.Log(out)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	want(out, "DDT trace for [0]10.1.2.9/32", "1    127.0.0.161:"+itoa(root.Port())+"  NODE-REFERRAL", "[0]10.1.0.0/16",
		"A,signed(tag", "127.0.0.162 (1/100), 127.0.0.163 (2/100)",
		"2    127.0.0.162:", "MS-REFERRAL", "[0]10.1.2.0/24", "127.0.0.164 (1/100)",
		"3    127.0.0.164:", "MS-ACK", "[0]10.1.2.0/25", "A,I",
		"Mapping entry for EID [0]10.1.2.0/25", "192.0.2.1")
	tr, err := TraceDDT(context.Background(), Query{MR: root, EID: netip.MustParsePrefix("10.1.2.9/32"), Tries: 2, Timeout: time.Second}, 8)
	if err != nil || len(tr.Hops) != 3 || tr.Reply == nil || tr.Hops[2].Referral.Type != wire.ReferralMSAck || tr.Hops[0].RTT <= 0 {
		t.Fatalf("trace %+v: %v", tr, err)
	}

	out, code = trace("10.1.2.200")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	want(out, "MS-NOT-REGISTERED", "[0]10.1.2.128/25", "MS-NOT-REGISTERED for [0]10.1.2.128/25: negative")

	out, _ = trace("10.64.1.1")
	want(out, "DELEGATION-HOLE", "DELEGATION-HOLE for [0]10.64.0.0/10: negative")

	c1.Close()
	out, code = trace("10.1.2.10")
	t.Log(out)
	if code != 0 {
		t.Fatalf("exit %d with a dead child:\n%s", code, out)
	}
	want(out, "127.0.0.162:"+itoa(root.Port())+"  no answer", "2    127.0.0.163:", "MS-REFERRAL", "MS-ACK", "192.0.2.1")

	out, code = trace("10.1.2.9", "--max-hops", "1")
	if code != 2 {
		t.Fatalf("exit %d with one hop allowed, want 2:\n%s", code, out)
	}
	want(out, "2 referrals, more than the hop bound 1")
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

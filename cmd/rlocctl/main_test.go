package main

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/router"
	"github.com/rloc-router/rloc/slowpath"
	"github.com/rloc-router/rloc/wire"
)

// startRouter runs a Map-Server/Map-Resolver router on loopback (no data
// plane, so no root is needed) and returns it with its socket path.
func startRouter(t *testing.T) (*router.Router, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "rlocd.sock")
	r, err := router.Start(router.Config{
		Name:    "ctl-test",
		Roles:   router.Roles{MapServer: true, MapResolver: true},
		Control: router.ControlOptions{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}},
		Mgmt:    router.MgmtOptions{Socket: sock},
		Sites: []slowpath.SiteConfig{{Name: "site1",
			Keys:     []slowpath.AuthKey{{KeyID: 1, Alg: wire.AuthHMACSHA256128, Secret: "k1"}},
			Prefixes: []slowpath.SitePrefix{{EIDPrefix: slowpath.EIDPrefix{Prefix: netip.MustParsePrefix("10.1.0.0/24")}}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r, sock
}

// ctl runs rlocctl with args against sock and returns its output.
func ctl(t *testing.T, sock string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(append([]string{"-s", sock}, args...), &out)
	return out.String(), err
}

func mustCtl(t *testing.T, sock string, args ...string) string {
	t.Helper()
	out, err := ctl(t, sock, args...)
	if err != nil {
		t.Fatalf("rlocctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// row reports whether out has a line whose fields match the regular
// expressions in order (separated by table spacing).
func row(out string, cells ...string) bool {
	re := regexp.MustCompile(`(?m)^` + strings.Join(cells, `\s+`) + `\s*$`)
	return re.MatchString(out)
}

func TestMapCacheCommands(t *testing.T) {
	_, sock := startRouter(t)
	out := mustCtl(t, sock, "map-cache", "add", "5", "10.9.0.0/16", "192.0.2.9/1/50", "2001:db8:ff::9")
	if !row(out, "IID", "EID", `RLOCS \(prio/weight state\) / ACTION`, "TTL", "EXPIRES", "FLAGS") ||
		!row(out, "5", `10\.9\.0\.0/16`, `192\.0\.2\.9 1/50 up, 2001:db8:ff::9 1/100 up`, "-", "never", "static") {
		t.Fatalf("add output:\n%s", out)
	}
	mustCtl(t, sock, "map-cache", "add", "-action", "drop", "0", "198.51.100.0/24")
	out = mustCtl(t, sock, "map-cache")
	if !row(out, "0", `198\.51\.100\.0/24`, "negative: drop", "-", "never", "static") ||
		!row(out, "5", `10\.9\.0\.0/16`, `192\.0\.2\.9 1/50 up, .*`, "-", "never", "static") ||
		!strings.Contains(out, "2 entries") {
		t.Fatalf("list:\n%s", out)
	}
	out = mustCtl(t, sock, "map-cache", "5", "10.9.0.0/16")
	if !row(out, "5", `10\.9\.0\.0/16`, ".*", "-", "never", "static") || !strings.Contains(out, "1 entries") {
		t.Fatalf("get:\n%s", out)
	}
	if out := mustCtl(t, sock, "map-cache", "del", "5", "10.9.0.0/16"); strings.TrimSpace(out) != "deleted" {
		t.Fatalf("del: %q", out)
	}
	if _, err := ctl(t, sock, "map-cache", "5", "10.9.0.0/16"); err == nil || !strings.Contains(err.Error(), "no entry") {
		t.Fatalf("get after delete: %v", err)
	}
	for _, bad := range [][]string{
		{"map-cache", "add", "x", "10.0.0.0/8"},
		{"map-cache", "add", "0", "10.0.0.0/8", "192.0.2.1/300"},
		{"map-cache", "add", "0", "10.0.0.0/8", "192.0.2.1/1/2/3"},
		{"map-cache", "add", "0", "nope", "192.0.2.1"},
		{"map-cache", "del", "0"},
		{"map-cache", "1"},
		{"frobnicate"},
		{},
	} {
		if _, err := ctl(t, sock, bad...); err == nil {
			t.Errorf("rlocctl %q: no error", bad)
		}
	}
}

func TestRegistrationsStatsEvents(t *testing.T) {
	r, sock := startRouter(t)
	out := mustCtl(t, sock, "registrations")
	if !row(out, "SITE", "IID", "EID", "RLOCS", "FROM", "EXPIRES") || !strings.Contains(out, "0 registrations") {
		t.Fatalf("empty registrations:\n%s", out)
	}
	// Stream two events while a Map-Register is accepted and a bad one
	// rejected.
	type res struct {
		out string
		err error
	}
	evc := make(chan res, 1)
	go func() {
		var b bytes.Buffer
		err := run([]string{"-s", sock, "events", "-n", "2"}, &b)
		evc <- res{b.String(), err}
	}()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The subscription must exist before the register is sent: retry the
	// good register until the stream has seen something.
	send := func(secret string) {
		reg := wire.MapRegister{WantMapNotify: true, Auth: wire.NewAuth(1, wire.AuthHMACSHA256128, false),
			Records: []wire.Record{{TTL: 10, MaskLen: 24, EID: wire.IPAddress(netip.MustParseAddr("10.1.0.0")),
				Locators: []wire.Locator{{Priority: 1, Weight: 100, Reachable: true,
					Address: wire.IPAddress(netip.MustParseAddr("192.0.2.1"))}}}}}
		b, err := reg.AppendSigned(nil, []byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteToUDPAddrPort(b, r.Engine().Addr()); err != nil {
			t.Fatal(err)
		}
	}
	var ev res
	deadline := time.After(5 * time.Second)
wait:
	for {
		send("k1")
		send("wrong")
		select {
		case ev = <-evc:
			break wait
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatal("rlocctl events -n 2 printed nothing in 5 s")
		}
	}
	if ev.err != nil {
		t.Fatalf("events: %v\n%s", ev.err, ev.out)
	}
	src := regexp.QuoteMeta(c.LocalAddr().String())
	if !regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d\.\d{3} registration-accepted\s+iid 0 10\.1\.0\.0/24 from `+src+` \(site1\)$`).MatchString(ev.out) ||
		!regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d\.\d{3} registration-rejected\s+from `+src+` \(site1: authentication failed\)$`).MatchString(ev.out) {
		t.Fatalf("events output:\n%s", ev.out)
	}
	out = mustCtl(t, sock, "registrations")
	if !row(out, "site1", "0", `10\.1\.0\.0/24`, `192\.0\.2\.1`, src, `\d+m?\d*s`) || !strings.Contains(out, "1 registrations") {
		t.Fatalf("registrations:\n%s", out)
	}
	out = mustCtl(t, sock, "stats")
	if !strings.HasPrefix(out, "router ctl-test, up ") ||
		!row(out, "CONTROL MESSAGE", "RECEIVED", "SENT", "BAD-PARSE", "BAD-AUTH", "RATE-LIMITED", "REJECTED", "IGNORED") ||
		!row(out, "map-register", `[1-9]\d*`, "0", "0", `[1-9]\d*`, "0", "0", "0") ||
		!row(out, "map-notify", "0", `[1-9]\d*`, "0", "0", "0", "0", "0") ||
		!row(out, "registrations", "1") || !row(out, "map-cache", `0 entries \(0 negative, 0 static\)`) {
		t.Fatalf("stats:\n%s", out)
	}
	if strings.Contains(out, "FAST PATH") {
		t.Errorf("a router without workers prints fast-path counters:\n%s", out)
	}
	js := mustCtl(t, sock, "json", "/v1/registrations")
	if !strings.Contains(js, `"eid": "10.1.0.0/24"`) {
		t.Errorf("json:\n%s", js)
	}
	if _, err := ctl(t, sock, "database", "add", "0", "10.1.0.0/24", "192.0.2.1"); err == nil ||
		!strings.Contains(err.Error(), "no ETR role") {
		t.Errorf("database add on a Map-Server: %v", err)
	}
	if _, err := ctl(t, filepath.Join(t.TempDir(), "none.sock"), "stats"); err == nil {
		t.Error("no error without a daemon")
	}
}

// TestRegistrationsPaged: rlocctl fetches every page of the listing, and
// with --limit only the first, --after starting where a page ended.
func TestRegistrationsPaged(t *testing.T) {
	r, sock := startRouter(t)
	for i := range 5 {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		reg := wire.MapRegister{Nonce: wire.Nonce{9, byte(i)}, Auth: wire.NewAuth(1, wire.AuthHMACSHA256128, false),
			Records: []wire.Record{{TTL: 10, MaskLen: 24, EID: wire.IPAddress(netip.MustParseAddr("10.1.0.0")),
				Locators: []wire.Locator{{Priority: 1, Weight: 100, Reachable: true, Address: wire.IPAddress(netip.MustParseAddr("192.0.2.1"))}}}}}
		b, err := reg.AppendSigned(nil, []byte("k1"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteToUDPAddrPort(b, r.Engine().Addr()); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitFor(t, "5 registrations", func() error {
		if n := len(r.Registrations()); n != 5 {
			return fmt.Errorf("%d registrations", n)
		}
		return nil
	})
	var all, first, rest []router.RegistrationInfo
	decode(t, fmtJSON, mustCtl(t, sock, "registrations", "-o", "json", "--page-size", "2"), &all)
	var out, errOut bytes.Buffer
	if err := execute(&options{ctx: t.Context(), out: &out, errOut: &errOut}, []string{"-s", sock, "registrations", "-o", "json", "--limit", "3"}); err != nil {
		t.Fatal(err)
	}
	decode(t, fmtJSON, out.String(), &first)
	if len(all) != 5 || len(first) != 3 {
		t.Fatalf("all %d, first page %d", len(all), len(first))
	}
	next, ok := strings.CutPrefix(strings.TrimSpace(errOut.String()), "more after: ")
	if !ok {
		t.Fatalf("stderr %q, want the next cursor", errOut.String())
	}
	decode(t, fmtJSON, mustCtl(t, sock, "registrations", "-o", "json", "--limit", "3", "--after", next), &rest)
	if len(rest) != 2 || rest[0].Source != all[3].Source || rest[1].Source != all[4].Source || first[2].Source != all[2].Source {
		t.Fatalf("pages %+v then %+v, whole %+v", first, rest, all)
	}
}

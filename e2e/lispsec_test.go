package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLispSec: real daemons on the demo lab with LISP-SEC required on both
// xTRs (RFC 9303, docs/lisp-sec.md). h1 reaches h2: xtr1's Map-Request
// goes through the Map-Resolver/Map-Server, which signs the EID-AD and
// forwards it to xtr2, which signs its reply; xtr1 verifies it. Then xtr1
// restarts with a key the Map-Server does not have: the Map-Server cannot
// unwrap the one-time key, the answers come without LISP-SEC, and xtr1
// refuses them (downgrade protection): h2 is unreachable and counted.
// In between, a forger that sees the nonces at the Map-Resolver answers a
// request with 0.0.0.0/0 (::/0) from the Map-Resolver's own address, the
// reply the source checks alone accept: xtr1 refuses it.
func TestLispSec(t *testing.T) {
	n := newNetwork(t)
	n.start("msmr", strings.Replace(msmrYAML("4s"), "map_server: {registration_timeout: 4s}", "map_server: {registration_timeout: 4s, lisp_sec_key: mapping-secret}", 1))
	xtr := func(name, site, secret, key string) string {
		y := xtrYAML(name, site, secret, "0s")
		out := strings.Replace(y, "retransmit_interval: 200ms}",
			"retransmit_interval: 200ms, lisp_sec: {mode: required, key: "+key+"}}", 1)
		if out == y {
			t.Fatal("the xTR configuration was not rewritten; xtrYAML changed")
		}
		return out
	}
	if !strings.Contains(msmrYAML("4s"), "\nmap_server: {registration_timeout: 4s}\n") {
		t.Fatal("msmrYAML changed: map_server is not a flow mapping on the last line")
	}
	n.start("xtr1", xtr("xtr1", "1", "key-one", "mapping-secret"))
	n.start("xtr2", xtr("xtr2", "2", "key-two", "mapping-secret"))
	n.waitFor(15*time.Second, "4 registrations", func() bool { return len(n.registrations()) == 4 })

	got, err := n.lab.Ping("h1", h2v4, 5, 2*time.Second)
	if err != nil || got < 4 {
		t.Fatalf("h1 -> h2 with LISP-SEC: %d/5 replies, %v", got, err)
	}
	x1, x2, ms := n.stats("xtr1").Control, n.stats("xtr2").Control, n.stats("msmr").Control
	if x1["lisp_sec_verified"] < 1 || x1["lisp_sec_refused"] != 0 || x1["lisp_sec_unsigned"] != 0 ||
		ms["lisp_sec_signed"] < 1 || x2["lisp_sec_signed"] < 1 {
		t.Fatalf("xtr1 verified %d refused %d unsigned %d; msmr signed %d; xtr2 signed %d", x1["lisp_sec_verified"],
			x1["lisp_sec_refused"], x1["lisp_sec_unsigned"], ms["lisp_sec_signed"], x2["lisp_sec_signed"])
	}

	// The forged 0.0.0.0/0: a forger in the Map-Resolver's namespace sees
	// the nonce of every request and answers first, from the
	// Map-Resolver's own address; with xtr2 gone its answer is the only one.
	// xtr1 refuses it for want of LISP-SEC data.
	script, err := filepath.Abs("testdata/forge_reply.py")
	if err != nil {
		t.Fatal(err)
	}
	flog := filepath.Join(n.dir, "forger.log")
	fc, err := n.lab.Command("msmr", "/usr/bin/python3", script, "192.0.2.100", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	lf, err := os.Create(flog)
	if err != nil {
		t.Fatal(err)
	}
	fc.Stdout, fc.Stderr = lf, lf
	forger, err := n.lab.StartCmd(fc)
	lf.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Stop(time.Second)
	forgerSaid := func(s string) bool { b, _ := os.ReadFile(flog); return strings.Contains(string(b), s) }
	n.waitFor(10*time.Second, "the forger ready", func() bool { return forgerSaid("ready") })
	n.stop("xtr2", false)
	if got, _ := n.lab.Ping("h1", h2v6, 1, time.Second); got != 0 {
		t.Fatalf("h1 -> h2 over IPv6 answered with xtr2 down")
	}
	n.waitFor(10*time.Second, "the forged reply sent and refused", func() bool {
		return forgerSaid("forged reply") && n.stats("xtr1").Control["lisp_sec_unsigned"] >= 1
	})
	for _, e := range n.mapCache("xtr1") {
		if e.EID == "0.0.0.0/0" || e.EID == "::/0" || strings.HasPrefix(e.EID, "2001:db8:2:") {
			t.Fatalf("xtr1 installed %+v from the forged reply", e)
		}
	}
	_ = forger.Stop(time.Second)
	n.start("xtr2", xtr("xtr2", "2", "key-two", "mapping-secret"))

	n.stop("xtr1", true)
	n.start("xtr1", xtr("xtr1", "1", "key-one", "not-the-secret"))
	n.waitFor(15*time.Second, "xtr1 registered again", func() bool { return n.stats("xtr1").Control["register_notified"] >= 1 })
	if got, _ := n.lab.Ping("h1", h2v4, 3, 2*time.Second); got != 0 {
		t.Fatalf("h1 -> h2 answered %d/3 times though xtr1's one-time keys cannot be unwrapped", got)
	}
	n.waitFor(10*time.Second, "the unsigned answers refused", func() bool { return n.stats("xtr1").Control["lisp_sec_unsigned"] >= 1 })
	if c := n.stats("msmr").Control; c["lisp_sec_unwrap_failed"] < 1 {
		t.Fatalf("msmr unwrap failures %d", c["lisp_sec_unwrap_failed"])
	}
	for _, e := range n.mapCache("xtr1") {
		if strings.HasPrefix(e.EID, "10.2.") || e.EID == "0.0.0.0/0" {
			t.Fatalf("xtr1 installed %+v from an unproven reply", e)
		}
	}
}
